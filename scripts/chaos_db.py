"""Drill: stop PostgreSQL under call load, start it again; ``rwi serve`` must ride it out.

Not a test (``tests/e2e/test_drills.py`` runs it small). Loopback only; prints one JSON
object. The drill starts a PostgreSQL of its own (the ``pgserver`` binaries, a
temporary data directory: never the shared server), points ``rwi serve`` at it, sets up
``--media-calls`` bridged calls whose far ends are RTP probes of the drill, and runs an
RWI client originating ``--rate`` calls/s (SIPp UAS on the trunk, held ``--hold`` s).
After ``--warm`` seconds it stops PostgreSQL (``pg_ctl stop -m fast``, or ``--mode
immediate`` for a crash), keeps it down ``--down`` seconds, starts it again and keeps
the load on for ``--after`` seconds. The service is never restarted.

- ``outage.success_replies``: success replies received while the database was down
  (must be 0); ``outage.error_replies``: the refusals it gave instead (expected > 0);
  ``outage.sent``: the replies to the commands sent while it was down (all errors),
  and the slowest of them;
  ``outage.readyz``: the statuses ``/readyz`` gave meanwhile (503 only);
- ``media``: RTP packets each probe received during the outage, against the 50/s a
  live stream carries (and in as long a window before and after), and whether each
  bridged call then hung up cleanly;
- ``recovery``: seconds from the database's start to ``/readyz`` 200 and to the first
  command that succeeded again (the drill fails if either takes over 60 s), and the
  success replies from then on; ``lost``: acknowledged commands missing from the log
  (must be 0); ``verify``: ``rwi verify`` on the log afterwards.

    .venv/bin/python scripts/chaos_db.py [--rate 50] [--down 5] [--mode fast|immediate]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.drills import (  # noqa: E402
    CallLoad,
    DrillService,
    RtpProbe,
    SippUas,
    missing_from_log,
    private_postgres,
)


async def bridged_call(
    control: CallLoad,
    n: int,
    probes: dict[str, RtpProbe],
    uases: dict[str, SippUas],
    limit: float = 15.0,
) -> None:
    """Two legs to the media UASes of pair ``n``, answered and bridged, each probe
    streaming to the address its leg's offer named."""
    legs = [f"m{n}a", f"m{n}b"]
    answered = [control.expect_event("call.answered", leg) for leg in legs]
    for leg in legs:
        reply = await control.command(
            "call.originate", {"call_id": leg, "destination": f"sip:{leg}@local"}
        )
        if reply.response != "success":
            raise RuntimeError(f"could not originate {leg}: {reply}")
    await asyncio.wait_for(asyncio.gather(*answered), limit)
    for leg in legs:
        probes[leg].target = uases[leg].offered_rtp()
    reply = await control.command("call.bridge", {"leg_a": legs[0], "leg_b": legs[1]})
    if reply.response != "success":
        raise RuntimeError(f"could not bridge {legs}: {reply}")


