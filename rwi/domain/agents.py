"""Agents (contract §10): login, logout, pause and the state every agent is in, folded
from ``agent.state_changed`` on its stream ``agent:<id>``, so it survives restarts.

``logged_out`` → ``available`` → ``ringing`` (one offer at a time) → ``busy`` →
``wrap_up`` → ``available``; ``paused`` by ``agent.pause`` or after the queue's
``max_no_answer`` missed offers. The offers themselves are the queues feature's
(``rwi.domain.queues``): it emits the ringing/busy/wrap-up changes with the helpers
here, and offers waiting entries whenever an agent becomes available.

An agent that missed an offer (no answer, busy, reject) is available but rests for the
queue's ``retry_secs`` (a timer on ``agent:<id>``, then ``agent.rested``) before it is
offered a call again, so a busy phone is not dialled in a loop. ``agent.pause`` and
``agent.logout`` while it rings, talks or wraps up are kept (``agent.change_pending``)
and applied when it is free: after an unanswered offer, or at the end of wrap-up.
"""

from __future__ import annotations

from typing import Any

from rwi.domain import dashboards
from rwi.domain.aggregates import AgentState
from rwi.domain.effects import Effect, StartTimer
from rwi.domain.feature import Feature, Handler
from rwi.domain.model import (
    Command,
    Decision,
    Emit,
    EventLike,
    Observation,
    State,
    agent_stream,
)
from rwi.errors import RwiError

LOGGED_OUT, AVAILABLE, RINGING, BUSY, WRAP_UP, PAUSED = (
    "logged_out",
    "available",
    "ringing",
    "busy",
    "wrap_up",
    "paused",
)
#: states in which an agent has a queue call (offered or connected)
ENGAGED = frozenset({RINGING, BUSY})


def agent_of(state: State, agent_id: str) -> AgentState:
    """The agent's folded state; one never seen is logged out."""
    return state.agents.get(agent_id) or AgentState(agent_id)


def changed(agent_id: str, new: str, reason: str | None, **data: Any) -> Emit:
    return Emit(
        agent_stream(agent_id),
        "agent.state_changed",
        {"agent_id": agent_id, "state": new, "reason": reason, **data},
    )


def released(
    state: State, agent: AgentState, reason: str, *, missed: bool = False, queue_id: str = ""
) -> Emit:
    """An offer or a call ended: back to available (or logged out if the agent was
    dialled without being logged in), or to the pause/logout asked for meanwhile; paused
    after ``max_no_answer`` missed offers, else resting ``retry_secs`` after a miss."""
    if not agent.logged_in:
        return changed(agent.agent_id, LOGGED_OUT, reason)
    if agent.pending is not None:
        return changed(agent.agent_id, agent.pending, agent.pending_reason or agent.pending)
    if not missed:
        return changed(agent.agent_id, AVAILABLE, reason)
    count = agent.missed + 1
    queue = state.policy.queue(queue_id or agent.offer_queue or "")
    if queue.max_no_answer and count >= queue.max_no_answer:
        return changed(agent.agent_id, PAUSED, "no_answer", missed=count)
    if queue.retry_secs > 0 and agent.offer_leg is not None:
        return changed(agent.agent_id, AVAILABLE, reason, missed=count,
                       retry_secs=queue.retry_secs, agent_call_id=agent.offer_leg)  # fmt: skip
    return changed(agent.agent_id, AVAILABLE, reason, missed=count)


def call_ended(state: State, agent: AgentState, reason: str) -> Emit:
    """The agent's queue call is over: wrap-up time, if the queue has some."""
    secs = state.policy.queue(agent.offer_queue or "").wrap_up_secs
    if agent.logged_in and secs > 0:
        return changed(agent.agent_id, WRAP_UP, reason, agent_call_id=agent.busy_leg)
    return released(state, agent, reason)


# --- commands ------------------------------------------------------------------------


def _free(agent: AgentState, action: str) -> None:
    if agent.status in ENGAGED or agent.offer_leg is not None:
        raise RwiError(
            "invalid_state", f"agent {agent.agent_id!r} is {agent.status}; {action} needs it idle"
        )


