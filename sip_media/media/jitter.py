"""Adaptive jitter buffer for one leg's inbound G.711 stream.

Where it sits: between a leg's socket and the engine's tick.  The leg :meth:`push`-es
every valid audio packet (keyed by RTP timestamp, so reordering is free); once per tick
the engine :meth:`pull`-s exactly one 20 ms frame of *encoded* bytes.  Working on
encoded bytes keeps same-codec pass-through decode-free, and because G.711 is one byte
per sample, packets of any ptime are re-framed to 160 samples.

Adaptation: a packet that arrives just after its frame was concealed rewinds the
playout cursor onto it (one frame of delay added); when the buffer kept one spare frame
for a whole second, one frame is dropped (delay removed).  Loss concealment repeats
the previous frame once, then plays silence.  A buffer that got nothing for a while
goes idle (:meth:`pull` returns ``None``) and resynchronises on the next packet.
"""

from __future__ import annotations

from typing import Final

FRAME: Final = 160  # samples (= bytes for G.711) per 20 ms frame
_WRAP: Final = 1 << 32
_HALF: Final = 1 << 31


def _delta(a: int, b: int) -> int:
    """Signed difference ``a - b`` of two 32-bit RTP timestamps."""
    d = (a - b) & 0xFFFFFFFF
    return d - _WRAP if d >= _HALF else d


class JitterBuffer:
    """Timestamp-keyed reorder buffer with adaptive depth and concealment."""

    __slots__ = (
        "_cursor",
        "_depth",
        "_idle",
        "_last",
        "_lost_run",
        "_max_depth",
        "_min_occ",
        "_newest",
        "_packets",
        "_silence",
        "_window",
        "concealed",
        "dropped_late",
        "duplicates",
        "overflow",
        "played",
    )

    IDLE_AFTER: Final = 10  # frames without any packet before the stream is "idle"
    RESYNC_FRAMES: Final = 50  # a jump of more than 1 s restarts the buffer
    WINDOW: Final = 50  # frames observed before shrinking the delay by one frame

    def __init__(self, silence_byte: int, max_depth: int = 6) -> None:
        self._packets: dict[int, bytes] = {}
        self._cursor: int | None = None
        self._newest = 0
        self._depth = 1
        self._max_depth = max_depth
        self._silence = bytes([silence_byte]) * FRAME
        self._last = self._silence
        self._lost_run = 0
        self._idle = 0
        self._min_occ = 1 << 30
        self._window = 0
        self.played = 0
        self.concealed = 0
        self.dropped_late = 0
        self.duplicates = 0
        self.overflow = 0

    @property
    def depth(self) -> int:
        """Current target delay in frames."""
        return self._depth

    def reset(self) -> None:
        """Forget everything (new remote source or SSRC)."""
        self._packets.clear()
        self._cursor = None
        self._depth = 1
        self._lost_run = 0

    def push(self, timestamp: int, payload: bytes) -> bool:
        """Store one packet; return False when it is dropped (late or duplicate)."""
        self._idle = 0
        cursor = self._cursor
        if cursor is None:
            self._cursor = timestamp
            self._newest = timestamp
            self._packets[timestamp] = payload
            return True
        d = (timestamp - cursor) & 0xFFFFFFFF  # _delta() inlined: runs for every packet
        if d >= _HALF:
            d -= _WRAP
        if d < 0:
            if d == -FRAME and self._lost_run and self._depth < self._max_depth:
                # Just missed its slot (which was concealed): rewind onto it, which
                # adds one frame of delay from now on.
                self._depth += 1
                self._lost_run = 0
                self._cursor = timestamp
            elif d > -FRAME * self.RESYNC_FRAMES:
                self.dropped_late += 1
                return False
            else:
                self._restart(timestamp, payload)
                return True
        elif d > FRAME * self.RESYNC_FRAMES:
            self._restart(timestamp, payload)
            return True
        if timestamp in self._packets:
            self.duplicates += 1
            return False
        if len(self._packets) >= 4 * self._max_depth:
            self.overflow += 1
            return False
        self._packets[timestamp] = payload
        if 0 < ((timestamp - self._newest) & 0xFFFFFFFF) < _HALF:
            self._newest = timestamp
        return True

    def _restart(self, timestamp: int, payload: bytes) -> None:
        self._packets.clear()
        self._packets[timestamp] = payload
        self._cursor = timestamp
        self._newest = timestamp
        self._depth = 1

    def pull(self) -> bytes | None:
        """Return the next 160-byte frame, or ``None`` while the stream is idle."""
        cursor = self._cursor
        if cursor is None:
            return None
        self._idle += 1
        if self._idle > self.IDLE_AFTER and not self._packets:
            self._cursor = None
            self._depth = 1
            return None
        frame = self._packets.pop(cursor, None)
        if frame is None or len(frame) != FRAME:
            if frame is not None:
                self._packets[cursor] = frame
            frame = self._assemble(cursor)
        self._cursor = (cursor + FRAME) & 0xFFFFFFFF
        if frame is None:
            self.concealed += 1
            self._lost_run += 1
            return self._last if self._lost_run == 1 else self._silence
        self._lost_run = 0
        self._last = frame
        self.played += 1
        # Adaptation bookkeeping, inlined: frames buffered beyond the one just played.
        ahead = (self._newest - cursor) & 0xFFFFFFFF
        occupancy = ahead // FRAME if ahead < _HALF else 0
        if occupancy < self._min_occ:
            self._min_occ = occupancy
        self._window += 1
        if self._window >= self.WINDOW:
            self._adapt()
        return frame

    def _adapt(self) -> None:
        """Drop one frame of delay after a second with a spare frame always buffered."""
        cursor = self._cursor
        assert cursor is not None
        if self._min_occ >= 2 and cursor in self._packets:
            del self._packets[cursor]
            self._cursor = (cursor + FRAME) & 0xFFFFFFFF
            self._depth = max(1, self._depth - 1)
        self._window = 0
        self._min_occ = 1 << 30

    def _assemble(self, cursor: int) -> bytes | None:
        """Slow path: build a frame from packets of other sizes / offsets."""
        out = bytearray(self._silence)
        covered = False
        for ts in list(self._packets):
            payload = self._packets[ts]
            start = _delta(ts, cursor)
            end = start + len(payload)
            if end <= 0:
                del self._packets[ts]  # entirely in the past
                continue
            if start >= FRAME:
                continue
            lo, hi = max(start, 0), min(end, FRAME)
            out[lo:hi] = payload[lo - start : hi - start]
            covered = True
            if end <= FRAME:
                del self._packets[ts]
        return bytes(out) if covered else None
