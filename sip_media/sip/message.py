"""SIP messages: parse, frame and serialise requests and responses (RFC 3261 §7, §18.3).

First step of the inbound flow: ``transport`` hands datagrams to ``parse_message`` and
stream bytes to a ``StreamFramer``; ``transaction`` matches the resulting frozen
``Request``/``Response`` by ``transaction_key``; the UAS core calls ``validate_request``
and answers through ``make_response``. On the way out, ``serialize`` always writes a
Content-Length that matches the body, so framing never depends on the caller.

Parsing is strict where a mistake would mis-route or mis-frame (start line, Content-Length,
the headers the stack itself relies on) and lenient elsewhere (unknown headers are kept
verbatim). It never raises anything but ``SipParseError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from .errors import SipParseError
from .headers import (
    AuthHeader,
    CSeq,
    EventHeader,
    Headers,
    Replaces,
    SubscriptionState,
    Via,
    canonical_name,
    is_token,
    parse_call_id,
    parse_contacts,
    parse_name_addrs,
    parse_uint,
    split_values,
)
from .uri import NameAddr, SipURI

SIP_VERSION = "SIP/2.0"
MAGIC_COOKIE = "z9hG4bK"
_VERSION_RE = re.compile(r"SIP/\d+\.\d+\Z", re.IGNORECASE)

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required",
    408: "Request Timeout", 410: "Gone", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    493: "Undecipherable", 500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 600: "Busy Everywhere",
    603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}  # fmt: skip


@dataclass(frozen=True)
class ParseLimits:
    """Size caps applied before any allocation proportional to the input."""

    max_message_bytes: int = 65_535
    max_headers: int = 256
    max_header_line: int = 8_192


DEFAULT_LIMITS = ParseLimits()


class _Accessors:
    """Typed views over the headers shared by requests and responses (parsed lazily)."""

    headers: Headers

    def _single(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"Missing {name} header")
        return value

    @cached_property
    def via(self) -> tuple[Via, ...]:
        return tuple(Via.parse(v) for v in self.headers.get_all("Via"))

    @property
    def top_via(self) -> Via:
        if not self.via:
            raise SipParseError("Missing Via header")
        return self.via[0]

    @cached_property
    def cseq(self) -> CSeq:
        return CSeq.parse(self._single("CSeq"))

    @cached_property
    def call_id(self) -> str:
        return parse_call_id(self._single("Call-ID"))

    @cached_property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self._single("From"))

    @cached_property
    def to(self) -> NameAddr:
        return NameAddr.parse(self._single("To"))

    @cached_property
    def contacts(self) -> tuple[NameAddr, ...]:
        """Contact name-addrs; empty when absent or for the wildcard (see ``contact_is_star``)."""
        return parse_contacts(self.headers.get_all("Contact")) or ()

    @property
    def contact_is_star(self) -> bool:
        values = self.headers.get_all("Contact")
        return bool(values) and parse_contacts(values) is None

    @cached_property
    def routes(self) -> tuple[NameAddr, ...]:
        return parse_name_addrs(self.headers.get_all("Route"))

    @cached_property
    def record_routes(self) -> tuple[NameAddr, ...]:
        return parse_name_addrs(self.headers.get_all("Record-Route"))

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        return None if value is None else parse_uint(value, "Max-Forwards", maximum=255)

    @property
    def expires(self) -> int | None:
        """Expires header in seconds; overlarge values are capped at 2**32-1."""
        value = self.headers.get("Expires")
        return None if value is None else parse_uint(value, "Expires", clamp=True)

    @property
    def refer_to(self) -> NameAddr | None:
        value = self.headers.get("Refer-To")
        return None if value is None else NameAddr.parse(value)

    @property
    def replaces(self) -> Replaces | None:
        value = self.headers.get("Replaces")
        return None if value is None else Replaces.parse(value)

    @property
    def event(self) -> EventHeader | None:
        value = self.headers.get("Event")
        return None if value is None else EventHeader.parse(value)

    @property
    def subscription_state(self) -> SubscriptionState | None:
        value = self.headers.get("Subscription-State")
        return None if value is None else SubscriptionState.parse(value)

    def auth_headers(self, name: str) -> tuple[AuthHeader, ...]:
        """Parsed WWW-/Proxy-Authenticate or (Proxy-)Authorization values, in order."""
        return tuple(AuthHeader.parse(v) for v in self.headers.get_all(name))

    @property
    def content_type(self) -> str | None:
        """Media type without parameters, lower-cased (``application/sdp``)."""
        value = self.headers.get("Content-Type")
        return None if value is None else value.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Request(_Accessors):
    method: str
    uri: SipURI
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __post_init__(self) -> None:
        if not is_token(self.method):
            raise SipParseError(f"Invalid method {self.method[:40]!r}")

    def serialize(self) -> bytes:
        return _serialize(f"{self.method} {self.uri} {SIP_VERSION}", self.headers, self.body)


@dataclass(frozen=True)
class Response(_Accessors):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 699 or "\r" in self.reason or "\n" in self.reason:
            raise SipParseError(f"Invalid status line {self.status} {self.reason[:40]!r}")

    def serialize(self) -> bytes:
        return _serialize(f"{SIP_VERSION} {self.status} {self.reason}", self.headers, self.body)


Message = Request | Response


def _serialize(start: str, headers: Headers, body: bytes) -> bytes:
    lines = [start]
    lines.extend(f"{n}: {v}" for n, v in headers if n != "Content-Length")
    lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("utf-8", "surrogateescape") + body


# -- parsing ---------------------------------------------------------------------------


def parse_message(data: bytes, *, limits: ParseLimits = DEFAULT_LIMITS) -> Message:
    """Parse one datagram. Octets past Content-Length are discarded (RFC 3261 §18.3);
    a missing Content-Length means the body is the rest of the datagram."""
    return _guarded(data, limits, datagram=True)


def _guarded(data: bytes, limits: ParseLimits, *, datagram: bool) -> Message:
    try:
        return _parse(bytes(data), limits, datagram=datagram)
    except (ValueError, LookupError, ArithmeticError) as exc:  # UnicodeError is a ValueError
        # Safety net: a parse must never take the transport down. The fuzz test checks
        # that this reason never shows up, i.e. every path raises its own clear error.
        raise SipParseError(f"Malformed message (internal: {type(exc).__name__})") from exc


def _parse(data: bytes, limits: ParseLimits, *, datagram: bool) -> Message:
    if len(data) > limits.max_message_bytes:
        raise SipParseError("Message Too Large", status=513)
    data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: tolerate CRLFs before the start line
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipParseError("Missing empty line after header fields")
    start, headers = _parse_head(data[:end], limits)
    rest = data[end + 4 :]
    length = _content_length(headers)
    if length is None:
        if not datagram:
            raise SipParseError("Missing Content-Length on a stream transport", fatal=True)
        body = rest
    elif length > len(rest):
        raise SipParseError("Content-Length larger than the message body")
    else:
        body = rest[:length]
    _check_known_headers(headers)
    if isinstance(start, tuple):
        return Response(status=start[0], reason=start[1], headers=headers, body=body)
    return Request(method=start.method, uri=start.uri, headers=headers, body=body)


@dataclass(frozen=True)
class _RequestLine:
    method: str
    uri: SipURI


def _parse_head(head: bytes, limits: ParseLimits) -> tuple[_RequestLine | tuple[int, str], Headers]:
    lines = head.split(b"\r\n")
    if len(lines) - 1 > limits.max_headers * 4:  # cheap bound before decoding anything
        raise SipParseError("Too many header fields")
    text = [line.decode("utf-8", "surrogateescape") for line in lines]
    if any("\r" in line or "\n" in line for line in text):
        raise SipParseError("Bare CR or LF inside the header section")
    start = _parse_start_line(text[0])
    fields: list[str] = []
    for line in text[1:]:
        if line[:1] in (" ", "\t"):
            if not fields:
                raise SipParseError("Continuation line before the first header field")
            # LWS folding (RFC 3261 §7.3.1): CRLF + whitespace is equivalent to one SP.
            fields[-1] = fields[-1].rstrip(" \t") + " " + line.lstrip(" \t")
        else:
            fields.append(line)
        if len(fields[-1]) > limits.max_header_line:
            raise SipParseError("Header field too long")
    if len(fields) > limits.max_headers:
        raise SipParseError("Too many header fields")
    items: list[tuple[str, str]] = []
    for line in fields:
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not is_token(name):
            raise SipParseError(f"Malformed header line {line[:40]!r}")
        name = canonical_name(name)
        items.extend((name, v) for v in split_values(name, value))
        if len(items) > limits.max_headers:  # counts comma-separated values too
            raise SipParseError("Too many header fields")
    return start, Headers(tuple(items))


def _check_version(version: str) -> None:
    if version.upper() == SIP_VERSION:
        return
    if _VERSION_RE.match(version):
        raise SipParseError(f"Version Not Supported: {version}", status=505)
    raise SipParseError(f"Malformed SIP-Version {version[:20]!r}")


def _parse_start_line(line: str) -> _RequestLine | tuple[int, str]:
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        _check_version(version)
        code, _, reason = rest.partition(" ")
        if len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] in "0789":
            raise SipParseError(f"Invalid status code {code[:20]!r}")
        return int(code), reason
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        # Covers "<sip:..>"-free LWS inside the R-URI, doubled SP and trailing SP.
        raise SipParseError("Malformed Request-Line")
    method, uri, version = parts
    if not is_token(method):
        raise SipParseError(f"Invalid method {method[:40]!r}")
    _check_version(version)
    return _RequestLine(method, SipURI.parse(uri))


def _content_length(headers: Headers) -> int | None:
    values = headers.get_all("Content-Length")
    if not values:
        return None
    parsed = {parse_content_length(v) for v in values}
    if len(parsed) > 1:
        raise SipParseError("Conflicting Content-Length values", fatal=True)
    return parsed.pop()


def parse_content_length(value: str) -> int:
    try:
        return parse_uint(value, "Content-Length")
    except SipParseError as exc:
        raise SipParseError(exc.reason, fatal=True) from None


def _max_forwards(value: str) -> int:
    return parse_uint(value, "Max-Forwards", maximum=255)


def _expires(value: str) -> int:
    return parse_uint(value, "Expires", clamp=True)


_CHECKS: dict[str, Callable[[str], object]] = {
    "Via": Via.parse,
    "CSeq": CSeq.parse,
    "Call-ID": parse_call_id,
    "From": NameAddr.parse,
    "To": NameAddr.parse,
    "Route": NameAddr.parse,
    "Record-Route": NameAddr.parse,
    "Max-Forwards": _max_forwards,
    "Expires": _expires,
}


#: header values already found well-formed: a dialog's messages repeat their From, To,
#: Call-ID, Contact and Route values, and parsing each again is a good share of the
#: cost of a message. Bounded: emptied when full, so hostile traffic cannot grow it.
_WELL_FORMED: set[tuple[str, str]] = set()
_WELL_FORMED_MAX = 4096


def _check_known_headers(headers: Headers) -> None:
    """Parse every header the stack relies on, so a malformed one fails here (400)
    instead of deep inside a transaction or dialog."""
    seen = _WELL_FORMED
    for name, value in headers:
        check = _CHECKS.get(name)
        if check is None or (name, value) in seen:
            continue
        try:
            check(value)
        except SipParseError as exc:
            raise SipParseError(f"Bad {name} header: {exc.reason}") from None
        _remember((name, value))
    contacts = headers.get_all("Contact")
    if not contacts:
        return
    key = ("Contact", "\n".join(contacts))
    if key in seen:
        return
    try:
        parse_contacts(contacts)
    except SipParseError as exc:
        raise SipParseError(f"Bad Contact header: {exc.reason}") from None
    _remember(key)


def _remember(key: tuple[str, str]) -> None:
    if len(_WELL_FORMED) >= _WELL_FORMED_MAX:
        _WELL_FORMED.clear()
    _WELL_FORMED.add(key)


# -- stream framing --------------------------------------------------------------------


class StreamFramer:
    """Cuts a TCP/TLS byte stream into messages by Content-Length (RFC 3261 §18.3).

    ``feed`` returns parsed messages and per-message ``SipParseError``s in order. A
    framing error (missing, negative, conflicting or oversized Content-Length) is
    ``fatal``: the framer sets ``closed`` and the transport must drop the connection.
    CRLF keep-alives between messages (RFC 5626 §3.5.1) are skipped.
    """

    def __init__(self, limits: ParseLimits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._scanned = 0  # bytes already searched for the end of the header block
        self.closed = False

    def feed(self, data: bytes) -> list[Message | SipParseError]:
        if self.closed:
            return []
        self._buffer += data
        out: list[Message | SipParseError] = []
        while not self.closed:
            if self._buffer.startswith((b"\r", b"\n")):
                skip = len(self._buffer) - len(self._buffer.lstrip(b"\r\n"))
                del self._buffer[:skip]
                self._scanned = 0
            # Resume the search where the last one stopped: a peer trickling one byte at a
            # time must not make us rescan the whole buffer on every feed.
            end = self._buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                self._scanned = len(self._buffer)
                if len(self._buffer) > self._limits.max_message_bytes:
                    out.append(self._fail(SipParseError("Message Too Large", status=513)))
                break
            try:
                length = _scan_content_length(bytes(self._buffer[:end]))
            except SipParseError as exc:
                out.append(self._fail(exc))
                break
            total = end + 4 + length
            if total > self._limits.max_message_bytes:
                out.append(self._fail(SipParseError("Message Too Large", status=513)))
                break
            if len(self._buffer) < total:
                break
            chunk = bytes(self._buffer[:total])
            del self._buffer[:total]
            self._scanned = 0
            try:
                out.append(_guarded(chunk, self._limits, datagram=False))
            except SipParseError as exc:
                out.append(self._fail(exc) if exc.fatal else exc)
        return out

    def _fail(self, error: SipParseError) -> SipParseError:
        error.fatal = True
        self.closed = True
        self._buffer.clear()
        return error


def _scan_content_length(head: bytes) -> int:
    """Find Content-Length in a header block without parsing anything else."""
    values: list[str] = []
    for raw in head.split(b"\r\n")[1:]:
        name, colon, value = raw.partition(b":")
        if colon and name.rstrip(b" \t").lower() in (b"content-length", b"l"):
            values.append(value.decode("latin-1"))
    if not values:
        raise SipParseError("Missing Content-Length on a stream transport", fatal=True)
    lengths = {parse_content_length(v) for v in values}
    if len(lengths) > 1:
        raise SipParseError("Conflicting Content-Length values", fatal=True)
    return lengths.pop()


# -- helpers for the layers above ------------------------------------------------------


@dataclass(frozen=True)
class TransactionKey:
    """Matches requests/responses to transactions (RFC 3261 §17.1.3, §17.2.3).

    RFC 3261 peers: (branch, sent-by, method) with ACK folded onto INVITE. Pre-3261 peers
    (no ``z9hG4bK`` branch): ``legacy`` holds R-URI, From tag, Call-ID, CSeq number and
    the top Via, and ``branch`` is empty.
    """

    branch: str
    sent_by: str
    method: str
    legacy: tuple[str, ...] = ()

    @property
    def is_rfc3261(self) -> bool:
        return not self.legacy


def transaction_key(message: Message) -> TransactionKey:
    via = message.top_via
    method = message.method if isinstance(message, Request) else message.cseq.method
    if method == "ACK":
        method = "INVITE"  # an ACK for a non-2xx belongs to the INVITE server transaction
    branch = via.branch or ""
    sent_by = via.sent_by.lower()
    # The bare cookie (RFC 4475 §3.2.1 badbranch) carries no unique id: treat as legacy.
    if branch.startswith(MAGIC_COOKIE) and len(branch) > len(MAGIC_COOKIE):
        return TransactionKey(branch, sent_by, method)
    uri = str(message.uri) if isinstance(message, Request) else ""
    legacy = (uri, message.from_.tag or "", message.call_id, str(message.cseq.number), str(via))
    return TransactionKey("", sent_by, method, legacy)


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> Response:
    """Build a response per RFC 3261 §8.2.6.2: Via (all, in order), From, To, Call-ID and
    CSeq copied; the To tag added when the request had none and ``to_tag`` is given (not
    on 100 Trying); Record-Route copied on dialog-creating 1xx/2xx (§12.1.1)."""
    copied: list[tuple[str, str]] = [("Via", v) for v in request.headers.get_all("Via")]
    from_value = request.headers.get("From")
    if from_value is not None:
        copied.append(("From", from_value))
    to_value = request.headers.get("To")
    if to_value is not None:
        if to_tag is not None and status > 100 and request.to.tag is None:
            to_value = str(request.to.with_tag(to_tag))
        copied.append(("To", to_value))
    for name in ("Call-ID", "CSeq"):
        value = request.headers.get(name)
        if value is not None:
            copied.append((name, value))
    if 100 < status < 300 and request.method in ("INVITE", "SUBSCRIBE", "REFER"):
        copied.extend(("Record-Route", v) for v in request.headers.get_all("Record-Route"))
    if reason is None:
        reason = REASON_PHRASES.get(status, "Unknown")
    return Response(status, reason, Headers((*copied, *headers)), body)


# -- UAS request checks (RFC 3261 §8.2) ------------------------------------------------

DEFAULT_METHODS = frozenset(
    ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "REFER", "NOTIFY", "SUBSCRIBE",
     "MESSAGE", "INFO", "UPDATE", "PRACK")
)  # fmt: skip
_SINGLE_HEADERS = ("Call-ID", "CSeq", "From", "To", "Max-Forwards")


@dataclass(frozen=True)
class UasPolicy:
    """What this UAS accepts; ``validate_request`` refuses anything else."""

    methods: frozenset[str] = DEFAULT_METHODS
    uri_schemes: frozenset[str] = frozenset({"sip", "sips", "tel"})
    extensions: frozenset[str] = frozenset({"replaces", "timer", "100rel", "norefersub"})
    content_types: frozenset[str] = frozenset(
        {"application/sdp", "text/plain", "application/dtmf-relay", "message/sipfrag"}
    )


@dataclass(frozen=True)
class Rejection:
    """Why a well-formed request is refused: status, reason and headers to add."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()

    def to_response(self, request: Request, *, to_tag: str | None = None) -> Response:
        return make_response(request, self.status, self.reason, to_tag=to_tag, headers=self.headers)


