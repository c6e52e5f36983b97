"""Queue races end to end with SIPp agent phones: two phones answering a ``ring_all``
offer at the same moment (one wins, the other is hung up cleanly whichever way its
answer and our CANCEL cross), and a phone that only rings until the queue's ring time
is over (no answer, CANCEL, the next agent is tried). Every test ends with the log
replayed to the live state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rwi.client import Client, Event
from tests.e2e.pbx import (
    Pbx,
    Sipp,
    answered,
    call_sipp,
    echo_agent,
    events_of,
    g711_file,
    heard,
    pbx,
    sip_tables,
    tone_phone,
)
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e

AGENTS = ("1001", "1002")
#: what each agent's phone says in the race (the caller must hear the winner's alone)
AGENT_TONES = {"1001": 1500.0, "1002": 2000.0}
CUSTOMER_TONE = 1000.0
#: the queue's hold music, the customer, the agents
FREQS = (440.0, CUSTOMER_TONE, *AGENT_TONES.values())


async def queued(rig: Pbx) -> Client:
    """The agents logged in, the customer ``c1`` (on the trunk) answered and queued in
    ``support``; the phones already running."""
    client = await rig.client("admin-token")
    await client.session.subscribe(queues=["support"])
    for agent_id in AGENTS:
        await client.agent.login(agent_id=agent_id)
    await answered(client, "c1", "sip:5550100@trunk")
    await rig.sip_answered("c1")
    await client.queue.enqueue(call_id="c1", queue_id="support")
    return client


async def started(rig: Pbx, phones: dict[str, Sipp], trunk: Sipp) -> Client:
    """The trunk (the customer: answers and echoes) and the agent phones running, then
    ``queued``."""
    for sipp in (trunk, *phones.values()):
        rig.sipps.append(sipp)
        await sipp.start("-rtp_echo", timeout=60)
    return await queued(rig)


def tables_for(tmp: Path, phones: dict[str, Sipp], trunk: Sipp, **queue: Any) -> dict[str, Any]:
    tables = sip_tables(tmp, trunk=trunk, users=phones)
    tables["queues"] = [{"name": "support", "members": list(AGENTS), **queue}]
    write_tone_wav(tmp / "sounds" / "hold_music.wav", 440.0, seconds=5)
    return tables


async def state_is(client: Client, agent_id: str, state: str, reason: str) -> Event:
    return await client.events.wait(
        "agent.state_changed", agent_id=agent_id, state=state, reason=reason, within=15
    )


async def offered_to(client: Client, agent_id: str) -> Event:
    return await client.events.wait("queue.agent_offered", agent_id=agent_id, within=10)


def phone_steps(path: Path) -> dict[str, list[tuple[int, str]]]:
    """What each phone of ``uas_answer_together`` did, per user, in order: (SIPp clock
    in ms, step) from its ``-trace_logs`` file."""
    steps: dict[str, list[tuple[int, str]]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            tick, _call_id, user, step = line.split()
            steps.setdefault(user, []).append((int(tick), step))
    return steps


#: what the winner's phone does, and the ways the loser's may go (each step as its
#: phone saw it: 180 and 200 sent, requests received)
WON = ["rang", "answered", "ack", "bye"]
CANCELLED_FIRST = ["rang", "cancel", "ack"]  # 200 + 487 to our CANCEL; ACK of the 487
ANSWERED_TOO = (WON, ["rang", "answered", "cancel", "ack", "bye"])  # our CANCEL crossed


async def test_two_agents_answering_a_ring_all_offer_at_once_one_wins(
    db_url: str, tmp_path: Path
) -> None:
    tones = {a: g711_file(tmp_path / f"agent{a}.ul", 0, f) for a, f in AGENT_TONES.items()}
    both = call_sipp(tmp_path, "uas_answer_together", user_1="1001", tone_1=tones["1001"],
                     tone_2=tones["1002"], sync_ms=20)  # fmt: skip
    customer = tone_phone(tmp_path, g711_file(tmp_path / "customer.ul", 0, CUSTOMER_TONE))
    tables = tables_for(tmp_path, dict.fromkeys(AGENTS, both), customer, strategy="ring_all",
                        agent_ring_secs=10, wrap_up_secs=1)  # fmt: skip
    steps_log = tmp_path / "phones_steps.log"
    async with pbx(db_url, tmp_path, tables) as rig:
        rig.sipps += [customer, both]
        await customer.start(timeout=60)
        await both.start("-trace_logs", "-log_file", str(steps_log), calls=2, timeout=60)
        client = await queued(rig)
        legs = {a: (await offered_to(client, a)).data["agent_call_id"] for a in AGENTS}
        connected = await client.events.wait("queue.agent_connected", call_id="c1", within=15)
        winner = connected.data["agent_id"]
        (loser,) = set(AGENTS) - {winner}
        assert connected.data["agent_call_id"] == legs[winner]

        # the loser: withdrawn (no miss), free again at once; its leg ended by us either
        # way its phone went, and logged as it went: our CANCEL before its 200 (487), or
        # its 200 ACKed and our BYE answered (200; its answer connects nobody)
        await state_is(client, loser, "available", "canceled")
        hangup = await client.events.wait("call.hangup", call_id=legs[loser], within=15)
        assert (hangup.data["reason"], hangup.data["hangup_by"]) == ("canceled", "system")
        ended = await rig.observed("sip.call.ended", legs[loser], limit=15)
        assert ended["by"] == "local" and ended["sip_status"] in (487, 200), ended
        assert hangup.data["sip_status"] == ended["sip_status"], (hangup, ended)
        cancelled_first = ended["sip_status"] == 487
        assert "call.answered" not in events_of(client, legs[loser])

        # the caller is bridged to the winner: each hears the other, nobody else
        await rig.sip_answered(legs[winner])
        _, caller_hears = await rig.tap("c1", 1.0)
        _, winner_hears = await rig.tap(legs[winner], 1.0)
        assert heard(caller_hears, FREQS) == {AGENT_TONES[winner]}
        assert heard(winner_hears, FREQS) == {CUSTOMER_TONE}

        story = [(e.name, e.data.get("agent_id")) for e in client.events.received
                 if e.call_id == "c1" and e.name.startswith("queue.")]  # fmt: skip
        assert story[0] == ("queue.joined", None)
        assert sorted(story[1:3]) == [("queue.agent_offered", a) for a in AGENTS]
        assert story[3:] == [("queue.agent_connected", winner), ("queue.left", None)]
        status = await client.queue.status(queue_id="support")
        assert status["entries"] == []
        assert {a["agent_id"]: a["state"] for a in status["agents"]} == {
            winner: "busy", loser: "available"}  # fmt: skip
        assert rig.svc.service.state.agents[loser].missed == 0
        assert set(rig.svc.service.state.calls) == {"c1", legs[winner]}
        assert rig.svc.service.state.calls["c1"].bridged_with == legs[winner]
        assert legs[loser] not in rig.svc.runtime.legs.leg_ids()

        # the customer leaves: the winner's leg goes too, wrap-up, then available
        await client.call.hangup(call_id="c1")
        await state_is(client, winner, "wrap_up", "caller_hangup")
        await state_is(client, winner, "available", "wrap_up_over")
        assert await both.finish() == 0  # every call went a way the scenario accepts
        assert await customer.finish() == 0
        for leg in ("c1", legs[winner]):
            await rig.observed("sip.call.ended", leg)
        assert rig.svc.service.state.calls == {}
        assert rig.svc.runtime.legs.leg_ids() == ()

        # the phones' side of it agrees with what SIP reported
        steps = phone_steps(steps_log)
        assert [s for _, s in steps[winner]] == WON
        loser_steps = [s for _, s in steps[loser]]
        if cancelled_first:
            assert loser_steps == CANCELLED_FIRST, steps
        else:
            assert loser_steps in ANSWERED_TOO, steps
        answers = {u: t for u, done in steps.items() for t, s in done if s == "answered"}
        gap = abs(answers[winner] - answers[loser]) if loser in answers else None
        print(f"ring_all race: winner {winner}, loser {loser}: {' '.join(loser_steps)}; "
              f"200s {gap} ms apart")  # fmt: skip
        await rig.replay_matches()


async def test_an_agent_that_only_rings_is_cancelled_and_the_next_is_tried(
    db_url: str, tmp_path: Path
) -> None:
    phones = {"1001": Sipp(tmp_path, "uas_noanswer"), "1002": echo_agent(tmp_path)}
    trunk = echo_agent(tmp_path)
    # round_robin: the members' order, 1001 first
    tables = tables_for(tmp_path, phones, trunk, strategy="round_robin", agent_ring_secs=2,
                        wrap_up_secs=0, max_no_answer=0)  # fmt: skip
    async with pbx(db_url, tmp_path, tables) as rig:
        client = await started(rig, phones, trunk)
        first = await client.events.wait("queue.agent_offered", call_id="c1", within=15)
        assert first.data["agent_id"] == "1001"
        await client.events.wait("call.ringing", call_id=first.data["agent_call_id"], within=15)
        missed = await client.events.wait("queue.agent_no_answer", call_id="c1", within=15)
        assert missed.data["agent_id"] == "1001"
        assert missed.data["reason"] == "no_answer", missed
        assert await phones["1001"].finish() == 0  # the phone saw our CANCEL (200, 487, ACK)
        connected = await client.events.wait("queue.agent_connected", call_id="c1", within=15)
        assert connected.data["agent_id"] == "1002"
        story = [(e.name, e.data.get("agent_id"), e.data.get("reason"))
                 for e in client.events.received
                 if e.call_id == "c1" and e.name.startswith("queue.")]  # fmt: skip
        assert story == [
            ("queue.joined", None, None),
            ("queue.agent_offered", "1001", None),
            ("queue.agent_no_answer", "1001", "no_answer"),
            ("queue.agent_offered", "1002", None),
            ("queue.agent_connected", "1002", None),
            ("queue.left", None, "connected"),
        ]
        status = await client.queue.status(queue_id="support")
        assert {a["agent_id"]: a["state"] for a in status["agents"]} == {
            "1001": "available", "1002": "busy"}  # fmt: skip
        assert rig.svc.service.state.agents["1001"].missed == 1

        await client.call.hangup(call_id="c1")
        await state_is(client, "1002", "available", "caller_hangup")
        assert await phones["1002"].finish() == 0
        assert await trunk.finish() == 0
        await rig.replay_matches()
