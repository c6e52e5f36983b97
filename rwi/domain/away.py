"""Calls that ended while their token's connection was away (contract §4, resume).

When a connection that owned or watched a call goes away (closed, or a restart), the
call is orphaned for ``orphan_hold_secs``; its client reconnects and re-attaches it.
If the call ends in between, there is nothing left to attach, yet its last events (the
final ``call.hangup``) are the client's: this feature remembers, per token, the calls
that ended while a connection of that token was away, for ``orphan_hold_secs`` after
their end, and ``session.resume`` from a connection of that token replays them
(``rwi.domain.calls.delivery.CallResume``).

It is listed first in the registry, so its folds see the session and the call before
the sessions and calls features drop them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rwi.domain.feature import Feature
from rwi.domain.model import EventLike, State


def _went_away(state: State, connection_ids: set[str], ts: str) -> None:
    tokens = {cid: s.token for cid, s in state.sessions.items() if cid in connection_ids}
    for call in state.calls.values():
        for cid in {call.owner, *call.attached} & tokens.keys():
            state.away.setdefault(call.call_id, {})[tokens[str(cid)]] = ts


def _closed(state: State, event: EventLike) -> None:
    _went_away(state, {event.data["connection_id"]}, event.meta.get("ts", ""))


def _service_started(state: State, event: EventLike) -> None:
    # every connection is gone with the old process; its calls end just after this
    _went_away(state, set(state.sessions), event.meta.get("ts", ""))


def _forget_old(state: State, now: str) -> None:
    if not now or not state.missed:
        return
    horizon = datetime.fromisoformat(now) - timedelta(seconds=state.policy.orphan_hold_secs)
    for token in list(state.missed):
        kept = {
            call_id: ended
            for call_id, ended in state.missed[token].items()
            if datetime.fromisoformat(ended) >= horizon
        }
        if kept:
            state.missed[token] = kept
        else:
            del state.missed[token]


def _hangup(state: State, event: EventLike) -> None:
    ts = event.meta.get("ts", "")
    _forget_old(state, ts)
    tokens = state.away.pop(event.data["call_id"], None)
    for token in tokens or ():
        state.missed.setdefault(token, {})[event.data["call_id"]] = ts


def _opened(state: State, event: EventLike) -> None:
    _forget_old(state, event.meta.get("ts", ""))


def _attached(state: State, event: EventLike) -> None:
    # whoever takes control now gets the call's events; the connections that left it
    # are owed nothing more of it
    if event.data.get("mode", "control") == "control":
        state.away.pop(event.data["call_id"], None)


FEATURE = Feature(
    name="away",
    evolvers={
        "session.closed": _closed,
        "service.started": _service_started,
        "call.hangup": _hangup,
        "session.opened": _opened,
        "call.attached": _attached,
    },
)
