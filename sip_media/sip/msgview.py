"""A flat, read-only view of an inbound SIP message for the transaction/dialog layers.

Where it sits: between ``transport`` (bytes) and ``engine``. ``message.parse_message``
is the grammar authority (its ``SipParseError`` becomes the 400 reason); this view
pre-computes what matching needs on every message (branch, sent-by, CSeq, tags) so the
hot path reads attributes instead of re-walking headers.
"""

from __future__ import annotations

from sip_media.sip.errors import SipParseError
from sip_media.sip.message import Message, Request, parse_message

COMPACT = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "r": "refer-to",
    "b": "referred-by",
    "o": "event",
    "u": "allow-events",
}
MULTI = frozenset({"via", "route", "record-route", "contact"})


def _split_commas(value: str) -> list[str]:
    if "," not in value:
        return [value]
    out: list[str] = []
    depth_angle = False
    quoted = False
    start = 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth_angle = True
        elif not quoted and ch == ">":
            depth_angle = False
        elif ch == "," and not quoted and not depth_angle:
            out.append(value[start:i].strip())
            start = i + 1
    out.append(value[start:].strip())
    return [v for v in out if v]


def _param(value: str, name: str) -> str | None:
    low = value.lower()
    key = f";{name}="
    i = low.find(key)
    if i < 0:
        # allow whitespace around ';'
        for part in value.split(";")[1:]:
            k, _, v = part.partition("=")
            if k.strip().lower() == name:
                return v.strip().strip('"')
        return None
    start = i + len(key)
    end = start
    while end < len(value) and value[end] not in ";,> \t":
        end += 1
    return value[start:end].strip('"')


class MsgView:
    __slots__ = (
        "body",
        "branch",
        "call_id",
        "cseq",
        "cseq_method",
        "from_",
        "from_tag",
        "headers",
        "is_request",
        "message",
        "method",
        "reason",
        "ruri",
        "sent_by",
        "source",
        "status",
        "to",
        "to_tag",
        "vias",
    )

    def __init__(self, message: Message) -> None:
        """Flatten a parsed message; raises ``SipParseError`` if a key header is bad."""
        self.message = message
        self.headers = [(name.lower(), value) for name, value in message.headers]
        self.vias = self.header_list("via")
        if isinstance(message, Request):
            self.is_request = True
            self.method = message.method
            self.ruri = str(message.uri)
            self.status = 0
            self.reason = ""
        else:
            self.is_request = False
            self.status = message.status
            self.reason = message.reason
            self.ruri = ""
        call_id = self.header("call-id")
        cseq = self.header("cseq")
        from_ = self.header("from")
        to = self.header("to")
        if not (call_id and cseq and from_ and to and self.vias):
            raise SipParseError("Missing mandatory header (Via, From, To, Call-ID or CSeq)")
        self.call_id = call_id
        num, _, cmethod = cseq.strip().partition(" ")
        try:
            self.cseq = int(num)
        except ValueError as exc:
            raise SipParseError("Bad CSeq") from exc
        self.cseq_method = cmethod.strip()
        if not self.is_request:
            self.method = self.cseq_method
        self.from_ = from_
        self.to = to
        self.from_tag = _param(from_, "tag") or ""
        self.to_tag = _param(to, "tag") or ""
        top = self.vias[0]
        self.branch = _param(top, "branch") or ""
        sent = top.split(";", 1)[0].split(None, 1)
        self.sent_by = sent[1].strip().lower() if len(sent) > 1 else ""
        self.body = message.body
        self.source: tuple[str, int] | None = None

    @classmethod
    def parse(cls, data: bytes) -> MsgView:
        return cls(parse_message(data))

    def header(self, name: str) -> str | None:
        for hname, value in self.headers:
            if hname == name:
                return value
        return None

    def header_list(self, name: str) -> list[str]:
        out: list[str] = []
        for hname, value in self.headers:
            if hname == name:
                out.extend(_split_commas(value) if name in MULTI else [value])
        return out

    def tx_key(self) -> tuple[str, ...]:
        """Server transaction key (§17.2.3); ACK keys as its INVITE."""
        method = "INVITE" if self.method == "ACK" else self.method
        return (self.branch, self.sent_by, method)

    def client_key(self) -> tuple[str, ...]:
        return (self.branch, self.cseq_method)

    def param(self, header_value: str, name: str) -> str | None:
        return _param(header_value, name)


param = _param
split_commas = _split_commas
