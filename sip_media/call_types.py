"""The call-leg layer's vocabulary: observations it reports and the errors it raises.

Where it sits: :class:`sip_media.calls.CallLegs` joins one SIP dialog and one anchored
media leg under one leg id. The call-control service receives the frozen
:data:`LegObservation` values defined here (every one carries ``leg_id``) and catches
:class:`CallError` subclasses, each knowing its wire form (a short ``code`` and the SIP
status that best describes it). Nothing here imports the SIP stack or the media engine
at run time, so the service can import, persist and match on these types cheaply.

Restart recovery: ``LegOffered``, ``LegProgress`` and ``LegAnswered`` carry ``dialog``,
a :class:`~sip_media.sip.dialog_record.DialogRecord` (a pure value: ``to_dict`` for the
log, ``from_dict`` to read it back) with which a new process can end the leg's SIP
dialog after a crash (``CallLegs.end_stale``). It is left out of equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sip_media.adapter_types import RegistrationChanged
from sip_media.media.api import StreamMark, StreamStarted, StreamStopped
from sip_media.sip.dialog_record import DialogKind, DialogRecord, DialogRecordError

EndedBy = Literal["local", "remote"]
DtmfVia = Literal["rfc4733", "info", "inband"]


# ------------------------------------------------------------------------ observations
@dataclass(frozen=True, slots=True)
class LegOffered:
    """An inbound INVITE is waiting (100 Trying sent) for ring/answer/reject/hangup.

    ``caller``/``callee``/``request_uri_user`` are the user parts of From, To and the
    Request-URI ("" when absent or unparsable); ``headers`` maps lower-case header
    names to their value (repeated headers joined with ", "). ``trunk`` names the
    configured trunk whose proxy address sent the INVITE, if any; ``user`` is the
    digest-authenticated local user; ``replaces`` the leg id this call replaces.
    ``dialog``: what a new process needs to send this INVITE a final response
    (``inbound_early`` record; None if it could not be recorded).
    """

    leg_id: str
    caller: str
    callee: str
    request_uri_user: str
    caller_name: str | None = None
    request_uri: str = ""
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    source: tuple[str, int] = ("", 0)
    trunk: str | None = None
    user: str | None = None
    replaces: str | None = None
    dialog: DialogRecord | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class LegProgress:
    """A provisional response to our INVITE; ``early_media`` when it carried SDP.

    ``dialog``: what a new process needs to CANCEL the INVITE (``outbound_early`` record,
    with the early dialog if the 1xx had a To tag); None if it could not be recorded.
    """

    leg_id: str
    status: int
    early_media: bool = False
    dialog: DialogRecord | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """The dialog is confirmed (2xx to our INVITE, or the ACK of our 2xx) with media.

    ``dialog``: what a new process needs to BYE it (``confirmed`` record); None if it
    could not be recorded.
    """

    leg_id: str
    dialog: DialogRecord | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class LegFailed:
    """Our INVITE got a final non-2xx (or none at all): the leg never answered.

    ``reason``: ``busy``, ``declined``, ``unavailable``, ``rejected``, ``no_answer``
    (our dial timeout fired and we sent CANCEL: ``sip_status`` 487), ``timeout``
    (no response at all), ``unreachable`` (transport or allow-list refusal).
    """

    leg_id: str
    sip_status: int
    reason: str = "rejected"


@dataclass(frozen=True, slots=True)
class LegEnded:
    """The leg is over (terminal; the media leg is destroyed).

    ``reason``: ``bye``, ``cancel`` (caller CANCEL, or our hangup before an answer),
    ``rejected`` (our reject), ``rtp_timeout`` (no RTP: we sent BYE), ``no_ack``,
    ``replaced``, ``failed``. ``by`` says which side ended it.
    """

    leg_id: str
    by: EndedBy
    sip_status: int
    reason: str


@dataclass(frozen=True, slots=True)
class LegDtmf:
    """A digit from the far end: RFC 4733 events, SIP INFO or detected in the audio."""

    leg_id: str
    digit: str
    duration_ms: int
    via: DtmfVia


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    """A playback ended: naturally, stopped, interrupted by ``digit``, or leg gone."""

    leg_id: str
    playback_id: str
    interrupted: bool
    digit: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingDone:
    """A recording was finalised; ``legs`` are all the legs it covered; ``reason`` is why
    (``stop``, ``max_duration``, ``leg_gone`` or ``closed``, as the media engine said)."""

    leg_id: str
    recording_id: str
    path: str
    duration_s: float
    legs: tuple[str, ...] = ()
    reason: str = "stop"


@dataclass(frozen=True, slots=True)
class RecordingFailed:
    """A recording could not be written."""

    leg_id: str
    recording_id: str
    path: str
    error: str
    legs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageIn:
    """A MESSAGE (or a non-DTMF INFO) in the leg's dialog; ``leg_id`` "" out of dialog."""

    leg_id: str
    content_type: str
    body: bytes
    from_: str = ""
    method: str = "MESSAGE"
    #: out of dialog: the To header and the Request-URI (what routing matches)
    to: str = ""
    request_uri: str = ""


