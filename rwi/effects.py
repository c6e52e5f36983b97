"""Effects: what a durable event makes happen on SIP and media, and who makes it happen.

``plan(state, event)`` is pure: from the state just before an event and the event, the
effects it requires (dial, answer, bridge, play, arm a timer...). The service plans while
it decides and hands the effects to the ``Executor`` only after the events are stored.
The executor is the only code that calls ``sip_media``: it runs effects one at a time in
decision order, and turns timers into observations that go through the log like any
other happening, so a replay sees them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from rwi.domain.model import EventLike, Observation, State

log = logging.getLogger(__name__)


# --- the effects ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dial:
    leg_id: str
    target: str
    caller_id: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    timeout_secs: float = 60.0


@dataclass(frozen=True)
class Ring:
    leg_id: str


@dataclass(frozen=True)
class Answer:
    leg_id: str


@dataclass(frozen=True)
class Reject:
    leg_id: str
    code: int


@dataclass(frozen=True)
class Hangup:
    leg_id: str


@dataclass(frozen=True)
class Bridge:
    leg_a: str
    leg_b: str


@dataclass(frozen=True)
class Unbridge:
    leg_a: str
    leg_b: str


@dataclass(frozen=True)
class Hold:
    leg_id: str
    music: str | None = None


@dataclass(frozen=True)
class Unhold:
    leg_id: str


@dataclass(frozen=True)
class Play:
    leg_id: str
    playback_id: str
    source: dict[str, Any] = field(default_factory=dict)
    loop: bool = False
    interrupt_on_dtmf: bool = False


@dataclass(frozen=True)
class StopPlay:
    leg_id: str


@dataclass(frozen=True)
class EarlyMedia:
    """``to_leg`` hears ``from_leg`` one way (ringback passed through)."""

    from_leg: str
    to_leg: str


@dataclass(frozen=True)
class StopEarlyMedia:
    from_leg: str
    to_leg: str


@dataclass(frozen=True)
class Refer:
    """REFER the far end of ``leg_id`` to ``target`` (a blind transfer of a bridged leg)."""

    leg_id: str
    target: str


@dataclass(frozen=True)
class StartTimer:
    """Fire a ``timer.fired`` observation after ``seconds``."""

    kind: str
    call_id: str
    seconds: float
    since: str | None = None


Effect = (
    Dial
    | Ring
    | Answer
    | Reject
    | Hangup
    | Bridge
    | Unbridge
    | Hold
    | Unhold
    | Play
    | StopPlay
    | EarlyMedia
    | StopEarlyMedia
    | Refer
    | StartTimer
)

#: Effects without which the call cannot go on: their failure ends it.
_VITAL = (Dial, Ring, Answer)

#: Why a playback was stopped by a decision (the engine must be told); a prompt that
#: ran out or was cut by a digit has already stopped by itself.
_STOPPED_BY_DECISION = frozenset(
    {"stopped", "replaced", "hangup", "hold", "bridged", "answered", "ended"}
)


def plan(state: State, event: EventLike) -> list[Effect]:
    """The effects ``event`` requires, given the state just before it (pure)."""
    data = event.data
    call = state.calls.get(data.get("call_id", "")) if "call_id" in data else None
    match event.type:
        case "call.originated":
            headers = tuple(sorted(data.get("extra_headers", {}).items()))
            timeout = float(data.get("timeout_secs", 60))
            return [
                Dial(data["call_id"], data["destination"], data.get("caller_id"), headers, timeout),
                StartTimer("originate_timeout", data["call_id"], timeout),
            ]
        case "call.incoming" if not data.get("route_user"):
            context = state.policy.context(data.get("context"))
            return [StartTimer("claim_timeout", data["call_id"], context.no_answer_timeout_secs)]
        case "call.ringing" if call is not None and call.direction == "inbound":
            return [Ring(call.call_id)]
        case "call.answered" if call is not None and call.direction == "inbound":
            return [Answer(call.call_id)]
        case "call.hangup" if call is not None:
            if data.get("hangup_by") == "remote":
                return []  # the far end is gone already; the driver tidies the media
            unanswered_inbound = call.direction == "inbound" and call.answered_at is None
            if unanswered_inbound and data.get("sip_status"):
                return [Reject(call.call_id, int(data["sip_status"]))]
            return [Hangup(call.call_id)]
        case "call.bridged":
            return [Bridge(data["leg_a"], data["leg_b"])]
        case "call.unbridged" if data.get("reason") != "hangup" and data.get("leg_b"):
            return [Unbridge(data["leg_a"], data["leg_b"])]
        case "media.hold.started":
            return [Hold(data["call_id"], data.get("music"))]
        case "media.hold.stopped":
            return [Unhold(data["call_id"])]
        case "media.play.started":
            return [
                Play(
                    data["call_id"],
                    data["playback_id"],
                    data.get("source", {}),
                    bool(data.get("loop")),
                    bool(data.get("interrupt_on_dtmf")),
                )
            ]
        case "media.play.finished" if data.get("reason") in _STOPPED_BY_DECISION:
            return [StopPlay(data["call_id"])]
        case "media.ringback.passthrough.started":
            return [EarlyMedia(data["source_call_id"], data["call_id"])]
        case "media.ringback.passthrough.stopped":
            return [StopEarlyMedia(data["source_call_id"], data["call_id"])]
        case "call.transferred" if data.get("method") == "refer":
            return [Refer(data["call_id"], data["target"])]
        case "session.closed" | "call.detached":
            connection_id = data["connection_id"]
            ts = event.meta.get("ts", "")
            if event.type == "call.detached":
                owned = [call] if call is not None and call.owner == connection_id else []
            else:
                owned = [c for c in state.calls.values() if c.owner == connection_id]
            return [
                StartTimer("orphan_timeout", c.call_id, state.policy.orphan_hold_secs, ts)
                for c in owned
            ]
        case _:
            return []


# --- running them --------------------------------------------------------------------


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


Observe = Callable[[Observation], Awaitable[Any]]


class Executor:
    """Runs effects in decision order; failures come back as observations."""

    def __init__(
        self,
        driver: LegDriver,
        observe: Observe,
        source: Callable[[dict[str, Any]], Any],
        music: Callable[[str | None], Any],
        refer_to: Callable[[str], str] = str,
    ) -> None:
        self.driver = driver
        self.observe = observe
        self.source = source  # RWI source params -> driver's media source
        self.music = music
        self.refer_to = refer_to  # RWI target -> a Refer-To URI the far end can reach
        self._queue: asyncio.Queue[Effect | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._spawned: set[asyncio.Task[Any]] = set()
        self.failures = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rwi-effects")

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task

    def submit(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, StartTimer):
                self._arm(effect)
            else:
                self._queue.put_nowait(effect)

    def _arm(self, timer: StartTimer) -> None:
        data: dict[str, Any] = {"call_id": timer.call_id, "kind": timer.kind}
        if timer.since is not None:
            data["since"] = timer.since

        def fire() -> None:
            self._timers.discard(handle)
            self._spawn(self.observe(Observation("timer.fired", data)))

        handle = asyncio.get_running_loop().call_later(timer.seconds, fire)
        self._timers.add(handle)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    async def _run(self) -> None:
        while True:
            effect = await self._queue.get()
            if effect is None:
                return
            try:
                await self._execute(effect)
            except Exception as exc:  # one failed effect must not stop the others
                self.failures += 1
                log.warning("effect %r failed: %s", effect, exc)
                leg = getattr(effect, "leg_id", None) or getattr(effect, "leg_a", None)
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
            case StartTimer():
                self._arm(effect)
