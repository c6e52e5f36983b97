"""SipURI / NameAddr: parsing, escaping, serialisation and RFC 3261 §19.1.4 comparison."""

from __future__ import annotations

import pytest

from sip_media.sip.errors import SipParseError
from sip_media.sip.uri import NameAddr, SipURI


def test_full_sip_uri() -> None:
    uri = SipURI.parse("sips:alice:secret@Example.COM:5061;transport=tcp;lr?subject=hi&x=y")
    assert uri.scheme == "sips" and uri.user == "alice" and uri.password == "secret"
    assert (uri.host, uri.port) == ("Example.COM", 5061)
    assert uri.params == (("transport", "tcp"), ("lr", None))
    assert uri.headers == (("subject", "hi"), ("x", "y"))
    assert uri.transport == "tcp" and uri.has_param("LR") and uri.param("lr") is None
    assert str(uri) == "sips:alice:secret@Example.COM:5061;transport=tcp;lr?subject=hi&x=y"


def test_escapes_decode_once_and_reencode() -> None:
    uri = SipURI.parse("sip:I%20have%20spaces@h;n%61me=v%25%34%31")
    assert uri.user == "I have spaces"
    assert uri.params == (("name", "v%41"),)
    assert str(uri) == "sip:I%20have%20spaces@h;name=v%2541"
    assert SipURI.parse(str(uri)) == uri


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("sip:[2001:db8::10]", "[2001:db8::10]", None),
        ("sip:u@[2001:db8::10]:5070", "[2001:db8::10]", 5070),
        ("sip:[::ffff:192.0.2.1]:1", "[::ffff:192.0.2.1]", 1),
        ("sip:192.0.2.1:65535", "192.0.2.1", 65535),
    ],
)
def test_hosts(text: str, host: str, port: int | None) -> None:
    uri = SipURI.parse(text)
    assert (uri.host, uri.port) == (host, port)
    assert str(uri) == text


@pytest.mark.parametrize(
    "text",
    [
        "sip:2001:db8::10",
        "sip:[2001:db8::10",
        "sip:[zz::1]",
        "sip:host:99999",
        "sip:host:-1",
        "sip:us er@host",
        "sip:user@",
        "sip:",
        "sip:user@host;;lr",
        "sip:%zz@host",
        "<sip:a@b>",
        " sip:a@b",
        "noscheme",
        "sip:a@b?novalue",
        "isbn:",
        "http:spa ce",
    ],
)
def test_invalid_uris(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        SipURI.parse(text)
    assert info.value.status == 400


def test_tel_and_opaque_schemes() -> None:
    tel = SipURI.parse("tel:+1-201-555-0123;phone-context=example.com")
    assert (tel.scheme, tel.user, tel.param("phone-context")) == (
        "tel",
        "+1-201-555-0123",
        "example.com",
    )
    assert str(tel) == "tel:+1-201-555-0123;phone-context=example.com"
    other = SipURI.parse("urn:service:sos")
    assert (other.scheme, other.opaque, other.is_sip) == ("urn", "service:sos", False)
    assert str(other) == "urn:service:sos"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"),
        ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
         "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
        ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
         "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
    ],
)  # fmt: skip
def test_equivalent_uris_rfc3261_examples(a: str, b: str) -> None:
    assert SipURI.parse(a).equivalent(SipURI.parse(b))
    assert SipURI.parse(b).equivalent(SipURI.parse(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
        ("sip:a@b", "sips:a@b"),
    ],
)
def test_non_equivalent_uris_rfc3261_examples(a: str, b: str) -> None:
    assert not SipURI.parse(a).equivalent(SipURI.parse(b))


def test_uri_is_frozen_and_helpers_copy() -> None:
    uri = SipURI.parse("sip:a@b;lr")
    with pytest.raises(AttributeError):
        uri.host = "x"  # type: ignore[misc]
    assert str(uri.with_param("transport", "tcp")) == "sip:a@b;lr;transport=tcp"
    assert str(uri.without_param("LR")) == "sip:a@b"
    assert str(SipURI.parse("sip:a@b?x=1").without_headers()) == "sip:a@b"
    assert uri.host_port == "b" and SipURI.parse("sip:b:5").host_port == "b:5"


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        ('"Alice A." <sip:alice@a.com>;tag=1', "Alice A.", "sip:alice@a.com", (("tag", "1"),)),
        ("Bob Smith <sip:bob@b.com>", "Bob Smith", "sip:bob@b.com", ()),
        ("<sip:c@c.com;lr>", None, "sip:c@c.com;lr", ()),
        ("sip:d@d.com;tag=9;foo", None, "sip:d@d.com", (("tag", "9"), ("foo", None))),
        ('"q\\"uote\\\\" <sip:e@e>', 'q"uote\\', "sip:e@e", ()),
        ("caller<sip:f@f>", "caller", "sip:f@f", ()),
        ("<sip:g@g> ; expires = 60 ; q=0.5", None, "sip:g@g", (("expires", "60"), ("q", "0.5"))),
    ],
)
def test_name_addr(text: str, display: str | None, uri: str, params: object) -> None:
    na = NameAddr.parse(text)
    assert na.display_name == display
    assert str(na.uri) == uri
    assert na.params == params
    assert NameAddr.parse(str(na)) == na


@pytest.mark.parametrize(
    "text",
    [
        '"unterminated <sip:a@b>',
        "Bell, Alexander <sip:a@b>",
        "<sip:a@b",
        "< sip:a@b >",
        "sip:a@b?Route=x",
        "<sip:a@b>;;",
        "<sip:a@b>;=x",
        "<sip:a@b>;p=",
        "<sip:a@b> junk",
        '"x" sip:a@b',
    ],
)
def test_invalid_name_addr(text: str) -> None:
    with pytest.raises(SipParseError):
        NameAddr.parse(text)


def test_name_addr_tag_helpers() -> None:
    na = NameAddr.parse('"A" <sip:a@b>;fp="quoted, value";tag=x')
    assert na.tag == "x" and na.param("fp") == "quoted, value"
    assert na.with_tag("y").tag == "y"
    assert str(NameAddr(SipURI.parse("sip:a@b"), 'He said "hi"').with_tag("t")) == (
        '"He said \\"hi\\"" <sip:a@b>;tag=t'
    )
