"""Benchmark: calls per second through the whole service (RWI, log, SIP, anchored media).

Two modes, one JSON line each. Not a test. Loopback only; bounded in time.

- originate: one RWI client originates a customer leg (SIPp UAS on a trunk) and an agent
  leg (SIPp UAS as a local user) per call, bridges them when both answered, hangs both
  up after ``--hold`` seconds.
- inbound: SIPp's built-in UAC calls the service at a fixed rate; a route sends each call
  to a local user (SIPp's built-in UAS): a plain B2BUA call, held for ``--hold`` seconds.

Each run offers calls at a fixed rate. The figures come from the event log, the way
the service itself saw the calls: ``calls_per_s`` is the calls set up (ok, both legs
answered) divided by the time from the first call's creation to the last one's answer,
so the hold time and start-up are not counted; ``setup_ms`` is a leg's creation to its
answer. A rate is *sustained* when no call failed and the service kept pace with it
(achieved at least 95% of the offered rate). ``--rates 100,200,300`` tries rates in
turn and reports, per mode, the highest sustained one (every try goes to stderr).
``cpu_ms_per_call`` is CPU time per call of the service process and of PostgreSQL.
``loop_lag_ms`` is what the service's ``rwi_event_loop_lag_seconds`` saw during the run:
how late its event loop woke a probe due every 50 ms (p50/p99 as bucket bounds, and how
many samples were over 50 ms late): a stalled loop delays every call at once.

    .venv/bin/python scripts/bench_calls.py [--rates 20] [--seconds 10] [--hold 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rwi.store.database import asyncpg_dsn  # noqa: E402
from tests.support.databases import server_url, with_database  # noqa: E402
from tests.support.ports import free_port, wide_range  # noqa: E402
from tests.support.serve import start_serve  # noqa: E402
from tests.support.sipp import Sipp  # noqa: E402

TOKEN = "bench-token"


@functools.cache
def media_ports(size: int) -> tuple[int, int]:
    """One media range for every run of this process (8000 ports: 2000 calls' RTP/RTCP
    pairs at the default), sized by ``--media-ports`` so a small run holds little."""
    return wide_range(size)


async def start_service(
    database_url: str,
    workdir: Path,
    phones: dict[str, int],
    trunk_port: int,
    media: tuple[int, int],
) -> tuple[asyncio.subprocess.Process, int, int]:
    """`rwi serve` on its own process; returns it, its RWI port and its SIP port."""
    port, sip_port, (media_min, media_max) = free_port(), free_port(), media
    users = "".join(
        f'[[sip.users]]\nname = "{name}"\ncontact = "sip:{name}@127.0.0.1:{p}"\n'
        for name, p in phones.items()
    )
    config = workdir / "rwi.toml"
    config.write_text(
        f'[rwi]\nlisten = "127.0.0.1:{port}"\ncommand_rate_limit = 100000\n'
        f"originate_rate_limit = 100000\nmax_calls_per_connection = 100000\n"
        f'[[rwi.tokens]]\nname = "bench"\ntoken = "{TOKEN}"\nscopes = ["call.control"]\n'
        f'[database]\nurl = "{database_url}"\n[log]\nlevel = "WARNING"\n'
        f'[storage]\ndata_dir = "{workdir / "data"}"\n'
        f'[sip]\nlisten = ["udp:127.0.0.1:{sip_port}"]\nallowed_destinations = ["127.0.0.0/8"]\n'
        f"authenticate_invites = false\nmax_transactions_per_source = 0\n{users}"
        f'[[sip.trunks]]\nname = "trunk"\nproxy = "127.0.0.1:{trunk_port}"\n'
        f'[[routes]]\nmatch_user = "^agent$"\nuser = "agent"\n'
        f"[media]\nport_min = {media_min}\nport_max = {media_max}\n"
    )
    proc, _ = await start_serve(config)
    return proc, port, sip_port


async def originate_mode(port: int, rate: float, seconds: float, hold: float) -> dict[str, Any]:
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/rwi/v1", additional_headers={"Authorization": f"Bearer {TOKEN}"}
    )
    waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
    ok = failed = 0

    async def read() -> None:
        async for text in ws:
            frame = json.loads(text)
            key = frame.get("action_id") or f"{frame.get('event')}:{frame.get('call_id')}"
            future = waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(frame)
            if frame.get("event") == "call.hangup":
                for other in ("call.answered", "call.bridged"):
                    lost = waiting.pop(f"{other}:{frame['call_id']}", None)
                    if lost is not None and not lost.done():
                        lost.set_exception(RuntimeError(f"hung up: {frame['data']}"))

    def expect(key: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiting[key] = future
        return future

    async def command(action: str, params: dict[str, Any]) -> dict[str, Any]:
        action_id = uuid.uuid4().hex[:12]
        reply = expect(action_id)
        await ws.send(json.dumps({"action": action, "action_id": action_id, "params": params}))
        return await reply

    async def one_call(n: int) -> None:
        nonlocal ok, failed
        a, b = f"a{n}", f"b{n}"
        try:
            answered = [expect(f"call.answered:{a}"), expect(f"call.answered:{b}")]
            for leg, dest in ((a, f"sip:{n}@trunk"), (b, "sip:agent@local")):
                reply = await command("call.originate", {"call_id": leg, "destination": dest})
                if reply["response"] != "success":
                    raise RuntimeError(reply)
            await asyncio.wait_for(asyncio.gather(*answered), 15)
            reply = await command("call.bridge", {"leg_a": a, "leg_b": b})
            if reply["response"] != "success":
                raise RuntimeError(reply)
            await asyncio.sleep(hold)
            for leg in (a, b):
                await command("call.hangup", {"call_id": leg})
            ok += 1
        except (RuntimeError, TimeoutError):
            failed += 1

    reader = asyncio.create_task(read())
    calls: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        calls.append(asyncio.create_task(one_call(n)))
        n += 1
    await asyncio.gather(*calls)
    reader.cancel()
    await ws.close()
    return {"calls": n, "ok": ok, "failed": failed}


async def inbound_mode(
    sip_port: int, rate: float, seconds: float, hold: float, workdir: Path
) -> dict[str, Any]:
    total = int(rate * seconds)
    stats = workdir / "uac.csv"
    uac = Sipp(workdir, "uac", builtin=True)
    await uac.start(
        "-s", "agent", "-r", str(rate), "-d", str(int(hold * 1000)),
        "-trace_stat", "-stf", str(stats),
        remote=f"127.0.0.1:{sip_port}", calls=total, timeout=int(seconds + hold + 30),
    )  # fmt: skip
    await uac.result(seconds + hold + 60)
    ok = failed = 0
    if stats.exists():
        rows = stats.read_text().strip().splitlines()
        header, last = rows[0].split(";"), rows[-1].split(";")
        ok = int(last[header.index("SuccessfulCall(C)")])
        failed = int(last[header.index("FailedCall(C)")])
    return {"calls": total, "ok": ok, "failed": failed}


async def count_events(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT last_seq FROM event_head"))
    finally:
        await conn.close()


#: per call stream: its creation and its answer, as the service logged them
_SETUP_SQL = """
SELECT stream_id,
       min((meta->>'ts')::timestamptz) FILTER (WHERE type IN ('call.originated', 'call.incoming')),
       min((meta->>'ts')::timestamptz) FILTER (WHERE type = 'call.answered')
