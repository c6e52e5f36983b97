"""Observations from the SIP/media side into the service, in the order they happened.

Inbound only (the outbound side is ``rwi.sip_executor``): ``sip_media.calls.CallLegs``
reports what happens on each leg; this module turns each report into a domain
``Observation`` and hands it to the service (which makes it durable before anything
reacts). One queue and one task keep the order. Inbound calls are routed here by the
dialplan: offered to an RWI context, to a local user, or refused (the refusal is an
observation too; its SIP answer is planned from it like every other effect).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from typing import Any, Protocol

from rwi.dialplan import Offer, Routed, route
from rwi.domain.model import Observation, State
from rwi.sip_settings import SipSettings
from sip_media.call_sdp import party, uri_user
from sip_media.call_types import (
    DialogRecord,
    LegAnswered,
    LegDtmf,
    LegEnded,
    LegFailed,
    LegObservation,
    LegOffered,
    LegProgress,
    MessageIn,
    NotifyIn,
    PlaybackDone,
    RecordingDone,
    RecordingFailed,
    RegistrationChanged,
)
from sip_media.media import api as m
from sip_media.sip.bindings import Binding

log = logging.getLogger(__name__)

#: CallLegs' end reasons that the contract names differently
_END_REASONS = {"cancel": "canceled", "rtp_timeout": "rtp_timeout"}
_SIPFRAG = re.compile(rb"^\s*SIP/2\.0\s+([1-6][0-9][0-9])\b")


def sipfrag_status(body: bytes) -> int | None:
    """The status line of a REFER's NOTIFY body (``message/sipfrag``), if any."""
    match = _SIPFRAG.match(body)
    return int(match.group(1)) if match else None


def file_size(path: str) -> int | None:
    """The size of a finished recording on disk (None if it is not there)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _text(body: bytes) -> str:
    """A request body as the log and the wire carry it (JSON text)."""
    return body.decode("utf-8", "replace")


def restored_bindings(state: State) -> list[Binding]:
    """The registrar's bindings as the log last saw them (expired ones are swept)."""
    return [Binding.from_dict(b) for bindings in state.registrations.values() for b in bindings]


def route_message(settings: SipSettings, request_uri: str, from_: str, to: str) -> Routed:
    """Where the dialplan sends an out-of-dialog MESSAGE (as it would an INVITE)."""
    offer = Offer(user=uri_user(request_uri), caller=party(from_)[0], callee=party(to)[0])
    return route(settings.routes, offer)


def message_filter(settings: SipSettings) -> Callable[[str, str, str], bool]:
    """Whether an out-of-dialog MESSAGE has a route to a context: given to
    ``CallLegs`` (``accept_message``), which answers the others 404."""

    def accepts(request_uri: str, from_: str, to: str) -> bool:
        return route_message(settings, request_uri, from_, to).context is not None

    return accepts


def _with_dialog(data: dict[str, Any], dialog: DialogRecord | None) -> dict[str, Any]:
    """An observation's data with the leg's dialog record, for a restart after a crash."""
    if dialog is not None:
        data["dialog"] = dialog.to_dict()
    return data


class ObservationSink(Protocol):
    """Where observations go (``rwi.service.Service``)."""

    async def wait_healthy(self) -> None: ...
    def observe_soon(self, observation: Observation) -> asyncio.Future[list[int]]: ...


class LegReports(Protocol):
    """What the ingest needs of ``sip_media.calls.CallLegs``: its reports, nothing else
    (everything sent back goes through the executor, ``rwi.sip_executor``)."""

    def subscribe(self, callback: Callable[[LegObservation], None]) -> Callable[[], None]: ...


#: Told of a report once its observation is stored, or failed to be (``rwi.runtime``
#: wires the outbound side here: ``rwi.sip_executor.release_held_ack``).
Stored = Callable[[LegObservation], None]


def _nothing(obs: LegObservation) -> None:
    return None


