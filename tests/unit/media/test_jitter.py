"""Jitter buffer: reordering, loss concealment, late packets, adaptation, re-framing."""

from __future__ import annotations

import itertools

from sip_media.media.jitter import FRAME, JitterBuffer


def frame(n: int) -> bytes:
    return bytes([n % 250]) * FRAME


def test_in_order_stream_plays_every_frame() -> None:
    jb = JitterBuffer(0xFF)
    out = []
    for i in range(10):
        jb.push(1000 + i * FRAME, frame(i))
        out.append(jb.pull())
    assert out == [frame(i) for i in range(10)]


def test_reordering_within_depth() -> None:
    jb = JitterBuffer(0xFF)
    jb.push(0, frame(0))
    jb.push(FRAME, frame(1))
    assert jb.pull() == frame(0)
    # 3 arrives before 2
    jb.push(3 * FRAME, frame(3))
    jb.push(2 * FRAME, frame(2))
    assert [jb.pull(), jb.pull(), jb.pull()] == [frame(1), frame(2), frame(3)]


def test_loss_concealment_repeats_once_then_silence() -> None:
    jb = JitterBuffer(0xFF)
    jb.push(0, frame(7))
    assert jb.pull() == frame(7)
    assert jb.pull() == frame(7)  # first lost frame: repeat
    assert jb.pull() == b"\xff" * FRAME  # then silence
    jb.push(3 * FRAME, frame(9))
    assert jb.pull() == frame(9)
    assert jb.concealed == 2


def test_late_packet_rewinds_once_then_late_ones_are_dropped() -> None:
    jb = JitterBuffer(0xFF)
    jb.push(0, frame(0))
    assert jb.pull() == frame(0)
    assert jb.pull() == frame(0)  # frame 1 missing: concealed
    jb.push(FRAME, frame(1))  # arrives just late: the buffer adds a frame of delay
    jb.push(2 * FRAME, frame(2))
    assert jb.depth == 2
    assert [jb.pull(), jb.pull()] == [frame(1), frame(2)]
    jb.push(0, frame(0))  # far too late now
    assert jb.dropped_late == 1


def test_duplicates_counted() -> None:
    jb = JitterBuffer(0xFF)
    jb.push(0, frame(0))
    jb.push(FRAME, frame(1))
    assert not jb.push(FRAME, frame(1))
    assert jb.duplicates == 1


def test_shrinks_after_a_second_of_spare_frames() -> None:
    jb = JitterBuffer(0xFF)
    for i in range(3):  # two spare frames buffered all the time
        jb.push(i * FRAME, frame(i))
    played = []
    for i in range(3, 80):
        played.append(jb.pull())
        jb.push(i * FRAME, frame(i))
    indices = [p[0] for p in played if p is not None]
    skipped = [a for a, b in itertools.pairwise(indices) if b != a + 1]
    assert len(skipped) == 1 and 45 <= skipped[0] <= 55  # one frame dropped after ~1 s


def test_idle_then_resync_and_wraparound() -> None:
    jb = JitterBuffer(0xD5)
    start = 2**32 - 2 * FRAME
    for i in range(4):
        jb.push((start + i * FRAME) & 0xFFFFFFFF, frame(i))
        assert jb.pull() == frame(i)
    for _ in range(JitterBuffer.IDLE_AFTER + 1):
        jb.pull()
    assert jb.pull() is None
    jb.push(123456, frame(5))
    assert jb.pull() == frame(5)


def test_other_packet_sizes_are_reframed() -> None:
    jb = JitterBuffer(0xFF)
    data = bytes(range(240)) * 2  # 480 samples in 30 ms packets of 240
    jb.push(0, data[:240])
    jb.push(240, data[240:])
    assert jb.pull() == data[:160]
    assert jb.pull() == data[160:320]
    assert jb.pull() == data[320:480]


def test_big_jump_restarts() -> None:
    jb = JitterBuffer(0xFF)
    jb.push(0, frame(0))
    assert jb.pull() == frame(0)
    jb.push(10_000_000, frame(1))
    assert jb.pull() == frame(1)
