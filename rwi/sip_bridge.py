"""Observations from the SIP/media side into the service, in the order they happened.

``sip_media.calls.CallLegs`` reports what happens on each leg; this module turns each
report into a domain ``Observation`` and hands it to ``Service.observe`` (which makes it
durable before anything reacts). One queue and one task keep the order. Inbound calls
are routed here by the dialplan: offered to an RWI context, or refused at once.
It also builds the executor's view of the media sources.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any

from rwi.dialplan import Offer, route
from rwi.domain.model import Observation, State
from rwi.effects import Executor
from rwi.service import Service
from rwi.sip_settings import SipSettings
from sip_media.call_types import (
    DialogRecord,
    DialogRecordError,
    LegAnswered,
    LegDtmf,
    LegEnded,
    LegFailed,
    LegObservation,
    LegOffered,
    LegProgress,
    NotifyIn,
    PlaybackDone,
    RegistrationChanged,
)
from sip_media.calls import CallLegs
from sip_media.media import api as media
from sip_media.sip.bindings import Binding

log = logging.getLogger(__name__)

#: CallLegs' end reasons that the contract names differently
_END_REASONS = {"cancel": "canceled", "rtp_timeout": "rtp_timeout"}
_SIPFRAG = re.compile(rb"^\s*SIP/2\.0\s+([1-6][0-9][0-9])\b")
_TARGET = re.compile(r"^(sips?):([^@;?>\s]+)@([^;?>\s]+)(.*)$", re.IGNORECASE)


def sipfrag_status(body: bytes) -> int | None:
    """The status line of a REFER's NOTIFY body (``message/sipfrag``), if any."""
    match = _SIPFRAG.match(body)
    return int(match.group(1)) if match else None


def refer_target(target: str, names: set[str], here: tuple[str, int]) -> str:
    """A transfer target as a Refer-To URI the far end can use: ``sip:<user>@local`` and
    ``sip:<number>@<trunk>`` name things only this PBX knows, so they point at us (the
    far end's INVITE then goes through our dialplan); other URIs are passed as given."""
    match = _TARGET.match(target)
    if match is None or match.group(3).lower() not in names:
        return target
    scheme, user, _host, rest = match.groups()
    return f"{scheme}:{user}@{here[0]}:{here[1]}{rest}"


def media_source(source: dict[str, Any]) -> media.Source:
    """An RWI ``source`` object as the media engine's source."""
    kind = source.get("type", "file")
    if kind == "file":
        return media.FileSource(str(source["uri"]))
    if kind == "ringback":
        return media.ToneSource("ringback")
    if kind == "silence":
        return media.ToneSource("silence", seconds=float(source.get("duration_ms", 1000)) / 1000)
    return media.ToneSource(
        "tone",
        frequency=float(source.get("frequency", 1000.0)),
        seconds=float(source.get("duration_ms", 1000)) / 1000,
    )


def restored_bindings(state: State) -> list[Binding]:
    """The registrar's bindings as the log last saw them (expired ones are swept)."""
    return [Binding.from_dict(b) for bindings in state.registrations.values() for b in bindings]


def _with_dialog(data: dict[str, Any], dialog: DialogRecord | None) -> dict[str, Any]:
    """An observation's data with the leg's dialog record, for a restart after a crash."""
    if dialog is not None:
        data["dialog"] = dialog.to_dict()
    return data


def hold_music(name: str | None) -> media.Source:
    return media.HOLD_MUSIC if name is None else media.FileSource(name)


class SipBridge:
    def __init__(self, service: Service, legs: CallLegs, settings: SipSettings) -> None:
        self.service = service
        self.legs = legs
        self.settings = settings
        self._queue: asyncio.Queue[LegObservation | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stale_task: asyncio.Task[None] | None = None
        self._unsubscribe = legs.subscribe(self._queue.put_nowait)
        self.executor = Executor(
            legs, service.observe, media_source, hold_music, refer_to=self._refer_to
        )

    def start(self) -> None:
        self.service.executor = self.executor
        self.executor.start()
        self._task = asyncio.create_task(self._run(), name="rwi-sip-bridge")

    async def close(self) -> None:
        if self._stale_task is not None:
            self._stale_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stale_task
        self._unsubscribe()
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task
        await self.executor.close()
        self.service.executor = None

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            try:
                await self._handle(item)
            except Exception:  # one bad report must not stop the others
                log.exception("could not handle %r", item)

    def end_stale(self, stale: dict[str, tuple[dict[str, Any], bool]]) -> None:
        """End, in the background, the SIP dialogs of calls a previous run left live
        (a crash: nobody sent their BYE or CANCEL); each outcome is logged."""
        if stale:
            self._stale_task = asyncio.create_task(self._end_stale(stale), name="rwi-stale")

    async def _end_stale(self, stale: dict[str, tuple[dict[str, Any], bool]]) -> None:
        async def one(call_id: str, dialog: dict[str, Any], answered: bool) -> None:
            outcome: dict[str, Any] = {"call_id": call_id, "kind": dialog.get("kind")}
            try:
                record = DialogRecord.from_dict(dialog)
                status = await self.legs.end_stale(record, answer_sent=answered)
                outcome["status"] = status
            except (DialogRecordError, ValueError, OSError) as exc:
                outcome["error"] = str(exc)
            log.info("restart: ended the SIP dialog of call %s: %s", call_id, outcome)
            await self.service.observe(Observation("sip.stale.ended", outcome))

        await asyncio.gather(*(one(c, d, a) for c, (d, a) in stale.items()))

    def _refer_to(self, target: str) -> str:
        names = {"local", *(name.lower() for name in self.settings.engine.trunks)}
        return refer_target(target, names, self.legs.sip.local_address())

    async def _handle(self, obs: LegObservation) -> None:
        observation = await self._translate(obs)
        if observation is None:
            return
        await self.service.wait_healthy()
        # Queued, not awaited: the next report is decided while this one commits (the
        # writer keeps the order; effects and pushes still wait for durability; a
        # failure is logged and recovered from by the service).
        self.service.observe_soon(observation)

    async def _translate(self, obs: LegObservation) -> Observation | None:
        data: dict[str, Any]
        match obs:
            case LegOffered():
                return await self._offered(obs)
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
            case NotifyIn(event=event) if event.split(";")[0].strip().lower() == "refer":
                status = sipfrag_status(obs.body)
                if status is None:
                    return None
                return Observation("sip.refer.notify", {"call_id": obs.leg_id, "status": status})
            case RegistrationChanged():
                return Observation(
                    "sip.registration",
                    {"aor": obs.aor, "bindings": [b.to_dict() for b in obs.bindings]},
                )
            case _:
                return None

    async def _offered(self, obs: LegOffered) -> Observation | None:
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
        # Refused by the dialplan: log why, then answer the INVITE.
        code = routed.reject if routed.reject is not None else 404
        await self.service.observe(
            Observation("sip.call.refused", {**data, "sip_status": code, "why": "route"})
        )
        await self.legs.reject(obs.leg_id, code)
        return None