class SipIngest:
    """Reports of ``legs`` in, as observations for ``sink``, one at a time in order.

    It subscribes as soon as it is built (so nothing reported while the service starts
    is lost) and hands reports on once ``start`` gives it the sink; ``stored`` is told
    of each report once its observation is durable (or failed to be)."""

    def __init__(
        self, legs: LegReports, settings: SipSettings, *, stored: Stored = _nothing
    ) -> None:
        self.settings = settings
        self._stored = stored
        self._queue: asyncio.Queue[LegObservation | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe = legs.subscribe(self._queue.put_nowait)

    def start(self, sink: ObservationSink) -> None:
        self._task = asyncio.create_task(self._run(sink), name="rwi-sip-ingest")

    async def close(self) -> None:
        self._unsubscribe()
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task

    async def _run(self, sink: ObservationSink) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            try:
                await self._handle(sink, item)
            except Exception:  # one bad report must not stop the others
                log.exception("could not handle %r", item)

    async def _handle(self, sink: ObservationSink, obs: LegObservation) -> None:
        observation = self._translate(obs)
        if observation is None:
            return
        await sink.wait_healthy()
        # Queued, not awaited: the next report is decided while this one commits (the
        # writer keeps the order; effects and pushes still wait for durability; a
        # failure is logged and recovered from by the service).
        stored = sink.observe_soon(observation)
        # What waits for durability on the SIP side (an answered leg's held ACK) is
        # released by ``stored``, stored or not: the call goes on.
        stored.add_done_callback(lambda _: self._stored(obs))

    def _translate(self, obs: LegObservation) -> Observation | None:
        data: dict[str, Any]
        match obs:
            case LegOffered():
                return self._offered(obs)
            case LegProgress():
                data = {"call_id": obs.leg_id, "status": obs.status, "sdp": obs.early_media}
                return Observation("sip.call.progress", _with_dialog(data, obs.dialog))
            case LegAnswered():
                data = {"call_id": obs.leg_id}
                return Observation("sip.call.answered", _with_dialog(data, obs.dialog))
            case LegFailed():
                return Observation(
                    "sip.call.failed",
                    {"call_id": obs.leg_id, "sip_status": obs.sip_status, "cause": obs.reason},
                )
            case LegEnded():
                data = {
                    "call_id": obs.leg_id,
                    "sip_status": obs.sip_status,
                    "by": obs.by,
                    "cause": obs.reason,
                }
                if obs.reason in _END_REASONS:
                    data["reason"] = _END_REASONS[obs.reason]
                return Observation("sip.call.ended", data)
            case LegDtmf():
                return Observation(
                    "sip.dtmf",
                    {
                        "call_id": obs.leg_id,
                        "digit": obs.digit,
                        "duration_ms": obs.duration_ms,
                        "via": obs.via,
                    },
                )
            case PlaybackDone():
                return Observation(
                    "media.playback.finished",
                    {
                        "call_id": obs.leg_id,
                        "playback_id": obs.playback_id,
                        "interrupted": obs.interrupted,
                        "digit": obs.digit,
                    },
                )
            case RecordingDone():
                return Observation(
                    "media.recording.finished",
                    {
                        "recording_id": obs.recording_id,
                        "call_id": obs.leg_id,
                        "path": obs.path,
                        "duration_secs": obs.duration_s,
                        "size_bytes": file_size(obs.path),
                        "reason": obs.reason,
                    },
                )
            case m.StreamStarted():
                return Observation(
                    "media.stream.opened", {"stream_id": obs.stream_id, "call_id": obs.leg_id}
                )
            case m.StreamMark():
                return Observation(
                    "media.stream.marked",
                    {"stream_id": obs.stream_id, "call_id": obs.leg_id, "name": obs.name},
                )
            case m.StreamStopped():
                return Observation(
                    "media.stream.ended",
                    {
                        "stream_id": obs.stream_id,
                        "call_id": obs.leg_id,
                        "reason": obs.reason,
                        "error": obs.error,
                        "frames_sent": obs.frames_sent,
                        "frames_received": obs.frames_received,
                        "frames_dropped": obs.frames_dropped,
                    },
                )
            case RecordingFailed():
                return Observation(
                    "media.recording.failed",
                    {"recording_id": obs.recording_id, "call_id": obs.leg_id, "error": obs.error},
                )
            case NotifyIn(event=event) if event.split(";")[0].strip().lower() == "refer":
                status = sipfrag_status(obs.body)
                if status is None:
                    return None
                return Observation("sip.refer.notify", {"call_id": obs.leg_id, "status": status})
            case NotifyIn():
                data = {
                    "call_id": obs.leg_id,
                    "event": obs.event,
                    "content_type": obs.content_type,
                    "body": _text(obs.body),
                    "subscription_state": obs.subscription_state,
                }
                return Observation("sip.notify.in", data)
            case MessageIn(leg_id=""):
                return self._page(obs)
            case MessageIn():
                data = {
                    "call_id": obs.leg_id,
                    "method": obs.method,
                    "content_type": obs.content_type,
                    "body": _text(obs.body),
                }
                return Observation("sip.message.in", data)
            case RegistrationChanged():
                return Observation(
                    "sip.registration",
                    {"aor": obs.aor, "bindings": [b.to_dict() for b in obs.bindings]},
                )
            case _:
                return None

    def _page(self, obs: MessageIn) -> Observation | None:
        """An out-of-dialog MESSAGE, routed by the dialplan like an INVITE: only one
        routed to a context reaches here (``message_filter`` answered the others 404)."""
        routed = route_message(self.settings, obs.request_uri, obs.from_, obs.to)
        if routed.context is None:
            return None
        data = {
            "context": routed.context,
            "route": routed.rule,
            "from": party(obs.from_)[0],
            "to": party(obs.to)[0],
            "content_type": obs.content_type,
            "body": _text(obs.body),
        }
        return Observation("sip.message.in", data)

    def _offered(self, obs: LegOffered) -> Observation | None:
        headers = {
            name: value
            for name, value in obs.headers.items()
            if name.lower() in self.settings.header_whitelist
        }
        routed = route(
            self.settings.routes,
            Offer(
                user=obs.request_uri_user, caller=obs.caller, callee=obs.callee, headers=obs.headers
            ),
        )
        data: dict[str, Any] = {
            "call_id": obs.leg_id,
            "caller": obs.caller,
            "callee": obs.callee,
            "trunk": obs.trunk,
            "headers": headers,
            "route": routed.rule,
        }
        if routed.context is not None:
            offered = {**data, "context": routed.context}
            return Observation("sip.call.offered", _with_dialog(offered, obs.dialog))
        if routed.user is not None:
            offered = {**data, "route_user": routed.user}
            return Observation("sip.call.offered", _with_dialog(offered, obs.dialog))
        # Refused by the dialplan: logged with why; the INVITE's answer is planned from
        # it (``rwi.domain.calls.plans``).
        code = routed.reject if routed.reject is not None else 404
        return Observation("sip.call.refused", {**data, "sip_status": code, "why": "route"})
