"""Replay tooling: what exactly happened on call X, and the live state at any point.

Where this sits: a reader of the log, like the live state and the projections; it never
writes events (``import_bundle`` loads a bundle into a scratch database only).

- ``call_story``: every event of the call, in ``seq`` order: its stream (``call:<id>``,
  the unique stream index), the commands, observations and other calls' events that
  name it (the ``events_call_refs`` index), plus the context ``evolve`` needs to show
  the call's state after each step: the other calls' first events, service restarts
  and the opening/closing of the connections involved. A few index lookups: it does
  not grow with the size of the log.
- ``state_at``: the whole live state (``State.snapshot()``) after a given ``seq``.
- ``export_call`` / ``import_bundle``: a call's story as a self-contained JSONL bundle.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from rwi.domain import State, evolve
from rwi.domain.delivery import is_pushed
from rwi.store import StoredEvent
from rwi.store.reader import to_event

COLUMNS: Final = "seq, event_id, stream_id, stream_version, type, data, meta, recorded_at"
_STORY = f"""
SELECT {COLUMNS} FROM events
 WHERE stream_id = 'call:' || $1
    OR rwi_call_refs(stream_id, type, data) @> ARRAY[left($1, 200)]
 ORDER BY seq
"""
_FIRST_OF = f"""
SELECT {COLUMNS} FROM events
 WHERE stream_id = ANY($1::text[]) AND stream_version = 1
"""
_LAST_OF = f"""
SELECT e.* FROM unnest($1::text[]) AS s(id), LATERAL (
  SELECT {COLUMNS} FROM events WHERE stream_id = s.id ORDER BY stream_version DESC LIMIT 1
) AS e
"""
_RESTARTS = f"""
SELECT {COLUMNS} FROM events
 WHERE type = 'service.started' AND seq BETWEEN $1 AND $2
"""
#: Keys of event data and command params that name connections and calls.
_CONNECTION_KEYS = ("connection_id", "owner")
_CALL_KEYS = ("call_id", "leg_a", "leg_b", "target_call_id", "supervisor_call_id")


class ReplayError(Exception):
    """A replay request that cannot be answered (unknown call, bad bundle, ...)."""


@dataclass
class Step:
    """One event of a call's story, and the call as it was right after it."""

    event: StoredEvent
    kind: str
    call: dict[str, Any] | None
    context: bool = False

    def describe(self) -> str:
        e, data = self.event, self.event.data
        if e.type == "rwi.command":
            outcome = data.get("outcome") or {}
            reply = outcome.get("response", "?")
            if reply == "error":
                reply = f"error {(outcome.get('error') or {}).get('code')}"
            return (
                f"{data.get('action')} {json.dumps(data.get('params'), ensure_ascii=False)} "
                f"by {data.get('token')}/{data.get('connection_id')} "
                f"action_id={data.get('action_id')} -> {reply}"
            )
        if e.type == "observation":
            rest = {k: v for k, v in data.items() if k != "type"}
            return f"{data.get('type')} {json.dumps(rest, ensure_ascii=False)}"
        return f"{e.type} {json.dumps(data, ensure_ascii=False)}"

    def as_json(self) -> dict[str, Any]:
        e = self.event
        return {
            "seq": e.seq,
            "ts": e.meta.get("ts"),
            "recorded_at": e.recorded_at.isoformat(),
            "stream_id": e.stream_id,
            "type": e.type,
            "kind": self.kind,
            "context": self.context,
            "data": e.data,
            "meta": e.meta,
            "call": self.call,
        }


@dataclass
class Story:
    call_id: str
    steps: list[Step] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "steps": [s.as_json() for s in self.steps]}


def kind_of(event: StoredEvent) -> str:
    """command, observation, timer, event (pushed to clients), internal or context."""
    if event.type == "rwi.command":
        return "command"
    if event.type == "observation":
        obs = str(event.data.get("type", ""))
        return "timer" if obs.startswith("timer.") else "observation"
    if event.type.startswith(("service.", "session.")):
        return "context"
    return "event" if is_pushed(event.type) else "internal"


def _named(event: StoredEvent, keys: Iterable[str]) -> set[str]:
    sources = [event.data]
    params = event.data.get("params")
    if event.type == "rwi.command" and isinstance(params, dict):
        sources.append(params)
    return {v for src in sources for k in keys if isinstance(v := src.get(k), str) and v}


