"""Message parsing/serialisation, framing, limits and the helpers other layers use."""

from __future__ import annotations

import pytest

from sip_media.sip.errors import SipParseError
from sip_media.sip.headers import Headers
from sip_media.sip.message import (
    ParseLimits,
    Request,
    Response,
    StreamFramer,
    UasPolicy,
    make_response,
    parse_message,
    transaction_key,
    validate_request,
)
from sip_media.sip.uri import NameAddr, SipURI

INVITE = (
    b"INVITE sip:bob@127.0.0.1:5090 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport\r\n"
    b"Via: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKdef\r\n"
    b"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: Alice <sip:alice@127.0.0.1>;tag=a1\r\n"
    b"To: <sip:bob@127.0.0.1>\r\n"
    b"Call-ID: c1@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.1:5060>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def invite() -> Request:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    return msg


def test_parse_request_values() -> None:
    m = invite()
    assert m.method == "INVITE" and m.uri == SipURI.parse("sip:bob@127.0.0.1:5090")
    assert [v.branch for v in m.via] == ["z9hG4bKabc", "z9hG4bKdef"]
    assert [str(r.uri) for r in m.record_routes] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
    ]
    assert m.from_.tag == "a1" and m.to.tag is None and m.call_id == "c1@127.0.0.1"
    assert m.max_forwards == 70 and m.content_type == "application/sdp" and m.body == b"v=0\n"
    assert m.contacts[0].uri.port == 5060 and not m.contact_is_star and m.expires is None


def test_serialize_round_trip_and_content_length_recomputed() -> None:
    m = invite()
    out = m.serialize()
    assert out.startswith(b"INVITE sip:bob@127.0.0.1:5090 SIP/2.0\r\nVia: SIP/2.0/UDP ")
    assert out.endswith(b"Content-Length: 4\r\n\r\nv=0\n")
    built = Request("OPTIONS", SipURI.parse("sip:a@b"), Headers((("Content-Length", "99"),)))
    assert built.serialize() == b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"
    assert parse_message(out) == m


def test_parse_response_and_leading_crlf() -> None:
    data = (
        b"\r\n\r\nSIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
        b"CSeq: 5 INVITE\r\nl:0\r\n\r\n"
    )
    m = parse_message(data)
    assert isinstance(m, Response)
    assert (m.status, m.reason, m.cseq.number) == (486, "Busy Here", 5)
    assert Response(200, "OK").serialize() == b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"


def test_folding_and_compact_names() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h\r\n ;branch=z9hG4bK1\r\n"
        b"X-Long: one\r\n\ttwo\r\ni: abc\r\nl: 0\r\n\r\n"
    )
    m = parse_message(data)
    assert m.top_via.branch == "z9hG4bK1"
    assert m.headers.get("x-long") == "one two" and m.call_id == "abc"