async def watch_readyz(service: DrillService, statuses: Counter[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        statuses[await service.readyz()] += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def until(what: str, check: Any, limit: float) -> float:
    """Seconds until the coroutine function ``check`` returns true (bounded)."""
    start = time.monotonic()
    async with asyncio.timeout(limit):
        while True:  # polling a service from outside: nothing to wait on
            if await check():
                return round(time.monotonic() - start, 2)
            await asyncio.sleep(0.1)
    raise AssertionError(what)  # pragma: no cover (the timeout raises first)


async def drill(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rwi-chaos-db-") as tmp:
        workdir = Path(tmp)
        probes: dict[str, RtpProbe] = {}
        uases: dict[str, SippUas] = {}
        for n in range(args.media_calls):
            for leg in (f"m{n}a", f"m{n}b"):
                probes[leg] = RtpProbe()
                uases[leg] = SippUas(workdir, sdp_port=probes[leg].port, name=f"uas_{leg}")
        trunk = SippUas(workdir, name="uas_trunk")
        await trunk.start()
        for uas in uases.values():
            await uas.start(trace=True)
        with private_postgres(workdir / "pg") as pg:
            service = DrillService(
                workdir, pg.url, trunk.sip_port, {leg: u.sip_port for leg, u in uases.items()}
            )
            try:
                await service.start()
                result = await outage(args, service, pg, probes, uases)
                result["exit_code_on_sigterm"] = await service.stop()
                result["verify"] = await service.verify()
            finally:
                await service.stop()
                for uas in [trunk, *uases.values()]:
                    await uas.close()
                for probe in probes.values():
                    probe.close()
    return result


async def outage(
    args: argparse.Namespace,
    service: DrillService,
    pg: Any,
    probes: dict[str, RtpProbe],
    uases: dict[str, SippUas],
) -> dict[str, Any]:
    async with (
        CallLoad(service.url, args.rate, args.hold) as load,
        CallLoad(service.url, 1.0, 0.0) as control,
    ):
        for n in range(args.media_calls):
            await bridged_call(control, n, probes, uases)
        seconds = args.warm + args.down + args.after
        loading = asyncio.create_task(load.run(seconds))
        await asyncio.sleep(args.warm)

        readyz: Counter[int] = Counter()
        up = asyncio.Event()
        await asyncio.to_thread(pg.stop, args.mode)
        down_at = time.monotonic()
        watching = asyncio.create_task(watch_readyz(service, readyz, up))
        await asyncio.sleep(args.down)
        up_at = time.monotonic()
        up.set()
        await watching
        await asyncio.to_thread(pg.start)

        async def ready() -> bool:
            return await service.readyz() == 200

        async def command_succeeds() -> bool:
            reply = await control.command("session.subscribe", {"contexts": ["drill"]}, 5.0)
            return reply.response == "success"

        ready_s = await until("readyz 200", ready, 60)
        command_s = round(await until("a command succeeds", command_succeeds, 60) + ready_s, 2)
        await loading

        hung_up = {}
        for leg in probes:
            reply = await control.command("call.hangup", {"call_id": leg})
            hung_up[leg] = reply.response
        ended = {leg: await uas.counters() for leg, uas in uases.items()}
        lost = await missing_from_log(load, service.database_url) + await missing_from_log(
            control, service.database_url
        )

    replies = [*load.replies.values(), *control.replies.values()]
    in_outage = [r for r in replies if down_at <= r.at < up_at]
    sent_in_outage = [r for r in replies if down_at <= r.sent_at < up_at]
    expected = round((up_at - down_at) / 0.02)
    side = min(args.warm, args.down, args.after)  # a window as long on each side
    return {
        "drill": "chaos_db",
        "mode": args.mode,
        "rate": args.rate,
        "down_s": round(up_at - down_at, 2),
        "outage": {
            "success_replies": sum(1 for r in in_outage if r.response == "success"),
            "error_replies": sum(1 for r in in_outage if r.response == "error"),
            "error_codes": dict(Counter(r.code for r in in_outage if r.response == "error")),
            "readyz": {str(k): v for k, v in sorted(readyz.items())},
            "sent": dict(Counter(r.response for r in sent_in_outage)),
            "slowest_reply_s": round(max((r.at - r.sent_at for r in sent_in_outage), default=0), 2),
        },
        "media": {
            "expected_packets": expected,
            "side_window_s": side,
            "received_before": {
                leg: RtpProbe.count(p.received, down_at - side, down_at)
                for leg, p in probes.items()
            },
            "received_in_outage": {
                leg: RtpProbe.count(p.received, down_at, up_at) for leg, p in probes.items()
            },
            "received_after": {
                leg: RtpProbe.count(p.received, up_at, up_at + side) for leg, p in probes.items()
            },
            "hung_up_after": hung_up,
            "ended_by_bye": {leg: c["ok"] == 1 and c["current"] == 0 for leg, c in ended.items()},
        },
        "recovery": {
            "readyz_200_s": ready_s,
            "command_success_s": command_s,
            "success_replies_after": sum(
                1 for r in replies if r.at >= up_at and r.response == "success"
            ),
        },
        "lost": len(lost),
        "lost_action_ids": lost[:20],
        "load": load.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=50.0, help="calls offered per second")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds each call is held")
    parser.add_argument("--warm", type=float, default=3.0, help="seconds of load before")
    parser.add_argument("--down", type=float, default=5.0, help="seconds the database is down")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of load after")
    parser.add_argument("--mode", choices=["fast", "immediate"], default="fast")
    parser.add_argument("--media-calls", type=int, default=2, help="bridged calls with RTP")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(drill(args))), flush=True)


if __name__ == "__main__":
    main()
