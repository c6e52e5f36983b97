"""The call state machine, ownership, claims and timers, decided purely (no I/O)."""

from __future__ import annotations

from rwi.domain import Observation, observe
from rwi.domain.delivery import recipients
from rwi.domain.model import Emit, Policy
from tests.unit.rwi.world import World, outbound_answered


def test_scenario_1_originate_answer_bridge() -> None:
    w = World()
    w.open("app")
    assert w.do(
        "app",
        "call.originate",
        call_id="leg_a",
        destination="sip:1234567890@trunk",
        caller_id="2000",
        timeout_secs=30,
    ) == {"call_id": "leg_a"}
    assert w.state.calls["leg_a"].state == "dialing"
    assert w.see("sip.call.progress", call_id="leg_a", status=180) == ["call.ringing"]
    assert w.state.calls["leg_a"].state == "early"
    assert w.see("sip.call.answered", call_id="leg_a") == ["call.answered"]
    outbound_answered(w, "app", "leg_b")
    assert w.do("app", "call.bridge", leg_a="leg_a", leg_b="leg_b") == {
        "leg_a": "leg_a",
        "leg_b": "leg_b",
    }
    a, b = w.state.calls["leg_a"], w.state.calls["leg_b"]
    assert (a.state, a.bridged_with, b.state, b.bridged_with) == (
        "bridged",
        "leg_b",
        "bridged",
        "leg_a",
    )
    assert w.replayed() == w.state.snapshot()


def test_originate_errors() -> None:
    w = World(Policy(max_calls_per_connection=2))
    w.open("app")
    w.do("app", "call.originate", call_id="x", destination="sip:a@local")
    assert (
        w.fail("app", "call.originate", call_id="x", destination="sip:a@local")[0] == "call_exists"
    )
    assert w.fail("app", "call.originate", call_id="y", destination="http://evil")[0] == (
        "invalid_params"
    )
    w.do("app", "call.originate", call_id="y", destination="sip:b@local")
    code, message = w.fail("app", "call.originate", call_id="z", destination="sip:c@local")
    assert (code, message) == ("rate_limited", "max_calls_per_connection (2) reached")


def test_busy_no_answer_and_failure_each_end_with_a_hangup() -> None:
    w = World()
    w.open("app")
    w.do("app", "call.originate", call_id="busy", destination="sip:a@local")
    assert w.see("sip.call.failed", call_id="busy", sip_status=486) == ["call.busy", "call.hangup"]
    assert w.log[-1].data["reason"] == "busy" and w.log[-1].data["sip_status"] == 486
    w.do("app", "call.originate", call_id="slow", destination="sip:b@local", timeout_secs=5)
    w.later(5)
    assert w.see("timer.fired", call_id="slow", kind="originate_timeout") == [
        "call.no_answer",
        "call.hangup",
    ]
    assert w.log[-1].data["reason"] == "no_answer"
    w.do("app", "call.originate", call_id="gone", destination="sip:c@local")
    assert w.see("sip.call.failed", call_id="gone", sip_status=404) == ["call.hangup"]
    assert w.log[-1].data == {
        "call_id": "gone",
        "reason": "failed",
        "sip_status": 404,
        "hangup_by": "remote",
        "duration_secs": 0.0,
    }
    assert w.state.calls == {}
    # a timer for a call that has moved on does nothing
    assert w.see("timer.fired", call_id="gone", kind="originate_timeout") == []


def test_inbound_claim_race_and_delivery() -> None:
    w = World()
    w.open("a", "sales")
    w.open("b", "sales")
    w.open("c", "support")
    w.see("sip.call.offered", call_id="in1", context="sales", caller="sip:100@x")
    assert w.state.calls["in1"].state == "offered"
    # c was never offered the call: it does not exist for c
    assert w.fail("c", "call.answer", call_id="in1")[0] == "call_not_found"
    assert w.do("a", "call.ring", call_id="in1") == {"call_id": "in1"}
    assert w.fail("b", "call.answer", call_id="in1")[0] == "already_owned"
    assert w.fail("b", "call.hangup", call_id="in1")[0] == "already_owned"
    w.do("a", "call.answer", call_id="in1")
    assert w.state.calls["in1"].state == "answered"
    assert w.fail("a", "call.answer", call_id="in1") == (
        "invalid_state",
        "call 'in1' is answered; call.answer needs offered or ringing",
    )
    hangup = observe(w.state, Observation("sip.call.ended", {"call_id": "in1"}), w.now)
    # the owner gets everything; the losing subscriber still learns the call is gone
    assert recipients(w.state, hangup[-1]) == {"a", "b"}
    assert hangup[-1].data["reason"] == "caller"


