"""The test port allocator: below the ephemeral range, never the same port twice, a slice
per process, each port free for UDP and TCP."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.ports import ALLOCATOR, PortAllocator, bindable, ephemeral_range


def allocator(tmp_path: Path, low: int = 30000, high: int = 32000) -> PortAllocator:
    return PortAllocator(low, high, slice_size=1000, lock_dir=tmp_path)


def test_the_shared_range_lies_below_the_kernels_ephemeral_ports() -> None:
    ephemeral = ephemeral_range()
    assert ALLOCATOR.high <= ephemeral.start or ALLOCATOR.low >= ephemeral.stop


def test_a_range_overlapping_the_ephemeral_ports_is_refused(tmp_path: Path) -> None:
    start = ephemeral_range().start
    overlapping = PortAllocator(start - 100, start + 100, slice_size=100, lock_dir=tmp_path)
    with pytest.raises(RuntimeError, match="ephemeral"):
        overlapping.port()


def test_ports_and_blocks_are_never_handed_out_twice(tmp_path: Path) -> None:
    ports = allocator(tmp_path)
    handed: list[int] = []
    for _ in range(50):
        handed.append(ports.port())
        base = ports.block(4, align=2)
        assert base % 2 == 0
        handed += range(base, base + 4)
    assert len(handed) == len(set(handed))
    assert ports.slice is not None and all(p in ports.slice for p in handed)


def test_a_port_held_by_anyone_for_udp_or_tcp_is_skipped(tmp_path: Path) -> None:
    ports = allocator(tmp_path)
    first = ports.port()
    ports.release({first})
    ports._cursor = first  # the next search starts at the port we hold below
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.bind(("127.0.0.1", first))
        assert not bindable(first)
        assert ports.port() != first
    ports._cursor = first + 2
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", first + 2))
        assert ports.block(4, align=2) > first + 2


def test_each_process_gets_its_own_slice(tmp_path: Path) -> None:
    # Two allocators on one lock directory stand for two processes: flock locks belong
    # to open files, so the second cannot take the first one's slice.
    one, two = allocator(tmp_path), allocator(tmp_path)
    one.port(), two.port()
    assert one.slice is not None and two.slice is not None
    assert set(one.slice).isdisjoint(two.slice)
    with pytest.raises(RuntimeError, match="slices"):
        allocator(tmp_path).port()


def test_a_lease_gives_its_ports_back_and_only_those(tmp_path: Path) -> None:
    ports = allocator(tmp_path)
    kept = ports.port()
    with ports.lease():
        leased = ports.block(4)
        assert set(range(leased, leased + 4)) <= ports.handed
    assert ports.handed == {kept}


def test_a_bound_udp_socket_is_handed_over_with_its_rtcp_port_reserved(tmp_path: Path) -> None:
    ports = allocator(tmp_path)
    with ports.udp_socket() as sock:
        port = sock.getsockname()[1]
        assert port % 2 == 0 and {port, port + 1} <= ports.handed


def test_a_wide_range_spans_slices_of_its_own(tmp_path: Path) -> None:
    ports = allocator(tmp_path, 28000, 32000)
    ports.port()
    first, last = ports.wide_range(1500)
    assert last - first + 1 == 1500
    assert ports.slice is not None and first not in ports.slice and last not in ports.slice


def test_a_sweep_of_wide_ranges_reuses_or_replaces_its_slices(tmp_path: Path) -> None:
    ports = allocator(tmp_path, 28000, 32000)  # 4 slices of 1000
    sizes = [1200, 1600, 2000, 2400, 3000, 1000]  # 13 slices if none came back
    spans = [ports.wide_range(size) for size in sizes]
    assert [last - first + 1 for first, last in spans] == sizes
    other = allocator(tmp_path, 28000, 32000)  # another process: the rest is free for it
    first, last = other.wide_range(1000)
    assert not set(range(first, last + 1)) & set(range(spans[-1][0], spans[-1][1] + 1))
