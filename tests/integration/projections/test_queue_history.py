"""Queue entries and agent state intervals in SQL, from a log the real queue domain
wrote (``queue_day``): rows asserted exactly, following page by page equals a rebuild,
``rwi verify`` passes, and ``rwi report queue_summary|agent_states``."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from rwi.cli import main
from rwi.projections import PROJECTIONS, engine
from rwi.projections.verify import check_projection, describe
from rwi.store.database import asyncpg_dsn
from tests.integration.projections.logbook import Logbook
from tests.integration.projections.queue_day import append, queue_morning

pytestmark = pytest.mark.integration


async def write_morning(db_url: str) -> int:
    log = await Logbook.open(db_url)
    try:
        await append(log, queue_morning())
    finally:
        await log.close()
    return log.seqs[-1]


async def assert_morning(conn: asyncpg.Connection) -> None:
    entries = await conn.fetch(
        "SELECT call_id, queue_id, wait_secs, left_reason, agent_id FROM queue_entries"
        " ORDER BY joined_seq"
    )
    assert [tuple(r) for r in entries] == [
        ("c1", "support", Decimal("4.000"), "connected", "a1"),
        ("c2", "support", Decimal("13.000"), "abandoned", None),
        ("c3", "support", Decimal("5.000"), "timeout", None),
        ("c4", "other", Decimal("10.000"), "requeued", None),
        ("c4", "support", Decimal("13.000"), "connected", "a1"),
    ]
    states = await conn.fetch(
        "SELECT agent_id, state, reason, secs FROM agent_states ORDER BY agent_id, started_seq"
    )
    assert [tuple(r) for r in states] == [
        ("a1", "available", "login", Decimal("2.000")),
        ("a1", "ringing", "offer", Decimal("4.000")),
        ("a1", "busy", "connected", Decimal("15.000")),
        ("a1", "wrap_up", "hangup", Decimal("5.000")),
        ("a1", "available", "wrap_up_over", Decimal("1.000")),
        ("a1", "paused", "meeting", Decimal("25.000")),
        ("a1", "available", "unpause", Decimal("0.000")),
        ("a1", "ringing", "offer", Decimal("1.000")),
        ("a1", "busy", "connected", None),
        ("a2", "available", "login", Decimal("6.000")),
        ("a2", "ringing", "offer", Decimal("1.000")),
        ("a2", "available", "busy", Decimal("3.000")),
        ("a2", "paused", "coffee", None),
    ]


async def test_rebuild_and_page_by_page_give_the_rows_and_verify_passes(db_url: str) -> None:
    head = await write_morning(db_url)
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        for upto in [*range(3, head, 3), head]:
            for projection in PROJECTIONS.values():
                assert await engine.advance(conn, projection, upto) == upto
        await assert_morning(conn)
        for projection in PROJECTIONS.values():
            check = await check_projection(conn, projection)
            assert check.ok, describe(check)
        for projection in PROJECTIONS.values():
            await engine.rebuild(conn, projection)
        await assert_morning(conn)
    finally:
        await conn.close()


def test_queue_summary_and_agent_states_reports(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RWI_CONFIG", raising=False)
    asyncio.run(write_morning(db_url))
    assert main(["rebuild", "--database-url", db_url]) == 0
    assert main(["verify", "--database-url", db_url]) == 0
    capsys.readouterr()
    argv = ["report", "queue_summary", "--csv", "--sla-secs", "5", "--database-url", db_url]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "hour,queue_id,offered,answered,abandoned,timed_out,avg_wait_secs,p90_wait_secs,"
        "answered_within_sla,service_level",
        "2026-03-14T09:00:00+00:00,support,4,2,1,1,8.750,13.000,1,0.250",
    ]
    assert main([*argv[:3], "--sla-secs", "13", *argv[5:]]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(",2,0.500")
    # abandonment agrees with the summary: only c2 gave up; c4's requeue from `other`
    # is neither an abandonment nor a second offer
    assert main(["report", "abandonment", "--csv", "--database-url", db_url]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "hour,via,name,offered,answered,abandoned,abandonment_rate",
        "2026-03-14T09:00:00+00:00,queue,support,4,2,1,0.2500",
    ]
    assert main(["report", "agent_states", "--csv", "--database-url", db_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "day,agent_id,state,intervals,secs,now_in_state"
    assert lines[1:] == [
        "2026-03-14T00:00:00+00:00,a1,available,3,3.000,False",
        "2026-03-14T00:00:00+00:00,a1,busy,2,15.000,True",
        "2026-03-14T00:00:00+00:00,a1,paused,1,25.000,False",
        "2026-03-14T00:00:00+00:00,a1,ringing,2,5.000,False",
        "2026-03-14T00:00:00+00:00,a1,wrap_up,1,5.000,False",
        "2026-03-14T00:00:00+00:00,a2,available,2,9.000,False",
        "2026-03-14T00:00:00+00:00,a2,paused,1,0.000,True",
        "2026-03-14T00:00:00+00:00,a2,ringing,1,1.000,False",
    ]
