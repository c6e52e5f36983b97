#!/usr/bin/env python3
"""SIP signalling benchmark: SIPp UAC -> our engine (answering itself, no media) -> BYE.

Ramps the call rate in fixed steps and reports the highest sustained rate: zero failed
calls, no transaction timeouts in the engine, and the step finished on time (no backlog).
Loopback only; bounded run time (--budget). Prints one JSON line on stdout:
{"bench":"sip","calls_per_s":...,"failed":...,"retransmissions":...}
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sip_media.adapter import SipAdapter  # noqa: E402
from sip_media.sip.engine import EngineConfig  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.sipp import Sipp  # noqa: E402

SCENARIO = ROOT / "tests" / "interop" / "sip" / "scenarios" / "uac_basic.xml"


def read_stats(path: Path) -> dict[str, str]:
    with path.open() as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


async def run_step(adapter: SipAdapter, rate: int, seconds: float, tmp: Path) -> dict[str, int]:
    host, port = adapter.local_address()
    calls = int(rate * seconds)
    stf = tmp / f"stat_{rate}.csv"
    before = adapter.stats
    sipp = Sipp(tmp, SCENARIO)
    await sipp.start(
        "-s", "bench", "-d", "0", "-r", str(rate), "-l", str(rate * 4),
        "-max_recv_loops", "10000", "-trace_stat", "-stf", str(stf), "-fd", "1",
        "-buff_size", "4194304",
        remote=f"{host}:{port}", calls=calls, timeout=int(seconds + 15),
    )  # fmt: skip
    started = time.monotonic()
    cpu0 = time.process_time()
    try:
        await sipp.result(seconds + 25)
    except AssertionError:  # did not finish: killed; the stats say how far it got
        await sipp.close()
    elapsed = time.monotonic() - started
    cpu = time.process_time() - cpu0
    stats = read_stats(stf) if stf.exists() else {}
    ok = int(stats.get("SuccessfulCall(C)", 0))
    failed = int(stats.get("FailedCall(C)", calls))
    after = adapter.stats
    ours = after["retransmissions"] - before["retransmissions"]
    timeouts = after["timeouts"] - before["timeouts"]
    theirs = int(stats.get("Retransmissions(C)", 0))
    return {
        "rate": rate,
        "ok": ok,
        "failed": failed + (calls - ok - failed),
        "retransmissions": ours + theirs,
        "engine_retransmissions": ours,
        "engine_cpu_s": round(cpu, 2),
        "engine_timeouts": timeouts,
        "elapsed": round(elapsed, 1),
        "rc": (sipp.proc.returncode if sipp.proc else None) or 0,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--start", type=int, default=500)
    parser.add_argument("--step", type=int, default=250)
    parser.add_argument("--max", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--budget", type=float, default=110.0, help="total wall-clock limit")
    parser.add_argument("--no-gc-tune", dest="gc_tune", action="store_false")
    parser.add_argument("--profile", action="store_true", help="cProfile the engine")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    assert shutil.which("sipp"), "sipp is not installed"
    config = EngineConfig(
        udp=[("127.0.0.1", free_port())],
        allowed_destinations=("127.0.0.0/8",),
        max_transactions_per_source=0,
    )
    adapter = SipAdapter(config, no_media=True, auto_answer=True)
    await adapter.start()
    if args.gc_tune:
        gc.collect()
        gc.freeze()  # long-lived objects out of the collector's way
        gc.set_threshold(50_000, 20, 100)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    best = 0
    clean = 0  # highest rate that also needed no retransmission at all
    best_step: dict[str, int] = {}
    steps: list[dict[str, int]] = []
    deadline = time.monotonic() + args.budget
    rate = args.start
    with tempfile.TemporaryDirectory() as tmp:
        while rate <= args.max and time.monotonic() + args.seconds + 20 < deadline:
            step = await run_step(adapter, rate, args.seconds, Path(tmp))
            steps.append(step)
            sys.stderr.write(json.dumps({"step": step}) + "\n")
            sustained = (
                not step["failed"]
                and not step["rc"]
                and not step["engine_timeouts"]
                and step["elapsed"] <= args.seconds * 1.25  # kept up, no backlog
            )
            if not sustained:
                break
            best, best_step = rate, step
            if not step["retransmissions"]:
                clean = rate
            rate += args.step
            await asyncio.sleep(1.0)  # let the previous step's transactions drain
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    await adapter.stop()
    last = steps[-1] if steps else {}
    sys.stdout.write(
        json.dumps(
            {
                "bench": "sip",
                "calls_per_s": best,
                "failed": best_step.get("failed", last.get("failed", 0)),
                "retransmissions": best_step.get("retransmissions", 0),
                "calls_per_s_without_retransmissions": clean,
                "first_failing_rate": last.get("rate") if last is not best_step else None,
                "cpus": os.cpu_count(),
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    asyncio.run(main())
