"""Queues (contract §5 Queue, §10): entries waiting on stream ``queue:<id>``, offers to
agents, and what the legs of those offers doing things means for them, decided purely.

An entry is an answered, unbridged call; it hears the queue's music while it waits.
Its place is higher priority first, then the time it began to wait (a requeue keeps
it). Offers are legs dialled to agents (``call.originated``, owned by the queued
call's owner, no ringback); the calls feature rings, times out and ends them, and the
reaction here reads the outcome:

- an offered leg answers: the caller is bridged to it (``queue.agent_connected``,
  ``queue.left {reason: connected}``); every other leg ringing for the entry
  (``ring_all``) is cancelled (its agent is free at once, its ``call.hangup`` follows
  SIP's report: the agent's answer may have crossed the CANCEL);
- an offered leg ends unanswered (no answer, busy, reject, the agent's own hangup):
  ``queue.agent_no_answer``, the agent is free again (paused after ``max_no_answer``),
  and the entry, which kept its place, is offered to the next agent;
- the caller hangs up, times out (``max_wait_secs``) or is taken out: every leg ringing
  for it is cancelled (``queue.left {reason}``); a caller gone while connected takes
  the agent's leg with it, so no agent rings for, or talks to, nobody.

After every decision and observation that touches a queue or an agent, the best
waiting, not held entry of each queue is offered to the agent(s) its strategy picks
(``rwi.domain.distribution``) among the available members with the entry's skills.
All of it is decided from logged events and timers, so a replay makes the same offers.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any

from rwi.domain import agents, dashboards
from rwi.domain.agents import AVAILABLE, BUSY, RINGING, agent_of, changed, released
from rwi.domain.aggregates import AgentState, QueueEntry, QueueState
from rwi.domain.call import CallState, CallStatus
from rwi.domain.calls.legs import (
    ending_events,
    hangup_events,
    owned,
    seconds_between,
    stop_playback,
)
from rwi.domain.distribution import Candidate, choose
from rwi.domain.effects import Effect, StartTimer
from rwi.domain.feature import Feature, Handler, unchanged
from rwi.domain.model import (
    Command,
    Decision,
    Emit,
    EventLike,
    Observation,
    State,
    call_stream,
    queue_stream,
)
from rwi.errors import RwiError

MAX_ID = 128
DEFAULT_MUSIC = "hold_music.wav"


def music_id(call_id: str) -> str:
    return f"qm-{call_id}"


def agent_leg_id(call_id: str, agent_id: str, n: int) -> str:
    """The leg of offer ``n`` of entry ``call_id`` to ``agent_id``: unique per offer and
    the same on every replay."""
    leg_id = f"{call_id}.q{n}.{agent_id}"
    if len(leg_id) <= MAX_ID:
        return leg_id
    return f"q{n}.{hashlib.sha1(leg_id.encode()).hexdigest()[:24]}"


def ordered(queue: QueueState) -> list[QueueEntry]:
    return sorted(queue.entries.values(), key=lambda e: (-e.priority, e.since, e.seq))


def positions(queue: QueueState) -> dict[str, int]:
    return {e.call_id: n for n, e in enumerate(ordered(queue), start=1)}


def find_entry(state: State, call_id: str) -> tuple[QueueState, QueueEntry] | None:
    for queue in state.queues.values():
        entry = queue.entries.get(call_id)
        if entry is not None:
            return queue, entry
    return None


def _event(queue_id: str, kind: str, call_id: str, **data: Any) -> Emit:
    return Emit(queue_stream(queue_id), kind, {"queue_id": queue_id, "call_id": call_id, **data})


def _music(state: State, call: CallState, queue_id: str) -> list[Emit]:
    music = state.policy.queue(queue_id).music or DEFAULT_MUSIC
    events = stop_playback(call, "replaced")
    events.append(
        Emit(
            call_stream(call.call_id),
            "media.play.started",
            {
                "call_id": call.call_id,
                "playback_id": music_id(call.call_id),
                "source": {"type": "file", "uri": music},
                "loop": True,
                "interrupt_on_dtmf": False,
            },
        )
    )
    return events


def _stop_music(state: State, call_id: str, reason: str) -> list[Emit]:
    call = state.calls.get(call_id)
    if call is None or call.playback_id != music_id(call_id):
        return []
    return stop_playback(call, reason)


def offer(
    state: State, queue_id: str, entry: QueueEntry, agent: AgentState, *, manual: bool = False
) -> list[Emit]:
    """Dial ``agent`` for ``entry``: its state, its leg, the offer."""
    caller = state.calls.get(entry.call_id)
    policy = state.policy
    leg_id = agent_leg_id(entry.call_id, agent.agent_id, entry.offered)
    ring_secs = policy.queue(queue_id).agent_ring_secs
    originated: dict[str, Any] = {
        "call_id": leg_id,
        "owner": caller.owner if caller is not None else entry.owner,
        "token": None,
        "destination": policy.agent(agent.agent_id).destination,
        "caller_id": (caller.caller or None) if caller is not None else None,
        "timeout_secs": ring_secs,
        "context": caller.context if caller is not None else None,
        "extra_headers": {},
        "ringback": "none",
        "queue_id": queue_id,
        "queue_call_id": entry.call_id,
    }
    ids = {"agent_id": agent.agent_id, "agent_call_id": leg_id}
    return [
        changed(agent.agent_id, RINGING, "offer", queue_id=queue_id, call_id=entry.call_id,
                agent_call_id=leg_id, owner=originated["owner"]),
        Emit(call_stream(leg_id), "call.originated", originated),
        _event(queue_id, "queue.agent_offered", entry.call_id, **ids, manual=manual),
    ]  # fmt: skip


def _withdraw(
    state: State, queue_id: str, entry: QueueEntry, ts: str, *, leaving: bool
) -> list[Emit]:
    """Cancel every leg ringing for ``entry``; its agents are free again at once. Each
    leg's ``call.hangup {reason: canceled}`` follows SIP's report (``ending_events``):
    an agent's answer may cross the CANCEL (two ``ring_all`` agents answering at once),
    and the log says so (``sip_status`` 200, not 487)."""
    events: list[Emit] = []
    for agent_id, leg_id in sorted(entry.offers.items()):
        leg = state.calls.get(leg_id)
        if leg is not None:
            events += ending_events(state, leg, "canceled")
        agent = agent_of(state, agent_id)
        if agent.offer_leg == leg_id:
            events.append(released(state, agent, "canceled"))
        if not leaving:
            events.append(
                _event(
                    queue_id,
                    "queue.offer_withdrawn",
                    entry.call_id,
                    agent_id=agent_id,
                    agent_call_id=leg_id,
                )
            )
    return events


def leave(state: State, queue: QueueState, entry: QueueEntry, reason: str, ts: str) -> list[Emit]:
    """``entry`` leaves ``queue``: its ringing legs are cancelled, its music stops."""
    events = _withdraw(state, queue.queue_id, entry, ts, leaving=True)
    if reason not in ("abandoned", "requeued"):
        events += _stop_music(state, entry.call_id, "stopped")
    waited = seconds_between(entry.since, ts)
    events.append(
        _event(queue.queue_id, "queue.left", entry.call_id, reason=reason, waited_secs=waited)
    )
    return events


def _connect(
    state: State, queue: QueueState, entry: QueueEntry, agent: AgentState, leg_id: str, ts: str
) -> list[Emit]:
    caller = entry.call_id
    events = _stop_music(state, caller, "bridged")
    events.append(
        Emit(call_stream(caller), "call.bridged", {"call_id": caller, "leg_a": caller,
                                                   "leg_b": leg_id})
    )  # fmt: skip
    ids = {"agent_id": agent.agent_id, "agent_call_id": leg_id}
    events.append(_event(queue.queue_id, "queue.agent_connected", caller, **ids))
    events.append(
        changed(agent.agent_id, BUSY, "connected", queue_id=queue.queue_id, call_id=caller,
                agent_call_id=leg_id)
    )  # fmt: skip
    losers = QueueEntry(caller, 0, "", 0, offers={
        a: leg for a, leg in entry.offers.items() if a != agent.agent_id})  # fmt: skip
    events += _withdraw(state, queue.queue_id, losers, ts, leaving=True)
    waited = seconds_between(entry.since, ts)
    events.append(
        _event(queue.queue_id, "queue.left", caller, reason="connected", waited_secs=waited)
    )
    return events


# --- commands ------------------------------------------------------------------------


def _entry(state: State, command: Command) -> tuple[QueueState, QueueEntry]:
    call_id = command.params["call_id"]
    owned(state, command, call_id)
    found = find_entry(state, call_id)
    if found is None:
        raise RwiError("not_found", f"call {call_id!r} is not in a queue")
    return found


def _joined(
    state: State, queue_id: str, call: CallState, since: str, ts: str, **entry: Any
) -> Emit:
    queue = state.queues.get(queue_id)
    ahead = 0
    if queue is not None:
        key = (-entry["priority"], since)
        ahead = sum(1 for e in queue.entries.values() if (-e.priority, e.since) <= key)
    data = {
        "priority": entry["priority"],
        "position": ahead + 1,
        "max_wait_secs": entry.get("max_wait_secs"),
        "skills": entry.get("skills", []),
        "strategy": state.policy.queue(queue_id).strategy,
        "since": since,
        "waited_secs": seconds_between(since, ts),
        "owner": call.owner,
        "offered": entry.get("offered", 0),
    }
    return _event(queue_id, "queue.joined", call.call_id, **data)


def _enqueue(state: State, command: Command, ts: str) -> Decision:
    params = command.params
    call = owned(state, command, params["call_id"])
    call.require("queue.enqueue", CallStatus.ANSWERED)
    found = find_entry(state, call.call_id)
    if found is not None:
        raise RwiError(
            "invalid_state", f"call {call.call_id!r} is already in queue {found[0].queue_id!r}"
        )
    queue_id = params["queue_id"]
    max_wait = params.get("max_wait_secs") or state.policy.queue(queue_id).max_wait_secs or None
    joined = _joined(
        state, queue_id, call, ts, ts, priority=int(params.get("priority", 0)),
        max_wait_secs=max_wait, skills=sorted(set(params.get("skills", []))),
    )  # fmt: skip
    events = [joined, *_music(state, call, queue_id)]
    data = {"call_id": call.call_id, "queue_id": queue_id, "position": joined.data["position"]}
    return Decision(tuple(events), data)


def _dequeue(state: State, command: Command, ts: str) -> Decision:
    queue, entry = _entry(state, command)
    agent_id = command.params.get("agent_id")
    if agent_id is None:
        events = leave(state, queue, entry, "dequeued", ts)
        return Decision(tuple(events), {"call_id": entry.call_id, "queue_id": queue.queue_id})
    return _offer_to(state, queue, entry, agent_id, ts)


def _assign(state: State, command: Command, ts: str) -> Decision:
    queue, entry = _entry(state, command)
    return _offer_to(state, queue, entry, command.params["agent_id"], ts)


def _offer_to(
    state: State, queue: QueueState, entry: QueueEntry, agent_id: str, ts: str
) -> Decision:
    """``queue.dequeue``/``queue.assign_agent`` with an agent: dial it now; the entry
    keeps its place (and is offered on if the agent does not answer)."""
    agent = agent_of(state, agent_id)
    if agent.status in (RINGING, BUSY) or agent.offer_leg is not None:
        raise RwiError(
            "invalid_state", f"agent {agent_id!r} is {agent.status}; it takes one call at a time"
        )
    events = _withdraw(state, queue.queue_id, entry, ts, leaving=False)
    after = copy.copy(entry)
    after.offers = {}
    events += offer(state, queue.queue_id, after, agent, manual=True)
    leg_id = events[-1].data["agent_call_id"]
    data = {"call_id": entry.call_id, "queue_id": queue.queue_id, "agent_id": agent_id,
            "agent_call_id": leg_id}  # fmt: skip
    return Decision(tuple(events), data)


def _hold(state: State, command: Command, ts: str) -> Decision:
    """A held entry keeps its place and is offered to nobody: agents ringing for it now
    are cancelled (and free again)."""
    queue, entry = _entry(state, command)
    if entry.held:
        raise RwiError("invalid_state", f"queue entry {entry.call_id!r} is already held")
    events = [_event(queue.queue_id, "queue.hold", entry.call_id)]
    events += _withdraw(state, queue.queue_id, entry, ts, leaving=False)
    return Decision(tuple(events), {"call_id": entry.call_id, "queue_id": queue.queue_id})


def _unhold(state: State, command: Command, ts: str) -> Decision:
    queue, entry = _entry(state, command)
    if not entry.held:
        raise RwiError("invalid_state", f"queue entry {entry.call_id!r} is not held")
    event = _event(queue.queue_id, "queue.unhold", entry.call_id)
    return Decision((event,), {"call_id": entry.call_id, "queue_id": queue.queue_id})


def _set_priority(state: State, command: Command, ts: str) -> Decision:
    queue, entry = _entry(state, command)
    priority = int(command.params["priority"])
    event = _event(queue.queue_id, "queue.priority_set", entry.call_id, priority=priority)
    return Decision((event,), {"call_id": entry.call_id, "queue_id": queue.queue_id,
                               "priority": priority})  # fmt: skip


def _requeue(state: State, command: Command, ts: str) -> Decision:
    queue, entry = _entry(state, command)
    target = command.params.get("queue_id") or queue.queue_id
    call = state.calls[entry.call_id]
    events = leave(state, queue, entry, "requeued", ts)
    joined = _joined(
        state if target != queue.queue_id else _without(state, queue, entry),
        target, call, entry.since, ts, priority=entry.priority,
        max_wait_secs=entry.max_wait_secs, skills=entry.skills, offered=entry.offered,
    )  # fmt: skip
    events.append(joined)
    if (
        target != queue.queue_id
        and state.policy.queue(target).music != state.policy.queue(queue.queue_id).music
    ):
        events += _music(state, call, target)
    data = {"call_id": entry.call_id, "queue_id": target, "position": joined.data["position"]}
    return Decision(tuple(events), data)


def _without(state: State, queue: QueueState, entry: QueueEntry) -> State:
    """A view of ``state`` without ``entry`` (its place when it rejoins its queue)."""
    view = State(policy=state.policy, queues=dict(state.queues))
    rest = copy.copy(queue)
    rest.entries = {k: v for k, v in queue.entries.items() if k != entry.call_id}
    view.queues[queue.queue_id] = rest
    return view


def _status(state: State, command: Command, ts: str) -> Decision:
    queue_id = command.params["queue_id"]
    queue = state.queues.get(queue_id)
    configured = any(q.name == queue_id for q in state.policy.queues)
    if queue is None and not configured:
        raise RwiError("not_found", f"queue {queue_id!r} does not exist")
    entries = [
        {"call_id": e.call_id, "position": n, "priority": e.priority,
         "waited_secs": seconds_between(e.since, ts), "held": e.held}
        for n, e in enumerate(ordered(queue) if queue else [], start=1)
    ]  # fmt: skip
    members = set(state.policy.queue(queue_id).members)
    members |= {a.agent_id for a in state.agents.values() if queue_id in a.queues}
    listed = [{"agent_id": a, "state": agent_of(state, a).status} for a in sorted(members)]
    return Decision((), {"queue_id": queue_id, "entries": entries, "agents": listed})


def _list(state: State, command: Command, ts: str) -> Decision:
    names = sorted(set(state.queues) | {q.name for q in state.policy.queues})
    listed = []
    for name in names:
        queue = state.queues.get(name)
        listed.append(
            {
                "queue_id": name,
                "strategy": queue.strategy if queue else state.policy.queue(name).strategy,
                "waiting": len(queue.entries) if queue else 0,
                "available": sum(
                    1 for a in state.agents.values() if a.status == AVAILABLE and name in a.queues
                ),
            }
        )
    return Decision((), {"queues": listed})


HANDLERS: dict[str, Handler] = {
    "queue.enqueue": _enqueue,
    "queue.dequeue": _dequeue,
    "queue.hold": _hold,
    "queue.unhold": _unhold,
    "queue.set_priority": _set_priority,
    "queue.assign_agent": _assign,
    "queue.requeue": _requeue,
    "queue.status": _status,
    "queue.list": _list,
}


# --- what call events and agent changes mean for queues ------------------------------

_NO_ANSWER = {"no_answer": "no_answer", "busy": "busy", "rejected": "rejected"}


def _offer_of(state: State, leg_id: str) -> tuple[QueueState, QueueEntry, AgentState] | None:
    for agent in state.agents.values():
        if agent.offer_leg == leg_id and agent.offer_call is not None:
            found = find_entry(state, agent.offer_call)
            if found is not None and found[1].offers.get(agent.agent_id) == leg_id:
                return found[0], found[1], agent
    return None


def _calls(state: State, events: Sequence[Emit], ts: str) -> list[Emit]:
    """What answers and hangups of queued calls and agent legs mean (state: before)."""
    out: list[Emit] = []
    # entries and agents already settled by this batch (a withdrawal settles the agents
    # whose legs it cancels: their hangups are not misses)
    done = {e.data["agent_id"] for e in events if e.type == "agent.state_changed"}
    for event in events:
        call_id = event.data.get("call_id", "")
        if event.type == "call.answered":
            offered = _offer_of(state, call_id)
            if offered is not None and offered[1].call_id not in done:
                queue, entry, agent = offered
                out += _connect(state, queue, entry, agent, call_id, ts)
                done.add(entry.call_id)
                done.update(entry.offers)
        elif event.type == "call.hangup":
            found = find_entry(state, call_id)
            if found is not None and call_id not in done:
                out += leave(state, found[0], found[1], "abandoned", ts)
                done.add(call_id)
                done.update(found[1].offers)
            offered = _offer_of(state, call_id)
            if offered is not None and offered[2].agent_id not in done:
                out += _missed(state, *offered, event.data)
                done.add(offered[2].agent_id)
            out += _busy_leg_ended(state, call_id, ts, done)
        elif event.type == "call.bridged":
            for leg in (event.data.get("leg_a"), event.data.get("leg_b")):
                found = find_entry(state, leg or "")
                if found is not None and found[1].call_id not in done:
                    out += leave(state, found[0], found[1], "dequeued", ts)
                    done.add(found[1].call_id)
    return out


def _missed(
    state: State, queue: QueueState, entry: QueueEntry, agent: AgentState, hangup: dict[str, Any]
) -> list[Emit]:
    reason = _NO_ANSWER.get(hangup.get("reason", ""), "rejected")
    if hangup.get("hangup_by") == "rwi":
        reason = "canceled"
    leg_id = entry.offers[agent.agent_id]
    return [
        _event(queue.queue_id, "queue.agent_no_answer", entry.call_id, agent_id=agent.agent_id,
               agent_call_id=leg_id, reason=reason, sip_status=hangup.get("sip_status")),
        released(state, agent, reason, missed=reason != "canceled", queue_id=queue.queue_id),
    ]  # fmt: skip


def _busy_leg_ended(state: State, call_id: str, ts: str, done: set[str]) -> list[Emit]:
    """An agent's connected leg ended: wrap-up. A caller gone while connected to an
    agent's leg takes that leg with it (no agent is left talking to nobody)."""
    out: list[Emit] = []
    for agent in sorted(state.agents.values(), key=lambda a: a.agent_id):
        if agent.status != BUSY or agent.agent_id in done or agent.busy_leg is None:
            continue
        leg = state.calls.get(agent.busy_leg)
        if agent.busy_leg == call_id:
            out.append(agents.call_ended(state, agent, "hangup"))
            done.add(agent.agent_id)
        elif leg is not None and leg.bridged_with == call_id:
            out += hangup_events(state, leg, ts, "caller", None, "system")
            out.append(agents.call_ended(state, agent, "caller_hangup"))
            done.add(agent.agent_id)
    return out


