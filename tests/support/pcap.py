"""RTP in a pcap file, for SIPp's ``play_pcap_audio``: a SIPp phone that presses keys.

SIPp plays a libpcap file's UDP payloads from its media port to the RTP address of the
call, at the pace of the capture's timestamps. ``tone_and_digits`` makes one RTP stream
of a PCMU tone with RFC 4733 digits in it (event updates every 20 ms, the end sent three
times, as phones do) and ``make_pcap`` wraps packets in Ethernet/IPv4/UDP frames (the
addresses are rewritten by SIPp).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from sip_media.media import g711

DIGITS = "0123456789*#ABCD"


def make_pcap(path: Path, rtp_packets: list[tuple[float, bytes]]) -> Path:
    """A libpcap file (Ethernet/IPv4/UDP) carrying the given RTP packets."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for t, payload in rtp_packets:
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(payload), 0) + payload
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, b"\x7f\0\0\1", b"\x7f\0\0\1"
        )
        frame = bytes(12) + b"\x08\x00" + ip + udp
        sec = int(t)
        out.append(struct.pack("<IIII", sec, int((t - sec) * 1e6), len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def tone_and_digits(
    digits: list[tuple[str, int]], gap_s: float = 0.6, freq: float = 1000.0, te_pt: int = 101
) -> list[tuple[float, bytes]]:
    """One RTP stream: ``freq`` in PCMU, with each digit (and its length in ms) sent as
    RFC 4733 events (payload type ``te_pt``) between ``gap_s`` of tone."""
    packets: list[tuple[float, bytes]] = []
    seq, ts, t, n = 0, 0, 1000.0, 0

    def add(pt: int, marker: bool, stamp: int, payload: bytes, when: float) -> None:
        nonlocal seq
        head = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, stamp, 0x5EED)
        packets.append((when, head + payload))
        seq += 1

    def audio(seconds: float) -> None:
        nonlocal ts, t, n
        for _ in range(int(seconds / 0.02)):
            pcm = (6000 * np.sin(2 * np.pi * freq * (np.arange(160) + n) / 8000)).astype(np.int16)
            add(0, False, ts, g711.encode(0, pcm).tobytes(), t)
            ts, t, n = ts + 160, t + 0.02, n + 160

    audio(gap_s)
    for digit, ms in digits:
        start, total = ts, ms * 8
        code = DIGITS.index(digit)
        elapsed = 0
        while elapsed < total:
            elapsed = min(elapsed + 160, total)
            end = elapsed >= total
            payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, elapsed)
            for k in range(3 if end else 1):
                add(te_pt, elapsed == 160, start, payload, t + k * 0.005)
            ts, t = ts + 160, t + 0.02
        audio(gap_s)
    return packets
