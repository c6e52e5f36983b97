"""Supervisor modes (contract §5 Supervisor, §9): ``supervisor.listen|whisper|barge|
takeover|stop``, decided purely, and what the end of a supervised or supervising leg
means for them.

A mode is a mixing rule around the **agent leg** (``target_call_id``), kept by the media
engine (``Supervise``): the supervisor hears the agent and whatever the agent hears;
whisper adds the supervisor to what the agent hears, barge also to what whoever hears
the agent hears. The rule names only the two legs, so it follows the agent through hold,
unbridge, re-bridge and transfers with nothing to re-plan; the agent leg ending stops it
(``supervisor.mode.stopped {reason: "target_ended"}``), the supervisor leg stays up.

A supervisor monitors one agent at a time (a mode on another target moves it: the old
one stops with ``reason: "moved"``); several supervisors may monitor one agent. The
aggregate is ``state.supervisions`` by supervisor call id; its events are events of the
supervisor's call (stream ``call:<supervisor>``) and go to the owners (and attached
connections) of both legs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rwi.domain.aggregates import SupervisionState
from rwi.domain.call import CallState, CallStatus
from rwi.domain.calls.legs import get_call, hangup_events, owned, stop_playback
from rwi.domain.effects import Effect, StopSupervise, Supervise
from rwi.domain.feature import Feature, Handler, unchanged
from rwi.domain.model import (
    Command,
    Decision,
    Emit,
    EventLike,
    Observation,
    State,
    call_stream,
)
from rwi.errors import RwiError

MODES = ("listen", "whisper", "barge")
#: the states an agent leg can be monitored in (it has media)
MONITORABLE = (CallStatus.ANSWERED, CallStatus.BRIDGED, CallStatus.HELD)
#: why a mode ended (``supervisor.mode.stopped {reason}``)
REASONS = ("rwi", "moved", "takeover", "target_ended", "supervisor_ended", "failed", "system")


def _event(supervisor: str, target: str, kind: str, mode: str, **data: Any) -> Emit:
    return Emit(
        call_stream(supervisor),
        kind,
        {
            "call_id": supervisor,
            "supervisor_call_id": supervisor,
            "target_call_id": target,
            "mode": mode,
            **data,
        },
    )


def _stopped(sup: SupervisionState, reason: str) -> Emit:
    return _event(
        sup.supervisor_call_id,
        sup.target_call_id,
        "supervisor.mode.stopped",
        sup.mode,
        reason=reason,
    )


# --- commands ------------------------------------------------------------------------


def _supervisor(state: State, command: Command, action: str) -> CallState:
    """The supervisor leg: this connection's, answered and in no bridge."""
    leg = owned(state, command, command.params["supervisor_call_id"])
    leg.require(action, CallStatus.ANSWERED)
    return leg


def _target(state: State, command: Command, action: str, supervisor: CallState) -> CallState:
    """The agent leg: one this connection owns or is attached to (contract §4: attached
    supervisors may issue ``supervisor.*`` on a call), with media, supervising nobody."""
    target_id = command.params["target_call_id"]
    if target_id == supervisor.call_id:
        raise RwiError(
            "invalid_params",
            f"params.target_call_id {target_id!r} is the supervisor's own call",
        )
    target = get_call(state, target_id)
    me = command.connection_id
    if target.owner != me and me not in target.attached:
        if target.owner is not None:
            raise RwiError(
                "already_owned",
                f"call {target_id!r} is owned by another connection: "
                "attach to it (session.attach_call) to supervise it",
            )
        raise RwiError(
            "invalid_state",
            f"call {target_id!r} has no owner: attach to it (session.attach_call) first",
        )
    target.require(action, *MONITORABLE)
    watching = state.supervisions.get(target_id)
    if watching is not None:
        raise RwiError(
            "invalid_state",
            f"call {target_id!r} is a supervisor leg (it monitors "
            f"{watching.target_call_id!r}); {action} needs an agent leg",
        )
    return target


