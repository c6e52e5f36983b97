"""Audio streams (contract §12) end to end, checked at the phone: the real service, a
real WebSocket bot (``tests.support.bot``), and a phone whose SIP is SIPp and whose RTP
end is the test's own (``RtpPeer``), so what the phone heard is the G.711 it received,
packet by packet, and can be read at the moment an event arrives (``RtpPeer.drain``).

16 kHz streams carry the caller's tone to the bot at 16 kHz and the bot's 16 kHz audio
to the phone at the right pitch (resampled, not aliased); a mark reaches the client only
once the phone has received all the audio before it, to the sample; ``clear`` cuts the
queued audio (the marks in it are reported at once, the bot speaks on); a SIPp phone's
RFC 4733 keys reach the bot as ``{"type":"dtmf"}`` text, in order, once each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest

from rwi.client import Client, Event
from tests.e2e.pbx import Pbx, answered, db_events, heard, pbx, sip_tables, start
from tests.support.bot import Bot, BotCall, tone16
from tests.support.observer import wait_until
from tests.support.pcap import make_pcap, tone_and_digits
from tests.support.rtp import RtpPeer
from tests.support.sipp_templates import RING_180, answer_options_with, call_sipp

pytestmark = pytest.mark.e2e

CUSTOMER, BOT, OTHER = 440.0, 1000.0, 1500.0
FREQS = (CUSTOMER, BOT, OTHER)
LOUD = 3000  # half the test tones' amplitude: where a tone starts and ends, to a sample
#: samples a tone's measured length may differ from what was sent: the half-period of
#: the test tones at 8 kHz (where the threshold crossing falls) and a resampler's ramp
EDGE = 10


@asynccontextmanager
async def on_the_phone(
    db_url: str, tmp: Path, phone_says: float | None = CUSTOMER, **sipp: Any
) -> AsyncIterator[tuple[Pbx, Client, RtpPeer]]:
    """An answered outbound call ``leg_a`` to a SIPp phone whose RTP end is ``far``
    (saying ``phone_says``), and the bot's RWI client. ``phone_says=None`` with
    ``sdp_port="[media_port]"``: SIPp's own RTP is the phone's (``far`` stays idle)."""
    far = RtpPeer(phone_says)
    subs = {"ring": RING_180, "sdp_port": far.port, "pt": 0, "codec": "PCMU", **sipp}
    phone = call_sipp(tmp, "uas_call", **subs)
    try:
        async with pbx(db_url, tmp, sip_tables(tmp, trunk=phone)) as rig:
            await start(rig, (phone, ()))
            client = await rig.client("bot-token", command_timeout=40)
            await answered(client, "leg_a", "sip:5550100@trunk")
            await rig.sip_answered("leg_a")
            local = rig.svc.runtime.legs.info("leg_a").local_rtp
            assert local is not None
            if phone_says is not None:
                far.start(local)
            yield rig, client, far
    finally:
        far.close()


async def duplex(client: Client, bot: Bot, rate: Literal[8000, 16000]) -> tuple[str, BotCall]:
    reply = await client.media.stream_start(
        call_id="leg_a", url=bot.url, mode="duplex", sample_rate=rate
    )
    await client.events.wait("media.stream.started", call_id="leg_a")
    return reply["stream_id"], await bot.call()


async def mark(client: Client, name: str) -> Event:
    return await client.events.wait_for(
        lambda e: e.name == "media.stream.mark" and e.data.get("name") == name, 30
    )


def heard_now(far: RtpPeer) -> np.ndarray:
    """Everything the phone has received up to now (drained), decoded."""
    far.drain()
    return far.audio()


def spans(pcm: np.ndarray) -> list[tuple[int, int]]:
    """Where the bot's tones are in the phone's audio: runs of loud samples (the dips of
    a tone's own cycles, a few samples, do not split a run), ``(start, end)``."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > LOUD)
    if loud.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(loud) > 40)
    starts = np.concatenate(([loud[0]], loud[cuts + 1]))
    ends = np.concatenate((loud[cuts], [loud[-1]])) + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


async def say(call: BotCall, freq: float, frames: int, rate: int) -> None:
    """The bot sends ``frames`` 20 ms frames of ``freq`` at once (faster than real time)."""
    n = rate // 50
    for i in range(frames):
        await call.send(tone16(freq, n, rate, i * n))


