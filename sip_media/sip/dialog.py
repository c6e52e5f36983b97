"""RFC 3261 §12 dialog state and the builder for requests sent inside (or to open) one.

Where it sits: under ``agent`` (the INVITE session) and above ``transaction``. A dialog
holds the identifiers (Call-ID, tags), the CSeq counters, the remote target and the route
set; :func:`build_request` turns that into wire bytes and :meth:`Dialog.next_hop` says
where they go. Outbound messages are built straight to bytes: it is the hot path.
"""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sip_media.sip.errors import SipError
from sip_media.sip.uri import NameAddr, SipURI

log = logging.getLogger(__name__)

Address = tuple[str, int]
Headers = Iterable[tuple[str, str]]

USER_AGENT = "sip_media/0.1"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, MESSAGE, NOTIFY, REFER, UPDATE"


def new_tag() -> str:
    return secrets.token_hex(5)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(eq=False)
class Dialog:
    """One dialog as seen from our side (local = us)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # From (UAC) / To (UAS) header value without tag
    remote_uri: str
    remote_target: str
    local_contact: str
    local_seq: int
    remote_seq: int = 0
    route_set: list[str] = field(default_factory=list)
    state: DialogState = DialogState.EARLY
    remote_addr: Address | None = None  # where the dialog-creating message came from

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    def transition(self, new: DialogState) -> None:
        old = self.state
        if old is not new:
            self.state = new
            log.debug("dialog %s: %s -> %s", self.call_id, old.value, new.value)

    def next_cseq(self) -> int:
        self.local_seq += 1
        return self.local_seq

    def accept_remote_cseq(self, cseq: int, method: str) -> bool:
        """§12.2.2: a lower CSeq than the last one is out of order (answer 500)."""
        if method == "ACK" or method == "CANCEL":
            return True
        if self.remote_seq and cseq <= self.remote_seq:
            return False
        self.remote_seq = cseq
        return True

    def refresh_target(self, contact: str | None) -> None:
        """Target refresh (re-INVITE / its 2xx, UPDATE): a new Contact replaces the target."""
        if contact:
            try:
                self.remote_target = str(NameAddr.parse(contact).uri)
            except SipError:
                log.debug("ignoring unparsable Contact %r", contact[:80])

    def from_header(self) -> str:
        return f"{self.local_uri};tag={self.local_tag}"

    def to_header(self) -> str:
        if self.remote_tag:
            return f"{self.remote_uri};tag={self.remote_tag}"
        return self.remote_uri

    def next_hop(self) -> Address:
        """Loose routing: first Route if any, else the remote target (§12.2.1.1, §8.1.2)."""
        uri_text = self.remote_target
        if self.route_set:
            try:
                uri_text = str(NameAddr.parse(self.route_set[0]).uri)
            except SipError:
                uri_text = self.remote_target
        return uri_address(uri_text)

    def next_hop_within(self, permits: Callable[[str], bool], fallback: Address) -> Address:
        """:meth:`next_hop`, or ``fallback`` (the address the dialog's INVITE came from or
        went to) when its Route/Contact is unusable or outside the allow-list (NAT, a
        hostile Contact), as ``indialog.destination`` does for live dialogs."""
        try:
            dest = self.next_hop()
        except SipError:
            return fallback
        return dest if permits(dest[0]) else fallback

    def request(
        self,
        method: str,
        via: str,
        cseq: int | None = None,
        extra: Headers = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> bytes:
        seq = self.next_cseq() if cseq is None else cseq
        return build_request(
            method,
            self.remote_target,
            via=via,
            from_=self.from_header(),
            to=self.to_header(),
            call_id=self.call_id,
            cseq=seq,
            contact=self.local_contact if method in ("INVITE", "REFER", "UPDATE") else None,
            routes=self.route_set,
            extra=extra,
            body=body,
            content_type=content_type,
        )


def strip_tag(header: str) -> str:
    i = header.lower().find(";tag=")
    if i < 0:
        return header
    j = header.find(";", i + 5)
    return header[:i] + (header[j:] if j >= 0 else "")


def uri_address(uri_text: str) -> Address:
    """host/port a request for this URI goes to (maddr honoured, default 5060)."""
    uri = SipURI.parse(uri_text)
    host = uri.param("maddr") or uri.host
    port = uri.port or (5061 if uri.scheme == "sips" else 5060)
    return (host.strip("[]"), port)


def via_header(transport: str, host: str, port: int, branch: str) -> str:
    return f"SIP/2.0/{transport} {host}:{port};branch={branch};rport"


def check_header(name: str, value: str) -> None:
    """Refuse header names/values that would inject lines (CR/LF/NUL) into a message."""
    if not name or any(c in name for c in ":\r\n\0 \t") or any(c in value for c in "\r\n\0"):
        raise SipError(f"Invalid header {name[:40]!r}", status=400)


def build_request(
    method: str,
    request_uri: str,
    *,
    via: str,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    contact: str | None = None,
    routes: Iterable[str] = (),
    extra: Headers = (),
    body: bytes = b"",
    content_type: str | None = None,
    cseq_method: str | None = None,
) -> bytes:
    lines = [
        f"{method} {request_uri} SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        f"From: {from_}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
    ]
    lines.extend(f"Route: {route}" for route in routes)
    if contact:
        lines.append(f"Contact: {contact}")
    if method in ("INVITE", "OPTIONS"):
        lines.append(f"Allow: {ALLOW}")
    lines.append(f"User-Agent: {USER_AGENT}")
    for name, value in extra:
        check_header(name, value)
        lines.append(f"{name}: {value}")
    if body:
        lines.append(f"Content-Type: {content_type or 'application/sdp'}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def build_response(
    status: int,
    reason: str,
    *,
    vias: Iterable[str],
    from_: str,
    to: str,
    call_id: str,
    cseq: str,
    to_tag: str | None = None,
    contact: str | None = None,
    record_routes: Iterable[str] = (),
    extra: Headers = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> bytes:
    """A response from the pieces of a request (§8.2.6); Vias already rport-stamped."""
    if to_tag and ";tag=" not in to.lower().replace(" ", ""):
        to = f"{to};tag={to_tag}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines.extend(f"Via: {via}" for via in vias)
    lines.extend(f"Record-Route: {rr}" for rr in record_routes)
    lines.append(f"From: {from_}")
    lines.append(f"To: {to}")
    lines.append(f"Call-ID: {call_id}")
    lines.append(f"CSeq: {cseq}")
    if contact:
        lines.append(f"Contact: {contact}")
    if status >= 200 and cseq.endswith(("INVITE", "OPTIONS")):
        lines.append(f"Allow: {ALLOW}")
    lines.append(f"Server: {USER_AGENT}")
    lines.extend(f"{name}: {value}" for name, value in extra)
    if body:
        lines.append(f"Content-Type: {content_type or 'application/sdp'}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body