def _reply(sup: str, target: str, mode: str) -> dict[str, Any]:
    return {"supervisor_call_id": sup, "target_call_id": target, "mode": mode}


def monitor(state: State, command: Command, ts: str) -> Decision:
    """``supervisor.listen|whisper|barge``: start a mode, switch to it, or move the
    supervisor to another agent."""
    action = command.action
    mode = action.split(".")[1]
    leg = _supervisor(state, command, action)
    target = _target(state, command, action, leg)
    reply = _reply(leg.call_id, target.call_id, mode)
    current = state.supervisions.get(leg.call_id)
    if current is not None and (current.target_call_id, current.mode) == (target.call_id, mode):
        return Decision((), reply)  # already so: nothing changes, nothing to announce
    events: list[Emit] = []
    if current is not None and current.target_call_id != target.call_id:
        events.append(_stopped(current, "moved"))
    switched = current.mode if current and current.target_call_id == target.call_id else None
    events.append(
        _event(
            leg.call_id,
            target.call_id,
            f"supervisor.{mode}.started",
            mode,
            previous_mode=switched,
            customer_call_id=target.bridged_with,
        )
    )
    return Decision(tuple(events), reply)


def takeover(state: State, command: Command, ts: str) -> Decision:
    """The supervisor is bridged with the agent's customer; the agent leg is hung up
    (reason ``transfer``)."""
    action = command.action
    leg = _supervisor(state, command, action)
    target = _target(state, command, action, leg)
    customer = state.calls.get(target.bridged_with) if target.bridged_with else None
    if customer is None or target.state is not CallStatus.BRIDGED:
        raise RwiError(
            "invalid_state",
            f"call {target.call_id!r} is {target.state.value} and bridged with nobody; "
            f"{action} needs it bridged with a customer",
        )
    events: list[Emit] = []
    current = state.supervisions.get(leg.call_id)
    if current is not None:
        events.append(_stopped(current, "takeover"))
    events.append(
        _event(
            leg.call_id,
            target.call_id,
            "supervisor.takeover.started",
            "takeover",
            customer_call_id=customer.call_id,
        )
    )
    events += stop_playback(leg, "bridged")
    events += stop_playback(customer, "bridged")
    events += hangup_events(state, target, ts, "transfer", None, "rwi")
    events.append(
        Emit(
            call_stream(customer.call_id),
            "call.bridged",
            {"call_id": customer.call_id, "leg_a": customer.call_id, "leg_b": leg.call_id},
        )
    )
    reply = _reply(leg.call_id, target.call_id, "takeover")
    return Decision(tuple(events), {**reply, "customer_call_id": customer.call_id})


def stop(state: State, command: Command, ts: str) -> Decision:
    """End the supervisor's mode; its leg stays up."""
    leg = owned(state, command, command.params["supervisor_call_id"])
    current = state.supervisions.get(leg.call_id)
    wanted = command.params.get("target_call_id")
    if current is None or (wanted is not None and wanted != current.target_call_id):
        named = f" {wanted!r}" if wanted is not None else " anybody"
        raise RwiError("not_found", f"call {leg.call_id!r} does not supervise{named}")
    event = _stopped(current, "rwi")
    return Decision((event,), _reply(leg.call_id, current.target_call_id, current.mode))


HANDLERS: dict[str, Handler] = {
    "supervisor.listen": monitor,
    "supervisor.whisper": monitor,
    "supervisor.barge": monitor,
    "supervisor.takeover": takeover,
    "supervisor.stop": stop,
}


# --- what other happenings mean for a supervision ------------------------------------


