"""Each benchmark the README lists runs on this machine at a small scale and prints JSON
figures that add up. They measure nothing here (no timed assertions): this only keeps the
README's benchmark command lines working as the code under them changes."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest

from tests.support.serve import ROOT

pytestmark = pytest.mark.e2e

#: README benchmark line (script and its own flags) -> the small-scale arguments added
#: here (the README runs them with defaults)
SMALL = {
    "bench_store.py": ["--seconds", "0.5", "--writers", "1,4"],
    "bench_rwi.py": ["--rate", "100", "--seconds", "1", "--connections", "2"],
    "bench_sip.py": ["--start", "20", "--max", "20", "--seconds", "1", "--budget", "40"],
    "bench_media.py": ["--calls", "10", "--warmup", "0.5", "--measure", "1"],
    "bench_media.py --conference": ["--conferences", "1,2", "--warmup", "0.5", "--measure", "1"],
    "bench_media.py --record": ["--record-calls", "2,5", "--warmup", "0.5", "--measure", "1"],
    "bench_calls.py": ["--rates", "10", "--seconds", "2", "--hold", "0.5", "--media-ports", "400"],
    "bench_rebuild.py": ["--events", "2000", "--replay-events", "5000", "--samples", "3"],
    "bench_queue.py": ["--agents", "4", "--phones", "1", "--rate", "5", "--seconds", "1",
                       "--talk", "0.2", "--media-ports", "400"],
    "bench_streams.py": ["--calls", "5", "--warmup", "0.5", "--measure", "1"],
    "bench_streams.py --sweep": ["2,4", "--warmup", "0.5", "--measure", "1"],  # the counts
}  # fmt: skip


async def figures(line: str) -> list[dict[str, Any]]:
    script, *flags = line.split()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / script), *flags, *SMALL[line], cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 180)
    except TimeoutError:
        proc.kill()  # a hung benchmark must not outlive the test (it holds port slices)
        await proc.wait()
        raise AssertionError(f"{line} did not finish within 180 s") from None
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    lines = [line for line in out.decode().splitlines() if line.strip()]
    assert lines, err.decode(errors="replace")[-3000:]
    return [json.loads(line) for line in lines]


def test_every_script_is_listed() -> None:
    assert {p.name for p in (ROOT / "scripts").glob("bench_*.py")} == {
        line.split()[0] for line in SMALL
    }


@pytest.mark.parametrize("script", sorted(SMALL))
async def test_benchmark_runs_and_reports(script: str) -> None:
    results = await figures(script)
    by_bench = {r["bench"]: r for r in results}
    if script == "bench_store.py":
        assert [r["writers"] for r in results] == [1, 4]
        assert all(r["gaps"] == 0 and r["events"] == r["followed"] > 0 for r in results)
    elif script == "bench_rwi.py":
        assert by_bench["rwi_roundtrip"]["commands"] == 100
        assert by_bench["rwi_roundtrip"]["errors"] == 0
    elif script == "bench_sip.py":
        assert by_bench["sip"]["calls_per_s"] == 20 and by_bench["sip"]["failed"] == 0
    elif script == "bench_media.py":
        assert results[-1]["calls"] == 10 and results[-1]["cores"] >= 1
    elif script == "bench_media.py --conference":
        runs = [r for r in results if r["bench"] == "media_conference"]
        assert [(r["conferences"], r["legs"]) for r in runs] == [(1, 10), (2, 20)]
        # each member heard the nine others, never itself (stamps decoded from the mix)
        assert all(r["senders_heard_min"] == r["senders_heard_max"] == 9 for r in runs), runs
        assert all(r["loss_pct"] >= 0 for r in runs), runs
        best = by_bench["media_conference_max"]["max_members_mixed"]
        assert best == max([0] + [r["legs"] for r in runs if r["ok"]])
    elif script == "bench_media.py --record":
        runs = [r for r in results if r["bench"] == "media_record"]
        assert [(r["calls"], r["mode"]) for r in runs] == [(2, "record"), (5, "record")]
        # one finalised WAV per call, the whole run long, and the stamps read back
        # through the mixing path the recorders put the calls on
        assert all(r["recordings"] == r["calls"] and r["recorded_s_min"] > 1 for r in runs), runs
        assert all(r["disk_mb_per_s"] > 0 and r["cpu_pct_per_call"] >= 0 for r in runs), runs
        assert all(0 <= r["loss_pct"] < 100 and r["jitter_p99_ms"] >= 0 for r in runs), runs
        best = by_bench["media_record_max"]["max_recorded_calls"]
        assert best == max([0] + [r["calls"] for r in runs if r["ok"]])
    elif script == "bench_queue.py":
        queue = by_bench["queue"]
        assert queue["callers"] == queue["connected"] > 0 and queue["failed"] == 0, queue
        assert (queue["stranded_callers"], queue["stranded_agents"]) == (0, 0), queue
    elif script == "bench_calls.py":
        assert [r["mode"] for r in results] == ["originate", "inbound"]
        assert all(r["failed"] == 0 and r["ok"] == r["calls"] > 0 for r in results), results
    elif script == "bench_streams.py --sweep":
        runs = [r for r in results if r["bench"] == "streams"]
        assert [r["calls"] for r in runs] == [2, 4], runs
        assert all(r["streams_failed"] == 0 and r["frames_heard"] > 0 for r in runs), runs
        best = by_bench["streams_max"]
        assert best["max_streams"] == max([0] + [r["calls"] for r in runs if r["ok"]]), best
        assert best["failed_streams"] == [r["calls"] for r in runs if not r["ok"]], best
    elif script == "bench_streams.py":
        streams = by_bench["streams"]
        assert streams["calls"] == 5 and streams["streams_failed"] == 0, streams
        # every frame heard back is one the phones sent in the window, once
        assert 0 < streams["frames_heard"] <= streams["frames_sent"] == 5 * 50, streams
        assert streams["stream_frames_from_bot"] <= streams["stream_frames_to_bot"], streams
    else:
        assert by_bench["rebuild"]["events"] == 2000
        assert by_bench["replay_call"]["calls"] == 3
