"""Tone cadences, source streams, the sound cache and the configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sip_media.media.config import MediaAllowList, MediaConfig
from sip_media.media.errors import (
    InvalidEffectError,
    MediaConfigError,
    MediaFileError,
    UnsafePathError,
)
from sip_media.media.sources import FRAME, SoundCache, SourceStream, tone_samples
from sip_media.media.wav import write_wav


def on_off(samples: np.ndarray) -> list[tuple[bool, float]]:
    """Run-length (tone on?, seconds) of a cadence, in 10 ms steps."""
    steps = samples[: samples.size // 80 * 80].reshape(-1, 80)
    on = np.abs(steps).max(axis=1) > 100
    runs: list[tuple[bool, float]] = []
    for value in on:
        if runs and runs[-1][0] == value:
            runs[-1] = (value, runs[-1][1] + 0.01)
        else:
            runs.append((bool(value), 0.01))
    return [(v, round(s, 2)) for v, s in runs]


def peaks(samples: np.ndarray) -> list[float]:
    spec = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(samples.size, 1 / 8000)
    return sorted(float(f) for f in freqs[spec > spec.max() / 3])


def test_ringback_cadences() -> None:
    eu, loop = tone_samples("ringback", "eu", 0, 0)
    assert loop and on_off(eu) == [(True, 1.0), (False, 4.0)]
    assert peaks(eu[:8000]) == [425.0]
    us, _ = tone_samples("ringback", "us", 0, 0)
    assert on_off(us) == [(True, 2.0), (False, 4.0)]
    assert peaks(us[:16000]) == [440.0, 480.0]
    with pytest.raises(InvalidEffectError):
        tone_samples("ringback", "mars", 0, 0)


def test_beep_silence_tone() -> None:
    beep, loop = tone_samples("beep", "eu", 0, 0)
    assert not loop and peaks(beep) == [1000.0]
    silence, _ = tone_samples("silence", "eu", 0, 0.5)
    assert silence.size == 4000 and not silence.any()
    tone, _ = tone_samples("tone", "eu", 1500.0, 0.5)
    assert peaks(tone) == [1500.0]
    with pytest.raises(InvalidEffectError):
        tone_samples("tone", "eu", 5000.0, 1)
    with pytest.raises(InvalidEffectError):
        tone_samples("kazoo", "eu", 0, 1)


def test_source_stream_one_shot_and_loop() -> None:
    data = np.arange(400, dtype=np.float32)
    once = SourceStream(data, loop=False)
    frames = [once.read() for _ in range(4)]
    assert frames[3] is None
    assert frames[2] is not None and frames[2][:80].tolist() == list(range(320, 400))
    assert not frames[2][80:].any()
    looped = SourceStream(data, loop=True)
    got = np.concatenate([looped.read() for _ in range(5)])  # type: ignore[misc]
    assert got.size == 5 * FRAME
    assert got.tolist() == np.tile(data, 2)[: 5 * FRAME].tolist()


def test_sound_cache_converts_once_and_confines(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", np.zeros(800, dtype=np.int16))
    cache = SoundCache(tmp_path)
    first = cache.load("a.wav")
    assert cache.load("a.wav") is first  # cached
    write_wav(tmp_path / "a.wav", np.ones(1600, dtype=np.int16))
    assert cache.load("a.wav").size == 1600  # changed file is reloaded
    with pytest.raises(UnsafePathError):
        cache.load("../a.wav")
    with pytest.raises(MediaFileError):
        cache.load("missing.wav")


def test_config_and_allow_list(tmp_path: Path) -> None:
    cfg = MediaConfig.from_mapping(
        {"sounds_dir": str(tmp_path), "recordings_dir": str(tmp_path), "workers": 2}
    )
    assert cfg.workers == 2 and cfg.sounds_dir == tmp_path
    with pytest.raises(MediaConfigError):
        MediaConfig.from_mapping({"sounds_dir": "x", "recordings_dir": "y", "bogus": 1})
    with pytest.raises(MediaConfigError):
        MediaConfig(tmp_path, tmp_path, port_min=30000, port_max=20000)
    with pytest.raises(MediaConfigError):
        MediaConfig(tmp_path, tmp_path, allowed_destinations=("not-a-cidr",))
    allow = MediaAllowList(("127.0.0.0/8", "::1/128"))
    assert allow.permits("127.0.0.1") and allow.permits("127.9.9.9") and allow.permits("::1")
    for bad in ("192.0.2.1", "255.255.255.255", "example.com", "", "10.0.0.1"):
        assert not allow.permits(bad)
