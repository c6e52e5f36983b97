"""Transfers, no-answer actions and early media, decided purely (no I/O)."""

from __future__ import annotations

from typing import Any

from rwi.domain.model import ContextPolicy, Emit, Policy
from tests.unit.rwi.world import World, bridged_pair, last, outbound_answered


def links(w: World, call_id: str) -> tuple[Any, ...]:
    c = w.state.calls[call_id]
    return (c.transfer_kind, c.transfer_leg, c.transfer_peer, c.transfer_of)


def test_attended_transfer_completes_scenario_2() -> None:
    w = World()
    bridged_pair(w)
    data = w.do("app", "call.transfer.attended", call_id="leg_a", target="sip:agent2@local")
    consult = data["consultation_call_id"]
    assert consult.startswith("consult-leg_a-")
    assert [e.type for e in w.log[-3:]] == [
        "call.unbridged",
        "media.hold.started",
        "call.originated",
    ]
    a, b = w.state.calls["leg_a"], w.state.calls["leg_b"]
    assert (a.state, a.held_from, b.state) == ("held", "answered", "answered")
    assert links(w, "leg_a") == ("attended", consult, "leg_b", None)
    assert w.state.calls[consult].owner == "app"
    # agent1 hears the consultation ring, then talks to agent2
    assert w.see("sip.call.progress", call_id=consult, status=180) == [
        "call.ringing",
        "media.play.started",
    ]
    assert last(w, "media.play.started")["call_id"] == "leg_b"
    assert w.see("sip.call.answered", call_id=consult) == [
        "media.play.finished",
        "call.answered",
        "call.bridged",
    ]
    assert last(w, "call.bridged") == {"call_id": "leg_b", "leg_a": "leg_b", "leg_b": consult}
    # completing hangs agent1 up and joins the customer with agent2
    reply = w.do("app", "call.transfer.complete", call_id="leg_a", consultation_call_id=consult)
    assert reply == {"call_id": "leg_a", "leg_a": "leg_a", "leg_b": consult}
    assert [e.type for e in w.log[-5:]] == [
        "call.unbridged",
        "call.hangup",
        "media.hold.stopped",
        "call.bridged",
        "call.transfer.ended",
    ]
    assert last(w, "call.hangup")["call_id"] == "leg_b"
    assert last(w, "call.hangup")["reason"] == "transfer"
    assert "leg_b" not in w.state.calls
    a, c = w.state.calls["leg_a"], w.state.calls[consult]
    assert (a.state, a.bridged_with, c.state, c.bridged_with) == (
        "bridged",
        consult,
        "bridged",
        "leg_a",
    )
    assert links(w, "leg_a") == (None, None, None, None)
    assert links(w, consult) == (None, None, None, None)
    assert w.replayed() == w.state.snapshot()


def test_attended_transfer_cancel_restores_the_bridge() -> None:
    w = World()
    bridged_pair(w)
    consult = w.do("app", "call.transfer.attended", call_id="leg_a", target="sip:x@local")[
        "consultation_call_id"
    ]
    outbound = w.see("sip.call.answered", call_id=consult)
    assert outbound[-1] == "call.bridged"
    reply = w.do("app", "call.transfer.cancel", consultation_call_id=consult)
    assert reply == {"call_id": "leg_a", "consultation_call_id": consult}
    types = [e.type for e in w.log[-5:]]
    assert types == [
        "call.unbridged",
        "call.hangup",
        "media.hold.stopped",
        "call.bridged",
        "call.transfer.ended",
    ]
    assert "call.transfer.failed" not in [e.type for e in w.log]
    a = w.state.calls["leg_a"]
    assert (a.state, a.bridged_with) == ("bridged", "leg_b")
    assert w.state.calls["leg_b"].bridged_with == "leg_a"
    assert consult not in w.state.calls
    assert w.replayed() == w.state.snapshot()


