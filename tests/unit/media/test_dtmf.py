"""DTMF: RFC 4733 receive/send state machines and in-band detection."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from sip_media.media import g711
from sip_media.media.dtmf import (
    DIGITS,
    DtmfEnd,
    DtmfStart,
    EventReceiver,
    EventSender,
    InbandDetector,
    detect_frames,
    dtmf_tone,
)


def ev(digit: str, duration: int, end: bool = False) -> bytes:
    return struct.pack("!BBH", DIGITS.index(digit), (0x80 if end else 0) | 10, duration)


def test_receive_dedupes_by_timestamp_and_end_retransmissions() -> None:
    rx = EventReceiver()
    got = []
    got += rx.feed(1000, ev("5", 160), 0.0)
    got += rx.feed(1000, ev("5", 320), 0.02)
    got += rx.feed(1000, ev("5", 800, True), 0.1)
    got += rx.feed(1000, ev("5", 800, True), 0.12)  # retransmissions
    got += rx.feed(1000, ev("5", 800, True), 0.14)
    got += rx.feed(5000, ev("#", 400, True), 0.5)  # single end packet: start + end
    assert got == [DtmfStart("5"), DtmfEnd("5", 100), DtmfStart("#"), DtmfEnd("#", 50)]


def test_receive_lost_end_packets_time_out() -> None:
    rx = EventReceiver()
    assert rx.feed(0, ev("1", 480), 0.0) == [DtmfStart("1")]
    assert rx.poll(0.2) == []
    assert rx.poll(1.0) == [DtmfEnd("1", 60)]


def test_receive_ignores_garbage() -> None:
    rx = EventReceiver()
    assert rx.feed(0, b"\x01", 0.0) == []
    assert rx.feed(0, bytes([200, 0x80, 0, 10]), 0.0) == []  # event 200 is not a digit


def test_sender_sequence() -> None:
    tx = EventSender()
    tx.queue("7", 100)  # 800 samples -> 5 frames
    packets = []
    ts = 4000
    while tx.busy:
        p = tx.next_packet(ts)
        if p is not None:
            packets.append(p)
        ts += 160
    assert packets[0][0] is True and all(not p[0] for p in packets[1:])
    assert {p[1] for p in packets} == {4000}
    durations = [struct.unpack("!BBH", p[2])[2] for p in packets]
    assert durations == [160, 320, 480, 640, 800, 800, 800]
    ends = [p[2][1] & 0x80 for p in packets]
    assert ends == [0, 0, 0, 0, 0x80, 0x80, 0x80]
    with pytest.raises(ValueError):
        tx.queue("x", 100)


def test_inband_detection_all_digits_through_g711() -> None:
    for pt in (g711.PCMU, g711.PCMA):
        frames = []
        for d in DIGITS:
            pcm = dtmf_tone(d, 160).astype(np.int16)
            frames.append(g711.decode(pt, g711.encode(pt, pcm)).astype(np.float32))
        result = detect_frames(np.stack(frames))
        assert result.tolist() == list(range(16))


def test_inband_rejects_speechlike_and_silence() -> None:
    t = np.arange(160) / 8000
    single = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    chord = (4000 * (np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 770 * t))).astype(np.float32)
    quiet = (dtmf_tone("1", 160) / 1000).astype(np.float32)
    noise = np.random.default_rng(1).normal(0, 3000, 160).astype(np.float32)
    assert detect_frames(np.stack([single, chord, quiet, noise])).tolist() == [-1, -1, -1, -1]


def test_inband_debounce_and_duration() -> None:
    det = InbandDetector()
    seq = [-1, 3, 3, 3, 3, 3, -1, -1, -1, 3, -1]
    out = [s for d in seq for s in det.feed(d)]
    assert out == [DtmfStart("3"), DtmfEnd("3", 100)]