async def call_events(
    conn: asyncpg.Connection | asyncpg.Pool, call_id: str
) -> tuple[list[StoredEvent], set[int]]:
    """The call's story with its context, in ``seq`` order, and the seqs of the story
    itself (the rest is context: other calls' first events, restarts, connections)."""
    story = [to_event(r) for r in await conn.fetch(_STORY, call_id)]
    if not story:
        return [], set()
    seqs = {e.seq for e in story}
    others = set().union(*(_named(e, _CALL_KEYS) for e in story)) - {call_id}
    connections = set().union(*(_named(e, _CONNECTION_KEYS) for e in story))
    connections |= {str(e.meta["connection_id"]) for e in story if "connection_id" in e.meta}
    sessions = [f"session:{c}" for c in sorted(connections)]
    context: list[StoredEvent] = []
    context += [to_event(r) for r in await conn.fetch(_FIRST_OF, [f"call:{c}" for c in others])]
    context += [to_event(r) for r in await conn.fetch(_FIRST_OF, sessions)]
    context += [
        e for e in map(to_event, await conn.fetch(_LAST_OF, sessions)) if e.type == "session.closed"
    ]
    context += [to_event(r) for r in await conn.fetch(_RESTARTS, story[0].seq, story[-1].seq)]
    extra = {e.seq: e for e in context if e.seq not in seqs and e.seq <= story[-1].seq}
    return sorted([*story, *extra.values()], key=lambda e: e.seq), seqs


def fold_story(call_id: str, events: list[StoredEvent], story_seqs: set[int]) -> Story:
    """The steps of a story with the call's state after each."""
    state = State()
    story = Story(call_id)
    for event in events:
        # An event about another call whose history is not part of this story cannot
        # change this call: if evolve needs that history, the call's state stays as it was.
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            evolve(state, event)
        call = state.snapshot()["calls"].get(call_id)
        story.steps.append(Step(event, kind_of(event), call, context=event.seq not in story_seqs))
    return story


async def replay_call(conn: asyncpg.Connection | asyncpg.Pool, call_id: str) -> Story:
    events, seqs = await call_events(conn, call_id)
    if not events:
        raise ReplayError(f"call {call_id!r} is not in the log")
    return fold_story(call_id, events, seqs)


# --- the whole state at a point ----------------------------------------------------------