def test_a_failed_consultation_restores_and_reports() -> None:
    w = World()
    bridged_pair(w)
    consult = w.do("app", "call.transfer.attended", call_id="leg_a", target="sip:x@local")[
        "consultation_call_id"
    ]
    w.see("sip.call.progress", call_id=consult, status=180)
    assert w.see("sip.call.failed", call_id=consult, sip_status=486) == [
        "call.busy",
        "media.play.finished",
        "call.hangup",
        "media.hold.stopped",
        "call.bridged",
        "call.transfer.failed",
        "call.transfer.ended",
    ]
    failed = last(w, "call.transfer.failed")
    assert failed == {
        "call_id": "leg_a",
        "consultation_call_id": consult,
        "sip_status": 486,
        "reason": "busy",
    }
    assert w.state.calls["leg_a"].bridged_with == "leg_b"
    # a timed-out consultation (our own timer) restores the same way
    consult = w.do("app", "call.transfer.attended", call_id="leg_a", target="sip:y@local")[
        "consultation_call_id"
    ]
    seen = w.see("timer.fired", call_id=consult, kind="originate_timeout")
    assert seen[:2] == ["call.no_answer", "call.hangup"]
    assert last(w, "call.transfer.failed")["reason"] == "no_answer"
    assert w.state.calls["leg_a"].state == "bridged"
    assert w.replayed() == w.state.snapshot()


def test_attended_transfer_of_an_unbridged_leg_scenario_6() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "leg_a")
    consult = w.do("app", "call.transfer.attended", call_id="leg_a", target="sip:sales@local")[
        "consultation_call_id"
    ]
    assert [e.type for e in w.log[-2:]] == ["media.hold.started", "call.originated"]
    # nobody waits on the consultation but the held customer: no ringback, no bridge
    assert w.see("sip.call.progress", call_id=consult, status=180) == ["call.ringing"]
    assert w.see("sip.call.answered", call_id=consult) == ["call.answered"]
    w.do("app", "call.transfer.complete", call_id="leg_a", consultation_call_id=consult)
    assert [e.type for e in w.log[-3:]] == [
        "media.hold.stopped",
        "call.bridged",
        "call.transfer.ended",
    ]
    assert w.state.calls["leg_a"].bridged_with == consult
    assert w.replayed() == w.state.snapshot()


def test_transfer_errors() -> None:
    w = World()
    bridged_pair(w)
    w.open("other")

    def code(cid: str, action: str, **params: Any) -> str:
        return w.fail(cid, action, **params)[0]

    assert code("app", "call.transfer.complete", call_id="leg_a", consultation_call_id="no") == (
        "not_found"
    )
    assert code("app", "call.transfer.cancel", consultation_call_id="leg_b") == "not_found"
    assert code("app", "call.transfer.attended", call_id="leg_a", target="http://x") == (
        "invalid_params"
    )
    assert code("other", "call.transfer.attended", call_id="leg_a", target="sip:x@local") == (
        "already_owned"
    )
    assert code("app", "call.transfer", call_id="ghost", target="sip:x@local") == ("call_not_found")
    consult = w.do("app", "call.transfer.attended", call_id="leg_a", target="sip:x@local")[
        "consultation_call_id"
    ]
    failure = w.fail("app", "call.transfer.complete", call_id="leg_a", consultation_call_id=consult)
    assert failure[0] == "invalid_state" and "needs it answered" in failure[1]
    assert code("app", "call.transfer.attended", call_id="leg_a", target="sip:y@local") == (
        "invalid_state"
    )
    assert code("other", "call.transfer.cancel", consultation_call_id=consult) == "already_owned"
    # the consultation of one call does not complete another's
    outbound_answered(w, "app", "leg_c")
    assert code("app", "call.transfer.complete", call_id="leg_c", consultation_call_id=consult) == (
        "not_found"
    )
    w.do("app", "call.originate", call_id="ringing", destination="sip:r@local")
    assert code("app", "call.transfer", call_id="ringing", target="sip:x@local") == (
        "invalid_state"
    )


