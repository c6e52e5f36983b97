"""Dashboards (contract §10): ``session.subscribe {queues}`` delivers a queue's
``queue.*`` events and its member agents' ``agent.state_changed``, live and on
``session.resume`` alike; the owner of the queued call keeps getting them."""

from __future__ import annotations

from typing import Any

from rwi.domain import State, evolve
from rwi.domain.delivery import ResumeFilter, recipients
from rwi.domain.model import AgentPolicy, Emit, Policy, QueuePolicy
from tests.unit.rwi.world import World, outbound_answered


def world() -> World:
    policy = Policy(
        queues=(
            QueuePolicy("support", strategy="longest_idle", members=("a1", "a2")),
            QueuePolicy("sales", strategy="longest_idle", members=("a3",)),
        ),
        agents=(
            AgentPolicy("a1", "sip:a1@local"),
            AgentPolicy("a2", "sip:a2@local"),
            AgentPolicy("a3", "sip:a3@local"),
        ),
    )
    w = World(policy)
    w.open("app")
    w.open("board")
    return w


def pushed(w: World, since: int = 0) -> list[tuple[int, Emit, set[str]]]:
    """Each logged queue/agent event with who it went to (judged on the state before it,
    as the service does)."""
    state = State(policy=w.state.policy)
    out = []
    for n, event in enumerate(w.log):
        if n >= since and event.type.startswith(("queue.", "agent.")):
            out.append((n, event, recipients(state, event)))
        evolve(state, event)
    return out


def got(w: World, cid: str, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.data) for _, e, to in pushed(w, since) if cid in to]


def a_call_answered_by_a1(w: World) -> str:
    w.do("app", "agent.login", agent_id="a1")
    w.do("app", "agent.login", agent_id="a3")
    outbound_answered(w, "app", "c1")
    w.do("app", "queue.enqueue", call_id="c1", queue_id="support")
    leg: str = w.state.queues["support"].entries["c1"].offers["a1"]
    w.see("sip.call.answered", call_id=leg)
    w.see("sip.call.ended", call_id=leg)
    return leg


def test_subscribe_and_unsubscribe_queues_reply_with_the_lists() -> None:
    w = world()
    assert w.do("board", "session.subscribe", queues=["support", "sales"]) == {
        "contexts": [], "queues": ["sales", "support"]}  # fmt: skip
    assert w.do("board", "session.subscribe", contexts=["x"]) == {
        "contexts": ["x"], "queues": ["sales", "support"]}  # fmt: skip
    assert w.do("board", "session.unsubscribe", queues=["sales"]) == {
        "contexts": ["x"], "queues": ["support"]}  # fmt: skip
    # a contexts-only connection sees the reply it always had
    assert w.do("app", "session.subscribe", contexts=["x"]) == {"contexts": ["x"]}
    assert w.state.sessions["board"].queues == {"support"}
    assert w.replayed() == w.state.snapshot()


def test_a_dashboard_gets_its_queue_and_its_member_agents_only() -> None:
    w = world()
    w.do("board", "session.subscribe", queues=["support"])
    since = len(w.log)
    a_call_answered_by_a1(w)
    seen = got(w, "board", since)
    assert ("agent.state_changed", "a3") not in [(t, d.get("agent_id")) for t, d in seen]
    assert [(t, d.get("state")) for t, d in seen if t == "agent.state_changed"] == [
        ("agent.state_changed", "available"),  # login
        ("agent.state_changed", "ringing"),
        ("agent.state_changed", "busy"),
        ("agent.state_changed", "wrap_up"),
    ]
    assert [t for t, _ in seen if t.startswith("queue.")] == [
        "queue.joined", "queue.agent_offered", "queue.agent_connected", "queue.left"]  # fmt: skip
    # the owner of the queued call gets the same queue events, the board is no owner
    assert [t for t, _ in got(w, "app", since) if t.startswith("queue.")] == [
        t for t, _ in seen if t.startswith("queue.")
    ]
    assert w.replayed() == w.state.snapshot()


def test_an_agent_logged_in_to_a_queue_it_is_no_member_of_is_shown_there() -> None:
    w = world()
    w.do("board", "session.subscribe", queues=["support"])
    since = len(w.log)
    w.do("app", "agent.login", agent_id="a3", queues=["support"])
    w.do("app", "agent.pause", agent_id="a3", reason="lunch")
    w.do("app", "agent.logout", agent_id="a3")
    states = [d["state"] for t, d in got(w, "board", since) if d.get("agent_id") == "a3"]
    assert states == ["available", "paused", "logged_out"]
    # logged out of support, a3 is no longer on that dashboard
    since = len(w.log)
    w.do("app", "agent.login", agent_id="a3")
    assert got(w, "board", since) == []


def test_unsubscribed_boards_get_nothing_more() -> None:
    w = world()
    w.do("board", "session.subscribe", queues=["support"])
    w.do("board", "session.unsubscribe", queues=["support"])
    since = len(w.log)
    a_call_answered_by_a1(w)
    assert got(w, "board", since) == []


def test_resume_replays_what_was_pushed_live() -> None:
    w = world()
    w.do("board", "session.subscribe", queues=["support"])
    a_call_answered_by_a1(w)
    w.do("app", "agent.login", agent_id="a2")
    outbound_answered(w, "app", "c2")
    w.do("app", "queue.enqueue", call_id="c2", queue_id="sales")
    w.do("app", "queue.requeue", call_id="c2", queue_id="support")
    for cid in ("board", "app"):
        live = [n for n, _, to in pushed(w) if cid in to]
        wanted = ResumeFilter(w.state, cid)
        resumed = [n for n, e in enumerate(w.log) if wanted(e)
                   and e.type.startswith(("queue.", "agent."))]  # fmt: skip
        assert resumed == live, cid
    # the board saw the requeue arrive, not the time c2 spent in sales
    board = got(w, "board")
    assert ("queue.joined", "sales") not in [(t, d.get("queue_id")) for t, d in board]
    assert ("queue.joined", "support") in [(t, d.get("queue_id")) for t, d in board]
