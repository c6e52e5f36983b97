"""Supervisor modes (contract §5 Supervisor, §9), decided, folded, planned and delivered
purely (no I/O)."""

from __future__ import annotations

from typing import Any

from rwi.domain import Command, Observation, decide, observe
from rwi.domain.decide import restarted
from rwi.domain.delivery import ResumeFilter, recipients
from rwi.domain.effects import Bridge, Effect, Hangup, Hold, StopSupervise, Supervise
from rwi.domain.model import Emit
from rwi.domain.plan import plan
from tests.unit.rwi.world import World, bridged_pair, last, outbound_answered

SUP = frozenset({"call.control", "supervisor.control"})


def run(w: World, events: tuple[Emit, ...] | list[Emit]) -> list[Effect]:
    """Apply ``events`` as the service does: each planned on the state before it."""
    effects: list[Effect] = []
    for event in events:
        effects += plan(w.state, event)
        w.apply([event])
    return effects


def command(w: World, cid: str, action: str, **params: Any) -> tuple[Any, list[Effect], list[str]]:
    w.n += 1
    cmd = Command(action, f"a{w.n}", params, cid, cid, SUP, nonce=f"nonce{w.n:08d}")
    decision = decide(w.state, cmd, w.now)
    return decision.data, run(w, decision.events), [e.type for e in decision.events]


def sip(w: World, obs: str, **data: Any) -> tuple[list[Effect], list[str]]:
    events = observe(w.state, Observation(obs, data), w.now)
    return run(w, events), [e.type for e in events]


def scenario_7() -> World:
    """leg_a (customer) bridged with leg_b (agent), and an answered supervisor leg."""
    w = World()
    bridged_pair(w)
    outbound_answered(w, "app", "supervisor_leg")
    return w


def watch(who: str = "supervisor_leg", target: str = "leg_b") -> dict[str, str]:
    return {"supervisor_call_id": who, "target_call_id": target}


def test_scenario_7_listen_whisper_barge_stop() -> None:
    w = scenario_7()
    data, effects, events = command(w, "app", "supervisor.listen", **watch())
    assert data == {**watch(), "mode": "listen"}
    assert effects == [Supervise("supervisor_leg", "leg_b", "listen")]
    assert events == ["supervisor.listen.started"]
    started = last(w, "supervisor.listen.started")
    assert started == {"call_id": "supervisor_leg", **watch(), "mode": "listen",
                       "previous_mode": None, "customer_call_id": "leg_a"}  # fmt: skip

    _, effects, events = command(w, "app", "supervisor.whisper", **watch())
    assert (effects, events) == (
        [Supervise("supervisor_leg", "leg_b", "whisper")],
        ["supervisor.whisper.started"],
    )
    assert last(w, "supervisor.whisper.started")["previous_mode"] == "listen"
    _, effects, events = command(w, "app", "supervisor.barge", **watch())
    assert effects == [Supervise("supervisor_leg", "leg_b", "barge")]
    assert w.state.supervisions["supervisor_leg"].mode == "barge"

    data, effects, events = command(w, "app", "supervisor.stop", **watch())
    assert data == {**watch(), "mode": "barge"}
    assert (effects, events) == ([StopSupervise("supervisor_leg")], ["supervisor.mode.stopped"])
    assert last(w, "supervisor.mode.stopped")["reason"] == "rwi"
    assert not w.state.supervisions
    assert w.state.calls["supervisor_leg"].state.value == "answered"  # the leg stays up
    assert w.replayed() == w.state.snapshot()


def test_the_same_mode_again_changes_nothing() -> None:
    w = scenario_7()
    command(w, "app", "supervisor.whisper", **watch())
    data, effects, events = command(w, "app", "supervisor.whisper", **watch())
    assert (data["mode"], effects, events) == ("whisper", [], [])


def test_a_mode_on_another_agent_moves_the_supervisor() -> None:
    w = scenario_7()
    outbound_answered(w, "app", "other_agent")
    command(w, "app", "supervisor.listen", **watch())
    _, effects, events = command(w, "app", "supervisor.barge", **watch(target="other_agent"))
    assert events == ["supervisor.mode.stopped", "supervisor.barge.started"]
    assert last(w, "supervisor.mode.stopped")["reason"] == "moved"
    assert effects == [
        StopSupervise("supervisor_leg"),
        Supervise("supervisor_leg", "other_agent", "barge"),
    ]
    assert w.state.supervisions["supervisor_leg"].target_call_id == "other_agent"


