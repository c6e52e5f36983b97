"""Who receives queue and agent events (contract §10): the owner of the queued call, and
the dashboards, connections subscribed with ``session.subscribe {queues: [...]}``.

A subscriber of a queue gets its ``queue.*`` events and the ``agent.state_changed`` of
its member agents (configured members, agents logged in to it, agents offered one of
its calls). The queues and agents features (``rwi.domain.queues``, ``rwi.domain.agents``)
name these rules as their ``audience``; ``QueueResume`` is their ``resume`` rule, so a
resuming dashboard gets the same events it would have been pushed live.
"""

from __future__ import annotations

from typing import Any

from rwi.domain.model import EventLike, State


def subscribers(state: State, queue_ids: set[str]) -> set[str]:
    """Connections subscribed to any of ``queue_ids``."""
    if not queue_ids:
        return set()
    return {cid for cid, s in state.sessions.items() if s.queues & queue_ids}


def configured_queues(state: State, agent_id: str) -> set[str]:
    return {q.name for q in state.policy.queues if agent_id in q.members}


def agent_queues(state: State, agent_id: str, data: dict[str, Any]) -> set[str]:
    """The queues an agent event concerns, from the state before it: the agent's
    configured and logged-in queues, plus those the event names (a login's list, an
    offer's queue)."""
    out = configured_queues(state, agent_id)
    agent = state.agents.get(agent_id)
    if agent is not None:
        out.update(agent.queues)
        if agent.offer_queue is not None:
            out.add(agent.offer_queue)
    out.update(data.get("queues") or ())
    if data.get("queue_id"):
        out.add(data["queue_id"])
    return out


class QueueResume:
    """Which logged queue and agent events a resuming connection is entitled to.

    A dashboard gets those of its subscribed queues (agent membership is followed
    through the replayed logins and offers); an owner gets those of its queued calls and
    of the agents offered them, until each agent is free again.
    """

    def __init__(self, state: State, connection_id: str) -> None:
        session = state.sessions.get(connection_id)
        self.connection_id = connection_id
        self.queues = set(session.queues) if session is not None else set()
        self.mine = {
            cid
            for cid, call in state.calls.items()
            if call.owner == connection_id or connection_id in call.attached
        }
        self.policy = state.policy
        #: queued call -> the connection that owned it when it joined
        self.entry_owner: dict[str, str | None] = {}
        #: agent -> the owner of the call it is offered or took (until it is free)
        self.agent_owner: dict[str, str | None] = {}
        #: agent -> queues it is logged in to, as the replay goes
        self.logged: dict[str, set[str]] = {a: set(s.queues) for a, s in state.agents.items()}

    def __call__(self, event: EventLike) -> bool:
        data = event.data
        if event.type == "agent.state_changed":
            return self._agent(data)
        call_id = str(data.get("call_id"))
        if event.type == "queue.joined":
            self.entry_owner[call_id] = data.get("owner")
        if data.get("queue_id") in self.queues:
            return True
        return call_id in self.mine or self.entry_owner.get(call_id) == self.connection_id

    def _agent(self, data: dict[str, Any]) -> bool:
        agent_id = data["agent_id"]
        queues = {q.name for q in self.policy.queues if agent_id in q.members}
        queues |= self.logged.get(agent_id, set())
        queues |= set(data.get("queues") or ())
        if data.get("queue_id"):
            queues.add(data["queue_id"])
        owner = data.get("owner") or self.agent_owner.get(agent_id)
        wanted = (
            bool(queues & self.queues)
            or owner == self.connection_id
            or data.get("call_id") in self.mine
        )
        state = data.get("state")
        if "queues" in data:
            self.logged[agent_id] = set(data["queues"])
        if state == "logged_out":
            self.logged[agent_id] = set()
        if state == "ringing":
            self.agent_owner[agent_id] = data.get("owner")
        elif state in ("available", "paused", "logged_out"):
            self.agent_owner.pop(agent_id, None)
        return wanted
