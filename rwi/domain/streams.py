"""Audio streams (contract §12): ``media.stream.start|stop`` decided purely, and what the
media side reports of a stream's life (open, marks, end).

A stream belongs to the call it was started on: the media engine sends that leg's audio
(``caller``: what its far end says; ``peer``: what it hears; ``both``) to the bot's
WebSocket and, ``duplex``, mixes the bot's audio into what the leg hears (the bot is the
caller's party on an unbridged call, a whisper to the call's party on a bridged one).
The URL must fall under ``[media] stream_allowed_urls`` (``forbidden`` otherwise; the
media engine checks it again before it connects).

Its events are on the stream's own stream ``stream:<id>`` and carry ``call_id``, so they
are delivered like the call's events (and to the connection that started it after the
call is gone). ``media.stream.starting`` / ``media.stream.stopping`` record the intent
(not pushed); ``media.stream.started`` / ``media.stream.mark`` / ``media.stream.stopped``
are what the media side reported. Audio is never logged. A restart cannot carry a
WebSocket over: streams the log still shows running end ``failed`` at start (their calls
end too: a previous process's dialogs are ended at start).
"""

from __future__ import annotations

from typing import Any

from rwi.domain.aggregates import StreamState
from rwi.domain.call import CallStatus
from rwi.domain.calls.delivery import CallResume, audience
from rwi.domain.calls.legs import owned
from rwi.domain.effects import Effect, StartStream, StopStream
from rwi.domain.feature import Feature, Handler, Rule
from rwi.domain.model import Command, Decision, Emit, EventLike, Observation, State, media_stream
from rwi.errors import RwiError
from sip_media.media.stream_urls import StreamUrlAllowList, StreamUrlError, parse

STREAMABLE = (CallStatus.ANSWERED, CallStatus.BRIDGED, CallStatus.HELD)
#: streams one call may have at once (a transcriber, a bot, an assistant...)
MAX_STREAMS_PER_CALL = 4
REASONS = ("rwi", "hangup", "remote_closed", "failed")


def streams_of(state: State, call_id: str) -> list[StreamState]:
    return [s for s in state.streams.values() if s.call_id == call_id]


def _event(stream: StreamState, kind: str, **data: Any) -> Emit:
    return Emit(
        media_stream(stream.stream_id),
        kind,
        {"stream_id": stream.stream_id, "call_id": stream.call_id, **data},
    )


def check_url(state: State, url: str) -> None:
    """A malformed URL is ``invalid_params``; one outside the allow-list ``forbidden``."""
    try:
        parse(url)
    except StreamUrlError as exc:
        raise RwiError("invalid_params", f"params.url {exc}") from None
    if not StreamUrlAllowList(state.policy.stream_allowed_urls).permits(url):
        raise RwiError(
            "forbidden",
            f"params.url {url[:200]!r} is not under [media] stream_allowed_urls",
        )


# --- commands ------------------------------------------------------------------------


def start(state: State, command: Command, ts: str) -> Decision:
    params = command.params
    call = owned(state, command, params["call_id"])
    url = params["url"]
    check_url(state, url)
    call.require("media.stream.start", *STREAMABLE)
    if len(streams_of(state, call.call_id)) >= MAX_STREAMS_PER_CALL:
        raise RwiError(
            "invalid_state",
            f"call {call.call_id!r} already has {MAX_STREAMS_PER_CALL} streams; "
            "media.stream.start needs one stopped first",
        )
    stream_id = f"stm-{command.nonce[:12]}"
    data: dict[str, Any] = {
        "stream_id": stream_id,
        "call_id": call.call_id,
        "url": url,
        "mode": params.get("mode", "listen"),
        "tracks": params.get("tracks", "caller"),
        "sample_rate": int(params.get("sample_rate", 8000)),
        "metadata": params.get("metadata") or {},
        "owner": command.connection_id,
        "started_at": ts,
    }
    event = Emit(media_stream(stream_id), "media.stream.starting", data)
    return Decision((event,), {"stream_id": stream_id, "call_id": call.call_id})


def stop(state: State, command: Command, ts: str) -> Decision:
    call = owned(state, command, command.params["call_id"])
    wanted = command.params.get("stream_id")
    running = [
        s
        for s in streams_of(state, call.call_id)
        if s.stopping is None and (wanted is None or s.stream_id == wanted)
    ]
    if not running:
        named = f"stream {wanted!r}" if wanted is not None else "running stream"
        raise RwiError("not_found", f"no {named} on call {call.call_id!r}")
    events = tuple(_event(s, "media.stream.stopping", reason="rwi") for s in running)
    return Decision(events, {"stream_ids": [s.stream_id for s in running]})


