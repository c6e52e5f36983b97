#!/usr/bin/env python3
"""SIP signalling benchmark: SIPp UAC -> our engine (answering itself, no media) -> BYE.

Ramps the call rate in fixed steps and reports the highest rate that completed with zero
failed calls. Loopback only; bounded run time. Prints one JSON line:
{"bench":"sip","calls_per_s":...,"failed":...,"retransmissions":...}
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sip_media.adapter import SipAdapter  # noqa: E402
from sip_media.sip.engine import EngineConfig  # noqa: E402

SCENARIO = ROOT / "tests" / "interop" / "sip" / "scenarios" / "uac_basic.xml"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    argv = [
        shutil.which("sipp") or "sipp", f"{host}:{port}", "-sf", str(SCENARIO),
        "-i", "127.0.0.1", "-bind_local", "-mi", "127.0.0.1", "-ci", "127.0.0.1", "-nostdin",
        "-p", str(free_port()), "-cp", str(free_port(socket.SOCK_STREAM)), "-mp", str(free_port()),
        "-s", "bench", "-d", "0", "-r", str(rate), "-m", str(calls), "-l", str(rate * 4),
        "-timeout", f"{int(seconds + 15)}s", "-timeout_error", "-max_recv_loops", "10000",
        "-trace_stat", "-stf", str(stf), "-fd", "1", "-buff_size", "4194304",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=tmp
    )
    started = time.monotonic()
    try:
        await asyncio.wait_for(proc.wait(), seconds + 25)
    except TimeoutError:
        proc.kill()
        await proc.wait()
    elapsed = time.monotonic() - started
    stats = read_stats(stf) if stf.exists() else {}
    ok = int(stats.get("SuccessfulCall(C)", 0))
    failed = int(stats.get("FailedCall(C)", calls))
    after = adapter.stats
    retrans = after["retransmissions"] - before["retransmissions"]
    retrans += int(stats.get("Retransmissions(C)", 0))
    return {
        "rate": rate,
        "ok": ok,
        "failed": failed + (calls - ok - failed),
        "retransmissions": retrans,
        "elapsed": int(elapsed),
        "rc": proc.returncode or 0,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--start", type=int, default=200)
    parser.add_argument("--step", type=int, default=100)
    parser.add_argument("--max", type=int, default=1500)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--budget", type=float, default=110.0, help="total wall-clock limit")
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
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    best = 0
    best_step: dict[str, int] = {}
    steps: list[dict[str, int]] = []
    deadline = time.monotonic() + args.budget
    rate = args.start
    with tempfile.TemporaryDirectory() as tmp:
        while rate <= args.max and time.monotonic() + args.seconds + 20 < deadline:
            step = await run_step(adapter, rate, args.seconds, Path(tmp))
            steps.append(step)
            print(json.dumps({"step": step}), file=sys.stderr)
            if step["failed"] or step["rc"]:
                break
            best, best_step = rate, step
            rate += args.step
            await asyncio.sleep(1.0)  # let the previous step's transactions drain
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    await adapter.stop()
    last = steps[-1] if steps else {}
    print(
        json.dumps(
            {
                "bench": "sip",
                "calls_per_s": best,
                "failed": best_step.get("failed", last.get("failed", 0)),
                "retransmissions": best_step.get("retransmissions", 0),
                "first_failing_rate": last.get("rate") if last is not best_step else None,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
