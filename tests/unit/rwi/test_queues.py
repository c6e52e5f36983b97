"""Queues and agents (contract §10), decided purely: entries, offers, strategies, and
the failures peers are known for (a member gone while offered, an agent stuck ringing,
a zombie agent call, agent INVITEs left ringing). Every test ends with the log replayed
to the live state."""

from __future__ import annotations

from typing import Any

import pytest

from rwi.domain.distribution import Candidate, choose
from rwi.domain.model import AgentPolicy, Policy, QueuePolicy
from rwi.domain.queues import agent_leg_id
from tests.unit.rwi.world import World, outbound_answered


def world(strategy: str = "ring_all", members: tuple[str, ...] = ("a1", "a2"), **q: Any) -> World:
    policy = Policy(
        queues=(QueuePolicy("support", strategy=strategy, members=members, **q),),
        agents=(
            AgentPolicy("a1", "sip:a1@local", ("billing", "english")),
            AgentPolicy("a2", "sip:a2@local", ("english",)),
            AgentPolicy("a3", "sip:a3@local", ()),
        ),
    )
    w = World(policy)
    w.open("app")
    return w


def caller(w: World, call_id: str = "c1", **params: Any) -> dict[str, Any]:
    outbound_answered(w, "app", call_id)
    data: dict[str, Any] = w.do("app", "queue.enqueue", call_id=call_id, queue_id="support",
                                **params)  # fmt: skip
    return data


def types(w: World, since: int) -> list[str]:
    return [e.type for e in w.log[since:]]


def last(w: World, event_type: str) -> dict[str, Any]:
    return next(e.data for e in reversed(w.log) if e.type == event_type)


def agent(w: World, agent_id: str) -> str:
    return w.state.agents[agent_id].status


def rest_over(w: World, agent_id: str) -> None:
    """The retry timer of an agent resting after a miss fires."""
    since = w.state.agents[agent_id].resting
    assert since is not None
    w.see("timer.fired", stream_id=f"agent:{agent_id}", agent_id=agent_id, kind="retry",
          since=since)  # fmt: skip


def offered_legs(w: World, call_id: str) -> dict[str, str]:
    return dict(w.state.queues["support"].entries[call_id].offers)


def test_enqueue_plays_music_and_orders_by_priority_then_fifo() -> None:
    w = world(strategy="manual")
    assert caller(w, "c1") == {"call_id": "c1", "queue_id": "support", "position": 1}
    assert last(w, "media.play.started")["playback_id"] == "qm-c1"
    assert last(w, "media.play.started")["source"] == {"type": "file", "uri": "hold_music.wav"}
    w.later(1)
    assert caller(w, "c2")["position"] == 2
    w.later(1)
    n = len(w.log)
    assert caller(w, "c3", priority=5)["position"] == 1
    moved = [(e.data["call_id"], e.data["position"]) for e in w.log[n:]
             if e.type == "queue.position_changed"]  # fmt: skip
    assert moved == [("c1", 2), ("c2", 3)]
    w.do("app", "queue.set_priority", call_id="c2", priority=9)
    status = w.do("app", "queue.status", queue_id="support")
    assert [(e["call_id"], e["position"]) for e in status["entries"]] == [
        ("c2", 1), ("c3", 2), ("c1", 3)]  # fmt: skip
    assert status["entries"][2]["waited_secs"] == 2.0
    assert w.do("app", "queue.list")["queues"][0]["waiting"] == 3
    assert w.replayed() == w.state.snapshot()


def test_enqueue_refusals() -> None:
    w = world()
    outbound_answered(w, "app", "c1")
    outbound_answered(w, "app", "c2")
    w.do("app", "call.bridge", leg_a="c1", leg_b="c2")
    code, message = w.fail("app", "queue.enqueue", call_id="c1", queue_id="support")
    assert code == "invalid_state" and "bridged" in message
    assert w.fail("app", "queue.enqueue", call_id="nope", queue_id="q")[0] == "call_not_found"
    w.do("app", "call.unbridge", call_id="c1")
    w.do("app", "queue.enqueue", call_id="c1", queue_id="support")
    assert w.fail("app", "queue.enqueue", call_id="c1", queue_id="other")[0] == "invalid_state"
    w.open("other")
    assert w.fail("other", "queue.hold", call_id="c1")[0] == "already_owned"
    assert w.fail("app", "queue.hold", call_id="c2")[0] == "not_found"
    assert w.fail("app", "queue.status", queue_id="unknown")[0] == "not_found"
    assert w.fail("app", "agent.unpause", agent_id="a1")[0] == "invalid_state"
    assert w.fail("app", "agent.pause", agent_id="a1")[0] == "invalid_state"


