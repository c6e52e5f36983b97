"""Harness for the call-leg layer against real peers: CallLegs, SIPp, the test's RTP socket.

``CallLegs`` runs on loopback (SIP on a free UDP port, media in process on a free port
range, outbound allow-list 127.0.0.0/8 for both). SIPp scenarios live in
``scenarios/`` as templates (``{placeholders}`` filled here); every SIPp runs with
``-i 127.0.0.1 -bind_local -mi 127.0.0.1 -ci 127.0.0.1 -nostdin`` on free ports, under a
hard timeout, and is killed on teardown. A missing ``sipp`` fails the tests. Where a
test must see exactly what a far end receives (hold music, a prompt cut by a digit),
SIPp still does the signalling but its SDP names the test's own RTP socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import struct
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest

from sip_media.call_types import LegAnswered, LegObservation
from sip_media.calls import CallLegs
from sip_media.media import g711
from sip_media.media.config import MediaConfig
from sip_media.sip.engine import EngineConfig
from sip_media.sip.timers import TimerConfig

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_HARD_TIMEOUT = 25.0
RATE = 8000
ObsT = TypeVar("ObsT", bound=LegObservation)

pytestmark = pytest.mark.interop

RING_180 = """  <send>
    <![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]>
  </send>
  <pause milliseconds="50"/>"""

ANSWER_OPTIONS = """  <recv request="OPTIONS"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Accept: application/sdp
Content-Length: 0

]]>
  </send>"""


def uac_request(method: str, cseq: int, body: str = "", extra: str = "") -> str:
    """An in-dialog request from the SIPp UAC of ``uac_call.xml``."""
    ctype = "Content-Type: application/sdp\n" if body and method == "INVITE" else extra
    return f"""  <send retrans="500">
    <![CDATA[
{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Alice Caller" <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: <sip:alice@[local_ip]:[local_port]>
Max-Forwards: 70
{ctype}Content-Length: [len]

{body}]]>
  </send>"""


def uac_info_dtmf(cseq: int, digit: str) -> str:
    """SIPp sends one SIP INFO digit (application/dtmf-relay) and expects 200."""
    body = f"Signal={digit}\nDuration=160\n"
    ctype = "Content-Type: application/dtmf-relay\n"
    return uac_request("INFO", cseq, body, ctype) + '\n  <recv response="200"/>'


def uac_reinvite(cseq: int, direction: str, expect: str) -> str:
    """A re-INVITE with ``direction``; our 200 must carry ``a=<expect>``; then ACK."""
    sdp = (
        "v=0\no=user1 53655765 2353687638 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\n"
        "t=0 0\nm=audio [media_port] RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\n"
        f"a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\na={direction}\n"
    )
    var = f"d{cseq}"
    check = f"""  <recv response="100" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="a={expect}" search_in="body" check_it="true" assign_to="{var}"/>
    </action>
  </recv>
  <Reference variables="{var}"/>"""
    ack = uac_request("ACK", cseq).replace('<send retrans="500">', "<send>")
    return "\n".join((uac_request("INVITE", cseq, sdp), check, ack))


# ----------------------------------------------------------------------------- ports
def _free(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_block(size: int = 4, low: int = 30000, high: int = 42000) -> int:
    """An even port followed by ``size - 1`` ports free for UDP and TCP.

    SIP and SIPp ports come from 30000-42000, media ranges from 22000-30000, so a
    media engine binding ports lazily never takes one a SIPp is about to bind.
    """
    for _ in range(500):
        base = random.randrange(low, high, 2)
        if all(
            _free(base + i, socket.SOCK_DGRAM) and _free(base + i, socket.SOCK_STREAM)
            for i in range(size)
        ):
            return base
    raise RuntimeError("no free ports")


# ------------------------------------------------------------------------------ audio
def tone(freq: float, n: int, start: int = 0, amp: float = 6000.0) -> np.ndarray:
    t = (np.arange(n) + start) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def levels(samples: np.ndarray, freqs: tuple[float, ...]) -> dict[float, float]:
    """Amplitude of each pure tone in ``samples`` (Hann-windowed DFT at that frequency)."""
    x = samples.astype(float)
    if x.size == 0:
        return dict.fromkeys(freqs, 0.0)
    w = np.hanning(x.size)
    t = np.arange(x.size) / RATE
    return {f: float(2 * abs(np.sum(x * w * np.exp(-2j * np.pi * f * t))) / w.sum()) for f in freqs}


def heard(samples: np.ndarray, freqs: tuple[float, ...], floor: float = 400.0) -> set[float]:
    """Which of the test tones are clearly present."""
    return {f for f, a in levels(samples, freqs).items() if a > floor}


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(float) ** 2))) if samples.size else 0.0


def read_wav(path: Path) -> np.ndarray:
    """Samples of a 16-bit WAV as ``(frames, channels)``."""
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data.reshape(-1, w.getnchannels())


def g711_file(path: Path, pt: int, freq: float, seconds: float = 1.0) -> Path:
    """A raw G.711 file of a pure tone, for SIPp's ``rtp_stream``."""
    path.write_bytes(g711.encode(pt, tone(freq, int(RATE * seconds))).tobytes())
    return path


# ---------------------------------------------------------------------- our RTP peer
@dataclass
class RtpPeer:
    """The test's own far RTP end: a tone (or silence) every 20 ms; keeps what arrives."""

    freq: float | None = None
    pt: int = 0
    te_pt: int = 101
    sock: socket.socket = field(init=False)
    received: list[tuple[float, bytes]] = field(default_factory=list)
    target: tuple[str, int] | None = None
    digit_sent_at: float | None = None
    _seq: int = 0
    _ts: int = 0
    _n: int = 0
    _ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    _event: tuple[int, int, int] | None = None  # code, total samples, start timestamp
    _task: asyncio.Task[None] | None = None

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
                data = self.sock.recv(2048)
            except BlockingIOError:
                return
            self.received.append((time.monotonic(), data))

    def start(self, target: tuple[str, int]) -> None:
        self.target = target
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send_digit(self, digit: str, duration_ms: int) -> None:
        """One RFC 4733 event in the stream (updates every 20 ms, end sent 3 times)."""
        self._event = ("0123456789*#ABCD".index(digit), duration_ms * 8, self._ts)

    async def _run(self) -> None:
        start, k = time.monotonic(), 0
        while True:
            self._frame()
            k += 1
            await asyncio.sleep(max(0.0, start + k * 0.02 - time.monotonic()))

    def _send(self, pt: int, marker: bool, ts: int, payload: bytes) -> None:
        assert self.target is not None
        head = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, self._seq, ts, self._ssrc)
        self._seq = (self._seq + 1) & 0xFFFF
        self.sock.sendto(head + payload, self.target)

    def _frame(self) -> None:
        if self._event is not None:
            code, total, ts0 = self._event
            if self.digit_sent_at is None:
                self.digit_sent_at = time.monotonic()
            elapsed = min(self._ts + 160 - ts0, total)
            end = elapsed >= total
            payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, elapsed)
            for _ in range(3 if end else 1):
                self._send(self.te_pt, self._ts == ts0, ts0, payload)
            if end:
                self._event = None
        else:
            pcm = tone(self.freq, 160, self._n) if self.freq else np.zeros(160, np.int16)
            self._send(self.pt, False, self._ts, g711.encode(self.pt, pcm).tobytes())
        self._ts = (self._ts + 160) & 0xFFFFFFFF
        self._n += 160

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


