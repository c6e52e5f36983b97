"""Recorder behaviour on a live leg: modes, pause/resume, max duration, beep,
crash-safe header, paths confined to the recordings directory."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import pytest

from sip_media.media import api

pytestmark = pytest.mark.interop


async def live_leg(media: Any, peers: Any, leg: str, freq: float, pt: int = 0) -> Any:
    peer = peers(pt=pt, freq=freq)
    created = await media.execute(api.CreateLeg(leg, "127.0.0.1", peer.port, pt))
    peer.start(("127.0.0.1", created.local_port))
    return peer


async def test_modes_pause_resume_and_header_fixups(
    media: Any, peers: Any, audio: Any, wait: Any
) -> None:
    await live_leg(media, peers, "a", 440.0)
    await live_leg(media, peers, "b", 1000.0, pt=8)
    await media.execute(api.Connect("a", "b"))
    mixed = await media.execute(api.Record(("a", "b"), "calls/mixed.wav", "mixed"))
    stereo = await media.execute(api.Record(("a", "b"), "calls/stereo.wav", "separate"))
    await asyncio.sleep(1.3)
    # still running: the header already covers at least the first second
    with wave.open(mixed.path) as w:
        assert w.getnchannels() == 1 and w.getnframes() >= 8000
    await media.execute(api.PauseRecord(mixed.recording_id))
    await asyncio.sleep(0.6)
    await media.execute(api.ResumeRecord(mixed.recording_id))
    await asyncio.sleep(0.4)
    await media.execute(api.StopRecord(mixed.recording_id))
    await media.execute(api.StopRecord(stereo.recording_id))
    done = await wait(
        media,
        lambda o: isinstance(o, api.RecordingFinished) and o.recording_id == mixed.recording_id,
    )
    full = await wait(
        media,
        lambda o: isinstance(o, api.RecordingFinished) and o.recording_id == stereo.recording_id,
    )
    assert full.duration_secs - done.duration_secs == pytest.approx(0.6, abs=0.1)
    assert (done.reason, full.reason) == ("stop", "stop")
    mono = audio.read_wav(Path(done.path))[:, 0]
    assert audio.heard(mono[800:], (440.0, 1000.0)) == {440.0, 1000.0}
    two = audio.read_wav(Path(full.path))
    assert audio.heard(two[800:, 0], (440.0, 1000.0)) == {440.0}
    assert audio.heard(two[800:, 1], (440.0, 1000.0)) == {1000.0}


async def test_max_duration_and_beep(media: Any, peers: Any, audio: Any, wait: Any) -> None:
    await live_leg(media, peers, "a", 440.0)
    rec = await media.execute(
        api.Record(("a",), "short.wav", "separate", beep=True, max_duration_s=0.5)
    )
    done = await wait(media, lambda o: isinstance(o, api.RecordingFinished))
    assert done.recording_id == rec.recording_id and done.duration_secs == 0.5
    assert done.reason == "max_duration"
    wav = audio.read_wav(Path(done.path))
    assert wav.shape == (4000, 2)
    assert audio.heard(wav[:1600, 1], (1000.0,)) == {1000.0}  # the beep the leg heard
    assert audio.heard(wav[2400:, 1], (1000.0,)) == set()
    assert audio.heard(wav[:, 0], (440.0,)) == {440.0}


async def test_paths_stay_inside_recordings_dir(
    media: Any, media_config: Any, tmp_path: Path
) -> None:
    await media.execute(api.CreateLeg("a"))
    outside = tmp_path / "outside"
    outside.mkdir()
    media_config.recordings_dir.mkdir(parents=True, exist_ok=True)
    (media_config.recordings_dir / "escape").symlink_to(outside)
    for bad in ("../x.wav", "/tmp/x.wav", "escape/x.wav", "a/../../x.wav"):
        with pytest.raises(Exception) as info:
            await media.execute(api.Record(("a",), bad))
        assert type(info.value).__name__ == "UnsafePathError"
    assert not any(outside.iterdir())
    ok = await media.execute(api.Record(("a",), "nested/dir/ok.wav"))
    assert Path(ok.path).is_relative_to(media_config.recordings_dir.resolve())
