"""Conferences decided purely: members join (leaving a bridge), mute, leave (removed,
hung up, destroyed), with the media effects each needs, the errors of §2, and the
state a replay of the log rebuilds."""

from __future__ import annotations

from rwi.domain.delivery import recipients
from rwi.domain.effects import (
    ConferenceAdd,
    ConferenceMute,
    ConferenceRemove,
    Hold,
    StartRecording,
    Unbridge,
    Unhold,
)
from rwi.domain.plan import plan
from tests.unit.rwi.world import World, outbound_answered


def effects(w: World, since: int) -> list[object]:
    fresh = World()
    out: list[object] = []
    for event in w.log:
        if len(fresh.log) >= since:
            out += plan(fresh.state, event)
        fresh.apply([event])
    return out


def test_a_conference_of_four_with_mute_remove_hangup_and_destroy() -> None:
    w = World()
    w.open("app")
    w.open("other")
    assert w.do("app", "conference.create", conf_id="room", max_members=4) == {
        "conf_id": "room", "max_members": 4,
    }  # fmt: skip
    for leg in ("a", "b", "c", "d"):
        outbound_answered(w, "app", leg)
    w.do("app", "call.bridge", leg_a="a", leg_b="b")
    start = len(w.log)
    for n, leg in enumerate(("a", "b", "c", "d"), 1):
        assert w.do("app", "conference.add", conf_id="room", call_id=leg)["members"] == n
    assert [e.type for e in w.log[start:start + 2]] == [
        "call.unbridged", "conference.member_joined",
    ]  # fmt: skip
    assert effects(w, start) == [
        Unbridge("a", "b"), ConferenceAdd("room", "a"), ConferenceAdd("room", "b"),
        ConferenceAdd("room", "c"), ConferenceAdd("room", "d"),
    ]  # fmt: skip
    assert w.state.calls["a"].bridged_with is None
    assert recipients(w.state, w.log[-1]) == {"app"}

    start = len(w.log)
    w.do("app", "conference.mute", conf_id="room", call_id="c")
    w.do("app", "conference.mute", conf_id="room", call_id="c")  # already muted: nothing
    w.do("app", "conference.unmute", conf_id="room", call_id="c")
    w.do("app", "conference.remove", conf_id="room", call_id="d")
    assert effects(w, start) == [
        ConferenceMute("room", "c", True), ConferenceMute("room", "c", False),
        ConferenceRemove("room", "d"),
    ]  # fmt: skip
    assert w.state.calls["d"].state.value == "answered"  # removed, still up

    start = len(w.log)
    w.see("sip.call.ended", call_id="c", sip_status=200, by="remote", cause="bye")
    left = [e for e in w.log[start:] if e.type == "conference.member_left"]
    assert [(e.data["call_id"], e.data["reason"], e.data["members"]) for e in left] == [
        ("c", "hangup", 2)
    ]
    assert effects(w, start) == []  # the leg is gone from the mix with its media

    status = w.do("app", "conference.status", conf_id="room")
    assert status == {"conf_id": "room", "max_members": 4, "members": [
        {"call_id": "a", "muted": False}, {"call_id": "b", "muted": False},
    ]}  # fmt: skip
    start = len(w.log)
    w.do("app", "conference.destroy", conf_id="room")
    assert [(e.type, e.data.get("reason")) for e in w.log[start:]] == [
        ("conference.member_left", "destroyed"), ("conference.member_left", "destroyed"),
        ("conference.destroyed", None),
    ]  # fmt: skip
    assert effects(w, start) == [ConferenceRemove("room", "a"), ConferenceRemove("room", "b")]
    assert "room" not in w.state.conferences
    assert w.state.calls["a"].state.value == "answered"  # calls stay up
    assert w.replayed() == w.state.snapshot()


def test_conference_errors() -> None:
    w = World()
    w.open("app")
    w.open("other")
    assert w.fail("app", "conference.add", conf_id="nope", call_id="a")[0] == "not_found"
    assert w.fail("app", "conference.status", conf_id="nope")[0] == "not_found"
    assert w.fail("app", "conference.destroy", conf_id="nope")[0] == "not_found"
    w.do("app", "conference.create", conf_id="room", max_members=2)
    assert w.fail("app", "conference.create", conf_id="room")[0] == "invalid_state"
    w.do("app", "call.originate", call_id="dialing", destination="sip:x@local")
    code, message = w.fail("app", "conference.add", conf_id="room", call_id="dialing")
    assert code == "invalid_state" and "dialing" in message
    for leg in ("a", "b", "c"):
        outbound_answered(w, "app", leg)
    assert w.fail("other", "conference.add", conf_id="room", call_id="a")[0] == "already_owned"
    assert w.fail("app", "conference.add", conf_id="room", call_id="ghost")[0] == ("call_not_found")
    w.do("app", "conference.add", conf_id="room", call_id="a")
    assert w.fail("app", "conference.add", conf_id="room", call_id="a")[0] == "invalid_state"
    w.do("app", "conference.add", conf_id="room", call_id="b")
    code, message = w.fail("app", "conference.add", conf_id="room", call_id="c")
    assert code == "invalid_state" and "full" in message
    for action in ("conference.remove", "conference.mute", "conference.unmute"):
        code, message = w.fail("app", action, conf_id="room", call_id="c")
        assert code == "invalid_state" and "not a member" in message


