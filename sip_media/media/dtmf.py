"""DTMF: RFC 4733 telephone-events (receive and send) and in-band Goertzel detection.

Where it sits: a leg routes packets carrying its negotiated telephone-event payload type
to its :class:`EventReceiver` instead of the jitter buffer; the receiver yields a
*start* (used by the engine to interrupt prompts within the same tick) and an *end* with
the duration (reported as a ``DtmfReceived`` observation).  Legs without
telephone-event get :class:`InbandDetector` over their decoded frames, vectorised across
legs.  :class:`EventSender` produces the packets of ``SendDtmf`` on legs that negotiated
telephone-event; other legs get the tones from :func:`dtmf_tone`.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

DIGITS: Final = "0123456789*#ABCD"
LOW_FREQS: Final = (697.0, 770.0, 852.0, 941.0)
HIGH_FREQS: Final = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD: Final = ("123A", "456B", "789C", "*0#D")
RATE: Final = 8000
FRAME: Final = 160
END_RETRANSMISSIONS: Final = 3
EVENT_TIMEOUT_S: Final = 0.5


def digit_frequencies(digit: str) -> tuple[float, float]:
    """Return the (low, high) tone pair of a DTMF digit."""
    for row, keys in enumerate(KEYPAD):
        col = keys.find(digit.upper())
        if col >= 0:
            return LOW_FREQS[row], HIGH_FREQS[col]
    raise ValueError(f"not a DTMF digit: {digit!r}")


def dtmf_tone(digit: str, samples: int, amplitude: float = 6000.0) -> npt.NDArray[np.float32]:
    """Linear PCM of one DTMF digit, ``samples`` long."""
    low, high = digit_frequencies(digit)
    t = np.arange(samples) / RATE
    tone = amplitude * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    return tone.astype(np.float32)


@dataclass(frozen=True, slots=True)
class DtmfStart:
    """A new digit began (first packet of an event, or first detected frames)."""

    digit: str


@dataclass(frozen=True, slots=True)
class DtmfEnd:
    """A digit ended, with its total duration."""

    digit: str
    duration_ms: int


DtmfSignal = DtmfStart | DtmfEnd


class EventReceiver:
    """RFC 4733 receive side: dedupe by timestamp, end bit and its retransmissions."""

    __slots__ = ("_current", "_duration", "_ended", "_last_seen")

    def __init__(self) -> None:
        self._current: tuple[int, str] | None = None  # (rtp timestamp, digit)
        self._duration = 0
        self._ended: deque[int] = deque(maxlen=16)
        self._last_seen = 0.0

    def feed(self, timestamp: int, payload: bytes, now: float) -> list[DtmfSignal]:
        """Process one telephone-event payload; return the signals it produced."""
        if len(payload) < 4:
            return []
        event, flags, duration = struct.unpack_from("!BBH", payload)
        if event >= len(DIGITS) or timestamp in self._ended:
            return []
        digit = DIGITS[event]
        out: list[DtmfSignal] = []
        if self._current is None or self._current[0] != timestamp:
            out.extend(self._finish())
            self._current = (timestamp, digit)
            self._duration = 0
            out.append(DtmfStart(digit))
        self._duration = max(self._duration, duration)
        self._last_seen = now
        if flags & 0x80:
            out.extend(self._finish())
        return out

    def poll(self, now: float) -> list[DtmfSignal]:
        """End an event whose end packets were all lost."""
        if self._current is not None and now - self._last_seen > EVENT_TIMEOUT_S:
            return self._finish()
        return []

    def _finish(self) -> list[DtmfSignal]:
        if self._current is None:
            return []
        ts, digit = self._current
        self._ended.append(ts)
        self._current = None
        return [DtmfEnd(digit, self._duration * 1000 // RATE)]


class EventSender:
    """RFC 4733 send side: one packet per tick, end packet sent three times."""

    __slots__ = ("_elapsed", "_end_sent", "_event_ts", "_gap", "_queue", "busy")

    GAP_TICKS: Final = 4  # audio frames between two digits

    def __init__(self) -> None:
        self._queue: deque[tuple[str, int]] = deque()
        self._event_ts: int | None = None
        self._elapsed = 0
        self._end_sent = 0
        self._gap = 0
        self.busy = False  # True while digits are queued or being sent (or gap)

    def queue(self, digits: str, duration_ms: int) -> None:
        """Queue digits; each lasts ``duration_ms`` (rounded up to whole frames)."""
        samples = max(FRAME, (duration_ms * RATE // 1000 + FRAME - 1) // FRAME * FRAME)
        for d in digits:
            digit_frequencies(d)  # validates
            self._queue.append((d.upper(), min(samples, 0xFFFF)))
        self.busy = True

    def next_packet(self, audio_timestamp: int) -> tuple[bool, int, bytes] | None:
        """Return (marker, timestamp, payload) for this tick, or ``None`` for audio."""
        if self._event_ts is None:
            if self._gap:
                self._gap -= 1
                return None
            if not self._queue:
                self.busy = False
                return None
            self._event_ts = audio_timestamp
            self._elapsed = 0
            self._end_sent = 0
        digit, total = self._queue[0]
        marker = self._elapsed == 0
        self._elapsed = min(self._elapsed + FRAME, total)
        end = self._elapsed >= total
        ts = self._event_ts
        payload = struct.pack("!BBH", DIGITS.index(digit), (0x80 if end else 0) | 10, self._elapsed)
        if end:
            self._end_sent += 1
            if self._end_sent >= END_RETRANSMISSIONS:
                self._queue.popleft()
                self._event_ts = None
                self._gap = self.GAP_TICKS
        return marker, ts, payload


_ALL_FREQS: Final = LOW_FREQS + HIGH_FREQS
_T: Final = np.arange(FRAME) / RATE
_BASIS: Final = np.concatenate(
    [
        np.cos(2 * np.pi * np.outer(_T, _ALL_FREQS)),
        np.sin(2 * np.pi * np.outer(_T, _ALL_FREQS)),
    ],
    axis=1,
).astype(np.float32)


def detect_frames(frames: npt.NDArray[np.float32], min_rms: float = 200.0) -> npt.NDArray[np.int8]:
    """Goertzel-style DTMF classification of 20 ms frames (shape ``(n, 160)``).

    Returns, per frame, the index into :data:`DIGITS` or -1.  Criteria: the two
    strongest tones (one per group) hold most of the energy, each clearly beats its
    group's runner-up, twist within ±10 dB, level above ``min_rms``.
    """
    proj = frames @ _BASIS
    power = proj[:, :8] ** 2 + proj[:, 8:] ** 2
    energy = np.einsum("ij,ij->i", frames, frames) + 1e-9
    norm = 2.0 * power / (FRAME * energy[:, None])  # 1.0 == all energy in that tone
    low, high = norm[:, :4], norm[:, 4:]
    li, hi = low.argmax(axis=1), high.argmax(axis=1)
    rows = np.arange(frames.shape[0])
    lp, hp = low[rows, li], high[rows, hi]
    low_sorted, high_sorted = np.sort(low, axis=1), np.sort(high, axis=1)
    ok = (
        (lp + hp > 0.7)
        & (low_sorted[:, -2] * 6 < lp)
        & (high_sorted[:, -2] * 6 < hp)
        & (lp < hp * 10)
        & (hp < lp * 10)
        & (energy > min_rms * min_rms * FRAME)
    )
    keypad = np.array([[DIGITS.index(k) for k in row] for row in KEYPAD], dtype=np.int8)
    result: npt.NDArray[np.int8] = np.where(ok, keypad[li, hi], -1).astype(np.int8)
    return result


class InbandDetector:
    """Per-leg debounce of :func:`detect_frames` results (2 frames on, 2 frames off)."""

    __slots__ = ("_candidate", "_count", "_digit", "_frames", "_off")

    def __init__(self) -> None:
        self._digit = -1
        self._candidate = -1
        self._count = 0
        self._frames = 0
        self._off = 0

    def feed(self, detected: int) -> list[DtmfSignal]:
        """Feed one frame's classification; return start/end signals."""
        out: list[DtmfSignal] = []
        if self._digit >= 0:
            if detected == self._digit:
                self._frames += 1
                self._off = 0
                return out
            self._off += 1
            if self._off < 2:
                return out
            out.append(DtmfEnd(DIGITS[self._digit], self._frames * 20))
            self._digit = -1
        if detected >= 0 and detected == self._candidate:
            self._count += 1
        else:
            self._candidate, self._count = detected, 1 if detected >= 0 else 0
        if self._candidate >= 0 and self._count >= 2:
            self._digit, self._frames, self._off = self._candidate, self._count, 0
            self._candidate, self._count = -1, 0
            out.append(DtmfStart(DIGITS[self._digit]))
        return out
