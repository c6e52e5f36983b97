"""DTMF in both directions and DTMF-interruptible prompts (the test's own RTP peers;
the SIPp path for RFC 4733 receive is in ``test_sipp_media``)."""

from __future__ import annotations

import itertools
import struct
import time
from typing import Any

import numpy as np
import pytest

from sip_media.media import api, g711
from sip_media.media.dtmf import DIGITS, detect_frames, dtmf_tone
from sip_media.media.wav import write_wav

pytestmark = pytest.mark.interop


async def test_prompt_interrupted_by_digit_stops_within_one_frame(
    media: Any, media_config: Any, peers: Any, audio: Any, wait: Any, eventually: Any
) -> None:
    media_config.sounds_dir.mkdir(parents=True, exist_ok=True)
    write_wav(media_config.sounds_dir / "menu.wav", audio.tone_pcm(600.0, 8000 * 5))
    peer = peers(pt=0)
    leg = await media.execute(api.CreateLeg("a", "127.0.0.1", peer.port, 0))
    peer.start(("127.0.0.1", leg.local_port))
    play = await media.execute(
        api.StartPlayback("a", api.FileSource("menu.wav"), interrupt_on_dtmf=True)
    )
    await eventually(lambda: len(peer.audio()) >= 8 * 300)  # the prompt is playing
    sent_at = time.monotonic()
    peer.send_digit("7", 120)
    done = await wait(media, lambda o: isinstance(o, api.PlaybackFinished))
    assert done == api.PlaybackFinished(play.playback_id, "a", True, "7")
    digit = await wait(media, lambda o: isinstance(o, api.DtmfReceived))
    assert (digit.digit, digit.duration_ms) == ("7", 120)
    await eventually(lambda: sum(1 for t, _ in peer.received if t >= sent_at) >= 15)
    after = [d for t, d in peer.received if t >= sent_at]
    prompt_frames = sum(
        1
        for d in after
        if d[1] & 0x7F == 0 and audio.heard(g711.decode(0, d[12:]), (600.0,), 1000.0)
    )
    assert prompt_frames <= 1


async def test_inband_dtmf_detected_without_telephone_event(
    media: Any, peers: Any, wait: Any, eventually: Any
) -> None:
    peer = peers(pt=8)
    leg = await media.execute(
        api.CreateLeg("a", "127.0.0.1", peer.port, 8, telephone_event_pt=None)
    )
    peer.start(("127.0.0.1", leg.local_port))
    await eventually(lambda: media.engine.legs["a"].rx_packets >= 3)
    peer.send_pcm(dtmf_tone("9", 8 * 200))
    got = await wait(media, lambda o: isinstance(o, api.DtmfReceived))
    assert got.digit == "9" and got.method == "inband"
    assert 160 <= got.duration_ms <= 240


async def test_send_dtmf_rfc4733_and_inband(media: Any, peers: Any, eventually: Any) -> None:
    p1 = peers(pt=0)
    p2 = peers(pt=0)
    a = await media.execute(api.CreateLeg("a", "127.0.0.1", p1.port, 0, telephone_event_pt=101))
    await media.execute(api.CreateLeg("b", "127.0.0.1", p2.port, 0, telephone_event_pt=None))
    assert a.local_port
    await media.execute(api.SendDtmf("a", "4#", 100))
    await media.execute(api.SendDtmf("b", "4", 100))

    def events_of_a() -> list[bytes]:
        return [d for _, d in p1.received if d[1] & 0x7F == 101]

    await eventually(lambda: sum(1 for d in events_of_a() if d[13] & 0x80) == 6)
    await eventually(lambda: p2.audio().size >= 8 * 400)
    events = events_of_a()
    stamps = sorted({struct.unpack("!I", d[4:8])[0] for d in events})
    assert len(stamps) == 2
    for code, ts in zip((DIGITS.index("4"), DIGITS.index("#")), stamps, strict=True):
        pkts = [d for d in events if struct.unpack("!I", d[4:8])[0] == ts]
        assert {d[12] for d in pkts} == {code}
        assert pkts[0][1] & 0x80  # marker on the first packet of the event
        ends = [d for d in pkts if d[13] & 0x80]
        assert len(ends) == 3 and {struct.unpack("!H", d[14:16])[0] for d in ends} == {800}
    seqs = [struct.unpack("!H", d[2:4])[0] for _, d in p1.received]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    heard = p2.audio()
    frames = heard[: heard.size // 160 * 160].reshape(-1, 160).astype(np.float32)
    assert DIGITS.index("4") in detect_frames(frames).tolist()


async def test_send_dtmf_on_a_pass_through_bridge_then_relay_resumes(
    media: Any, peers: Any, eventually: Any
) -> None:
    pa = peers(pt=0, freq=440.0)
    pb = peers(pt=0, freq=1000.0)
    a = await media.execute(api.CreateLeg("a", "127.0.0.1", pa.port, 0))
    b = await media.execute(api.CreateLeg("b", "127.0.0.1", pb.port, 0))
    pa.start(("127.0.0.1", a.local_port))
    pb.start(("127.0.0.1", b.local_port))
    await media.execute(api.Connect("a", "b"))
    await eventually(lambda: media.engine.passthrough_pairs() == [("a", "b")])
    await eventually(lambda: len(pb.received) >= 5)
    await media.execute(api.SendDtmf("b", "1", 60))
    await eventually(lambda: media.engine.passthrough_pairs() == [])  # mixed while sending
    await eventually(lambda: media.engine.passthrough_pairs() == [("a", "b")])
    count = len(pb.received)
    await eventually(lambda: len(pb.received) >= count + 10)
    events = [d for _, d in pb.received if d[1] & 0x7F == 101]
    assert {d[12] for d in events} == {1} and sum(1 for d in events if d[13] & 0x80) == 3
    seqs = [struct.unpack("!H", d[2:4])[0] for _, d in pb.received]
    assert all((y - x) & 0xFFFF == 1 for x, y in itertools.pairwise(seqs))
    assert audio_heard_recently(pb.audio(), 440.0)


def audio_heard_recently(samples: np.ndarray, freq: float) -> bool:
    tail = samples[-1600:].astype(float)
    t = np.arange(tail.size) / 8000
    return bool(2 * abs(np.sum(tail * np.exp(-2j * np.pi * freq * t))) / tail.size > 1000)


async def test_a_digit_as_the_very_first_packet_latches_and_interrupts(
    media: Any, peers: Any, wait: Any
) -> None:
    peer = peers(pt=0)
    leg = await media.execute(api.CreateLeg("a", "127.0.0.1", peer.port, 0))
    play = await media.execute(
        api.StartPlayback("a", api.ToneSource("ringback"), loop=True, interrupt_on_dtmf=True)
    )
    peer.send_digit("#", 80)  # queued before the first frame: the stream starts with it
    peer.start(("127.0.0.1", leg.local_port))
    started = await wait(media, lambda o: isinstance(o, api.MediaStarted))
    assert started.remote_port == peer.port
    done = await wait(media, lambda o: isinstance(o, api.PlaybackFinished))
    assert done == api.PlaybackFinished(play.playback_id, "a", True, "#")
    got = await wait(media, lambda o: isinstance(o, api.DtmfReceived))
    assert (got.digit, got.duration_ms) == ("#", 80)