def legs_ended(state: State, events: Sequence[Emit], ts: str) -> list[Emit]:
    """Supervisions whose agent or supervisor leg ``events`` end (state: before them)."""
    gone = {e.data["call_id"] for e in events if e.type == "call.hangup"}
    if not gone or not state.supervisions:
        return []
    settled = {e.data["supervisor_call_id"] for e in events if e.type == "supervisor.mode.stopped"}
    out: list[Emit] = []
    for sup in state.supervisions.values():
        if sup.supervisor_call_id in settled:
            continue
        if sup.target_call_id in gone:
            out.append(_stopped(sup, "target_ended"))
        elif sup.supervisor_call_id in gone:
            out.append(_stopped(sup, "supervisor_ended"))
    return out


def supervise_failed(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """The media side refused a mode (one of its legs was gone by then): the mode is
    over (``reason: failed``) if it is still the one asked for; a later one stands."""
    d = obs.data
    sup = state.supervisions.get(d.get("supervisor_call_id", ""))
    if sup is None or (sup.target_call_id, sup.mode) != (d.get("target_call_id"), d.get("mode")):
        return ()
    return (_stopped(sup, "failed"),)


def restart(state: State, ts: str) -> list[Emit]:
    """The legs did not survive the previous process, nor did their modes."""
    return [_stopped(sup, "system") for sup in state.supervisions.values()]


# --- folds, effects, delivery ----------------------------------------------------------


def _connections(state: State, *call_ids: str) -> set[str]:
    out: set[str] = set()
    for call_id in call_ids:
        call = state.calls.get(call_id)
        if call is not None:
            out |= set(call.attached) | ({call.owner} if call.owner is not None else set())
    return out


def _started(state: State, event: EventLike) -> None:
    d = event.data
    sup, target = d["supervisor_call_id"], d["target_call_id"]
    state.supervisions[sup] = SupervisionState(
        supervisor_call_id=sup,
        target_call_id=target,
        mode=d.get("mode") or event.type.split(".")[1],  # supervisor.<mode>.started
        started_at=event.meta.get("ts", ""),
        connections=sorted(_connections(state, sup, target)),
    )


def _mode_stopped(state: State, event: EventLike) -> None:
    state.supervisions.pop(event.data["supervisor_call_id"], None)


def plan(state: State, event: EventLike) -> list[Effect]:
    d = event.data
    if event.type == "supervisor.mode.stopped":
        return [StopSupervise(d["supervisor_call_id"])]
    return [Supervise(d["supervisor_call_id"], d["target_call_id"], d["mode"])]


def _audience(state: State, event: EventLike) -> set[str]:
    """The owners and attached connections of both legs; the connections of a mode
    that has begun keep getting its end after one of its legs is gone."""
    d = event.data
    out = _connections(state, d.get("supervisor_call_id", ""), d.get("target_call_id", ""))
    sup = state.supervisions.get(d.get("supervisor_call_id", ""))
    if sup is not None:
        out |= {c for c in sup.connections if c in state.sessions}
    return out


class SupervisionResume:
    """A resuming connection gets the supervisor events of the calls it owns or is
    attached to now, on either side."""

    def __init__(self, state: State, connection_id: str) -> None:
        self.mine = {
            cid
            for cid, call in state.calls.items()
            if call.owner == connection_id or connection_id in call.attached
        }

    def __call__(self, event: EventLike) -> bool:
        d = event.data
        return d.get("supervisor_call_id") in self.mine or d.get("target_call_id") in self.mine


STARTED = tuple(f"supervisor.{mode}.started" for mode in MODES)
PUSHED = frozenset({*STARTED, "supervisor.takeover.started", "supervisor.mode.stopped"})

FEATURE = Feature(
    name="supervision",
    commands=HANDLERS,
    needs_media=True,
    observations={"media.supervise.failed": supervise_failed},
    evolvers={
        **dict.fromkeys(STARTED, _started),
        "supervisor.takeover.started": unchanged,
        "supervisor.mode.stopped": _mode_stopped,
    },
    plans={**dict.fromkeys(STARTED, plan), "supervisor.mode.stopped": plan},
    reactions=(legs_ended,),
    pushed=PUSHED,
    audience=_audience,
    resume=SupervisionResume,
    restart=restart,
)
