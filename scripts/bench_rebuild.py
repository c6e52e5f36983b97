"""A realistic synthetic event log, written with COPY (for scripts/bench_rebuild.py).

The events have the shapes the service writes (``rwi.domain``): sessions, ``rwi.command``
records with their outcomes, ``observation`` records, and call events for inbound
customer legs answered by agent legs the app originates (claim, queue, ring, answer,
bridge, hold, recording, hangup), with concurrent calls interleaved in ``seq`` order.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

BASE = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)
CONNECTIONS = 40
CONTEXTS = ("sales", "support", "billing")
QUEUES = ("q-sales", "q-support")

Row = tuple[str, str, dict[str, Any], dict[str, Any] | None]  # stream, type, data, meta extra


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class _Call:
    """One customer call (and its agent leg) as timed events."""

    def __init__(self, i: int, rng: random.Random) -> None:
        self.i = i
        self.rng = rng
        self.conn = f"conn{i % CONNECTIONS}"
        self.token = f"app{i % 4}"
        self.n = 0

    def command(self, action: str, params: dict[str, Any], data: Any = None) -> Row:
        self.n += 1
        outcome: dict[str, Any] = {"response": "success"}
        if data is not None:
            outcome["data"] = data
        body = {
            "connection_id": self.conn,
            "token": self.token,
            "action": action,
            "action_id": f"a{self.i}-{self.n}",
            "params": params,
            "outcome": outcome,
        }
        return (f"session:{self.conn}", "rwi.command", body, {"action_id": body["action_id"]})

    def events(self) -> Iterator[tuple[float, Row]]:
        rng = self.rng
        cid, agent = f"in-{self.i}", f"ag-{self.i}"
        ctx = CONTEXTS[self.i % len(CONTEXTS)]
        t = 0.0
        obs = "service"

        def at(dt: float, *rows: Row) -> Iterator[tuple[float, Row]]:
            nonlocal t
            t += dt
            for row in rows:
                yield t, row

        offered = {
            "call_id": cid,
            "context": ctx,
            "caller": f"sip:+3312345{self.i % 10000:04d}@trunk",
            "callee": "sip:100@pbx",
            "trunk": "trunk1",
        }
        yield from at(
            0.0,
            (
                obs,
                "observation",
                {"type": "sip.call.offered", **offered},
                {"observation": "sip.call.offered"},
            ),
            (
                f"call:{cid}",
                "call.incoming",
                {**offered, "direction": "inbound", "headers": {}},
                None,
            ),
        )
        if rng.random() < 0.08:  # abandoned while offered
            yield from at(
                rng.uniform(3, 25),
                (
                    obs,
                    "observation",
                    {"type": "sip.call.ended", "call_id": cid},
                    {"observation": "sip.call.ended"},
                ),
                (
                    f"call:{cid}",
                    "call.hangup",
                    {
                        "call_id": cid,
                        "reason": "canceled",
                        "sip_status": None,
                        "hangup_by": "remote",
                        "duration_secs": 0,
                    },
                    None,
                ),
            )
            return
        yield from at(
            rng.uniform(0.5, 3),
            self.command("call.answer", {"call_id": cid}, {"call_id": cid}),
            (
                f"call:{cid}",
                "call.claimed",
                {"call_id": cid, "connection_id": self.conn, "action": "call.answer"},
                None,
            ),
            (f"call:{cid}", "call.answered", {"call_id": cid}, None),
        )
        queue = rng.random() < 0.4
        if queue:
            q = QUEUES[self.i % 2]
            yield from at(
                0.2,
                self.command("queue.enqueue", {"call_id": cid, "queue_id": q}),
                (
                    f"call:{cid}",
                    "queue.joined",
                    {"call_id": cid, "queue_id": q, "position": 1 + self.i % 5},
                    None,
                ),
            )
            t += rng.uniform(5, 90)
        yield from at(
            0.1,
            self.command(
                "call.originate",
                {"call_id": agent, "destination": f"sip:agent{self.i % 50}@pbx"},
                {"call_id": agent},
            ),
            (
                f"call:{agent}",
                "call.originated",
                {
                    "call_id": agent,
                    "owner": self.conn,
                    "token": self.token,
                    "destination": f"sip:agent{self.i % 50}@pbx",
                    "caller_id": None,
                    "timeout_secs": 60,
                    "context": None,
                    "extra_headers": {},
                    "ringback": "local",
                },
                None,
            ),
        )
        yield from at(
            0.3,
            (
                obs,
                "observation",
                {"type": "sip.call.progress", "call_id": agent, "status": 180},
                {"observation": "sip.call.progress"},
            ),
            (f"call:{agent}", "call.ringing", {"call_id": agent, "sip_status": 180}, None),
        )
        yield from at(
            rng.uniform(2, 12),
            (
                obs,
                "observation",
                {"type": "sip.call.answered", "call_id": agent},
                {"observation": "sip.call.answered"},
            ),
            (f"call:{agent}", "call.answered", {"call_id": agent}, None),
        )
        if queue:
            yield from at(
                0.05,
                (
                    f"call:{cid}",
                    "queue.agent_connected",
                    {
                        "call_id": cid,
                        "queue_id": q,
                        "agent_id": f"agent{self.i % 50}",
                        "agent_call_id": agent,
                    },
                    None,
                ),
                (
                    f"call:{cid}",
                    "queue.left",
                    {"call_id": cid, "queue_id": q, "reason": "connected"},
                    None,
                ),
            )
        yield from at(
            0.1,
            self.command(
                "call.bridge", {"leg_a": cid, "leg_b": agent}, {"leg_a": cid, "leg_b": agent}
            ),
            (f"call:{cid}", "call.bridged", {"call_id": cid, "leg_a": cid, "leg_b": agent}, None),
        )
        if rng.random() < 0.3:
            rec = f"rec-{self.i}"
            yield from at(
                1.0,
                self.command("record.start", {"call_id": cid}, {"recording_id": rec}),
                (
                    f"call:{cid}",
                    "record.started",
                    {
                        "call_id": cid,
                        "recording_id": rec,
                        "mode": "mixed",
                        "path": f"rec/{rec}.wav",
                    },
                    None,
                ),
            )
        t += rng.uniform(20, 240)
        if rng.random() < 0.5:
            yield from at(
                0.0,
                self.command("call.hold", {"call_id": cid}, {"call_id": cid}),
                (f"call:{cid}", "media.hold.started", {"call_id": cid, "music": None}, None),
            )
            yield from at(
                rng.uniform(5, 120),
                self.command("call.unhold", {"call_id": cid}, {"call_id": cid}),
                (f"call:{cid}", "media.hold.stopped", {"call_id": cid}, None),
            )
        yield from at(
            rng.uniform(10, 200),
            (
                obs,
                "observation",
                {"type": "sip.call.ended", "call_id": cid},
                {"observation": "sip.call.ended"},
            ),
            (
                f"call:{agent}",
                "call.unbridged",
                {"call_id": agent, "leg_a": cid, "leg_b": agent, "reason": "hangup"},
                None,
            ),
            (
                f"call:{cid}",
                "call.hangup",
                {
                    "call_id": cid,
                    "reason": "caller",
                    "sip_status": None,
                    "hangup_by": "remote",
                    "duration_secs": round(t, 3),
                },
                None,
            ),
        )
        yield from at(
            0.5,
            self.command("call.hangup", {"call_id": agent}, {"call_id": agent}),
            (
                f"call:{agent}",
                "call.hangup",
                {
                    "call_id": agent,
                    "reason": "rwi",
                    "sip_status": None,
                    "hangup_by": "rwi",
                    "duration_secs": round(t, 3),
                },
                None,
            ),
        )


def timeline(
    total_events: int, seed: int = 7, calls_per_second: float = 4.0
) -> Iterator[tuple[datetime, Row]]:
    """Events of concurrent calls in time order, until about ``total_events``."""
    rng = random.Random(seed)
    emitted = 0
    for c in range(CONNECTIONS):
        conn = f"conn{c}"
        yield (
            BASE,
            (
                f"session:{conn}",
                "session.opened",
                {"connection_id": conn, "token": f"app{c % 4}", "remote": "127.0.0.1"},
                None,
            ),
        )
        yield (
            BASE,
            (
                f"session:{conn}",
                "session.subscribed",
                {"connection_id": conn, "contexts": list(CONTEXTS)},
                None,
            ),
        )
        emitted += 2
    chunk = 500  # calls are merged in chunks; calls of one chunk overlap in time
    i = 0
    while emitted < total_events:
        pending: list[tuple[float, int, Row]] = []
        for k in range(i, i + chunk):
            start = k / calls_per_second
            for n, (dt, row) in enumerate(_Call(k, rng).events()):
                pending.append((start + dt, k * 1000 + n, row))
        pending.sort(key=lambda p: (p[0], p[1]))
        for offset, _, row in pending:
            yield BASE + timedelta(seconds=offset), row
            emitted += 1
            if emitted >= total_events:
                return
        i += chunk


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


async def copy_log(conn: asyncpg.Connection, total_events: int, seed: int = 7) -> int:
    """COPY a synthetic log of about ``total_events`` into an empty ``events`` table."""
    versions: dict[str, int] = {}
    seq = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal seq
        lines: list[str] = []
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        for when, (stream, etype, data, extra) in timeline(total_events, seed):
            seq += 1
            version = versions.get(stream, 0) + 1
            versions[stream] = version
            ts = _iso(when)
            meta = {"ts": ts, **(extra or {})}
            recorded = when + timedelta(microseconds=1500 + seq % 2000)
            lines.append(
                f"{seq}\t00000000-0000-4000-8000-{seq:012x}\t{stream}\t{version}\t{etype}\t"
                f"{_escape(dumps(data))}\t{_escape(dumps(meta))}\t{recorded.isoformat()}\n"
            )
            if len(lines) >= 20000:
                yield "".join(lines).encode()
                lines = []
        if lines:
            yield "".join(lines).encode()

    await conn.copy_to_table(
        "events",
        source=source(),
        columns=[
            "seq",
            "event_id",
            "stream_id",
            "stream_version",
            "type",
            "data",
            "meta",
            "recorded_at",
        ],
    )
    await conn.execute("UPDATE event_head SET last_seq = $1 WHERE id = 1", seq)
    return seq
