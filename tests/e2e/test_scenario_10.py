"""Seed scenario 10 (SIP MESSAGE, NOTIFY, OPTIONS during a call) end to end, on an
originated leg and on an inbound answered leg: SIPp phones check what each request
carries and answer it with a code the test chose, so each reply's ``data.status`` is
shown to be the far end's; the inbound caller then sends its own MESSAGE, NOTIFY and
INFO, which reach the leg's owner. Requests and answers are in the log."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rwi.client import Client, InvalidState
from rwi.store.database import asyncpg_dsn
from tests.e2e.pbx import RING_180, Sipp, pbx, sip_tables
from tests.support.sipp import CALL_SCENARIOS as SCENARIOS

pytestmark = pytest.mark.e2e

ROUTES = [{"name": "sales-line", "match_user": r"^2\d{3}$", "context": "sales"}]
MESSAGE = {
    "content_type": "text/plain",
    "body": "Your ticket number is 12345",
    "extra_headers": {"X-Ticket": "12345"},
}
NOTIFY = {
    "event": "check-sync",
    "content_type": "application/simple-message-summary",
    "body": "Messages-Waiting: yes",
}


def fragment(name: str, **subs: str) -> str:
    """The body of a ``<fragment>`` scenario file, placeholders filled."""
    text = (SCENARIOS / f"{name}.xml").read_text()
    match = re.search(r"<fragment>(.*)</fragment>", text, re.DOTALL)
    assert match is not None
    body = match.group(1)
    for key, value in subs.items():
        body = body.replace("{" + key + "}", value)
    return body


def answering(message: str, notify: str, options: str, own_requests: str = "") -> str:
    return fragment(
        "requests_answered",
        message_code=message,
        notify_code=notify,
        options_code=options,
        own_requests=own_requests,
    )


async def scenario_10(client: Client, call_id: str) -> list[dict[str, Any]]:
    """The three requests of the seed scenario, as written, on ``call_id``."""
    replies = []
    for action, params in (
        ("sip.message", MESSAGE),
        ("sip.notify", NOTIFY),
        ("sip.options_ping", {}),
    ):
        reply = await client.request(action, {"call_id": call_id, **params})
        replies.append(reply)
    return replies


async def logged(db_url: str, stream: str) -> list[tuple[str, dict[str, Any]]]:
    import json

    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        rows = await conn.fetch(
            "SELECT type, data FROM events WHERE stream_id = $1 ORDER BY seq", stream
        )
    finally:
        await conn.close()
    return [(r["type"], json.loads(r["data"])) for r in rows]


def statuses(replies: list[dict[str, Any]]) -> list[tuple[int, str]]:
    for data in replies:
        assert set(data) == {"status", "reason", "rtt_ms"}
        assert data["rtt_ms"] > 0
    return [(d["status"], d["reason"]) for d in replies]


async def test_scenario_10_on_an_originated_leg(db_url: str, tmp_path: Path) -> None:
    customer = Sipp(
        tmp_path, "uas_call", ring=RING_180, sdp_port="[media_port]", pt=0, codec="PCMU",
        middle=answering("202 Accepted", "489 Bad Event", "200 OK"),
    )  # fmt: skip
    async with pbx(db_url, tmp_path, sip_tables(tmp_path, trunk=customer)) as rig:
        rig.sipps.append(customer)
        await customer.start("-rtp_echo")
        client = await rig.client(command_timeout=45)
        await client.call.originate(call_id="leg_a", destination="sip:1234567890@trunk")
        await client.events.wait("call.answered", call_id="leg_a", within=10)

        replies = await scenario_10(client, "leg_a")
        assert statuses(replies) == [(202, "Accepted"), (489, "Bad Event"), (200, "OK")]

        await client.call.hangup(call_id="leg_a")
        await client.events.wait("call.hangup", call_id="leg_a")
        assert await customer.finish() == 0  # every request carried what it should
        log = await logged(db_url, "call:leg_a")
        sent = [d for t, d in log if t == "sip.request.sent"]
        answered = [d for t, d in log if t == "sip.request.answered"]
        assert [d["method"] for d in sent] == ["MESSAGE", "NOTIFY", "OPTIONS"]
        assert sent[0]["extra_headers"] == {"X-Ticket": "12345"}
        assert [(d["method"], d["status"]) for d in answered] == [
            ("MESSAGE", 202), ("NOTIFY", 489), ("OPTIONS", 200),
        ]  # fmt: skip
        await rig.replay_matches()


async def test_scenario_10_on_an_inbound_answered_leg(db_url: str, tmp_path: Path) -> None:
    own = fragment("uac_requests_sent")
    caller = Sipp(
        tmp_path, "uac_call", pause_ms=500,
        middle=answering("200 OK", "200 OK", "403 Forbidden", own),
    )  # fmt: skip
    async with pbx(db_url, tmp_path, sip_tables(tmp_path, routes=ROUTES)) as rig:
        rig.sipps.append(caller)
        client = await rig.client(command_timeout=45)
        watcher = await rig.client("app2-token")
        for c in (client, watcher):
            await c.session.subscribe(contexts=["sales"])
        await caller.start("-s", "2000", "-rtp_echo", remote=f"127.0.0.1:{rig.sip_port}")
        incoming = await client.events.wait("call.incoming", within=10)
        call_id = str(incoming.call_id)
        await client.call.ring(call_id=call_id)
        with pytest.raises(InvalidState) as before:
            await client.sip.options_ping(call_id=call_id)
        assert "is ringing; sip.options_ping needs answered" in before.value.message
        await client.call.answer(call_id=call_id)
        await rig.sip_answered(call_id)

        replies = await scenario_10(client, call_id)
        assert statuses(replies) == [(200, "OK"), (200, "OK"), (403, "Forbidden")]

        # the caller's own requests, answered 200 (SIPp checks) and pushed to the owner
        message = await client.events.wait("sip.message.received", call_id=call_id)
        assert message.data == {
            "content_type": "text/plain", "body": "Ticket 12345 received, thanks\r\n",
        }  # fmt: skip
        notify = await client.events.wait("sip.notify.received", call_id=call_id)
        assert notify.data["event"] == "presence"
        assert notify.data["body"] == "away\r\n"
        info = await client.events.wait("sip.info.received", call_id=call_id)
        assert info.data["content_type"] == "application/xml"
        assert info.data["body"] == '<survey score="5"/>\r\n'
        await client.events.wait("call.hangup", call_id=call_id, within=10)
        assert await caller.finish() == 0
        # only the owner hears what the caller sent
        assert not [e for e in watcher.events.received if e.name.startswith("sip.")]
        log = await logged(db_url, f"call:{call_id}")
        sent = [d for t, d in log if t == "sip.request.sent"]
        answered = [d for t, d in log if t == "sip.request.answered"]
        assert [d["method"] for d in sent] == ["MESSAGE", "NOTIFY", "OPTIONS"]
        assert sent[0]["extra_headers"] == {"X-Ticket": "12345"}
        assert sent[1]["event"] == "check-sync"
        assert [(d["method"], d["status"]) for d in answered] == [
            ("MESSAGE", 200), ("NOTIFY", 200), ("OPTIONS", 403),
        ]  # fmt: skip
        assert [d["request_id"] for d in answered] == [d["request_id"] for d in sent]
        await rig.replay_matches()


async def test_a_request_the_far_end_never_answers_gets_408(db_url: str, tmp_path: Path) -> None:
    """The phone takes the OPTIONS and never answers it (nor its retransmissions): after
    Timer F (64 x T1: 3.2 s on this test's 50 ms T1) the SIP side's 408 is logged and is
    the reply, with no round trip; the call goes on and ends normally."""
    customer = Sipp(
        tmp_path, "uas_call", ring=RING_180, sdp_port="[media_port]", pt=0, codec="PCMU",
        middle='  <recv request="OPTIONS"/>',
    )  # fmt: skip
    tables = sip_tables(tmp_path, trunk=customer)
    tables["sip"]["t1_ms"] = 50
    async with pbx(db_url, tmp_path, tables) as rig:
        rig.sipps.append(customer)
        await customer.start("-rtp_echo")
        client = await rig.client(command_timeout=30)
        await client.call.originate(call_id="leg_a", destination="sip:1234567890@trunk")
        await client.events.wait("call.answered", call_id="leg_a", within=10)

        data = await client.request("sip.options_ping", {"call_id": "leg_a"})
        assert data == {"status": 408, "reason": "Request Timeout", "rtt_ms": None}
        # logged: the SIP side's answer, not the reply's backstop (64 x T1 + 8 s)
        log = await logged(db_url, "call:leg_a")
        answered = [d for t, d in log if t == "sip.request.answered"]
        assert [(d["method"], d["status"], d["reason"], d["rtt_ms"]) for d in answered] == [
            ("OPTIONS", 408, "Request Timeout", None),
        ]  # fmt: skip
        assert [t for t, _ in log if t.startswith("call.")][-1] == "call.answered"

        await client.call.hangup(call_id="leg_a")
        await client.events.wait("call.hangup", call_id="leg_a")
        assert await customer.finish() == 0  # it got the OPTIONS, then our BYE
        await rig.replay_matches()
