"""Dashboards against the real service (no SIP: agents need none): a connection
subscribed with ``session.subscribe {queues}`` is pushed its queues' member agents'
``agent.state_changed``; ``rwi.client`` re-subscribes its queues after a reconnect and
resumes the events missed meanwhile, none twice."""

from __future__ import annotations

import pytest

from rwi.client import connect
from rwi.client.session import Client
from tests.support.service import make_config, running_service

pytestmark = pytest.mark.integration

TABLES = {
    "queues": [
        {"name": "support", "strategy": "longest_idle", "members": ["1001"]},
        {"name": "sales", "strategy": "longest_idle", "members": ["1002"]},
    ],
    "agents": [{"id": "1001", "destination": "sip:1001@local"},
               {"id": "1002", "destination": "sip:1002@local"}],
}  # fmt: skip


async def test_a_dashboard_sees_its_agents_live_and_after_a_reconnect(db_url: str) -> None:
    async with (
        running_service(make_config(db_url, tables=TABLES)) as svc,
        connect(svc.url, "admin-token") as app,
    ):
        board = Client(svc.url, "app2-token")
        await board.start()
        try:
            assert await board.session.subscribe(queues=["support"]) == {
                "contexts": [], "queues": ["support"]}  # fmt: skip
            await app.agent.login(agent_id="1002")  # sales: not on this board
            await app.agent.login(agent_id="1001")
            login = await board.events.wait("agent.state_changed", agent_id="1001")
            assert login.data["state"] == "available"

            first = set(svc.service.connections)
            board.drop_connection()
            await app.agent.pause(agent_id="1001", reason="lunch")  # missed while away
            await app.agent.pause(agent_id="1002", reason="lunch")
            paused = await board.events.wait("agent.state_changed", state="paused", within=10)
            assert paused.data == {"agent_id": "1001", "state": "paused", "reason": "lunch"}
            assert board.reconnects == 1
            (now,) = set(svc.service.connections) - first
            assert svc.service.state.sessions[now].queues == {"support"}

            await app.agent.unpause(agent_id="1001")  # live again
            await board.events.wait("agent.state_changed", state="available", after_seq=paused.seq)
            seen = board.events.received
            assert [(e.data["agent_id"], e.data["state"]) for e in seen] == [
                ("1001", "available"), ("1001", "paused"), ("1001", "available")]  # fmt: skip
            assert [e.seq for e in seen] == sorted({e.seq for e in seen})
        finally:
            await board.close()