def test_two_supervisors_and_the_agent_hanging_up() -> None:
    w = scenario_7()
    outbound_answered(w, "app", "sup2")
    command(w, "app", "supervisor.listen", **watch())
    command(w, "app", "supervisor.whisper", **watch("sup2"))
    assert set(w.state.supervisions) == {"supervisor_leg", "sup2"}
    effects, events = sip(w, "sip.call.ended", call_id="leg_b", status=None, by="remote")
    assert events[-2:] == ["supervisor.mode.stopped", "supervisor.mode.stopped"]
    stopped = [e.data for e in w.log if e.type == "supervisor.mode.stopped"]
    assert {(d["supervisor_call_id"], d["reason"]) for d in stopped} == {
        ("supervisor_leg", "target_ended"),
        ("sup2", "target_ended"),
    }
    assert StopSupervise("sup2") in effects and StopSupervise("supervisor_leg") in effects
    assert not w.state.supervisions
    assert {"supervisor_leg", "sup2", "leg_a"} <= set(w.state.calls)  # supervisors stay up
    assert w.replayed() == w.state.snapshot()


def test_the_supervisor_leg_ending_stops_its_mode() -> None:
    w = scenario_7()
    command(w, "app", "supervisor.listen", **watch())
    sip(w, "sip.call.ended", call_id="supervisor_leg", status=None, by="remote")
    assert last(w, "supervisor.mode.stopped")["reason"] == "supervisor_ended"
    assert not w.state.supervisions
    assert w.state.calls["leg_b"].bridged_with == "leg_a"


def test_the_mode_follows_the_agent_through_hold_and_transfers() -> None:
    w = scenario_7()
    command(w, "app", "supervisor.whisper", **watch())
    # agent held: the engine's rule is around the agent leg, nothing to re-plan
    effects = run(w, decide(w.state, _cmd("call.hold", call_id="leg_b"), w.now).events)
    assert [e for e in effects if isinstance(e, Supervise | StopSupervise)] == []
    assert any(isinstance(e, Hold) for e in effects)
    run(w, decide(w.state, _cmd("call.unhold", call_id="leg_b"), w.now).events)
    # an attended transfer of the customer: the agent talks to the consultation
    decision = decide(w.state, _cmd("call.transfer.attended", call_id="leg_a",
                                    target="sip:expert@local"), w.now)  # fmt: skip
    effects = run(w, decision.events)
    consult = decision.data["consultation_call_id"] if decision.data else ""
    sip(w, "sip.call.answered", call_id=consult)
    assert w.state.calls["leg_b"].bridged_with == consult
    assert w.state.supervisions["supervisor_leg"].target_call_id == "leg_b"
    # completing it hangs up the agent leg: the mode ends with it
    run(w, decide(w.state, _cmd("call.transfer.complete", call_id="leg_a",
                                consultation_call_id=consult), w.now).events)  # fmt: skip
    assert last(w, "supervisor.mode.stopped")["reason"] == "target_ended"
    assert w.replayed() == w.state.snapshot()


def _cmd(action: str, **params: Any) -> Command:
    return Command(action, "x", params, "app", "app", SUP, nonce=f"nonce-{action}")


def test_takeover_bridges_the_supervisor_with_the_customer() -> None:
    w = scenario_7()
    outbound_answered(w, "app", "sup2")
    command(w, "app", "supervisor.listen", **watch())
    command(w, "app", "supervisor.listen", **watch("sup2"))
    data, effects, events = command(w, "app", "supervisor.takeover", **watch())
    assert data == {**watch(), "mode": "takeover", "customer_call_id": "leg_a"}
    assert events == [
        "supervisor.mode.stopped",
        "supervisor.takeover.started",
        "call.unbridged",
        "call.hangup",
        "call.bridged",
        "supervisor.mode.stopped",
    ]
    stops = [e.data for e in w.log if e.type == "supervisor.mode.stopped"]
    assert [(d["supervisor_call_id"], d["reason"]) for d in stops] == [
        ("supervisor_leg", "takeover"),
        ("sup2", "target_ended"),
    ]
    assert last(w, "call.hangup")["reason"] == "transfer"
    assert effects[:1] == [StopSupervise("supervisor_leg")]
    assert Hangup("leg_b") in effects
    assert Bridge("leg_a", "supervisor_leg") in effects
    assert w.state.calls["leg_a"].bridged_with == "supervisor_leg"
    assert "leg_b" not in w.state.calls
    assert w.replayed() == w.state.snapshot()


