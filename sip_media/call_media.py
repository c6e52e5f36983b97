"""Leg-keyed pass-throughs of the call-leg layer: media operations and in-dialog requests.

Where it sits: collaborators that :class:`sip_media.calls.CallLegs` builds and holds.
:class:`LegMedia` owns nothing but the media side of the legs in the leg table it is
given: it opens, updates (from the far end's SDP) and closes each leg's media leg, and
remembers which playbacks and recordings belong to which legs. :class:`MediaOps` maps
bridge, hold, play, record, supervise, conference and DTMF effects, named by leg ids,
onto the media engine (``sip_media.media.api``); :class:`RequestOps` sends MESSAGE,
NOTIFY, INFO, OPTIONS and REFER inside a leg's dialog through the SIP adapter and
returns the peer's final status. Errors come out as the call-leg layer's
:class:`~sip_media.call_types.CallError` tree.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from sip_media import call_sdp
from sip_media.adapter import SipAdapter
from sip_media.adapter_types import (
    Effect,
    EffectResult,
    RejectLeg,
    ReplyRefer,
    SendInfo,
    SendMessage,
    SendNotify,
    SendOptions,
    SendRefer,
)
from sip_media.call_legstate import LegState, LiveLeg
from sip_media.call_types import (
    CallError,
    DtmfVia,
    LegStateError,
    MediaFailure,
    NegotiationError,
    RequestResult,
    SignallingError,
)
from sip_media.call_types import UnknownLegError as UnknownLeg
from sip_media.media import api as m
from sip_media.media.errors import MediaError, UnknownIdError
from sip_media.media.service import MediaService
from sip_media.sip.errors import SipError

log = logging.getLogger(__name__)


class LegMedia:
    """The media side of the live legs: open it from SDP, follow the far end's SDP,
    close it; shared by :class:`~sip_media.calls.CallLegs` and its other collaborators."""

    def __init__(self, sip: SipAdapter, media: MediaService, legs: dict[str, LiveLeg]) -> None:
        self.sip = sip
        self.media = media
        self.legs = legs
        self.playbacks: dict[str, str] = {}  # playback id -> leg id
        self.recordings: dict[str, tuple[str, ...]] = {}  # recording id -> legs

    def get(self, leg_id: str) -> LiveLeg:
        """The live leg, else ``UnknownLegError``."""
        leg = self.legs.get(leg_id)
        if leg is None:
            raise UnknownLeg(f"no live leg {leg_id!r}")
        return leg

    async def execute(self, effect: m.Effect) -> m.Result:
        """Apply a media effect; ``MediaError`` becomes ``MediaFailure``."""
        try:
            return await self.media.execute(effect)
        except MediaError as exc:
            raise MediaFailure(str(exc), media_code=exc.code) from exc

    async def on_legs(self, leg_ids: Iterable[str], effect: m.Effect) -> None:
        """Apply ``effect`` once every leg it names is known to be live."""
        for leg_id in leg_ids:
            self.get(leg_id)
        await self.execute(effect)

    async def apply_remote(self, leg: LiveLeg, body: bytes) -> bool:
        """Point the media leg at the far end's SDP; False when it is unusable."""
        if leg.local_sdp is None:
            return False
        try:
            params = call_sdp.params(leg.local_sdp, call_sdp.parse(body))
        except SipError as exc:
            log.info(
                "leg %s: unusable remote SDP (%s)", leg.leg_id, exc, extra={"call_id": leg.leg_id}
            )
            return False
        old = leg.applied
        if params == old:
            return True
        remote = params.remote if params.remote != (old.remote if old else None) else None
        update = m.UpdateLeg(
            leg.leg_id,
            remote_ip=remote[0] if remote else None,
            remote_port=remote[1] if remote else None,
            payload_type=params.payload_type,
            telephone_event_pt=params.telephone_event_pt,
            direction=params.direction,
        )
        await self.execute(update)
        leg.applied = params if params.remote else call_sdp.keep_remote(params, old)
        return True

    async def open(self, leg: LiveLeg, create: m.CreateLeg) -> None:
        result = await self.execute(create)
        assert isinstance(result, m.LegCreated)
        leg.local = call_sdp.local_media(result.local_ip, result.local_port)

    async def open_answer(self, leg: LiveLeg, group: str | None) -> None:
        """Create the media leg for an inbound call and our SDP (answer, or offer)."""
        if not leg.offer:  # INVITE without SDP: offer in the 2xx, answer in the ACK
            await self.open(leg, m.CreateLeg(leg.leg_id, direction="inactive", group=group))
            assert leg.local is not None
            leg.local_sdp = call_sdp.offer(leg.local)
            return
        try:
            remote = call_sdp.parse(leg.offer)
            plan = call_sdp.plan_answer(remote)
        except SipError as exc:
            leg.end_reason = "not_acceptable"
            leg.transition(LegState.ENDING)
            await self.sip.execute(RejectLeg(leg.leg_id, 488))
            raise NegotiationError(f"leg {leg.leg_id}: {exc.reason}") from exc
        create = m.CreateLeg(
            leg.leg_id,
            remote_ip=plan.remote[0] if plan.remote else None,
            remote_port=plan.remote[1] if plan.remote else None,
            payload_type=plan.payload_type,
            telephone_event_pt=plan.telephone_event_pt,
            direction=plan.direction,
            group=group,
        )
        await self.open(leg, create)
        assert leg.local is not None
        leg.local_sdp = call_sdp.answer(remote, leg.local)
        leg.applied = plan

    async def destroy(self, leg: LiveLeg) -> None:
        if leg.local is None or leg.media_closed:
            return
        leg.media_closed = True
        with contextlib.suppress(CallError):
            await self.execute(m.DestroyLeg(leg.leg_id))


