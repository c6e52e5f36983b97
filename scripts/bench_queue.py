"""Benchmark: automatic call distribution (ACD) through the whole service.

``--agents`` agents logged in to one ``longest_idle`` queue, their phones SIPp's
built-in UAS (``--phones`` processes, the agents spread over them as local users).
Callers arrive at ``--rate`` per second for ``--seconds``: each is a leg originated to
a trunk (another SIPp UAS), enqueued once answered, connected to an agent by the
service, and hung up after ``--talk`` seconds (the agent's leg goes with it; no
wrap-up). One JSON line. Not a test. Loopback only; bounded in time.

- ``calls_per_s``: callers connected to an agent, over the time from the first enqueue
  to the last connection;
- ``offer_ms``: ``queue.enqueue`` sent → ``queue.agent_offered`` received by the client
  (the decision, its durable append and the push), p50/p99;
- ``wait_ms``: ``queue.enqueue`` sent → ``queue.agent_connected`` received (the agent
  phone's answer included), p50/p99;
- ``stranded_callers`` / ``stranded_agents``: once every caller has hung up and the
  service has settled, entries still in the queue and agents not ``available``
  (``queue.status``), plus ``queue.joined`` without ``queue.left`` in the log: all
  must be 0.

    .venv/bin/python scripts/bench_queue.py [--agents 100] [--rate 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rwi.store.database import asyncpg_dsn  # noqa: E402
from tests.support.databases import server_url, with_database  # noqa: E402
from tests.support.ports import free_port, wide_range  # noqa: E402
from tests.support.serve import start_serve  # noqa: E402
from tests.support.sipp import Sipp  # noqa: E402
from tests.support.wav import write_tone_wav  # noqa: E402

TOKEN = "bench-token"
QUEUE = "bench"


async def start_service(
    database_url: str, workdir: Path, agents: dict[str, int], trunk_port: int, media: int
) -> tuple[asyncio.subprocess.Process, int]:
    """`rwi serve` on its own process, the agents as local users; its RWI port."""
    port, sip_port = free_port(), free_port()
    media_min, media_max = wide_range(media)
    users = "".join(
        f'[[sip.users]]\nname = "{name}"\ncontact = "sip:{name}@127.0.0.1:{p}"\n'
        for name, p in agents.items()
    )
    members = ", ".join(f'"{name}"' for name in agents)
    write_tone_wav(workdir / "sounds" / "hold_music.wav", 440.0, seconds=5)  # queue music
    config = workdir / "rwi.toml"
    config.write_text(
        f'[rwi]\nlisten = "127.0.0.1:{port}"\ncommand_rate_limit = 100000\n'
        f"originate_rate_limit = 100000\nmax_calls_per_connection = 100000\n"
        f'[[rwi.tokens]]\nname = "bench"\ntoken = "{TOKEN}"\n'
        f'scopes = ["call.control", "queue.control"]\n'
        f'[database]\nurl = "{database_url}"\n[log]\nlevel = "WARNING"\n'
        f'[storage]\ndata_dir = "{workdir / "data"}"\nsounds_dir = "{workdir / "sounds"}"\n'
        f'[sip]\nlisten = ["udp:127.0.0.1:{sip_port}"]\nallowed_destinations = ["127.0.0.0/8"]\n'
        f"authenticate_invites = false\nmax_transactions_per_source = 0\n{users}"
        f'[[sip.trunks]]\nname = "trunk"\nproxy = "127.0.0.1:{trunk_port}"\n'
        f"[media]\nport_min = {media_min}\nport_max = {media_max}\n"
        f'[[queues]]\nname = "{QUEUE}"\nstrategy = "longest_idle"\nmembers = [{members}]\n'
        f"agent_ring_secs = 10\nwrap_up_secs = 0\nretry_secs = 1\nmax_no_answer = 0\n"
    )
    proc, _ = await start_serve(config)
    return proc, port


class Rwi:
    """One RWI connection: commands by action_id, events awaited by (name, call_id)."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            key = frame.get("action_id") or f"{frame.get('event')}:{frame.get('call_id')}"
            future = self.waiting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(frame)
            if frame.get("event") == "call.hangup":
                for other in ("call.answered", "queue.agent_offered", "queue.agent_connected"):
                    lost = self.waiting.pop(f"{other}:{frame['call_id']}", None)
                    if lost is not None and not lost.done():
                        lost.set_exception(RuntimeError(f"hung up: {frame['data']}"))

    def expect(self, key: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return future

    async def command(self, action: str, **params: Any) -> dict[str, Any]:
        action_id = uuid.uuid4().hex[:12]
        reply = self.expect(action_id)
        await self.ws.send(json.dumps({"action": action, "action_id": action_id,
                                       "params": params}))  # fmt: skip
        frame = await asyncio.wait_for(reply, 30)
        if frame["response"] != "success":
            raise RuntimeError(frame)
        data: dict[str, Any] = frame.get("data", {})
        return data

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()


async def distribute(rwi: Rwi, args: argparse.Namespace) -> dict[str, Any]:
    offers: list[float] = []
    waits: list[float] = []
    failed = 0
    first: list[float] = []
    last = 0.0

    async def one_caller(n: int) -> None:
        nonlocal failed, last
        call_id = f"c{n}"
        try:
            answered = rwi.expect(f"call.answered:{call_id}")
            await rwi.command("call.originate", call_id=call_id, destination=f"sip:{n}@trunk")
            await asyncio.wait_for(answered, 15)
            offered = rwi.expect(f"queue.agent_offered:{call_id}")
            connected = rwi.expect(f"queue.agent_connected:{call_id}")
            sent = time.perf_counter()
            first.append(sent)
            await rwi.command("queue.enqueue", call_id=call_id, queue_id=QUEUE)
            await asyncio.wait_for(offered, 30)
            offers.append((time.perf_counter() - sent) * 1000)
            await asyncio.wait_for(connected, 30)
            now = time.perf_counter()
            waits.append((now - sent) * 1000)
            last = max(last, now)
            await asyncio.sleep(args.talk)
            await rwi.command("call.hangup", call_id=call_id)
        except (RuntimeError, TimeoutError):
            failed += 1
            with contextlib.suppress(RuntimeError, TimeoutError):
                await rwi.command("call.hangup", call_id=call_id)

    callers: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < args.seconds:
        await asyncio.sleep(max(0.0, start + n / args.rate - time.perf_counter()))
        callers.append(asyncio.create_task(one_caller(n)))
        n += 1
    await asyncio.gather(*callers)
    window = max(last - min(first), 1e-3) if first else 1e-3
    return {
        "callers": n,
        "connected": len(waits),
        "failed": failed,
        "calls_per_s": round(len(waits) / window, 1),
        "offer_ms": {"p50": percentile(offers, 0.5), "p99": percentile(offers, 0.99)},
        "wait_ms": {"p50": percentile(waits, 0.5), "p99": percentile(waits, 0.99)},
    }


async def stranded(rwi: Rwi, agents: int, limit: float = 15.0) -> tuple[int, int]:
    """Entries still queued and agents not available once the service settled (polled
    until both are zero or ``limit`` seconds passed)."""
    deadline = time.perf_counter() + limit
    while True:
        status = await rwi.command("queue.status", queue_id=QUEUE)
        busy = [a for a in status["agents"] if a["state"] != "available"]
        found = len(status["entries"]), len(busy) + agents - len(status["agents"])
        if found == (0, 0) or time.perf_counter() > deadline:
            return found
        await asyncio.sleep(0.2)


async def unmatched_entries(dsn: str) -> int:
    """``queue.joined`` without its ``queue.left`` in the log."""
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(
            "SELECT count(*) FILTER (WHERE type = 'queue.joined')"
            " - count(*) FILTER (WHERE type = 'queue.left') FROM events"
            " WHERE stream_id = $1",
            f"queue:{QUEUE}",
        )
    finally:
        await conn.close()
    return int(value)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else 0.0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"rwi_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(args.database_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(args.database_url, name)
    service: asyncio.subprocess.Process | None = None
    phones: list[Sipp] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            phones = [Sipp(workdir, "uas", builtin=True) for _ in range(args.phones + 1)]
            for phone in phones:
                await phone.start(calls=None, timeout=None)  # answers until the end
            trunk, *agent_phones = phones
            agents = {
                f"a{i}": agent_phones[i % len(agent_phones)].sip_port for i in range(args.agents)
            }
            service, port = await start_service(
                url, workdir, agents, trunk.sip_port, args.media_ports
            )
            ws = await websockets.connect(
                f"ws://127.0.0.1:{port}/rwi/v1",
                additional_headers={"Authorization": f"Bearer {TOKEN}"},
                max_size=None,
            )
            rwi = Rwi(ws)
            try:
                for agent_id in agents:
                    await rwi.command("agent.login", agent_id=agent_id)
                result = await distribute(rwi, args)
                callers_left, agents_left = await stranded(rwi, args.agents)
            finally:
                await rwi.close()
            unmatched = await unmatched_entries(asyncpg_dsn(url))
    finally:
        for phone in phones:
            await phone.close()
        if service is not None:
            with contextlib.suppress(ProcessLookupError):
                service.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(service.wait(), 20)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return {
        "bench": "queue",
        "agents": args.agents,
        "offered_rate": args.rate,
        "talk_s": args.talk,
        **result,
        "stranded_callers": callers_left + unmatched,
        "stranded_agents": agents_left,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--phones", type=int, default=4, help="SIPp UAS processes for agents")
    parser.add_argument("--rate", type=float, default=50.0, help="callers per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--talk", type=float, default=1.0, help="seconds connected")
    parser.add_argument(
        "--media-ports", type=int, default=8000, help="RTP ports for the service (2 per leg)"
    )
    parser.add_argument("--database-url", default=server_url())
    args = parser.parse_args()
    print(json.dumps(await run(args)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
