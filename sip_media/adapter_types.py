"""Effects in, observations out: the typed vocabulary of the adapter seam.

Where it sits: the boundary between the call-control service (which plans Effects from
durable events) and ``sip_media`` (which executes them and reports Observations). Only
plain frozen dataclasses live here so the service can import, persist and match on them
without pulling in the SIP stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from sip_media.sip.bindings import Binding as Binding  # frozen, JSON-friendly (to_dict / from_dict)

Headers = tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------- effects
@dataclass(frozen=True, slots=True)
class Effect:
    leg_id: str


@dataclass(frozen=True, slots=True)
class DialLeg(Effect):
    """Place an outbound INVITE. ``target``: ``sip:user@local``, ``sip:num@trunk`` or a URI."""

    target: str
    from_uri: str | None = None
    caller_id: str | None = None
    extra_headers: Headers = ()
    sdp_offer: bytes | None = None
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class RingLeg(Effect):
    status: int = 180
    sdp: bytes | None = None


@dataclass(frozen=True, slots=True)
class AnswerLeg(Effect):
    sdp: bytes | None = None


@dataclass(frozen=True, slots=True)
class RejectLeg(Effect):
    code: int = 486
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class HangupLeg(Effect):
    """CANCEL before an answer (UAC), 487 (UAS, unanswered) or BYE once connected."""


@dataclass(frozen=True, slots=True)
class Reinvite(Effect):
    sdp: bytes | None = None


@dataclass(frozen=True, slots=True)
class SendMessage(Effect):
    """In-dialog MESSAGE when ``leg_id`` names a leg; out-of-dialog to ``target`` otherwise."""

    body: bytes = b""
    content_type: str = "text/plain"
    target: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SendNotify(Effect):
    event: str = "talk"
    body: bytes = b""
    content_type: str = "text/plain"
    subscription_state: str = "active"
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SendOptions(Effect):
    """In-dialog OPTIONS for a leg, or out-of-dialog to ``target`` (leg_id may be "")."""

    target: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class SendInfo(Effect):
    body: bytes = b""
    content_type: str = "application/dtmf-relay"

    @classmethod
    def dtmf(cls, leg_id: str, digit: str, duration_ms: int = 160) -> SendInfo:
        body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
        return cls(leg_id, body, "application/dtmf-relay")


@dataclass(frozen=True, slots=True)
class SendRefer(Effect):
    refer_to: str
    replaces_leg: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyRefer(Effect):
    """Report progress of a received REFER: NOTIFY message/sipfrag with ``status``."""

    refer_id: str
    status: int = 200
    reason: str | None = None
    final: bool = True


@dataclass(frozen=True, slots=True)
class EffectResult:
    leg_id: str
    status: int
    reason: str = ""
    rtt: float | None = None


# ---------------------------------------------------------------------- observations
@dataclass(frozen=True, slots=True)
class SipObservation:
    leg_id: str


@dataclass(frozen=True, slots=True)
class IncomingCall(SipObservation):
    request_uri: str
    from_: str
    to: str
    headers: Headers
    sdp: bytes | None
    source: tuple[str, int]
    user: str | None = None  # digest-authenticated local user, if any
    replaces: str | None = None  # leg_id this call replaces (RFC 3891 attended transfer)


@dataclass(frozen=True, slots=True)
class Provisional(SipObservation):
    status: int
    sdp: bytes | None = None


@dataclass(frozen=True, slots=True)
class Answered(SipObservation):
    sdp: bytes | None = None


@dataclass(frozen=True, slots=True)
class Ended(SipObservation):
    cause: str
    sip_status: int
    by: str  # "local" | "remote"


@dataclass(frozen=True, slots=True)
class Reinvited(SipObservation):
    sdp: bytes | None
    hold: bool


@dataclass(frozen=True, slots=True)
class DtmfInfo(SipObservation):
    digit: str
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class MessageReceived(SipObservation):
    """A MESSAGE (or a non-DTMF INFO: ``method``); out of dialog ``leg_id`` is ""."""

    content_type: str
    body: bytes
    from_: str = ""
    method: str = "MESSAGE"
    to: str = ""
    request_uri: str = ""


@dataclass(frozen=True, slots=True)
class NotifyReceived(SipObservation):
    event: str
    content_type: str
    body: bytes
    subscription_state: str = ""


@dataclass(frozen=True, slots=True)
class ReferReceived(SipObservation):
    refer_id: str
    refer_to: str
    referred_by: str | None = None
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class RegistrationChanged(SipObservation):
    """``leg_id`` is ``""``; ``aor`` with its full current bindings (empty: unregistered).

    Persist ``[b.to_dict() for b in bindings]``; pass ``Binding.from_dict`` of them back as
    ``SipAdapter(bindings=...)`` at start to restore."""

    aor: str = ""
    bindings: tuple[Binding, ...] = ()


@dataclass(frozen=True, slots=True)
class OptionsResult(SipObservation):
    status: int
    rtt: float | None = None