def wire_ts(value: str) -> str:
    """A user's timestamp (ISO 8601; naive means UTC) in the log's ``meta.ts`` form."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ReplayError(
            f"{value!r} is neither a seq nor an ISO timestamp (e.g. 2026-03-14T09:15:22Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


async def resolve_at(conn: asyncpg.Connection | asyncpg.Pool, at: str) -> int:
    """``--at``: a seq, or the last event decided at or before a timestamp."""
    text = at.strip()
    if text.isdigit():
        return int(text)
    ts = wire_ts(text)
    seq: int | None = await conn.fetchval(
        "SELECT max(seq) FROM events WHERE (meta->>'ts') COLLATE \"C\" <= $1", ts
    )
    return seq or 0


async def events_upto(
    conn: asyncpg.Connection | asyncpg.Pool, upto: int, page: int = 10000
) -> AsyncIterator[StoredEvent]:
    after = 0
    while after < upto:
        rows = await conn.fetch(
            f"SELECT {COLUMNS} FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
            after,
            upto,
            page,
        )
        if not rows:
            return
        for row in rows:
            yield to_event(row)
        after = rows[-1]["seq"]


async def state_at(conn: asyncpg.Connection | asyncpg.Pool, upto: int) -> tuple[State, int]:
    """The live state after event ``upto`` (the same fold as the service's start-up)."""
    state = State()
    count = 0
    async for event in events_upto(conn, upto):
        evolve(state, event)
        count += 1
    return state, count


# --- bundles -----------------------------------------------------------------------------

BUNDLE_VERSION = 1


def event_json(event: StoredEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "event_id": str(event.event_id),
        "stream_id": event.stream_id,
        "stream_version": event.stream_version,
        "type": event.type,
        "data": event.data,
        "meta": event.meta,
        "recorded_at": event.recorded_at.isoformat(),
    }


async def export_call(conn: asyncpg.Connection | asyncpg.Pool, call_id: str) -> list[str]:
    """The bundle's lines: a metadata header, then the call's story and context."""
    events, _ = await call_events(conn, call_id)
    if not events:
        raise ReplayError(f"call {call_id!r} is not in the log")
    head = await conn.fetchval("SELECT last_seq FROM event_head WHERE id = 1")
    revision = await conn.fetchval("SELECT version_num FROM alembic_version")
    header = {
        "rwi_bundle": BUNDLE_VERSION,
        "call_id": call_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "events": len(events),
        "first_seq": events[0].seq,
        "last_seq": events[-1].seq,
        "log_head": head,
        "schema_revision": revision,
    }
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return [dumps(header), *(dumps(event_json(e)) for e in events)]


@dataclass(frozen=True)
class Bundle:
    header: dict[str, Any]
    rows: list[tuple[Any, ...]]


_FIELDS: Final = {
    "seq": int,
    "event_id": str,
    "stream_id": str,
    "stream_version": int,
    "type": str,
    "data": dict,
    "meta": dict,
    "recorded_at": str,
}


def parse_bundle(lines: Iterable[str], source: str = "bundle") -> Bundle:
    """Validate a bundle line by line; every problem names its line."""
    header: dict[str, Any] | None = None
    rows: list[tuple[Any, ...]] = []
    seqs: set[int] = set()
    ids: set[uuid.UUID] = set()
    versions: set[tuple[str, int]] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReplayError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise ReplayError(f"{where}: expected a JSON object")
        if header is None:
            if item.get("rwi_bundle") != BUNDLE_VERSION:
                raise ReplayError(
                    f"{where}: not an rwi bundle (the first line must be its header with "
                    f'"rwi_bundle": {BUNDLE_VERSION})'
                )
            header = item
            continue
        rows.append(_bundle_row(item, where, seqs, ids, versions))
    if header is None:
        raise ReplayError(f"{source}: empty file, not an rwi bundle")
    if not rows:
        raise ReplayError(f"{source}: the bundle holds no events")
    return Bundle(header, rows)


def _bundle_row(
    item: dict[str, Any],
    where: str,
    seqs: set[int],
    ids: set[uuid.UUID],
    versions: set[tuple[str, int]],
) -> tuple[Any, ...]:
    for name, kind in _FIELDS.items():
        value = item.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ReplayError(f"{where}: {name} must be a {kind.__name__}")
    if item["seq"] < 1 or item["stream_version"] < 1:
        raise ReplayError(f"{where}: seq and stream_version must be positive")
    if item["seq"] in seqs:
        raise ReplayError(f"{where}: seq {item['seq']} appears twice")
    try:
        event_id = uuid.UUID(item["event_id"])
        recorded = datetime.fromisoformat(item["recorded_at"])
    except ValueError as exc:
        raise ReplayError(f"{where}: {exc}") from None
    if recorded.tzinfo is None:
        raise ReplayError(f"{where}: recorded_at needs a time zone")
    key = (item["stream_id"], item["stream_version"])
    if event_id in ids or key in versions:
        raise ReplayError(f"{where}: event_id or stream version appears twice")
    seqs.add(item["seq"])
    ids.add(event_id)
    versions.add(key)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    data, meta = dumps(item["data"]), dumps(item["meta"])
    if "\\u0000" in data or "\\u0000" in meta:
        raise ReplayError(f"{where}: NUL characters cannot be stored")
    return (
        item["seq"],
        event_id,
        item["stream_id"],
        item["stream_version"],
        item["type"],
        data,
        meta,
        recorded,
    )


async def import_bundle(conn: asyncpg.Connection, bundle: Bundle) -> int:
    """Load a bundle's events, with their original seqs, into an empty log."""
    async with conn.transaction():
        count = await conn.fetchval("SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1) s")
        if count:
            raise ReplayError(
                "the target database already holds events: import into a new, empty database"
            )
        rows = sorted(bundle.rows)
        await conn.executemany(
            "INSERT INTO events (seq, event_id, stream_id, stream_version, type, data, meta, "
            "recorded_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8)",
            rows,
        )
        await conn.execute("UPDATE event_head SET last_seq = $1 WHERE id = 1", rows[-1][0])
    return len(rows)
