"""Recordings (contract §5 Recording, §8): ``record.start|pause|resume|stop``, decided
purely, and what the media side reporting a recording's end means.

A recording belongs to the **call it was started on**: the media engine records that
leg's own audio (what its far end says, and what it is sent: whoever it is bridged to,
hold music, a consultation leg...), so it follows the call through hold, unbridge,
re-bridge and transfers without being moved, until ``record.stop``, its
``max_duration_secs`` or the call's end (the engine finalises it when the leg goes).

Its events are events of that call (stream ``call:<id>``, delivered like call events,
read by the call-history projection); the aggregate is ``state.recordings`` by
recording id. The end is always reported by the media side (``media.recording.finished``
with the seconds in the file and its size), so ``record.stopped`` says what is on disk:
``record.stop`` and a restart only ask for it (``record.stopping``, not pushed). A
recording a previous process left open is closed at start (the WAV header fixed from
the bytes on disk) and stopped with ``reason: system``; a clean stop stops its running
recordings through the media side first, so it logs their ``record.stopped`` itself.
"""

from __future__ import annotations

import posixpath
from typing import Any

from rwi.domain.aggregates import RecordingState
from rwi.domain.call import CallStatus
from rwi.domain.calls.delivery import CallResume, audience
from rwi.domain.calls.legs import owned, seconds_between
from rwi.domain.effects import (
    CloseRecordingFile,
    Effect,
    PauseRecording,
    ResumeRecording,
    StartRecording,
    StopRecording,
)
from rwi.domain.feature import Feature, Handler, Rule
from rwi.domain.model import Command, Decision, Emit, EventLike, Observation, State, call_stream
from rwi.errors import RwiError

RECORDABLE = (CallStatus.ANSWERED, CallStatus.BRIDGED, CallStatus.HELD)
#: ``record.stopped``'s reason for why the media side says a recording it was not asked
#: to stop ended: its limit, its leg gone (the call's hangup), the engine closing
MEDIA_REASONS = {
    "max_duration": "max_duration",
    "leg_gone": "hangup",
    "closed": "system",
    "stop": "rwi",
}
#: Reports logged before the media side said why guessed it from the file's length: a
#: recording this close to its ``max_duration_secs`` was taken as ended by it.
LEGACY_MAX_DURATION_SLACK = 0.05


def storage_file(path: str) -> str:
    """A ``storage.path`` as a name inside the recordings directory; escaping it (absolute,
    ``..``, ``~``, NUL or backslash) is ``invalid_params``. Symlinks leading out are
    refused again by the media engine when it opens the file (``record.failed``)."""
    bad = (
        not path
        or "\x00" in path
        or "\\" in path
        or path.startswith(("/", "~"))
        or ".." in path.split("/")
    )
    normal = posixpath.normpath(path) if not bad else ""
    if bad or normal in (".", "") or normal.startswith("../"):
        raise RwiError(
            "invalid_params",
            f"params.storage.path {path[:100]!r} must name a file inside the recordings directory",
        )
    return normal


def running(state: State, call_id: str) -> RecordingState | None:
    """The recording of ``call_id`` (one at a time), if any."""
    for rec in state.recordings.values():
        if rec.call_id == call_id:
            return rec
    return None


def _event(rec: RecordingState, kind: str, **data: Any) -> Emit:
    return Emit(
        call_stream(rec.call_id),
        kind,
        {"call_id": rec.call_id, "recording_id": rec.recording_id, **data},
    )


def paused_secs(rec: RecordingState, now: str) -> float:
    """Seconds paused so far (a pause still open counts until ``now``)."""
    return round(sum(seconds_between(a, b or now) for a, b in rec.pauses if a), 3)


# --- commands ------------------------------------------------------------------------


