"""The feature registry covers the protocol: every action is handled by a feature or
listed as pending, every pushed event type is folded by some feature, and an action
listed as pending still answers ``unknown_action`` as it did."""

from __future__ import annotations

from rwi import protocol
from rwi.domain.features import (
    EVOLVERS,
    FEATURES,
    HANDLERS,
    PENDING_EVENTS,
    PUSHED,
    available,
    is_pending,
)


def test_every_protocol_action_is_handled_or_pending() -> None:
    unaccounted = [
        action for action in protocol.SPECS if action not in HANDLERS and not is_pending(action)
    ]
    assert unaccounted == [], f"actions neither handled by a feature nor pending: {unaccounted}"


def test_no_action_is_both_handled_and_pending() -> None:
    assert [action for action in HANDLERS if is_pending(action)] == []


def test_every_handled_action_is_in_the_protocol() -> None:
    assert sorted(set(HANDLERS) - set(protocol.SPECS)) == []


def test_every_pushed_event_type_has_an_evolver() -> None:
    for feature in FEATURES:
        missing = sorted(t for t in feature.pushed if t not in EVOLVERS)
        assert missing == [], f"{feature.name} pushes event types nothing folds: {missing}"


def test_pending_events_are_pushed_and_not_yet_folded() -> None:
    assert PENDING_EVENTS <= PUSHED
    assert sorted(PENDING_EVENTS & set(EVOLVERS)) == []


def test_media_features_are_offered_only_with_a_media_side() -> None:
    without = available(media=False)
    assert "session.subscribe" in without and "call.answer" not in without
    assert available(media=True) == frozenset(HANDLERS)


def test_every_action_of_the_contract_is_built() -> None:
    """Nothing is pending any more: every action of the specs has a feature's handler
    (a pending prefix would answer ``unknown_action``, never a fake success)."""
    assert [a for a in protocol.SPECS if is_pending(a)] == []
    assert set(protocol.SPECS) <= set(HANDLERS)


def test_a_timer_goes_to_the_feature_of_its_stream() -> None:
    from tests.unit.rwi.world import World

    w = World()
    w.open("app")
    w.do("app", "call.originate", call_id="slow", destination="sip:slow@local")
    # a stream kind no feature owns: nothing happens
    assert w.see("timer.fired", stream_id="vanished:v1", kind="wait_timeout") == []
    # the queues feature's, for a queue that does not exist (any more): nothing either
    assert w.see("timer.fired", stream_id="queue:q1", queue_id="q1", kind="wait_timeout") == []
    fired = {"stream_id": "call:slow", "call_id": "slow", "kind": "originate_timeout"}
    assert w.see("timer.fired", **fired) == ["call.no_answer", "call.hangup"]
