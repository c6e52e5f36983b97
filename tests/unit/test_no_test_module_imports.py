"""No module under ``tests/`` or ``scripts/`` imports a conftest or a ``test_*`` module.

Shared helpers live in ``tests/support`` (or a plain helper module beside the tests);
a conftest holds fixtures only and a test module holds tests only, so importing either
would run its collection-time side effects twice and hide where a helper belongs.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _forbidden(name: str) -> bool:
    return name == "conftest" or name.startswith("test_")


def offending_imports(path: Path, root: Path = ROOT) -> list[str]:
    """``file:line module`` for every import of a conftest or test module in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            modules = [base]
            if node.level or (node.module or "").split(".")[0] in {"tests", "scripts"}:
                modules += [f"{base}.{alias.name}" for alias in node.names]
        bad = [m for m in modules if any(_forbidden(part) for part in m.split(".") if part)]
        if bad:
            found.append(f"{path.relative_to(root)}:{node.lineno} {bad[0]}")
    return found


def test_nothing_imports_a_conftest_or_a_test_module() -> None:
    files = sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")])
    assert len(files) > 50  # the scan really sees the suites
    offending = [hit for path in files for hit in offending_imports(path)]
    assert offending == []


def test_the_scan_catches_every_form(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    bad = {
        "from .conftest import Rig": "conftest",
        "from tests.interop.calls.conftest import Sipp": "conftest",
        "import tests.e2e.test_transfers": "test_transfers",
        "from tests.e2e import test_scenarios_calls": "test_scenarios_calls",
        "from . import conftest": "conftest",
    }
    for source, culprit in bad.items():
        probe.write_text(source + "\n")
        [hit] = offending_imports(probe, tmp_path)
        assert hit.startswith("probe.py:1 ") and hit.endswith(culprit), (source, hit)
    probe.write_text("from tests.support.sipp import Sipp\nfrom hypothesis import given\n")
    assert offending_imports(probe, tmp_path) == []