# ------------------------------------------------------------------------------ SIPp
class Sipp:
    """One SIPp process running a scenario template from ``scenarios/``."""

    def __init__(self, workdir: Path, scenario: str, **subs: object) -> None:
        text = (SCENARIOS / f"{scenario}.xml").read_text()
        defaults: dict[str, object] = {"ring": "", "ack_action": "", "middle": ""}
        for key, value in {**defaults, **subs}.items():
            text = text.replace("{" + key + "}", str(value))
        assert "{" not in text.split("-->", 1)[-1], f"unfilled placeholder in {scenario}"
        # SIPp binds -mp (audio RTP), +1 (RTCP) and +2/+3 (video) even for audio calls.
        base = free_block(6)
        self.sip_port, self.media_port = base, base + 2
        self.ctrl_port = free_block(2)
        self.name = f"{scenario}_{base}"
        self.workdir = workdir
        self.path = workdir / f"{self.name}.xml"
        self.path.write_text(text)
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def uri(self) -> str:
        return f"sip:bob@127.0.0.1:{self.sip_port}"

    async def start(self, *extra: str, remote: str | None = None) -> None:
        sipp = shutil.which("sipp")
        if sipp is None:
            pytest.fail("sipp is not installed (apt-get install sip-tester)")
        argv = [sipp] + ([remote] if remote else []) + [
            "-sf", str(self.path),
            "-i", "127.0.0.1", "-bind_local", "-mi", "127.0.0.1", "-ci", "127.0.0.1",
            "-nostdin", "-p", str(self.sip_port), "-mp", str(self.media_port),
            "-cp", str(self.ctrl_port), "-m", "1", "-timeout", "20s", "-timeout_error",
            "-trace_err", "-error_file", str(self.workdir / f"{self.name}_err.log"),
            *extra,
        ]  # fmt: skip
        with (self.workdir / f"{self.name}.out").open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        asyncio.get_running_loop().call_later(SIPP_HARD_TIMEOUT, self.kill)

    async def finish(self, limit: float = 10.0) -> int:
        """SIPp's exit code (0: the call went exactly as the scenario says)."""
        assert self.proc is not None
        try:
            async with asyncio.timeout(limit):
                rc = await self.proc.wait()
        except TimeoutError:
            self.kill()
            raise AssertionError(f"SIPp {self.name} did not finish: {self.log()}") from None
        if rc != 0:
            raise AssertionError(f"SIPp {self.name} exited {rc}: {self.log()}")
        return rc

    def log(self) -> str:
        err = self.workdir / f"{self.name}_err.log"
        text = err.read_text(errors="replace") if err.exists() else ""
        return text[-3000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    async def close(self) -> None:
        self.kill()
        if self.proc is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.proc.wait()


# ---------------------------------------------------------------------- observations
class Collector:
    """Every observation CallLegs reports, with waits bounded in time."""

    def __init__(self, legs: CallLegs) -> None:
        self.seen: list[LegObservation] = []
        self._changed = asyncio.Event()
        legs.subscribe(self._add)

    def _add(self, obs: LegObservation) -> None:
        self.seen.append(obs)
        self._changed.set()

    async def wait_for(self, match: Callable[[Any], bool], limit: float = 10.0) -> Any:
        async def find() -> Any:
            while True:
                for obs in self.seen:
                    if match(obs):
                        return obs
                self._changed.clear()
                await self._changed.wait()

        try:
            async with asyncio.timeout(limit):
                return await find()
        except TimeoutError:
            raise AssertionError(f"no matching observation; saw {self.seen}") from None

    async def wait(self, kind: type[ObsT], leg_id: str | None = None, limit: float = 10.0) -> ObsT:
        obs: ObsT = await self.wait_for(
            lambda o: isinstance(o, kind) and (leg_id is None or o.leg_id == leg_id), limit
        )
        return obs

    def of(self, leg_id: str) -> list[LegObservation]:
        return [o for o in self.seen if o.leg_id == leg_id]


async def wait_until(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Poll a condition (e.g. a leg's direction) until true; fail after ``limit`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------- fixtures
@dataclass
class Rig:
    """One started CallLegs with its collector, SIPp factory and RTP peers."""

    legs: CallLegs
    obs: Collector
    tmp: Path
    sipps: list[Sipp] = field(default_factory=list)
    rtp: list[RtpPeer] = field(default_factory=list)

    @property
    def sip_target(self) -> str:
        host, port = self.legs.sip.local_address()
        return f"{host}:{port}"

    def sipp(self, scenario: str, **subs: object) -> Sipp:
        peer = Sipp(self.tmp, scenario, **subs)
        self.sipps.append(peer)
        return peer

    def peer(self, freq: float | None = None) -> RtpPeer:
        p = RtpPeer(freq)
        self.rtp.append(p)
        return p

    def media_legs(self) -> set[str]:
        engine = getattr(self.legs.media, "engine", None)
        return set(engine.legs) if engine is not None else set()


async def dial_far_socket(rig: Rig, leg_id: str, freq: float | None) -> tuple[RtpPeer, Sipp]:
    """Dial a SIPp UAS whose SDP names our own RTP socket; start that socket's stream."""
    far = rig.peer(freq)
    phone = rig.sipp("uas_call", sdp_port=far.port, pt=0, codec="PCMU")
    await phone.start()
    await rig.legs.dial(leg_id, phone.uri)
    await rig.obs.wait(LegAnswered, leg_id)
    local = rig.legs.info(leg_id).local_rtp
    assert local is not None
    far.start(local)
    return far, phone


async def window(seconds: float) -> tuple[float, float]:
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return start, time.monotonic()


async def make_rig(tmp: Path, **media: Any) -> Rig:
    base = free_block(2, 22000, 29800) // 100 * 100
    sip_config = EngineConfig(
        udp=[("127.0.0.1", free_block(2))],
        allowed_destinations=("127.0.0.0/8",),
        timers=TimerConfig(t1=0.1, t2=0.4, t4=0.5),
    )
    media_config = MediaConfig(
        sounds_dir=tmp / "sounds",
        recordings_dir=tmp / "recordings",
        port_min=base,
        port_max=base + 98,
        allowed_destinations=("127.0.0.0/8",),
        **media,
    )
    legs = await CallLegs.start(sip_config, media_config)
    return Rig(legs, Collector(legs), tmp)


async def close_rig(rig: Rig) -> None:
    for s in rig.sipps:
        await s.close()
    for p in rig.rtp:
        p.close()
    await rig.legs.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = await make_rig(tmp_path)
    try:
        yield r
    finally:
        await close_rig(r)


@pytest.fixture
async def rig_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    made: list[Rig] = []

    async def make(**media: Any) -> Rig:
        r = await make_rig(tmp_path, **media)
        made.append(r)
        return r

    yield make
    for r in made:
        await close_rig(r)
