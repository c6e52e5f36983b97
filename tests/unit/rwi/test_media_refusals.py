"""The media side refusing a supervisor mode or a recording (a leg gone by the time the
effect runs): the executor reports it as an observation the domain ends the mode or the
recording with, never as ``effect.failed`` (which would hang up a call)."""

from __future__ import annotations

import asyncio
from typing import Any

from rwi.domain import Command, Observation, decide, observe
from rwi.domain.effects import StartRecording, Supervise
from rwi.domain.model import Policy
from rwi.executor import Executor
from tests.unit.rwi.world import World, bridged_pair, last, outbound_answered


class GoneLegs:
    """A media side whose legs are gone: every supervise and record is refused."""

    async def supervise(self, supervisor: str, agent: str, mode: str) -> None:
        raise KeyError(f"unknown leg {agent!r}")

    async def record(self, leg_id: str, file: str, **options: Any) -> None:
        raise KeyError(f"unknown leg {leg_id!r}")


async def reports(effects: list[Any]) -> list[Observation]:
    seen: list[Observation] = []
    done = asyncio.Event()

    async def sink(obs: Observation) -> None:
        seen.append(obs)
        if len(seen) == len(effects):
            done.set()

    executor = Executor(GoneLegs(), source=lambda p: p, music=lambda name: name)  # type: ignore[arg-type]
    executor.start(sink)
    executor.submit(effects)
    await asyncio.wait_for(done.wait(), 5)
    await executor.close()
    return seen


async def test_refusals_come_back_as_their_own_observations() -> None:
    seen = await reports(
        [
            Supervise("sup", "leg_b", "whisper"),
            StartRecording("rec-1", "leg_b", "leg_b-rec-1.wav", "mixed", False, None),
        ]
    )
    assert [(o.type, o.data) for o in seen] == [
        ("media.supervise.failed", {"supervisor_call_id": "sup", "target_call_id": "leg_b",
                                    "mode": "whisper", "error": "\"unknown leg 'leg_b'\""}),
        ("media.recording.failed", {"recording_id": "rec-1",
                                    "error": "\"unknown leg 'leg_b'\""}),
    ]  # fmt: skip


def test_a_refused_mode_stops_and_the_calls_go_on() -> None:
    w = World(Policy())
    bridged_pair(w)
    outbound_answered(w, "app", "sup")
    scopes = frozenset({"call.control", "supervisor.control"})
    watch = {"supervisor_call_id": "sup", "target_call_id": "leg_b"}
    cmd = Command("supervisor.whisper", "a1", watch, "app", "app", scopes, nonce="n1")
    w.apply(list(decide(w.state, cmd, w.now).events))
    refused = {**watch, "mode": "whisper", "error": "unknown leg"}

    # a refusal of an earlier mode does not end the one now in place
    stale = observe(
        w.state, Observation("media.supervise.failed", {**refused, "mode": "listen"}), w.now
    )
    assert stale == ()
    events = observe(w.state, Observation("media.supervise.failed", refused), w.now)
    assert [(e.type, e.data["reason"]) for e in events] == [("supervisor.mode.stopped", "failed")]
    w.apply(list(events))
    assert w.state.supervisions == {}
    assert {c: w.state.calls[c].state for c in ("leg_a", "leg_b", "sup")} == {
        "leg_a": "bridged", "leg_b": "bridged", "sup": "answered"}  # fmt: skip
    assert last(w, "supervisor.mode.stopped")["mode"] == "whisper"
    assert w.replayed() == w.state.snapshot()