def test_seed_scenario_9_hold_unhold_dequeue_to_agent() -> None:
    w = world(strategy="manual")
    outbound_answered(w, "app", "leg_a")
    w.do("app", "queue.enqueue", call_id="leg_a", queue_id="support_queue", priority=5,
         max_wait_secs=300)  # fmt: skip
    assert last(w, "queue.joined")["position"] == 1
    w.do("app", "queue.hold", call_id="leg_a")
    assert w.state.queues["support_queue"].entries["leg_a"].held
    w.do("app", "queue.unhold", call_id="leg_a")
    data = w.do("app", "queue.dequeue", call_id="leg_a", agent_id="1001")
    leg = data["agent_call_id"]
    assert w.state.calls[leg].destination == "sip:1001@local"
    assert w.state.calls[leg].owner == "app"
    assert agent(w, "1001") == "ringing"
    n = len(w.log)
    w.see("sip.call.answered", call_id=leg)
    assert types(w, n) == [
        "call.answered", "media.play.finished", "call.bridged", "queue.agent_connected",
        "agent.state_changed", "queue.left",
    ]  # fmt: skip
    assert last(w, "queue.left")["reason"] == "connected"
    assert w.state.calls["leg_a"].bridged_with == leg
    assert agent(w, "1001") == "busy"
    # the agent hangs up: not logged in, so back to logged_out (no wrap-up)
    w.see("sip.call.ended", call_id=leg)
    assert agent(w, "1001") == "logged_out"
    assert w.replayed() == w.state.snapshot()


def sip_ended(w: World, leg: str, status: int = 487) -> list[str]:
    """SIP reports a leg we asked it to end as over, as ``rwi.sip_ingest`` words it:
    487 (our CANCEL ended its INVITE) or 200 (its answer crossed the CANCEL: ACKed,
    then our BYE answered)."""
    cause = {"cause": "cancel", "reason": "canceled"} if status == 487 else {"cause": "bye"}
    return w.see("sip.call.ended", call_id=leg, sip_status=status, by="local", **cause)


def ending(w: World, since: int) -> list[str]:
    """The legs ``call.ending`` gave up since log index ``since``."""
    return sorted(e.data["call_id"] for e in w.log[since:] if e.type == "call.ending")


@pytest.mark.parametrize("crossed", [False, True], ids=["cancel_first", "answers_crossed"])
def test_ring_all_first_answer_wins_and_the_others_are_cancelled(crossed: bool) -> None:
    w = world("ring_all", wrap_up_secs=5)
    w.do("app", "agent.login", agent_id="a1")
    w.do("app", "agent.login", agent_id="a2")
    caller(w)
    legs = offered_legs(w, "c1")
    assert sorted(legs) == ["a1", "a2"]
    assert (agent(w, "a1"), agent(w, "a2")) == ("ringing", "ringing")
    n = len(w.log)
    w.see("sip.call.answered", call_id=legs["a2"])
    assert agent(w, "a2") == "busy" and agent(w, "a1") == "available"
    # the other leg is being ended (SIP cancels it); its call.hangup waits for SIP's word
    assert ending(w, n) == [legs["a1"]] and "call.hangup" not in types(w, n)
    assert last(w, "call.ending") == {"call_id": legs["a1"], "reason": "canceled"}
    n = len(w.log)
    if crossed:
        # two agents answering at the same moment: the second answer crossed our
        # CANCEL; it connects nobody (SIP ACKs it, then BYEs it)
        assert w.see("sip.call.progress", call_id=legs["a1"], status=180) == []
        assert w.see("sip.call.answered", call_id=legs["a1"]) == []
        assert len(w.log) == n
    assert sip_ended(w, legs["a1"], 200 if crossed else 487) == ["call.hangup"]
    hangup = last(w, "call.hangup")
    assert (hangup["call_id"], hangup["reason"], hangup["hangup_by"]) == (
        legs["a1"], "canceled", "system")  # fmt: skip
    assert hangup["sip_status"] == (200 if crossed else 487)  # what happened on the wire
    assert legs["a1"] not in w.state.calls
    assert agent(w, "a1") == "available" and w.state.agents["a1"].missed == 0
    assert [e.data["agent_id"] for e in w.log if e.type == "queue.agent_connected"] == ["a2"]
    assert "queue.agent_no_answer" not in types(w, 0)
    # the agent hangs up after talking: wrap-up, then available again
    w.see("sip.call.ended", call_id=legs["a2"])
    assert agent(w, "a2") == "wrap_up"
    w.later(5)
    w.see("timer.fired", stream_id="agent:a2", agent_id="a2", kind="wrap_up", since=legs["a2"])
    assert agent(w, "a2") == "available"
    assert w.replayed() == w.state.snapshot()


