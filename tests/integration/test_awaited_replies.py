"""A command whose reply waits for a request effect's result, against a real service:
the reply goes out once the result's observation is logged, carrying its fields.

The SIP requests (``sip.message``, ``sip.notify``, ``sip.options_ping``) wait this way
for ``sip.request.result``; their end-to-end test is ``tests/e2e/test_sip_messages.py``.
This one pins the mechanism alone, on a service with no SIP side: it gives
``session.list_calls`` a decision that waits for a REFER's result observation
(``sip.refer.result``, what the executor reports for a ``Refer`` effect)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from rwi.domain import features
from rwi.domain.model import AwaitResult, Command, Decision, Observation, State
from rwi.store.database import asyncpg_dsn
from tests.support.client import RwiClient
from tests.support.service import make_config, running_service

pytestmark = pytest.mark.integration


def waiting_list_calls(state: State, command: Command, ts: str) -> Decision:
    awaits = AwaitResult("sip.refer.result", (("call_id", "a"),), ("status",), 30.0, {})
    return Decision((), {"calls": []}, awaits)


async def test_the_reply_waits_for_the_logged_result(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(features.HANDLERS, "session.list_calls", waiting_list_calls)
    async with running_service(make_config(db_url)) as svc:
        client = await RwiClient.connect(svc.url)
        try:
            registered = asyncio.Event()
            expect = svc.service.replies.expect

            def expect_and_tell(*args: Any) -> None:
                expect(*args)
                registered.set()

            monkeypatch.setattr(svc.service.replies, "expect", expect_and_tell)
            request = asyncio.create_task(client.request("session.list_calls", {}))
            await asyncio.wait_for(registered.wait(), 10)
            assert not request.done()  # durable, but the reply waits for the result
            seqs = await svc.service.observe(
                Observation("sip.refer.result", {"call_id": "a", "status": 202})
            )
            reply = await asyncio.wait_for(request, 10)
            assert reply["response"] == "success"
            assert reply["data"] == {"calls": [], "status": 202}
        finally:
            await client.close()
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        stored = await conn.fetchval("SELECT data FROM events WHERE seq = $1", seqs[0])
    finally:
        await conn.close()
    assert json.loads(stored) == {"type": "sip.refer.result", "call_id": "a", "status": 202}
