"""The database goes away and comes back while the service runs (a private PostgreSQL,
stopped and started with pg_ctl): the group-commit writer fails what it cannot store
and reconnects by itself; the service refuses commands while it cannot store them,
and works again once the database is back, without a restart and without losing
anything it acknowledged."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rwi.store import GroupCommitWriter, NewEvent, StoreError
from rwi.store.database import asyncpg_dsn, migrate
from tests.support.client import RwiClient
from tests.support.drills import PrivatePostgres, logged_commands, private_postgres
from tests.support.service import make_config, running_service

pytestmark = pytest.mark.integration


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    # Not under tmp_path: the server runs as its own system user when we are root, and
    # pytest's base temp directory is private to us (as for the embedded_pg fixture).
    with (
        tempfile.TemporaryDirectory(prefix="rwi-outage-pg-") as directory,
        private_postgres(Path(directory) / "pg") as server,
    ):
        yield server


def event() -> NewEvent:
    return NewEvent(type="drill.event", data={"n": 1}, meta={}, event_id=uuid.uuid4())


async def test_the_writer_fails_appends_while_the_database_is_down_and_reconnects(
    pg: PrivatePostgres,
) -> None:
    await migrate(pg.url)
    writer = GroupCommitWriter(asyncpg_dsn(pg.url))
    await writer.start()
    try:
        first = await writer.append("s", [event()])
        await asyncio.to_thread(pg.stop)
        with pytest.raises(StoreError):
            await asyncio.wait_for(writer.append("s", [event()]), 10)
        with pytest.raises(StoreError):  # still down: fails again, promptly
            await asyncio.wait_for(writer.append("s", [event()]), 10)
        await asyncio.to_thread(pg.start)
        # the same writer, no restart: the very next append is stored
        again = await asyncio.wait_for(writer.append("s", [event()]), 10)
        assert again[0] > first[0]
    finally:
        await writer.close()


async def test_commands_are_refused_while_the_database_is_down_and_succeed_after(
    pg: PrivatePostgres,
) -> None:
    async with running_service(make_config(pg.url)) as svc, httpx.AsyncClient() as http:
        client = await RwiClient.connect(svc.url)
        ok = await client.request("session.subscribe", {"contexts": ["a"]})
        assert ok["response"] == "success"

        await asyncio.to_thread(pg.stop)
        refused = [
            await client.request("session.subscribe", {"contexts": [c]}) for c in ("b", "c", "d")
        ]
        assert [r["error"]["code"] for r in refused] == ["internal_error"] * 3
        assert all("not executed" in r["error"]["message"] for r in refused)
        assert (await http.get(f"{svc.http}/readyz")).status_code == 503

        await asyncio.to_thread(pg.start)
        retried = 0
        async with asyncio.timeout(15):
            while True:  # the service finds the database again on its own
                reply = await client.request("session.subscribe", {"contexts": ["e"]})
                if reply["response"] == "success":
                    break
                assert reply["error"]["code"] == "internal_error"
                retried += 1
                await asyncio.sleep(0.1)
        assert reply["data"] == {"contexts": ["a", "e"]}  # nothing refused was kept
        assert (await http.get(f"{svc.http}/readyz")).status_code == 200
        # every refusal is counted: the append that failed and those refused before
        # deciding while the log could not be read
        metrics = (await http.get(f"{svc.http}/metrics")).text
        refusals = [
            sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "rwi_commands_total"
            and sample.labels == {"action": "session.subscribe", "result": "internal_error"}
        ]
        assert refusals == [3 + retried]

        logged = await logged_commands(pg.url)
        assert logged[ok["action_id"]] == "success"
        assert logged[reply["action_id"]] == "success"
        assert not any(r["action_id"] in logged for r in refused)
        live = svc.service.state.snapshot()
        await svc.service.rebuild()
        assert svc.service.state.snapshot() == live
        await client.close()
