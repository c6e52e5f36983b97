"""Test tones and what a test hears in them: every audio check in the suites goes here.

Tests make pure tones (``tone``, ``g711_file`` for SIPp's ``rtp_stream``), capture audio
(an RTP peer's packets, a recording) and ask which tones are clearly present
(``heard``: a Hann-windowed DFT at each test frequency, not a pass over a threshold
in time, so it holds for any phase and a little jitter).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sip_media.media import g711

RATE = 8000


def tone(freq: float, n: int, start: int = 0, amp: float = 6000.0) -> np.ndarray:
    """``n`` samples at 8 kHz of a pure tone, from sample ``start`` of it."""
    t = (np.arange(n) + start) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def levels(samples: np.ndarray, freqs: tuple[float, ...], rate: int = RATE) -> dict[float, float]:
    """Amplitude of each pure tone in ``samples`` (Hann-windowed DFT at that frequency)."""
    x = samples.astype(float)
    if x.size == 0:
        return dict.fromkeys(freqs, 0.0)
    w = np.hanning(x.size)
    t = np.arange(x.size) / rate
    return {f: float(2 * abs(np.sum(x * w * np.exp(-2j * np.pi * f * t))) / w.sum()) for f in freqs}


def heard(
    samples: np.ndarray, freqs: tuple[float, ...], floor: float = 400.0, rate: int = RATE
) -> set[float]:
    """Which of the test tones are clearly present (``rate``: the samples' rate)."""
    return {f for f, a in levels(samples, freqs, rate).items() if a > floor}


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(float) ** 2))) if samples.size else 0.0


def g711_file(path: Path, pt: int, freq: float, seconds: float = 1.0) -> Path:
    """A raw G.711 file of a pure tone, for SIPp's ``rtp_stream``."""
    path.write_bytes(g711.encode(pt, tone(freq, int(RATE * seconds))).tobytes())
    return path