def test_a_leg_being_ended_that_sip_never_reports_over_ends_at_its_ring_timeout() -> None:
    w = world("ring_all")
    w.do("app", "agent.login", agent_id="a1")
    w.do("app", "agent.login", agent_id="a2")
    caller(w)
    legs = offered_legs(w, "c1")
    w.see("sip.call.answered", call_id=legs["a2"])
    w.later(30)
    n = len(w.log)
    w.see("timer.fired", stream_id=f"call:{legs['a1']}", call_id=legs["a1"],
          kind="originate_timeout")  # fmt: skip
    assert types(w, n) == ["call.hangup"]  # no call.no_answer, no miss: it was withdrawn
    assert (last(w, "call.hangup")["reason"], last(w, "call.hangup")["sip_status"]) == (
        "canceled", None)  # fmt: skip
    assert legs["a1"] not in w.state.calls
    assert sip_ended(w, legs["a1"]) == []  # SIP's late word changes nothing
    assert w.replayed() == w.state.snapshot()


def test_member_hanging_up_while_offered_cancels_every_ringing_leg() -> None:
    w = world("ring_all")
    w.do("app", "agent.login", agent_id="a1")
    w.do("app", "agent.login", agent_id="a2")
    caller(w)
    legs = offered_legs(w, "c1")
    n = len(w.log)
    w.see("sip.call.ended", call_id="c1")
    assert {e.data["call_id"] for e in w.log[n:] if e.type == "call.hangup"} == {"c1"}
    assert ending(w, n) == sorted(legs.values())
    assert last(w, "queue.left")["reason"] == "abandoned"
    assert (agent(w, "a1"), agent(w, "a2")) == ("available", "available")  # none stuck
    assert w.state.queues["support"].entries == {}
    # a late 200 from an agent phone whose INVITE we cancelled connects nobody
    assert w.see("sip.call.answered", call_id=legs["a1"]) == []
    assert sip_ended(w, legs["a1"], 200) == ["call.hangup"]
    assert sip_ended(w, legs["a2"]) == ["call.hangup"]
    assert not any(c.startswith("c1.q") for c in w.state.calls)  # nothing left ringing
    assert w.replayed() == w.state.snapshot()


def test_caller_gone_while_connected_takes_the_agent_leg_with_it() -> None:
    w = world("longest_idle", wrap_up_secs=0)
    w.do("app", "agent.login", agent_id="a1")
    caller(w)
    leg = offered_legs(w, "c1")["a1"]
    w.see("sip.call.answered", call_id=leg)
    w.see("sip.call.ended", call_id="c1")
    assert leg not in w.state.calls  # no zombie agent call
    assert agent(w, "a1") == "available"
    assert w.replayed() == w.state.snapshot()


def test_no_answer_tries_the_next_agent_and_the_entry_keeps_its_place() -> None:
    w = world("longest_idle", max_no_answer=2)
    w.do("app", "agent.login", agent_id="a1")
    w.later(1)
    w.do("app", "agent.login", agent_id="a2")
    caller(w, "c1")
    first = offered_legs(w, "c1")
    assert list(first) == ["a1"]  # idle longest
    w.later(15)
    w.see("timer.fired", stream_id=f"call:{first['a1']}", call_id=first["a1"],
          kind="originate_timeout")  # fmt: skip
    missed = last(w, "queue.agent_no_answer")
    assert (missed["agent_id"], missed["reason"]) == ("a1", "no_answer")
    assert list(offered_legs(w, "c1")) == ["a2"]
    w.see("sip.call.failed", call_id=offered_legs(w, "c1")["a2"], sip_status=486)
    assert last(w, "queue.agent_no_answer")["reason"] == "busy"
    # both rest after their miss (retry_secs): nobody is dialled in a loop
    assert offered_legs(w, "c1") == {}
    w.later(5)
    rest_over(w, "a1")
    assert list(offered_legs(w, "c1")) == ["a1"]  # round again
    w.see("sip.call.failed", call_id=offered_legs(w, "c1")["a1"], sip_status=603)
    assert last(w, "queue.agent_no_answer")["reason"] == "rejected"
    assert agent(w, "a1") == "paused"  # second miss in a row
    assert w.state.agents["a1"].reason == "no_answer"
    rest_over(w, "a2")
    assert list(offered_legs(w, "c1")) == ["a2"]
    assert w.do("app", "queue.status", queue_id="support")["entries"][0]["position"] == 1
    assert w.replayed() == w.state.snapshot()


