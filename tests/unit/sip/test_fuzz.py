"""Hypothesis fuzzing: mutated corpus messages parse or raise SipParseError, nothing else."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip_media.sip.errors import SdpError, SipParseError
from sip_media.sip.message import Request, Response, StreamFramer, parse_message
from sip_media.sip.sdp import LocalMedia, SessionDescription, negotiate
from sip_media.sip.uri import NameAddr, SipURI

DATA = Path(__file__).resolve().parents[2] / "data" / "rfc4475"
SEEDS = [p.read_bytes() for p in sorted(DATA.rglob("*.dat"))]
INTERESTING = [b"\r\n", b"\r\n ", b":", b";", b",", b"<", b">", b'"', b"\\", b"%", b"@",
               b"[", b"]", b"=", b"\x00", b" ", b"\t", b"\xff", b"SIP/2.0", b"z9hG4bK",
               b"Content-Length: 99999\r\n", b"l: -1\r\n", b"Via: SIP/2.0/UDP\r\n"]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate", "delete"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(INTERESTING) | st.binary(max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        else:  # duplicate the header line containing pos
            start = data.rfind(b"\r\n", 0, pos) + 2
            end = data.find(b"\r\n", pos)
            if start >= 2 and end > start:
                data[end:end] = b"\r\n" + data[start:end]
    return bytes(data)


def _check(outcome: object) -> None:
    if isinstance(outcome, SipParseError):
        assert 100 <= outcome.status <= 699
        assert not outcome.reason.startswith("Malformed message (internal")
    else:
        assert isinstance(outcome, Request | Response)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_parse_message_never_raises_anything_else(data: bytes) -> None:
    try:
        outcome: object = parse_message(data)
        # Parsed messages must also survive serialisation and re-parsing.
        assert isinstance(outcome, Request | Response)
        parse_message(outcome.serialize())
    except SipParseError as exc:
        outcome = exc
    _check(outcome)


@settings(max_examples=150, deadline=None)
@given(mutated(), st.integers(1, 64))
def test_stream_framer_never_raises(data: bytes, chunk: int) -> None:
    framer = StreamFramer()
    for i in range(0, len(data), chunk):
        for item in framer.feed(data[i : i + chunk]):
            _check(item)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    try:
        parse_message(data)
    except SipParseError as exc:
        _check(exc)


SDP_SEED = (
    b"v=0\r\no=a 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendonly\r\nm=video 0 RTP/AVP 31\r\n"
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SDP_SEED)), st.binary(max_size=6)), max_size=4))
def test_sdp_parse_and_negotiate_only_raise_sdp_error(edits: list[tuple[int, bytes]]) -> None:
    body = bytearray(SDP_SEED)
    for pos, chunk in edits:
        body[pos : pos + len(chunk)] = chunk
    local = LocalMedia("127.0.0.1", 40000)
    try:
        offer = SessionDescription.parse(bytes(body))
        answer = negotiate(offer, local)
        assert len(answer.media) == len(offer.media)
        SessionDescription.parse(answer.serialize())
    except SdpError as exc:
        assert exc.status in (400, 488)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='sip:@;=<>"\\%0aZ[]:,?&. \t', max_size=40))
def test_uri_and_name_addr_only_raise_parse_error(text: str) -> None:
    for parser in (SipURI.parse, NameAddr.parse):
        try:
            parsed = parser(text)
        except SipParseError:
            continue
        assert parser(str(parsed)) == parsed  # whatever parses re-parses identically