def start(state: State, command: Command, ts: str) -> Decision:
    params = command.params
    call = owned(state, command, params["call_id"])
    call.require("record.start", *RECORDABLE)
    current = running(state, call.call_id)
    if current is not None:
        raise RwiError(
            "invalid_state",
            f"call {call.call_id!r} is already recorded by {current.recording_id!r}; "
            "record.start needs it stopped first",
        )
    recording_id = f"rec-{command.nonce[:12]}"
    storage = params.get("storage") or {}
    if "path" in storage:
        file = storage_file(storage["path"])
    else:
        file = f"{call.call_id}-{recording_id}.wav"
    for other in state.recordings.values():
        if other.file == file:
            raise RwiError(
                "invalid_params",
                f"params.storage.path {file!r} is being written by {other.recording_id!r}",
            )
    data: dict[str, Any] = {
        "call_id": call.call_id,
        "recording_id": recording_id,
        "mode": params.get("mode", "mixed"),
        "beep": bool(params.get("beep", False)),
        "max_duration_secs": params.get("max_duration_secs"),
        "file": file,
        "path": posixpath.join(state.policy.recordings_dir, file),
        "owner": command.connection_id,
        "started_at": ts,
    }
    event = Emit(call_stream(call.call_id), "record.started", data)
    return Decision((event,), {"recording_id": recording_id, "call_id": call.call_id,
                               "path": data["path"]})  # fmt: skip


def _recording(state: State, command: Command, action: str) -> RecordingState:
    """The recording a pause/resume/stop names (its call's, and ``recording_id`` if given)."""
    call = owned(state, command, command.params["call_id"])
    rec = running(state, call.call_id)
    wanted = command.params.get("recording_id")
    if rec is None or (wanted is not None and wanted != rec.recording_id):
        named = f"{wanted!r}" if wanted is not None else "running"
        raise RwiError("not_found", f"no {named} recording on call {call.call_id!r}")
    if rec.stopping is not None:
        raise RwiError(
            "invalid_state",
            f"recording {rec.recording_id!r} is stopping; {action} needs it running",
        )
    return rec


def pause(state: State, command: Command, ts: str) -> Decision:
    rec = _recording(state, command, "record.pause")
    if rec.paused:
        raise RwiError(
            "invalid_state",
            f"recording {rec.recording_id!r} is paused; record.pause needs it recording",
        )
    return Decision(
        (_event(rec, "record.paused", paused_at=ts),), {"recording_id": rec.recording_id}
    )


def resume(state: State, command: Command, ts: str) -> Decision:
    rec = _recording(state, command, "record.resume")
    if not rec.paused:
        raise RwiError(
            "invalid_state",
            f"recording {rec.recording_id!r} is recording; record.resume needs it paused",
        )
    event = _event(rec, "record.resumed", resumed_at=ts, paused_secs=paused_secs(rec, ts))
    return Decision((event,), {"recording_id": rec.recording_id})


def stop(state: State, command: Command, ts: str) -> Decision:
    rec = _recording(state, command, "record.stop")
    # ``record.stopped`` follows once the media side has closed the file
    event = _event(rec, "record.stopping", reason="rwi")
    return Decision((event,), {"recording_id": rec.recording_id})


HANDLERS: dict[str, Handler] = {
    "record.start": start,
    "record.pause": pause,
    "record.resume": resume,
    "record.stop": stop,
}


# --- what the media side reports -------------------------------------------------------