def conference_of_three(w: World) -> None:
    w.open("app")
    w.do("app", "conference.create", conf_id="room")
    for leg in ("a", "b", "c"):
        outbound_answered(w, "app", leg)
        w.do("app", "conference.add", conf_id="room", call_id=leg)


def test_a_held_member_stays_a_member_and_hears_music_until_unheld() -> None:
    w = World()
    conference_of_three(w)
    start = len(w.log)
    w.do("app", "call.hold", call_id="b")
    # the engine's hold takes the leg out of every mix (its voice too) and plays it
    # music; the conference keeps it as a member, so unhold puts it back
    assert effects(w, start) == [Hold("b")]
    assert w.state.calls["b"].state.value == "held"
    assert list(w.state.conferences["room"].members) == ["a", "b", "c"]
    start = len(w.log)
    w.do("app", "call.unhold", call_id="b")
    assert effects(w, start) == [Unhold("b")]
    assert w.state.calls["b"].state.value == "answered"
    # a held member leaves like any other: by remove or by its hangup
    w.do("app", "call.hold", call_id="c")
    w.do("app", "conference.remove", conf_id="room", call_id="c")
    assert list(w.state.conferences["room"].members) == ["a", "b"]
    assert w.replayed() == w.state.snapshot()


def test_bridging_a_member_is_refused_until_it_is_removed() -> None:
    w = World()
    conference_of_three(w)
    outbound_answered(w, "app", "d")
    for legs in (("a", "d"), ("d", "a"), ("a", "b")):
        code, message = w.fail("app", "call.bridge", leg_a=legs[0], leg_b=legs[1])
        assert code == "invalid_state" and "in conference 'room'" in message, message
    assert w.state.calls["a"].bridged_with is None
    w.do("app", "conference.remove", conf_id="room", call_id="a")
    w.do("app", "call.bridge", leg_a="a", leg_b="d")
    assert w.state.calls["a"].bridged_with == "d"


def test_recording_a_member_records_its_own_leg() -> None:
    """What a member hears is the conference (the engine's N-1 mix of that leg): a
    recording of the member's call is of that leg alone, whatever else it joins."""
    w = World()
    conference_of_three(w)
    start = len(w.log)
    rid = w.do("app", "record.start", call_id="a")["recording_id"]
    assert [e for e in effects(w, start) if isinstance(e, StartRecording)] == [
        StartRecording(rid, "a", f"a-{rid}.wav")
    ]
    w.do("app", "conference.remove", conf_id="room", call_id="a")
    assert w.state.recordings[rid].call_id == "a"  # leaving does not stop it


def test_anyone_may_look_at_a_conference_only_its_open_creator_may_destroy_it() -> None:
    from rwi.domain.model import Emit

    w = World()
    w.open("app")
    w.open("dashboard")
    w.open("other")
    w.do("app", "conference.create", conf_id="room")
    outbound_answered(w, "app", "a")
    w.do("app", "conference.add", conf_id="room", call_id="a")
    # another connection may look, and join its own calls (a meet-me room)...
    assert w.do("dashboard", "conference.status", conf_id="room")["members"] == [
        {"call_id": "a", "muted": False},
    ]  # fmt: skip
    outbound_answered(w, "other", "b")
    assert w.do("other", "conference.add", conf_id="room", call_id="b")["members"] == 2
    # ...but neither end it nor touch a member it does not own
    code, message = w.fail("other", "conference.destroy", conf_id="room")
    assert code == "already_owned" and "created by another connection" in message
    assert w.fail("other", "conference.mute", conf_id="room", call_id="a")[0] == "already_owned"
    assert "room" in w.state.conferences
    # once the creator's connection has closed, any connection may end it
    w.apply([Emit("session:app", "session.closed", {"connection_id": "app"})])
    assert w.do("other", "conference.destroy", conf_id="room") == {"conf_id": "room"}
    assert "room" not in w.state.conferences
    assert w.replayed() == w.state.snapshot()
