"""The determinism guard: the log alone must give back the live state and the projections.

``assert_deterministic(running)`` (a running service from ``tests.support.service``):

1. folds the whole log through ``rwi.domain.evolve`` and compares the result with the
   service's live state (``State.snapshot()``), retrying briefly while appends are
   still in flight;
2. waits until the projection runner has caught up with the log, rebuilds every
   projection from the log in a scratch schema and asserts the rebuilt tables equal the
   ones the runner maintained, row for row.

Call it at the end of any end-to-end test, once the test's own commands have replies.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from rwi.domain import State
from rwi.projections import PROJECTIONS
from rwi.projections.verify import check_projection, describe
from rwi.replay import state_at
from rwi.store.database import asyncpg_dsn
from tests.support.service import Running


def _diff(live: dict[str, Any], replayed: dict[str, Any]) -> str:
    lines = []
    for key in sorted(set(live) | set(replayed)):
        if live.get(key) != replayed.get(key):
            lines.append(f"{key}:\n  live     {json.dumps(live.get(key), sort_keys=True)}")
            lines.append(f"  replayed {json.dumps(replayed.get(key), sort_keys=True)}")
    return "\n".join(lines)


async def replayed_state(conn: asyncpg.Connection, head: int) -> State:
    state, _ = await state_at(conn, head)
    return state


async def assert_replay_matches_live(running: Running, conn: asyncpg.Connection) -> None:
    service = running.service
    for attempt in range(40):
        head = await conn.fetchval("SELECT last_seq FROM event_head WHERE id = 1")
        live = service.state.snapshot()
        state, _ = await state_at(conn, head)
        state.policy = service.state.policy
        replayed = state.snapshot()
        if live == replayed:
            return
        if attempt < 39:
            await asyncio.sleep(0.05)  # an append may still be on its way to the log
    raise AssertionError(
        "replaying the log through evolve does not give the live state:\n" + _diff(live, replayed)
    )


async def assert_projections_rebuild_identically(
    running: Running, conn: asyncpg.Connection
) -> None:
    runner = running.runtime.projections
    assert runner is not None, "the runtime has no projection runner"
    async with asyncio.timeout(20):
        await runner.caught_up()
    problems: list[str] = []
    for projection in PROJECTIONS.values():
        check = await check_projection(conn, projection)
        problems += describe(check)
    assert not problems, "rebuilding the projections from the log differs:\n" + "\n".join(problems)


async def assert_deterministic(running: Running, database_url: str | None = None) -> None:
    """Replay reproduces the live state; a rebuild reproduces the projection tables."""
    url = database_url or running.config.database.url
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await assert_replay_matches_live(running, conn)
        await assert_projections_rebuild_identically(running, conn)
    finally:
        await conn.close()
