"""Audio streams on the media engine (contract §12) against a real WebSocket bot on
127.0.0.1 (``tests.support.bot``) and the test's own RTP peers: what reaches the bot on
each track and rate, what the leg hears from a duplex bot, marks and clear, DTMF, the
URL allow-list, and the ways a stream ends (stop, hangup, bot closing, bot stalling)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sip_media.media import api
from sip_media.media.errors import InvalidEffectError
from tests.support.bot import Bot, tone16

pytestmark = pytest.mark.interop


def stopped(sid: str) -> Any:
    return lambda o: isinstance(o, api.StreamStopped) and o.stream_id == sid


async def _leg(media: Any, peers: Any, leg_id: str, freq: float | None) -> Any:
    peer = peers(pt=0, freq=freq)
    leg = await media.execute(api.CreateLeg(leg_id, "127.0.0.1", peer.port, 0))
    peer.start(("127.0.0.1", leg.local_port))
    return peer


async def test_caller_track_reaches_the_bot_and_stop_ends_it(
    media: Any, peers: Any, audio: Any, wait: Any, eventually: Any
) -> None:
    await _leg(media, peers, "a", 600.0)
    async with Bot() as bot:
        start = (("stream_id", "s1"), ("metadata", {"agent": "42"}))
        await media.execute(api.StartAudioStream("s1", "a", bot.url, start=start))
        call = await bot.call()
        assert call.start == {"type": "start", "stream_id": "s1", "metadata": {"agent": "42"}}
        await wait(media, lambda o: isinstance(o, api.StreamStarted))
        await eventually(lambda: len(call.frames) >= 25)
        assert {len(f) for f in call.frames} == {320}  # 20 ms of PCM16 at 8 kHz
        assert audio.heard(call.samples()[-2000:, 0], (600.0, 1400.0)) == {600.0}
        await media.execute(api.StopAudioStream("s1"))
        end = await wait(media, stopped("s1"))
        assert end.reason == "rwi" and end.frames_sent >= 25 and end.frames_dropped == 0
        await eventually(lambda: bool(call.texts) and call.texts[-1] == {"type": "stop"})


async def test_both_tracks_at_16k_are_two_channels_caller_first(
    media: Any, peers: Any, audio: Any, wait: Any, eventually: Any
) -> None:
    await _leg(media, peers, "a", 600.0)
    await _leg(media, peers, "b", 1400.0)
    await media.execute(api.Connect("a", "b"))
    async with Bot() as bot:
        await media.execute(
            api.StartAudioStream("s1", "a", bot.url, tracks="both", sample_rate=16000)
        )
        call = await bot.call()
        await eventually(lambda: len(call.frames) >= 40)
        assert {len(f) for f in call.frames[5:]} == {320 * 2 * 2}
        both = call.samples(2)[-4000:]
        freqs = (600.0, 1400.0, 5000.0)
        assert audio.heard(both[:, 0], freqs, rate=16000) == {600.0}
        assert audio.heard(both[:, 1], freqs, rate=16000) == {1400.0}


async def test_duplex_bot_is_heard_marks_follow_the_audio_and_clear_cuts_it(
    media: Any, peers: Any, audio: Any, wait: Any, eventually: Any
) -> None:
    peer = await _leg(media, peers, "a", 600.0)
    async with Bot() as bot:
        await media.execute(api.StartAudioStream("s1", "a", bot.url, duplex=True))
        call = await bot.call()
        await wait(media, lambda o: isinstance(o, api.StreamStarted))
        # one second of 1000 Hz, sent at once (faster than real time), then a mark
        await call.send(tone16(1000.0, 8000, 8000))
        await call.send({"type": "mark", "name": "greeting"})
        mark = await wait(media, lambda o: isinstance(o, api.StreamMark))
        assert mark.name == "greeting"
        heard = peer.audio()[-6000:]
        assert audio.heard(heard, (1000.0,)) == {1000.0}
        # ten seconds queued, cleared after a moment: the mark in it comes at once
        await call.send(tone16(1000.0, 80000, 8000))
        await call.send({"type": "mark", "name": "long"})
        await eventually(lambda: audio.heard(peer.audio()[-800:], (1000.0,)) == {1000.0})
        await call.send({"type": "clear"})
        cleared = await wait(media, lambda o: isinstance(o, api.StreamMark) and o.name == "long")
        assert cleared.stream_id == "s1"
        n = peer.audio().size
        await eventually(lambda: peer.audio().size >= n + 2400)
        assert audio.heard(peer.audio()[n + 800 :], (1000.0,)) == set()


async def test_bot_speaking_first_and_in_fragments_is_heard_in_order(
    media: Any, peers: Any, audio: Any, wait: Any, eventually: Any
) -> None:
    peer = await _leg(media, peers, "a", None)
    async with Bot(greeting=tone16(1000.0, 4000, 8000)) as bot:  # before the start frame
        await media.execute(api.StartAudioStream("s1", "a", bot.url, duplex=True))
        call = await bot.call()
        await wait(media, lambda o: isinstance(o, api.StreamStarted))
        # one message in three fragments, a sample split between two; a mark in two
        more = tone16(1000.0, 4000, 8000, start=4000)
        await call.send([more[:1001], more[1001:6000], more[6000:]])
        await call.send(['{"type": "mark", ', '"name": "after"}'])
        mark = await wait(media, lambda o: isinstance(o, api.StreamMark))
        assert mark.name == "after"
        assert audio.heard(peer.audio()[-6000:], (1000.0,)) == {1000.0}
        await media.execute(api.StopAudioStream("s1"))
        end = await wait(media, stopped("s1"))
        assert (end.reason, end.frames_received, end.frames_dropped) == ("rwi", 2, 0)


async def test_dtmf_reaches_the_bot_as_text(media: Any, peers: Any, eventually: Any) -> None:
    peer = await _leg(media, peers, "a", None)
    async with Bot() as bot:
        await media.execute(api.StartAudioStream("s1", "a", bot.url))
        call = await bot.call()
        await eventually(lambda: len(call.frames) >= 5)
        peer.send_digit("5", 120)
        await eventually(lambda: {"type": "dtmf", "digit": "5"} in call.texts)


async def test_url_outside_the_allow_list_is_refused_before_any_connection(
    media: Any, peers: Any
) -> None:
    await _leg(media, peers, "a", None)
    for url in (
        "ws://10.1.2.3/bot",
        "ws://127.0.0.1.evil.example/",
        "ws://127.0.0.1@evil.example/",
        "http://127.0.0.1/",
    ):
        with pytest.raises(InvalidEffectError):
            await media.execute(api.StartAudioStream("s1", "a", url))
    assert media.engine.streams == {}


async def test_hangup_ends_the_stream(media: Any, peers: Any, wait: Any) -> None:
    await _leg(media, peers, "a", 600.0)
    async with Bot() as bot:
        await media.execute(api.StartAudioStream("s1", "a", bot.url))
        call = await bot.call()
        await wait(media, lambda o: isinstance(o, api.StreamStarted))
        await media.execute(api.DestroyLeg("a"))
        end = await wait(media, stopped("s1"))
        assert end.reason == "hangup"
        async with asyncio.timeout(5):
            await call.closed.wait()


async def test_bot_that_closes_ends_the_stream_remote_closed(
    media: Any, peers: Any, wait: Any
) -> None:
    await _leg(media, peers, "a", 600.0)
    async with Bot(mode="close", close_after=10) as bot:
        await media.execute(api.StartAudioStream("s1", "a", bot.url))
        end = await wait(media, stopped("s1"))
        assert end.reason == "remote_closed" and end.frames_sent >= 10


async def test_unreachable_bot_fails_the_stream(media: Any, peers: Any, wait: Any) -> None:
    await _leg(media, peers, "a", None)
    bot = Bot()  # never started: nothing listens on its port
    await media.execute(api.StartAudioStream("s1", "a", bot.url))
    end = await wait(media, stopped("s1"))
    assert end.reason == "failed" and end.error


async def test_stalled_bot_costs_its_own_frames_not_the_call(
    media: Any, peers: Any, audio: Any, wait: Any, eventually: Any
) -> None:
    pa = await _leg(media, peers, "a", 600.0)
    pb = await _leg(media, peers, "b", 1400.0)
    await media.execute(api.Connect("a", "b"))
    async with Bot(mode="stall") as bot:
        await media.execute(api.StartAudioStream("s1", "a", bot.url, tracks="both"))
        await wait(media, lambda o: isinstance(o, api.StreamStarted))
        tap = media.engine.streams["s1"]
        await eventually(lambda: tap.frames_dropped >= 50, timeout=30.0)
        # the bridge goes on: each side still hears the other, on time
        n = pb.audio().size
        await eventually(lambda: pb.audio().size >= n + 8000)
        assert audio.heard(pb.audio()[n:], (600.0, 1400.0)) == {600.0}
        assert audio.heard(pa.audio()[-4000:], (600.0, 1400.0)) == {1400.0}
        assert media.engine.stats["late_ticks"] <= media.engine.stats["ticks"] // 20
        await media.execute(api.StopAudioStream("s1"))
        end = await wait(media, stopped("s1"), timeout=10.0)
        assert end.reason == "rwi" and end.frames_dropped >= 50
