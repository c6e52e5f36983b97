"""The crash and outage drills of ``scripts/``, each run small, as a user runs it: the
script's one JSON object is the verdict (nothing acknowledged lost, the log verifies,
no phone left hanging, the service recovers by itself)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest

from tests.support.serve import ROOT

pytestmark = pytest.mark.e2e


async def run_drill(script: str, *args: str, limit: float = 120.0) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / script), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), limit)
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def test_sigkill_under_load_loses_nothing_and_leaves_no_dialog_up() -> None:
    result = await run_drill(
        "chaos_kill.py", "--rate", "20", "--kills", "2", "--seconds", "8", "--hold", "1"
    )
    assert result["kills"] == 2
    assert result["load"]["success"] > 0
    assert result["load"]["cut"] > 0  # the crashes did leave answered calls behind
    assert result["lost"] == 0, result["lost_action_ids"]
    assert result["verify"]["ok"], result["verify"]
    assert result["stale_dialogs"] == 0, result["per_kill"]
