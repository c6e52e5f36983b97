"""``rwi replay | rebuild | verify | report | export | import`` as a user runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from rwi.cli import main
from rwi.store.database import asyncpg_dsn
from tests.integration.projections.contact_centre import contact_centre
from tests.integration.projections.logbook import Logbook, at
from tests.support.databases import server_url, with_database

pytestmark = pytest.mark.integration


@pytest.fixture
def logged(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database holding the contact-centre scenario; cwd without an rwi.toml."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RWI_CONFIG", raising=False)

    async def write() -> None:
        log = await Logbook.open(db_url)
        await contact_centre(log)
        await log.close()

    asyncio.run(write())
    return db_url


def rwi(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sql(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def test_replay_call_tells_the_story_in_order(
    logged: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = rwi(capsys, "replay", "call", "c1", "--json", "--database-url", logged)
    assert (code, err) == (0, "")
    story = json.loads(out)
    own = [s for s in story["steps"] if not s["context"]]
    assert [s["seq"] for s in story["steps"]] == sorted(s["seq"] for s in story["steps"])
    assert [(s["kind"], s["type"]) for s in own][:6] == [
        ("observation", "observation"),
        ("event", "call.incoming"),
        ("command", "rwi.command"),
        ("internal", "call.claimed"),
        ("event", "call.answered"),
        ("event", "queue.joined"),
    ]
    assert own[2]["data"]["action"] == "call.answer" and own[2]["ts"] == at(3)
    assert own[3]["call"]["owner"] == "conn1"
    bridged = next(s for s in own if s["type"] == "call.bridged")
    assert (bridged["call"]["state"], bridged["call"]["bridged_with"]) == ("bridged", "a1")
    held = next(s for s in own if s["type"] == "media.hold.started")
    assert held["call"]["state"] == "held" and held["call"]["held_from"] == "bridged"
    assert own[-1]["type"] == "call.hangup" and own[-1]["call"] is None
    # the agent leg's unbridge (in its own stream) is part of c1's story
    assert any(s["type"] == "call.unbridged" and s["stream_id"] == "call:a1" for s in own)
    # context: the other leg's first event and the connections' openings
    context = {(s["type"], s["stream_id"]) for s in story["steps"] if s["context"]}
    assert context == {
        ("session.opened", "session:conn1"),
        ("call.originated", "call:a1"),
    }

    code, out, _ = rwi(capsys, "replay", "call", "c1", "--database-url", logged)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("call c1: ")
    assert any("call.answer" in line and "-> success" in line for line in lines)

    code, out, err = rwi(capsys, "replay", "call", "nope", "--database-url", logged)
    assert (code, out, err) == (1, "", "rwi: call 'nope' is not in the log\n")


def test_replay_state_at_a_seq_and_at_a_time(
    logged: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (row,) = sql(logged, "SELECT seq FROM events WHERE type = 'call.bridged'")
    code, out, _ = rwi(
        capsys, "replay", "state", "--at", str(row["seq"]), "--json", "--database-url", logged
    )
    assert code == 0
    doc = json.loads(out)
    assert (doc["at_seq"], doc["ts"], doc["events"]) == (row["seq"], at(16), row["seq"])
    calls = doc["state"]["calls"]
    assert sorted(calls) == ["a1", "c1"]
    assert calls["c1"]["state"] == calls["a1"]["state"] == "bridged"
    assert sorted(doc["state"]["sessions"]) == ["conn1", "conn2"]

    # a time: the last event decided at or before it
    code, out, _ = rwi(
        capsys, "replay", "state", "--at", "2026-03-14T10:00:00+01:00", "--database-url", logged
    )
    assert code == 0
    assert json.loads(out)["ts"] == at(0)
    code, out, _ = rwi(capsys, "replay", "state", "--at", at(99), "--database-url", logged)
    assert json.loads(out)["ts"] == at(97)

    code, _, err = rwi(capsys, "replay", "state", "--at", "yesterday", "--database-url", logged)
    assert code == 1 and "neither a seq nor an ISO timestamp" in err


def test_rebuild_verify_and_a_tampered_table(
    logged: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = rwi(capsys, "rebuild", "--database-url", logged)
    assert code == 0
    assert "calls rebuilt up to seq" in out and "rwi_commands rebuilt up to seq" in out
    assert sql(logged, "SELECT count(*) AS n FROM calls")[0]["n"] == 6

    code, out, _ = rwi(capsys, "verify", "--database-url", logged)
    assert code == 0 and "agree with the log" in out

    sql(logged, "UPDATE calls SET hangup_reason = 'forged' WHERE call_id = 'c1'")
    code, out, err = rwi(capsys, "verify", "--database-url", logged)
    assert code == 1
    assert "calls: table calls differs" in out
    assert '"hangup_reason": "forged"' in out and '"hangup_reason": "caller"' in out
    assert "difference(s)" in err

    code, out, _ = rwi(capsys, "rebuild", "calls", "--database-url", logged)
    assert code == 0 and "rwi_commands" not in out
    code, _, _ = rwi(capsys, "verify", "--database-url", logged)
    assert code == 0

    code, _, err = rwi(capsys, "rebuild", "cdr", "--database-url", logged)
    assert code == 2 and "unknown projection cdr" in err


def test_reports_as_table_and_csv(logged: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert rwi(capsys, "rebuild", "--database-url", logged)[0] == 0
    code, out, _ = rwi(capsys, "report", "calls_per_hour", "--csv", "--database-url", logged)
    assert code == 0
    assert out.splitlines() == [
        "hour,direction,outcome,calls,avg_ring_secs,avg_talk_secs,talk_secs",
        "2026-03-14T09:00:00+00:00,inbound,abandoned,1,5.000,,0.000",
        "2026-03-14T09:00:00+00:00,inbound,answered,1,2.000,167.000,167.000",
        "2026-03-14T09:00:00+00:00,inbound,in_progress,1,,,0.000",
        "2026-03-14T09:00:00+00:00,outbound,answered,1,5.000,156.000,156.000",
        "2026-03-14T09:00:00+00:00,outbound,busy,1,4.000,,0.000",
        "2026-03-14T09:00:00+00:00,outbound,in_progress,1,2.000,,0.000",
    ]
    code, out, _ = rwi(capsys, "report", "longest_holds", "--database-url", logged)
    assert code == 0
    assert out.splitlines()[2].split() == ["2026-03-14T09:01:00+00:00", "c1", "sip:100@x",
                                           "sip:200@y", "agent7", "30.000", "moh.wav"]  # fmt: skip
    code, out, _ = rwi(capsys, "report", "recordings", "--csv", "--database-url", logged)
    assert code == 0
    assert out.splitlines()[0].split(",")[:9] == [
        "started_at", "stopped_at", "recording_id", "call_id", "mode", "state", "reason",
        "duration_secs", "paused_secs",
    ]  # fmt: skip
    assert out.splitlines()[1].split(",")[2:9] == ["r1", "c1", "mixed", "stopped", "rwi",
                                                   "130.5", "10.000"]  # fmt: skip
    code, out, _ = rwi(
        capsys, "report", "speed_of_answer", "--csv", "--from", "2026-03-14",
        "--to", "2026-03-15", "--database-url", logged,
    )  # fmt: skip
    assert out.splitlines()[1:] == [
        "2026-03-14T09:00:00+00:00,context,sales,1,2.000,2.000",
        "2026-03-14T09:00:00+00:00,queue,q1,1,11.000,11.000",
    ]
    code, out, _ = rwi(capsys, "report", "agent_talk_time", "--csv", "--database-url", logged)
    assert out.splitlines()[1:] == ["2026-03-14T00:00:00+00:00,agent7,1,155.000,155.000"]
    code, out, _ = rwi(
        capsys, "report", "abandonment", "--csv", "--to", "2026-03-14", "--database-url", logged
    )
    assert (code, out.splitlines()[1:]) == (0, [])
    code, _, err = rwi(capsys, "report", "abandonment", "--from", "soon", "--database-url", logged)
    assert code == 2 and "--from 'soon' is not an ISO date" in err


def test_export_then_import_into_a_scratch_database_replays_the_same(
    logged: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "c1.jsonl"
    code, _, err = rwi(capsys, "export", "call", "c1", "-o", str(bundle), "--database-url", logged)
    assert code == 0 and "events of call c1" in err
    header, *events = [json.loads(line) for line in bundle.read_text().splitlines()]
    assert header["rwi_bundle"] == 1 and header["call_id"] == "c1"
    assert header["events"] == len(events) and header["schema_revision"]

    code, _, err = rwi(capsys, "export", "call", "c1", "-o", str(bundle), "--database-url", logged)
    assert code == 2 and "exists; use --force" in err
    missing_dir = tmp_path / "no" / "such" / "dir.jsonl"
    code, _, err = rwi(
        capsys, "export", "call", "c1", "-o", str(missing_dir), "--database-url", logged
    )
    assert code == 2 and "does not exist" in err

    scratch = with_database(server_url(), f"{Path(logged).name}_imported")
    try:
        code, out, err = rwi(capsys, "import", str(bundle), "--database-url", scratch)
        assert code == 0, err
        assert f"imported {len(events)} events (call c1)" in out
        _, original, _ = rwi(capsys, "replay", "call", "c1", "--json", "--database-url", logged)
        _, imported, _ = rwi(capsys, "replay", "call", "c1", "--json", "--database-url", scratch)
        assert json.loads(imported) == json.loads(original)
        # the scratch database's projections were rebuilt from the bundle
        (row,) = sql(scratch, "SELECT state, talk_secs FROM calls WHERE call_id = 'c1'")
        assert row["state"] == "ended"
        # a second import into the same (no longer empty) database is refused
        code, _, err = rwi(capsys, "import", str(bundle), "--database-url", scratch)
        assert code == 1 and "already holds events" in err
    finally:
        sql(server_url(), f'DROP DATABASE IF EXISTS "{Path(scratch).name}" WITH (FORCE)')


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file, not an rwi bundle"),
        ("not json\n", ":1: not JSON"),
        ('{"hello": 1}\n', ":1: not an rwi bundle"),
        ('{"rwi_bundle": 1}\n', "the bundle holds no events"),
        ('{"rwi_bundle": 1}\n[1]\n', ":2: expected a JSON object"),
        ('{"rwi_bundle": 1}\n{"seq": "1"}\n', ":2: seq must be a int"),
    ],
)
def test_bad_bundles_are_refused_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bundle = tmp_path / "bad.jsonl"
    bundle.write_text(content)
    url = with_database(server_url(), "rwi_never_created")
    code, _, err = rwi(capsys, "import", str(bundle), "--database-url", url)
    assert code == 2 and message in err and err.startswith("rwi: ")
    code, _, err = rwi(capsys, "import", str(tmp_path / "absent.jsonl"), "--database-url", url)
    assert code == 2 and "no such file" in err


def test_a_database_without_the_schema_gets_a_clear_error(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = rwi(capsys, "report", "calls_per_hour", "--database-url", db_url)
    assert code == 2 and "run `rwi migrate` first" in err
    code, _, err = rwi(capsys, "verify", "--database-url", "postgresql://postgres@127.0.0.1:1/none")
    assert code == 1 and err.startswith("rwi: cannot connect to postgresql://postgres@127.0.0.1:1")
