"""The executor: runs planned effects on the SIP/media side, in decision order.

The only code that drives ``sip_media`` (through ``LegDriver`` and the translations it
is built with, see ``rwi.sip_executor``). It runs effects one at a time in decision
order; a *request effect* (a REFER, ending a stale dialog) runs beside the queue and its
result comes back as an observation; timers become ``timer.fired`` observations. Every
report goes through the log like any other happening, so a replay sees it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from rwi.domain.effects import (
    Answer,
    Bridge,
    CloseRecordingFile,
    ConferenceAdd,
    ConferenceMute,
    ConferenceRemove,
    Dial,
    EarlyMedia,
    Effect,
    EndStaleDialog,
    Hangup,
    Hold,
    PauseRecording,
    Play,
    Refer,
    Reject,
    ResumeRecording,
    Ring,
    SipRequest,
    StartRecording,
    StartStream,
    StartTimer,
    StopEarlyMedia,
    StopPlay,
    StopRecording,
    StopStream,
    StopSupervise,
    Supervise,
    Unbridge,
    Unhold,
)
from rwi.domain.model import Observation

log = logging.getLogger(__name__)


class LegDriver(Protocol):
    """What the executor needs of the SIP/media side (``sip_media.calls.CallLegs``)."""

    async def dial(
        self,
        leg_id: str,
        target: str,
        *,
        caller_id: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
        timeout: float = 60.0,  # noqa: ASYNC109 (the SIP no-answer timer, not an await)
    ) -> None: ...
    async def ring(self, leg_id: str) -> None: ...
    async def answer(self, leg_id: str) -> None: ...
    async def reject(self, leg_id: str, code: int) -> None: ...
    async def hangup(self, leg_id: str) -> None: ...
    async def bridge(self, a: str, b: str) -> None: ...
    async def unbridge(self, a: str, b: str) -> None: ...
    async def hold(self, leg_id: str, music: Any) -> None: ...
    async def unhold(self, leg_id: str) -> None: ...
    async def play(
        self,
        leg_id: str,
        source: Any,
        *,
        loop: bool = False,
        interrupt_on_dtmf: bool = False,
        playback_id: str | None = None,
    ) -> object: ...
    async def stop_play(self, leg_id: str) -> None: ...
    async def early_media(self, from_leg: str, to_leg: str) -> None: ...
    async def send_refer(
        self, leg_id: str, refer_to: str, *, replaces_leg: str | None = None
    ) -> int: ...
    async def record(
        self,
        leg_id: str,
        path: str,
        *,
        other_leg: str | None = None,
        mode: Any = "mixed",
        beep: bool = False,
        max_duration_s: float | None = None,
        recording_id: str | None = None,
    ) -> object: ...
    async def pause_record(self, recording_id: str) -> None: ...
    async def resume_record(self, recording_id: str) -> None: ...
    async def stop_record(self, recording_id: str) -> None: ...
    async def supervise(self, supervisor: str, agent: str, mode: Any = "listen") -> None: ...
    async def stop_supervise(self, supervisor: str) -> None: ...
    async def conference_add(
        self, conference_id: str, leg_id: str, *, muted: bool = False
    ) -> None: ...
    async def stream_start(self, effect: Any) -> None: ...
    async def stream_stop(self, stream_id: str) -> None: ...
    async def conference_remove(self, conference_id: str, leg_id: str) -> None: ...
    async def conference_mute(
        self, conference_id: str, leg_id: str, muted: bool = True
    ) -> None: ...


Observe = Callable[[Observation], Awaitable[Any]]
#: closes the file of a recording a previous process left open: ``path -> (seconds on
#: disk, size in bytes)``
CloseFile = Callable[[str], tuple[float, int]]
#: ends a previous process's dialog from its logged record: ``(call_id, record,
#: answered) -> outcome`` (the ``sip.stale.ended`` observation's data)
EndStale = Callable[[str, dict[str, Any], bool], Awaitable[dict[str, Any]]]
#: sends a SIP request (``SipRequest``) and returns the far end's answer: ``{status,
#: reason, rtt_ms}``
SendRequest = Callable[[SipRequest], Awaitable[dict[str, Any]]]


class Executor:
    """Runs effects in decision order; results and failures come back as observations.

    Built by the runtime with the SIP/media side; the service starts it with the entry
    point observations go to (``Service.observe``) and gives it each durable decision's
    effects."""

    def __init__(
        self,
        driver: LegDriver,
        source: Callable[[dict[str, Any]], Any],
        music: Callable[[str | None], Any],
        refer_to: Callable[[str], str] = str,
        end_stale: EndStale | None = None,
        close_file: CloseFile | None = None,
        send_request: SendRequest | None = None,
        stream: Callable[[StartStream], Any] = lambda effect: effect,
    ) -> None:
        self.driver = driver
        self.source = source  # RWI source params -> driver's media source
        self.music = music
        self.refer_to = refer_to  # RWI target -> a Refer-To URI the far end can reach
        self.end_stale = end_stale
        self.close_file = close_file
        self.send_request = send_request
        self.stream = stream  # StartStream -> the driver's stream effect
        self._observe: Observe | None = None
        self._queue: asyncio.Queue[Effect | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._spawned: set[asyncio.Future[Any]] = set()
        self._stale: set[asyncio.Future[Any]] = set()
        self._closed = False
        self.failures = 0
        #: (effect type, "ok" or "failed") -> how many ran (read by ``rwi.metrics``)
        self.ran: collections.Counter[tuple[str, str]] = collections.Counter()

    def start(self, observe: Observe) -> None:
        self._observe = observe
        self._task = asyncio.create_task(self._run(), name="rwi-effects")

    async def close(self) -> None:
        """Stop: effects still queued run first; later ones are dropped."""
        self._closed = True
        for timer in self._timers:
            timer.cancel()
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task
        for task in list(self._stale):
            # a dialog not ended by now is left to its own timers on the far end
            task.cancel()
        if self._stale:
            await asyncio.gather(*self._stale, return_exceptions=True)

    def submit(self, effects: list[Effect]) -> None:
        if self._closed:
            return
        for effect in effects:
            if isinstance(effect, StartTimer):
                self._arm(effect)
            else:
                self._queue.put_nowait(effect)

    async def observe(self, observation: Observation) -> None:
        if self._observe is not None:
            await self._observe(observation)

    def _arm(self, timer: StartTimer) -> None:
        data = timer.fired()

        def fire() -> None:
            self._timers.discard(handle)
            self._spawn(self.observe(Observation("timer.fired", data)))

        handle = asyncio.get_running_loop().call_later(timer.seconds, fire)
        self._timers.add(handle)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        return task

    async def _run(self) -> None:
        while True:
            effect = await self._queue.get()
            if effect is None:
                return
            try:
                await self._execute(effect)
                self.ran[(type(effect).__name__, "ok")] += 1
            except Exception as exc:  # one failed effect must not stop the others
                self.failures += 1
                self.ran[(type(effect).__name__, "failed")] += 1
                leg = getattr(effect, "leg_id", None) or getattr(effect, "leg_a", None)
                log.warning("effect %r failed: %s", effect, exc, extra={"call_id": leg})
                if leg is not None:
                    self._spawn(
                        self.observe(
                            Observation(
                                "effect.failed",
                                {
                                    "call_id": leg,
                                    "effect": type(effect).__name__,
                                    "error": str(exc),
                                },
                            )
                        )
                    )

    async def _refer(self, effect: Refer) -> None:
        try:
            status = await self.driver.send_refer(effect.leg_id, self.refer_to(effect.target))
        except Exception as exc:  # the leg went away, or the REFER could not be sent
            log.info("REFER on %s failed: %s", effect.leg_id, exc)
            status = getattr(exc, "sip_status", None) or 500
        await self.observe(
            Observation("sip.refer.result", {"call_id": effect.leg_id, "status": status})
        )

    async def _sip_request(self, effect: SipRequest) -> None:
        answer: dict[str, Any] = {"status": 501, "reason": "Not Implemented", "rtt_ms": None}
        if self.send_request is not None:
            try:
                answer = await self.send_request(effect)
            except Exception as exc:  # the leg went away, or nothing could be sent
                log.info("%s on %s failed: %s", effect.method, effect.leg_id, exc)
                status = getattr(exc, "sip_status", None) or 481
                answer = {"status": status, "reason": str(exc), "rtt_ms": None}
        data: dict[str, Any] = {"request_id": effect.request_id, "method": effect.method}
        if effect.leg_id is not None:
            data["call_id"] = effect.leg_id
        await self.observe(Observation("sip.request.result", {**data, **answer}))

    async def _end_stale(self, effect: EndStaleDialog) -> None:
        if self.end_stale is None:
            return
        outcome = await self.end_stale(effect.call_id, effect.dialog, effect.answered)
        log.info("restart: ended the SIP dialog of call %s: %s", effect.call_id, outcome)
        await self.observe(Observation("sip.stale.ended", outcome))

    async def _recording(self, effect: StartRecording | StopRecording) -> None:
        """Start or stop a recording; a failure ends the recording, never its call
        (``media.recording.failed``, not ``effect.failed``)."""
        d = self.driver
        try:
            if isinstance(effect, StartRecording):
                await d.record(
                    effect.call_id,
                    effect.file,
                    mode="separate" if effect.mode == "separate_legs" else "mixed",
                    beep=effect.beep,
                    max_duration_s=effect.max_duration_secs,
                    recording_id=effect.recording_id,
                )
            else:
                await d.stop_record(effect.recording_id)
        except Exception as exc:
            log.info("recording %s: %s failed: %s", effect.recording_id, type(effect).__name__, exc)
            data = {"recording_id": effect.recording_id, "error": str(exc)}
            await self.observe(Observation("media.recording.failed", data))

    async def _supervise(self, effect: Supervise) -> None:
        """Start or switch a supervisor mode; the media side refusing it (a leg gone)
        ends the mode, never a call (``media.supervise.failed``, not ``effect.failed``)."""
        try:
            await self.driver.supervise(effect.supervisor_leg, effect.agent_leg, effect.mode)
        except Exception as exc:
            log.info("supervise %s -> %s failed: %s", effect.supervisor_leg, effect.agent_leg, exc)
            data = {
                "supervisor_call_id": effect.supervisor_leg,
                "target_call_id": effect.agent_leg,
                "mode": effect.mode,
                "error": str(exc),
            }
            await self.observe(Observation("media.supervise.failed", data))

    async def _stream(self, effect: StartStream | StopStream) -> None:
        """Start or stop an audio stream; a failure ends the stream, never its call
        (``media.stream.ended {reason: failed}``; stopping one already gone is nothing)."""
        try:
            if isinstance(effect, StartStream):
                await self.driver.stream_start(self.stream(effect))
            else:
                await self.driver.stream_stop(effect.stream_id)
        except Exception as exc:
            log.info("stream %s: %s failed: %s", effect.stream_id, type(effect).__name__, exc)
            if isinstance(effect, StopStream):
                return
            data = {
                "stream_id": effect.stream_id,
                "call_id": effect.call_id,
                "reason": "failed",
                "error": str(exc),
                "frames_sent": 0,
                "frames_received": 0,
                "frames_dropped": 0,
            }
            await self.observe(Observation("media.stream.ended", data))

    async def _close_file(self, effect: CloseRecordingFile) -> None:
        data: dict[str, Any] = {"recording_id": effect.recording_id, "path": effect.path}
        try:
            if self.close_file is None:
                raise RuntimeError("no media side to close recordings with")
            seconds, size = self.close_file(effect.path)
        except Exception as exc:  # missing, unreadable or not ours: the recording is lost
            log.warning(
                "recording %s: could not close %s: %s", effect.recording_id, effect.path, exc
            )
            await self.observe(Observation("media.recording.failed", {**data, "error": str(exc)}))
            return
        data.update(duration_secs=round(seconds, 3), size_bytes=size, reason="closed")
        await self.observe(Observation("media.recording.finished", data))

    async def _execute(self, effect: Effect) -> None:
        d = self.driver
        match effect:
            case Dial():
                await d.dial(
                    effect.leg_id,
                    effect.target,
                    caller_id=effect.caller_id,
                    extra_headers=effect.extra_headers,
                    timeout=effect.timeout_secs + 5,  # our own timer decides first
                )
            case Ring():
                await d.ring(effect.leg_id)
            case Answer():
                await d.answer(effect.leg_id)
            case Reject():
                await d.reject(effect.leg_id, effect.code)
            case Hangup():
                await d.hangup(effect.leg_id)
            case Bridge():
                await d.bridge(effect.leg_a, effect.leg_b)
            case Unbridge():
                await d.unbridge(effect.leg_a, effect.leg_b)
            case Hold():
                await d.hold(effect.leg_id, self.music(effect.music))
            case Unhold():
                await d.unhold(effect.leg_id)
            case Play():
                await d.play(
                    effect.leg_id,
                    self.source(effect.source),
                    loop=effect.loop,
                    interrupt_on_dtmf=effect.interrupt_on_dtmf,
                    playback_id=effect.playback_id,
                )
            case StopPlay():
                await d.stop_play(effect.leg_id)
            case EarlyMedia():
                await d.early_media(effect.from_leg, effect.to_leg)
            case StopEarlyMedia():
                await d.unbridge(effect.from_leg, effect.to_leg)
            case Refer():
                # The far end may take its time (up to Timer F): the other legs' effects
                # must not wait for it.
                self._spawn(self._refer(effect))
            case ConferenceAdd():
                await d.conference_add(effect.conf_id, effect.leg_id)
            case ConferenceRemove():
                await d.conference_remove(effect.conf_id, effect.leg_id)
            case ConferenceMute():
                await d.conference_mute(effect.conf_id, effect.leg_id, effect.muted)
            case Supervise():
                await self._supervise(effect)
            case StopSupervise():
                with contextlib.suppress(Exception):  # a leg ended: the rule went with it
                    await d.stop_supervise(effect.supervisor_leg)
            case SipRequest():
                # the far end answers within Timer F (32 s): nothing else waits for it
                self._spawn(self._sip_request(effect))
            case EndStaleDialog():
                # each exchange may take its time (up to the stale timeout)
                task = self._spawn(self._end_stale(effect))
                self._stale.add(task)
                task.add_done_callback(self._stale.discard)
            case StartRecording() | StopRecording():
                await self._recording(effect)
            case PauseRecording():
                with contextlib.suppress(Exception):  # gone: its end is reported anyway
                    await d.pause_record(effect.recording_id)
            case ResumeRecording():
                with contextlib.suppress(Exception):
                    await d.resume_record(effect.recording_id)
            case CloseRecordingFile():
                await self._close_file(effect)
            case StartStream() | StopStream():
                await self._stream(effect)
            case StartTimer():
                self._arm(effect)