FROM events WHERE stream_id LIKE 'call:%' GROUP BY stream_id
"""


async def setup_times(dsn: str) -> tuple[float, list[float]]:
    """The window from the first call created to the last answered (s), and every
    answered leg's set-up time (ms)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = [(r[1], r[2]) for r in await conn.fetch(_SETUP_SQL) if r[1] and r[2]]
    finally:
        await conn.close()
    if not rows:
        return 0.0, []
    window = (max(a for _, a in rows) - min(c for c, _ in rows)).total_seconds()
    return window, sorted((a - c).total_seconds() * 1000 for c, a in rows)


def percentile(values: list[float], q: float) -> float:
    return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else 0.0


def cpu_seconds(pids: list[int] | None = None, name: str | None = None) -> float:
    """User+system CPU seconds of the given processes, or of every process so named."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or (pids is not None and int(entry.name) not in pids):
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        if name is None or comm == name:
            total += int(fields[11]) + int(fields[12])
    return total / tick


async def run(mode: str, rate: float, args: argparse.Namespace) -> dict[str, Any]:
    name = f"rwi_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(args.database_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(args.database_url, name)
    procs: list[asyncio.subprocess.Process] = []
    phones: list[Sipp] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            phones = [Sipp(workdir, "uas", builtin=True), Sipp(workdir, "uas", builtin=True)]
            for phone in phones:
                await phone.start(calls=None, timeout=None)  # answers until the end
            customer, agent = phones
            service, port, sip_port = await start_service(
                url,
                workdir,
                {"agent": agent.sip_port},
                customer.sip_port,
                media_ports(args.media_ports),
            )
            procs.append(service)
            before = await count_events(asyncpg_dsn(url))
            cpu_before = cpu_seconds([service.pid]), cpu_seconds(name="postgres")
            lag_before = await loop_lag_buckets(port)
            if mode == "originate":
                result = await originate_mode(port, rate, args.seconds, args.hold)
            else:
                result = await inbound_mode(sip_port, rate, args.seconds, args.hold, workdir)
            cpu_after = cpu_seconds([service.pid]), cpu_seconds(name="postgres")
            lag_after = await loop_lag_buckets(port)
            after = await count_events(asyncpg_dsn(url))
            window, setups = await setup_times(asyncpg_dsn(url))
    finally:
        for phone in phones:
            await phone.close()
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 20)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    window = max(window, 1e-3)
    calls_per_s = round(result["ok"] / window, 1)
    per_call = 1000 / max(result["ok"], 1)
    return {
        "bench": "calls",
        "mode": mode,
        "calls_per_s": calls_per_s,
        "failed": result["failed"],
        "events_per_s": round((after - before) / window),
        "offered_rate": rate,
        "sustained": result["failed"] == 0 and calls_per_s >= 0.95 * rate,
        "calls": result["calls"],
        "ok": result["ok"],
        "hold_s": args.hold,
        "setup_ms": {"p50": percentile(setups, 0.5), "p99": percentile(setups, 0.99)},
        "cpu_ms_per_call": {
            "service": round((cpu_after[0] - cpu_before[0]) * per_call, 2),
            "postgres": round((cpu_after[1] - cpu_before[1]) * per_call, 2),
        },
        "loop_lag_ms": lag_summary(lag_before, lag_after),
    }


async def loop_lag_buckets(port: int) -> dict[float, float]:
    """``rwi_event_loop_lag_seconds``'s cumulative buckets as the service has them now."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=10)).text
    return {
        float(sample.labels["le"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "rwi_event_loop_lag_seconds"
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }


def lag_summary(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """Of the probe's samples in the run (every 50 ms), the bucket bounds their p50 and
    p99 fall in (ms), and how many were woken over 50 ms late."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]  # cumulative
    total = counts[-1] if counts else 0.0

    def bound_of(share: float) -> float:
        return next((b for b, c in zip(bounds, counts, strict=True) if c >= share * total), 0.0)

    within_50ms = next((c for b, c in zip(bounds, counts, strict=True) if b >= 0.05), total)
    return {
        "samples": total,
        "p50_le": round(bound_of(0.5) * 1000, 1),
        "p99_le": round(bound_of(0.99) * 1000, 1),
        "over_50": total - within_50ms,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["originate", "inbound", "both"], default="both")
    parser.add_argument("--rates", default="20", help="offered calls/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hold", type=float, default=1.0)
    parser.add_argument(
        "--media-ports", type=int, default=8000, help="RTP ports for the service (2 per leg)"
    )
    parser.add_argument("--database-url", default=server_url())
    args = parser.parse_args()
    # The wide media range first: it needs consecutive port slices, and the slice the
    # first free_port() locks could sit in the middle of them.
    media_ports(args.media_ports)
    modes = ["originate", "inbound"] if args.mode == "both" else [args.mode]
    rates = [float(r) for r in args.rates.split(",")]
    for mode in modes:
        tried: list[dict[str, Any]] = []
        for rate in rates:
            tried.append(await run(mode, rate, args))
            print(json.dumps(tried[-1]), file=sys.stderr, flush=True)
            if not tried[-1]["sustained"]:
                break
        sustained = [r for r in tried if r["sustained"]]
        best = max(sustained, key=lambda r: r["calls_per_s"]) if sustained else tried[0]
        print(json.dumps(best), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