class MediaOps:
    """Who hears what: bridges, hold, players, recorders, supervision, conferences."""

    def __init__(self, legs: LegMedia, sip: SipAdapter) -> None:
        self.legs = legs
        self.sip = sip

    async def bridge(self, a: str, b: str) -> None:
        """Each leg hears the other (same codec: packets relayed as they arrive)."""
        await self.legs.on_legs((a, b), m.Connect(a, b))

    async def unbridge(self, a: str, b: str) -> None:
        """Undo :meth:`bridge` (or :meth:`early_media`) between two legs."""
        await self.legs.on_legs((a, b), m.Disconnect(a, b))

    async def early_media(self, from_leg: str, to_leg: str) -> None:
        """One way: ``to_leg`` hears ``from_leg`` (e.g. a callee's 183 to the caller)."""
        await self.legs.on_legs((from_leg, to_leg), m.PassThroughEarlyMedia(from_leg, to_leg))

    async def hold(self, leg_id: str, music: m.Source | None = None) -> None:
        """The leg hears ``music`` (default hold music); whoever it is bridged to, silence."""
        await self.legs.on_legs((leg_id,), m.HoldLeg(leg_id, music or m.HOLD_MUSIC))

    async def unhold(self, leg_id: str) -> None:
        """Put a held leg back into its bridge / conference."""
        await self.legs.on_legs((leg_id,), m.UnholdLeg(leg_id))

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
        leg = self.legs.get(leg_id)
        play = m.StartPlayback(leg_id, source, loop, interrupt_on_dtmf, playback_id or m.new_id())
        await self.legs.execute(play)
        self.legs.playbacks[play.playback_id] = leg_id
        leg.playbacks.add(play.playback_id)
        return play.playback_id

    async def stop_play(self, leg_id: str, playback_id: str | None = None) -> None:
        """Stop one playback, or every playback of the leg (``PlaybackDone`` each)."""
        leg = self.legs.get(leg_id)
        wanted = [playback_id] if playback_id is not None else sorted(leg.playbacks)
        for pid in wanted:
            if self.legs.playbacks.get(pid) != leg_id:
                continue
            try:
                await self.legs.media.execute(m.StopPlayback(pid))
            except UnknownIdError:
                continue  # finished meanwhile: its PlaybackDone is on its way
            except MediaError as exc:
                raise MediaFailure(str(exc), media_code=exc.code) from exc

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
        """Record a leg (what it says and hears) or two legs; ``RecordingDone`` follows.

        ``path`` is relative to the media recordings directory (escapes are refused).
        """
        legs = (leg_id,) if other_leg is None else (leg_id, other_leg)
        rid = recording_id or m.new_id()
        effect = m.Record(legs, path, mode, beep, max_duration_s, rid)
        self.legs.recordings[rid] = legs
        try:
            for leg in legs:
                self.legs.get(leg)
            result = await self.legs.execute(effect)
        except BaseException:
            self.legs.recordings.pop(rid, None)
            raise
        assert isinstance(result, m.RecordingStarted)
        return result

    async def stream_start(self, effect: m.StartAudioStream) -> None:
        """Stream a leg's audio to a WebSocket bot; ``m.StreamStarted`` or
        ``m.StreamStopped`` follows (a URL outside the allow-list is refused here)."""
        self.legs.get(effect.leg_id)
        await self.legs.execute(effect)

    async def stream_stop(self, stream_id: str) -> None:
        """End a stream (``m.StreamStopped`` follows)."""
        await self.legs.execute(m.StopAudioStream(stream_id))

    async def pause_record(self, recording_id: str) -> None:
        """Pause a recording (paused time is left out of the file)."""
        await self.legs.execute(m.PauseRecord(recording_id))

    async def resume_record(self, recording_id: str) -> None:
        """Resume a paused recording."""
        await self.legs.execute(m.ResumeRecord(recording_id))

    async def stop_record(self, recording_id: str) -> None:
        """Finalise a recording (``RecordingDone`` follows)."""
        await self.legs.execute(m.StopRecord(recording_id))

    async def supervise(
        self, supervisor: str, agent: str, mode: m.SuperviseMode = "listen"
    ) -> None:
        """listen: the supervisor hears the agent and what the agent hears; whisper: the
        agent hears the supervisor too; barge: so does whoever hears the agent."""
        effect = m.SuperviseLeg(supervisor, agent, mode)
        await self.legs.on_legs((supervisor, agent), effect)

    async def stop_supervise(self, supervisor: str) -> None:
        """End the supervision started by ``supervisor``."""
        await self.legs.execute(m.StopSupervising(supervisor))

    async def conference_add(self, conference_id: str, leg_id: str, *, muted: bool = False) -> None:
        """Add a leg to a conference (created on first use); it hears everyone else."""
        await self.legs.on_legs((leg_id,), m.JoinConference(conference_id, leg_id, muted))

    async def conference_remove(self, conference_id: str, leg_id: str) -> None:
        """Take a leg out of a conference (gone when empty)."""
        await self.legs.execute(m.LeaveConference(conference_id, leg_id))

    async def conference_mute(self, conference_id: str, leg_id: str, muted: bool = True) -> None:
        """Mute or unmute a member (a muted member still hears the others)."""
        await self.legs.execute(m.MuteConferenceMember(conference_id, leg_id, muted))

    async def send_dtmf(
        self, leg_id: str, digits: str, *, duration_ms: int = 100, via: DtmfVia = "rfc4733"
    ) -> None:
        """Send digits: RFC 4733 (in-band if the peer has no telephone-event) or SIP INFO."""
        self.legs.get(leg_id)
        if via != "info":
            await self.legs.execute(m.SendDtmf(leg_id, digits, duration_ms))
            return
        for digit in digits:
            result = await self.sip.execute(SendInfo.dtmf(leg_id, digit, duration_ms))
            if result is None or not 200 <= result.status < 300:
                status = result.status if result is not None else 500
                raise SignallingError(f"INFO {digit!r} on {leg_id}: {status}", sip_status=status)


