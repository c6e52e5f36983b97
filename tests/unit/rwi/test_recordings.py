"""Recordings (contract §8), decided, folded and planned purely (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from rwi.domain import Command, Observation, decide, observe
from rwi.domain.decide import restarted, shutting_down
from rwi.domain.effects import (
    CloseRecordingFile,
    Effect,
    PauseRecording,
    ResumeRecording,
    StartRecording,
    StopRecording,
)
from rwi.domain.model import Emit, Policy
from rwi.domain.plan import plan
from rwi.domain.recordings import storage_file
from rwi.errors import RwiError
from tests.unit.rwi.world import World, bridged_pair, last, outbound_answered


def run(w: World, events: tuple[Emit, ...] | list[Emit]) -> list[Effect]:
    """Apply ``events`` as the service does: each planned on the state before it."""
    effects: list[Effect] = []
    for event in events:
        effects += plan(w.state, event)
        w.apply([event])
    return effects


def command(w: World, action: str, **params: Any) -> tuple[Any, list[Effect]]:
    w.n += 1
    cmd = Command(action, f"a{w.n}", params, "app", "app", frozenset(), nonce=f"nonce{w.n:08d}")
    decision = decide(w.state, cmd, w.now)
    return decision.data, run(w, decision.events)


def media(w: World, obs: str, **data: Any) -> list[Emit]:
    events = observe(w.state, Observation(obs, data), w.now)
    run(w, events)
    return list(events)


def recording_world() -> World:
    w = World(Policy(recordings_dir="/var/rec"))
    bridged_pair(w)
    return w


def test_scenario_8_start_pause_resume_stop() -> None:
    w = recording_world()
    data, effects = command(
        w, "record.start", call_id="leg_a", mode="mixed", beep=True, max_duration_secs=3600
    )
    rid = data["recording_id"]
    assert rid.startswith("rec-")
    assert data == {"recording_id": rid, "call_id": "leg_a",
                    "path": f"/var/rec/leg_a-{rid}.wav"}  # fmt: skip
    assert effects == [StartRecording(rid, "leg_a", f"leg_a-{rid}.wav", "mixed", True, 3600.0)]
    started = last(w, "record.started")
    assert (started["recording_id"], started["call_id"], started["mode"]) == (rid, "leg_a", "mixed")

    w.later(10)
    assert command(w, "record.pause", call_id="leg_a") == (
        {"recording_id": rid},
        [PauseRecording(rid)],
    )
    assert w.state.recordings[rid].paused
    w.later(4)
    data, effects = command(w, "record.resume", call_id="leg_a", recording_id=rid)
    assert (data, effects) == ({"recording_id": rid}, [ResumeRecording(rid)])
    assert last(w, "record.resumed")["paused_secs"] == 4.0
    w.later(6)
    assert command(w, "record.stop", call_id="leg_a") == (
        {"recording_id": rid},
        [StopRecording(rid)],
    )
    # the media side reports the file closed: record.stopped says what is on disk
    events = media(
        w,
        "media.recording.finished",
        recording_id=rid,
        duration_secs=16.02,
        size_bytes=256364,
        reason="stop",
    )
    assert [(e.type, e.stream_id) for e in events] == [("record.stopped", "call:leg_a")]
    assert events[0].data == {
        "call_id": "leg_a",
        "recording_id": rid,
        "duration_secs": 16.02,
        "paused_secs": 4.0,
        "path": f"/var/rec/leg_a-{rid}.wav",
        "size_bytes": 256364,
        "reason": "rwi",
    }
    assert w.state.recordings == {}
    # a second start on the same call is a new recording
    data, _ = command(w, "record.start", call_id="leg_a", storage={"path": "calls/a.wav"})
    assert w.state.recordings[data["recording_id"]].path == "/var/rec/calls/a.wav"
    assert w.replayed() == w.state.snapshot()


def test_stopped_while_paused_counts_the_open_pause() -> None:
    w = recording_world()
    rid = command(w, "record.start", call_id="leg_b", mode="separate_legs")[0]["recording_id"]
    w.later(5)
    command(w, "record.pause", call_id="leg_b")
    w.later(3)
    command(w, "record.stop", call_id="leg_b")
    w.later(1)
    (stopped,) = media(
        w, "media.recording.finished", recording_id=rid, duration_secs=5.0, reason="stop"
    )
    assert (stopped.data["paused_secs"], stopped.data["reason"]) == (4.0, "rwi")


def test_hangup_and_max_duration_end_a_recording() -> None:
    """The media side says why: a hangup right at the limit (the file as long as the
    limit) is ``hangup``, the limit is ``max_duration`` (nothing guessed from lengths)."""
    w = recording_world()
    rid = command(w, "record.start", call_id="leg_a", max_duration_secs=30)[0]["recording_id"]
    (stopped,) = media(
        w, "media.recording.finished", recording_id=rid, duration_secs=29.0, reason="max_duration"
    )
    assert stopped.data["reason"] == "max_duration"
    rid = command(w, "record.start", call_id="leg_a", max_duration_secs=30)[0]["recording_id"]
    (stopped,) = media(
        w, "media.recording.finished", recording_id=rid, duration_secs=30.0, reason="leg_gone"
    )
    assert stopped.data["reason"] == "hangup"
    rid = command(w, "record.start", call_id="leg_a", max_duration_secs=30)[0]["recording_id"]
    w.do("app", "call.hangup", call_id="leg_a")
    # the engine finalises the recording when the leg goes
    (stopped,) = media(
        w, "media.recording.finished", recording_id=rid, duration_secs=2.5, reason="leg_gone"
    )
    assert (stopped.type, stopped.data["reason"]) == ("record.stopped", "hangup")
    assert w.state.recordings == {}
    assert w.replayed() == w.state.snapshot()


def test_a_stop_asked_for_keeps_its_reason_whatever_the_media_side_says() -> None:
    w = recording_world()
    rid = command(w, "record.start", call_id="leg_a", max_duration_secs=30)[0]["recording_id"]
    command(w, "record.stop", call_id="leg_a")
    (stopped,) = media(
        w, "media.recording.finished", recording_id=rid, duration_secs=30.0, reason="max_duration"
    )
    assert stopped.data["reason"] == "rwi"
    rid = command(w, "record.start", call_id="leg_b")[0]["recording_id"]
    (stopped,) = media(w, "media.recording.finished", recording_id=rid, reason="closed")
    assert stopped.data["reason"] == "system"


def test_a_log_from_before_the_media_side_said_why_replays_the_same() -> None:
    """Reports logged without ``reason`` are read as they were (the length decided), and
    the ``record.stopped`` events logged from them fold to the same state."""
    w = recording_world()
    rid = command(w, "record.start", call_id="leg_a", max_duration_secs=30)[0]["recording_id"]
    (stopped,) = media(w, "media.recording.finished", recording_id=rid, duration_secs=29.97)
    assert stopped.data["reason"] == "max_duration"
    rid = command(w, "record.start", call_id="leg_a", max_duration_secs=30)[0]["recording_id"]
    (stopped,) = media(w, "media.recording.finished", recording_id=rid, duration_secs=12.0)
    assert stopped.data["reason"] == "hangup"
    assert w.replayed() == w.state.snapshot()


def test_recording_follows_its_call_through_hold_and_transfers() -> None:
    """The recording is of its leg: nothing about it changes while the leg is held,
    unbridged, transferred; only its own end stops it."""
    w = recording_world()
    rid = command(w, "record.start", call_id="leg_a")[0]["recording_id"]
    before = w.state.snapshot()["recordings"]
    w.do("app", "call.hold", call_id="leg_a")
    w.do("app", "call.unhold", call_id="leg_a")
    w.do("app", "call.unbridge", call_id="leg_a")
    outbound_answered(w, "app", "leg_c")
    w.do("app", "call.bridge", leg_a="leg_a", leg_b="leg_c")
    # the customer (leg_a) waits while agent leg_c consults; completing hangs leg_c up
    consult = w.do("app", "call.transfer.attended", call_id="leg_a", target="sip:x@local")[
        "consultation_call_id"
    ]
    w.see("sip.call.answered", call_id=consult)
    w.do("app", "call.transfer.complete", call_id="leg_a", consultation_call_id=consult)
    assert w.state.calls["leg_a"].bridged_with == consult and "leg_c" not in w.state.calls
    assert w.state.snapshot()["recordings"] == before
    assert not any(e.type.startswith("record.") for e in w.log if e.type != "record.started")
    assert w.fail("app", "record.start", call_id="leg_a") == (
        "invalid_state",
        f"call 'leg_a' is already recorded by {rid!r}; record.start needs it stopped first",
    )


def test_errors() -> None:
    w = recording_world()
    w.open("other")
    assert w.fail("app", "record.start", call_id="nope")[0] == "call_not_found"
    assert w.fail("other", "record.start", call_id="leg_a")[0] == "already_owned"
    assert w.fail("app", "record.pause", call_id="leg_a") == (
        "not_found",
        "no running recording on call 'leg_a'",
    )
    for path in ("../x.wav", "/etc/x.wav", "a/../../x.wav", "~/x.wav", "", ".", "a\\b"):
        code, message = w.fail("app", "record.start", call_id="leg_a", storage={"path": path})
        assert code == "invalid_params" and "params.storage.path" in message
    rid = command(w, "record.start", call_id="leg_a", storage={"path": "x.wav"})[0]["recording_id"]
    assert w.fail("app", "record.start", call_id="leg_b", storage={"path": "./x.wav"})[0] == (
        "invalid_params"
    )
    assert w.fail("app", "record.resume", call_id="leg_a")[0] == "invalid_state"
    assert w.fail("app", "record.stop", call_id="leg_a", recording_id="rec-other") == (
        "not_found",
        "no 'rec-other' recording on call 'leg_a'",
    )
    command(w, "record.pause", call_id="leg_a")
    assert w.fail("app", "record.pause", call_id="leg_a")[0] == "invalid_state"
    command(w, "record.stop", call_id="leg_a")
    code, message = w.fail("app", "record.stop", call_id="leg_a")
    assert (code, message) == (
        "invalid_state",
        f"recording {rid!r} is stopping; record.stop needs it running",
    )
    # a ringing leg cannot be recorded
    w.do("app", "call.originate", call_id="leg_r", destination="sip:r@local")
    assert w.fail("app", "record.start", call_id="leg_r")[0] == "invalid_state"


def test_storage_file_stays_inside() -> None:
    assert storage_file("./c.wav") == "c.wav"
    assert storage_file("calls//2026/c.wav") == "calls/2026/c.wav"
    # the media engine refuses any '..' when it opens the file: so does the command
    with pytest.raises(RwiError):
        storage_file("a/b/../c.wav")


def test_a_failed_start_ends_the_recording_not_the_call() -> None:
    w = recording_world()
    rid = command(w, "record.start", call_id="leg_a")[0]["recording_id"]
    (failed,) = media(w, "media.recording.failed", recording_id=rid, error="disk full")
    assert failed.data == {"call_id": "leg_a", "recording_id": rid, "error": "disk full",
                           "path": f"/var/rec/leg_a-{rid}.wav"}  # fmt: skip
    assert w.state.recordings == {} and w.state.calls["leg_a"].state == "bridged"


def test_a_recording_cut_by_a_restart_is_closed_from_disk() -> None:
    w = recording_world()
    rid = command(w, "record.start", call_id="leg_a")[0]["recording_id"]
    w.later(2)
    command(w, "record.pause", call_id="leg_a")
    w.later(3)
    events = restarted(w.state, "2026-03-14T09:00:05.000Z")
    stopping = [e for e in events if e.type.startswith("record.")]
    assert [(e.type, e.data["reason"]) for e in stopping] == [("record.stopping", "system")]
    assert run(w, stopping) == [CloseRecordingFile(rid, f"/var/rec/leg_a-{rid}.wav")]
    (stopped,) = media(
        w,
        "media.recording.finished",
        recording_id=rid,
        duration_secs=2.0,
        size_bytes=32044,
        reason="closed",
    )
    assert (stopped.data["reason"], stopped.data["duration_secs"]) == ("system", 2.0)
    assert stopped.data["paused_secs"] == 3.0
    assert w.replayed() == w.state.snapshot()


def test_a_clean_stop_stops_running_recordings_through_the_media_side() -> None:
    w = recording_world()
    rid = command(w, "record.start", call_id="leg_a")[0]["recording_id"]
    w.later(2)
    events = shutting_down(w.state, w.now)
    assert [(e.type, e.data["recording_id"], e.data["reason"]) for e in events] == [
        ("record.stopping", rid, "system")
    ]
    # the recorder still runs in this process: it is stopped, not closed from disk
    assert run(w, events) == [StopRecording(rid)]
    (stopped,) = media(
        w,
        "media.recording.finished",
        recording_id=rid,
        duration_secs=2.0,
        size_bytes=32044,
        reason="stop",
    )
    assert (stopped.data["reason"], stopped.data["duration_secs"]) == ("system", 2.0)
    assert w.state.recordings == {}
    assert w.replayed() == w.state.snapshot()

    # one already stopping finishes as asked (``reason: rwi``)
    command(w, "record.start", call_id="leg_b")
    command(w, "record.stop", call_id="leg_b")
    assert shutting_down(w.state, w.now) == []


def test_events_go_to_the_owner_and_to_who_started_it() -> None:
    from rwi.domain.delivery import recipients

    w = recording_world()
    rid = command(w, "record.start", call_id="leg_a")[0]["recording_id"]
    w.do("app", "call.hangup", call_id="leg_a")
    stopped = observe(
        w.state, Observation("media.recording.finished", {"recording_id": rid}), w.now
    )[0]
    assert recipients(w.state, stopped) == {"app"}