def test_blind_transfer_of_an_unbridged_leg_dials_and_bridges() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "leg_a")
    reply = w.do("app", "call.transfer", call_id="leg_a", target="sip:agent2@local")
    leg = reply["transfer_call_id"]
    assert reply == {"call_id": "leg_a", "method": "bridge", "transfer_call_id": leg}
    assert [e.type for e in w.log[-2:]] == ["call.transferred", "call.originated"]
    assert last(w, "call.transferred")["target"] == "sip:agent2@local"
    assert w.see("sip.call.progress", call_id=leg, status=180) == [
        "call.ringing",
        "media.play.started",
    ]
    assert w.see("sip.call.answered", call_id=leg) == [
        "media.play.finished",
        "call.answered",
        "call.transfer.accepted",
        "call.bridged",
        "call.transfer.ended",
    ]
    assert w.state.calls["leg_a"].bridged_with == leg
    # a second transfer that fails leaves the leg up, told why
    w.do("app", "call.unbridge", call_id="leg_a")
    leg2 = w.do("app", "call.transfer", call_id="leg_a", target="sip:gone@local")[
        "transfer_call_id"
    ]
    assert w.see("sip.call.failed", call_id=leg2, sip_status=404) == [
        "call.hangup",
        "call.transfer.failed",
        "call.transfer.ended",
    ]
    assert last(w, "call.transfer.failed")["sip_status"] == 404
    assert w.state.calls["leg_a"].state == "answered"
    # the transferred party hangs up while the target rings: the new leg is cancelled
    leg3 = w.do("app", "call.transfer", call_id="leg_a", target="sip:z@local")["transfer_call_id"]
    assert w.see("sip.call.ended", call_id="leg_a") == [
        "call.hangup",
        "call.hangup",
        "call.transfer.ended",
    ]
    assert leg3 not in w.state.calls
    assert w.replayed() == w.state.snapshot()


def test_blind_transfer_of_a_bridged_leg_refers_its_far_end() -> None:
    w = World()
    bridged_pair(w)
    assert w.do("app", "call.transfer", call_id="leg_a", target="sip:agent2@local") == {
        "call_id": "leg_a",
        "method": "refer",
    }
    assert last(w, "call.transferred") == {
        "call_id": "leg_a",
        "target": "sip:agent2@local",
        "method": "refer",
    }
    assert w.see("sip.refer.result", call_id="leg_a", status=202) == []
    assert w.see("sip.refer.notify", call_id="leg_a", status=100) == []
    assert w.see("sip.refer.notify", call_id="leg_a", status=200) == ["call.transfer.accepted"]
    # the far end leaves once its new call is up: the agent's leg stays, told
    assert w.see("sip.call.ended", call_id="leg_a") == ["call.unbridged", "call.hangup"]
    assert last(w, "call.hangup")["reason"] == "transfer"
    assert w.state.calls["leg_b"].state == "answered"
    # a refused REFER is a failed transfer and the bridge stays
    w.do("app", "call.hangup", call_id="leg_b")
    bridged_pair(w)
    w.do("app", "call.transfer", call_id="leg_b", target="sip:x@local")
    assert w.see("sip.refer.result", call_id="leg_b", status=405) == [
        "call.transfer.failed",
        "call.transfer.ended",
    ]
    assert w.state.calls["leg_b"].state == "bridged"
    assert w.see("sip.refer.notify", call_id="leg_b", status=200) == []  # too late
    assert w.replayed() == w.state.snapshot()


def no_answer_world(action: str, **extra: Any) -> World:
    policy = Policy(contexts=(ContextPolicy("sales", 30.0, action, **extra),))
    w = World(policy)
    w.open("agent", "sales")
    w.see("sip.call.offered", call_id="in", context="sales", caller="alice")
    return w


def test_no_answer_transfer_makes_a_plain_b2bua_call() -> None:
    w = no_answer_world("transfer", no_answer_transfer_target="sip:voicemail@local")
    assert w.see("timer.fired", call_id="in", kind="claim_timeout") == ["call.originated"]
    assert last(w, "call.originated")["destination"] == "sip:voicemail@local"
    assert w.state.calls["in"].b2bua_peer == "in-t"
    code, message = w.fail("agent", "call.answer", call_id="in")
    assert code == "invalid_state" and "no-answer action" in message
    assert w.see("sip.call.progress", call_id="in-t", status=180) == [
        "call.ringing",
        "call.ringing",
    ]
    assert w.see("sip.call.answered", call_id="in-t") == [
        "call.answered",
        "call.answered",
        "call.bridged",
    ]
    assert w.state.calls["in"].bridged_with == "in-t"
    assert w.replayed() == w.state.snapshot()


