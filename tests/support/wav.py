"""WAV files in tests: reading what the service or a phone recorded, writing prompts.

Recordings (the media engine's, baresip's ``sndfile``) are read back as sample arrays
for ``tests.support.audio``; prompts and phone sources are written as tone WAVs.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def read_wav(path: Path) -> np.ndarray:
    """Samples of a 16-bit WAV as ``(frames, channels)``."""
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.reshape(-1, w.getnchannels())


def write_tone_wav(
    path: Path, freq: float, seconds: float = 2.0, rate: int = 16000, amp: float = 8000.0
) -> None:
    """A mono 16-bit tone WAV of any rate (the service converts prompts to 8 kHz)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(rate * seconds)) / rate
    pcm = (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
