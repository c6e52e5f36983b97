"""Media against real SIPp peers: streamed tones, RFC 4733 digits, bridges, players.

SIPp is the far end of each leg: ``rtp_stream`` (a raw G.711 file, no root needed) to
send a known tone, ``-rtp_echo`` to send back what the engine sent it, and
``play_pcap_audio`` with a pcap from ``tests.support.pcap`` (tone + RFC 4733 digits in
one RTP stream) for digits.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from sip_media.media import api, g711
from sip_media.media.wav import write_wav
from tests.support.pcap import make_pcap, tone_and_digits

pytestmark = __import__("pytest").mark.interop


def g711_file(path: Path, pt: int, freq: float, seconds: float = 1.0) -> Path:
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (6000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    path.write_bytes(g711.encode(pt, pcm).tobytes())
    return path


async def test_stream_tone_and_rfc4733_digits_from_sipp(
    media: Any, sipp: Any, tmp_path: Path, audio: Any, wait: Any
) -> None:
    pcap = make_pcap(tmp_path / "tone_digits.pcap", tone_and_digits([("5", 100), ("#", 240)]))
    peer = sipp("uas_stream.xml", 0, f'play_pcap_audio="{pcap}"')
    await peer.start()
    leg = await media.execute(api.CreateLeg("a", payload_type=0, telephone_event_pt=101))
    ip, port = await peer.invite(leg.local_port)
    await media.execute(api.UpdateLeg("a", remote_ip=ip, remote_port=port))
    rec = await media.execute(api.Record(("a",), "sipp/a.wav", "separate"))
    five = await wait(media, lambda o: isinstance(o, api.DtmfReceived) and o.digit == "5")
    pound = await wait(media, lambda o: isinstance(o, api.DtmfReceived) and o.digit == "#")
    assert (five.duration_ms, pound.duration_ms) == (100, 240)
    assert five.leg_id == "a" and five.method == "rfc4733"
    await asyncio.sleep(0.3)  # a little more tone after the last digit
    await media.execute(api.StopRecord(rec.recording_id))
    done = await wait(media, lambda o: isinstance(o, api.RecordingFinished))
    said = audio.read_wav(Path(done.path))[:, 0]
    spectrum = np.abs(np.fft.rfft(said.astype(float)))
    assert abs(np.argmax(spectrum) * 8000 / said.size - 1000) < 5
    await peer.bye()


async def test_bridge_pcmu_to_pcma_through_two_sipp(
    media: Any, sipp: Any, tmp_path: Path, audio: Any, wait: Any, eventually: Any
) -> None:
    ul = g711_file(tmp_path / "tone1k.ul", 0, 1000.0)
    talker = sipp("uas_stream.xml", 0, f'rtp_stream="{ul},-1,0"')
    echo = sipp("uas_echo.xml", 8)
    await talker.start()
    await echo.start(echo=True)
    a = await media.execute(api.CreateLeg("a", payload_type=0))
    b = await media.execute(api.CreateLeg("b", payload_type=8))
    ip, port = await talker.invite(a.local_port)
    await media.execute(api.UpdateLeg("a", remote_ip=ip, remote_port=port))
    ip, port = await echo.invite(b.local_port)
    await media.execute(api.UpdateLeg("b", remote_ip=ip, remote_port=port))
    await media.execute(api.Connect("a", "b"))
    legs = media.engine.legs
    await eventually(lambda: legs["a"].rx_packets > 5 and legs["b"].rx_packets > 5)  # echo back
    rec_b = await media.execute(api.Record(("b",), "bridge/b.wav", "separate"))
    rec_a = await media.execute(api.Record(("a",), "bridge/a.wav", "separate"))
    await asyncio.sleep(1.2)  # the recording window
    for rec in (rec_a, rec_b):
        await media.execute(api.StopRecord(rec.recording_id))
    wav_b = audio.read_wav(Path(rec_b.path))[800:]
    wav_a = audio.read_wav(Path(rec_a.path))[800:]
    # What SIPp #1 sent (PCMU) went out on B as PCMA, SIPp #2 echoed it, and it came
    # back into A's direction: the same 1 kHz spectrum at every point.
    for signal in (wav_a[:, 0], wav_b[:, 1], wav_b[:, 0], wav_a[:, 1]):
        spec = np.abs(np.fft.rfft(signal.astype(float)))
        assert abs(np.argmax(spec) * 8000 / signal.size - 1000) < 5
    spec_in = np.abs(np.fft.rfft(wav_a[:, 0].astype(float)))
    spec_echo = np.abs(np.fft.rfft(wav_b[:, 0].astype(float)))
    assert np.corrcoef(spec_in, spec_echo)[0, 1] > 0.9
    assert media.engine.passthrough_pairs() == []  # PCMU/PCMA: transcoded
    await talker.bye()
    await echo.bye()


async def test_same_codec_bridge_passes_through_to_sipp_echo(
    media: Any, sipp: Any, peers: Any, audio: Any, eventually: Any
) -> None:
    echo = sipp("uas_echo.xml", 0)
    await echo.start(echo=True)
    ours = peers(pt=0, freq=1500.0)
    a = await media.execute(api.CreateLeg("a", "127.0.0.1", ours.port, 0))
    b = await media.execute(api.CreateLeg("b", payload_type=0))
    ip, port = await echo.invite(b.local_port)
    await media.execute(api.UpdateLeg("b", remote_ip=ip, remote_port=port))
    await media.execute(api.Connect("a", "b"))
    ours.start(("127.0.0.1", a.local_port))
    await eventually(lambda: ours.audio().size >= 8000)  # 1 s came back through SIPp
    assert media.engine.passthrough_pairs() == [("a", "b")]
    back = ours.audio()[-4000:]
    assert audio.heard(back, (1000.0, 1500.0)) == {1500.0}
    await echo.bye()


async def test_player_prompt_reaches_sipp_and_comes_back(
    media: Any, media_config: Any, sipp: Any, audio: Any, wait: Any
) -> None:
    media_config.sounds_dir.mkdir(parents=True, exist_ok=True)
    write_wav(media_config.sounds_dir / "prompt.wav", audio.tone_pcm(600.0, 6400))
    echo = sipp("uas_echo.xml", 8)
    await echo.start(echo=True)
    b = await media.execute(api.CreateLeg("b", payload_type=8))
    ip, port = await echo.invite(b.local_port)
    await media.execute(api.UpdateLeg("b", remote_ip=ip, remote_port=port))
    rec = await media.execute(api.Record(("b",), "prompt.wav", "separate"))
    play = await media.execute(api.StartPlayback("b", api.FileSource("prompt.wav")))
    done = await wait(media, lambda o: isinstance(o, api.PlaybackFinished))
    assert done == api.PlaybackFinished(play.playback_id, "b", False, None)
    await media.execute(api.StopRecord(rec.recording_id))
    wav = audio.read_wav(Path(rec.path))
    assert audio.heard(wav[:, 1], (600.0, 1000.0)) == {600.0}  # sent to SIPp
    assert audio.heard(wav[:, 0], (600.0, 1000.0)) == {600.0}  # echoed back by SIPp
    await echo.bye()