class RequestOps:
    """In-dialog requests: the peer's final status is returned, not raised."""

    def __init__(self, legs: LegMedia, sip: SipAdapter) -> None:
        self.legs = legs
        self.sip = sip

    async def _request(self, effect: Effect) -> EffectResult:
        if effect.leg_id:
            self.legs.get(effect.leg_id)
        result = await self.sip.execute(effect)
        if result is None:
            raise SignallingError(f"{type(effect).__name__}: no result")
        return result

    async def send_message(
        self,
        leg_id: str,
        body: bytes,
        content_type: str = "text/plain",
        *,
        target: str | None = None,
    ) -> int:
        """MESSAGE in the leg's dialog (or out of dialog to ``target``); final status."""
        return (await self._request(SendMessage(leg_id, body, content_type, target))).status

    async def send_notify(
        self,
        leg_id: str,
        event: str,
        body: bytes = b"",
        content_type: str = "text/plain",
        subscription_state: str = "active",
    ) -> int:
        """NOTIFY in the leg's dialog; final status."""
        effect = SendNotify(leg_id, event, body, content_type, subscription_state)
        return (await self._request(effect)).status

    async def send_info(
        self, leg_id: str, body: bytes, content_type: str = "application/dtmf-relay"
    ) -> int:
        """INFO in the leg's dialog; final status."""
        return (await self._request(SendInfo(leg_id, body, content_type))).status

    async def options_ping(self, leg_id: str) -> tuple[int, float]:
        """OPTIONS in the leg's dialog: ``(status, rtt_ms)`` (408 when unanswered)."""
        result = await self._request(SendOptions(leg_id))
        return result.status, round((result.rtt or 0.0) * 1000.0, 3)

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
        """MESSAGE, NOTIFY or OPTIONS in the leg's dialog, or MESSAGE/OPTIONS out of
        dialog to ``target``: the far end's final status (408 unanswered), its reason
        phrase and the round trip in ms."""
        ctype = content_type or "text/plain"
        effect: Effect
        if method == "MESSAGE":
            effect = SendMessage(leg_id, body, ctype, target, extra_headers)
        elif method == "NOTIFY" and target is None:
            effect = SendNotify(leg_id, event or "", body, ctype, extra_headers=extra_headers)
        elif method == "OPTIONS":
            effect = SendOptions(leg_id, target, extra_headers)
        else:
            raise LegStateError(f"cannot send {method} {'out of' if target else 'in'} dialog")
        result = await self._request(effect)
        rtt_ms = None if result.rtt is None else round(result.rtt * 1000, 3)
        return RequestResult(result.status, result.reason, rtt_ms)

    async def send_refer(
        self, leg_id: str, refer_to: str, *, replaces_leg: str | None = None
    ) -> int:
        """REFER the leg's peer to ``refer_to`` (attended: ``replaces_leg``); final status."""
        if replaces_leg is not None:
            self.legs.get(replaces_leg)
        return (await self._request(SendRefer(leg_id, refer_to, replaces_leg))).status

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
        if not 100 <= status <= 699:
            raise LegStateError(f"bad REFER status {status}")
        self.legs.get(leg_id)
        result = await self.sip.execute(ReplyRefer(leg_id, refer_id, status, reason, final))
        if result is not None and result.status >= 300:
            raise SignallingError(
                f"REFER reply on {leg_id}: {result.status}", sip_status=result.status
            )
