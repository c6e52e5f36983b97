"""Audio sources mixed by the engine: file players and tone generators.

Where it sits: a ``StartPlayback``/``HoldLeg`` effect creates a :class:`SourceStream`; every
tick the engine calls :meth:`SourceStream.read` for one 160-sample float32 frame, puts
it in the mixing matrix as an input node, and reports ``PlaybackFinished`` when it returns
``None``.  WAV files are converted to 8 kHz mono once and cached (:class:`SoundCache`).
Tone cadences: ringback 425 Hz 1 s on / 4 s off (EU) or 440+480 Hz 2 s on / 4 s off
(US), a 1 kHz beep, silence.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from .assets import beep
from .errors import InvalidEffectError
from .paths import resolve_inside
from .wav import load_8k_mono

FRAME: Final = 160
RATE: Final = 8000
F32 = npt.NDArray[np.float32]


class SoundCache:
    """LRU cache of converted prompts keyed by real path, size and mtime."""

    def __init__(self, sounds_dir: Path, max_samples: int = 8000 * 60 * 30) -> None:
        self.sounds_dir = sounds_dir
        self._max = max_samples
        self._held = 0
        self._items: OrderedDict[tuple[str, int, int], npt.NDArray[np.int16]] = OrderedDict()

    def load(self, name: str) -> npt.NDArray[np.int16]:
        """Resolve ``name`` inside the sounds directory and return 8 kHz mono samples."""
        path = resolve_inside(self.sounds_dir, name)
        try:
            st = path.stat()
        except OSError:
            st = None
        key = (str(path), st.st_size if st else -1, st.st_mtime_ns if st else -1)
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        samples = load_8k_mono(path)
        self._items[key] = samples
        self._held += samples.size
        while self._held > self._max and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._held -= old.size
        return samples


class SourceStream:
    """A looped or one-shot buffer of linear samples read one frame per tick."""

    __slots__ = ("_buf", "_loop", "_pos")

    def __init__(self, samples: npt.NDArray[np.float32], loop: bool) -> None:
        if samples.size == 0:
            samples = np.zeros(FRAME, dtype=np.float32)
        if loop and samples.size < FRAME:
            samples = np.tile(samples, FRAME // samples.size + 1)
        self._buf = samples
        self._loop = loop
        self._pos = 0

    def read(self) -> F32 | None:
        """Return the next 160 samples, or ``None`` once a one-shot source ended."""
        buf, pos = self._buf, self._pos
        n = buf.size
        if pos >= n:
            if not self._loop:
                return None
            pos = 0
        end = pos + FRAME
        if end <= n:
            self._pos = end
            return buf[pos:end]
        if self._loop:
            self._pos = end - n
            return np.concatenate([buf[pos:], buf[: end - n]])
        self._pos = n
        out = np.zeros(FRAME, dtype=np.float32)
        out[: n - pos] = buf[pos:]
        return out


def _cadence(freqs: tuple[float, ...], on_s: float, off_s: float, level: float = 0.3) -> F32:
    t = np.arange(int(on_s * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    full = np.concatenate([level * 32767 * np.asarray(tone), np.zeros(int(off_s * RATE))])
    return full.astype(np.float32)


RINGBACK: Final = {
    "eu": ((425.0,), 1.0, 4.0),
    "us": ((440.0, 480.0), 2.0, 4.0),
}


def tone_samples(kind: str, region: str, frequency: float, seconds: float) -> tuple[F32, bool]:
    """Samples of a tone source and whether it loops by nature."""
    if kind == "ringback":
        if region not in RINGBACK:
            raise InvalidEffectError(f"unknown ringback region {region!r}")
        freqs, on_s, off_s = RINGBACK[region]
        return _cadence(freqs, on_s, off_s), True
    if kind == "beep":
        return beep().astype(np.float32), False
    if kind == "silence":
        return np.zeros(max(FRAME, int(seconds * RATE)), dtype=np.float32), False
    if kind == "tone":
        if not 20.0 <= frequency <= 3900.0 or seconds <= 0:
            raise InvalidEffectError("tone frequency must be 20..3900 Hz, seconds > 0")
        return _cadence((frequency,), seconds, 0.0), False
    raise InvalidEffectError(f"unknown tone kind {kind!r}")


@dataclass
class Playback:
    """A running source feeding one leg."""

    playback_id: str
    leg_id: str
    stream: SourceStream
    interrupt_on_dtmf: bool
    report: bool  # internal sources (hold music, beeps, in-band DTMF) are not reported
    done: bool = False
