"""Drill: steady call load through ``rwi serve`` for a long time; does anything grow?

Not a test (``tests/e2e/test_drills.py`` runs it for a fraction of a minute). Loopback
only; prints one JSON object. An RWI client originates ``--rate`` calls/s (one leg each
to a SIPp UAS on the trunk, held ``--hold`` s, then hung up) for ``--minutes`` (a
fraction is fine) on a fresh database of the PostgreSQL at ``--database-url``.

- ``service``: resident memory (KiB) and open file descriptors of the service process
  at start (idle), once the load is steady (after ``--warm`` s), at the end of the load
  and after the last call ended; ``rss_growth_pct`` is end against steady,
  ``rss_growth_from_start_pct`` end against start (what warming up took too); a sample
  series shows the trend;
- ``events``: rows in the log against its head (no gap) and against the rows PostgreSQL
  counts as inserted into it (nothing written was lost); ``pushed_missing``: events
  pushed to the client that the log does not hold; ``lost``: acknowledged commands
  missing from the log;
- ``load``: commands and replies, calls answered and hung up.

    .venv/bin/python scripts/soak.py [--minutes 30] [--rate 50] [--hold 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.databases import server_url  # noqa: E402
from tests.support.drills import (  # noqa: E402
    CallLoad,
    DrillService,
    SippUas,
    events_in_log,
    missing_from_log,
    process_figures,
    pushed_missing_from_log,
    scratch_database,
)

SAMPLES = 20


async def sample(pid: int, every: float, into: list[dict[str, Any]], start: float) -> None:
    while True:
        await asyncio.sleep(every)
        into.append({"t_s": round(time.monotonic() - start), **process_figures(pid)})


def growth_pct(before: int, after: int) -> float:
    """How much ``after`` grew over ``before``, in per cent (one decimal)."""
    return round(100 * (after - before) / max(before, 1), 1)


async def drill(args: argparse.Namespace) -> dict[str, Any]:
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="rwi-soak-") as tmp:
        workdir = Path(tmp)
        uas = SippUas(workdir, name="uas")
        await uas.start()
        async with scratch_database(args.database_url) as url:
            service = DrillService(workdir, url, uas.sip_port)
            try:
                await service.start()
                assert service.proc is not None
                pid = service.proc.pid
                figures = {"start": process_figures(pid)}
                series: list[dict[str, Any]] = []
                async with CallLoad(service.url, args.rate, args.hold) as load:
                    loading = asyncio.create_task(load.run(seconds))
                    began = time.monotonic()
                    sampling = asyncio.create_task(
                        sample(pid, max(1.0, seconds / SAMPLES), series, began)
                    )
                    await asyncio.sleep(min(args.warm, seconds / 2))
                    figures["steady"] = process_figures(pid)
                    await asyncio.sleep(max(0.0, began + seconds - time.monotonic()))
                    figures["end"] = process_figures(pid)
                    await loading
                    sampling.cancel()
                    figures["drained"] = process_figures(pid)
                    lost = await missing_from_log(load, url)
                    pushed_missing = await pushed_missing_from_log(load, url)
                stopped = await service.stop()
                events = await events_in_log(url)
            finally:
                await service.stop()
                await uas.close()
    start, steady, end = (figures[m]["rss_kib"] for m in ("start", "steady", "end"))
    return {
        "drill": "soak",
        "minutes": args.minutes,
        "rate": args.rate,
        "hold_s": args.hold,
        "service": {
            **figures,
            "rss_growth_pct": growth_pct(steady, end),
            "rss_growth_from_start_pct": growth_pct(start, end),
            "series": series,
        },
        "events": {
            **events,
            "gap_free": events["rows"] == events["head"],
            "nothing_lost": events["rows"] == events["inserted"],
            "pushed_to_client": len(load.pushed),
            "pushed_missing": len(pushed_missing),
        },
        "lost": len(lost),
        "lost_action_ids": lost[:20],
        "load": load.summary(),
        "exit_code_on_sigterm": stopped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (fractions ok)")
    parser.add_argument("--rate", type=float, default=50.0, help="calls offered per second")
    parser.add_argument("--hold", type=float, default=2.0, help="seconds each call is held")
    parser.add_argument("--warm", type=float, default=60.0, help="seconds until steady")
    parser.add_argument("--database-url", default=server_url())
    args = parser.parse_args()
    print(json.dumps(asyncio.run(drill(args))), flush=True)


if __name__ == "__main__":
    main()
