"""The RWI gateway against a real service: uvicorn, Starlette, PostgreSQL, websockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import httpx
import pytest
import websockets

from rwi.domain import Observation
from rwi.errors import ERROR_CODES
from rwi.store.database import asyncpg_dsn
from tests.support.client import RwiClient
from tests.support.service import make_config, running_service

pytestmark = pytest.mark.integration


def assert_envelope(frame: dict[str, Any]) -> None:
    assert frame["rwi"] == "1.0"
    if frame["response"] == "success":
        assert set(frame) <= {"rwi", "action_id", "response", "data"}
    else:
        assert frame["response"] == "error"
        assert frame["error"]["code"] in ERROR_CODES
        assert isinstance(frame["error"]["message"], str) and frame["error"]["message"]


async def commands_in_log(db_url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        rows = await conn.fetch("SELECT data FROM events WHERE type = 'rwi.command' ORDER BY seq")
    finally:
        await conn.close()
    return [json.loads(r["data"]) for r in rows]


# --- auth ------------------------------------------------------------------------------


async def test_upgrade_without_a_valid_token_is_refused_with_401(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        for headers, query in [
            ({}, ""),
            ({"Authorization": "Bearer wrong"}, ""),
            ({}, "?token=wrong"),
            ({"Authorization": "Basic YTpi"}, ""),
            # a bad Bearer header is not rescued by a good query token
            ({"Authorization": "Bearer wrong"}, "?token=app-token"),
        ]:
            with pytest.raises(websockets.InvalidStatus) as info:
                await websockets.connect(svc.url + query, additional_headers=headers)
            response = info.value.response
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="rwi"'

        by_query = await RwiClient.connect(svc.url + "?token=app-token", token=None)
        reply = await by_query.request("session.list_calls")
        assert reply == {
            "rwi": "1.0",
            "action_id": reply["action_id"],
            "response": "success",
            "data": {"calls": []},
        }
        await by_query.close()


async def test_missing_scope_is_forbidden_and_names_the_scope(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        client = await RwiClient.connect(svc.url, token="app-token")
        reply = await client.request(
            "supervisor.listen", {"supervisor_call_id": "s", "target_call_id": "t"}
        )
        assert reply["error"] == {
            "code": "forbidden",
            "message": "scope required: supervisor.control",
        }
        for action in ("queue.enqueue", "record.start"):
            reply = await client.request(action, {"call_id": "c", "queue_id": "q"})
            assert reply["error"]["code"] == "forbidden", action
        await client.close()

        nobody = await RwiClient.connect(svc.url, token="none-token")
        reply = await nobody.request("session.subscribe", {"contexts": ["sales"]})
        assert reply["error"] == {"code": "forbidden", "message": "scope required: call.control"}
        await nobody.close()


# --- envelope and error codes ----------------------------------------------------------


async def test_every_malformed_frame_gets_the_right_error_and_the_connection_survives(
    db_url: str,
) -> None:
    async with running_service(make_config(db_url)) as svc:
        client = await RwiClient.connect(svc.url)
        cases: list[tuple[str | bytes, str, str]] = [
            ("not json", "parse_error", "not valid JSON"),
            (b"\x00\xff binary", "parse_error", "binary"),
            ("[1, 2]", "invalid_request", "JSON object"),
            ('{"action_id": "x1"}', "invalid_request", "action is required"),
            ('{"action": 7}', "invalid_request", "action must be a string"),
            ('{"action": "session.list_calls", "params": []}', "invalid_request", "params"),
            ('{"action": "session.list_calls", "meta": 1}', "invalid_request", "meta"),
            ('{"action": "call.fly"}', "unknown_action", "call.fly"),
            (
                '{"action": "session.subscribe"}',
                "invalid_params",
                "params.contexts or params.queues is required",
            ),
            (
                '{"action": "session.subscribe", "params": {"contexts": "sales"}}',
                "invalid_params",
                "params.contexts",
            ),
            (
                '{"action": "session.subscribe", "params": {"contexts": ["a"], "colour": 1}}',
                "invalid_params",
                "params.colour",
            ),
            (
                '{"action": "session.resume", "params": {"since_seq": -1}}',
                "invalid_params",
                "params.since_seq",
            ),
            ("x" * 70000, "invalid_request", "larger than 65536"),
            # found by the property test: jsonb cannot store NUL, nor lone surrogates
            ("\x00", "parse_error", "not valid JSON"),
            ('{"action": "x\\u0000"}', "unknown_action", "is not an RWI action"),
            (
                '{"action": "session.subscribe", "params": {"contexts": ["a"], "k\\u0000": 1}}',
                "invalid_params",
                "is not a parameter of this action",
            ),
            (
                '{"action": "session.list_calls", "action_id": "\\ud800"}',
                "invalid_request",
                "control",
            ),
        ]
        for frame, _, _ in cases:
            await client.send_raw(frame)
        replies = await client.wait_for(lambda f: len(client.frames) >= len(cases))
        assert replies is not None
        errors = [f for f in client.frames if f.get("response") == "error"]
        assert len(errors) == len(cases)
        for (frame, code, words), reply in zip(cases, errors, strict=True):
            assert_envelope(reply)
            assert reply["error"]["code"] == code, (frame[:40], reply)
            assert words in reply["error"]["message"], (frame[:40], reply)
            assert reply["action_id"]
        # the action_id of a well-formed but refused request is echoed
        assert errors[3]["action_id"] == "x1"
        # every one of them is in the log, the unstorable ones byte-exact as base64
        records = await commands_in_log(db_url)
        assert len(records) == len(cases)
        nul = next(r for r in records if r.get("frame_b64") == "AA==")
        assert nul["outcome"]["error"]["code"] == "parse_error"
        assert (await client.request("session.list_calls"))["response"] == "success"
        await client.close()


async def test_an_action_outside_the_contract_is_unknown(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        client = await RwiClient.connect(svc.url, token="admin-token")
        reply = await client.request("call.teleport", {"call_id": "c1"})
        assert reply["error"]["code"] == "unknown_action"
        assert "'call.teleport' is not an RWI action" in reply["error"]["message"]
        await client.close()


async def test_call_commands_without_sip_name_the_missing_section(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        client = await RwiClient.connect(svc.url, token="admin-token")
        for action in ("call.hangup", "call.originate", "call.transfer", "record.start"):
            reply = await client.request(action, {"call_id": "c1"})
            assert reply["error"]["code"] == "unknown_action", reply
            message = reply["error"]["message"]
            assert f"action {action!r} needs SIP and media" in message, message
            assert "<test> has no [sip] section" in message, message
            assert "version" not in message
        await client.close()


async def test_aliases_and_generated_action_ids(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        client = await RwiClient.connect(svc.url)
        await client.send_raw(json.dumps({"action": "Subscribe", "params": {"contexts": ["s"]}}))
        reply = await client.wait_for(lambda f: f.get("response") == "success")
        assert reply["action_id"].startswith("srv-")
        assert reply["data"] == {"contexts": ["s"]}
        reply = await client.request("SessionListCalls")
        assert reply["data"] == {"calls": []}
        reply = await client.request("Unsubscribe", {"contexts": ["s"]})
        assert reply["data"] == {"contexts": []}
        await client.close()


async def test_every_command_is_in_the_log_before_its_reply(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        client = await RwiClient.connect(svc.url)
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        try:
            for i in range(20):
                action = "session.subscribe" if i % 2 else "session.fly"
                reply = await client.request(action, {"contexts": [f"c{i}"]})
                # the reply is in hand: its command record must already be committed
                row = await conn.fetchrow(
                    "SELECT data FROM events WHERE type = 'rwi.command' "
                    "AND data->>'action_id' = $1",
                    reply["action_id"],
                )
                assert row is not None, reply
                record = json.loads(row["data"])
                assert record["outcome"]["response"] == reply["response"]
                assert record["token"] == "app"
        finally:
            await conn.close()
        await client.close()


async def test_rate_limits_and_max_connections(db_url: str) -> None:
    config = make_config(db_url, command_rate_limit=5, max_connections=2)
    async with running_service(config) as svc:
        client = await RwiClient.connect(svc.url)
        replies = await asyncio.gather(*(client.request("session.list_calls") for _ in range(12)))
        limited = [r for r in replies if r["response"] == "error"]
        assert 1 <= len(limited) <= 7
        assert {r["error"]["code"] for r in limited} == {"rate_limited"}
        assert "command rate limit of 5/s" in limited[0]["error"]["message"]

        second = await RwiClient.connect(svc.url)
        third = await RwiClient.connect(svc.url)
        refused = await third.wait_for(lambda f: f.get("response") == "error")
        assert refused["error"] == {
            "code": "rate_limited",
            "message": "max_connections (2) reached",
        }
        await third._reader
        assert third.ws.close_code == 1013
        await second.close()
        await client.close()


async def test_a_failed_append_replies_internal_error_and_the_service_recovers(
    db_url: str,
) -> None:
    async with running_service(make_config(db_url)) as svc:
        client = await RwiClient.connect(svc.url)
        assert (await client.request("session.subscribe", {"contexts": ["a"]}))["response"] == (
            "success"
        )
        # cut the writer's database connection under it
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND query LIKE '%rwi_append_batch%'"
        )
        await conn.close()
        reply = await client.request("session.subscribe", {"contexts": ["b"]})
        # The writer either used the dead connection (the append fails, the service
        # rebuilds from the log) or had already seen it close and connected again.
        if reply["response"] == "error":
            assert reply["error"]["code"] == "internal_error"
            assert "was not executed" in reply["error"]["message"]
            kept = ["a", "c"]  # "b" was never stored, nor kept
        else:
            kept = ["a", "b", "c"]
        # the service reconnects, rebuilds from the log if it must, and keeps working
        reply = await client.request("session.subscribe", {"contexts": ["c"]})
        assert reply["data"] == {"contexts": kept}
        live = svc.service.state.snapshot()
        await svc.service.rebuild()
        assert svc.service.state.snapshot() == live
        await client.close()


# --- idempotency -----------------------------------------------------------------------


async def test_idempotency_key_retries_return_the_stored_reply_even_after_restart(
    db_url: str,
) -> None:
    config = make_config(db_url)
    meta = {"idempotency_key": "sub-1"}
    async with running_service(config) as svc:
        client = await RwiClient.connect(svc.url)
        first = await client.request("session.subscribe", {"contexts": ["sales"]}, meta=meta)
        again = await client.request("session.subscribe", {"contexts": ["sales"]}, meta=meta)
        assert first["data"] == again["data"] == {"contexts": ["sales"]}
        conflict = await client.request("session.subscribe", {"contexts": ["other"]}, meta=meta)
        assert conflict["error"]["code"] == "idempotency_conflict"
        assert "sub-1" in conflict["error"]["message"]
        # a different token has its own keys
        other = await RwiClient.connect(svc.url, token="app2-token")
        fresh = await other.request("session.subscribe", {"contexts": ["x"]}, meta=meta)
        assert fresh["data"] == {"contexts": ["x"]}
        await other.close()
        await client.close()

    async with running_service(config) as svc:
        client = await RwiClient.connect(svc.url)
        retried = await client.request("session.subscribe", {"contexts": ["sales"]}, meta=meta)
        # the stored reply of the first execution, not a new one (a new one would be a
        # subscription of this new connection; it has none)
        assert retried["data"] == {"contexts": ["sales"]}
        assert svc.service.state.sessions[next(iter(svc.service.connections))].contexts == set()
        conflict = await client.request("session.subscribe", {"contexts": ["y"]}, meta=meta)
        assert conflict["error"]["code"] == "idempotency_conflict"
        await client.close()

    records = [r for r in await commands_in_log(db_url) if r.get("idempotency_key") == "sub-1"]
    executed = [
        r for r in records if not r.get("replayed") and r["outcome"]["response"] == "success"
    ]
    assert len(executed) == 2  # token app once, token app2 once
    assert sum(1 for r in records if r.get("replayed")) == 2


# --- resume ----------------------------------------------------------------------------


async def offer(svc: Any, call_id: str, context: str = "sales") -> int:
    seqs = await svc.service.observe(
        Observation(
            "sip.call.offered",
            {"call_id": call_id, "context": context, "caller": "sip:100@x", "callee": "sip:200@y"},
        )
    )
    return int(seqs[-1])


async def test_resume_after_reconnect_is_gap_free_and_has_no_duplicates(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        first = await RwiClient.connect(svc.url)
        await first.request("session.subscribe", {"contexts": ["sales"]})
        for i in range(5):
            await offer(svc, f"c{i}")
        await offer(svc, "elsewhere", context="support")  # not entitled
        await first.wait_for(lambda f: f.get("call_id") == "c4")
        seen = [f["seq"] for f in first.events()]
        assert [f["call_id"] for f in first.events()] == [f"c{i}" for i in range(5)]
        await first.close()

        for i in range(5, 9):  # missed while disconnected
            last = await offer(svc, f"c{i}")

        second = await RwiClient.connect(svc.url)
        await second.request("session.subscribe", {"contexts": ["sales"]})
        live_during_replay = asyncio.create_task(offer(svc, "c9"))
        reply = await second.request("session.resume", {"since_seq": seen[-1]})
        # c9 may be decided before the resume (replayed) or after it (live)
        c9 = await live_during_replay
        assert reply["data"]["since_seq"] == seen[-1]
        assert reply["data"]["last_seq"] in (last, c9)
        await offer(svc, "c10")
        await second.wait_for(lambda f: f.get("call_id") == "c10")
        got = second.events()
        assert [f["call_id"] for f in got] == [f"c{i}" for i in range(5, 11)]
        seqs = [f["seq"] for f in got]
        assert seqs == sorted(set(seqs)), "seq not strictly increasing"
        assert all(s > seen[-1] for s in seqs)
        for frame in got:
            assert frame["event"] == "call.incoming"
            assert frame["context"] == "sales"
            assert frame["data"]["caller"] == "sip:100@x"
            assert frame["ts"].endswith("Z")
        await second.close()


async def test_live_events_sent_before_resume_hide_nothing(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        first = await RwiClient.connect(svc.url)
        await first.request("session.subscribe", {"contexts": ["sales"]})
        since = await offer(svc, "c0")
        await first.event("call.incoming", call_id="c0")
        await first.close()
        missed = [await offer(svc, f"c{i}") for i in (1, 2)]

        second = await RwiClient.connect(svc.url)
        await second.request("session.subscribe", {"contexts": ["sales"]})
        early = await offer(svc, "c3")
        await second.event("call.incoming", call_id="c3")  # live, before the resume
        reply = await second.request("session.resume", {"since_seq": since})
        # the replay is what this connection has not had yet, and the reply says where
        # it ends: c1 and c2, each once, and c3 not again
        assert reply["data"] == {"since_seq": since, "last_seq": missed[-1]}
        await offer(svc, "c4")
        await second.event("call.incoming", call_id="c4")
        got = [(f["call_id"], f["seq"]) for f in second.events()]
        assert got[0] == ("c3", early)
        assert [c for c, _ in got] == ["c3", "c1", "c2", "c4"]
        assert [s for c, s in got if c in ("c1", "c2")] == missed
        await second.close()


# --- health ----------------------------------------------------------------------------


async def test_health_and_readiness(db_url: str) -> None:
    async with (
        running_service(make_config(db_url)) as svc,
        httpx.AsyncClient(base_url=svc.http) as http,
    ):
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "database": "ok", "migrations": "current"}
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        await conn.execute("UPDATE alembic_version SET version_num = 'old'")
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["migrations"] == "pending"
        await conn.execute("UPDATE alembic_version SET version_num = '0001'")
        await conn.close()


async def test_calls_left_live_by_a_previous_run_are_ended_in_the_log(db_url: str) -> None:
    config = make_config(db_url)
    async with running_service(config) as svc:
        await offer(svc, "survivor")
        assert "survivor" in svc.service.state.calls
    async with running_service(config) as svc:
        assert svc.service.state.calls == {}
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        row = await conn.fetchrow(
            "SELECT data FROM events WHERE type = 'call.hangup' AND stream_id = 'call:survivor'"
        )
        await conn.close()
        assert row is not None
        assert json.loads(row["data"])["reason"] == "system"
        live = svc.service.state.snapshot()
        await svc.service.rebuild()
        assert svc.service.state.snapshot() == live