def _fold_view(state: State, events: Sequence[Emit], ts: str) -> State:
    """The queues and agents as they are once ``events`` are applied at ``ts``: a copy
    of the queues and agents the events touch (each fold changes only the aggregate its
    event names); the rest, and the calls, are shared, read only."""
    queues = {e.data.get("queue_id") for e in events if e.type.startswith("queue.")}
    agent_ids = {e.data.get("agent_id") for e in events if e.type.startswith("agent.")}
    view = State(
        policy=state.policy,
        calls=state.calls,
        queues={k: copy.deepcopy(v) if k in queues else v for k, v in state.queues.items()},
        agents={k: copy.deepcopy(v) if k in agent_ids else v for k, v in state.agents.items()},
    )
    for event in events:
        stamped = Emit(event.stream_id, event.type, event.data, {"ts": ts})
        for evolver in _VIEW_EVOLVERS.get(event.type, ()):
            evolver(view, stamped)
    return view


def _moved(state: State, view: State) -> list[Emit]:
    """``queue.position_changed`` for every entry whose place changed."""
    out: list[Emit] = []
    for queue_id, queue in sorted(view.queues.items()):
        before = positions(state.queues[queue_id]) if queue_id in state.queues else {}
        for call_id, position in positions(queue).items():
            if call_id in before and before[call_id] != position:
                out.append(_event(queue_id, "queue.position_changed", call_id, position=position))
    return out


