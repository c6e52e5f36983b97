"""Loopback ports for tests and benchmarks: every port a test hands to a peer comes from here.

Every helper that needs a port (the service's listen address, SIP listeners, SIPp's SIP,
media and control ports, baresip, the media engine's ``port_min..port_max``, the test's
own RTP sockets) asks this module's process-wide ``ALLOCATOR``, so that

- two tests, or two SIPp processes, never get the same port: a port handed out is not
  handed out again in this process until the test that took it has ended (the root
  ``conftest`` releases a test's ports at its teardown);
- the OS never gives one of them to an outgoing connection (asyncpg, WebSocket clients,
  SIPp's own client sockets) between "picked" and "bound": ports come from below the
  kernel's ephemeral range (``ip_local_port_range``, 32768-60999 here), never from it;
- several pytest processes (pytest-xdist workers, other checkouts' runs) never collide:
  each process claims its own slice of the range by an exclusive ``flock`` on a file in
  the temp directory, held until the process exits (the kernel drops it even on a crash);
- each port is checked free with a bind of both UDP and TCP before it is handed out,
  which skips ports held by anything outside this scheme.

Where a socket can be held until hand-over (the test's own RTP peer), ``udp_socket``
returns it bound, so there is no window at all.
"""

from __future__ import annotations

import fcntl
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
LOW, HIGH = 20000, 32000  # [LOW, HIGH): below Linux's default ephemeral range
SLICE = 1000
LOCK_DIR = Path(tempfile.gettempdir()) / "rwi-test-ports"


def ephemeral_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> range:
    """The ports the kernel picks for unbound and outgoing sockets."""
    try:
        low, high = (int(x) for x in path.read_text().split())
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default
    return range(low, high + 1)


def bindable(port: int, host: str = HOST) -> bool:
    """Nothing holds ``port`` for UDP nor for TCP (a TCP port in TIME_WAIT counts as held)."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


class PortAllocator:
    """Hands out loopback ports from this process's own slice of ``[low, high)``."""

    def __init__(
        self, low: int = LOW, high: int = HIGH, slice_size: int = SLICE, lock_dir: Path = LOCK_DIR
    ) -> None:
        self.low, self.high, self.slice_size, self.lock_dir = low, high, slice_size, lock_dir
        self.slice: range | None = None
        self._locks: list[IO[bytes]] = []
        self._wide: tuple[range, list[IO[bytes]]] | None = None
        self._cursor = 0
        self.handed: set[int] = set()

    def _claim_slice(self) -> range:
        if self.slice is None:
            self.slice, locks = self._lock_slices(1)
            self._locks += locks  # held, and the slice with them, until exit
            self._cursor = self.slice.start
        return self.slice

    def _lock_slices(self, count: int) -> tuple[range, list[IO[bytes]]]:
        """``count`` consecutive slices and their locks (held while the files are open)."""
        ephemeral = ephemeral_range()  # checked on first use: suites without ports still run
        if self.low < ephemeral.stop and ephemeral.start < self.high:
            raise RuntimeError(
                f"test ports {self.low}-{self.high - 1} overlap the ephemeral range "
                f"{ephemeral.start}-{ephemeral.stop - 1}: narrow one of them"
            )
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        total = (self.high - self.low) // self.slice_size
        # A process's own slice is taken from the top, wide ranges (several consecutive
        # slices) from the bottom: one process's slice never splits the run its own
        # benchmark needs.
        order = range(total - 1, -1, -1) if count == 1 else range(total)
        for index in order:
            if index + count > total:
                continue
            locks: list[IO[bytes]] = []
            for i in range(index, index + count):
                start = self.low + i * self.slice_size
                lock = (self.lock_dir / f"slice-{start}.lock").open("ab")
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    lock.close()
                    break
                locks.append(lock)
            if len(locks) == count:
                start = self.low + index * self.slice_size
                return range(start, start + count * self.slice_size), locks
            for lock in locks:
                lock.close()
        raise RuntimeError(f"no {count} free test port slices of {total}: others hold them")

    def wide_range(self, size: int) -> tuple[int, int]:
        """``(first, last)`` of ``size`` ports in slices of their own, for a media range
        larger than a slice (a benchmark's). Not checked port by port: the media engine
        skips a pair it cannot bind, and no process of this scheme uses these slices.

        A new wide range replaces the process's previous one (a benchmark's sweep runs
        its steps one after another, each with a media engine of its own): its slices
        are unlocked, or kept when they are wide enough, so a long sweep does not run
        out of slices."""
        count = -(-size // self.slice_size)
        if self._wide is not None and len(self._wide[0]) < count * self.slice_size:
            old, locks = self._wide
            self.handed -= set(old)
            for lock in locks:
                lock.close()
            self._wide = None
        if self._wide is None:
            self._wide = self._lock_slices(count)
        span = self._wide[0]
        self.handed.update(range(span.start, span.start + size))
        return span.start, span.start + size - 1

    def block(self, size: int = 1, align: int = 1) -> int:
        """The first of ``size`` consecutive free ports, the first a multiple of ``align``.

        The search goes on from where the last one ended, so ports come out in order
        through the slice and a port comes back only after the whole slice went round.
        """
        span = self._claim_slice()
        positions = len(span)
        for _ in range(positions):
            base = -(-self._cursor // align) * align
            if base + size > span.stop:
                self._cursor = span.start
                continue
            ports = range(base, base + size)
            if any(p in self.handed for p in ports) or not all(bindable(p) for p in ports):
                self._cursor = base + 1
                continue
            self.handed.update(ports)
            self._cursor = base + size
            return base
        raise RuntimeError(
            f"no {size} free consecutive ports in {span.start}-{span.stop - 1} "
            f"({len(self.handed)} handed out and not released)"
        )

    def port(self) -> int:
        return self.block(1)

    def udp_socket(self, size: int = 2) -> socket.socket:
        """A UDP socket bound to the first (even) port of ``size`` reserved ones, for the
        caller to keep; the others stay reserved for it (an RTP peer's RTCP port)."""
        for _ in range(self.slice_size):
            port = self.block(size, align=2)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((HOST, port))
            except OSError:
                sock.close()
                continue
            return sock
        raise RuntimeError("no UDP port could be bound")

    def release(self, ports: set[int]) -> None:
        self.handed -= ports

    @contextmanager
    def lease(self) -> Iterator[None]:
        """Ports handed out inside the block go back to the pool when it ends."""
        before = set(self.handed)
        try:
            yield
        finally:
            self.release(self.handed - before)


ALLOCATOR = PortAllocator()


def free_port() -> int:
    """One port free for UDP and TCP, reserved for this process."""
    return ALLOCATOR.port()


def free_block(size: int, align: int = 2) -> int:
    """``size`` consecutive free ports from an even one (RTP/RTCP pairs, SIPp's ``-mp``)."""
    return ALLOCATOR.block(size, align)


def port_range(size: int) -> tuple[int, int]:
    """``(port_min, port_max)`` for a media engine that binds its ports lazily."""
    base = free_block(size)
    return base, base + size - 1


def wide_range(size: int) -> tuple[int, int]:
    return ALLOCATOR.wide_range(size)


def udp_socket(size: int = 2) -> socket.socket:
    return ALLOCATOR.udp_socket(size)