HANDLERS: dict[str, Handler] = {"media.stream.start": start, "media.stream.stop": stop}


# --- what the media side reports -------------------------------------------------------


def opened(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    stream = state.streams.get(obs.data["stream_id"])
    if stream is None or stream.open:
        return ()
    return (_event(stream, "media.stream.started", url=stream.url, mode=stream.mode),)


def marked(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    stream = state.streams.get(obs.data["stream_id"])
    if stream is None:
        return ()
    return (_event(stream, "media.stream.mark", name=str(obs.data.get("name", ""))),)


def ended(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    stream = state.streams.get(obs.data["stream_id"])
    if stream is None:
        return ()
    reason = str(obs.data.get("reason", "failed"))
    if stream.stopping is not None and reason != "hangup":
        reason = stream.stopping
    data: dict[str, Any] = {
        "reason": reason if reason in REASONS else "failed",
        "frames_sent": obs.data.get("frames_sent"),
        "frames_received": obs.data.get("frames_received"),
        "frames_dropped": obs.data.get("frames_dropped"),
    }
    if obs.data.get("error"):
        data["error"] = str(obs.data["error"])[:500]
    return (_event(stream, "media.stream.stopped", **data),)


RULES: dict[str, Rule] = {
    "media.stream.opened": opened,
    "media.stream.marked": marked,
    "media.stream.ended": ended,
}


def restart(state: State, ts: str) -> list[Emit]:
    """The previous process's WebSockets died with it: its streams are over."""
    return [
        _event(
            s,
            "media.stream.stopped",
            reason="failed",
            error="the service restarted",
            frames_sent=None,
            frames_received=None,
            frames_dropped=None,
        )
        for s in state.streams.values()
    ]


# --- folds and effects ---------------------------------------------------------------


def _starting(state: State, event: EventLike) -> None:
    d = event.data
    state.streams[d["stream_id"]] = StreamState(
        stream_id=d["stream_id"],
        call_id=d["call_id"],
        url=d.get("url", ""),
        mode=d.get("mode", "listen"),
        tracks=d.get("tracks", "caller"),
        sample_rate=int(d.get("sample_rate", 8000)),
        owner=d.get("owner"),
        started_at=d.get("started_at", ""),
    )


def _started(state: State, event: EventLike) -> None:
    stream = state.streams.get(event.data["stream_id"])
    if stream is not None:
        stream.open = True


def _stopping(state: State, event: EventLike) -> None:
    stream = state.streams.get(event.data["stream_id"])
    if stream is not None:
        stream.stopping = event.data.get("reason", "rwi")


def _stopped(state: State, event: EventLike) -> None:
    state.streams.pop(event.data["stream_id"], None)


def _mark(state: State, event: EventLike) -> None:
    """A mark changes nothing of the stream."""


def plan(state: State, event: EventLike) -> list[Effect]:
    d = event.data
    match event.type:
        case "media.stream.starting":
            first = {
                "stream_id": d["stream_id"],
                "call_id": d["call_id"],
                "sample_rate": int(d.get("sample_rate", 8000)),
                "tracks": d.get("tracks", "caller"),
                "mode": d.get("mode", "listen"),
                "metadata": d.get("metadata") or {},
            }
            return [
                StartStream(
                    d["stream_id"],
                    d["call_id"],
                    d["url"],
                    d.get("mode", "listen"),
                    d.get("tracks", "caller"),
                    int(d.get("sample_rate", 8000)),
                    tuple(first.items()),
                )
            ]
        case "media.stream.stopping" if d["stream_id"] in state.streams:
            return [StopStream(d["stream_id"])]
        case _:
            return []


def _audience(state: State, event: EventLike) -> set[str]:
    """Like the call's events; the connection that started it keeps getting them after
    the call is gone (a hangup's ``media.stream.stopped`` comes after ``call.hangup``)."""
    out = audience(state, event)
    stream = state.streams.get(event.data.get("stream_id", ""))
    if stream is not None and stream.owner is not None and stream.owner in state.sessions:
        out.add(stream.owner)
    return out


PUSHED = frozenset({"media.stream.started", "media.stream.mark", "media.stream.stopped"})

FEATURE = Feature(
    name="streams",
    commands=HANDLERS,
    needs_media=True,
    observations=RULES,
    evolvers={
        "media.stream.starting": _starting,
        "media.stream.started": _started,
        "media.stream.mark": _mark,
        "media.stream.stopping": _stopping,
        "media.stream.stopped": _stopped,
    },
    plans=dict.fromkeys(("media.stream.starting", "media.stream.stopping"), plan),
    pushed=PUSHED,
    audience=_audience,
    resume=CallResume,
    restart=restart,
)
