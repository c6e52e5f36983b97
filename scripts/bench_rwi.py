"""Benchmark: RWI command round trip (WebSocket send -> reply) at a steady rate.

Starts `rwi serve` as its own process on a fresh database, opens 10 connections and
sends commands on an open-loop schedule (1,000/s in total by default), each one the full
path: parse, authorise, decide, durable append of its record, reply. Prints one JSON
line. Not a test.

    .venv/bin/python scripts/bench_rwi.py [--rate 1000] [--seconds 10] [--connections 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rwi.store.database import asyncpg_dsn  # noqa: E402
from tests.support.databases import server_url, with_database  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.serve import start_serve  # noqa: E402

TOKEN = "bench-token"


async def start_service(database_url: str, workdir: Path) -> tuple[asyncio.subprocess.Process, int]:
    port = free_port()
    config = workdir / "rwi.toml"
    config.write_text(
        f'[rwi]\nlisten = "127.0.0.1:{port}"\ncommand_rate_limit = 100000\n'
        f'[[rwi.tokens]]\nname = "bench"\ntoken = "{TOKEN}"\nscopes = ["call.control"]\n'
        f'[database]\nurl = "{database_url}"\n[log]\nlevel = "WARNING"\n'
        f'[storage]\ndata_dir = "{workdir / "data"}"\n'
    )
    proc, _ = await start_serve(config)
    return proc, port


async def drive(port: int, rate: float, seconds: float, connections: int) -> dict[str, object]:
    url = f"ws://127.0.0.1:{port}/rwi/v1"
    sockets = [
        await websockets.connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"})
        for _ in range(connections)
    ]
    latencies: list[float] = []
    errors = 0
    per_conn = rate / connections
    total_per_conn = int(per_conn * seconds)

    async def one(n: int, ws: websockets.ClientConnection) -> None:
        nonlocal errors
        sent: dict[str, float] = {}

        async def receive() -> None:
            nonlocal errors
            got = 0
            while got < total_per_conn:
                reply = json.loads(await ws.recv())
                latencies.append(time.perf_counter() - sent.pop(reply["action_id"]))
                if reply["response"] != "success":
                    errors += 1
                got += 1

        receiver = asyncio.create_task(receive())
        start = time.perf_counter() + n / rate  # stagger the connections
        for i in range(total_per_conn):
            due = start + i / per_conn
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            action_id = f"b{n}-{i}"
            sent[action_id] = time.perf_counter()
            await ws.send(f'{{"action":"session.list_calls","action_id":"{action_id}"}}')
        await asyncio.wait_for(receiver, 30)

    began = time.perf_counter()
    await asyncio.gather(*(one(n, ws) for n, ws in enumerate(sockets)))
    elapsed = time.perf_counter() - began
    for ws in sockets:
        await ws.close()
    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {
        "bench": "rwi_roundtrip",
        "commands_per_s": round(len(ms) / elapsed),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 3),
        "max_ms": round(ms[-1], 3),
        "commands": len(ms),
        "errors": errors,
        "connections": connections,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--database-url", default=server_url())
    args = parser.parse_args()
    name = f"rwi_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(args.database_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    proc = None
    try:
        with tempfile.TemporaryDirectory() as workdir:
            proc, port = await start_service(with_database(args.database_url, name), Path(workdir))
            result = await drive(port, args.rate, args.seconds, args.connections)
            print(json.dumps(result), flush=True)
    finally:
        if proc is not None and proc.returncode is None:
            proc.terminate()
            await proc.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main())
