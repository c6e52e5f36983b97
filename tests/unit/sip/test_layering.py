"""The pure SIP layers stay pure: no I/O modules, no clock reads outside injection, no rwi."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SIP = Path(__file__).resolve().parents[3] / "sip_media" / "sip"
PURE = ["uri", "headers", "message", "sdp", "errors", "digest", "bindings"]
FORBIDDEN = {"rwi", "asyncio", "socket", "selectors", "threading", "subprocess", "os"}
PURE_SIBLINGS = {f".{name}" for name in PURE} | {f"sip_media.sip.{name}" for name in PURE}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


@pytest.mark.parametrize("name", PURE)
def test_pure_module_imports(name: str) -> None:
    modules = imports_of(SIP / f"{name}.py")
    assert not {m.split(".")[0] for m in modules} & FORBIDDEN
    relative = {m for m in modules if m.startswith(".") or m.startswith("sip_media")}
    assert relative <= PURE_SIBLINGS, relative - PURE_SIBLINGS
