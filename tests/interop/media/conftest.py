"""Fixtures for media interop tests: the engine, SIPp peers and the test's own RTP peers.

SIPp is driven without our SIP stack: the test sends a hand-made INVITE with SDP to a
SIPp UAS scenario from this directory, reads SIPp's SDP answer to learn its RTP port
and ACKs.  Every SIPp runs with ``-i/-mi/-ci 127.0.0.1 -bind_local -nostdin`` on free
ports, under a hard timeout, and is killed on teardown.  A missing ``sipp`` fails the
tests (it never skips them).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
import socket
import struct
import time
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sip_media.media import api, g711
from sip_media.media.config import MediaConfig
from sip_media.media.service import InProcessMedia

HERE = Path(__file__).parent
SIPP_HARD_TIMEOUT = 40.0
RATE = 8000


# ----------------------------------------------------------------------------- ports


def _udp_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        return False
    finally:
        s.close()
    return True


def _tcp_free(port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        return False
    finally:
        s.close()
    return True


def free_block(size: int = 4) -> int:
    """An even port with ``size`` consecutive free UDP/TCP ports (best effort)."""
    for _ in range(500):
        base = random.randrange(42000, 60000, 2)
        if all(_udp_free(base + i) and _tcp_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no free ports")


# ------------------------------------------------------------------------------ audio


def tone_pcm(freq: float, n: int, start: int = 0, amp: float = 6000.0) -> np.ndarray:
    t = (np.arange(n) + start) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def levels(samples: np.ndarray, freqs: tuple[float, ...]) -> dict[float, float]:
    """Amplitude of each pure tone in ``samples`` (Hann-windowed DFT at that frequency)."""
    x = samples.astype(float)
    w = np.hanning(x.size)
    t = np.arange(x.size) / RATE
    return {f: float(2 * abs(np.sum(x * w * np.exp(-2j * np.pi * f * t))) / w.sum()) for f in freqs}


def read_wav(path: Path) -> np.ndarray:
    """Samples of a 16-bit WAV as ``(frames, channels)``."""
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.reshape(-1, w.getnchannels())


def heard(samples: np.ndarray, freqs: tuple[float, ...], floor: float = 400.0) -> set[float]:
    """The set of test tones clearly present in ``samples``."""
    return {f for f, a in levels(samples, freqs).items() if a > floor}


# ---------------------------------------------------------------------- our RTP peer


@dataclass
class RtpPeer:
    """The test's own RTP endpoint: sends a tone every 20 ms, collects what arrives."""

    pt: int = 0
    freq: float | None = None
    te_pt: int = 101
    sock: socket.socket = field(init=False)
    received: list[tuple[float, bytes]] = field(default_factory=list)
    target: tuple[str, int] | None = None
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    seq: int = 0
    ts: int = 0
    samples_sent: int = 0
    _task: asyncio.Task[None] | None = None
    _event: tuple[str, int, int] | None = None  # digit, total samples, start ts
    _pcm: np.ndarray | None = None  # samples to send before going back to the tone

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._on_read)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _on_read(self) -> None:
        while True:
            try:
                data, _ = self.sock.recvfrom(2048)
            except BlockingIOError:
                return
            self.received.append((time.monotonic(), data))

    def start(self, target: tuple[str, int]) -> None:
        self.target = target
        self._task = asyncio.create_task(self._send_loop())

    def send_raw(self, data: bytes) -> None:
        assert self.target is not None
        self.sock.sendto(data, self.target)

    def _packet(self, pt: int, marker: bool, ts: int, payload: bytes) -> bytes:
        head = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self.seq, ts, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        return head + payload

    def send_digit(self, digit: str, duration_ms: int) -> None:
        """Send one RFC 4733 event in the stream: updates every 20 ms, end sent 3 times."""
        self._event = (digit, duration_ms * 8, self.ts)

    def send_pcm(self, pcm: np.ndarray) -> None:
        """Send these samples (in 20 ms frames) instead of the tone, then resume."""
        self._pcm = pcm.astype(np.int16)

    async def _send_loop(self) -> None:
        start = time.monotonic()
        k = 0
        while True:
            self._send_frame()
            k += 1
            await asyncio.sleep(max(0.0, start + k * 0.02 - time.monotonic()))

    def _send_frame(self) -> None:
        if self._event is not None:
            digit, total, ts0 = self._event
            elapsed = min(self.ts + 160 - ts0, total)
            end = elapsed >= total
            payload = struct.pack(
                "!BBH", "0123456789*#ABCD".index(digit), (0x80 if end else 0) | 10, elapsed
            )
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
                pcm = tone_pcm(self.freq, 160, self.samples_sent)
            else:
                pcm = np.zeros(160, np.int16)
            payload = g711.encode(self.pt, pcm).tobytes()
            self.send_raw(self._packet(self.pt, False, self.ts, payload))
        self.ts = (self.ts + 160) & 0xFFFFFFFF
        self.samples_sent += 160

    def audio(self, since: float = 0.0) -> np.ndarray:
        """Decoded audio of received packets with our audio payload type."""
        chunks = [
            g711.decode(self.pt, d[12:])
            for t, d in self.received
            if t >= since and len(d) > 12 and d[1] & 0x7F == self.pt
        ]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


# ------------------------------------------------------------------------------ SIPp