def _login(state: State, command: Command, ts: str) -> Decision:
    agent = agent_of(state, command.params["agent_id"])
    _free(agent, "agent.login")
    queues = command.params.get("queues")
    if queues is None:
        queues = [q.name for q in state.policy.queues if agent.agent_id in q.members]
    queues = sorted(set(queues))
    event = changed(agent.agent_id, AVAILABLE, "login", queues=queues, missed=0)
    return Decision((event,), {"agent_id": agent.agent_id, "state": AVAILABLE, "queues": queues})


def _after_the_call(agent: AgentState, new: str, reason: str) -> Decision | None:
    """``new`` asked for while the agent has a call: kept, applied once it is free."""
    if agent.status not in (RINGING, BUSY, WRAP_UP) and agent.offer_leg is None:
        return None
    if agent.pending == LOGGED_OUT and new == PAUSED:
        raise RwiError("invalid_state", f"agent {agent.agent_id!r} logs out after its call")
    event = Emit(
        agent_stream(agent.agent_id),
        "agent.change_pending",
        {"agent_id": agent.agent_id, "state": new, "reason": reason},
    )
    return Decision((event,), {"agent_id": agent.agent_id, "state": agent.status, "pending": new})


def _logout(state: State, command: Command, ts: str) -> Decision:
    agent = agent_of(state, command.params["agent_id"])
    later = _after_the_call(agent, LOGGED_OUT, "logout")
    if later is not None:
        return later
    event = changed(agent.agent_id, LOGGED_OUT, "logout")
    return Decision((event,), {"agent_id": agent.agent_id, "state": LOGGED_OUT})


def _pause(state: State, command: Command, ts: str) -> Decision:
    agent = agent_of(state, command.params["agent_id"])
    if not agent.logged_in:
        raise RwiError("invalid_state", f"agent {agent.agent_id!r} is not logged in")
    reason = command.params.get("reason") or "pause"
    later = _after_the_call(agent, PAUSED, reason)
    if later is not None:
        return later
    event = changed(agent.agent_id, PAUSED, reason)
    return Decision((event,), {"agent_id": agent.agent_id, "state": PAUSED})


def _unpause(state: State, command: Command, ts: str) -> Decision:
    agent = agent_of(state, command.params["agent_id"])
    if agent.pending == PAUSED:
        # a pause still waiting for the call to end is simply dropped
        event = Emit(
            agent_stream(agent.agent_id),
            "agent.change_pending",
            {"agent_id": agent.agent_id, "state": None, "reason": "unpause"},
        )
        return Decision((event,), {"agent_id": agent.agent_id, "state": agent.status})
    if agent.status != PAUSED:
        raise RwiError(
            "invalid_state",
            f"agent {agent.agent_id!r} is {agent.status}; agent.unpause needs paused",
        )
    event = changed(agent.agent_id, AVAILABLE, "unpause", missed=0)
    return Decision((event,), {"agent_id": agent.agent_id, "state": AVAILABLE})


HANDLERS: dict[str, Handler] = {
    "agent.login": _login,
    "agent.logout": _logout,
    "agent.pause": _pause,
    "agent.unpause": _unpause,
}


# --- timers, restart -----------------------------------------------------------------


