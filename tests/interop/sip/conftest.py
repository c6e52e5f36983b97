"""Interop harness: the engine on loopback against real SIPp / baresip processes.

Every peer process is started with loopback-only options, wrapped in a hard timeout and
killed on teardown. Observations are awaited with timeouts; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from sip_media.adapter import SipAdapter, SipObservation
from sip_media.sip.engine import EngineConfig
from sip_media.sip.timers import TimerConfig

SCENARIOS = Path(__file__).parent / "scenarios"
ObsT = TypeVar("ObsT", bound=SipObservation)

pytestmark = pytest.mark.interop


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, other) as s2:
            try:
                s2.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


@dataclass
class PeerResult:
    rc: int
    stdout: str
    stderr: str


class Peers:
    """Starts peer processes and guarantees they are dead at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[asyncio.subprocess.Process] = []

    async def spawn(self, *argv: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.tmp,
        )
        self.procs.append(proc)
        return proc

    async def sipp(
        self,
        scenario: str,
        remote: str | None,
        *extra: str,
        port: int | None = None,
        calls: int = 1,
    ) -> asyncio.subprocess.Process:
        sipp = shutil.which("sipp")
        assert sipp, "sipp is not installed (apt-get install sip-tester)"
        argv = [sipp]
        if remote is not None:
            argv.append(remote)
        argv += [
            "-sf", str(SCENARIOS / f"{scenario}.xml"),
            "-i", "127.0.0.1", "-bind_local", "-mi", "127.0.0.1", "-ci", "127.0.0.1",
            "-nostdin", "-p", str(port or free_port()), "-cp", str(free_port(socket.SOCK_STREAM)),
            "-mp", str(free_port()), "-m", str(calls), "-timeout", "25s", "-timeout_error",
            "-trace_err", "-error_file", str(self.tmp / f"{scenario}_err.log"),
            *extra,
        ]  # fmt: skip
        return await self.spawn(*argv)

    async def finish(self, proc: asyncio.subprocess.Process, limit: float = 30) -> PeerResult:
        try:
            out, err = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
            raise AssertionError(
                f"peer did not finish in {limit}s: {err.decode()[-2000:]}"
            ) from None
        return PeerResult(
            proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
        )

    async def close(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 5)


class Observer:
    """Collects adapter observations and waits for specific ones with a timeout."""

    def __init__(self, adapter: SipAdapter) -> None:
        self.seen: list[SipObservation] = []
        self._changed = asyncio.Event()
        adapter.subscribe(self._add)

    def _add(self, obs: SipObservation) -> None:
        self.seen.append(obs)
        self._changed.set()

    async def wait_for(
        self, match: Callable[[SipObservation], bool], limit: float = 10
    ) -> SipObservation:
        async def find() -> SipObservation:
            index = 0
            while True:
                for obs in self.seen[index:]:
                    if match(obs):
                        return obs
                index = len(self.seen)
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), limit)
        except TimeoutError:
            raise AssertionError(f"no matching observation; saw {self.seen}") from None

    async def wait(self, kind: type[ObsT], leg_id: str | None = None, limit: float = 10) -> ObsT:
        async def find() -> ObsT:
            index = 0
            while True:
                for obs in self.seen[index:]:
                    if isinstance(obs, kind) and (leg_id is None or obs.leg_id == leg_id):
                        return obs
                index = len(self.seen)
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), limit)
        except TimeoutError:
            raise AssertionError(f"no {kind.__name__} for {leg_id}; saw {self.seen}") from None


async def wait_until(predicate: Callable[[], bool], what: str, limit: float = 10) -> None:
    """Poll a condition on the engine (e.g. a counter) until true, failing after timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def peers_ready(port: int, limit: float = 10) -> None:
    """Wait until a peer accepts TCP connections on ``port`` (UDP needs no wait: the
    transaction layer retransmits until the peer is up)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"nothing listening on TCP {port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return


def engine_config(**overrides: object) -> EngineConfig:
    config = EngineConfig(
        udp=[("127.0.0.1", free_port())],
        allowed_destinations=("127.0.0.0/8",),
        timers=TimerConfig(t1=0.1, t2=0.4, t4=0.5),
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Peers]:
    p = Peers(tmp_path)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def adapter() -> AsyncIterator[SipAdapter]:
    a = SipAdapter(engine_config(), no_media=True)
    await a.start()
    try:
        yield a
    finally:
        await a.stop()


@pytest.fixture
def observer(adapter: SipAdapter) -> Observer:
    return Observer(adapter)
