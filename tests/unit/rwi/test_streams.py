"""Audio streams (contract §12), decided, folded and planned purely (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from rwi.domain import Command, Observation, decide, observe
from rwi.domain.decide import restarted
from rwi.domain.delivery import recipients
from rwi.domain.effects import Effect, StartStream, StopStream
from rwi.domain.model import Emit, Policy
from rwi.domain.plan import plan
from rwi.errors import RwiError
from tests.unit.rwi.world import World, bridged_pair, last

BOT = "ws://127.0.0.1:9100/bot"


def run(w: World, events: tuple[Emit, ...] | list[Emit]) -> list[Effect]:
    """Apply ``events`` as the service does: each planned on the state before it."""
    effects: list[Effect] = []
    for event in events:
        effects += plan(w.state, event)
        w.apply([event])
    return effects


def command(w: World, action: str, cid: str = "app", **params: Any) -> tuple[Any, list[Effect]]:
    w.n += 1
    cmd = Command(action, f"a{w.n}", params, cid, cid, frozenset(), nonce=f"{w.n:012d}nonce")
    decision = decide(w.state, cmd, w.now)
    return decision.data, run(w, decision.events)


def media(w: World, obs: str, **data: Any) -> list[Emit]:
    events = observe(w.state, Observation(obs, data), w.now)
    run(w, events)
    return list(events)


def world(policy: Policy | None = None) -> World:
    w = World(policy)
    bridged_pair(w)
    return w


def ended(w: World, sid: str, reason: str, **counts: int) -> list[Emit]:
    data = {"frames_sent": 10, "frames_received": 4, "frames_dropped": 0, **counts}
    return media(w, "media.stream.ended", stream_id=sid, call_id="leg_a", reason=reason, **data)


def test_start_plans_the_stream_with_its_first_frame() -> None:
    w = world()
    data, effects = command(
        w,
        "media.stream.start",
        call_id="leg_a",
        url=BOT,
        mode="duplex",
        tracks="both",
        sample_rate=16000,
        metadata={"lang": "fr"},
    )
    sid = data["stream_id"]
    assert sid.startswith("stm-") and data["call_id"] == "leg_a"
    assert effects == [
        StartStream(
            sid,
            "leg_a",
            BOT,
            "duplex",
            "both",
            16000,
            (
                ("stream_id", sid),
                ("call_id", "leg_a"),
                ("sample_rate", 16000),
                ("tracks", "both"),
                ("mode", "duplex"),
                ("metadata", {"lang": "fr"}),
            ),
        )
    ]
    assert w.state.streams[sid].open is False
    assert [e.type for e in media(w, "media.stream.opened", stream_id=sid)] == [
        "media.stream.started"
    ]
    assert w.state.streams[sid].open
    assert last(w, "media.stream.started") == {
        "stream_id": sid,
        "call_id": "leg_a",
        "url": BOT,
        "mode": "duplex",
    }
    events = media(w, "media.stream.marked", stream_id=sid, name="greeting")
    assert [e.data["name"] for e in events] == ["greeting"]
    assert w.replayed() == w.state.snapshot()


def test_defaults_are_listen_caller_8k() -> None:
    w = world()
    _, effects = command(w, "media.stream.start", call_id="leg_a", url=BOT)
    (effect,) = effects
    assert isinstance(effect, StartStream)
    assert (effect.mode, effect.tracks, effect.sample_rate) == ("listen", "caller", 8000)
    assert dict(effect.start)["metadata"] == {}


@pytest.mark.parametrize(
    "url",
    [
        "ws://10.0.0.5/bot",
        "wss://127.0.0.1/bot",
        "ws://127.0.0.1.evil.example/bot",
        "ws://localhost.evil.example/",
        "ws://evil.example/?ws://127.0.0.1",
    ],
)
def test_url_outside_the_allow_list_is_forbidden(url: str) -> None:
    w = world()
    with pytest.raises(RwiError) as info:
        command(w, "media.stream.start", call_id="leg_a", url=url)
    assert info.value.code == "forbidden" and "stream_allowed_urls" in info.value.message
    assert w.state.streams == {}


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "ws://127.0.0.1@evil.example/", "ws:///x", "ws://h/ a"]
)
def test_malformed_url_is_invalid_params(url: str) -> None:
    w = world()
    with pytest.raises(RwiError) as info:
        command(w, "media.stream.start", call_id="leg_a", url=url)
    assert info.value.code == "invalid_params" and "params.url" in info.value.message


def test_configured_prefix_narrows_and_widens() -> None:
    policy = Policy(stream_allowed_urls=("wss://bots.example.com:8443/asr/",))
    w = world(policy)
    data, _ = command(
        w, "media.stream.start", call_id="leg_a", url="wss://bots.example.com:8443/asr/fr"
    )
    assert data["stream_id"]
    for url in (BOT, "wss://bots.example.com/asr/x", "wss://bots.example.com:8443/admin"):
        with pytest.raises(RwiError) as info:
            command(w, "media.stream.start", call_id="leg_a", url=url)
        assert info.value.code == "forbidden"


def test_unanswered_call_is_invalid_state() -> None:
    w = World()
    w.open("app")
    w.do("app", "call.originate", call_id="x", destination="sip:x@local")
    with pytest.raises(RwiError) as info:
        command(w, "media.stream.start", call_id="x", url=BOT)
    assert info.value.code == "invalid_state" and "x" in info.value.message


def test_several_streams_per_call_up_to_the_limit() -> None:
    w = world()
    ids = {
        command(w, "media.stream.start", call_id="leg_a", url=BOT)[0]["stream_id"] for _ in range(4)
    }
    assert len(ids) == 4
    with pytest.raises(RwiError) as info:
        command(w, "media.stream.start", call_id="leg_a", url=BOT)
    assert info.value.code == "invalid_state"


def test_stop_one_or_all_then_the_media_reports_the_end() -> None:
    w = world()
    s1 = command(w, "media.stream.start", call_id="leg_a", url=BOT)[0]["stream_id"]
    s2 = command(w, "media.stream.start", call_id="leg_a", url=BOT)[0]["stream_id"]
    data, effects = command(w, "media.stream.stop", call_id="leg_a", stream_id=s1)
    assert data == {"stream_ids": [s1]} and effects == [StopStream(s1)]
    with pytest.raises(RwiError) as info:
        command(w, "media.stream.stop", call_id="leg_a", stream_id=s1)
    assert info.value.code == "not_found"
    # the media side says how it ended; a stop asked over RWI is reason ``rwi``
    events = ended(w, s1, "remote_closed")
    assert events[0].type == "media.stream.stopped"
    assert events[0].data == {
        "stream_id": s1,
        "call_id": "leg_a",
        "reason": "rwi",
        "frames_sent": 10,
        "frames_received": 4,
        "frames_dropped": 0,
    }
    data, effects = command(w, "media.stream.stop", call_id="leg_a")
    assert data == {"stream_ids": [s2]} and effects == [StopStream(s2)]
    ended(w, s2, "rwi")
    assert w.state.streams == {}
    with pytest.raises(RwiError) as info:
        command(w, "media.stream.stop", call_id="leg_a")
    assert info.value.code == "not_found"
    assert w.replayed() == w.state.snapshot()


def test_hangup_end_goes_to_the_owner_after_the_call_is_gone() -> None:
    w = world()
    sid = command(w, "media.stream.start", call_id="leg_a", url=BOT)[0]["stream_id"]
    media(w, "media.stream.opened", stream_id=sid)
    w.see("sip.call.ended", call_id="leg_a", by="remote", sip_status=None)
    assert "leg_a" not in w.state.calls
    events = observe(
        w.state,
        Observation(
            "media.stream.ended",
            {"stream_id": sid, "call_id": "leg_a", "reason": "hangup", "frames_sent": 3,
             "frames_received": 0, "frames_dropped": 1},
        ),
        w.now,
    )  # fmt: skip
    (stopped,) = events
    assert stopped.data["reason"] == "hangup" and stopped.data["frames_dropped"] == 1
    assert recipients(w.state, stopped) == {"app"}


def test_failure_to_connect_and_unknown_streams() -> None:
    w = world()
    sid = command(w, "media.stream.start", call_id="leg_a", url=BOT)[0]["stream_id"]
    events = ended(w, sid, "failed", frames_sent=0, frames_received=0)
    assert events[0].data["reason"] == "failed"
    assert media(w, "media.stream.ended", stream_id=sid, reason="failed") == []
    assert media(w, "media.stream.marked", stream_id="nope", name="x") == []
    assert media(w, "media.stream.opened", stream_id="nope") == []


def test_restart_ends_every_stream_failed() -> None:
    w = world()
    sid = command(w, "media.stream.start", call_id="leg_a", url=BOT)[0]["stream_id"]
    media(w, "media.stream.opened", stream_id=sid)
    fresh = World()
    for event in w.log:
        fresh.apply([event])
    events = restarted(fresh.state, "2026-03-14T09:00:01.000Z")
    mine = [e for e in events if e.type == "media.stream.stopped"]
    assert [e.data["reason"] for e in mine] == ["failed"]
    assert mine[0].data["frames_sent"] is None and mine[0].data["error"]
    fresh.apply(mine)
    assert fresh.state.streams == {}


def test_events_go_to_the_calls_owner_only() -> None:
    w = world()
    w.open("other")
    sid = command(w, "media.stream.start", call_id="leg_a", url=BOT)[0]["stream_id"]
    (started,) = observe(w.state, Observation("media.stream.opened", {"stream_id": sid}), w.now)
    assert recipients(w.state, started) == {"app"}


def test_another_connections_call_is_already_owned() -> None:
    w = world()
    w.open("other")
    with pytest.raises(RwiError) as info:
        command(w, "media.stream.start", cid="other", call_id="leg_a", url=BOT)
    assert info.value.code == "already_owned"