@dataclass(frozen=True, slots=True)
class RequestResult:
    """A request's outcome at the far end: its final status and reason phrase (408 when
    none came within the transaction timeout) and the round trip in milliseconds (None
    when no response came: a timeout, a refused send, a leg already gone)."""

    status: int
    reason: str
    rtt_ms: float | None


@dataclass(frozen=True, slots=True)
class NotifyIn:
    """A NOTIFY in the leg's dialog."""

    leg_id: str
    event: str
    content_type: str
    body: bytes
    subscription_state: str = ""


@dataclass(frozen=True, slots=True)
class ReferIn:
    """A REFER in the leg's dialog (202 already sent); answer with ``reply_refer``."""

    leg_id: str
    refer_id: str
    refer_to: str
    referred_by: str | None = None
    replaces: str | None = None


LegObservation = (
    LegOffered
    | LegProgress
    | LegAnswered
    | LegFailed
    | LegEnded
    | LegDtmf
    | PlaybackDone
    | RecordingDone
    | RecordingFailed
    | MessageIn
    | NotifyIn
    | ReferIn
    | RegistrationChanged
    | StreamStarted
    | StreamMark
    | StreamStopped
)


# ------------------------------------------------------------------------------ errors
class CallError(Exception):
    """Base of every error :class:`~sip_media.calls.CallLegs` raises.

    ``code`` is machine-readable (the service maps it to its own error codes);
    ``sip_status`` is the SIP status describing the failure.
    """

    code = "call_error"
    sip_status = 500

    def __init__(self, message: str, *, sip_status: int | None = None) -> None:
        super().__init__(message)
        if sip_status is not None:
            self.sip_status = sip_status


class UnknownLegError(CallError):
    """No live leg has this id (never existed, or already ended)."""

    code = "unknown_leg"
    sip_status = 481


class DuplicateLegError(CallError):
    """A leg with this id is already live."""

    code = "duplicate_leg"
    sip_status = 409


class LegStateError(CallError):
    """The effect does not apply to the leg in its current state (e.g. answer twice)."""

    code = "invalid_state"
    sip_status = 491


class SignallingError(CallError):
    """The SIP stack refused or could not carry out the effect (status from the stack)."""

    code = "sip_error"


class NegotiationError(SignallingError):
    """No usable audio in the offer/answer (the call was refused with 488)."""

    code = "not_acceptable"
    sip_status = 488


class MediaFailure(CallError):
    """The media engine refused the effect; ``media_code`` is its error code."""

    code = "media_error"

    def __init__(self, message: str, *, media_code: str = "media_error") -> None:
        super().__init__(message)
        self.media_code = media_code


__all__ = [
    "CallError",
    "DialogKind",
    "DialogRecord",
    "DialogRecordError",
    "DtmfVia",
    "DuplicateLegError",
    "EndedBy",
    "LegAnswered",
    "LegDtmf",
    "LegEnded",
    "LegFailed",
    "LegObservation",
    "LegOffered",
    "LegProgress",
    "LegStateError",
    "MediaFailure",
    "MessageIn",
    "NegotiationError",
    "NotifyIn",
    "PlaybackDone",
    "RecordingDone",
    "RecordingFailed",
    "ReferIn",
    "RegistrationChanged",
    "SignallingError",
    "UnknownLegError",
]
