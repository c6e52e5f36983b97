"""Registrar wiring: digest challenge, bindings, change notifications, restore, routing."""

from __future__ import annotations

from sip_media.sip import notifications as n
from sip_media.sip.bindings import Binding
from sip_media.sip.digest import authorization_for
from sip_media.sip.headers import AuthHeader
from tests.unit.sip_stack.harness import Harness


def register(cseq: int, contact: str, auth: str = "", expires: int = 300) -> str:
    return (
        "REGISTER sip:127.0.0.1:5060 SIP/2.0\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKreg{cseq};rport\n"
        "From: <sip:alice@127.0.0.1:5060>;tag=r1\n"
        "To: <sip:alice@127.0.0.1:5060>\n"
        "Call-ID: reg-1\n"
        f"CSeq: {cseq} REGISTER\n"
        f"Contact: {contact}\n"
        f"Expires: {expires}\n"
        f"{auth}Content-Length: 0\n\n"
    )


def registered(h: Harness, expires: int = 300) -> None:
    h.engine.config.users["alice"] = "pw"
    h.inject(register(1, "<sip:alice@127.0.0.1:5070>"))
    [challenge] = h.take()
    assert challenge.status == 401
    header = authorization_for(
        AuthHeader.parse(challenge.header("www-authenticate") or ""),
        method="REGISTER",
        uri="sip:127.0.0.1:5060",
        username="alice",
        password="pw",
    )
    h.inject(
        register(2, "<sip:alice@127.0.0.1:5070>", f"Authorization: {header}\n", expires=expires)
    )


def test_register_with_digest_creates_binding_and_routes(h: Harness) -> None:
    registered(h)
    [ok] = h.take()
    assert ok.status == 200
    assert "expires=300" in (ok.header("contact") or "")
    [change] = h.of(n.RegistrationDidChange)
    assert change.session_id == "sip:alice@127.0.0.1:5060"
    [binding] = change.bindings  # type: ignore[attr-defined]
    assert isinstance(binding, Binding) and binding.source == ("127.0.0.1", 5070)
    route = h.engine.resolve("sip:alice@local")
    assert route.request_uri == "sip:alice@127.0.0.1:5070"
    assert route.address == ("127.0.0.1", 5070)


def test_wrong_password_is_challenged_again(h: Harness) -> None:
    h.engine.config.users["alice"] = "pw"
    h.inject(register(1, "<sip:alice@127.0.0.1:5070>"))
    challenge = AuthHeader.parse(h.take()[0].header("www-authenticate") or "")
    header = authorization_for(
        challenge, method="REGISTER", uri="sip:127.0.0.1:5060", username="alice", password="no"
    )
    h.inject(register(2, "<sip:alice@127.0.0.1:5070>", f"Authorization: {header}\n"))
    assert [m.status for m in h.take()] == [401]
    assert h.of(n.RegistrationDidChange) == []


def test_too_brief_interval_gets_423_with_min_expires(h: Harness) -> None:
    registered(h, expires=10)
    [resp] = h.take()
    assert resp.status == 423 and resp.header("min-expires") == "60"


def test_restore_persisted_bindings(h: Harness) -> None:
    registered(h)
    [change] = h.of(n.RegistrationDidChange)
    records = [b.to_dict() for b in change.bindings]  # type: ignore[attr-defined]
    fresh = Harness()
    fresh.engine.registrar.restore(Binding.from_dict(r) for r in records)
    assert fresh.engine.resolve("sip:alice@local").request_uri == "sip:alice@127.0.0.1:5070"


def test_register_for_a_foreign_domain_is_refused(h: Harness) -> None:
    h.inject(register(1, "<sip:alice@127.0.0.1:5070>").replace("@127.0.0.1:5060>", "@evil.test>"))
    assert [m.status for m in h.take()] == [403]
