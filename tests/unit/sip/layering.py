"""What a Python module imports, read with ``ast``: for the SIP layering tests."""

from __future__ import annotations

import ast
from pathlib import Path

SIP = Path(__file__).resolve().parents[3] / "sip_media" / "sip"
FORBIDDEN = {"rwi", "asyncio", "socket", "selectors", "threading", "subprocess", "os"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found
