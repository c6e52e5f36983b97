"""decide/evolve for sessions and offered calls, and the delivery rules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from rwi.domain import Command, Observation, State, decide, evolve, observe
from rwi.domain.delivery import ResumeFilter, recipients
from rwi.domain.model import Emit
from rwi.errors import RwiError

NOW = datetime(2026, 3, 14, 9, 15, 22, 123456, tzinfo=UTC)


def opened(state: State, cid: str, token: str = "app") -> None:
    evolve(state, Emit(f"session:{cid}", "session.opened", {"connection_id": cid, "token": token}))


def command(cid: str, action: str, **params: Any) -> Command:
    return Command(action, "a1", params, cid, "app", frozenset({"call.control"}))


def apply(state: State, events: tuple[Emit, ...]) -> None:
    for event in events:
        evolve(state, event)


def test_subscribe_and_unsubscribe_fold_into_the_session() -> None:
    state = State()
    opened(state, "c1")
    decision = decide(state, command("c1", "session.subscribe", contexts=["sales", "support"]), NOW)
    assert decision.data == {"contexts": ["sales", "support"]}
    apply(state, decision.events)
    decision = decide(state, command("c1", "session.unsubscribe", contexts=["sales"]), NOW)
    assert decision.data == {"contexts": ["support"]}
    apply(state, decision.events)
    assert state.sessions["c1"].contexts == {"support"}


def test_decide_is_pure() -> None:
    state = State()
    opened(state, "c1")
    before = state.snapshot()
    first = decide(state, command("c1", "session.subscribe", contexts=["x"]), NOW)
    second = decide(state, command("c1", "session.subscribe", contexts=["x"]), NOW)
    assert first == second
    assert state.snapshot() == before


def test_a_command_from_an_unknown_connection_is_an_internal_error() -> None:
    with pytest.raises(RwiError) as info:
        decide(State(), command("ghost", "session.list_calls"), NOW)
    assert info.value.code == "internal_error"


def test_offered_call_goes_to_subscribers_of_its_context_only() -> None:
    state = State()
    for cid in ("a", "b", "c"):
        opened(state, cid)
    apply(state, decide(state, command("a", "session.subscribe", contexts=["sales"]), NOW).events)
    apply(state, decide(state, command("b", "session.subscribe", contexts=["sales"]), NOW).events)
    apply(state, decide(state, command("c", "session.subscribe", contexts=["other"]), NOW).events)
    events = observe(
        state, Observation("sip.call.offered", {"call_id": "k", "context": "sales"}), NOW
    )
    assert [e.type for e in events] == ["call.incoming"]
    assert recipients(state, events[0]) == {"a", "b"}
    apply(state, events)
    assert state.calls["k"].state == "offered"
    # offered twice (a SIP retransmission observed twice) decides nothing new
    assert (
        observe(state, Observation("sip.call.offered", {"call_id": "k", "context": "sales"}), NOW)
        == ()
    )
    hangup = observe(state, Observation("sip.call.ended", {"call_id": "k"}), NOW)
    # subscribers that never claimed it still learn that it is gone
    assert recipients(state, hangup[0]) == {"a", "b"}


def test_restart_drops_sessions_and_ownership() -> None:
    state = State()
    opened(state, "a")
    apply(
        state,
        observe(state, Observation("sip.call.offered", {"call_id": "k", "context": "s"}), NOW),
    )
    state.calls["k"].owner = "a"
    evolve(state, Emit("service", "service.started", {"instance": "i2"}))
    assert state.sessions == {}
    assert state.calls["k"].owner is None


def test_resume_filter_follows_contexts_and_call_ids() -> None:
    state = State()
    opened(state, "a")
    apply(state, decide(state, command("a", "session.subscribe", contexts=["sales"]), NOW).events)
    wanted = ResumeFilter(state, "a")
    incoming = Emit("call:1", "call.incoming", {"call_id": "1", "context": "sales"})
    other = Emit("call:2", "call.incoming", {"call_id": "2", "context": "support"})
    assert wanted(incoming) and not wanted(other)
    assert wanted(Emit("call:1", "call.hangup", {"call_id": "1"}))
    assert not wanted(Emit("call:1", "media.play.started", {"call_id": "1"}))
    assert not wanted(Emit("session:a", "session.subscribed", {"connection_id": "a"}))
