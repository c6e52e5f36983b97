"""The call state machine (contract §6): one transition function, one refusal."""

from __future__ import annotations

import logging

import pytest

from rwi.domain.call import NEXT, CallState, CallStatus
from rwi.errors import RwiError
from tests.unit.rwi.world import World, bridged_pair, outbound_answered


def test_every_state_has_its_moves() -> None:
    assert set(NEXT) == set(CallStatus)
    assert CallStatus.ANSWERED in NEXT[CallStatus.EARLY]
    assert NEXT[CallStatus.RINGING] == {CallStatus.ANSWERED}


def test_transition_logs_old_to_new(caplog: pytest.LogCaptureFixture) -> None:
    call = CallState("c1", "outbound", CallStatus.DIALING)
    with caplog.at_level(logging.DEBUG, logger="rwi.domain.call"):
        call.transition(CallStatus.EARLY)
        call.transition(CallStatus.EARLY)  # no move, nothing logged
        call.transition(CallStatus.ANSWERED)
    assert call.state is CallStatus.ANSWERED
    assert [r.getMessage() for r in caplog.records] == [
        "call c1: dialing -> early",
        "call c1: early -> answered",
    ]


def test_a_move_outside_the_contract_is_applied_and_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = CallState("c1", "inbound", CallStatus.RINGING)
    with caplog.at_level(logging.WARNING, logger="rwi.domain.call"):
        call.transition(CallStatus.BRIDGED)
    assert call.state is CallStatus.BRIDGED  # the log is the truth
    assert [r.getMessage() for r in caplog.records] == ["call c1: unexpected ringing -> bridged"]


def test_require_is_the_invalid_state_refusal() -> None:
    call = CallState("c1", "inbound", CallStatus.RINGING)
    call.require("call.answer", CallStatus.OFFERED, CallStatus.RINGING)
    with pytest.raises(RwiError) as info:
        call.require("call.bridge", CallStatus.ANSWERED)
    assert info.value.code == "invalid_state"
    assert info.value.message == "call 'c1' is ringing; call.bridge needs answered"


def test_require_may_word_its_refusal() -> None:
    call = CallState("c1", "inbound", CallStatus.HELD)
    call.require("call.unhold", CallStatus.HELD, message="never said")
    with pytest.raises(RwiError) as info:
        call.require("call.bridge", CallStatus.ANSWERED, message="call 'c1' is on hold")
    assert (info.value.code, info.value.message) == ("invalid_state", "call 'c1' is on hold")


def test_call_state_refusals_of_commands_come_from_require(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bridging a bridged call, attaching to an offered one and completing a transfer
    whose consultation is not answered are refused by ``CallState.require``, with the
    words the contract's clients see."""
    refused: list[str] = []
    require = CallState.require

    def spy(self: CallState, action: str, *allowed: CallStatus, message: str | None = None) -> None:
        try:
            require(self, action, *allowed, message=message)
        except RwiError:
            refused.append(action)
            raise

    monkeypatch.setattr(CallState, "require", spy)
    w = World()
    bridged_pair(w)
    outbound_answered(w, "app", "leg_c")
    assert w.fail("app", "call.bridge", leg_a="leg_c", leg_b="leg_b") == (
        "invalid_state",
        "call 'leg_b' is already bridged with 'leg_a'",
    )
    w.open("sup", "sales", scopes=frozenset({"call.control", "supervisor.control"}))
    w.see("sip.call.offered", call_id="in1", context="sales", caller="sip:100@x")
    assert w.fail("sup", "session.attach_call", call_id="in1") == (
        "invalid_state",
        "call 'in1' is offered: claim it with call.answer, call.reject or call.ring",
    )
    consult = w.do("app", "call.transfer.attended", call_id="leg_a", target="sip:x@local")
    assert w.fail(
        "app",
        "call.transfer.complete",
        call_id="leg_a",
        consultation_call_id=consult["consultation_call_id"],
    ) == (
        "invalid_state",
        f"consultation call {consult['consultation_call_id']!r} is dialing; "
        "call.transfer.complete needs it answered",
    )
    assert refused == ["call.bridge", "session.attach_call", "call.transfer.complete"]


def test_summary_carries_the_wire_name() -> None:
    summary = CallState("c1", "inbound", CallStatus.OFFERED).summary()
    assert summary["state"] == "offered" and type(summary["state"]) is str
