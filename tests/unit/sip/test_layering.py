"""The pure SIP layers stay pure: no I/O modules, no clock reads outside injection, no rwi."""

from __future__ import annotations

import pytest

from tests.unit.sip.layering import FORBIDDEN, SIP, imports_of

PURE = ["uri", "headers", "message", "sdp", "errors", "digest", "bindings"]
PURE_SIBLINGS = {f".{name}" for name in PURE} | {f"sip_media.sip.{name}" for name in PURE}


@pytest.mark.parametrize("name", PURE)
def test_pure_module_imports(name: str) -> None:
    modules = imports_of(SIP / f"{name}.py")
    assert not {m.split(".")[0] for m in modules} & FORBIDDEN
    relative = {m for m in modules if m.startswith(".") or m.startswith("sip_media")}
    assert relative <= PURE_SIBLINGS, relative - PURE_SIBLINGS


#: the engine's transaction users: written against ``core.SipCore``, never the class
USERS = ["agent", "reinvite", "indialog", "registrar", "outbound", "stray", "stale", "stale_tx"]


@pytest.mark.parametrize("name", USERS)
def test_transaction_users_see_the_engine_only_through_its_protocol(name: str) -> None:
    modules = imports_of(SIP / f"{name}.py")
    assert not modules & {"sip_media.sip.engine", ".engine"}
    assert modules & {"sip_media.sip.core", ".core"}, "typed against core.SipCore"
