"""plan(): what each durable event makes happen on SIP and media (pure)."""

from __future__ import annotations

from typing import Any

from rwi.domain.effects import (
    Answer,
    Bridge,
    Dial,
    Hangup,
    Hold,
    Play,
    Reject,
    Ring,
    StartTimer,
    StopPlay,
    Unbridge,
    Unhold,
)
from rwi.domain.model import ContextPolicy, Emit, Policy
from rwi.domain.plan import plan
from tests.unit.rwi.world import World, outbound_answered


def planned(w: World, action: str, cid: str = "app", **params: Any) -> list[Any]:
    """Decide a command and plan its events the way the service does: before evolve."""
    from rwi.domain import Command, decide
    from rwi.domain.evolve import evolve

    w.n += 1
    decision = decide(
        w.state,
        Command(action, f"a{w.n}", params, cid, cid, frozenset({"call.control"}), nonce=f"n{w.n}"),
        w.now,
    )
    effects: list[Any] = []
    for event in decision.events:
        event = Emit(event.stream_id, event.type, event.data, {"ts": "2026-03-14T09:00:00.000Z"})
        effects += plan(w.state, event)
        evolve(w.state, event)
        w.log.append(event)
    return effects


def test_originate_dials_and_arms_the_no_answer_timer() -> None:
    w = World()
    w.open("app")
    effects = planned(
        w,
        "call.originate",
        call_id="leg_a",
        destination="sip:1001@local",
        caller_id="2000",
        timeout_secs=30,
        extra_headers={"X-Campaign": "c1"},
    )
    assert effects == [
        Dial("leg_a", "sip:1001@local", "2000", (("X-Campaign", "c1"),), 30.0),
        StartTimer("originate_timeout", "call:leg_a", 30.0),
    ]


def test_inbound_claim_answer_ring_reject() -> None:
    w = World(Policy(contexts=(ContextPolicy("sales", no_answer_timeout_secs=12),)))
    w.open("a", "sales")
    incoming = Emit("call:in", "call.incoming", {"call_id": "in", "context": "sales"})
    assert plan(w.state, incoming) == [StartTimer("claim_timeout", "call:in", 12)]
    w.apply([incoming])
    assert planned(w, "call.ring", cid="a", call_id="in") == [Ring("in")]
    assert planned(w, "call.answer", cid="a", call_id="in") == [Answer("in")]
    w.see("sip.call.offered", call_id="in2", context="sales")
    assert planned(w, "call.reject", cid="a", call_id="in2", reason="busy") == [Reject("in2", 486)]


def test_bridge_hold_play_and_hangup() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "a")
    outbound_answered(w, "app", "b")
    play = planned(
        w, "media.play", call_id="a", source={"type": "file", "uri": "hold.wav"}, loop=True
    )
    assert play == [Play("a", play[0].playback_id, {"type": "file", "uri": "hold.wav"}, True)]
    assert planned(w, "call.bridge", leg_a="a", leg_b="b") == [StopPlay("a"), Bridge("a", "b")]
    assert planned(w, "call.hold", call_id="a", music="m.wav") == [Hold("a", "m.wav")]
    assert planned(w, "call.unhold", call_id="a") == [Unhold("a")]
    assert planned(w, "call.unbridge", call_id="a") == [Unbridge("a", "b")]
    assert planned(w, "call.hangup", call_id="b") == [Hangup("b")]


def test_remote_hangup_needs_no_sip_effect_and_orphans_arm_timers() -> None:
    w = World(Policy(orphan_hold_secs=7))
    w.open("app")
    outbound_answered(w, "app", "a")
    outbound_answered(w, "app", "b")
    closed = Emit(
        "session:app",
        "session.closed",
        {"connection_id": "app"},
        {"ts": "2026-03-14T09:00:05.000Z"},
    )
    assert plan(w.state, closed) == [
        StartTimer("orphan_timeout", "call:a", 7, "2026-03-14T09:00:05.000Z"),
        StartTimer("orphan_timeout", "call:b", 7, "2026-03-14T09:00:05.000Z"),
    ]
    ended = Emit("call:a", "call.hangup", {"call_id": "a", "hangup_by": "remote"})
    assert plan(w.state, ended) == []


def test_a_leg_being_ended_is_hung_up_once_when_asked_not_when_sip_reports_it() -> None:
    w = World()
    w.open("app")
    planned(w, "call.originate", call_id="agent", destination="sip:a@local")
    ending = Emit("call:agent", "call.ending", {"call_id": "agent", "reason": "canceled"})
    assert plan(w.state, ending) == [Hangup("agent")]
    w.apply([ending])
    over = {"call_id": "agent", "reason": "canceled", "sip_status": 487, "hangup_by": "system"}
    assert plan(w.state, Emit("call:agent", "call.hangup", over)) == []


def test_passthrough_and_linked_stops_are_planned() -> None:
    from rwi.domain.effects import EarlyMedia, StopEarlyMedia

    w = World()
    w.open("app")
    outbound_answered(w, "app", "customer")
    planned(w, "call.originate", call_id="agent", destination="sip:a@local")
    assert planned(
        w, "call.set_ringback_source", target_call_id="customer", source_call_id="agent"
    ) == [EarlyMedia("agent", "customer")]
    assert planned(w, "call.hangup", call_id="agent") == [
        StopEarlyMedia("agent", "customer"),
        Hangup("agent"),
    ]


def test_a_timer_fires_for_its_stream_and_names_the_aggregate() -> None:
    timer = StartTimer("orphan_timeout", "call:a", 7, "2026-03-14T09:00:05.000Z")
    assert timer.fired() == {
        "call_id": "a",
        "stream_id": "call:a",
        "kind": "orphan_timeout",
        "since": "2026-03-14T09:00:05.000Z",
    }
    assert StartTimer("wait_timeout", "queue:q1", 30).fired() == {
        "queue_id": "q1",
        "stream_id": "queue:q1",
        "kind": "wait_timeout",
    }