def _offers(view: State) -> list[Emit]:
    """Offer each queue's best waiting entries to the agents its strategy picks (reads
    the view only: untouched aggregates in it are the live state's)."""
    out: list[Emit] = []
    taken: set[str] = set()
    for queue_id, queue in sorted(view.queues.items()):
        policy = view.policy.queue(queue_id)
        strategy = queue.strategy
        if strategy == "manual":
            continue
        free = [
            a
            for _, a in sorted(view.agents.items())
            if a.status == AVAILABLE
            and a.resting is None
            and queue_id in a.queues
            and a.agent_id not in taken
        ]
        last_agent = queue.last_agent
        for entry in ordered(queue):
            if not free:
                break
            if entry.held or entry.offers or entry.manual or entry.call_id not in view.calls:
                continue
            need = set(entry.skills)
            fits = [a for a in free if need <= set(view.policy.agent(a.agent_id).skills)]
            chosen = choose(
                strategy,
                [Candidate(a.agent_id, a.idle_since, a.calls) for a in fits],
                tried=entry.tried,
                members=policy.members,
                last_agent=last_agent,
            )
            for n, agent_id in enumerate(chosen):
                numbered = copy.copy(entry)
                numbered.offered = entry.offered + n
                out += offer(view, queue_id, numbered, agent_of(view, agent_id))
                taken.add(agent_id)
            if chosen:
                last_agent = chosen[-1]
            free = [a for a in free if a.agent_id not in taken]
    return out