def test_max_wait_cancels_ringing_agents_and_leaves_with_timeout() -> None:
    w = world("ring_all")
    w.do("app", "agent.login", agent_id="a1")
    caller(w, max_wait_secs=30)
    leg = offered_legs(w, "c1")["a1"]
    w.later(30)
    n = len(w.log)
    w.see("timer.fired", stream_id="queue:support", queue_id="support", kind="max_wait",
          since="0:c1")  # fmt: skip
    assert types(w, n)[:1] == ["queue.wait_timeout"]
    assert last(w, "queue.left")["reason"] == "timeout"
    assert ending(w, n) == [leg] and agent(w, "a1") == "available"
    assert sip_ended(w, leg) == ["call.hangup"] and leg not in w.state.calls
    assert w.state.calls["c1"].playback_id is None  # the music stopped; the call stays
    assert w.replayed() == w.state.snapshot()


def test_held_entry_is_skipped_and_skills_must_match() -> None:
    w = world("longest_idle")
    caller(w, "c1")
    w.do("app", "queue.hold", call_id="c1")
    w.later(1)
    caller(w, "c2", skills=["billing"])
    w.do("app", "agent.login", agent_id="a2")  # no billing skill: nothing to offer
    assert offered_legs(w, "c1") == {} and offered_legs(w, "c2") == {}
    w.do("app", "agent.login", agent_id="a1")
    assert list(offered_legs(w, "c2")) == ["a1"]
    w.do("app", "queue.unhold", call_id="c1")
    assert list(offered_legs(w, "c1")) == ["a2"]
    assert w.replayed() == w.state.snapshot()


def test_requeue_keeps_the_time_waited() -> None:
    w = world("manual")
    caller(w, "c1")
    w.later(10)
    outbound_answered(w, "app", "c2")
    w.do("app", "queue.enqueue", call_id="c2", queue_id="other")
    w.later(5)
    assert w.do("app", "queue.requeue", call_id="c1", queue_id="other")["position"] == 1
    status = w.do("app", "queue.status", queue_id="other")
    assert [(e["call_id"], e["waited_secs"]) for e in status["entries"]] == [
        ("c1", 15.0), ("c2", 5.0)]  # fmt: skip
    assert w.state.queues["support"].entries == {}
    assert w.replayed() == w.state.snapshot()


def test_assign_agent_then_no_answer_keeps_the_entry() -> None:
    w = world("manual")
    caller(w, "c1")
    leg = w.do("app", "queue.assign_agent", call_id="c1", agent_id="a3")["agent_call_id"]
    assert leg == agent_leg_id("c1", "a3", 0)
    assert w.fail("app", "queue.dequeue", call_id="c1", agent_id="a3")[0] == "invalid_state"
    w.see("sip.call.failed", call_id=leg, sip_status=480)
    assert "c1" in w.state.queues["support"].entries
    assert agent(w, "a3") == "logged_out"
    assert w.do("app", "queue.dequeue", call_id="c1") == {"call_id": "c1", "queue_id": "support"}
    assert last(w, "queue.left")["reason"] == "dequeued"
    assert w.replayed() == w.state.snapshot()


def test_one_offer_per_agent_across_queues() -> None:
    w = world("ring_all")
    w.do("app", "agent.login", agent_id="a1")
    caller(w, "c1")
    caller(w, "c2")
    assert list(offered_legs(w, "c1")) == ["a1"] and offered_legs(w, "c2") == {}
    w.see("sip.call.failed", call_id=offered_legs(w, "c1")["a1"], sip_status=486)
    assert offered_legs(w, "c1") == {} and offered_legs(w, "c2") == {}  # a1 rests
    w.later(5)
    rest_over(w, "a1")
    # c1 is first in line: it is offered again, c2 still waits
    assert list(offered_legs(w, "c1")) == ["a1"] and offered_legs(w, "c2") == {}
    assert w.replayed() == w.state.snapshot()


