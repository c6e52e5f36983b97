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
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()  # a hung drill must not outlive the test (its service, its SIPps)
        await proc.wait()
        raise AssertionError(f"{script} did not finish within {limit} s") from None
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
    # Every dialog the log knows is ended by the restart; one it does not know (killed
    # before the answer was stored) was never ACKed, and the new process ACKs and BYEs
    # the 2xx the far end retransmits.
    assert result["stale_dialogs"] == 0, result


async def test_a_database_outage_refuses_commands_keeps_media_and_recovers_alone() -> None:
    result = await run_drill(
        "chaos_db.py", "--rate", "20", "--warm", "3", "--down", "4", "--after", "3",
        "--media-calls", "1",
    )  # fmt: skip
    outage = result["outage"]
    assert outage["success_replies"] == 0
    assert outage["error_replies"] > 0
    assert set(outage["sent"]) == {"error"}  # every command sent meanwhile was refused
    assert set(outage["error_codes"]) == {"internal_error"}
    assert set(outage["readyz"]) == {"503"}
    media = result["media"]
    for leg, packets in media["received_in_outage"].items():
        # RTP kept flowing through the bridge (50 packets/s; a few may straddle the edges)
        assert packets >= 0.9 * media["expected_packets"], (leg, media)
    assert set(media["hung_up_after"].values()) == {"success"}
    assert all(media["ended_by_bye"].values()), media
    assert result["recovery"]["success_replies_after"] > 0  # the same process, no restart
    assert result["load"]["success"] > 0
    assert result["lost"] == 0, result["lost_action_ids"]
    assert result["verify"]["ok"], result["verify"]


async def test_a_short_soak_writes_everything_it_acknowledges() -> None:
    result = await run_drill(
        "soak.py", "--minutes", "0.2", "--rate", "20", "--hold", "1", "--warm", "4"
    )
    events = result["events"]
    assert events["gap_free"] and events["nothing_lost"], events
    assert events["pushed_to_client"] > 0
    assert events["pushed_missing"] == 0
    assert result["lost"] == 0, result["lost_action_ids"]
    load = result["load"]
    assert load["success"] > 0 and load["error"] == load["no_reply"] == 0, load
    assert load["answered"] == load["hung_up"] > 0
    service = result["service"]
    for moment in ("start", "steady", "end", "drained"):
        assert service[moment]["rss_kib"] > 0 and service[moment]["fds"] > 0, service
    start, steady, end = (service[m]["rss_kib"] for m in ("start", "steady", "end"))
    assert service["rss_growth_pct"] == round(100 * (end - steady) / steady, 1)
    assert service["rss_growth_from_start_pct"] == round(100 * (end - start) / start, 1)
    assert result["exit_code_on_sigterm"] == 0
