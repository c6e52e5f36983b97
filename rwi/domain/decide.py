"""``decide`` and ``observe``: a command or an observation, against the state, becomes
events (pure), through the features' handlers, rules and reactions.

Rejections raise ``RwiError``; the caller records them in the log like any outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rwi.domain.features import FEATURES, HANDLERS, REACTIONS, RULES, TIMERS
from rwi.domain.model import Command, Decision, Emit, Observation, State, call_stream
from rwi.errors import RwiError


def decide(state: State, command: Command, now: datetime) -> Decision:
    if command.connection_id not in state.sessions:
        raise RwiError("internal_error", f"connection {command.connection_id} has no session")
    handler = HANDLERS.get(command.action)
    if handler is None:
        raise RwiError("unknown_action", f"action {command.action!r} is not available")
    ts = iso(now)
    decision = handler(state, command, ts)
    after = react(state, decision.events, ts)
    if not after:
        return decision
    return Decision(decision.events + tuple(after), decision.data, decision.awaits)


def observe(state: State, observation: Observation, now: datetime) -> tuple[Emit, ...]:
    """Decide what an outside happening means."""
    if observation.type == "timer.fired":
        rule = TIMERS.get(timer_stream(observation.data).partition(":")[0])
    else:
        rule = RULES.get(observation.type)
    if rule is None:
        return ()
    ts = iso(now)
    events = rule(state, observation, ts)
    return events + tuple(react(state, events, ts))


def restarted(state: State, ts: str) -> list[Emit]:
    """What a service restart means for the features' aggregates (state: as the log
    left it), logged right after ``service.started``."""
    events: list[Emit] = []
    for feature in FEATURES:
        if feature.restart is not None:
            events += feature.restart(state, ts)
    return events


def shutting_down(state: State, ts: str) -> list[Emit]:
    """What a clean stop means for the features' aggregates, logged by the stopping
    process before its SIP and media sides close."""
    events: list[Emit] = []
    for feature in FEATURES:
        if feature.shutdown is not None:
            events += feature.shutdown(state, ts)
    return events


def timer_stream(data: dict[str, Any]) -> str:
    """The stream a ``timer.fired`` belongs to (logs before ``stream_id`` name a call)."""
    stream = data.get("stream_id")
    return stream if isinstance(stream, str) else call_stream(str(data.get("call_id")))


def react(state: State, events: Sequence[Emit], ts: str) -> list[Emit]:
    """What the features' reactions add to ``events`` (state: before ``events``); each
    reaction also sees what the ones before it added."""
    after: list[Emit] = []
    for reaction in REACTIONS:
        after += reaction(state, [*events, *after], ts)
    return after


def iso(now: datetime) -> str:
    """The wire's timestamp form: UTC, milliseconds, ``Z``."""
    # isoformat is several times faster than strftime; [:23] drops any UTC offset.
    return now.isoformat(timespec="milliseconds")[:23] + "Z"