def validate_request(request: Request, policy: UasPolicy = UasPolicy()) -> Rejection | None:
    """UAS-side checks that sit above the grammar (RFC 3261 §8.2.1-8.2.3), in RFC order.

    Returns None when the request may be processed. ACKs are never answered: callers
    drop an ACK instead of sending the rejection.
    """
    for name in ("Via", "Call-ID", "CSeq", "From", "To"):
        if name not in request.headers:
            return Rejection(400, f"Missing {name} header")
    for name in _SINGLE_HEADERS:
        if len(request.headers.get_all(name)) > 1:
            return Rejection(400, f"Multiple {name} values")
    if request.method not in policy.methods:
        allow = ", ".join(sorted(policy.methods))
        return Rejection(501, "Not Implemented", (("Allow", allow),))
    if request.cseq.method != request.method:
        return Rejection(400, "CSeq method does not match the Request-Line")
    if request.uri.scheme not in policy.uri_schemes:
        return Rejection(416, "Unsupported URI Scheme")
    if request.uri.headers:
        # RFC 4475 §3.1.2.11: URI headers in a Request-URI must never be acted upon.
        return Rejection(400, "Request-URI must not contain headers")
    if request.method not in ("ACK", "CANCEL"):
        required = [r for r in request.headers.get_all("Require") if r]
        unknown = [r for r in required if r.lower() not in policy.extensions]
        if unknown:
            return Rejection(420, "Bad Extension", (("Unsupported", ", ".join(unknown)),))
    if request.body and request.content_type not in policy.content_types:
        accept = ", ".join(sorted(policy.content_types))
        return Rejection(415, "Unsupported Media Type", (("Accept", accept),))
    accepts = [a.split(";", 1)[0].strip().lower() for a in request.headers.get_all("Accept")]
    if request.method == "INVITE" and accepts and not _accepts_sdp(accepts):
        return Rejection(406, "Not Acceptable", (("Warning", '399 - "Only application/sdp"'),))
    return None


def _accepts_sdp(accepts: list[str]) -> bool:
    return any(a in ("application/sdp", "application/*", "*/*") for a in accepts)