def test_reject_reasons_map_to_sip_codes() -> None:
    for reason, code in {"busy": 486, "forbidden": 403, "not_found": 404, "decline": 603}.items():
        w = World()
        w.open("a", "sales")
        w.see("sip.call.offered", call_id="in", context="sales")
        assert w.do("a", "call.reject", call_id="in", reason=reason)["sip_status"] == code
        assert w.log[-1].type == "call.hangup"
        assert w.log[-1].data["reason"] == "rejected" and w.log[-1].data["sip_status"] == code


def test_unclaimed_call_times_out_with_480() -> None:
    w = World()
    w.open("a", "sales")
    w.see("sip.call.offered", call_id="in", context="sales")
    assert w.fail("a", "call.hangup", call_id="in")[0] == "invalid_state"
    assert w.see("timer.fired", call_id="in", kind="claim_timeout") == ["call.hangup"]
    assert w.log[-1].data["sip_status"] == 480 and w.log[-1].data["reason"] == "no_answer"


def test_hanging_up_a_bridged_leg_leaves_the_other_up() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "leg_a")
    outbound_answered(w, "app", "leg_b")
    w.do("app", "call.bridge", leg_a="leg_a", leg_b="leg_b")
    w.later(12.5)
    w.do("app", "call.hangup", call_id="leg_b")
    assert [e.type for e in w.log[-2:]] == ["call.unbridged", "call.hangup"]
    assert w.log[-1].data == {
        "call_id": "leg_b",
        "reason": "rwi",
        "sip_status": None,
        "hangup_by": "rwi",
        "duration_secs": 12.5,
    }
    assert w.state.calls["leg_a"].state == "answered"
    assert w.state.calls["leg_a"].bridged_with is None
    # scenario 3, method A: bridge the survivor to a new agent
    outbound_answered(w, "app", "leg_c")
    w.do("app", "call.bridge", leg_a="leg_a", leg_b="leg_c")
    assert w.state.calls["leg_c"].bridged_with == "leg_a"
    assert w.replayed() == w.state.snapshot()


def test_bridge_rules() -> None:
    w = World()
    w.open("app")
    w.open("other")
    outbound_answered(w, "app", "a")
    outbound_answered(w, "app", "b")
    outbound_answered(w, "app", "c")
    outbound_answered(w, "other", "theirs")
    w.do("app", "call.originate", call_id="ringing", destination="sip:r@local")
    assert w.fail("app", "call.bridge", leg_a="a", leg_b="a")[0] == "invalid_params"
    assert w.fail("app", "call.bridge", leg_a="a", leg_b="ringing")[0] == "invalid_state"
    assert w.fail("app", "call.bridge", leg_a="a", leg_b="theirs")[0] == "already_owned"
    assert w.fail("app", "call.bridge", leg_a="a", leg_b="nope")[0] == "call_not_found"
    w.do("app", "call.bridge", leg_a="a", leg_b="b")
    assert "already bridged" in w.fail("app", "call.bridge", leg_a="c", leg_b="b")[1]
    w.do("app", "call.unbridge", call_id="b")
    assert w.state.calls["a"].state == w.state.calls["b"].state == "answered"