def react(state: State, events: Sequence[Emit], ts: str) -> list[Emit]:
    out = _calls(state, events, ts)
    touched = [*events, *out]
    if not any(e.type.startswith(("queue.", "agent.")) for e in touched):
        return out
    view = _fold_view(state, touched, ts)
    out += _moved(state, view)
    return out + _offers(view)


# --- timers, restart -----------------------------------------------------------------


def _timer(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """``max_wait_secs`` elapsed for an entry still waiting (stale timers do nothing)."""
    queue = state.queues.get(obs.data.get("queue_id", ""))
    seq, _, call_id = str(obs.data.get("since", "")).partition(":")
    entry = queue.entries.get(call_id) if queue is not None else None
    if queue is None or entry is None or obs.data.get("kind") != "max_wait":
        return ()
    if str(entry.seq) != seq:
        return ()
    waited = seconds_between(entry.since, ts)
    timeout = _event(queue.queue_id, "queue.wait_timeout", call_id, waited_secs=waited)
    return (timeout, *leave(state, queue, entry, "timeout", ts))


def restart_events(state: State, ts: str) -> list[Emit]:
    """Queued calls end with the old process: each entry leaves (``system``)."""
    out: list[Emit] = []
    for queue_id, queue in sorted(state.queues.items()):
        for entry in ordered(queue):
            waited = seconds_between(entry.since, ts)
            out.append(
                _event(queue_id, "queue.left", entry.call_id, reason="system", waited_secs=waited)
            )
    return out


# --- folds and effects ---------------------------------------------------------------


def _joined_fold(state: State, event: EventLike) -> None:
    data = event.data
    queue = state.queues.get(data["queue_id"])
    if queue is None:
        queue = state.queues[data["queue_id"]] = QueueState(
            data["queue_id"], strategy=data.get("strategy", "manual")
        )
    queue.entries[data["call_id"]] = QueueEntry(
        call_id=data["call_id"],
        priority=int(data["priority"]),
        # entries logged before `since` was part of the event waited from the event's time
        since=data.get("since") or event.meta.get("ts", ""),
        seq=queue.joined,
        max_wait_secs=data.get("max_wait_secs"),
        skills=list(data.get("skills", [])),
        owner=data.get("owner"),
        offered=int(data.get("offered", 0)),
    )
    queue.joined += 1


def _entry_of(state: State, event: EventLike) -> QueueEntry | None:
    queue = state.queues.get(event.data["queue_id"])
    return queue.entries.get(event.data["call_id"]) if queue is not None else None


def _left(state: State, event: EventLike) -> None:
    queue = state.queues.get(event.data["queue_id"])
    if queue is not None:
        queue.entries.pop(event.data["call_id"], None)


def _held(state: State, event: EventLike) -> None:
    entry = _entry_of(state, event)
    if entry is not None:
        entry.held = event.type == "queue.hold"


def _priority(state: State, event: EventLike) -> None:
    entry = _entry_of(state, event)
    if entry is not None:
        entry.priority = int(event.data["priority"])


def _offered(state: State, event: EventLike) -> None:
    queue = state.queues.get(event.data["queue_id"])
    entry = _entry_of(state, event)
    if queue is None or entry is None:
        return
    entry.offers[event.data["agent_id"]] = event.data["agent_call_id"]
    entry.offered += 1
    entry.manual = entry.manual or bool(event.data.get("manual"))
    queue.last_agent = event.data["agent_id"]


def _offer_over(state: State, event: EventLike) -> None:
    entry = _entry_of(state, event)
    if entry is None:
        return
    agent_id = event.data["agent_id"]
    entry.offers.pop(agent_id, None)
    if event.type == "queue.agent_no_answer" and agent_id not in entry.tried:
        entry.tried.append(agent_id)
    if not entry.offers:
        entry.manual = False


def _plan_joined(state: State, event: EventLike) -> list[Effect]:
    data = event.data
    if not data.get("max_wait_secs"):
        return []
    queue = state.queues.get(data["queue_id"])
    seq = queue.joined if queue is not None else 0
    left = max(float(data["max_wait_secs"]) - float(data.get("waited_secs", 0)), 0.001)
    since = f"{seq}:{data['call_id']}"
    return [StartTimer("max_wait", queue_stream(data["queue_id"]), left, since)]


def audience(state: State, event: EventLike) -> set[str]:
    """The owner of the queued call, and the dashboards subscribed to its queue."""
    out = dashboards.subscribers(state, {event.data["queue_id"]})
    call = state.calls.get(event.data.get("call_id", ""))
    if call is not None:
        return out | ({call.owner} if call.owner is not None else set())
    entry = _entry_of(state, event)
    return out | ({entry.owner} if entry is not None and entry.owner is not None else set())


EVOLVERS = {
    "queue.joined": _joined_fold,
    "queue.left": _left,
    "queue.hold": _held,
    "queue.unhold": _held,
    "queue.priority_set": _priority,
    "queue.position_changed": unchanged,
    "queue.agent_offered": _offered,
    "queue.agent_no_answer": _offer_over,
    "queue.offer_withdrawn": _offer_over,
    "queue.agent_connected": unchanged,
    "queue.wait_timeout": unchanged,
}
#: what ``_fold_view`` applies: the queue and agent folds
_VIEW_EVOLVERS = {
    **{k: (v,) for k, v in EVOLVERS.items()},
    **{k: (v,) for k, v in agents.FEATURE.evolvers.items()},
}

FEATURE = Feature(
    name="queues",
    commands=HANDLERS,
    needs_media=True,
    timers={"queue": _timer},
    evolvers=EVOLVERS,
    plans={"queue.joined": _plan_joined},
    reactions=(react,),
    pushed=frozenset(
        {
            "queue.joined",
            "queue.position_changed",
            "queue.hold",
            "queue.unhold",
            "queue.agent_offered",
            "queue.agent_connected",
            "queue.agent_no_answer",
            "queue.wait_timeout",
            "queue.left",
        }
    ),
    audience=audience,
    resume=dashboards.QueueResume,
    restart=restart_events,
)
