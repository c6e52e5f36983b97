"""Headers container and typed header views."""

from __future__ import annotations

import pytest

from sip_media.sip.errors import SipParseError
from sip_media.sip.headers import (
    AuthHeader,
    CSeq,
    EventHeader,
    Headers,
    Replaces,
    SubscriptionState,
    Via,
    canonical_name,
    parse_contacts,
    parse_uint,
    split_values,
)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("i", "Call-ID"), ("m", "Contact"), ("e", "Content-Encoding"), ("l", "Content-Length"),
        ("c", "Content-Type"), ("f", "From"), ("s", "Subject"), ("k", "Supported"),
        ("t", "To"), ("v", "Via"), ("o", "Event"), ("r", "Refer-To"), ("b", "Referred-By"),
        ("u", "Allow-Events"), ("x", "Session-Expires"), ("y", "Identity"),
        ("CALL-ID", "Call-ID"), ("cseq", "CSeq"), ("www-authenticate", "WWW-Authenticate"),
        ("X-Custom", "X-Custom"), ("L", "Content-Length"),
    ],
)  # fmt: skip
def test_canonical_names(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


def test_headers_container_is_ordered_and_case_insensitive() -> None:
    h = Headers((("v", "SIP/2.0/UDP a"), ("X-A", "1"), ("via", "SIP/2.0/UDP b"), ("x-a", "2")))
    assert h.items[0] == ("Via", "SIP/2.0/UDP a")
    assert h.get_all("VIA") == ("SIP/2.0/UDP a", "SIP/2.0/UDP b")
    assert h.get_all("x-A") == ("1", "2")
    assert h.get("missing") is None and h.get("missing", "d") == "d"
    assert "V" in h and "Route" not in h and 3 not in h
    h2 = h.prepend("Via", "SIP/2.0/UDP z").set("X-A", "only").remove("via")
    assert list(h2) == [("X-A", "only")]
    assert h.add("Route", "<sip:r>").get("route") == "<sip:r>"
    assert len(h) == 4  # the original is untouched (frozen, copy-on-write)
    assert h.set("New", "1", "2").get_all("New") == ("1", "2")


def test_list_splitting_respects_quotes_and_brackets() -> None:
    value = '"Doe, John" <sip:a@b;x=1,2>;q=0.5, <sip:c@d>,sip:e@f'
    assert split_values("Contact", value) == [
        '"Doe, John" <sip:a@b;x=1,2>;q=0.5',
        "<sip:c@d>",
        "sip:e@f",
    ]
    assert split_values("Date", "Sat, 13 Nov 2010 23:29:00 GMT") == [
        "Sat, 13 Nov 2010 23:29:00 GMT"
    ]
    assert split_values("X-Unknown", "a, b") == ["a, b"]
    assert split_values("WWW-Authenticate", 'Digest realm="a", nonce="b"') == [
        'Digest realm="a", nonce="b"'
    ]


def test_via() -> None:
    via = Via.parse("SIP/2.0/udp host.example.com:5062;branch=z9hG4bK1;rport;received=1.2.3.4")
    assert (via.transport, via.host, via.port) == ("UDP", "host.example.com", 5062)
    assert via.branch == "z9hG4bK1" and via.received == "1.2.3.4"
    assert via.has_param("rport") and via.rport is None
    assert via.with_param("rport", "5000").rport == 5000
    assert str(via) == "SIP/2.0/UDP host.example.com:5062;branch=z9hG4bK1;rport;received=1.2.3.4"
    v6 = Via.parse("SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKx")
    assert (v6.host, v6.port, v6.sent_by) == ("[2001:db8::1]", 5060, "[2001:db8::1]:5060")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SIP/2.0 host",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP host;;",
        "SIP/2.0/UDP host:x",
        "SIP/2.0/UDP h;=1",
    ],
)
def test_invalid_via(value: str) -> None:
    with pytest.raises(SipParseError):
        Via.parse(value)


def test_cseq_and_uint() -> None:
    assert CSeq.parse(" 0009 \t INVITE ") == CSeq(9, "INVITE")
    assert str(CSeq(4294967295, "BYE")) == "4294967295 BYE"
    for bad in ("4294967296 INVITE", "1", "x INVITE", "1 IN VITE", "-1 BYE", "1 <BYE>"):
        with pytest.raises(SipParseError):
            CSeq.parse(bad)
    assert parse_uint("1" + "0" * 100, "Expires", clamp=True) == 2**32 - 1
    with pytest.raises(SipParseError):
        parse_uint("1" + "0" * 100, "Expires")
    with pytest.raises(SipParseError):
        parse_uint("²", "x")


def test_contacts_and_star() -> None:
    assert parse_contacts(["*"]) is None
    assert parse_contacts([]) == ()
    (one,) = parse_contacts(["<sip:a@b>;expires=30"]) or ()
    assert one.param("expires") == "30"
    with pytest.raises(SipParseError):
        parse_contacts(["*", "<sip:a@b>"])


def test_auth_header_parse_and_build() -> None:
    auth = AuthHeader.parse(
        'Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e", '
        'uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", '
        'response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9", algorithm=MD5'
    )
    assert auth.is_digest and auth.param("USERNAME") == "bob"
    assert auth.param("nc") == "00000001" and auth.param("missing") is None
    built = AuthHeader.build("Digest", [("realm", 'a "b"'), ("algorithm", "MD5"), ("nc", "01")])
    assert str(built) == 'Digest realm="a \\"b\\"", algorithm=MD5, nc=01'
    assert AuthHeader.parse(str(built)).param("realm") == 'a "b"'
    assert AuthHeader.parse("Bearer abc.def==").params == ()
    assert AuthHeader.parse('Digest realm="r",, nonce="n",').params == (
        ("realm", "r"),
        ("nonce", "n"),
    )
    with pytest.raises(SipParseError):
        AuthHeader.parse('Digest realm="unterminated')


def test_replaces_event_subscription_state() -> None:
    r = Replaces.parse("425928@bobster.example.org;to-tag=7743;from-tag=6472;early-only")
    assert (r.call_id, r.to_tag, r.from_tag, r.early_only) == (
        "425928@bobster.example.org",
        "7743",
        "6472",
        True,
    )
    assert Replaces.parse(str(r)) == r
    with pytest.raises(SipParseError):
        Replaces.parse("abc;to-tag=1")
    ev = EventHeader.parse("refer;id=93809824")
    assert (ev.package, ev.id, str(ev)) == ("refer", "93809824", "refer;id=93809824")
    ss = SubscriptionState.parse("Terminated;reason=noresource;retry-after=99999999999")
    assert (ss.state, ss.reason, ss.retry_after, ss.expires) == (
        "terminated",
        "noresource",
        2**32 - 1,
        None,
    )
    assert SubscriptionState.parse("active;expires=600").expires == 600