def _timer(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """Wrap-up or a rest after a miss over: offerable again (a stale timer, the agent
    moved on, does nothing)."""
    agent = state.agents.get(obs.data.get("agent_id", ""))
    if agent is None:
        return ()
    if obs.data.get("kind") == "retry":
        if agent.resting is None or agent.resting != obs.data.get("since"):
            return ()
        return (rested(agent),)
    if obs.data.get("kind") != "wrap_up" or agent.status != WRAP_UP:
        return ()
    if agent.busy_leg != obs.data.get("since"):
        return ()
    return (released(state, agent, "wrap_up_over"),)


def rested(agent: AgentState) -> Emit:
    return Emit(
        agent_stream(agent.agent_id),
        "agent.rested",
        {"agent_id": agent.agent_id, "agent_call_id": agent.resting},
    )


def restart_events(state: State, ts: str) -> list[Emit]:
    """The calls an agent had ended with the old process (a pause or logout asked for
    meanwhile applies now); its login and pause stay; a rest is over."""
    out: list[Emit] = []
    for _, agent in sorted(state.agents.items()):
        if agent.status in (RINGING, BUSY, WRAP_UP):
            out.append(released(state, agent, "system"))
        elif agent.resting is not None:
            out.append(rested(agent))
    return out


# --- fold and effects ----------------------------------------------------------------


def _changed(state: State, event: EventLike) -> None:
    data = event.data
    agent = state.agents.setdefault(data["agent_id"], AgentState(data["agent_id"]))
    new = data["state"]
    if new == AVAILABLE and agent.status != AVAILABLE:
        agent.idle_since = event.meta.get("ts", "")
    if "queues" in data:
        agent.queues = list(data["queues"])
        agent.logged_in = True
    if new == LOGGED_OUT:
        agent.logged_in = False
        agent.queues = []
    agent.status = new
    agent.reason = data.get("reason")
    if new == RINGING:
        agent.owner = data.get("owner")
        agent.offer_leg = data.get("agent_call_id")
        agent.offer_call = data.get("call_id")
        agent.offer_queue = data.get("queue_id")
    else:
        agent.offer_leg = agent.offer_call = None
    if new == BUSY:
        agent.busy_leg = data.get("agent_call_id")
        agent.calls += 1
        agent.missed = 0
    if new in (AVAILABLE, PAUSED, LOGGED_OUT):
        agent.busy_leg = agent.offer_queue = agent.owner = None
    if "missed" in data:
        agent.missed = int(data["missed"])
    agent.resting = data.get("agent_call_id") if data.get("retry_secs") else None
    if new not in (RINGING, BUSY, WRAP_UP):
        agent.pending = agent.pending_reason = None


def _pending(state: State, event: EventLike) -> None:
    agent = state.agents.get(event.data["agent_id"])
    if agent is not None:
        agent.pending = event.data["state"]
        agent.pending_reason = event.data["reason"] if agent.pending else None


def _rested(state: State, event: EventLike) -> None:
    agent = state.agents.get(event.data["agent_id"])
    if agent is not None and agent.resting == event.data["agent_call_id"]:
        agent.resting = None


def _plan(state: State, event: EventLike) -> list[Effect]:
    data = event.data
    agent = state.agents.get(data["agent_id"])
    if data["state"] == WRAP_UP and agent is not None:
        secs = state.policy.queue(agent.offer_queue or "").wrap_up_secs
        return [StartTimer("wrap_up", agent_stream(agent.agent_id), secs, data["agent_call_id"])]
    if data.get("retry_secs"):
        stream = agent_stream(data["agent_id"])
        return [StartTimer("retry", stream, float(data["retry_secs"]), data["agent_call_id"])]
    return []


def audience(state: State, event: EventLike) -> set[str]:
    """The owner of the queued call the agent is offered, connected to or wrapping up
    after, and the dashboards subscribed to a queue the agent belongs to."""
    agent_id = event.data["agent_id"]
    agent = state.agents.get(agent_id)
    out = dashboards.subscribers(state, dashboards.agent_queues(state, agent_id, event.data))
    if agent is not None and agent.owner is not None:
        out.add(agent.owner)
    for call_id in (event.data.get("call_id"), agent.offer_call if agent else None):
        call = state.calls.get(call_id) if call_id else None
        if call is not None and call.owner is not None:
            out.add(call.owner)
    leg = state.calls.get(agent.busy_leg) if agent and agent.busy_leg else None
    if leg is not None and leg.owner is not None:
        out.add(leg.owner)
    return out


FEATURE = Feature(
    name="agents",
    commands=HANDLERS,
    timers={"agent": _timer},
    evolvers={
        "agent.state_changed": _changed,
        "agent.change_pending": _pending,
        "agent.rested": _rested,
    },
    plans={"agent.state_changed": _plan},
    pushed=frozenset({"agent.state_changed"}),
    audience=audience,
    resume=dashboards.QueueResume,
    restart=restart_events,
)

__all__ = ["FEATURE", "agent_of", "changed", "released", "rested"]
