"""RFC 4475 / RFC 5118 torture corpus: every message, parametrised over MANIFEST.md.

Each manifest row gets an expectation here: either it parses (and its values are checked
by a function below), or ``parse_message`` refuses it with a status, or it parses and
``validate_request`` (the UAS checks) refuses it with a status.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from sip_media.sip.bindings import apply_register
from sip_media.sip.digest import DigestServer
from sip_media.sip.errors import AuthError, SipParseError
from sip_media.sip.headers import AuthHeader
from sip_media.sip.message import (
    Message,
    Request,
    Response,
    StreamFramer,
    parse_message,
    transaction_key,
    validate_request,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "rfc4475"
MANIFEST = (DATA / "MANIFEST.md").read_text(encoding="utf-8")


def manifest_rows() -> dict[str, str]:
    """file (relative to DATA) -> class column of the per-file expectation tables."""
    rows: dict[str, str] = {}
    section = None
    for line in MANIFEST.splitlines():
        if line.startswith("## Per-file expectations"):
            section = ""
        elif line.startswith("### RFC 5118") and section is not None:
            section = "rfc5118/"
        elif line.startswith("## ") and section is not None:
            break
        m = re.match(r"\| `([\w.-]+\.dat)` \| [^|]* \| [^|]* \| ([^|]+) \|", line)
        if m and section is not None:
            rows[section + m.group(1)] = m.group(2).strip()
    return rows


ROWS = manifest_rows()


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def parse(name: str) -> Message:
    return parse_message(load(name))


def req(name: str) -> Request:
    msg = parse(name)
    assert isinstance(msg, Request)
    return msg


# -- value checks for every message that must parse ------------------------------------


def check_wsinv(m: Request) -> None:
    assert m.method == "INVITE"
    assert str(m.uri) == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert m.max_forwards == 68
    assert (m.cseq.number, m.cseq.method) == (9, "INVITE")
    assert len(m.via) == 3
    assert (m.via[0].transport, m.via[0].host, m.via[0].branch) == ("UDP", "192.0.2.2", "390skdjuw")
    assert (m.via[1].transport, m.via[1].host, m.via[1].branch) == (
        "TCP",
        "spindle.example.com",
        "z9hG4bK9ikj8",
    )
    assert m.via[2].branch == "z9hG4bK30239"
    assert m.to.tag == "1918181833n"
    assert m.to.uri.host == "chair-dnrc.example.com"
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_.tag == "98asjd8"
    assert m.headers.get("Subject") == ""
    assert len(m.routes) == 1 and m.routes[0].uri.has_param("lr")
    contact = m.contacts[0]
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n")
    assert validate_request(m) is None


def check_intmeth(m: Request) -> None:
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_.param("fromParam''~+*_!.-%") == "работающий"
    assert m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.cseq.method == m.method
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    rejection = validate_request(m)
    assert rejection is not None and rejection.status == 501
    assert dict(rejection.headers)["Allow"].startswith("ACK, BYE")


def check_esc01(m: Request) -> None:
    assert m.uri.user == "sips:user@example.com" and m.uri.host == "example.net"
    assert m.to.uri.user == "user"
    assert m.from_.uri.user == "I have spaces"
    assert m.contacts[0].uri.user == "caller"
    assert m.contacts[0].uri.params == (("lr", None), ("name", "value%41"))
    assert validate_request(m) is None


def check_escnull(m: Request) -> None:
    assert m.to.uri.user == "null-\x00-null" and m.from_.uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contacts] == ["\x00", "\x00\x00"]
    assert str(m.contacts[1].uri) == "sip:%00%00@host5.example.com"
    assert m.headers.get("Content-Length") == "0"


def check_esc02(m: Request) -> None:
    assert m.method == "RE%47IST%45R"
    assert m.to.display_name == "%Z%45" and m.from_.display_name == "%Z%45"
    assert [c.uri.host for c in m.contacts] == ["host1.example.com", "host3.example.com"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert m.top_via.branch == "z9hG4bK209%fzsnel234"
    rejection = validate_request(m)
    assert rejection is not None and rejection.status == 501


def check_lwsdisp(m: Request) -> None:
    assert m.from_.display_name == "caller" and m.from_.tag == "323"
    assert str(m.from_.uri) == "sip:caller@example.com"


def check_longreq(m: Request) -> None:
    assert len(m.via) == 34
    branch = next(v.branch for v in m.via if v.branch)
    assert branch == "very" + "long" * 50 + "branchvalue"
    assert m.to.display_name is not None and "extreme" * 10 in m.to.display_name
    assert m.to.uri.port == 6000
    assert len(m.call_id) > 100 and len(m.body) == 150


def check_dblreq(m: Request) -> None:
    assert m.method == "REGISTER" and m.body == b""
    assert b"INVITE" in load("dblreq.dat")  # the trailing octets exist and were dropped


def check_semiuri(m: Request) -> None:
    assert m.uri.user == "user;par=u@example.net" and m.uri.host == "example.com"
    assert m.uri.params == ()
    assert m.headers.get_all("Accept") == (
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    )


def check_transports(m: Request) -> None:
    assert [v.transport for v in m.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert m.top_via.host == "t1.example.com"


def check_mpart01(m: Request) -> None:
    assert m.method == "MESSAGE" and m.content_type == "multipart/mixed"
    assert len(m.body) == 553 and b"\x00" in m.body


def check_unreason(m: Response) -> None:
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


def check_noreason(m: Response) -> None:
    assert (m.status, m.reason) == (100, "")


def check_badbranch(m: Request) -> None:
    key = transaction_key(m)
    assert not key.is_rfc3261 and key.branch == ""
    assert key.legacy[2] == m.call_id


def check_unksm2(m: Request) -> None:
    assert (m.to.uri.scheme, m.to.uri.opaque) == ("isbn", "2983792873")
    assert m.from_.uri.scheme == "http"
    assert m.contacts[0].uri.scheme == "name" and m.contacts[0].uri.opaque == "John_Smith"


def check_regaut01(m: Request) -> None:
    (auth,) = m.auth_headers("Authorization")
    assert auth.scheme == "NoOneKnowsThisScheme" and not auth.is_digest
    # A registrar without authentication ignores the header: 200 (a query, no Contact)...
    outcome = apply_register(m, [], now=1000.0)
    assert outcome.aor == "sip:j.user@example.com" and outcome.bindings == ()
    assert not outcome.changed
    # ...one with authentication answers 401 with a challenge it understands.
    server = DigestServer("example.com", b"s" * 32, {}.get, clock=lambda: 1000.0)
    with pytest.raises(AuthError) as info:
        server.verify(auth, method="REGISTER", uri=str(m.uri))
    assert info.value.status == 401
    assert AuthHeader.parse(info.value.headers[0][1]).is_digest


def check_bcast(m: Response) -> None:
    assert [v.host for v in m.via] == ["192.0.2.198", "255.255.255.255"]


def check_zeromf(m: Request) -> None:
    assert m.max_forwards == 0 and validate_request(m) is None


def check_cparam01(m: Request) -> None:
    assert str(m.contacts[0].uri) == "sip:+19725552222@gw1.example.net"
    assert m.contacts[0].params == (("unknownparam", None),)


def check_cparam02(m: Request) -> None:
    assert str(m.contacts[0].uri) == "sip:+19725552222@gw1.example.net;unknownparam"
    assert m.contacts[0].params == ()


def check_regescrt(m: Request) -> None:
    assert m.contacts[0].uri.headers == (("Route", "<sip:sip.example.com>"),)
    assert str(m.contacts[0].uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"


def check_inv2543(m: Request) -> None:
    assert "Content-Length" not in m.headers and len(m.body) == 105
    assert m.from_.tag is None and m.max_forwards is None
    assert not transaction_key(m).is_rfc3261


def check_baddate(m: Request) -> None:
    assert m.headers.get("Date", "").endswith("EST")  # kept, never interpreted
    assert validate_request(m) is None


def check_ipv6_good(m: Request) -> None:
    assert (m.uri.host, m.uri.port) == ("[2001:db8::10]", None)
    assert m.top_via.host == "[2001:db8::9:1]"
    assert m.contacts[0].uri.host == "[2001:db8::1]"


def check_port_ambiguous(m: Request) -> None:
    assert (m.uri.host, m.uri.port) == ("[2001:db8::10:5070]", None)


def check_port_unambiguous(m: Request) -> None:
    assert (m.uri.host, m.uri.port) == ("[2001:db8::10]", 5070)


def check_received_delim(m: Request) -> None:
    assert m.top_via.received == "[2001:db8::9:255]"


def check_received_no_delim(m: Request) -> None:
    assert m.top_via.received == "2001:db8::9:255"


def check_ipv6_in_sdp(m: Request) -> None:
    assert b"c=IN IP6 2001:db8::20" in m.body and len(m.body) == 251


def check_mult_ip_header(m: Request) -> None:
    assert [(v.host, v.port) for v in m.via] == [
        ("[2001:db8::9:1]", 6050),
        ("192.0.2.1", None),
        ("[2001:db8::9:255]", None),
    ]
    assert m.via[2].received == "192.0.2.200"


def check_mult_ip_sdp(m: Request) -> None:
    assert b"c=IN IP6 2001:db8::1" in m.body and len(m.body) == 189


def check_v4_mapped(m: Request) -> None:
    assert (m.via[0].host, m.via[0].port) == ("[::ffff:192.0.2.10]", 19823)
    assert m.contacts[0].uri.host == "[::ffff:192.0.2.2]"


def check_three_colons(m: Request) -> None:
    assert m.uri.host == "[2001:db8:::192.0.2.1]" and m.uri.user == "user"


def check_two_colons(m: Request) -> None:
    assert m.uri.host == "[2001:db8::192.0.2.1]"


VALID: dict[str, Callable[..., None]] = {
    "wsinv.dat": check_wsinv,
    "intmeth.dat": check_intmeth,
    "esc01.dat": check_esc01,
    "escnull.dat": check_escnull,
    "esc02.dat": check_esc02,
    "lwsdisp.dat": check_lwsdisp,
    "longreq.dat": check_longreq,
    "dblreq.dat": check_dblreq,
    "semiuri.dat": check_semiuri,
    "transports.dat": check_transports,
    "mpart01.dat": check_mpart01,
    "unreason.dat": check_unreason,
    "noreason.dat": check_noreason,
    "badbranch.dat": check_badbranch,
    "unksm2.dat": check_unksm2,
    "regaut01.dat": check_regaut01,
    "bcast.dat": check_bcast,
    "zeromf.dat": check_zeromf,
    "cparam01.dat": check_cparam01,
    "cparam02.dat": check_cparam02,
    "regescrt.dat": check_regescrt,
    "inv2543.dat": check_inv2543,
    "baddate.dat": check_baddate,
    "rfc5118/ipv6-good.dat": check_ipv6_good,
    "rfc5118/port-ambiguous.dat": check_port_ambiguous,
    "rfc5118/port-unambiguous.dat": check_port_unambiguous,
    "rfc5118/via-received-param-with-delim.dat": check_received_delim,
    "rfc5118/via-received-param-no-delim.dat": check_received_no_delim,
    "rfc5118/ipv6-in-sdp.dat": check_ipv6_in_sdp,
    "rfc5118/mult-ip-in-header.dat": check_mult_ip_header,
    "rfc5118/mult-ip-in-sdp.dat": check_mult_ip_sdp,
    "rfc5118/ipv4-mapped-ipv6.dat": check_v4_mapped,
    "rfc5118/ipv6-bug-abnf-3-colons.dat": check_three_colons,
    "rfc5118/ipv6-correct-abnf-2-colons.dat": check_two_colons,
}

# The parser itself refuses these: (status, a word the reason must contain).
PARSE_REJECT: dict[str, tuple[int, str]] = {
    "badinv01.dat": (400, "Via"),
    "clerr.dat": (400, "Content-Length"),
    "ncl.dat": (400, "Content-Length"),
    "scalar02.dat": (400, "CSeq"),
    "scalarlg.dat": (400, "CSeq"),
    "quotbal.dat": (400, "quoted"),
    "ltgtruri.dat": (400, "URI"),
    "lwsruri.dat": (400, "Request-Line"),
    "lwsstart.dat": (400, "Request-Line"),
    "trws.dat": (400, "Request-Line"),
    "regbadct.dat": (400, "Contact"),
    "badaspec.dat": (400, "To"),
    "baddn.dat": (400, "empty line"),
    "badvers.dat": (505, "Version"),
    "bigcode.dat": (400, "status code"),
    "mcl01.dat": (400, "Content-Length"),
    "test.dat": (400, "Request-Line"),
    "rfc5118/ipv6-bad.dat": (400, "port"),
}

# Well-formed, refused by the UAS checks: (status, extra header that must be present).
VALIDATE_REJECT: dict[str, tuple[int, str | None]] = {
    "escruri.dat": (400, None),
    "mismatch01.dat": (400, None),
    "mismatch02.dat": (501, "Allow"),
    "insuf.dat": (400, None),
    "unkscm.dat": (416, None),
    "novelsc.dat": (416, None),
    "bext01.dat": (420, "Unsupported"),
    "invut.dat": (415, "Accept"),
    "multi01.dat": (400, None),
    "sdp01.dat": (406, "Warning"),
}


def test_corpus_is_byte_exact() -> None:
    expected = re.findall(r"^([0-9a-f]{64})  (\S+)$", MANIFEST, re.MULTILINE)
    assert len(expected) == 74
    for digest, name in expected:
        assert hashlib.sha256(load(name)).hexdigest() == digest, name


def test_every_manifest_row_has_an_expectation() -> None:
    assert len(ROWS) == 62
    covered = set(VALID) | set(PARSE_REJECT) | set(VALIDATE_REJECT)
    assert covered == set(ROWS)
    assert not set(VALID) & set(PARSE_REJECT)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_manifest_message(name: str) -> None:
    klass = ROWS[name]
    if name in PARSE_REJECT:
        status, word = PARSE_REJECT[name]
        assert klass.startswith(("invalid", "application layer", "archive extra"))
        with pytest.raises(SipParseError) as info:
            parse(name)
        assert info.value.status == status
        assert word.lower() in info.value.reason.lower()
    elif name in VALIDATE_REJECT:
        status, header = VALIDATE_REJECT[name]
        rejection = validate_request(req(name))
        assert rejection is not None and rejection.status == status, rejection
        if header is not None:
            assert header in dict(rejection.headers)
        response = rejection.to_response(req(name), to_tag="t1")
        assert response.status == status
        if "To" in response.headers:
            assert response.to.tag in (None, "t1")
    else:
        assert not klass.startswith("invalid ") or name == "baddate.dat", klass
        VALID[name](parse(name))


def test_ltgtruri_and_trws_never_half_parse() -> None:
    for name in ("ltgtruri.dat", "lwsruri.dat", "trws.dat", "lwsstart.dat"):
        with pytest.raises(SipParseError):
            parse(name)


@pytest.mark.parametrize(
    "name", ["wsinv.dat", "esc01.dat", "longreq.dat", "rfc5118/ipv4-mapped-ipv6.dat"]
)
def test_valid_messages_round_trip(name: str) -> None:
    first = parse(name)
    again = parse_message(first.serialize())
    # serialize() rewrites Content-Length last, from the body; everything else survives.
    assert again.headers.remove("Content-Length") == first.headers.remove("Content-Length")
    assert (again.body, type(again)) == (first.body, type(first))
    assert again.serialize() == first.serialize()


def test_shared_transaction_keys_from_manifest() -> None:
    pairs = [
        ("regescrt.dat", "escnull.dat"),
        ("cparam02.dat", "cparam01.dat"),
        ("unkscm.dat", "novelsc.dat"),
        ("rfc5118/port-ambiguous.dat", "rfc5118/ipv6-good.dat"),
        ("rfc5118/ipv6-correct-abnf-2-colons.dat", "rfc5118/ipv6-bug-abnf-3-colons.dat"),
    ]
    for later, earlier in pairs:
        assert transaction_key(parse(later)) == transaction_key(parse(earlier))
    assert transaction_key(parse("wsinv.dat")) != transaction_key(parse("esc01.dat"))


# -- the same corpus on a stream transport ----------------------------------------------


@pytest.mark.parametrize("name", ["clerr.dat", "baddn.dat"])
def test_stream_waits_for_incomplete_messages(name: str) -> None:
    framer = StreamFramer()
    assert framer.feed(load(name)) == []
    assert not framer.closed


@pytest.mark.parametrize("name", ["ncl.dat", "mcl01.dat", "inv2543.dat"])
def test_stream_framing_errors_close_the_connection(name: str) -> None:
    framer = StreamFramer()
    out = framer.feed(load(name))
    assert len(out) == 1 and isinstance(out[0], SipParseError) and out[0].fatal
    assert framer.closed
    assert framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n") == []


def test_stream_dblreq_yields_register_then_invite() -> None:
    framer = StreamFramer()
    out = framer.feed(load("dblreq.dat"))
    assert [m.method for m in out if isinstance(m, Request)] == ["REGISTER", "INVITE"]


def test_stream_valid_corpus_byte_by_byte() -> None:
    framer = StreamFramer()
    data = load("wsinv.dat") + b"\r\n\r\n" + load("esc01.dat")
    out: list[object] = []
    for i in range(len(data)):
        out.extend(framer.feed(data[i : i + 1]))
    assert [type(m) for m in out] == [Request, Request]
    assert out == [parse("wsinv.dat"), parse("esc01.dat")]
