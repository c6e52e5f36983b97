"""Write realistic events into a real log with the group-commit writer (test helper).

Projections read the log whoever wrote it, so appending the call domain's events here
tests their folds before every command that emits them is reachable over RWI.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from rwi.store import GroupCommitWriter, NewEvent
from rwi.store.database import asyncpg_dsn, migrate

T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def at(seconds: float) -> str:
    return iso(T0 + timedelta(seconds=seconds))


class Logbook:
    """Appends events as the service would: command records, observations, call events."""

    def __init__(self, writer: GroupCommitWriter) -> None:
        self.writer = writer
        self.seqs: list[int] = []
        self._ids = itertools.count(1)

    @classmethod
    async def open(cls, db_url: str) -> Logbook:
        await migrate(db_url)
        writer = GroupCommitWriter(asyncpg_dsn(db_url))
        await writer.start()
        return cls(writer)

    async def close(self) -> None:
        await self.writer.close()

    async def emit(
        self, stream: str, etype: str, data: dict[str, Any], t: float, **meta: Any
    ) -> int:
        seqs = await self.writer.append(stream, [NewEvent(etype, data, {"ts": at(t), **meta})])
        self.seqs += seqs
        return seqs[0]

    async def call(self, call_id: str, etype: str, t: float, **data: Any) -> int:
        return await self.emit(f"call:{call_id}", etype, {"call_id": call_id, **data}, t)

    async def session(self, conn: str, token: str, t: float) -> None:
        data = {"connection_id": conn, "token": token, "remote": "127.0.0.1:5000"}
        await self.emit(f"session:{conn}", "session.opened", data, t, connection_id=conn)

    async def command(
        self,
        conn: str,
        token: str,
        action: str,
        params: dict[str, Any],
        t: float,
        error: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        outcome: dict[str, Any] = {"response": "success"}
        if error is not None:
            outcome = {"response": "error", "error": {"code": error, "message": "..."}}
        elif data is not None:
            outcome["data"] = data
        action_id = f"a{next(self._ids)}"
        record = {
            "connection_id": conn,
            "token": token,
            "action": action,
            "action_id": action_id,
            "params": params,
            "outcome": outcome,
        }
        return await self.emit(
            f"session:{conn}",
            "rwi.command",
            record,
            t,
            connection_id=conn,
            action_id=action_id,
        )

    async def observe(self, otype: str, t: float, **data: Any) -> int:
        return await self.emit(
            "service", "observation", {"type": otype, **data}, t, observation=otype
        )
