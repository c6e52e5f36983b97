"""Frame parsing, action resolution, aliases and parameter validation (pure)."""

from __future__ import annotations

import pytest

from rwi import protocol
from rwi.errors import RwiError


def code_of(fn: object, *args: object) -> tuple[str, str]:
    with pytest.raises(RwiError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.code, info.value.message


def test_parse_frame_defaults_and_generated_action_id() -> None:
    request = protocol.parse_frame('{"action": "session.list_calls"}')
    assert request.params == {} and request.meta == {}
    assert request.action_id.startswith("srv-")
    request = protocol.parse_frame('{"action": "a", "action_id": "r1", "params": null}')
    assert (request.action_id, request.params) == ("r1", {})


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("{", "parse_error", "not valid JSON"),
        ("[" * 100000, "parse_error", "not valid JSON"),
        ('{"action": "a", "params": {"x": Infinity}}', "parse_error", "Infinity is not a JSON"),
        ('{"action": "a", "params": {"x": [NaN]}}', "parse_error", "NaN is not a JSON value"),
        ('{"action": "a", "params": {"x": -Infinity}}', "parse_error", "not a JSON value"),
        ('"text"', "invalid_request", "JSON object"),
        ('{"action": null}', "invalid_request", "action is required"),
        ('{"action": ["x"]}', "invalid_request", "action must be a string"),
        ('{"action": "a", "action_id": 5}', "invalid_request", "action_id"),
        ('{"action": "a", "action_id": ""}', "invalid_request", "action_id"),
        ('{"action": "a", "params": 1}', "invalid_request", "params must be an object"),
        ('{"action": "a", "meta": {"idempotency_key": 1}}', "invalid_request", "idempotency_key"),
    ],
)
def test_malformed_frames(text: str, code: str, words: str) -> None:
    got_code, message = code_of(protocol.parse_frame, text)
    assert got_code == code
    assert words in message


def test_pascal_case_aliases() -> None:
    assert protocol.resolve("Subscribe").name == "session.subscribe"
    assert protocol.resolve("Originate").name == "call.originate"
    assert protocol.resolve("Answer").name == "call.answer"
    assert protocol.resolve("MediaPlay").name == "media.play"
    assert protocol.resolve("CallTransferAttended").name == "call.transfer.attended"
    assert protocol.resolve("TransferAttended").name == "call.transfer.attended"
    assert protocol.resolve("SipOptionsPing").name == "sip.options_ping"
    # "Hold" is call.hold; queue.hold keeps its namespace
    assert protocol.resolve("Hold").name == "call.hold"
    assert protocol.resolve("QueueHold").name == "queue.hold"
    assert code_of(protocol.resolve, "Fly")[0] == "unknown_action"


def test_scope_is_checked_before_availability() -> None:
    spec = protocol.resolve("supervisor.listen")
    assert code_of(protocol.authorise, spec, frozenset({"call.control"}), frozenset()) == (
        "forbidden",
        "scope required: supervisor.control",
    )
    code, message = code_of(
        protocol.authorise, spec, frozenset({"supervisor.control"}), frozenset()
    )
    assert code == "unknown_action" and "not available" in message


@pytest.mark.parametrize(
    ("action", "params", "words"),
    [
        ("call.originate", {"call_id": "a"}, "params.destination is required"),
        ("call.originate", {"call_id": "a b", "destination": "x"}, "params.call_id must be"),
        ("call.originate", {"call_id": "a", "destination": "x", "timeout_secs": 0}, ">= 1"),
        ("call.originate", {"call_id": "a", "destination": "x", "timeout_secs": True}, "number"),
        (
            "call.originate",
            {"call_id": "a", "destination": "x", "extra_headers": {"Via": "evil"}},
            "only X- headers",
        ),
        (
            "call.originate",
            {"call_id": "a", "destination": "x", "extra_headers": {"X-A": "a\r\nVia: x"}},
            "single-line",
        ),
        ("call.reject", {"call_id": "a", "reason": "rude"}, "params.reason must be one of"),
        ("call.hangup", {"call_id": "a", "code": 200}, "params.code must be >= 400"),
        ("media.play", {"call_id": "a", "source": {"uri": "x"}}, "params.source.type is required"),
        ("media.play", {"call_id": "a", "source": {"type": "mp3"}}, "params.source.type must be"),
        ("session.subscribe", {"contexts": []}, "1 to 100 items"),
        ("session.subscribe", {}, "params.contexts or params.queues is required"),
        ("session.unsubscribe", {"queues": ["a b"]}, "params.queues[0]"),
    ],
)
def test_param_validation_names_the_field(
    action: str, params: dict[str, object], words: str
) -> None:
    code, message = code_of(protocol.resolve(action).validate, params)
    assert code == "invalid_params"
    assert words in message


def test_valid_params_pass_through() -> None:
    params = {
        "call_id": "leg_a",
        "destination": "sip:1234567890@trunk",
        "caller_id": "2000",
        "timeout_secs": 30,
        "extra_headers": {"X-Campaign": "spring"},
        "hold_music": {"type": "file", "uri": "hold.wav", "loop": True},
    }
    assert protocol.resolve("call.originate").validate(params) == params