def test_scenario_5_and_11_play_hold_and_unhold() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "leg_a")
    data = w.do(
        "app", "media.play", call_id="leg_a", source={"type": "file", "uri": "hold.wav"}, loop=True
    )
    assert data["playback_id"].startswith("pb-")
    assert w.log[-1].data["loop"] is True
    assert (
        w.fail(
            "app", "media.play", call_id="leg_a", source={"type": "file", "uri": "../etc/passwd"}
        )[0]
        == "invalid_params"
    )
    outbound_answered(w, "app", "leg_c")
    w.do("app", "media.stop", call_id="leg_a")
    assert w.log[-1].type == "media.play.finished" and w.log[-1].data["interrupted"] is True
    assert w.do("app", "media.stop", call_id="leg_a") == {"playback_id": None}
    w.do("app", "call.bridge", leg_a="leg_a", leg_b="leg_c")
    w.do("app", "call.hold", call_id="leg_a", music="hold.wav")
    assert w.state.calls["leg_a"].state == "held"
    assert w.fail("app", "call.hold", call_id="leg_a")[0] == "invalid_state"
    w.do("app", "call.unhold", call_id="leg_a")
    assert w.state.calls["leg_a"].state == "bridged"
    assert w.replayed() == w.state.snapshot()


def test_dtmf_interrupts_an_interruptible_prompt() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "leg_a")
    pid = w.do(
        "app",
        "media.play",
        call_id="leg_a",
        source={"type": "file", "uri": "welcome.wav"},
        interrupt_on_dtmf=True,
    )["playback_id"]
    # the engine stops an interruptible prompt itself and reports both happenings
    assert w.see(
        "media.playback.finished", call_id="leg_a", playback_id=pid, interrupted=True, digit="5"
    ) == ["media.play.finished"]
    assert w.see("sip.dtmf", call_id="leg_a", digit="5", duration_ms=120) == ["call.dtmf"]
    assert w.log[-2].data == {
        "call_id": "leg_a",
        "playback_id": pid,
        "interrupted": True,
        "digit": "5",
    }
    assert w.log[-1].data == {"call_id": "leg_a", "digit": "5", "duration_ms": 120}
    # a late report for a prompt already finished does nothing
    assert w.see("media.playback.finished", call_id="leg_a", playback_id=pid) == []


def test_owner_disconnect_orphans_then_attach_or_timeout() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "leg_a")
    w.apply([Emit("session:app", "session.closed", {"connection_id": "app", "reason": "x"})])
    call = w.state.calls["leg_a"]
    assert call.owner is None and call.orphaned_at is not None
    since = call.orphaned_at
    w.open("new")
    assert w.fail("new", "call.hangup", call_id="leg_a")[0] == "invalid_state"
    w.do("new", "session.attach_call", call_id="leg_a", mode="control")
    assert w.state.calls["leg_a"].owner == "new"
    # the orphan timer armed before the re-attach is stale now
    assert w.see("timer.fired", call_id="leg_a", kind="orphan_timeout", since=since) == []
    w.do("new", "session.detach_call", call_id="leg_a")
    since = w.state.calls["leg_a"].orphaned_at
    assert w.see("timer.fired", call_id="leg_a", kind="orphan_timeout", since=since) == [
        "call.hangup"
    ]
    assert w.log[-1].data["reason"] == "timeout"


def test_supervisor_attach_needs_scope_and_is_read_only() -> None:
    w = World()
    w.open("app")
    w.open("sup")
    outbound_answered(w, "app", "leg_b")
    assert w.fail("sup", "session.attach_call", call_id="leg_b", mode="listen") == (
        "forbidden",
        "scope required: supervisor.control",
    )
    w.do(
        "sup",
        "session.attach_call",
        call_id="leg_b",
        mode="listen",
        scopes=frozenset({"call.control", "supervisor.control"}),
    )
    assert w.state.calls["leg_b"].attached == {"sup": "listen"}
    assert w.fail("sup", "call.hangup", call_id="leg_b")[0] == "already_owned"
    w.see("sip.call.ended", call_id="leg_b")
    assert recipients(w.state, w.log[-1]) == set()  # the call is gone
    assert w.replayed() == w.state.snapshot()


def test_hold_music_for_the_waiting_party_stops_when_the_agent_answers() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "customer")
    w.do(
        "app",
        "call.originate",
        call_id="agent",
        destination="sip:a@local",
        hold_music_target="customer",
        hold_music={"type": "file", "uri": "wait.wav"},
    )
    started = w.log[-1]
    assert (started.type, started.data["call_id"], started.data["playback_id"]) == (
        "media.play.started",
        "customer",
        "hm-agent",
    )
    assert started.data["source"] == {"type": "file", "uri": "wait.wav"}
    assert started.data["loop"] is True
    assert w.see("sip.call.answered", call_id="agent") == ["media.play.finished", "call.answered"]
    assert w.log[-2].data == {
        "call_id": "customer",
        "playback_id": "hm-agent",
        "interrupted": True,
        "reason": "answered",
    }
    assert w.state.calls["customer"].playback_id is None
    assert w.replayed() == w.state.snapshot()


