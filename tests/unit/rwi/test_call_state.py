"""The call state machine (contract §6): one transition function, one refusal."""

from __future__ import annotations

import logging

import pytest

from rwi.domain.call import NEXT, CallState, CallStatus
from rwi.errors import RwiError


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


def test_summary_carries_the_wire_name() -> None:
    summary = CallState("c1", "inbound", CallStatus.OFFERED).summary()
    assert summary["state"] == "offered" and type(summary["state"]) is str
