"""The call-history fold, pure: states mirror evolve, targets, retiring, odd input."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from rwi.domain import State, evolve
from rwi.domain.model import Emit
from rwi.projections.fields import CROSS, FIELDS, MAX_REF, SLOTS, S
from rwi.projections.fold import HANDLERS, Fold, apply, targets
from rwi.projections.legs import CallHistory, timestamp

_seq = iter(range(1, 10_000))


def row(etype: str, own: str | None, t: int = 0, **fields: Any) -> tuple[Any, ...]:
    """An input row as the SQL builds it: slots in FIELDS order, text values."""
    slots: list[Any] = [None] * SLOTS
    for i, path in enumerate(FIELDS[etype]):
        value = fields.get(path.replace(".", "_"))
        slots[i] = None if value is None else str(value)
    return (next(_seq), etype, f"2026-03-14T09:00:{t:02d}.000Z", own, *slots)


def test_every_folded_type_has_fields_and_every_cross_slot_is_an_indexed_key() -> None:
    assert set(HANDLERS) == set(FIELDS)
    spec = importlib.util.spec_from_file_location(
        "m0002", Path(__file__).parents[3] / "migrations/versions/0002_projections.py"
    )
    assert spec is not None and spec.loader is not None
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    for etype, slots in CROSS.items():
        for slot in slots:
            key = FIELDS[etype][slot - S].split(".")[-1]
            assert key in migration.CALL_REF_KEYS, (etype, key)


def test_states_follow_evolve_through_ring_answer_bridge_hold_unbridge_hangup() -> None:
    state = State()
    fold = Fold()
    script: list[tuple[str, str, dict[str, Any]]] = [
        ("call:c1", "call.incoming", {"call_id": "c1", "context": "s", "caller": "a"}),
        ("call:c1", "call.ringing", {"call_id": "c1"}),
        ("call:a1", "call.originated", {"call_id": "a1", "destination": "sip:x@y", "owner": "k"}),
        ("call:a1", "call.ringing", {"call_id": "a1"}),
        ("call:a1", "call.early_media", {"call_id": "a1"}),
        ("call:a1", "call.answered", {"call_id": "a1"}),
        ("call:c1", "call.answered", {"call_id": "c1"}),
        ("call:c1", "call.bridged", {"call_id": "c1", "leg_a": "c1", "leg_b": "a1"}),
        ("call:c1", "media.hold.started", {"call_id": "c1"}),
        ("call:a1", "call.unbridged", {"call_id": "a1", "leg_a": "c1", "leg_b": "a1"}),
        ("call:c1", "media.hold.stopped", {"call_id": "c1"}),
        ("call:c1", "call.hangup", {"call_id": "c1", "reason": "caller"}),
    ]  # fmt: skip
    for t, (stream, etype, data) in enumerate(script):
        evolve(state, Emit(stream, etype, data, {"ts": f"2026-03-14T09:00:{t:02d}.000Z"}))
        fields = {k: v for k, v in data.items() if k != "call_id"}
        fold.apply([row(etype, stream[5:], t, **fields)])
        for cid, history in fold.calls.items():
            leg = history.legs[-1]
            live = state.calls.get(cid)
            if live is None:
                assert leg.state == "ended"
            else:
                assert (leg.state, leg.bridged_with) == (live.state, live.bridged_with), etype
    c1 = fold.calls["c1"].legs[0]
    assert [(s.kind, s.other, s.started, s.ended) for s in c1.segments] == [
        ("bridge", "a1", "2026-03-14T09:00:07.000Z", "2026-03-14T09:00:09.000Z"),
        ("hold", None, "2026-03-14T09:00:08.000Z", "2026-03-14T09:00:10.000Z"),
    ]


def test_targets_are_the_own_call_then_the_named_ones_once_and_not_too_long() -> None:
    bridged = row("call.bridged", "c1", leg_a="c1", leg_b="a1")
    assert list(targets(bridged)) == ["c1", "a1"]
    command = row("rwi.command", None, params_call_id="x" * (MAX_REF + 1))
    assert list(targets(command)) == []
    answered = row("call.answered", "c1")
    assert list(targets(answered)) == ["c1"]
    watch = row("supervisor.listen.started", "s1", supervisor_call_id="s1", target_call_id="a1")
    assert list(targets(watch)) == ["s1", "a1"]


def test_a_retired_call_mentioned_again_is_late_and_not_folded_twice() -> None:
    fold = Fold()
    fold.apply([row("call.incoming", "c1", 0), row("call.hangup", "c1", 1, reason="caller")])
    retired = list(fold.retire(10_000))
    assert [table for table, _ in retired] == ["calls"]
    assert fold.calls == {} and fold.retired == {"c1"}
    fold.apply([row("call.incoming", "c1", 5)])
    assert fold.late == {"c1"} and fold.calls == {}


def test_a_call_still_going_is_not_retired() -> None:
    fold = Fold()
    fold.apply([row("call.incoming", "c1", 0)])
    assert list(fold.retire(10_000)) == [] and "c1" in fold.calls


def test_only_restricts_the_calls_folded() -> None:
    fold = Fold(only={"a1"})
    fold.apply([row("call.bridged", "c1", leg_a="c1", leg_b="a1")])
    assert list(fold.calls) == ["a1"]


def test_failed_commands_change_nothing_and_successful_ones_name_the_owner() -> None:
    history = CallHistory("c1")
    apply(history, row("call.incoming", "c1"))
    apply(history, row("rwi.command", None, params_call_id="c1", action="call.answer",
                      connection_id="k1", token="bad", outcome_response="error"))  # fmt: skip
    apply(history, row("call.claimed", "c1", connection_id="k1"))
    assert history.legs[0].owner_token is None
    apply(history, row("rwi.command", None, params_call_id="c1", action="call.answer",
                      connection_id="k2", token="app", outcome_response="success"))  # fmt: skip
    apply(history, row("call.claimed", "c1", connection_id="k2"))
    assert history.legs[0].owner_token == "app"


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-03-14T09:15:22.123Z", True),
        ("2026-03-14T09:15:22Z", True),
        ("2026-02-30T09:15:22Z", False),
        ("2026-03-14 09:15:22Z", False),
        ("2026-03-14T09:15:22+01:00", False),
        ("yesterday", False),
        ("", False),
        (None, False),
    ],
)
def test_timestamps_that_are_not_the_wire_form_are_null(text: str | None, ok: bool) -> None:
    assert (timestamp(text) is not None) is ok
