"""Drill: SIGKILL ``rwi serve`` at random moments under call load, restart it each time.

Not a test (``tests/e2e/test_drills.py`` runs it small). Loopback only; prints one JSON
object. An RWI client originates calls at ``--rate`` (one leg each to a SIPp UAS on the
trunk, held ``--hold`` s, then hung up) through ``rwi serve`` on a fresh database of
the PostgreSQL at ``--database-url`` (``RWI_TEST_DATABASE_URL``), reconnecting after
each crash. Each process gets its own SIPp UAS, so what one UAS still has up is what
the killed process left behind.

- ``lost``: commands that got a success reply but are not in the log (must be 0);
- ``verify``: ``rwi verify`` run on the log after the drill (projections == rebuild);
- ``stale_dialogs``: per kill, the dialogs of the killed process SIPp still has up 5 s
  after the restart (must be 0: the new process ends them from the log);
- ``ended_without_dialog_record``: calls the restarts ended that had no dialog record in
  the log (killed between the originate and the leg's first SIP report): an upper
  bound on the dialogs no restart can end from the log.

    .venv/bin/python scripts/chaos_kill.py [--rate 100] [--kills 5] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
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
    ended_without_dialog_record,
    missing_from_log,
    scratch_database,
)

STALE_AFTER = 5.0


async def stale_after(uas: SippUas, restarted_at: float) -> dict[str, int]:
    """What ``uas`` counts ``STALE_AFTER`` seconds after the restart: ``current`` is
    the dialogs still up, ``ok`` the calls ended by a BYE (by either process)."""
    await asyncio.sleep(max(0.0, restarted_at + STALE_AFTER - time.monotonic()))
    return await uas.counters()


async def drill(args: argparse.Namespace) -> dict[str, Any]:
    kills: list[dict[str, Any]] = []
    checks: list[asyncio.Task[dict[str, int]]] = []
    with tempfile.TemporaryDirectory(prefix="rwi-chaos-kill-") as tmp:
        workdir = Path(tmp)
        uases = [SippUas(workdir, name="uas0")]
        await uases[0].start()
        async with scratch_database(args.database_url) as url:
            service = DrillService(workdir, url, uases[0].sip_port)
            try:
                await service.start()
                async with CallLoad(service.url, args.rate, args.hold) as load:
                    loading = asyncio.create_task(load.run(args.seconds))
                    start = time.monotonic()
                    moments = sorted(random.uniform(1.0, args.seconds) for _ in range(args.kills))
                    for k, at in enumerate(moments):
                        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
                        killed_at = time.monotonic()
                        await service.kill()
                        fresh = SippUas(workdir, name=f"uas{k + 1}")
                        await fresh.start()
                        uases.append(fresh)
                        service.trunk_port = fresh.sip_port
                        await service.start()
                        restarted = time.monotonic()
                        kills.append(
                            {
                                "at_s": round(killed_at - start, 2),
                                "restart_s": round(restarted - killed_at, 2),
                            }
                        )
                        checks.append(asyncio.create_task(stale_after(uases[k], restarted)))
                    await loading
                    stale = await asyncio.gather(*checks)
                lost = await missing_from_log(load, url)
                unrecorded = await ended_without_dialog_record(url)
                stopped = await service.stop()
                verify = await service.verify()
            finally:
                await service.stop()
                for uas in uases:
                    await uas.close()
    for kill, counters in zip(kills, stale, strict=True):
        kill["stale_dialogs"] = counters["current"]
        kill["uas_calls_ended"] = counters["ok"]
        kill["uas_calls_failed"] = counters["failed"]
    return {
        "drill": "chaos_kill",
        "rate": args.rate,
        "seconds": args.seconds,
        "hold_s": args.hold,
        "kills": len(kills),
        "lost": len(lost),
        "lost_action_ids": lost[:20],
        "verify": verify,
        "stale_dialogs": sum(c["current"] for c in stale),
        "ended_without_dialog_record": unrecorded,
        "per_kill": kills,
        "load": load.summary(),
        "exit_code_on_sigterm": stopped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="calls offered per second")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the load runs")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds each call is held")
    parser.add_argument("--database-url", default=server_url())
    args = parser.parse_args()
    print(json.dumps(asyncio.run(drill(args))), flush=True)


if __name__ == "__main__":
    main()