class Sipp:
    """One SIPp UAS process plus the hand-made INVITE/ACK/BYE that drive it."""

    def __init__(self, workdir: Path, scenario: str, pt: int, media_action: str = "") -> None:
        self.workdir = workdir
        self.pt = pt
        codec = g711.CODEC_NAMES[pt]
        text = (HERE / scenario).read_text()
        text = text.replace("{pt}", str(pt)).replace("{codec}", codec)
        text = text.replace("{media_action}", media_action)
        base = free_block(6)  # SIPp binds -mp, +1 and the video pair +2/+3
        self.sip_port, self.media_port, self.ctrl_port = base, base + 2, free_block(2)
        self.scenario = workdir / f"sipp_{base}.xml"
        self.scenario.write_text(text)
        self.proc: asyncio.subprocess.Process | None = None
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.to_tag = ""
        self.call_id = f"media-{base}-{random.getrandbits(32):x}"

    async def start(self, echo: bool = False) -> None:
        sipp = shutil.which("sipp")
        if sipp is None:
            pytest.fail("sipp is not installed (apt-get install sip-tester)")
        args = [
            sipp, "-sf", str(self.scenario), "-i", "127.0.0.1", "-bind_local",
            "-mi", "127.0.0.1", "-ci", "127.0.0.1", "-cp", str(self.ctrl_port),
            "-p", str(self.sip_port), "-mp", str(self.media_port), "-nostdin",
            "-m", "1", "-timeout", "30s", "-timeout_error",
        ]  # fmt: skip
        if echo:
            args.append("-rtp_echo")
        self.proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=self.workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        asyncio.get_running_loop().call_later(SIPP_HARD_TIMEOUT, self.kill)

    def _request(self, method: str, cseq: int, body: str = "") -> bytes:
        port = self.sock.getsockname()[1]
        to_tag = f";tag={self.to_tag}" if self.to_tag and method != "INVITE" else ""
        lines = [
            f"{method} sip:svc@127.0.0.1:{self.sip_port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{random.getrandbits(40):x}",
            "Max-Forwards: 70",
            "From: <sip:test@127.0.0.1>;tag=media-test",
            f"To: <sip:svc@127.0.0.1>{to_tag}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:test@127.0.0.1:{port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    async def _exchange(self, data: bytes, want: str) -> str:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(10):
            while True:
                self.sock.sendto(data, ("127.0.0.1", self.sip_port))
                try:
                    async with asyncio.timeout(0.5):
                        while True:
                            reply = (await loop.sock_recv(self.sock, 65535)).decode()
                            if reply.startswith(want):
                                return reply
                except TimeoutError:
                    continue

    async def invite(self, rtp_port: int, te_pt: int | None = 101) -> tuple[str, int]:
        """Offer our leg's address; return SIPp's RTP address from its answer."""
        fmts = f"{self.pt} {te_pt}" if te_pt is not None else f"{self.pt}"
        sdp = (
            "v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {rtp_port} RTP/AVP {fmts}\r\n"
            f"a=rtpmap:{self.pt} {g711.CODEC_NAMES[self.pt]}/8000\r\n"
        )
        if te_pt is not None:
            sdp += f"a=rtpmap:{te_pt} telephone-event/8000\r\na=fmtp:{te_pt} 0-15\r\n"
        reply = await self._exchange(self._request("INVITE", 1, sdp), "SIP/2.0 200")
        tag = re.search(r"^To:.*;tag=([^;\s]+)", reply, re.M)
        self.to_tag = tag.group(1) if tag else ""
        port = re.search(r"^m=audio (\d+)", reply, re.M)
        addr = re.search(r"^c=IN IP4 (\S+)", reply, re.M)
        assert port and addr, reply
        self.sock.sendto(self._request("ACK", 1), ("127.0.0.1", self.sip_port))
        return addr.group(1), int(port.group(1))

    async def bye(self) -> None:
        await self._exchange(self._request("BYE", 2), "SIP/2.0 200")

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()

    async def close(self) -> None:
        self.kill()
        if self.proc is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.proc.wait()
        self.sock.close()


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture
def media_config(tmp_path: Path) -> MediaConfig:
    base = free_block(2) // 100 * 100
    return MediaConfig(
        sounds_dir=tmp_path / "sounds",
        recordings_dir=tmp_path / "recordings",
        port_min=base,
        port_max=base + 98,
        rtp_timeout_s=30.0,
    )


@pytest.fixture
async def media(media_config: MediaConfig) -> AsyncIterator[InProcessMedia]:
    service = InProcessMedia(media_config)
    await service.start()
    yield service
    await service.close()


@pytest.fixture
async def peers() -> AsyncIterator[Callable[..., RtpPeer]]:
    made: list[RtpPeer] = []

    def make(**kw: Any) -> RtpPeer:
        peer = RtpPeer(**kw)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Callable[..., Sipp]]:
    made: list[Sipp] = []

    def make(scenario: str, pt: int, media_action: str = "") -> Sipp:
        s = Sipp(tmp_path, scenario, pt, media_action)
        made.append(s)
        return s

    yield make
    for s in made:
        await s.close()


@pytest.fixture
def audio() -> Iterator[SimpleNamespace]:
    yield SimpleNamespace(
        tone_pcm=tone_pcm, levels=levels, read_wav=read_wav, heard=heard, RATE=RATE
    )


async def wait_obs(
    service: Any, predicate: Callable[[api.Observation], bool], timeout: float = 5.0
) -> api.Observation:
    async with asyncio.timeout(timeout):
        result: api.Observation = await service.observations.wait_for(predicate)
        return result


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_obs


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (bounded) for a condition on engine counters or received packets.

    Counters have no change notification, so this polls every 10 ms under a hard
    timeout; observations are awaited with ``wait`` instead.
    """
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - no event exists for these counters
            await asyncio.sleep(0.01)


@pytest.fixture
def eventually() -> Callable[..., Any]:
    return until
