"""Registrar binding logic (RFC 3261 §10.3), including the corpus REGISTERs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sip_media.sip.bindings import (
    Binding,
    RegistrarPolicy,
    aor_of,
    apply_register,
    rebuild,
    sweep,
)
from sip_media.sip.errors import RegistrarError
from sip_media.sip.message import Request, parse_message
from sip_media.sip.uri import SipURI

DATA = Path(__file__).resolve().parents[2] / "data" / "rfc4475"
NOW = 1_700_000_000.0


def register(
    *contacts: str, call_id: str = "reg-1", cseq: int = 1, expires: str | None = None
) -> Request:
    lines = [
        "REGISTER sip:example.test SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-r",
        "From: <sip:alice@example.test>;tag=f",
        "To: <sip:Alice@EXAMPLE.test>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "Max-Forwards: 70",
    ]
    lines += [f"Contact: {c}" for c in contacts]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def corpus(name: str) -> Request:
    msg = parse_message((DATA / name).read_bytes())
    assert isinstance(msg, Request)
    return msg


def test_aor_canonical_form() -> None:
    assert aor_of(SipURI.parse("sip:Alice@EXAMPLE.test;transport=tcp")) == "sip:Alice@example.test"
    assert aor_of(SipURI.parse("sips:%62ob@h:5061")) == "sips:bob@h:5061"
    with pytest.raises(RegistrarError) as info:
        aor_of(SipURI.parse("tel:+123"))
    assert info.value.status == 400


def test_register_adds_and_reports_bindings() -> None:
    out = apply_register(
        register("<sip:a@127.0.0.1:5070>;q=0.5", "<sip:a@10.0.0.1>;expires=120;+sip.instance=x"),
        [],
        now=NOW,
        source=("127.0.0.1", 5070),
    )
    assert out.aor == "sip:Alice@example.test" and out.changed
    assert [b.contact for b in out.bindings] == ["sip:a@10.0.0.1", "sip:a@127.0.0.1:5070"]
    first, second = out.bindings
    assert first.expires_at == NOW + 120 and second.expires_at == NOW + 3600
    assert second.q == 0.5 and first.q is None and first.params == (("+sip.instance", "x"),)
    assert second.source == ("127.0.0.1", 5070) and second.cseq == 1
    headers = out.contact_headers(NOW + 20)
    assert headers[0] == ("Contact", "<sip:a@10.0.0.1>;+sip.instance=x;expires=100")
    assert headers[1] == ("Contact", "<sip:a@127.0.0.1:5070>;q=0.5;expires=3580")
    assert len(out.added) == 2 and not out.refreshed and not out.removed


def test_expires_header_default_and_clamping() -> None:
    out = apply_register(register("<sip:a@h>", expires="300"), [], now=NOW)
    assert out.bindings[0].expires_at == NOW + 300
    huge = apply_register(register("<sip:a@h>;expires=280297596632815"), [], now=NOW)
    assert huge.bindings[0].expires_at == NOW + RegistrarPolicy().max_expires
    with pytest.raises(RegistrarError) as info:
        apply_register(register("<sip:a@h>;expires=30"), [], now=NOW)
    assert info.value.status == 423 and info.value.headers == (("Min-Expires", "60"),)
    with pytest.raises(RegistrarError):
        apply_register(register("<sip:a@h>;expires=soon"), [], now=NOW)
    with pytest.raises(RegistrarError):
        apply_register(register("<sip:a@h>;q=1.5"), [], now=NOW)


def test_refresh_remove_and_cseq_ordering() -> None:
    first = apply_register(register("<sip:a@h>", cseq=5), [], now=NOW)
    later = NOW + 100
    again = apply_register(register("<sip:a@H>", cseq=6), first.bindings, now=later)
    assert [b.expires_at for b in again.bindings] == [later + 3600]
    assert len(again.refreshed) == 1 and not again.added
    # Same Call-ID, CSeq not higher: the whole update is refused.
    with pytest.raises(RegistrarError) as info:
        apply_register(register("<sip:a@h>", cseq=6), again.bindings, now=later)
    assert info.value.status == 500
    # A different Call-ID (another device / reboot) may update with any CSeq.
    other = apply_register(register("<sip:a@h>", call_id="x", cseq=1), again.bindings, now=later)
    assert other.bindings[0].call_id == "x"
    gone = apply_register(register("<sip:a@h>;expires=0", cseq=7), again.bindings, now=later)
    assert gone.bindings == () and len(gone.removed) == 1
    query = apply_register(register(cseq=8), again.bindings, now=later)
    assert query.bindings == again.bindings and not query.changed


def test_wildcard_unregister() -> None:
    current = apply_register(register("<sip:a@h>", "<sip:b@h>", cseq=1), [], now=NOW).bindings
    out = apply_register(register("*", cseq=2, expires="0"), current, now=NOW)
    assert out.bindings == () and len(out.removed) == 2
    for bad in (register("*", cseq=2), register("*", cseq=2, expires="10")):
        with pytest.raises(RegistrarError) as info:
            apply_register(bad, current, now=NOW)
        assert info.value.status == 400
    with pytest.raises(RegistrarError) as info:
        apply_register(register("*", cseq=1, expires="0"), current, now=NOW)
    assert info.value.status == 500


def test_limits() -> None:
    policy = RegistrarPolicy(max_contacts_per_aor=2, max_bindings_per_source=3)
    two = apply_register(register("<sip:a@h>", "<sip:b@h>"), [], now=NOW, policy=policy)
    with pytest.raises(RegistrarError) as info:
        apply_register(register("<sip:c@h>", cseq=2), two.bindings, now=NOW, policy=policy)
    assert info.value.status == 403 and "max 2" in info.value.reason
    # Refreshing existing contacts is always allowed at the limit.
    apply_register(register("<sip:a@h>", cseq=2), two.bindings, now=NOW, policy=policy)
    with pytest.raises(RegistrarError, match="from this address"):
        apply_register(register("<sip:z@h>"), [], now=NOW, policy=policy, source_bindings=3)


def test_sweep_rebuild_and_persistence_round_trip() -> None:
    out = apply_register(
        register('"Desk" <sip:a@h>;expires=100;q=0.7', "<sip:b@h>;expires=1000"), [], now=NOW
    )
    live, expired = sweep(out.bindings, NOW + 500)
    assert [b.contact for b in live] == ["sip:b@h"] and [b.contact for b in expired] == ["sip:a@h"]
    records = json.loads(json.dumps([b.to_dict() for b in out.bindings]))
    restored = [Binding.from_dict(r) for r in records]
    assert restored == list(out.bindings)
    assert restored[1].display_name == "Desk" and restored[1].q == 0.7  # no q ranks as 1.0
    assert rebuild(restored, NOW + 500) == {"sip:Alice@example.test": live}
    # Expired bindings are not "current" for the next REGISTER either.
    again = apply_register(register("<sip:a@h>", cseq=1), out.bindings, now=NOW + 500)
    assert len(again.added) == 1 and {b.contact for b in again.bindings} == {"sip:a@h", "sip:b@h"}


def test_corpus_registers() -> None:
    escnull = apply_register(corpus("escnull.dat"), [], now=NOW)
    assert [b.uri.user for b in escnull.bindings] == ["\x00", "\x00\x00"]  # two bindings
    cparam01 = apply_register(corpus("cparam01.dat"), [], now=NOW)
    assert cparam01.bindings[0].contact == "sip:+19725552222@gw1.example.net"
    assert cparam01.bindings[0].params == (("unknownparam", None),)
    cparam02 = apply_register(corpus("cparam02.dat"), [], now=NOW)
    assert cparam02.bindings[0].contact == "sip:+19725552222@gw1.example.net;unknownparam"
    regescrt = apply_register(corpus("regescrt.dat"), [], now=NOW)
    assert regescrt.bindings[0].contact == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    with pytest.raises(RegistrarError) as info:
        apply_register(corpus("unksm2.dat"), [], now=NOW)
    assert info.value.status == 400 and "SIP or SIPS" in info.value.reason


def test_rfc5118_registers_share_call_id_and_cseq() -> None:
    good = apply_register(corpus("rfc5118/ipv6-good.dat"), [], now=NOW)
    assert good.bindings[0].contact == "sip:caller@[2001:db8::1]"
    for name in ("rfc5118/port-ambiguous.dat", "rfc5118/port-unambiguous.dat"):
        with pytest.raises(RegistrarError) as info:
            apply_register(corpus(name), good.bindings, now=NOW)
        assert info.value.status == 500
        assert apply_register(corpus(name), [], now=NOW).bindings[0].aor == good.aor
