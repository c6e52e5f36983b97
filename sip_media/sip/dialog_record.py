"""What a new process needs to end one SIP INVITE dialog left behind by a crashed one.

Where it sits: a pure value, beside ``bindings.Binding``. ``sip_media.sip.stale`` builds
a :class:`DialogRecord` from a live session (``record_of``) and, in a later process,
ends the dialog from it (``end_stale``); :class:`sip_media.calls.CallLegs` carries it on
the ``LegOffered`` / ``LegProgress`` / ``LegAnswered`` observations so the call-control
service can log it with them (``to_dict``, JSON-ready) and hand it back after a restart
(``from_dict``). Nothing here does I/O.

A record is one of three kinds (:class:`DialogKind`), each ended differently:

- ``confirmed`` (answered, either direction): a BYE to ``remote_target`` (``route_set``
  as Route headers) from ``local_uri;tag=local_tag`` to ``remote_uri;tag=remote_tag``,
  sent to ``destination``. ``cseq`` is the highest CSeq we had sent in the dialog; the
  BYE uses ``cseq + CSEQ_STEP`` because requests sent after the record was taken
  (re-INVITE, INFO, NOTIFY...) are not in it, and RFC 3261 §12.2.2 has the far end accept
  any higher number.
- ``outbound_early`` (our INVITE, no final response yet): a CANCEL with the INVITE's
  ``request_uri``, its top Via (``vias[0]``, same branch), From ``local_uri;tag=local_tag``,
  To ``remote_uri`` (no tag), ``call_id`` and ``cseq``, sent to ``destination``.
  ``remote_tag``/``remote_target``/``route_set`` describe the early dialog, if a 1xx
  carried a To tag.
- ``inbound_early`` (their INVITE, no final response from us yet): a final response
  carrying the INVITE's Vias (``vias``, as our 1xx carried them: ``received``/``rport``
  filled in), From ``remote_uri;tag=remote_tag``, To ``local_uri;tag=local_tag`` (the
  tag our 1xx carried), ``call_id`` and ``cseq`` (the INVITE's), sent to ``destination``
  (where the INVITE came from). ``remote_target``/``route_set`` (their Contact and
  Record-Route) let a BYE follow when our 2xx may have gone out unlogged.

Every field is validated when the record is built, so a record read back from a log
cannot inject header lines or name a nonsense address: a bad one raises
:class:`DialogRecordError` (also a ``ValueError``) naming the field.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SipError
from .headers import is_token
from .uri import SipURI, check_host

FORMAT_VERSION = 1
CSEQ_STEP = 1000  # a stale BYE uses the recorded CSeq + this (see the module docstring)
MAX_CSEQ = 2**31 - 1  # RFC 3261 §8.1.1.5
MAX_TEXT = 2048  # per header value or URI
MAX_VIAS = 70  # as many hops as Max-Forwards allows
MAX_ROUTES = 32
TRANSPORTS = ("UDP", "TCP")


class DialogRecordError(SipError, ValueError):
    """A dialog record is malformed, or cannot be acted on here.

    ``field`` names the offending field ("" when the record as a whole is the problem);
    ``code`` is machine-readable: ``invalid_record``, ``destination_refused`` (outside the
    outbound allow-list), ``live_dialog`` (the dialog is live in this process) or
    ``no_transport`` (this engine has no transport to send it on).
    """

    status = 400
    reason = "Invalid dialog record"

    def __init__(self, message: str, *, field: str = "", code: str = "invalid_record") -> None:
        super().__init__(message)
        self.args = (message,)  # str(exc) is the message, without SipError's status prefix
        self.field = field
        self.code = code


class DialogKind(enum.Enum):
    """How the dialog stood when the record was taken; see the module docstring."""

    CONFIRMED = "confirmed"
    OUTBOUND_EARLY = "outbound_early"
    INBOUND_EARLY = "inbound_early"


@dataclass(frozen=True, slots=True)
class DialogRecord:
    """Enough of one INVITE dialog to end it from a process that never knew it."""

    kind: DialogKind
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our name-addr without tag: From of our requests, To of our responses
    remote_uri: str  # theirs without tag
    cseq: int  # confirmed: highest CSeq we sent; early kinds: the INVITE's CSeq number
    destination: tuple[str, int]  # host, port the message goes to
    transport: str = "UDP"
    remote_target: str = ""  # their Contact URI (Request-URI of in-dialog requests)
    route_set: tuple[str, ...] = ()  # Route header values for in-dialog requests, in order
    request_uri: str = ""  # outbound_early: the INVITE's Request-URI
    vias: tuple[str, ...] = ()  # outbound_early: our INVITE's Via; inbound_early: theirs
    leg_id: str = ""  # the leg the record was taken from (logging only)
    trunk: str | None = None  # configured trunk on the far side (answers a BYE challenge)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Validate every field (done on construction); raises :class:`DialogRecordError`."""
        _validate(self)

    @property
    def bye_cseq(self) -> int:
        """CSeq for a BYE sent from a new process (``cseq + CSEQ_STEP``, capped)."""
        return min(self.cseq + CSEQ_STEP, MAX_CSEQ)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (str, int, list, None only); ``from_dict`` reads it back."""
        return {
            "v": FORMAT_VERSION,
            "kind": self.kind.value,
            "call_id": self.call_id,
            "local_tag": self.local_tag,
            "remote_tag": self.remote_tag,
            "local_uri": self.local_uri,
            "remote_uri": self.remote_uri,
            "cseq": self.cseq,
            "destination": [self.destination[0], self.destination[1]],
            "transport": self.transport,
            "remote_target": self.remote_target,
            "route_set": list(self.route_set),
            "request_uri": self.request_uri,
            "vias": list(self.vias),
            "leg_id": self.leg_id,
            "trunk": self.trunk,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DialogRecord:
        """Read a ``to_dict`` result back (e.g. after a JSON round trip).

        Tolerant: unknown keys are ignored, optional keys may be missing, lists and tuples
        are interchangeable, integers may come as decimal strings. Anything else that is
        wrong raises :class:`DialogRecordError` naming the field; never another error.
        """
        if not isinstance(data, Mapping):
            raise DialogRecordError(f"a dialog record is a mapping, not {type(data).__name__}")
        version = data.get("v", FORMAT_VERSION)
        if _integer(version, "v") != FORMAT_VERSION:
            raise DialogRecordError(f"unsupported dialog record version {version!r}", field="v")
        kind_text = _required(data, "kind")
        try:
            kind = DialogKind(kind_text)
        except ValueError:
            raise DialogRecordError(f"unknown kind {kind_text!r:.40}", field="kind") from None
        destination = _required(data, "destination")
        if not isinstance(destination, list | tuple) or len(destination) != 2:
            raise DialogRecordError("destination must be [host, port]", field="destination")
        trunk = data.get("trunk")
        return cls(
            kind=kind,
            call_id=_required(data, "call_id"),
            local_tag=_text(data, "local_tag"),
            remote_tag=_text(data, "remote_tag"),
            local_uri=_required(data, "local_uri"),
            remote_uri=_required(data, "remote_uri"),
            cseq=_integer(_required(data, "cseq"), "cseq"),
            destination=(destination[0], _integer(destination[1], "destination")),
            transport=_text(data, "transport") or "UDP",
            remote_target=_text(data, "remote_target"),
            route_set=_texts(data, "route_set"),
            request_uri=_text(data, "request_uri"),
            vias=_texts(data, "vias"),
            leg_id=_text(data, "leg_id"),
            trunk=None if trunk is None else _text(data, "trunk"),
        )


# ----------------------------------------------------------------------------- reading
def _required(data: Mapping[str, Any], key: str) -> Any:
    if key not in data or data[key] is None:
        raise DialogRecordError(f"missing {key}", field=key)
    return data[key]


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DialogRecordError(f"{key} must be a string", field=key)
    return value


def _texts(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or ()
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise DialogRecordError(f"{key} must be a list of strings", field=key)
    return tuple(value)


def _integer(value: Any, key: str) -> int:
    if isinstance(value, bool):
        raise DialogRecordError(f"{key} must be an integer", field=key)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        return int(value)
    raise DialogRecordError(f"{key} must be an integer", field=key)


# -------------------------------------------------------------------------- validation
def _validate(record: DialogRecord) -> None:
    if not isinstance(record.kind, DialogKind):
        raise DialogRecordError("kind must be a DialogKind", field="kind")
    for name in ("call_id", "local_tag", "remote_tag", "local_uri", "remote_uri"):
        _check_text(getattr(record, name), name)
    for name in ("remote_target", "request_uri", "leg_id"):
        _check_text(getattr(record, name), name)
    if not record.call_id or any(c.isspace() for c in record.call_id):
        raise DialogRecordError("call_id must be a non-empty word", field="call_id")
    for name in ("local_tag", "remote_tag"):
        tag = getattr(record, name)
        if tag and not is_token(tag):
            raise DialogRecordError(f"{name} must be a token", field=name)
    if not record.local_uri or not record.remote_uri:
        raise DialogRecordError("local_uri and remote_uri are required", field="local_uri")
    _check_list(record.route_set, "route_set", MAX_ROUTES)
    _check_list(record.vias, "vias", MAX_VIAS)
    if record.trunk is not None:
        _check_text(record.trunk, "trunk")
    if not isinstance(record.cseq, int) or isinstance(record.cseq, bool):
        raise DialogRecordError("cseq must be an integer", field="cseq")
    if not 0 <= record.cseq <= MAX_CSEQ:
        raise DialogRecordError(f"cseq must be 0..{MAX_CSEQ}", field="cseq")
    if record.transport not in TRANSPORTS:
        raise DialogRecordError(f"transport must be one of {TRANSPORTS}", field="transport")
    _check_destination(record.destination)
    match record.kind:
        case DialogKind.CONFIRMED:
            _check_uri(record.remote_target, "remote_target")
            if not record.local_tag:
                raise DialogRecordError("a confirmed dialog has a local tag", field="local_tag")
        case DialogKind.OUTBOUND_EARLY:
            _check_uri(record.request_uri, "request_uri")
            if record.remote_target:
                _check_uri(record.remote_target, "remote_target")
            if not record.local_tag:
                raise DialogRecordError("our INVITE had a From tag", field="local_tag")
            if len(record.vias) != 1 or ";branch=z9hg4bk" not in record.vias[0].lower():
                raise DialogRecordError(
                    "vias must hold our INVITE's one Via with its RFC 3261 branch", field="vias"
                )
        case DialogKind.INBOUND_EARLY:
            if not record.vias:
                raise DialogRecordError("a response needs the INVITE's Vias", field="vias")
            if record.remote_target:
                _check_uri(record.remote_target, "remote_target")


def _check_text(value: object, name: str) -> None:
    if not isinstance(value, str):
        raise DialogRecordError(f"{name} must be a string", field=name)
    if len(value) > MAX_TEXT:
        raise DialogRecordError(f"{name} is longer than {MAX_TEXT}", field=name)
    if any(c in value for c in "\r\n\0"):
        raise DialogRecordError(f"{name} holds a line break or NUL", field=name)


def _check_list(values: object, name: str, limit: int) -> None:
    if not isinstance(values, tuple):
        raise DialogRecordError(f"{name} must be a tuple of strings", field=name)
    if len(values) > limit:
        raise DialogRecordError(f"{name} has more than {limit} entries", field=name)
    for value in values:
        _check_text(value, name)
        if not value.strip():
            raise DialogRecordError(f"{name} holds an empty entry", field=name)


def _check_uri(value: str, name: str) -> None:
    try:
        uri = SipURI.parse(value)
    except SipError:
        raise DialogRecordError(f"{name} is not a URI: {value!r:.60}", field=name) from None
    if not uri.is_sip:
        raise DialogRecordError(f"{name} must be a sip: or sips: URI", field=name)


def _check_destination(destination: object) -> None:
    if not isinstance(destination, tuple) or len(destination) != 2:
        raise DialogRecordError("destination must be (host, port)", field="destination")
    host, port = destination
    if not isinstance(host, str) or not host or len(host) > 255:
        raise DialogRecordError("destination host must be a host name", field="destination")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            check_host(host)
        except SipError:
            raise DialogRecordError(
                f"destination host {host!r:.60} is not a host", field="destination"
            ) from None
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise DialogRecordError("destination port must be 1..65535", field="destination")


def header_with_tag(name_addr: str, tag: str) -> str:
    """``name_addr`` with ``;tag=<tag>`` appended (unchanged when ``tag`` is empty)."""
    return f"{name_addr};tag={tag}" if tag else name_addr


__all__ = [
    "CSEQ_STEP",
    "DialogKind",
    "DialogRecord",
    "DialogRecordError",
    "header_with_tag",
]