def test_restart_ends_entries_and_keeps_logins() -> None:
    from rwi.domain.decide import restarted

    w = world("ring_all")
    w.do("app", "agent.login", agent_id="a1")
    w.do("app", "agent.login", agent_id="a2")
    w.do("app", "agent.pause", agent_id="a2", reason="lunch")
    caller(w)
    w.apply(restarted(w.state, "2024-01-01T00:00:00.000Z"))
    assert last(w, "queue.left")["reason"] == "system"
    assert w.state.queues["support"].entries == {}
    assert (agent(w, "a1"), agent(w, "a2")) == ("available", "paused")
    assert w.replayed() == w.state.snapshot()


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [("ring_all", ["a", "b", "c"]), ("longest_idle", ["b"]), ("fewest_calls", ["c"]),
     ("round_robin", ["c"]), ("manual", [])],
)  # fmt: skip
def test_strategies_choose(strategy: str, expected: list[str]) -> None:
    candidates = [Candidate("a", "2", 3), Candidate("b", "1", 2), Candidate("c", "3", 0)]
    chosen = choose(strategy, candidates, members=("a", "b", "c"), last_agent="b")
    assert chosen == expected


def test_round_robin_wraps_and_tried_agents_come_last() -> None:
    candidates = [Candidate("a", "1", 0), Candidate("b", "1", 0)]
    assert choose("round_robin", candidates, members=("a", "b"), last_agent="b") == ["a"]
    assert choose("longest_idle", candidates, tried=["a"]) == ["b"]
    assert choose("longest_idle", candidates, tried=["a", "b"]) == ["a"]


def test_a_busy_agent_rests_retry_secs_and_the_next_agent_is_tried_at_once() -> None:
    w = world("longest_idle", retry_secs=3, max_no_answer=0)
    w.do("app", "agent.login", agent_id="a1")
    w.later(1)
    w.do("app", "agent.login", agent_id="a2")
    caller(w)
    w.see("sip.call.failed", call_id=offered_legs(w, "c1")["a1"], sip_status=486)
    assert list(offered_legs(w, "c1")) == ["a2"]  # next agent, no wait
    w.see("sip.call.failed", call_id=offered_legs(w, "c1")["a2"], sip_status=603)
    assert offered_legs(w, "c1") == {}
    assert (agent(w, "a1"), agent(w, "a2")) == ("available", "available")
    assert w.do("app", "queue.list")["queues"][0]["available"] == 2
    # the timer of a rest already over (or of an older miss) does nothing
    w.see("timer.fired", stream_id="agent:a1", agent_id="a1", kind="retry", since="old")
    assert offered_legs(w, "c1") == {}
    w.later(3)
    rest_over(w, "a2")
    assert list(offered_legs(w, "c1")) == ["a2"]
    assert w.state.agents["a1"].resting is not None
    assert w.replayed() == w.state.snapshot()


def test_a_cancelled_offer_is_no_miss() -> None:
    w = world("ring_all")
    w.do("app", "agent.login", agent_id="a1")
    caller(w, max_wait_secs=30)
    w.later(30)
    n = len(w.log)
    w.see("timer.fired", stream_id="queue:support", queue_id="support", kind="max_wait",
          since="0:c1")  # fmt: skip
    assert "queue.agent_no_answer" not in types(w, n)
    assert [e.data["state"] for e in w.log[n:] if e.type == "agent.state_changed"] == [
        "available"]  # fmt: skip
    assert w.state.agents["a1"].missed == 0 and w.state.agents["a1"].resting is None


def test_hold_cancels_the_offer_ringing_and_unhold_offers_again() -> None:
    w = world("ring_all")
    w.do("app", "agent.login", agent_id="a1")
    w.do("app", "agent.login", agent_id="a2")
    caller(w)
    legs = offered_legs(w, "c1")
    n = len(w.log)
    w.do("app", "queue.hold", call_id="c1")
    assert ending(w, n) == sorted(legs.values())
    for leg in legs.values():
        assert sip_ended(w, leg) == ["call.hangup"]
    cancelled = [(e.data["call_id"], e.data["sip_status"]) for e in w.log[n:]
                 if e.type == "call.hangup"]  # fmt: skip
    assert sorted(cancelled) == sorted((leg, 487) for leg in legs.values())
    assert "queue.agent_no_answer" not in types(w, n)
    assert offered_legs(w, "c1") == {}
    assert (agent(w, "a1"), agent(w, "a2")) == ("available", "available")
    assert w.state.agents["a1"].missed == 0
    w.do("app", "queue.unhold", call_id="c1")
    assert sorted(offered_legs(w, "c1")) == ["a1", "a2"]
    assert w.replayed() == w.state.snapshot()


