"""The test's own far RTP end: what a phone would send, and a record of what it receives.

A test points a media leg at ``RtpPeer.port`` (the socket is bound from
``tests.support.ports`` at construction and held, so no one else can take the port),
calls ``start(target)`` to send a tone (or silence) every 20 ms, injects RFC 4733
digits or other samples, and reads back the decoded audio it was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from sip_media.media import g711
from tests.support.audio import tone
from tests.support.ports import udp_socket

DIGITS = "0123456789*#ABCD"


@dataclass
class RtpPeer:
    """Sends ``freq`` (or silence) as payload type ``pt`` every 20 ms; keeps what arrives."""

    freq: float | None = None
    pt: int = 0
    te_pt: int = 101
    received: list[tuple[float, bytes]] = field(default_factory=list)
    target: tuple[str, int] | None = None
    digit_sent_at: float | None = None
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    seq: int = 0
    ts: int = 0
    samples_sent: int = 0
    _event: tuple[int, int, int] | None = None  # code, total samples, start timestamp
    _pcm: np.ndarray | None = None  # samples to send before going back to the tone
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.sock = udp_socket()
        self.sock.setblocking(False)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._on_read)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def drain(self) -> None:
        """Read now what the kernel already holds: a check made as some event arrives
        sees every packet sent before it, whether or not the loop has called the reader
        yet (loopback UDP is in the socket as soon as it is sent)."""
        self._on_read()

    def _on_read(self) -> None:
        while True:
            try:
                data = self.sock.recv(2048)
            except BlockingIOError:
                return
            self.received.append((time.monotonic(), data))

    def start(self, target: tuple[str, int]) -> None:
        self.target = target
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send_raw(self, data: bytes) -> None:
        assert self.target is not None
        self.sock.sendto(data, self.target)

    def send_digit(self, digit: str, duration_ms: int) -> None:
        """One RFC 4733 event in the stream (updates every 20 ms, end sent 3 times)."""
        self._event = (DIGITS.index(digit), duration_ms * 8, self.ts)

    def send_pcm(self, pcm: np.ndarray) -> None:
        """Send these samples (in 20 ms frames) instead of the tone, then resume."""
        self._pcm = pcm.astype(np.int16)

    async def _run(self) -> None:
        start, k = time.monotonic(), 0
        while True:
            self._frame()
            k += 1
            await asyncio.sleep(max(0.0, start + k * 0.02 - time.monotonic()))

    def _packet(self, pt: int, marker: bool, ts: int, payload: bytes) -> bytes:
        head = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq, ts, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        return head + payload

    def _frame(self) -> None:
        if self._event is not None:
            code, total, ts0 = self._event
            if self.digit_sent_at is None:
                self.digit_sent_at = time.monotonic()
            elapsed = min(self.ts + 160 - ts0, total)
            end = elapsed >= total
            payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, elapsed)
            for _ in range(3 if end else 1):
                self.send_raw(self._packet(self.te_pt, self.ts == ts0, ts0, payload))
            if end:
                self._event = None
        else:
            if self._pcm is not None:
                pcm = np.zeros(160, np.int16)
                chunk = self._pcm[:160]
                pcm[: chunk.size] = chunk
                self._pcm = self._pcm[160:] if self._pcm.size > 160 else None
            elif self.freq:
                pcm = tone(self.freq, 160, self.samples_sent)
            else:
                pcm = np.zeros(160, np.int16)
            payload = g711.encode(self.pt, pcm).tobytes()
            self.send_raw(self._packet(self.pt, False, self.ts, payload))
        self.ts = (self.ts + 160) & 0xFFFFFFFF
        self.samples_sent += 160

    def audio(self, since: float = 0.0, until: float = float("inf")) -> np.ndarray:
        """Decoded audio received between two ``time.monotonic()`` instants."""
        chunks = [
            g711.decode(self.pt, d[12:])
            for t, d in self.received
            if since <= t < until and len(d) > 12 and d[1] & 0x7F == self.pt
        ]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