@pytest.mark.parametrize(
    ("data", "status", "word"),
    [
        (b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n", 400, "empty line"),
        (b"OPTIONS sip:a@b SIP/3.0\r\n\r\n", 505, "Version"),
        (b"OPTIONS sip:a@b HTTP/1.1\r\n\r\n", 400, "SIP-Version"),
        (b"SIP/2.0 99 Low\r\n\r\n", 400, "status code"),
        (b"SIP/2.0 2000 Big\r\n\r\n", 400, "status code"),
        (b"OPT<IONS sip:a@b SIP/2.0\r\n\r\n", 400, "method"),
        (b"OPTIONS sip:a@b SIP/2.0\r\n continuation\r\n\r\n", 400, "Continuation"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nNoColon\r\n\r\n", 400, "header line"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n", 400, "header line"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nX: a\rb\r\n\r\n", 400, "Bare CR"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: five\r\n\r\n", 400, "Content-Length"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc", 400, "Content-Length"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nMax-Forwards: 256\r\n\r\n", 400, "Max-Forwards"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: a b\r\n\r\n", 400, "Call-ID"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nContact: *, <sip:a@b>\r\n\r\n", 400, "Contact"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nRoute: sip:a@b;lr,\r\n\r\n", 400, "Route"),
        (b"", 400, "empty line"),
    ],
)
def test_parse_errors(data: bytes, status: int, word: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == status
    assert word.lower() in info.value.reason.lower()


def test_datagram_body_framing() -> None:
    head = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n\r\n"
    assert parse_message(head + b"abcdef").body == b"abc"
    no_cl = b"MESSAGE sip:a@b SIP/2.0\r\nX: 1\r\n\r\nrest of datagram"
    assert parse_message(no_cl).body == b"rest of datagram"


def test_size_limits_each_refused_clearly() -> None:
    limits = ParseLimits(max_message_bytes=200, max_headers=3, max_header_line=40)
    big = b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"a" * 300 + b"\r\n\r\n"
    with pytest.raises(SipParseError) as info:
        parse_message(big, limits=limits)
    assert (info.value.status, info.value.reason) == (513, "Message Too Large")
    many = b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: 1\r\n" * 4 + b"\r\n"
    with pytest.raises(SipParseError, match="Too many header fields"):
        parse_message(many, limits=limits)
    long_line = b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"a" * 41 + b"\r\n\r\n"
    with pytest.raises(SipParseError, match="Header field too long"):
        parse_message(long_line, limits=limits)
    folded = b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"a" * 30 + b"\r\n " + b"b" * 30 + b"\r\n\r\n"
    with pytest.raises(SipParseError, match="Header field too long"):
        parse_message(folded, limits=limits)
    assert parse_message(b"OPTIONS sip:a@b SIP/2.0\r\nX: 1\r\n\r\n", limits=limits)
    # One line carrying many comma-separated values counts value by value.
    routes = b"OPTIONS sip:a@b SIP/2.0\r\nRoute: <sip:a>,<sip:b>,<sip:c>,<sip:d>\r\n\r\n"
    with pytest.raises(SipParseError, match="Too many header fields"):
        parse_message(routes, limits=limits)


def test_stream_framer_keepalives_split_and_pipelining() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == []  # RFC 5626 keep-alive ping
    assert framer.feed(INVITE[:50]) == []
    out = framer.feed(INVITE[50:] + b"\r\n" + INVITE)
    assert out == [invite(), invite()]
    bad = b"OPTIONS sip:a@b SIP/2.0\r\nVia: junk\r\nContent-Length: 0\r\n\r\n"
    out = framer.feed(bad + INVITE)
    assert isinstance(out[0], SipParseError) and not out[0].fatal
    assert out[1] == invite() and not framer.closed


def test_stream_framer_limits() -> None:
    framer = StreamFramer(ParseLimits(max_message_bytes=100))
    out = framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n")
    assert isinstance(out[0], SipParseError) and out[0].status == 513 and framer.closed
    framer = StreamFramer(ParseLimits(max_message_bytes=100))
    out = framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nX: " + b"a" * 200)
    assert isinstance(out[0], SipParseError) and out[0].fatal


def test_make_response_copies_rfc_headers() -> None:
    req = invite()
    ringing = make_response(req, 180, to_tag="b2")
    assert ringing.reason == "Ringing"
    assert ringing.headers.get_all("Via") == req.headers.get_all("Via")
    assert ringing.from_ == req.from_ and ringing.to.tag == "b2"
    assert ringing.call_id == req.call_id and ringing.cseq == req.cseq
    assert len(ringing.record_routes) == 2
    trying = make_response(req, 100, to_tag="b2")
    assert trying.to.tag is None and "Record-Route" not in trying.headers
    busy = make_response(req, 486, "Busy", to_tag="b2", headers=(("Retry-After", "5"),))
    assert busy.reason == "Busy" and busy.headers.get("Retry-After") == "5"
    assert "Record-Route" not in busy.headers and "Contact" not in busy.headers
    tagged = parse_message(INVITE.replace(b"To: <sip:bob@127.0.0.1>", b"To: <sip:b@h>;tag=old"))
    assert isinstance(tagged, Request)
    assert make_response(tagged, 200, to_tag="new").to.tag == "old"


def test_transaction_keys() -> None:
    req = invite()
    key = transaction_key(req)
    assert (key.branch, key.sent_by, key.method, key.is_rfc3261) == (
        "z9hG4bKabc",
        "127.0.0.1:5060",
        "INVITE",
        True,
    )
    ack = parse_message(INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"1 INVITE", b"1 ACK"))
    assert transaction_key(ack) == key
    cancel = parse_message(
        INVITE.replace(b"INVITE sip", b"CANCEL sip").replace(b"1 INVITE", b"1 CANCEL")
    )
    assert transaction_key(cancel) != key
    assert transaction_key(make_response(req, 200, to_tag="x")) == key
    legacy = parse_message(INVITE.replace(b"branch=z9hG4bKabc", b"branch=abc"))
    lkey = transaction_key(legacy)
    assert not lkey.is_rfc3261 and lkey.legacy[1:4] == ("a1", "c1@127.0.0.1", "1")


def test_validate_request_policy() -> None:
    req = invite()
    assert validate_request(req) is None
    assert validate_request(req, UasPolicy(methods=frozenset({"BYE"}))) is not None
    required = parse_message(INVITE.replace(b"Max-Forwards: 70", b"Require: 100rel, foo"))
    assert isinstance(required, Request)
    rejection = validate_request(required)
    assert rejection is not None and rejection.status == 420
    assert rejection.headers == (("Unsupported", "foo"),)
    sips = parse_message(INVITE.replace(b"INVITE sip:bob", b"INVITE sips:bob"))
    assert isinstance(sips, Request)
    assert validate_request(sips) is None
    blocked = validate_request(sips, UasPolicy(uri_schemes=frozenset({"sip"})))
    assert blocked is not None and blocked.status == 416


def test_extension_header_accessors() -> None:
    data = (
        b"REFER sip:b@h SIP/2.0\r\n"
        b"Refer-To: <sip:c@h?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n"
        b"Replaces: abc@h;to-tag=1;from-tag=2\r\n"
        b"o: refer;id=7\r\n"
        b"Subscription-State: active;expires=60\r\n"
        b'Proxy-Authorization: Digest username="u", realm="r"\r\n'
        b"l: 0\r\n\r\n"
    )
    m = parse_message(bytearray(data))
    assert m.refer_to is not None
    assert m.refer_to.uri.headers == (("Replaces", "abc@h;to-tag=1;from-tag=2"),)
    assert m.replaces is not None and m.replaces.to_tag == "1"
    assert m.event is not None and (m.event.package, m.event.id) == ("refer", "7")
    assert m.subscription_state is not None and m.subscription_state.expires == 60
    (auth,) = m.auth_headers("Proxy-Authorization")
    assert auth.param("username") == "u"
    bare = parse_message(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n")
    assert (bare.refer_to, bare.replaces, bare.event, bare.subscription_state) == (None,) * 4
    assert bare.auth_headers("WWW-Authenticate") == ()


def test_construction_refuses_injection() -> None:
    with pytest.raises(SipParseError):
        Headers((("Subject", "hi\r\nVia: SIP/2.0/UDP evil"),))
    with pytest.raises(SipParseError):
        Headers((("Bad Name", "x"),))
    with pytest.raises(SipParseError):
        Request("INVITE sip:x SIP/2.0\r\n", SipURI.parse("sip:a@b"))
    with pytest.raises(SipParseError):
        Response(200, "OK\r\nX: y")
    with pytest.raises(SipParseError):
        Response(1000, "Big")
    # Display names are quoted, so a quote or backslash cannot break out either.
    hostile = '"evil" <sip:x@y>, \\'
    out = make_response(invite(), 200, to_tag="t").headers.add(
        "P-Asserted-Identity", str(NameAddr(invite().from_.uri, hostile))
    )
    reparsed = parse_message(Response(200, "OK", out).serialize())
    assert NameAddr.parse(reparsed.headers.get("P-Asserted-Identity") or "").display_name == hostile


def test_well_formed_values_are_remembered_and_malformed_ones_never() -> None:
    """Header values already parsed are not parsed again (a dialog repeats them), but a
    malformed value is refused every time, also once the bounded memory has been
    emptied and refilled by other traffic."""
    from sip_media.sip import message

    assert isinstance(parse_message(INVITE), Request)
    assert ("From", "Alice <sip:alice@127.0.0.1>;tag=a1") in message._WELL_FORMED
    assert ("Contact", "<sip:alice@127.0.0.1:5060>") in message._WELL_FORMED
    bad_from = INVITE.replace(b"From: Alice <sip:alice@127.0.0.1>", b"From: Alice <sip:alice@")
    bad_contact = INVITE.replace(b"Contact: <sip:alice@127.0.0.1:5060>", b"Contact: <sip:@>;;")
    for round_ in range(3):
        for bad, header in ((bad_from, "From"), (bad_contact, "Contact")):
            with pytest.raises(SipParseError, match=f"Bad {header} header"):
                parse_message(bad)
        for n in range(message._WELL_FORMED_MAX // 2 + round_):
            parse_message(INVITE.replace(b"tag=a1", b"tag=t%d" % n))
        assert len(message._WELL_FORMED) <= message._WELL_FORMED_MAX
