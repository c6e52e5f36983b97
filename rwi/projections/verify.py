"""Verification: rebuild projections from the log in a scratch schema and diff them.

Used by ``rwi verify`` and by the tests' determinism guard. Each projection is rebuilt,
up to the position its current tables are at, inside one REPEATABLE READ transaction:
the current tables, their checkpoint and the log are all seen as of one snapshot, the
scratch tables (a fresh schema first on the search path) are filled by the projection's
own rebuild code, compared with ``EXCEPT ALL`` both ways, and everything is rolled back
(so nothing is left behind, whatever happens).

The live state is checked against the ``calls`` table too: the calls active in the
state folded from the log (``rwi.domain.evolve``) must be the legs the projection shows
as not ended, with the same direction, parties, context, state and bridge peer.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from rwi.domain import State
from rwi.projections.engine import Projection
from rwi.projections.tables import KEYS


class _Rollback(Exception):
    pass


@dataclass
class TableDiff:
    table: str
    #: rows the rebuild produced that the current table lacks, and the reverse
    missing: list[dict[str, Any]] = field(default_factory=list)
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    missing_count: int = 0
    unexpected_count: int = 0

    @property
    def ok(self) -> bool:
        return not self.missing_count and not self.unexpected_count


@dataclass
class ProjectionCheck:
    name: str
    position: int
    tables: list[TableDiff]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)


async def table_schema(conn: asyncpg.Connection, table: str) -> str:
    schema: str = await conn.fetchval(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = to_regclass($1)",
        table,
    )
    return schema


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def check_projection(
    conn: asyncpg.Connection, projection: Projection, limit: int = 20
) -> ProjectionCheck:
    """Rebuild ``projection`` in a scratch schema and compare with its current tables."""
    result: ProjectionCheck | None = None
    try:
        async with conn.transaction(isolation="repeatable_read"):
            position = await conn.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = $1", projection.name
            )
            position = int(position or 0)
            live = _quote(await table_schema(conn, projection.tables[0]))
            scratch = _quote(f"rwi_verify_{uuid.uuid4().hex[:12]}")
            await conn.execute(f"CREATE SCHEMA {scratch}")
            for table in projection.tables:
                await conn.execute(
                    f"CREATE TABLE {scratch}.{table} "
                    f"(LIKE {live}.{table} INCLUDING DEFAULTS INCLUDING GENERATED)"
                )
            await conn.execute(f"SET LOCAL search_path = {scratch}, {live}")
            await projection.rebuild(conn, position)
            diffs = [
                await _diff(conn, f"{scratch}.{t}", f"{live}.{t}", t, limit)
                for t in projection.tables
            ]
            result = ProjectionCheck(projection.name, position, diffs)
            raise _Rollback
    except _Rollback:
        pass
    assert result is not None
    return result


async def _diff(
    conn: asyncpg.Connection, rebuilt: str, current: str, table: str, limit: int
) -> TableDiff:
    order = ", ".join(KEYS[table])
    diff = TableDiff(table)
    for side, first, second in (("missing", rebuilt, current), ("unexpected", current, rebuilt)):
        rows = await conn.fetch(
            f"WITH d AS (SELECT * FROM {first} EXCEPT ALL SELECT * FROM {second}) "
            f"SELECT (SELECT count(*) FROM d) AS n, to_jsonb(d) AS row FROM d "
            f"ORDER BY {order} LIMIT $1",
            limit,
        )
        count = int(rows[0]["n"]) if rows else 0
        listed = [json.loads(r["row"]) for r in rows]
        if side == "missing":
            diff.missing, diff.missing_count = listed, count
        else:
            diff.unexpected, diff.unexpected_count = listed, count
    return diff


# --- live state against the calls table --------------------------------------------------

_STATE_FIELDS = ("direction", "caller", "callee", "context", "state", "bridged_with")


async def check_state(conn: asyncpg.Connection, state: State, limit: int = 20) -> list[str]:
    """Differences between the state's active calls and the legs ``calls`` shows open."""
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (call_id) call_id, {', '.join(_STATE_FIELDS)} FROM calls "
        "ORDER BY call_id, leg_seq DESC"
    )
    open_legs = {r["call_id"]: r for r in rows if r["state"] != "ended"}
    problems: list[str] = []
    for call_id in sorted(set(open_legs) | set(state.calls)):
        call = state.calls.get(call_id)
        leg = open_legs.get(call_id)
        if call is None:
            problems.append(f"call {call_id}: the calls table shows it {leg and leg['state']}, "
                            "the live state has no such call")  # fmt: skip
        elif leg is None:
            problems.append(f"call {call_id}: active ({call.state}) in the live state, "
                            "ended or absent in the calls table")  # fmt: skip
        else:
            live = call.summary()
            for name in _STATE_FIELDS:
                want, have = live.get(name) or None, leg[name] or None
                if want != have:
                    problems.append(
                        f"call {call_id}: {name} is {want!r} in the live state, "
                        f"{have!r} in the calls table"
                    )
        if len(problems) >= limit:
            break
    return problems


def describe(check: ProjectionCheck) -> list[str]:
    """Human-readable lines for a failed check."""
    lines = []
    for t in check.tables:
        if t.ok:
            continue
        lines.append(
            f"{check.name}: table {t.table} differs at position {check.position}: "
            f"{t.missing_count} row(s) the rebuild has and the table lacks, "
            f"{t.unexpected_count} row(s) the table has and the rebuild lacks"
        )
        lines += [f"  - missing    {json.dumps(r, default=str)}" for r in t.missing]
        lines += [f"  + unexpected {json.dumps(r, default=str)}" for r in t.unexpected]
    return lines
