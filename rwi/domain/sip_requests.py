"""SIP requests (contract §5 SIP, §11): MESSAGE, NOTIFY and OPTIONS sent on a leg's
dialog or page-mode to a destination, and the in-dialog MESSAGE, NOTIFY and INFO a far
end sends us (and out-of-dialog MESSAGEs the dialplan routes to a context).

Sending: the command logs ``sip.request.sent`` (the request as sent) on the call's
stream, or on ``sip:<request_id>`` out of dialog; its plan is a ``SipRequest`` effect
whose result comes back as the ``sip.request.result`` observation (the far end's final
status, reason phrase and round trip), logged as ``sip.request.answered`` on the same
stream. The command's reply waits for that result (``AwaitResult``); 408 when none
came in time.

Receiving: ``rwi.sip_ingest`` reports ``sip.message.in`` (MESSAGE, non-DTMF INFO) and
``sip.notify.in`` (NOTIFY other than a REFER's progress), each already answered 200 by
the SIP side; they become ``sip.message.received`` / ``sip.info.received`` /
``sip.notify.received`` for the leg's owner, or, out of dialog, ``sip.message.received``
for the subscribers of the context the dialplan chose.
"""

from __future__ import annotations

import re
from typing import Any

from rwi.domain.call import CallStatus
from rwi.domain.calls.delivery import CallResume, subscribers
from rwi.domain.calls.delivery import audience as call_audience
from rwi.domain.calls.legs import owned
from rwi.domain.effects import Effect, SipRequest
from rwi.domain.feature import Feature, Handler, unchanged
from rwi.domain.model import (
    AwaitResult,
    Command,
    Decision,
    Emit,
    EventLike,
    Observation,
    State,
    call_stream,
)
from rwi.errors import invalid_params

#: a request is answered within Timer F (64 x T1) by the SIP side itself (408); the
#: reply waits this much longer, so that answer (logged), not ours, is what the client
#: gets even when the log is slow
REPLY_MARGIN_SECS = 8.0
TIMED_OUT = {"status": 408, "reason": "Request Timeout", "rtt_ms": None}
#: the call states a request may go out in: its dialog is confirmed
ANSWERED = (CallStatus.ANSWERED, CallStatus.BRIDGED, CallStatus.HELD)
#: where a page-mode MESSAGE may go: a local user (``sip:1001@local``) or a trunk
PAGE_DESTINATION = re.compile(r"^sips?:[^\s<>@]+@[^\s<>]+$", re.IGNORECASE)
RECEIVED = {"MESSAGE": "sip.message.received", "INFO": "sip.info.received"}


def reply_timeout_secs(t1_secs: float) -> float:
    """How long a request's reply waits for its answer: Timer F (64 x T1, 32 s on
    RFC 3261's 500 ms) and a margin; then it goes out as ``TIMED_OUT``."""
    return 64 * t1_secs + REPLY_MARGIN_SECS


def request_stream(request_id: str) -> str:
    """The stream of a page-mode MESSAGE: it belongs to no call."""
    return f"sip:{request_id}"


def _headers(command: Command) -> dict[str, str]:
    headers: dict[str, str] = command.params.get("extra_headers") or {}
    return headers


def _send(state: State, command: Command, method: str, **request: Any) -> Decision:
    """A request on the dialog of the call ``params.call_id``, if answered and ours."""
    call = owned(state, command, command.params["call_id"])
    call.require(command.action, *ANSWERED)
    request_id = f"req-{command.nonce}"
    data = {
        "call_id": call.call_id,
        "request_id": request_id,
        "method": method,
        **request,
        "extra_headers": _headers(command),
    }
    return Decision(
        (Emit(call_stream(call.call_id), "sip.request.sent", data),), {}, _awaits(state, request_id)
    )


def _awaits(state: State, request_id: str) -> AwaitResult:
    return AwaitResult(
        "sip.request.result",
        (("request_id", request_id),),
        ("status", "reason", "rtt_ms"),
        reply_timeout_secs(state.policy.sip_t1_secs),
        dict(TIMED_OUT),
    )


def _body(command: Command) -> dict[str, Any]:
    return {
        "content_type": command.params.get("content_type", "text/plain"),
        "body": command.params.get("body", ""),
    }


# --- commands ------------------------------------------------------------------------


