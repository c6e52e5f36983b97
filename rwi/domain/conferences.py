"""Conferences (contract §5 Conference, §11): the aggregate ``conference:<id>``, its
members and their mute, decided purely; the mixing itself is the media engine's (N-1:
each member hears every other unmuted member, never itself).

A call joins with ``conference.add`` (answered or bridged: a bridge is left first,
``call.unbridged {reason: "conference"}``) and leaves with ``remove``, its hangup
(``member_left {reason: "hangup"}``) or ``destroy`` (its call stays up). The creating
connection and the owners of the member calls receive the conference's events. Any
connection may ``status`` a conference and add its own calls; only the creator may
``destroy`` it while the creator's connection is open (docs/protocol.md §5f).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rwi.domain.aggregates import ConferenceState
from rwi.domain.call import CallState, CallStatus
from rwi.domain.calls.legs import owned
from rwi.domain.effects import ConferenceAdd, ConferenceMute, ConferenceRemove, Effect
from rwi.domain.feature import Feature, Handler
from rwi.domain.model import (
    Command,
    Decision,
    Emit,
    EventLike,
    State,
    call_stream,
    conference_stream,
)
from rwi.errors import RwiError


def _conference(state: State, conf_id: str) -> ConferenceState:
    conference = state.conferences.get(conf_id)
    if conference is None:
        raise RwiError("not_found", f"conference {conf_id!r} does not exist")
    return conference


def _member(state: State, command: Command) -> tuple[ConferenceState, CallState]:
    conference = _conference(state, command.params["conf_id"])
    call = owned(state, command, command.params["call_id"])
    if call.call_id not in conference.members:
        raise RwiError(
            "invalid_state",
            f"call {call.call_id!r} is not a member of conference {conference.conf_id!r}",
        )
    return conference, call


def _event(conf_id: str, kind: str, **data: Any) -> Emit:
    return Emit(conference_stream(conf_id), kind, {"conf_id": conf_id, **data})


# --- commands ------------------------------------------------------------------------


def create(state: State, command: Command, ts: str) -> Decision:
    conf_id = command.params["conf_id"]
    if conf_id in state.conferences:
        raise RwiError("invalid_state", f"conference {conf_id!r} exists already")
    max_members = int(command.params.get("max_members", 10))
    event = _event(
        conf_id,
        "conference.created",
        max_members=max_members,
        owner=command.connection_id,
    )
    return Decision((event,), {"conf_id": conf_id, "max_members": max_members})


def add(state: State, command: Command, ts: str) -> Decision:
    conference = _conference(state, command.params["conf_id"])
    call = owned(state, command, command.params["call_id"])
    call.require("conference.add", CallStatus.ANSWERED, CallStatus.BRIDGED)
    other = state.conference_of(call.call_id)
    if other is not None:
        raise RwiError(
            "invalid_state", f"call {call.call_id!r} is in conference {other.conf_id!r} already"
        )
    if len(conference.members) >= conference.max_members:
        raise RwiError(
            "invalid_state",
            f"conference {conference.conf_id!r} is full ({conference.max_members} members)",
        )
    events: list[Emit] = []
    if call.bridged_with is not None:
        events.append(
            Emit(
                call_stream(call.call_id),
                "call.unbridged",
                {
                    "call_id": call.call_id,
                    "leg_a": call.call_id,
                    "leg_b": call.bridged_with,
                    "reason": "conference",
                },
            )
        )
    members = len(conference.members) + 1
    events.append(
        _event(
            conference.conf_id, "conference.member_joined", call_id=call.call_id, members=members
        )
    )
    return Decision(
        tuple(events), {"conf_id": conference.conf_id, "call_id": call.call_id, "members": members}
    )


def remove(state: State, command: Command, ts: str) -> Decision:
    conference, call = _member(state, command)
    event = _left_all(conference, call.call_id, 0, "removed")
    return Decision((event,), {"conf_id": conference.conf_id, "call_id": call.call_id})


def _mute(muted: bool) -> Handler:
    def handler(state: State, command: Command, ts: str) -> Decision:
        conference, call = _member(state, command)
        kind = "conference.member_muted" if muted else "conference.member_unmuted"
        # already so: nothing changes
        same = conference.members[call.call_id] == muted
        events = () if same else (_event(conference.conf_id, kind, call_id=call.call_id),)
        return Decision(events, {"conf_id": conference.conf_id, "call_id": call.call_id})

    return handler


def destroy(state: State, command: Command, ts: str) -> Decision:
    """Only its creator while that connection is open; once it has closed (a restart
    closes them all) any connection may, so a reconnected application can end it."""
    conference = _conference(state, command.params["conf_id"])
    creator = conference.owner
    if creator is not None and creator != command.connection_id and creator in state.sessions:
        raise RwiError(
            "already_owned",
            f"conference {conference.conf_id!r} was created by another connection, "
            "which is still open",
        )
    left = [
        _left_all(conference, call_id, n, "destroyed")
        for n, call_id in enumerate(conference.members)
    ]
    events = (*left, _event(conference.conf_id, "conference.destroyed"))
    return Decision(events, {"conf_id": conference.conf_id})


def _left_all(conference: ConferenceState, call_id: str, n: int, reason: str) -> Emit:
    """The ``n``-th of several members to leave at once."""
    members = len(conference.members) - n - 1
    return _event(
        conference.conf_id, "conference.member_left", call_id=call_id, reason=reason,
        members=members,
    )  # fmt: skip


def status(state: State, command: Command, ts: str) -> Decision:
    """Any connection (with ``call.control``) may look: a dashboard needs no calls."""
    conference = _conference(state, command.params["conf_id"])
    members = [{"call_id": cid, "muted": muted} for cid, muted in conference.members.items()]
    return Decision(
        (),
        {"conf_id": conference.conf_id, "max_members": conference.max_members, "members": members},
    )


HANDLERS: dict[str, Handler] = {
    "conference.create": create,
    "conference.add": add,
    "conference.remove": remove,
    "conference.mute": _mute(True),
    "conference.unmute": _mute(False),
    "conference.destroy": destroy,
    "conference.status": status,
}


# --- what a member's hangup means ----------------------------------------------------


def hangups(state: State, events: Sequence[Emit], ts: str) -> list[Emit]:
    """Members that ``events`` hang up leave their conference (state: before them)."""
    out: list[Emit] = []
    leaving: dict[str, int] = {}
    for event in events:
        if event.type != "call.hangup":
            continue
        conference = state.conference_of(event.data["call_id"])
        if conference is None:
            continue
        gone = leaving.get(conference.conf_id, 0)
        leaving[conference.conf_id] = gone + 1
        out.append(_left_all(conference, event.data["call_id"], gone, "hangup"))
    return out


# --- folds, effects, delivery --------------------------------------------------------


def _created(state: State, event: EventLike) -> None:
    data = event.data
    state.conferences[data["conf_id"]] = ConferenceState(
        data["conf_id"], int(data.get("max_members", 10)), data.get("owner")
    )


def _joined(state: State, event: EventLike) -> None:
    state.conferences[event.data["conf_id"]].members[event.data["call_id"]] = False


def _member_left(state: State, event: EventLike) -> None:
    state.conferences[event.data["conf_id"]].members.pop(event.data["call_id"], None)


def _muted(state: State, event: EventLike) -> None:
    muted = event.type == "conference.member_muted"
    state.conferences[event.data["conf_id"]].members[event.data["call_id"]] = muted


def _destroyed(state: State, event: EventLike) -> None:
    state.conferences.pop(event.data["conf_id"], None)


def _plan(state: State, event: EventLike) -> list[Effect]:
    data = event.data
    match event.type:
        case "conference.member_joined":
            return [ConferenceAdd(data["conf_id"], data["call_id"])]
        case "conference.member_left" if data.get("reason") != "hangup":
            return [ConferenceRemove(data["conf_id"], data["call_id"])]
        case "conference.member_muted":
            return [ConferenceMute(data["conf_id"], data["call_id"], True)]
        case "conference.member_unmuted":
            return [ConferenceMute(data["conf_id"], data["call_id"], False)]
    return []


def audience(state: State, event: EventLike) -> set[str]:
    """The conference's creator and the owners of its member calls (and of the call an
    event names, e.g. the one joining)."""
    out: set[str] = set()
    conference = state.conferences.get(event.data.get("conf_id") or "")
    call_ids: list[str] = []
    if conference is not None:
        if conference.owner is not None:
            out.add(conference.owner)
        call_ids += list(conference.members)
    elif event.type == "conference.created" and event.data.get("owner"):
        out.add(event.data["owner"])
    if isinstance(event.data.get("call_id"), str):
        call_ids.append(event.data["call_id"])
    for call_id in call_ids:
        call = state.calls.get(call_id)
        if call is not None and call.owner is not None:
            out.add(call.owner)
    return out


class ConferenceResume:
    """Conference events of conferences this connection created or has a call in."""

    def __init__(self, state: State, connection_id: str) -> None:
        self.connection_id = connection_id
        self.mine = {
            conf_id
            for conf_id, conference in state.conferences.items()
            if conference.owner == connection_id
            or any(
                (call := state.calls.get(cid)) is not None and call.owner == connection_id
                for cid in conference.members
            )
        }
        self.calls = {cid for cid, call in state.calls.items() if call.owner == connection_id}

    def __call__(self, event: EventLike) -> bool:
        if event.data.get("owner") == self.connection_id:
            self.mine.add(event.data["conf_id"])
        return event.data.get("conf_id") in self.mine or event.data.get("call_id") in self.calls


FEATURE = Feature(
    name="conferences",
    commands=HANDLERS,
    needs_media=True,
    evolvers={
        "conference.created": _created,
        "conference.member_joined": _joined,
        "conference.member_left": _member_left,
        "conference.member_muted": _muted,
        "conference.member_unmuted": _muted,
        "conference.destroyed": _destroyed,
    },
    plans={
        "conference.member_joined": _plan,
        "conference.member_left": _plan,
        "conference.member_muted": _plan,
        "conference.member_unmuted": _plan,
    },
    reactions=(hangups,),
    pushed=frozenset(
        {
            "conference.created",
            "conference.member_joined",
            "conference.member_left",
            "conference.member_muted",
            "conference.member_unmuted",
            "conference.destroyed",
        }
    ),
    audience=audience,
    resume=ConferenceResume,
)