def finished(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """The media side closed the file: by ``record.stop``, at a restart, at its
    ``max_duration_secs``, or because its call's leg went away. A stop someone asked for
    (``record.stop``, a restart, a clean stop) keeps its reason; otherwise the media
    side's ``reason`` says which (never guessed from the file's length)."""
    rec = state.recordings.get(obs.data["recording_id"])
    if rec is None:
        return ()
    duration = float(obs.data.get("duration_secs") or 0.0)
    reason = rec.stopping or MEDIA_REASONS.get(str(obs.data.get("reason")))
    if reason is None:  # a report from before the media side said why
        limit = rec.max_duration_secs
        hit = limit is not None and duration >= limit - LEGACY_MAX_DURATION_SLACK
        reason = "max_duration" if hit else "hangup"
    stopped = _event(
        rec,
        "record.stopped",
        duration_secs=round(duration, 3),
        paused_secs=paused_secs(rec, ts),
        path=rec.path,
        size_bytes=obs.data.get("size_bytes"),
        reason=reason,
    )
    return (stopped,)


def failed(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """The media side could not start, write or stop the recording: it is over."""
    rec = state.recordings.get(obs.data["recording_id"])
    if rec is None:
        return ()
    return (_event(rec, "record.failed", error=str(obs.data.get("error", "")), path=rec.path),)


RULES: dict[str, Rule] = {
    "media.recording.finished": finished,
    "media.recording.failed": failed,
}


def restart(state: State, ts: str) -> list[Emit]:
    """Recordings of the previous process were cut with it: close each file as it is on
    disk (``record.stopped {reason: system}`` follows from what is there)."""
    return [_event(rec, "record.stopping", reason="system") for rec in state.recordings.values()]


def shutdown(state: State, ts: str) -> list[Emit]:
    """The service stops cleanly: each running recording is stopped by the media side
    (``shutdown: true``), whose report gives ``record.stopped {reason: system}`` before
    the process ends. Those already stopping finish as asked."""
    return [
        _event(rec, "record.stopping", reason="system", shutdown=True)
        for rec in state.recordings.values()
        if rec.stopping is None
    ]


# --- folds and effects ---------------------------------------------------------------


def _started(state: State, event: EventLike) -> None:
    d = event.data
    state.recordings[d["recording_id"]] = RecordingState(
        recording_id=d["recording_id"],
        call_id=d["call_id"],
        mode=d.get("mode", "mixed"),
        file=d.get("file", ""),
        path=d.get("path", ""),
        started_at=d.get("started_at", ""),
        owner=d.get("owner"),
        max_duration_secs=d.get("max_duration_secs"),
    )


def _paused(state: State, event: EventLike) -> None:
    rec = state.recordings.get(event.data["recording_id"])
    if rec is not None and not rec.paused:
        rec.pauses.append([event.data.get("paused_at"), None])


def _resumed(state: State, event: EventLike) -> None:
    rec = state.recordings.get(event.data["recording_id"])
    if rec is not None and rec.paused:
        rec.pauses[-1][1] = event.data.get("resumed_at")


def _stopping(state: State, event: EventLike) -> None:
    rec = state.recordings.get(event.data["recording_id"])
    if rec is not None:
        rec.stopping = event.data.get("reason", "rwi")


def _ended(state: State, event: EventLike) -> None:
    state.recordings.pop(event.data["recording_id"], None)


def plan(state: State, event: EventLike) -> list[Effect]:
    d = event.data
    rec = state.recordings.get(d.get("recording_id", ""))
    match event.type:
        case "record.started":
            limit = d.get("max_duration_secs")
            return [
                StartRecording(
                    d["recording_id"],
                    d["call_id"],
                    d["file"],
                    d.get("mode", "mixed"),
                    bool(d.get("beep")),
                    float(limit) if limit is not None else None,
                )
            ]
        case "record.paused" if rec is not None:
            return [PauseRecording(rec.recording_id)]
        case "record.resumed" if rec is not None:
            return [ResumeRecording(rec.recording_id)]
        case "record.stopping" if (
            rec is not None and d.get("reason") == "system" and not d.get("shutdown")
        ):
            # a restart: the recorder died with the previous process, only its file is left
            return [CloseRecordingFile(rec.recording_id, rec.path)]
        case "record.stopping" if rec is not None:
            return [StopRecording(rec.recording_id)]
        case _:
            return []


def _audience(state: State, event: EventLike) -> set[str]:
    """Like the call's events; the connection that started it keeps getting them after
    the call is gone (the file is closed after the hangup)."""
    out = audience(state, event)
    rec = state.recordings.get(event.data.get("recording_id", ""))
    if rec is not None and rec.owner is not None and rec.owner in state.sessions:
        out.add(rec.owner)
    return out


PUSHED = frozenset(
    {"record.started", "record.paused", "record.resumed", "record.stopped", "record.failed"}
)

FEATURE = Feature(
    name="recordings",
    commands=HANDLERS,
    needs_media=True,
    observations=RULES,
    evolvers={
        "record.started": _started,
        "record.paused": _paused,
        "record.resumed": _resumed,
        "record.stopping": _stopping,
        "record.stopped": _ended,
        "record.failed": _ended,
    },
    plans=dict.fromkeys(
        ("record.started", "record.paused", "record.resumed", "record.stopping"), plan
    ),
    pushed=PUSHED,
    audience=_audience,
    resume=CallResume,
    restart=restart,
    shutdown=shutdown,
)