def message(state: State, command: Command, ts: str) -> Decision:
    """In-dialog MESSAGE on ``call_id``, or page-mode MESSAGE to ``destination``."""
    params = command.params
    destination = params.get("destination")
    if "call_id" in params:
        if destination is not None:
            raise invalid_params("params.destination: give call_id or destination, not both")
        return _send(state, command, "MESSAGE", **_body(command))
    if destination is None:
        raise invalid_params("params.call_id or params.destination is required")
    if not PAGE_DESTINATION.match(destination):
        raise invalid_params("params.destination must be a sip: or sips: URI with a user")
    request_id = f"req-{command.nonce}"
    data = {
        "request_id": request_id,
        "method": "MESSAGE",
        "destination": destination,
        "from": command.connection_id,
        **_body(command),
        "extra_headers": _headers(command),
    }
    event = Emit(request_stream(request_id), "sip.request.sent", data)
    return Decision((event,), {}, _awaits(state, request_id))


def notify(state: State, command: Command, ts: str) -> Decision:
    return _send(state, command, "NOTIFY", event=command.params["event"], **_body(command))


def options_ping(state: State, command: Command, ts: str) -> Decision:
    return _send(state, command, "OPTIONS")


HANDLERS: dict[str, Handler] = {
    "sip.message": message,
    "sip.notify": notify,
    "sip.options_ping": options_ping,
}


# --- observations --------------------------------------------------------------------


def answered(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """The far end's final answer to a request we sent, logged beside the request."""
    data = obs.data
    call_id = data.get("call_id")
    stream = call_stream(call_id) if call_id else request_stream(str(data.get("request_id")))
    keep = ("request_id", "call_id", "method", "status", "reason", "rtt_ms")
    return (Emit(stream, "sip.request.answered", {k: data[k] for k in keep if k in data}),)


def message_in(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """A MESSAGE or INFO the far end of a leg sent, or an out-of-dialog MESSAGE the
    dialplan routed to a context."""
    data = obs.data
    body = {"content_type": data.get("content_type", ""), "body": data.get("body", "")}
    call = state.calls.get(data.get("call_id") or "")
    if call is not None:
        kind = RECEIVED.get(data.get("method", "MESSAGE"), "sip.message.received")
        return (Emit(call_stream(call.call_id), kind, {"call_id": call.call_id, **body}),)
    context = data.get("context")
    if not data.get("call_id") and isinstance(context, str):
        page = {"context": context, "from": data.get("from"), "to": data.get("to"), **body}
        return (Emit(f"context:{context}", "sip.message.received", page),)
    return ()


def notify_in(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    data = obs.data
    call = state.calls.get(data.get("call_id") or "")
    if call is None:
        return ()
    received = {
        "call_id": call.call_id,
        "event": data.get("event", ""),
        "content_type": data.get("content_type", ""),
        "body": data.get("body", ""),
    }
    return (Emit(call_stream(call.call_id), "sip.notify.received", received),)


# --- effects and delivery ------------------------------------------------------------


def _plan(state: State, event: EventLike) -> list[Effect]:
    data = event.data
    return [
        SipRequest(
            request_id=data["request_id"],
            method=data["method"],
            leg_id=data.get("call_id"),
            destination=data.get("destination"),
            content_type=data.get("content_type"),
            body=data.get("body", ""),
            event=data.get("event"),
            extra_headers=tuple(sorted(data.get("extra_headers", {}).items())),
        )
    ]


def audience(state: State, event: EventLike) -> set[str]:
    """A call's received requests go to its owner (and attached connections); an
    out-of-dialog MESSAGE to the subscribers of its context."""
    if "call_id" in event.data:
        return call_audience(state, event)
    return subscribers(state, event.data.get("context"))


class SipRequestResume:
    """Received requests of the connection's calls, and of its contexts out of dialog."""

    def __init__(self, state: State, connection_id: str) -> None:
        self.calls = CallResume(state, connection_id)

    def __call__(self, event: EventLike) -> bool:
        if "call_id" in event.data:
            return self.calls(event)
        return event.data.get("context") in self.calls.contexts


FEATURE = Feature(
    name="sip_requests",
    commands=HANDLERS,
    needs_media=True,
    observations={
        "sip.request.result": answered,
        "sip.message.in": message_in,
        "sip.notify.in": notify_in,
    },
    evolvers={
        "sip.request.sent": unchanged,
        "sip.request.answered": unchanged,
        "sip.message.received": unchanged,
        "sip.info.received": unchanged,
        "sip.notify.received": unchanged,
    },
    plans={"sip.request.sent": _plan},
    pushed=frozenset({"sip.message.received", "sip.info.received", "sip.notify.received"}),
    audience=audience,
    resume=SipRequestResume,
)
