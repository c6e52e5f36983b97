"""The executor built for ``sip_media``: RWI values as the SIP/media side takes them.

Outbound only (the inbound side is ``rwi.sip_ingest``): media sources and hold music
from RWI params, Refer-To URIs the far end can reach, ending a previous process's
dialogs from their logged records, and the held ACK of an answer once it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rwi.domain.effects import SipRequest, StartStream
from rwi.executor import Executor
from rwi.sip_settings import SipSettings
from sip_media.call_types import DialogRecord, DialogRecordError, LegAnswered, LegObservation
from sip_media.calls import CallLegs
from sip_media.media import api as media
from sip_media.media.wav import close_interrupted

_TARGET = re.compile(r"^(sips?):([^@;?>\s]+)@([^;?>\s]+)(.*)$", re.IGNORECASE)


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


def media_stream(effect: StartStream) -> media.StartAudioStream:
    """A planned stream as the media engine's effect (the first frame's fields ready)."""
    tracks = effect.tracks if effect.tracks in ("caller", "peer", "both") else "caller"
    return media.StartAudioStream(
        effect.stream_id,
        effect.call_id,
        effect.url,
        tracks,  # type: ignore[arg-type]
        effect.sample_rate,
        effect.mode == "duplex",
        effect.start,
    )


def hold_music(name: str | None) -> media.Source:
    return media.HOLD_MUSIC if name is None else media.FileSource(name)


def release_held_ack(legs: CallLegs) -> Callable[[LegObservation], None]:
    """What the ingest calls once a report is stored (``SipIngest(stored=...)``): the
    ACK of an outbound leg's 2xx waits for its ``LegAnswered`` to be durable
    (``EngineConfig.ack_hold``), so that a crash before leaves the far end retransmitting
    its 2xx for the next process to ACK and BYE; stored or not, it goes out now."""

    def stored(obs: LegObservation) -> None:
        if isinstance(obs, LegAnswered):
            legs.confirm(obs.leg_id)

    return stored


def sip_executor(legs: CallLegs, settings: SipSettings) -> Executor:
    """The executor driving ``legs``."""
    names = {"local", *(name.lower() for name in settings.engine.trunks)}

    def refer_to(target: str) -> str:
        return refer_target(target, names, legs.sip.local_address())

    async def end_stale(call_id: str, dialog: dict[str, Any], answered: bool) -> dict[str, Any]:
        outcome: dict[str, Any] = {"call_id": call_id, "kind": dialog.get("kind")}
        try:
            record = DialogRecord.from_dict(dialog)
            outcome["status"] = await legs.end_stale(record, answer_sent=answered)
        except (DialogRecordError, ValueError, OSError) as exc:
            outcome["error"] = str(exc)
        return outcome

    def close_file(path: str) -> tuple[float, int]:
        return close_interrupted(Path(path))

    async def send_request(effect: SipRequest) -> dict[str, Any]:
        result = await legs.request(
            effect.leg_id or "",
            effect.method,
            body=effect.body.encode(),
            content_type=effect.content_type,
            event=effect.event,
            extra_headers=effect.extra_headers,
            target=effect.destination,
        )
        return {"status": result.status, "reason": result.reason, "rtt_ms": result.rtt_ms}

    return Executor(
        legs,
        media_source,
        hold_music,
        refer_to=refer_to,
        end_stale=end_stale,
        close_file=close_file,
        send_request=send_request,
        stream=media_stream,
    )
