"""The contract's error table (§2) for every call, conference, queue and agent command
this build executes: each command, from the wire on, answers each error its params can
provoke with the right code and a message naming the offending field or id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rwi import protocol
from rwi.domain.agents import HANDLERS as AGENT_HANDLERS
from rwi.domain.calls import HANDLERS as CALL_HANDLERS
from rwi.domain.conferences import HANDLERS as CONFERENCE_HANDLERS
from rwi.domain.model import AgentPolicy, Policy, QueuePolicy
from rwi.domain.queues import HANDLERS as QUEUE_HANDLERS
from rwi.domain.recordings import HANDLERS as RECORDING_HANDLERS
from rwi.domain.sip_requests import HANDLERS as SIP_HANDLERS
from rwi.domain.streams import HANDLERS as STREAM_HANDLERS
from rwi.domain.supervision import HANDLERS as SUPERVISOR_HANDLERS
from rwi.domain.transfers import HANDLERS as TRANSFER_HANDLERS
from rwi.errors import RwiError
from tests.unit.rwi.world import World, outbound_answered

BUILT = (
    frozenset(CALL_HANDLERS)
    | frozenset(TRANSFER_HANDLERS)
    | frozenset(SIP_HANDLERS)
    | frozenset(SUPERVISOR_HANDLERS)
    | frozenset(CONFERENCE_HANDLERS)
    | frozenset(STREAM_HANDLERS)
    | frozenset(QUEUE_HANDLERS)
    | frozenset(AGENT_HANDLERS)
    | frozenset(RECORDING_HANDLERS)
)
#: what the test connection's token grants
GRANTED = frozenset(
    {"call.control", "supervisor.control", "media.stream", "queue.control", "record.control"}
)

#: For each command: params naming the call ``c`` (and ``d`` where two calls are named).
PARAMS: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "call.answer": lambda c, d: {"call_id": c},
    "call.reject": lambda c, d: {"call_id": c},
    "call.ring": lambda c, d: {"call_id": c},
    "call.hangup": lambda c, d: {"call_id": c},
    "call.bridge": lambda c, d: {"leg_a": c, "leg_b": d},
    "call.unbridge": lambda c, d: {"call_id": c},
    "call.hold": lambda c, d: {"call_id": c},
    "call.unhold": lambda c, d: {"call_id": c},
    "media.play": lambda c, d: {"call_id": c, "source": {"type": "ringback"}},
    "media.stop": lambda c, d: {"call_id": c},
    "call.set_ringback_source": lambda c, d: {"target_call_id": c, "source_call_id": d},
    "session.attach_call": lambda c, d: {"call_id": c},
    "session.detach_call": lambda c, d: {"call_id": c},
    "call.transfer": lambda c, d: {"call_id": c, "target": "sip:x@local"},
    "call.transfer.attended": lambda c, d: {"call_id": c, "target": "sip:x@local"},
    "call.transfer.complete": lambda c, d: {"call_id": c, "consultation_call_id": d},
    "call.transfer.cancel": lambda c, d: {"consultation_call_id": c},
    "sip.message": lambda c, d: {"call_id": c, "body": "Your ticket number is 12345"},
    "sip.notify": lambda c, d: {"call_id": c, "event": "check-sync"},
    "sip.options_ping": lambda c, d: {"call_id": c},
    # the supervisor leg first: it is the one the connection must own
    "supervisor.listen": lambda c, d: {"supervisor_call_id": c, "target_call_id": d},
    "supervisor.whisper": lambda c, d: {"supervisor_call_id": c, "target_call_id": d},
    "supervisor.barge": lambda c, d: {"supervisor_call_id": c, "target_call_id": d},
    "supervisor.takeover": lambda c, d: {"supervisor_call_id": c, "target_call_id": d},
    "supervisor.stop": lambda c, d: {"supervisor_call_id": c},
    "media.stream.start": lambda c, d: {"call_id": c, "url": "ws://127.0.0.1:9100/bot"},
    "media.stream.stop": lambda c, d: {"call_id": c},
    "record.start": lambda c, d: {"call_id": c, "mode": "mixed", "max_duration_secs": 60},
    "record.pause": lambda c, d: {"call_id": c},
    "record.resume": lambda c, d: {"call_id": c},
    "record.stop": lambda c, d: {"call_id": c},
    "queue.enqueue": lambda c, d: {"call_id": c, "queue_id": "support"},
    "queue.dequeue": lambda c, d: {"call_id": c},
    "queue.hold": lambda c, d: {"call_id": c},
    "queue.unhold": lambda c, d: {"call_id": c},
    "queue.set_priority": lambda c, d: {"call_id": c, "priority": 5},
    "queue.assign_agent": lambda c, d: {"call_id": c, "agent_id": "a1"},
    "queue.requeue": lambda c, d: {"call_id": c, "queue_id": "other"},
}
#: Queue commands that act on a queue entry: a call that is not queued is ``not_found``.
ENTRY = sorted(a for a in PARAMS if a.startswith("queue.") and a != "queue.enqueue")
#: Queue and agent commands naming no call: params naming the queue or the agent.
NAMED: dict[str, dict[str, Any]] = {
    "queue.status": {"queue_id": "support"},
    "queue.list": {},
    "agent.login": {"agent_id": "a1", "queues": ["support"]},
    "agent.logout": {"agent_id": "a1"},
    "agent.pause": {"agent_id": "a1", "reason": "lunch"},
    "agent.unpause": {"agent_id": "a1"},
}
#: Conference commands: params naming the conference ``room`` (and the call ``c``).
CONFERENCE: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "conference.create": lambda room, c: {"conf_id": room, "max_members": 2},
    "conference.destroy": lambda room, c: {"conf_id": room},
    "conference.status": lambda room, c: {"conf_id": room},
    **{
        f"conference.{verb}": lambda room, c: {"conf_id": room, "call_id": c}
        for verb in ("add", "remove", "mute", "unmute")
    },
}
MEMBER = sorted(a for a in CONFERENCE if a.split(".")[1] in ("add", "remove", "mute", "unmute"))
#: Commands whose unknown id is a consultation, not a call (``not_found``).
CONSULTATION = {"call.transfer.cancel"}


def run(w: World, cid: str, action: str, params: dict[str, Any]) -> tuple[str, str]:
    spec = protocol.resolve(action)
    try:
        protocol.authorise(spec, GRANTED, BUILT)
        w.do(cid, action, **spec.validate(params))
    except RwiError as err:
        return err.code, err.message
    return "success", ""


def test_every_built_call_command_is_in_the_table() -> None:
    assert set(PARAMS) | set(CONFERENCE) | set(NAMED) | {"call.originate"} == BUILT


@pytest.mark.parametrize("action", sorted(PARAMS))
def test_unknown_call(action: str) -> None:
    w = World()
    w.open("app")
    code, message = run(w, "app", action, PARAMS[action]("ghost", "ghost2"))
    expected = "not_found" if action in CONSULTATION else "call_not_found"
    assert code == expected and "ghost" in message


@pytest.mark.parametrize("action", sorted(set(PARAMS) - {"session.detach_call"}))
def test_another_connections_call(action: str) -> None:
    w = World()
    w.open("app")
    w.open("other")
    outbound_answered(w, "app", "mine")
    outbound_answered(w, "app", "also")
    code, message = run(w, "other", action, PARAMS[action]("mine", "also"))
    if action in CONSULTATION:
        assert (code, "mine" in message) == ("not_found", True)  # no consultation of that id
    else:
        assert code == "already_owned" and "mine" in message


def test_detaching_a_call_one_is_not_attached_to() -> None:
    w = World()
    w.open("app")
    w.open("other")
    outbound_answered(w, "app", "mine")
    code, message = run(w, "other", "session.detach_call", {"call_id": "mine"})
    assert code == "invalid_state" and "mine" in message


@pytest.mark.parametrize("action", sorted(BUILT))
def test_missing_and_mistyped_params(action: str) -> None:
    w = World()
    w.open("app")
    spec = protocol.resolve(action)
    if action == "call.originate":
        valid = {"call_id": "c", "destination": "sip:c@local"}
    elif action in CONFERENCE:
        valid = CONFERENCE[action]("room", "c")
    elif action in NAMED:
        valid = NAMED[action]
    else:
        valid = PARAMS[action]("c", "d")
    for name in sorted(spec.required):
        params = {k: v for k, v in valid.items() if k != name}
        code, message = run(w, "app", action, params)
        assert code == "invalid_params" and name in message, (action, name, message)
        wrong = "42" if isinstance(valid[name], int) else 42
        code, message = run(w, "app", action, {**valid, name: wrong})
        assert code == "invalid_params" and name in message, (action, name, message)


@pytest.mark.parametrize("action", sorted(BUILT))
def test_scope_is_checked_first(action: str) -> None:
    spec = protocol.resolve(action)
    other = "call.control" if spec.scope == "queue.control" else "queue.control"
    with pytest.raises(RwiError) as info:
        protocol.authorise(spec, frozenset({other}), BUILT)
    assert info.value.code == "forbidden"
    assert info.value.message == f"scope required: {spec.scope}"


@pytest.mark.parametrize(
    ("action", "setup"),
    [
        ("call.answer", "answered"),
        ("call.reject", "answered"),
        ("call.ring", "answered"),
        ("call.unbridge", "answered"),
        ("call.unhold", "answered"),
        ("call.hold", "dialing"),
        ("media.play", "dialing"),
        ("call.bridge", "dialing"),
        ("call.transfer", "dialing"),
        ("call.transfer.attended", "dialing"),
        ("call.set_ringback_source", "answered"),
        ("sip.message", "dialing"),
        ("sip.notify", "dialing"),
        ("sip.options_ping", "dialing"),
        ("supervisor.listen", "dialing"),
        ("supervisor.whisper", "dialing"),
        ("supervisor.barge", "dialing"),
        ("supervisor.takeover", "dialing"),
        ("media.stream.start", "dialing"),
        ("record.start", "dialing"),
        ("queue.enqueue", "dialing"),
    ],
)
def test_wrong_state(action: str, setup: str) -> None:
    w = World()
    w.open("app")
    if setup == "answered":
        outbound_answered(w, "app", "c")
    else:
        w.do("app", "call.originate", call_id="c", destination="sip:c@local")
    outbound_answered(w, "app", "d")
    code, message = run(w, "app", action, PARAMS[action]("c", "d"))
    assert code == "invalid_state" and ("'c'" in message or "'d'" in message), message


def conference(w: World, *members: str) -> None:
    """``app`` owns the conference ``room`` (at most two members) and the calls
    ``members`` in it."""
    w.open("app")
    w.open("other")
    w.do("app", "conference.create", conf_id="room", max_members=2)
    for call_id in members:
        outbound_answered(w, "app", call_id)
        w.do("app", "conference.add", conf_id="room", call_id=call_id)


@pytest.mark.parametrize("action", sorted(set(CONFERENCE) - {"conference.create"}))
def test_unknown_conference(action: str) -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "c")
    code, message = run(w, "app", action, CONFERENCE[action]("ghost", "c"))
    assert code == "not_found" and "ghost" in message


@pytest.mark.parametrize("action", MEMBER)
def test_unknown_call_in_a_conference(action: str) -> None:
    w = World()
    conference(w)
    code, message = run(w, "app", action, CONFERENCE[action]("room", "ghost"))
    assert code == "call_not_found" and "ghost" in message


@pytest.mark.parametrize("action", MEMBER)
def test_another_connections_call_in_a_conference(action: str) -> None:
    w = World()
    conference(w, "mine")
    outbound_answered(w, "app", "also")
    call_id = "also" if action == "conference.add" else "mine"
    code, message = run(w, "other", action, CONFERENCE[action]("room", call_id))
    assert code == "already_owned" and call_id in message


@pytest.mark.parametrize(
    ("action", "call_id", "says"),
    [
        ("conference.create", "", "exists already"),
        ("conference.add", "dialing", "'dialing' is dialing"),
        ("conference.add", "a", "is in conference 'room' already"),
        ("conference.add", "free", "is full (2 members)"),
        ("conference.remove", "free", "'free' is not a member"),
        ("conference.mute", "free", "'free' is not a member"),
        ("conference.unmute", "free", "'free' is not a member"),
    ],
)
def test_conference_wrong_state(action: str, call_id: str, says: str) -> None:
    w = World()
    conference(w, "a", "b")
    outbound_answered(w, "app", "free")
    w.do("app", "call.originate", call_id="dialing", destination="sip:x@local")
    code, message = run(w, "app", action, CONFERENCE[action]("room", call_id))
    assert code == "invalid_state" and says in message, message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://192.0.2.7/bot", "forbidden"),
        ("ws://127.0.0.1.attacker.example/bot", "forbidden"),
        ("wss://localhost/bot", "forbidden"),
        ("ws://127.0.0.1@attacker.example/", "invalid_params"),
        ("https://127.0.0.1/", "invalid_params"),
    ],
)
def test_stream_url_outside_the_allow_list(url: str, expected: str) -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "c")
    code, message = run(w, "app", "media.stream.start", {"call_id": "c", "url": url})
    assert code == expected and "params.url" in message, message


def test_stream_scope_is_media_stream() -> None:
    spec = protocol.resolve("media.stream.start")
    with pytest.raises(RwiError) as info:
        protocol.authorise(spec, frozenset({"call.control"}), BUILT)
    assert (info.value.code, info.value.message) == ("forbidden", "scope required: media.stream")


def test_stream_params_out_of_their_enums() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "c")
    base = {"call_id": "c", "url": "ws://127.0.0.1:9100/bot"}
    for name, value in (
        ("mode", "talk"),
        ("tracks", "all"),
        ("sample_rate", 44100),
        ("metadata", {"blob": "x" * 5000}),
    ):
        code, message = run(w, "app", "media.stream.start", {**base, name: value})
        assert code == "invalid_params" and f"params.{name}" in message, message


def queued(*members: str) -> World:
    """``app`` owns the call ``c`` waiting in the ``ring_all`` queue ``support``, whose
    logged-in ``members`` ring for it; ``a2`` is logged out; ``free`` is answered and
    in no queue."""
    agents = tuple(AgentPolicy(a, f"sip:{a}@local") for a in ("a1", "a2"))
    support = QueuePolicy("support", strategy="ring_all", members=("a1", "a2"))
    w = World(Policy(queues=(support,), agents=agents))
    w.open("app")
    w.open("other")
    for agent_id in members:
        w.do("app", "agent.login", agent_id=agent_id)
    outbound_answered(w, "app", "c")
    outbound_answered(w, "app", "free")
    w.do("app", "queue.enqueue", call_id="c", queue_id="support")
    return w


@pytest.mark.parametrize("action", ENTRY)
def test_a_call_in_no_queue(action: str) -> None:
    code, message = run(queued(), "app", action, PARAMS[action]("free", "c"))
    assert code == "not_found" and "'free' is not in a queue" in message, message


def test_another_connections_queue_entry() -> None:
    w = queued()
    for action in ENTRY:
        code, message = run(w, "other", action, PARAMS[action]("c", "free"))
        assert code == "already_owned" and "'c'" in message, (action, message)


def test_unknown_queue() -> None:
    code, message = run(queued(), "app", "queue.status", {"queue_id": "ghost"})
    assert code == "not_found" and "'ghost'" in message


@pytest.mark.parametrize(
    ("action", "params", "says"),
    [
        ("queue.enqueue", {"call_id": "c", "queue_id": "other"}, "is already in queue 'support'"),
        ("queue.unhold", {"call_id": "c"}, "'c' is not held"),
        ("queue.assign_agent", {"call_id": "c", "agent_id": "a1"}, "'a1' is ringing"),
        ("queue.dequeue", {"call_id": "c", "agent_id": "a1"}, "'a1' is ringing"),
        ("agent.login", {"agent_id": "a1"}, "'a1' is ringing"),
        ("agent.pause", {"agent_id": "a2"}, "'a2' is not logged in"),
        ("agent.unpause", {"agent_id": "a1"}, "'a1' is ringing"),
        ("agent.unpause", {"agent_id": "a2"}, "'a2' is logged_out"),
    ],
)
def test_queue_and_agent_wrong_state(action: str, params: dict[str, Any], says: str) -> None:
    code, message = run(queued("a1"), "app", action, params)
    assert code == "invalid_state" and says in message, message


def test_holding_a_held_entry_and_pausing_an_agent_logging_out() -> None:
    w = queued("a1")
    w.do("app", "agent.logout", agent_id="a1")  # kept until its offer is over
    code, message = run(w, "app", "agent.pause", {"agent_id": "a1"})
    assert code == "invalid_state" and "'a1' logs out after its call" in message, message
    w.do("app", "queue.hold", call_id="c")
    code, message = run(w, "app", "queue.hold", {"call_id": "c"})
    assert code == "invalid_state" and "'c' is already held" in message, message


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("mode", "stereo", "params.mode must be one of mixed, separate_legs"),
        ("mode", 1, "params.mode must be one of"),
        ("max_duration_secs", 0, "params.max_duration_secs must be >= 1"),
        ("max_duration_secs", 86401, "params.max_duration_secs must be <= 86400"),
        ("max_duration_secs", True, "params.max_duration_secs must be a number"),
        ("max_duration_secs", "60", "params.max_duration_secs must be a number"),
        ("beep", "yes", "params.beep must be true or false"),
        ("beep", 1, "params.beep must be true or false"),
        ("storage", "calls/x.wav", "params.storage must be an object"),
        ("storage", {"path": 42}, "params.storage.path must be a string"),
        ("storage", {"path": ""}, "params.storage.path must not be empty"),
        ("storage", {"path": "x" * 513}, "params.storage.path is longer than 512"),
        ("storage", {"path": "../x.wav"}, "params.storage.path '../x.wav' must name a file"),
        ("storage", {"path": "a/../../x.wav"}, "params.storage.path"),
        ("storage", {"path": "/etc/x.wav"}, "params.storage.path '/etc/x.wav' must name"),
        ("storage", {"path": "~/x.wav"}, "params.storage.path"),
        ("storage", {"path": "a\\x.wav"}, "params.storage.path"),
        ("storage", {"path": "."}, "params.storage.path"),
    ],
)
def test_record_start_values_out_of_range(name: str, value: Any, says: str) -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "c")
    code, message = run(w, "app", "record.start", {**PARAMS["record.start"]("c", "d"), name: value})
    assert code == "invalid_params" and says in message, message
    assert not w.state.recordings


def test_record_start_values_at_their_bounds() -> None:
    for limit in (1, 86400, 0.5 + 1):
        w = World()
        w.open("app")
        outbound_answered(w, "app", "c")
        params = {"call_id": "c", "mode": "separate_legs", "beep": True,
                  "max_duration_secs": limit, "storage": {"path": "day/one.wav"}}  # fmt: skip
        assert run(w, "app", "record.start", params) == ("success", "")


@pytest.mark.parametrize("action", ["record.pause", "record.resume", "record.stop"])
def test_no_recording_on_the_call(action: str) -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "c")
    code, message = run(w, "app", action, {"call_id": "c"})
    assert code == "not_found" and "no running recording on call 'c'" in message, message
    w.do("app", "record.start", call_id="c")
    code, message = run(w, "app", action, {"call_id": "c", "recording_id": "rec-ghost"})
    assert code == "not_found" and "'rec-ghost'" in message and "'c'" in message, message


@pytest.mark.parametrize(
    ("first", "action", "says"),
    [
        ((), "record.start", "is already recorded by 'rec-"),
        ((), "record.resume", "is recording; record.resume needs it paused"),
        (("record.pause",), "record.pause", "is paused; record.pause needs it recording"),
        (("record.stop",), "record.pause", "is stopping; record.pause needs it running"),
        (("record.stop",), "record.stop", "is stopping; record.stop needs it running"),
    ],
)
def test_recording_wrong_state(first: tuple[str, ...], action: str, says: str) -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "c")
    w.do("app", "record.start", call_id="c")
    for step in first:
        w.do("app", step, call_id="c")
    code, message = run(w, "app", action, {"call_id": "c"})
    assert code == "invalid_state" and says in message, message


def test_record_start_on_legs_not_yet_answered() -> None:
    """Offered and ringing inbound legs, early outbound ones: nothing to record yet."""
    w = World()
    w.open("app", "sales")
    w.see("sip.call.offered", call_id="in", context="sales", caller="sip:100@x")
    code, message = run(w, "app", "record.start", {"call_id": "in"})
    assert code == "invalid_state" and "'in' is not claimed yet" in message, message
    w.do("app", "call.ring", call_id="in")
    code, message = run(w, "app", "record.start", {"call_id": "in"})
    assert code == "invalid_state" and "'in' is ringing" in message, message
    w.do("app", "call.originate", call_id="out", destination="sip:out@local")
    w.see("sip.call.progress", call_id="out", status=180)
    code, message = run(w, "app", "record.start", {"call_id": "out"})
    assert code == "invalid_state" and "'out' is early" in message, message
    assert not w.state.recordings
