"""Who hears whom: supervisor modes, conferences, hold and early media.

Each party sends a distinct pure tone (customer 440 Hz from SIPp ``rtp_stream``, agent
1000 Hz and supervisor 1500 Hz from the test's own RTP sockets) and the engine records
what every leg is sent; a Hann-windowed DFT says which tones reach which recording.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sip_media.media import api, g711

pytestmark = pytest.mark.interop
TONES = (440.0, 1000.0, 1500.0)


async def customer_from_sipp(media: Any, sipp: Any, tmp_path: Path, leg: str) -> Any:
    t = np.arange(8000) / 8000
    raw = tmp_path / "tone440.ul"
    raw.write_bytes(g711.encode(0, (6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)).tobytes())
    peer = sipp("uas_stream.xml", 0, f'rtp_stream="{raw},-1,0"')
    await peer.start()
    created = await media.execute(api.CreateLeg(leg, payload_type=0))
    ip, port = await peer.invite(created.local_port)
    await media.execute(api.UpdateLeg(leg, remote_ip=ip, remote_port=port))
    return peer


async def own_peer(media: Any, peers: Any, leg: str, freq: float | None, pt: int = 0) -> Any:
    peer = peers(pt=pt, freq=freq)
    created = await media.execute(api.CreateLeg(leg, "127.0.0.1", peer.port, pt))
    peer.start(("127.0.0.1", created.local_port))
    return peer


async def what_each_hears(
    media: Any, audio: Any, legs: tuple[str, ...], secs: float = 0.8
) -> dict[str, set[float]]:
    recs = {
        leg: await media.execute(api.Record((leg,), f"{leg}-{api.new_id()}.wav", "separate"))
        for leg in legs
    }
    await asyncio.sleep(secs)  # the recording window
    result = {}
    for leg, rec in recs.items():
        await media.execute(api.StopRecord(rec.recording_id))
        hears = audio.read_wav(Path(rec.path))[1200:, 1]  # skip 150 ms of transition
        result[leg] = audio.heard(hears, TONES)
    return result


async def test_supervisor_listen_whisper_barge(
    media: Any, sipp: Any, peers: Any, tmp_path: Path, audio: Any
) -> None:
    customer = await customer_from_sipp(media, sipp, tmp_path, "customer")
    await own_peer(media, peers, "agent", 1000.0)
    await own_peer(media, peers, "sup", 1500.0, pt=8)
    await media.execute(api.Connect("agent", "customer"))
    legs = ("sup", "agent", "customer")

    await media.execute(api.SuperviseLeg("sup", "agent", "listen"))
    assert await what_each_hears(media, audio, legs) == {
        "sup": {440.0, 1000.0},
        "agent": {440.0},
        "customer": {1000.0},
    }
    await media.execute(api.SuperviseLeg("sup", "agent", "whisper"))
    assert await what_each_hears(media, audio, legs) == {
        "sup": {440.0, 1000.0},
        "agent": {440.0, 1500.0},
        "customer": {1000.0},
    }
    await media.execute(api.SuperviseLeg("sup", "agent", "barge"))
    assert await what_each_hears(media, audio, legs) == {
        "sup": {440.0, 1000.0},
        "agent": {440.0, 1500.0},
        "customer": {1000.0, 1500.0},
    }
    await media.execute(api.StopSupervising("sup"))
    assert await what_each_hears(media, audio, legs) == {
        "sup": set(),
        "agent": {440.0},
        "customer": {1000.0},
    }
    await customer.bye()


async def test_conference_n_minus_one_and_mute(
    media: Any, sipp: Any, peers: Any, tmp_path: Path, audio: Any
) -> None:
    customer = await customer_from_sipp(media, sipp, tmp_path, "c440")
    await own_peer(media, peers, "c1000", 1000.0, pt=8)
    await own_peer(media, peers, "c1500", 1500.0)
    await own_peer(media, peers, "quiet", None)
    for leg in ("c440", "c1000", "c1500", "quiet"):
        await media.execute(api.JoinConference("room", leg))
    legs = ("c440", "c1000", "c1500", "quiet")
    assert await what_each_hears(media, audio, legs) == {
        "c440": {1000.0, 1500.0},
        "c1000": {440.0, 1500.0},
        "c1500": {440.0, 1000.0},
        "quiet": {440.0, 1000.0, 1500.0},
    }
    await media.execute(api.MuteConferenceMember("room", "c1500"))
    await media.execute(api.LeaveConference("room", "quiet"))
    assert await what_each_hears(media, audio, legs) == {
        "c440": {1000.0},
        "c1000": {440.0},
        "c1500": {440.0, 1000.0},
        "quiet": set(),
    }
    await customer.bye()


async def test_hold_music_and_unhold(media: Any, peers: Any, sipp: Any, audio: Any) -> None:
    await own_peer(media, peers, "a", 440.0)
    echo = sipp("uas_echo.xml", 8)  # b is SIPp echoing whatever b is sent
    await echo.start(echo=True)
    created = await media.execute(api.CreateLeg("b", payload_type=8))
    ip, port = await echo.invite(created.local_port)
    await media.execute(api.UpdateLeg("b", remote_ip=ip, remote_port=port))
    await media.execute(api.Connect("a", "b"))
    # bridged: a's tone goes to SIPp and comes back to a
    assert await what_each_hears(media, audio, ("a", "b"), 0.5) == {"a": {440.0}, "b": {440.0}}
    await media.execute(api.HoldLeg("b"))
    rec = await media.execute(api.Record(("b",), "held.wav", "separate"))
    got = await what_each_hears(media, audio, ("a",), 0.6)
    await media.execute(api.StopRecord(rec.recording_id))
    assert got == {"a": set()}  # a hears nothing from the held party
    wav = audio.read_wav(Path(rec.path))[1200:].astype(float)
    for channel in (1, 0):  # b is sent the generated hold music, SIPp echoes it back
        music = wav[:, channel]
        assert np.sqrt(np.mean(music**2)) > 1000
        assert audio.heard(music, (440.0,)) == set()
    await media.execute(api.UnholdLeg("b"))
    assert await what_each_hears(media, audio, ("a", "b"), 0.5) == {"a": {440.0}, "b": {440.0}}
    await echo.bye()


async def test_early_media_one_way_then_connect(media: Any, peers: Any, audio: Any) -> None:
    await own_peer(media, peers, "caller", 440.0)
    await own_peer(media, peers, "callee", 1000.0, pt=8)
    await media.execute(api.PassThroughEarlyMedia("callee", "caller"))
    assert await what_each_hears(media, audio, ("caller", "callee"), 0.5) == {
        "caller": {1000.0},
        "callee": set(),
    }
    await media.execute(api.Connect("caller", "callee"))
    assert await what_each_hears(media, audio, ("caller", "callee"), 0.5) == {
        "caller": {1000.0},
        "callee": {440.0},
    }
