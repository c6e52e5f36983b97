"""Reports: the contact-centre questions, answered by SQL views over the projections.

Where this sits: a reader of the projection tables (``rwi.projections``), never of the
log itself. Each report is a view created by the migrations (``report_*``, documented
with example queries in docs/reporting.md); ``rwi report <name>`` prints it as a table
or CSV, filtered on its time column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Report:
    view: str
    #: the column --from/--to filter on
    time_column: str
    order: str
    description: str
    #: a report taking options is a SQL function of them, in this order
    options: tuple[str, ...] = ()


REPORTS: dict[str, Report] = {
    "calls_per_hour": Report(
        "report_calls_per_hour",
        "hour",
        "hour, direction, outcome",
        "calls per hour by direction and outcome, with average ring and talk time",
    ),
    "speed_of_answer": Report(
        "report_speed_of_answer",
        "hour",
        "hour, via, name",
        "average speed of answer per hour, per queue (wait) and per context (ringing)",
    ),
    "abandonment": Report(
        "report_abandonment",
        "hour",
        "hour, via, name",
        "offered, answered and abandoned calls per hour, per queue and per context",
    ),
    "agent_talk_time": Report(
        "report_agent_talk_time",
        "day",
        "day, agent_id",
        "calls and talk time per agent per day (queue calls connected to the agent)",
    ),
    "longest_holds": Report(
        "report_longest_holds",
        "started_at",
        "hold_secs DESC, started_at, call_id",
        "holds, longest first",
    ),
    "recordings": Report(
        "report_recordings",
        "started_at",
        "started_at, call_id, recording_id",
        "recordings: call, mode, state, why they stopped, duration, pauses, file",
    ),
    "queue_summary": Report(
        "report_queue_summary",
        "hour",
        "hour, queue_id",
        "per queue per hour: offered, answered, abandoned, timed out, average and p90 wait,"
        " service level (share answered within --sla-secs)",
        options=("sla_secs",),
    ),
    "agent_states": Report(
        "report_agent_states",
        "day",
        "day, agent_id, state",
        "time per state per agent per day (available, ringing, busy, wrap_up, paused...)",
    ),
}

#: defaults of report options (``--sla-secs``)
OPTION_DEFAULTS: dict[str, Any] = {"sla_secs": 20}


class ReportError(Exception):
    """A report request that cannot be run (unknown name, bad time)."""


def parse_time(value: str, option: str) -> datetime:
    """``--from``/``--to``: an ISO date or date-time; without a zone it is UTC."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ReportError(
            f"{option} {value!r} is not an ISO date or time (e.g. 2026-03-14 or "
            "2026-03-14T09:00:00Z)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


async def run(
    conn: asyncpg.Connection,
    name: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[list[str], list[asyncpg.Record]]:
    """The report's columns and rows, ``start <= time < end``."""
    report = REPORTS.get(name)
    if report is None:
        raise ReportError(f"unknown report {name!r}; reports: {', '.join(REPORTS)}")
    where: list[str] = []
    args: list[Any] = []
    source = report.view
    if report.options:
        given = {**OPTION_DEFAULTS, **(options or {})}
        args += [Decimal(str(given[option])) for option in report.options]
        source += f"({', '.join(f'${n}' for n in range(1, len(args) + 1))})"
    if start is not None:
        args.append(start)
        where.append(f"{report.time_column} >= ${len(args)}")
    if end is not None:
        args.append(end)
        where.append(f"{report.time_column} < ${len(args)}")
    sql = f"SELECT * FROM {source}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {report.order}"
    if limit is not None:
        args.append(limit)
        sql += f" LIMIT ${len(args)}"
    statement = await conn.prepare(sql)
    columns = [a.name for a in statement.get_attributes()]
    return columns, await statement.fetch(*args)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def as_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[cell(v) for v in row] for row in rows])
    return out.getvalue()


def as_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned columns; numbers to the right."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in rows) and rows
        for i in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(columns), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"