def test_no_answer_play_tone_answers_plays_and_ends() -> None:
    w = no_answer_world("play_tone", no_answer_tone_hz=950.0, no_answer_tone_secs=2.0)
    assert w.see("timer.fired", call_id="in", kind="claim_timeout") == [
        "call.answered",
        "media.play.started",
    ]
    started = last(w, "media.play.started")
    assert started["playback_id"] == "na-in"
    assert started["source"] == {"type": "tone", "frequency": 950.0, "duration_ms": 2000}
    assert w.fail("agent", "call.answer", call_id="in")[0] == "invalid_state"
    assert w.see("media.playback.finished", call_id="in", playback_id="na-in") == [
        "media.play.finished",
        "call.hangup",
    ]
    assert last(w, "call.hangup")["reason"] == "no_answer"
    assert w.state.calls == {}
    assert w.replayed() == w.state.snapshot()


def test_orphaned_call_gets_the_no_answer_action() -> None:
    w = no_answer_world("transfer", no_answer_transfer_target="sip:backup@local")
    w.do("agent", "call.answer", call_id="in")
    w.apply([Emit("session:agent", "session.closed", {"connection_id": "agent", "reason": "x"})])
    since = w.state.calls["in"].orphaned_at
    assert w.see("timer.fired", call_id="in", kind="orphan_timeout", since=since) == [
        "call.originated"
    ]
    assert w.see("sip.call.answered", call_id="in-t") == ["call.answered", "call.bridged"]
    assert w.state.calls["in"].bridged_with == "in-t"
    assert w.replayed() == w.state.snapshot()


def test_early_media_after_ringing_is_reported_once() -> None:
    w = World()
    w.open("app")
    w.do("app", "call.originate", call_id="out", destination="sip:x@trunk")
    assert w.see("sip.call.progress", call_id="out", status=180) == ["call.ringing"]
    assert w.see("sip.call.progress", call_id="out", status=183, sdp=True) == ["call.early_media"]
    assert w.see("sip.call.progress", call_id="out", status=183, sdp=True) == []
    assert w.state.calls["out"].early_media
    assert w.replayed() == w.state.snapshot()


def test_owned_call_count_follows_every_owner_change() -> None:
    w = World(Policy(max_calls_per_connection=2))
    w.open("app")
    w.open("b")
    outbound_answered(w, "app", "x")
    w.do("app", "call.originate", call_id="y", destination="sip:y@local")
    assert w.state.owned_by("app") == 2
    assert w.fail("app", "call.originate", call_id="z", destination="sip:z@local")[0] == (
        "rate_limited"
    )
    w.do("app", "session.detach_call", call_id="x")
    w.do("b", "session.attach_call", call_id="x", mode="control")
    assert (w.state.owned_by("app"), w.state.owned_by("b")) == (1, 1)
    w.do("app", "call.hangup", call_id="y")
    assert w.state.owned == {"b": 1}
    w.apply([Emit("session:b", "session.closed", {"connection_id": "b", "reason": "x"})])
    assert w.state.owned == {}


def test_dialog_records_are_kept_while_the_call_lives() -> None:
    w = World()
    w.open("app")
    dialog = {"kind": "confirmed", "call_id": "abc@127.0.0.1"}
    w.do("app", "call.originate", call_id="out", destination="sip:x@local")
    observed = {"type": "sip.call.answered", "call_id": "out", "dialog": dialog}
    w.apply([Emit("service", "observation", observed)])
    w.see("sip.call.answered", call_id="out")
    assert w.state.dialogs == {"out": dialog}
    assert w.replayed() == w.state.snapshot()
    w.do("app", "call.hangup", call_id="out")
    assert w.state.dialogs == {}
