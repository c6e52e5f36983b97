"""The call-leg layer: one leg id is one SIP dialog and one anchored media leg.

Where it sits: the only surface the call-control service drives calls through. Below
it, :class:`~sip_media.adapter.SipAdapter` (signalling: effects in, observations out)
and a :class:`~sip_media.media.service.MediaService` (RTP legs, mixing, players,
recorders). :class:`CallLegs` turns the service's intent (dial, answer, bridge, hold,
play...) into both kinds of effects, keeps each leg's SDP and media leg in step
(RFC 3264 offer/answer, early media, remote re-INVITE hold, RTP timeout), and reports
one stream of :data:`~sip_media.call_types.LegObservation` values. Inbound routing is
not decided here: an INVITE is reported as ``LegOffered`` and waits (100 Trying sent)
until the service rings, answers, rejects or hangs up.

Usage::

    legs = await CallLegs.start(EngineConfig(...), MediaConfig(...))
    legs.subscribe(on_observation)          # LegOffered, LegAnswered, LegEnded, ...
    await legs.dial("out-1", "sip:bob@127.0.0.1:5080", caller_id="Alice")
    await legs.answer("in-3f2a...")         # after LegOffered
    await legs.bridge("out-1", "in-3f2a...")
    await legs.close()

Every effect method raises a :class:`~sip_media.call_types.CallError` subclass on
failure. Every leg that ``dial`` accepted or ``LegOffered`` announced ends with exactly
one terminal observation: ``LegFailed`` (outbound, never answered, not hung up by us) or
``LegEnded``. Media-only operations (bridge, hold, play, record, supervise,
conferences, DTMF) are done by a :class:`~sip_media.call_media.MediaOps`, in-dialog
requests (MESSAGE, NOTIFY, INFO, OPTIONS, REFER) by a
:class:`~sip_media.call_media.RequestOps`, both over the legs' media
(:class:`~sip_media.call_media.LegMedia`): collaborators ``CallLegs`` builds and
delegates to.

Restart recovery: ``LegOffered``, ``LegProgress`` and ``LegAnswered`` carry a
``DialogRecord`` (``dialog``); after a crash, a new ``CallLegs`` ends each dialog the
log still shows live with ``await legs.end_stale(DialogRecord.from_dict(logged))``.
With ``EngineConfig.ack_hold``, an outbound leg's ACK waits until the service has
stored its ``LegAnswered`` and calls :meth:`CallLegs.confirm` (or the hold runs out):
a crash before that leaves the far end retransmitting its 2xx, which the new process
ACKs and BYEs (``sip_media.sip.stray``), so no answered dialog is left unlogged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from sip_media import call_sdp
from sip_media.adapter import SipAdapter
from sip_media.adapter_types import (
    Answered,
    AnswerLeg,
    Binding,
    DialLeg,
    DtmfInfo,
    Effect,
    EffectResult,
    Ended,
    HangupLeg,
    IncomingCall,
    MessageReceived,
    NotifyReceived,
    Provisional,
    ReferReceived,
    RegistrationChanged,
    Reinvited,
    RejectLeg,
    RingLeg,
    SipObservation,
)
from sip_media.call_legstate import LegInfo, LegState, LiveLeg, cause_reason
from sip_media.call_media import LegMedia, MediaOps, RequestOps
from sip_media.call_types import (
    CallError,
    DialogRecord,
    DtmfVia,
    DuplicateLegError,
    EndedBy,
    LegAnswered,
    LegDtmf,
    LegEnded,
    LegFailed,
    LegObservation,
    LegProgress,
    LegStateError,
    MessageIn,
    NotifyIn,
    PlaybackDone,
    RecordingDone,
    RecordingFailed,
    ReferIn,
    RequestResult,
    SignallingError,
)
from sip_media.media import api as m
from sip_media.media.config import MediaConfig
from sip_media.media.service import MediaService, start_media
from sip_media.sip import stale
from sip_media.sip.agent import Invitation
from sip_media.sip.engine import EngineConfig, MessageFilter
from sip_media.sip.errors import SipError
from sip_media.tasks import cancel_and_wait

log = logging.getLogger(__name__)


def _about(leg_id: str) -> dict[str, str]:
    """A log record's ``extra`` naming the leg by the id its user gave it, the call id
    of the service above (a JSON log formatter shows it as ``call_id``)."""
    return {"call_id": leg_id}


LegCallback = Callable[[LegObservation], None]
#: ``(request_uri, from, to)`` of an out-of-dialog MESSAGE -> take it (else 404)
PageFilter = Callable[[str, str, str], bool]
TELEPHONE_EVENT_PT = 101


@dataclass(frozen=True, slots=True)
class _Report:
    """An observation queued behind what media effects just reported (e.g. a leg's
    ``PlaybackDone`` on destruction comes before its ``LegEnded``)."""

    obs: LegObservation


_Input = SipObservation | m.Observation | _Report


def _by_headers(accepts: PageFilter) -> MessageFilter:
    return lambda msg: accepts(msg.ruri, msg.from_, msg.to)


class CallLegs:
    """Legs over one SIP adapter and one media service; see the module docstring."""

    def __init__(
        self,
        sip_config: EngineConfig,
        media: MediaService,
        *,
        bindings: Iterable[Binding] = (),
        owns_media: bool = False,
        accept_message: PageFilter | None = None,
    ) -> None:
        """Build the SIP adapter (started by :meth:`start`) over a started media service,
        inside the event loop; ``owns_media``: :meth:`close` closes ``media`` too.
        ``accept_message(request_uri, from, to)``: whether an out-of-dialog MESSAGE is
        taken (200, reported as ``MessageIn(leg_id="")``) or answered 404 (default: all
        are taken)."""
        self._legs: dict[str, LiveLeg] = {}
        self.sip = SipAdapter(
            sip_config,
            bindings=bindings,
            answer_reinvite=self._answer_reinvite,
            accept_message=None if accept_message is None else _by_headers(accept_message),
        )
        self.media = media
        self._leg_media = LegMedia(self.sip, media, self._legs)
        self._media_ops = MediaOps(self._leg_media, self.sip)
        self._requests = RequestOps(self._leg_media, self.sip)
        self._playbacks = self._leg_media.playbacks  # playback id -> leg id
        self._recordings = self._leg_media.recordings  # recording id -> legs
        self._callbacks: list[LegCallback] = []
        self._queue: asyncio.Queue[_Input] = asyncio.Queue()
        self._owns_media = owns_media
        self._closed = False
        self._unsubscribe_sip = self.sip.subscribe(self._queue.put_nowait)
        self._unsubscribe_media = media.observations.subscribe(self._queue.put_nowait)
        self._pump_task = asyncio.get_running_loop().create_task(self._pump(), name="call-legs")

    @classmethod
    async def start(
        cls,
        sip_config: EngineConfig,
        media_config: MediaConfig,
        *,
        bindings: Iterable[Binding] = (),
        accept_message: PageFilter | None = None,
    ) -> CallLegs:
        """Build and start a SIP adapter and a media service; ``close`` stops both."""
        media = await start_media(media_config)
        legs = cls(
            sip_config, media, bindings=bindings, owns_media=True, accept_message=accept_message
        )
        try:
            await legs.sip.start()
        except BaseException:
            await legs.close()
            raise
        return legs

    async def close(self) -> None:
        """Hang up every live leg, detach, stop the adapter (and the media if we own it)."""
        if self._closed:
            return
        for leg_id in list(self._legs):
            with contextlib.suppress(CallError):
                await self.hangup(leg_id)
        self._closed = True
        self._unsubscribe_sip()
        self._unsubscribe_media()
        await cancel_and_wait(self._pump_task)
        await self.sip.stop()
        if self._owns_media:
            await self.media.close()

    # ------------------------------------------------------------------ observations
    def subscribe(self, callback: LegCallback) -> Callable[[], None]:
        """Call ``callback`` with every observation; returns an unsubscribe function."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def _emit(self, obs: LegObservation) -> None:
        for callback in list(self._callbacks):
            try:
                callback(obs)
            except Exception:
                log.exception("leg observation callback failed on %r", obs)

    def info(self, leg_id: str) -> LegInfo:
        """A snapshot of a live leg (state, RTP addresses, codec, direction)."""
        return self._leg_media.get(leg_id).snapshot()

    def leg_ids(self) -> tuple[str, ...]:
        """Ids of the live legs."""
        return tuple(self._legs)

    async def _pump(self) -> None:
        """Apply SIP and media observations in arrival order, one at a time."""
        while True:
            item = await self._queue.get()
            try:
                await self._handle(item)
            except (CallError, SipError) as exc:
                log.info("observation %r not applied: %s", item, exc)
            except Exception:
                log.exception("observation %r failed", item)

    async def _handle(self, obs: _Input) -> None:
        match obs:
            case _Report(obs=report):
                self._emit(report)
            case IncomingCall():
                self._offered(obs)
            case Provisional() | Answered() | Reinvited():
                await self._remote_sdp(obs)
            case Ended():
                await self._ended(obs)
            case DtmfInfo(leg_id=leg, digit=digit, duration_ms=ms) if leg in self._legs:
                self._emit(LegDtmf(leg, digit, ms or 0, "info"))
            case MessageReceived(leg_id=leg, content_type=ctype, body=body, from_=from_):
                self._emit(MessageIn(leg, ctype, body, from_, obs.method, obs.to, obs.request_uri))
            case NotifyReceived(leg_id=leg):
                self._emit(
                    NotifyIn(leg, obs.event, obs.content_type, obs.body, obs.subscription_state)
                )
            case ReferReceived(leg_id=leg):
                self._emit(ReferIn(leg, obs.refer_id, obs.refer_to, obs.referred_by, obs.replaces))
            case RegistrationChanged() | m.StreamStarted() | m.StreamMark() | m.StreamStopped():
                self._emit(obs)
            case m.DtmfReceived(leg_id=leg, digit=digit, duration_ms=ms) if leg in self._legs:
                self._emit(
                    LegDtmf(leg, digit, ms, "inband" if obs.method == "inband" else "rfc4733")
                )
            case m.RtpTimeout(leg_id=leg):
                await self._rtp_timeout(leg)
            case m.PlaybackFinished(playback_id=pid) if pid in self._playbacks:
                leg_id = self._playbacks.pop(pid)
                if (live := self._legs.get(leg_id)) is not None:
                    live.playbacks.discard(pid)
                self._emit(PlaybackDone(leg_id, pid, obs.interrupted, obs.digit))
            case m.RecordingFinished(recording_id=rid) if rid in self._recordings:
                legs = self._recordings.pop(rid)
                self._emit(
                    RecordingDone(legs[0], rid, obs.path, obs.duration_secs, legs, obs.reason)
                )
            case m.RecordingWriteFailed(recording_id=rid) if rid in self._recordings:
                legs = self._recordings.pop(rid)
                self._emit(RecordingFailed(legs[0], rid, obs.path, obs.error, legs))
            case _:
                pass

    def _offered(self, call: IncomingCall) -> None:
        if call.leg_id in self._legs:
            return
        self._legs[call.leg_id] = LiveLeg(call.leg_id, False, LegState.OFFERED, offer=call.sdp)
        trunks = {t.name: t.proxy[0] for t in self.sip.engine.config.trunks.values()}
        offered = call_sdp.offered(call, trunks)
        self._emit(replace(offered, dialog=self.dialog_record(call.leg_id)))

    async def _remote_sdp(self, obs: Provisional | Answered | Reinvited) -> None:
        """A provisional, the answer (2xx / ACK) or a remote re-INVITE: follow its SDP."""
        leg = self._legs.get(obs.leg_id)
        if leg is None:
            return
        async with leg.lock:
            if self._legs.get(obs.leg_id) is not leg or leg.state in LegState.over():
                return
            media = bool(obs.sdp) and await self._leg_media.apply_remote(leg, obs.sdp or b"")
            match obs:
                case Provisional(status=status) if leg.outbound and not leg.answered:
                    leg.transition(LegState.RINGING)
                    record = self.dialog_record(leg.leg_id)
                    self._emit(LegProgress(leg.leg_id, status, media, dialog=record))
                case Answered():
                    leg.answered = True
                    leg.transition(LegState.ANSWERED)
                    self._emit(LegAnswered(leg.leg_id, dialog=self.dialog_record(leg.leg_id)))
                case _:
                    pass

    def _answer_reinvite(self, inv: Invitation, offer: bytes | None) -> bytes | None:
        """The SIP engine asks for our answer to a remote re-INVITE (sync hook)."""
        leg = self._legs.get(inv.leg_id)
        if leg is None or leg.local is None:
            return inv.local_sdp
        if offer:
            sdp = call_sdp.answer(call_sdp.parse(offer), leg.local, leg.local_sdp)
        else:  # offerless re-INVITE: we offer, the ACK carries the answer
            sdp = call_sdp.offer(leg.local, leg.local_sdp)
        leg.local_sdp = sdp
        return sdp.serialize()

    async def _ended(self, obs: Ended) -> None:
        leg = self._legs.get(obs.leg_id)
        if leg is None:
            return
        async with leg.lock:
            if self._legs.get(obs.leg_id) is not leg:
                return
            del self._legs[obs.leg_id]
            leg.transition(LegState.ENDED)
            await self._leg_media.destroy(leg)
        terminal: LegObservation
        if leg.outbound and not leg.answered and not leg.hangup_requested:
            terminal = LegFailed(leg.leg_id, obs.sip_status, cause_reason(obs.cause))
        else:
            local = leg.hangup_requested or leg.end_reason is not None or obs.by == "local"
            reason = leg.end_reason or cause_reason(obs.cause)
            by: EndedBy = "local" if local else "remote"
            terminal = LegEnded(leg.leg_id, by, obs.sip_status, reason)
        self._queue.put_nowait(_Report(terminal))

    async def _rtp_timeout(self, leg_id: str) -> None:
        leg = self._legs.get(leg_id)
        if leg is None:
            return
        async with leg.lock:
            if self._legs.get(leg_id) is not leg or leg.state is not LegState.ANSWERED:
                return
            log.info("leg %s: RTP timeout, hanging up", leg_id, extra=_about(leg_id))
            leg.end_reason = "rtp_timeout"
            await self._end_leg(leg)

    # ------------------------------------------------------------------ signalling
    async def dial(
        self,
        leg_id: str,
        target: str,
        *,
        caller_id: str | None = None,
        from_uri: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
        timeout: float = 60.0,  # noqa: ASYNC109 (ring time before CANCEL, not an await bound)
        group: str | None = None,
    ) -> None:
        """Open a media leg, offer it (PCMU, PCMA, telephone-event) and send the INVITE.

        Returns once the INVITE is on its way; progress comes as observations. Raises
        ``DuplicateLegError``, ``MediaFailure`` or ``SignallingError`` (unroutable
        target, bad header...), in which case no observation follows for ``leg_id``.
        ``timeout``: seconds until CANCEL (``LegFailed(487, "no_answer")``); ``group``:
        media placement hint (legs that will be mixed together share a group).
        """
        if leg_id in self._legs or leg_id in self.sip.engine.sessions:
            raise DuplicateLegError(f"leg {leg_id!r} exists")
        leg = LiveLeg(leg_id, True, LegState.DIALING)
        self._legs[leg_id] = leg
        async with leg.lock:
            try:
                create = m.CreateLeg(leg_id, direction="inactive", group=group)
                await self._leg_media.open(leg, create)
                assert leg.local is not None
                leg.local_sdp = call_sdp.offer(leg.local)
                dial = DialLeg(
                    leg_id,
                    target,
                    from_uri=from_uri,
                    caller_id=caller_id,
                    extra_headers=tuple(extra_headers),
                    sdp_offer=leg.local_sdp.serialize(),
                    timeout=timeout,
                )
                result = await self.sip.execute(dial)
                if result is None or result.status != 0:
                    status = result.status if result is not None else 500
                    reason = result.reason if result is not None else "no result"
                    raise SignallingError(f"dial {leg_id}: {status} {reason}", sip_status=status)
            except BaseException:
                leg.transition(LegState.ENDED)
                if self._legs.get(leg_id) is leg:
                    del self._legs[leg_id]
                await self._leg_media.destroy(leg)
                raise

    async def ring(
        self, leg_id: str, *, early_media: bool = False, group: str | None = None
    ) -> None:
        """180 Ringing, or 183 with our SDP answer when ``early_media`` (media leg opened)."""
        leg = self._inbound(leg_id)
        async with leg.lock:
            self._expect(leg, LegState.OFFERED, LegState.RINGING)
            sdp: bytes | None = None
            if early_media:
                if leg.local_sdp is None:
                    await self._leg_media.open_answer(leg, group)
                assert leg.local_sdp is not None
                sdp = leg.local_sdp.serialize()
            await self._signal(RingLeg(leg_id, 183 if early_media else 180, sdp))
            leg.transition(LegState.RINGING)

    async def answer(self, leg_id: str, *, group: str | None = None) -> None:
        """Open the media leg from the stored offer (or offer ourselves) and send 200 OK.

        ``LegAnswered`` follows with the ACK. An offer with no usable audio is refused
        with 488 (``NegotiationError``; ``LegEnded(reason="not_acceptable")`` follows).
        """
        leg = self._inbound(leg_id)
        async with leg.lock:
            self._expect(leg, LegState.OFFERED, LegState.RINGING)
            if leg.local_sdp is None:
                await self._leg_media.open_answer(leg, group)
            assert leg.local_sdp is not None
            await self._signal(AnswerLeg(leg_id, leg.local_sdp.serialize()))
            leg.transition(LegState.ANSWERING)

    async def reject(self, leg_id: str, code: int = 486, reason: str | None = None) -> None:
        """Refuse an offered inbound call with a final status (``LegEnded`` follows)."""
        if not 300 <= code <= 699:
            raise LegStateError(f"reject needs a final non-2xx status, not {code}")
        leg = self._inbound(leg_id)
        async with leg.lock:
            self._expect(leg, LegState.OFFERED, LegState.RINGING)
            leg.end_reason = "rejected"
            leg.transition(LegState.ENDING)
            await self._leg_media.destroy(leg)
            await self._signal(RejectLeg(leg_id, code, reason))

    async def hangup(self, leg_id: str) -> None:
        """CANCEL (outbound, unanswered), 480 (inbound, unanswered) or BYE; media leg closed.

        Idempotent while the leg is ending; ``LegEnded(by="local")`` follows.
        """
        leg = self._leg_media.get(leg_id)
        async with leg.lock:
            if leg.state in LegState.over():
                return
            leg.hangup_requested = True
            await self._end_leg(leg)

    async def _end_leg(self, leg: LiveLeg) -> None:
        leg.transition(LegState.ENDING)
        await self._leg_media.destroy(leg)
        result = await self.sip.execute(HangupLeg(leg.leg_id))
        if result is not None and result.status >= 300:
            log.info(
                "leg %s: hangup answered %d (already gone)", leg.leg_id, result.status,
                extra=_about(leg.leg_id),
            )  # fmt: skip

    # ------------------------------------------------------------------ media
    async def bridge(self, a: str, b: str) -> None:
        """Each leg hears the other (same codec: packets relayed as they arrive)."""
        await self._media_ops.bridge(a, b)

    async def unbridge(self, a: str, b: str) -> None:
        """Undo :meth:`bridge` (or :meth:`early_media`) between two legs."""
        await self._media_ops.unbridge(a, b)

    async def early_media(self, from_leg: str, to_leg: str) -> None:
        """One way: ``to_leg`` hears ``from_leg`` (e.g. a callee's 183 to the caller)."""
        await self._media_ops.early_media(from_leg, to_leg)

    async def hold(self, leg_id: str, music: m.Source | None = None) -> None:
        """The leg hears ``music`` (default hold music); whoever it is bridged to, silence."""
        await self._media_ops.hold(leg_id, music)

    async def unhold(self, leg_id: str) -> None:
        """Put a held leg back into its bridge / conference."""
        await self._media_ops.unhold(leg_id)

    async def play(
        self,
        leg_id: str,
        source: m.Source,
        *,
        loop: bool = False,
        interrupt_on_dtmf: bool = False,
        playback_id: str | None = None,
    ) -> str:
        """Play to a leg (over what it hears); ``PlaybackDone`` follows. Returns the id."""
        return await self._media_ops.play(
            leg_id, source, loop=loop, interrupt_on_dtmf=interrupt_on_dtmf, playback_id=playback_id
        )

    async def stop_play(self, leg_id: str, playback_id: str | None = None) -> None:
        """Stop one playback, or every playback of the leg (``PlaybackDone`` each)."""
        await self._media_ops.stop_play(leg_id, playback_id)

    async def record(
        self,
        leg_id: str,
        path: str,
        *,
        other_leg: str | None = None,
        mode: m.RecordMode = "mixed",
        beep: bool = False,
        max_duration_s: float | None = None,
        recording_id: str | None = None,
    ) -> m.RecordingStarted:
        """Record a leg (what it says and hears) or two legs; ``RecordingDone`` follows."""
        return await self._media_ops.record(
            leg_id,
            path,
            other_leg=other_leg,
            mode=mode,
            beep=beep,
            max_duration_s=max_duration_s,
            recording_id=recording_id,
        )

    async def pause_record(self, recording_id: str) -> None:
        """Pause a recording (paused time is left out of the file)."""
        await self._media_ops.pause_record(recording_id)

    async def resume_record(self, recording_id: str) -> None:
        """Resume a paused recording."""
        await self._media_ops.resume_record(recording_id)

    async def stop_record(self, recording_id: str) -> None:
        """Finalise a recording (``RecordingDone`` follows)."""
        await self._media_ops.stop_record(recording_id)

    async def stream_start(self, effect: m.StartAudioStream) -> None:
        """Stream a leg's audio to a WebSocket bot (contract §12); the media side's
        ``StreamStarted`` / ``StreamMark`` / ``StreamStopped`` are reported as they come."""
        await self._media_ops.stream_start(effect)

    async def stream_stop(self, stream_id: str) -> None:
        """End a stream (``StreamStopped`` follows)."""
        await self._media_ops.stream_stop(stream_id)

    async def supervise(
        self, supervisor: str, agent: str, mode: m.SuperviseMode = "listen"
    ) -> None:
        """listen: the supervisor hears the agent and what the agent hears; whisper: the
        agent hears the supervisor too; barge: so does whoever hears the agent."""
        await self._media_ops.supervise(supervisor, agent, mode)

    async def stop_supervise(self, supervisor: str) -> None:
        """End the supervision started by ``supervisor``."""
        await self._media_ops.stop_supervise(supervisor)

    async def conference_add(self, conference_id: str, leg_id: str, *, muted: bool = False) -> None:
        """Add a leg to a conference (created on first use); it hears everyone else."""
        await self._media_ops.conference_add(conference_id, leg_id, muted=muted)

    async def conference_remove(self, conference_id: str, leg_id: str) -> None:
        """Take a leg out of a conference (gone when empty)."""
        await self._media_ops.conference_remove(conference_id, leg_id)

    async def conference_mute(self, conference_id: str, leg_id: str, muted: bool = True) -> None:
        """Mute or unmute a member (a muted member still hears the others)."""
        await self._media_ops.conference_mute(conference_id, leg_id, muted)

    async def send_dtmf(
        self, leg_id: str, digits: str, *, duration_ms: int = 100, via: DtmfVia = "rfc4733"
    ) -> None:
        """Send digits: RFC 4733 (in-band if the peer has no telephone-event) or SIP INFO."""
        await self._media_ops.send_dtmf(leg_id, digits, duration_ms=duration_ms, via=via)

    # ------------------------------------------------------------------ in-dialog requests
    async def send_message(
        self,
        leg_id: str,
        body: bytes,
        content_type: str = "text/plain",
        *,
        target: str | None = None,
    ) -> int:
        """MESSAGE in the leg's dialog (or out of dialog to ``target``); final status."""
        return await self._requests.send_message(leg_id, body, content_type, target=target)

    async def send_notify(
        self,
        leg_id: str,
        event: str,
        body: bytes = b"",
        content_type: str = "text/plain",
        subscription_state: str = "active",
    ) -> int:
        """NOTIFY in the leg's dialog; final status."""
        return await self._requests.send_notify(
            leg_id, event, body, content_type, subscription_state
        )

    async def send_info(
        self, leg_id: str, body: bytes, content_type: str = "application/dtmf-relay"
    ) -> int:
        """INFO in the leg's dialog; final status."""
        return await self._requests.send_info(leg_id, body, content_type)

    async def options_ping(self, leg_id: str) -> tuple[int, float]:
        """OPTIONS in the leg's dialog: ``(status, rtt_ms)`` (408 when unanswered)."""
        return await self._requests.options_ping(leg_id)

    async def request(
        self,
        leg_id: str,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        event: str | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
        target: str | None = None,
    ) -> RequestResult:
        """MESSAGE, NOTIFY or OPTIONS in the leg's dialog (out of dialog to ``target``,
        MESSAGE and OPTIONS): the far end's final status, reason and round trip."""
        return await self._requests.request(
            leg_id,
            method,
            body=body,
            content_type=content_type,
            event=event,
            extra_headers=extra_headers,
            target=target,
        )

    async def send_refer(
        self, leg_id: str, refer_to: str, *, replaces_leg: str | None = None
    ) -> int:
        """REFER the leg's peer to ``refer_to`` (attended: ``replaces_leg``); final status."""
        return await self._requests.send_refer(leg_id, refer_to, replaces_leg=replaces_leg)

    async def reply_refer(
        self,
        leg_id: str,
        refer_id: str,
        status: int,
        *,
        reason: str | None = None,
        final: bool = True,
    ) -> None:
        """Report a received REFER's progress to its sender (NOTIFY with a sipfrag)."""
        await self._requests.reply_refer(leg_id, refer_id, status, reason=reason, final=final)

    # ------------------------------------------------------------------ restart recovery
    def dialog_record(self, leg_id: str) -> DialogRecord | None:
        """What a new process would need to end this leg's SIP dialog, as it stands now.

        ``outbound_early`` from ``dial`` until the answer (CANCEL), ``inbound_early`` from
        ``LegOffered`` until our 2xx (final response), ``confirmed`` after (BYE); None for
        an unknown or finished leg. The same record rides on ``LegOffered``,
        ``LegProgress`` and ``LegAnswered``; call this right after ``dial`` to log the
        CANCEL data before any provisional arrives.
        """
        inv = self.sip.engine.sessions.get(leg_id)
        return None if inv is None else stale.record_of(self.sip.engine, inv)

    def confirm(self, leg_id: str) -> None:
        """The service has stored ``leg_id``'s ``LegAnswered``: send the ACK of its 2xx
        if ``EngineConfig.ack_hold`` is holding it (nothing otherwise, or for an unknown
        or finished leg)."""
        inv = self.sip.engine.sessions.get(leg_id)
        if inv is not None:
            inv.confirm()

    async def end_stale(
        self,
        record: DialogRecord,
        *,
        reason_code: int = 480,
        reason_text: str = "Service restarted",
        timeout: float = stale.STALE_TIMEOUT,  # noqa: ASYNC109 (bound on the exchange)
        answer_sent: bool = False,
    ) -> int:
        """End a dialog a previous process left behind (BYE, CANCEL or final response).

        ``record`` comes from an observation that process reported (``from_dict`` of
        the logged ``to_dict``); no leg of this ``CallLegs`` is involved and no
        observation follows. Returns the final status (see
        :func:`sip_media.sip.stale.end_stale`: 200/481 for a BYE, 487/200/481 for a
        CANCEL, ``reason_code`` for a final response, 408 for none within ``timeout``,
        503 when the transport failed). ``answer_sent``: for an ``inbound_early``
        record of a leg we had started to answer (no ``LegAnswered`` logged), also BYE
        it. Raises ``DialogRecordError`` (``.code``:
        ``invalid_record``, ``destination_refused``, ``live_dialog``, ``no_transport``)
        when nothing is sent, ``ValueError`` for a bad ``reason_code``.
        """
        return await stale.end_stale(
            self.sip.engine,
            record,
            reason_code=reason_code,
            reason_text=reason_text,
            timeout=timeout,
            answer_sent=answer_sent,
        )

    # ------------------------------------------------------------------ helpers
    def _inbound(self, leg_id: str) -> LiveLeg:
        leg = self._leg_media.get(leg_id)
        if leg.outbound:
            raise LegStateError(f"leg {leg_id!r} is outbound")
        return leg

    @staticmethod
    def _expect(leg: LiveLeg, *states: LegState) -> None:
        if leg.state not in states:
            raise LegStateError(f"leg {leg.leg_id!r} is {leg.state.value}")

    async def _signal(self, effect: Effect) -> EffectResult | None:
        result = await self.sip.execute(effect)
        if result is not None and result.status >= 300:
            raise SignallingError(
                f"{type(effect).__name__} on {effect.leg_id}: {result.status} {result.reason}",
                sip_status=result.status,
            )
        return result


__all__ = ["CallLegs", "LegInfo", "LegState"]