@pytest.mark.parametrize("action", ["agent.pause", "agent.logout"])
def test_pause_or_logout_while_ringing_applies_when_the_offer_ends(action: str) -> None:
    w = world("longest_idle", retry_secs=3)
    w.do("app", "agent.login", agent_id="a1")
    caller(w)
    reply = w.do("app", action, agent_id="a1", reason="break")
    target = "paused" if action == "agent.pause" else "logged_out"
    assert reply == {"agent_id": "a1", "state": "ringing", "pending": target}
    assert agent(w, "a1") == "ringing"
    w.see("sip.call.failed", call_id=offered_legs(w, "c1")["a1"], sip_status=480)
    assert agent(w, "a1") == target
    assert w.state.agents["a1"].resting is None and w.state.agents["a1"].pending is None
    assert offered_legs(w, "c1") == {}
    assert w.replayed() == w.state.snapshot()


@pytest.mark.parametrize("action", ["agent.pause", "agent.logout"])
def test_pause_or_logout_while_busy_applies_at_the_end_of_wrap_up(action: str) -> None:
    w = world("longest_idle", wrap_up_secs=5)
    w.do("app", "agent.login", agent_id="a1")
    caller(w)
    leg = offered_legs(w, "c1")["a1"]
    w.see("sip.call.answered", call_id=leg)
    target = "paused" if action == "agent.pause" else "logged_out"
    assert w.do("app", action, agent_id="a1")["pending"] == target
    assert agent(w, "a1") == "busy"
    w.see("sip.call.ended", call_id=leg)
    assert agent(w, "a1") == "wrap_up"
    w.later(5)
    w.see("timer.fired", stream_id="agent:a1", agent_id="a1", kind="wrap_up", since=leg)
    assert agent(w, "a1") == target
    caller(w, "c2")
    assert offered_legs(w, "c2") == {}  # nobody offered while paused or logged out
    assert w.replayed() == w.state.snapshot()


def test_unpause_drops_a_pause_waiting_for_the_call_to_end() -> None:
    w = world("longest_idle", wrap_up_secs=0)
    w.do("app", "agent.login", agent_id="a1")
    caller(w)
    leg = offered_legs(w, "c1")["a1"]
    w.see("sip.call.answered", call_id=leg)
    w.do("app", "agent.pause", agent_id="a1")
    assert w.do("app", "agent.unpause", agent_id="a1") == {"agent_id": "a1", "state": "busy"}
    w.see("sip.call.ended", call_id=leg)
    assert agent(w, "a1") == "available"
    # a logout asked for during the call is not turned into a pause
    caller(w, "c2")
    w.see("sip.call.answered", call_id=offered_legs(w, "c2")["a1"])
    w.do("app", "agent.logout", agent_id="a1")
    assert w.fail("app", "agent.pause", agent_id="a1")[0] == "invalid_state"
    assert w.replayed() == w.state.snapshot()


def test_an_agent_freed_serves_another_queue_and_the_live_state_is_left_alone() -> None:
    policy = Policy(
        queues=(
            QueuePolicy("support", strategy="round_robin", members=("a1",), wrap_up_secs=0),
            QueuePolicy("sales", strategy="round_robin", members=("a1",), wrap_up_secs=0),
        ),
        agents=(AgentPolicy("a1", "sip:a1@local"),),
    )
    w = World(policy)
    w.open("app")
    w.do("app", "agent.login", agent_id="a1")
    caller(w, "c1")
    outbound_answered(w, "app", "c2")
    w.do("app", "queue.enqueue", call_id="c2", queue_id="sales")
    sales = w.state.queues["sales"]
    assert sales.entries["c2"].offers == {} and sales.last_agent is None
    w.see("sip.call.answered", call_id=offered_legs(w, "c1")["a1"])
    w.see("sip.call.ended", call_id="c1")  # a1 free: the sales queue, untouched, is served
    assert list(w.state.queues["sales"].entries["c2"].offers) == ["a1"]
    assert w.state.queues["sales"] is sales and sales.last_agent == "a1"  # by its fold
    assert w.replayed() == w.state.snapshot()