async def test_16k_stream_the_bot_hears_and_speaks_at_16k(db_url: str, tmp_path: Path) -> None:
    async with Bot() as bot, on_the_phone(db_url, tmp_path) as (rig, client, far):
        sid, call = await duplex(client, bot, 16000)
        assert call.start["sample_rate"] == 16000
        await call.wait_frames(50, timeout=30)
        assert {len(f) for f in call.frames} == {640}  # 20 ms mono at 16 kHz
        # read as 16 kHz the caller's tone is at its pitch: not at half or twice it
        got = call.samples()[-8000:, 0]
        assert heard(got, (CUSTOMER / 2, CUSTOMER, CUSTOMER * 2), rate=16000) == {CUSTOMER}
        # the bot's 16 kHz audio: 1 kHz, with 6 kHz on top that 8 kHz G.711 cannot carry
        # (resampling filters it out; dropping samples would fold it to 2 kHz)
        before = heard_now(far).size
        t = np.arange(16000) / 16000
        pcm = 6000 * np.sin(2 * np.pi * BOT * t) + 6000 * np.sin(2 * np.pi * 6000.0 * t)
        await call.send(pcm.astype("<i2").tobytes())
        await call.send({"type": "mark", "name": "said"})
        await mark(client, "said")
        said = heard_now(far)[before:]
        ((a, b),) = spans(said)
        assert abs((b - a) - 8000) <= EDGE  # one second at 8 kHz
        assert heard(said[a:b], (BOT / 2, BOT, BOT * 2, 2000.0)) == {BOT}
        await client.media.stream_stop(call_id="leg_a")
        stopped = await client.events.wait("media.stream.stopped", call_id="leg_a")
        assert stopped.data["stream_id"] == sid and stopped.data["frames_dropped"] == 0
        await rig.replay_matches()


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_a_mark_comes_once_the_phone_has_heard_the_audio_before_it(
    db_url: str, tmp_path: Path, rate: Literal[8000, 16000]
) -> None:
    async with Bot() as bot, on_the_phone(db_url, tmp_path) as (rig, client, far):
        sid, call = await duplex(client, bot, rate)
        for name, freq, frames in (("first", BOT, 50), ("second", OTHER, 100)):
            before = heard_now(far).size
            await say(call, freq, frames, rate)
            await call.send({"type": "mark", "name": name})
            event = await mark(client, name)
            assert event.data == {"stream_id": sid, "name": name}
            # as the event arrives, the phone has every sample of it already
            said = heard_now(far)[before:]
            ((a, b),) = spans(said)
            assert abs((b - a) - frames * 160) <= EDGE, (b - a, frames * 160)
            assert heard(said[a:b], FREQS) == {freq}
        logged = await db_events(db_url, f"stream:{sid}")
        assert [e for e in logged if e == "media.stream.mark"] == ["media.stream.mark"] * 2
        marks = [e.data["name"] for e in client.events.received if e.name == "media.stream.mark"]
        assert marks == ["first", "second"]
        await rig.replay_matches()


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_clear_cuts_the_queued_audio_and_reports_its_marks(
    db_url: str, tmp_path: Path, rate: Literal[8000, 16000]
) -> None:
    async with Bot() as bot, on_the_phone(db_url, tmp_path) as (rig, client, far):
        sid, call = await duplex(client, bot, rate)
        before = heard_now(far).size
        # ten seconds queued at once, a mark half way and one at the end
        await call.send(tone16(BOT, 5 * rate, rate))
        await call.send({"type": "mark", "name": "half"})
        await call.send(tone16(BOT, 5 * rate, rate, 5 * rate))
        await call.send({"type": "mark", "name": "end"})

        def playing() -> bool:
            runs = spans(heard_now(far)[before:])
            return bool(runs) and runs[0][1] - runs[0][0] >= 4000

        await wait_until(playing, "the phone hears the bot", 30)
        await call.send({"type": "clear"})
        half = await mark(client, "half")
        cut = heard_now(far)[before:]
        await mark(client, "end")
        assert half.data == {"stream_id": sid, "name": "half"}
        ((a, b),) = spans(cut)
        # reported because cleared, not because played: half of it was never heard
        assert 4000 <= b - a < 5 * 8000, b - a
        # and from the clear on the phone hears nothing of it
        n = heard_now(far).size
        await wait_until(lambda: heard_now(far).size >= n + 8000, "a second more", 30)
        assert spans(heard_now(far)[before:]) == [(a, b)]
        # the bot speaks on after a clear, only what it says now (nothing cleared left over)
        after = heard_now(far).size
        await say(call, OTHER, 20, rate)
        await call.send({"type": "mark", "name": "next"})
        await mark(client, "next")
        said = heard_now(far)[after:]
        ((a, b),) = spans(said)
        assert abs((b - a) - 20 * 160) <= EDGE, b - a
        assert heard(said[a:b], FREQS) == {OTHER}
        names = [e.data["name"] for e in client.events.received if e.name == "media.stream.mark"]
        assert names == ["half", "end", "next"]
        await rig.replay_matches()


async def test_the_phones_rfc4733_keys_reach_the_bot(db_url: str, tmp_path: Path) -> None:
    # the phone presses 7 then # (RFC 4733 in its RTP, played by SIPp from a pcap) when
    # the test pings it, so the keys come while the stream runs, whatever the load
    keys = tone_and_digits([("7", 100), ("#", 160)], gap_s=0.4, freq=CUSTOMER)
    pcap = make_pcap(tmp_path / "keys.pcap", keys)
    press = answer_options_with(f'<exec play_pcap_audio="{pcap}"/>')
    async with (
        Bot() as bot,
        on_the_phone(db_url, tmp_path, None, sdp_port="[media_port]", middle=press) as (
            rig,
            client,
            _,
        ),
    ):
        reply = await client.media.stream_start(call_id="leg_a", url=bot.url)
        sid = reply["stream_id"]
        call = await bot.call()
        await call.wait_frames(10, timeout=30)
        ping = await client.sip.options_ping(call_id="leg_a")
        assert ping["status"] == 200, ping

        def dtmf() -> list[dict[str, Any]]:
            return [t for t in call.texts if t.get("type") == "dtmf"]

        await wait_until(lambda: len(dtmf()) >= 2, "two keys at the bot", 30)
        for digit in ("7", "#"):
            event = await client.events.wait("call.dtmf", digit=digit, within=30)
            assert event.call_id == "leg_a"
        # the bot heard the phone's tone around the keys, on the same stream
        frames = call.samples()[:, 0].reshape(-1, 160)
        loud = frames[np.abs(frames).max(axis=1) > LOUD]
        assert len(loud) >= 25 and heard(loud.ravel(), FREQS) == {CUSTOMER}
        await client.media.stream_stop(call_id="leg_a")
        stopped = await client.events.wait("media.stream.stopped", call_id="leg_a")
        assert stopped.data["stream_id"] == sid
        async with asyncio.timeout(10):
            await call.closed.wait()
        assert dtmf() == [{"type": "dtmf", "digit": "7"}, {"type": "dtmf", "digit": "#"}]
        await rig.replay_matches()