def test_local_ringback_and_passthrough_for_the_waiting_party() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "customer")
    w.do(
        "app",
        "call.originate",
        call_id="agent",
        destination="sip:a@local",
        ringback_target="customer",
    )
    assert w.see("sip.call.progress", call_id="agent", status=180) == [
        "call.ringing",
        "media.play.started",
    ]
    assert w.log[-1].data["source"] == {"type": "ringback"}
    # the agent's phone fails: the customer's ringback stops with it
    assert w.see("sip.call.failed", call_id="agent", sip_status=480) == [
        "media.play.finished",
        "call.hangup",
    ]
    assert w.state.calls["customer"].playback_id is None

    w.do(
        "app",
        "call.originate",
        call_id="agent2",
        destination="sip:b@local",
        ringback="passthrough",
        ringback_target="customer",
    )
    assert w.see("sip.call.progress", call_id="agent2", status=183, sdp=True) == [
        "call.ringing",
        "call.early_media",
        "media.ringback.passthrough.started",
    ]
    assert w.state.calls["customer"].passthrough_from == "agent2"
    assert w.see("sip.call.answered", call_id="agent2") == [
        "media.ringback.passthrough.stopped",
        "call.answered",
    ]
    assert w.state.calls["customer"].passthrough_from is None

    w.do(
        "app",
        "call.originate",
        call_id="silent",
        destination="sip:c@local",
        ringback="none",
        ringback_target="customer",
    )
    assert w.see("sip.call.progress", call_id="silent", status=180) == ["call.ringing"]
    assert w.replayed() == w.state.snapshot()


def test_set_ringback_source() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "customer")
    w.do("app", "call.originate", call_id="agent", destination="sip:a@local")
    assert w.do(
        "app", "call.set_ringback_source", target_call_id="customer", source_call_id="agent"
    ) == {"call_id": "customer"}
    assert w.log[-1].type == "media.ringback.passthrough.started"
    assert (
        w.fail(
            "app", "call.set_ringback_source", target_call_id="agent", source_call_id="customer"
        )[0]
        == "invalid_state"
    )
    w.do("app", "call.hangup", call_id="agent")
    assert [e.type for e in w.log[-2:]] == ["media.ringback.passthrough.stopped", "call.hangup"]
    assert w.replayed() == w.state.snapshot()


def test_a_route_to_a_local_user_is_a_plain_b2bua_call() -> None:
    w = World()
    assert w.see(
        "sip.call.offered", call_id="in1", caller="alice", callee="1001", route_user="1001"
    ) == ["call.incoming", "call.originated"]
    a, b = w.state.calls["in1"], w.state.calls["in1-b"]
    assert (a.b2bua_peer, b.b2bua_peer, b.destination) == ("in1-b", "in1", "sip:1001@local")
    assert w.see("sip.call.progress", call_id="in1-b", status=180) == [
        "call.ringing",
        "call.ringing",
    ]
    assert w.state.calls["in1"].state == "ringing"
    assert w.see("sip.call.answered", call_id="in1-b") == [
        "call.answered",
        "call.answered",
        "call.bridged",
    ]
    assert w.state.calls["in1"].bridged_with == "in1-b"
    # the caller hangs up: both legs end, nobody is left holding a half call
    assert w.see("sip.call.ended", call_id="in1") == ["call.hangup", "call.hangup"]
    assert w.state.calls == {}
    # a busy callee reaches the caller as 486
    w.see("sip.call.offered", call_id="in2", route_user="1002")
    assert w.see("sip.call.failed", call_id="in2-b", sip_status=486) == [
        "call.busy",
        "call.hangup",
        "call.hangup",
    ]
    assert w.log[-1].data["call_id"] == "in2" and w.log[-1].data["sip_status"] == 486
    assert w.see("timer.fired", call_id="in2", kind="claim_timeout") == []
    assert w.replayed() == w.state.snapshot()