def test_errors() -> None:
    w = scenario_7()
    w.open("desk")
    outbound_answered(w, "desk", "desk_leg")
    w.do("app", "call.originate", call_id="ringing_agent", destination="sip:x@local")

    def fail(cid: str, action: str, **params: Any) -> tuple[str, str]:
        try:
            command(w, cid, action, **params)
        except Exception as exc:
            return getattr(exc, "code", ""), str(getattr(exc, "message", exc))
        raise AssertionError("no error")

    code, msg = fail("app", "supervisor.listen", **watch(target="supervisor_leg"))
    assert code == "invalid_params" and "target_call_id" in msg
    code, msg = fail("app", "supervisor.listen", **watch(target="ghost"))
    assert code == "call_not_found" and "ghost" in msg
    code, msg = fail("app", "supervisor.listen", **watch(target="ringing_agent"))
    assert code == "invalid_state" and "ringing_agent" in msg and "dialing" in msg
    # the agent leg is another connection's: attach (listen mode) first
    code, msg = fail("desk", "supervisor.listen", **watch("desk_leg"))
    assert code == "already_owned" and "leg_b" in msg and "attach" in msg
    w.do("desk", "session.attach_call", scopes=SUP, call_id="leg_b", mode="listen")
    data, _, _ = command(w, "desk", "supervisor.listen", **watch("desk_leg"))
    assert data["mode"] == "listen"
    # nothing to stop, or not that agent
    code, msg = fail("app", "supervisor.stop", supervisor_call_id="supervisor_leg")
    assert code == "not_found" and "supervisor_leg" in msg
    code, msg = fail("desk", "supervisor.stop", **watch("desk_leg", "leg_a"))
    assert code == "not_found" and "leg_a" in msg
    # a supervisor leg is no agent; an unbridged agent cannot be taken over
    code, msg = fail("app", "supervisor.listen", **watch(target="desk_leg"))
    assert code == "already_owned"
    w.do("app", "call.unbridge", call_id="leg_b")
    code, msg = fail("app", "supervisor.takeover", **watch())
    assert code == "invalid_state" and "leg_b" in msg and "bridged" in msg


def test_events_go_to_the_owners_of_both_legs_and_resume() -> None:
    w = scenario_7()
    w.open("desk")
    outbound_answered(w, "desk", "desk_leg")
    w.do("desk", "session.attach_call", scopes=SUP, call_id="leg_b", mode="listen")
    w.do("desk", "session.detach_call", call_id="leg_b")
    w.do("desk", "session.attach_call", scopes=SUP, call_id="leg_b", mode="listen")
    cmd = Command("supervisor.listen", "x", watch("desk_leg"), "desk", "desk", SUP, nonce="n")
    decision = decide(w.state, cmd, w.now)
    assert recipients(w.state, decision.events[0]) == {"app", "desk"}
    run(w, decision.events)
    # after the agent leg is gone its end still reaches both
    events = observe(
        w.state, Observation("sip.call.ended", {"call_id": "leg_b", "by": "remote"}), w.now
    )
    for event in events:
        if event.type == "supervisor.mode.stopped":
            assert recipients(w.state, event) == {"app", "desk"}
        run(w, [event])
    resume = ResumeFilter(w.state, "desk")
    assert resume(next(e for e in w.log if e.type == "supervisor.listen.started"))


def test_a_restart_stops_every_mode() -> None:
    w = scenario_7()
    command(w, "app", "supervisor.barge", **watch())
    events = restarted(w.state, "2026-03-14T10:00:00.000Z")
    stops = [e.data for e in events if e.type == "supervisor.mode.stopped"]
    assert [(d["supervisor_call_id"], d["reason"]) for d in stops] == [("supervisor_leg", "system")]
    w.apply(events)
    assert not w.state.supervisions
    assert w.replayed() == w.state.snapshot()
