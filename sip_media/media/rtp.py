"""RTP and RTCP packets (RFC 3550): parse with validation, serialise.

Where it sits: first and last step of the media flow.  A leg's socket hands raw
datagrams to :func:`parse_rtp` (bad ones return ``None`` and are counted by the leg,
never raised); the engine builds outgoing packets with :func:`build_rtp`.  RTCP sender
and receiver reports are built/parsed here too; the leg decides when to send them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

RTP_VERSION: Final = 2
RTP_HEADER: Final = struct.Struct("!BBHII")
NTP_EPOCH_OFFSET: Final = 2208988800  # seconds from 1900-01-01 to 1970-01-01

RTCP_SR: Final = 200
RTCP_RR: Final = 201


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One parsed RTP packet; ``payload`` excludes CSRCs, extension and padding."""

    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None


def parse_rtp(data: bytes) -> RtpPacket | None:
    """Parse one RTP datagram; return ``None`` for anything malformed.

    Rejected: shorter than 12 bytes, version != 2, RTCP payload types 72-76 (when
    multiplexed), CSRC list / extension / padding running past the end, zero or
    over-long padding.
    """
    if len(data) < 12:
        return None
    b0, b1, seq, ts, ssrc = RTP_HEADER.unpack_from(data)
    if b0 >> 6 != RTP_VERSION:
        return None
    pt = b1 & 0x7F
    if 72 <= pt <= 76:
        return None
    offset = 12
    cc = b0 & 0x0F
    end = len(data)
    if b0 & 0x20:  # padding: last octet counts the padding octets, itself included
        pad = data[-1]
        if pad == 0 or pad > end - offset - cc * 4:
            return None
        end -= pad
    csrcs: tuple[int, ...] = ()
    if cc:
        if offset + cc * 4 > end:
            return None
        csrcs = struct.unpack_from(f"!{cc}I", data, offset)
        offset += cc * 4
    extension: tuple[int, bytes] | None = None
    if b0 & 0x10:
        if offset + 4 > end:
            return None
        profile, words = struct.unpack_from("!HH", data, offset)
        offset += 4
        if offset + words * 4 > end:
            return None
        extension = (profile, bytes(data[offset : offset + words * 4]))
        offset += words * 4
    return RtpPacket(
        payload_type=pt,
        marker=bool(b1 & 0x80),
        sequence=seq,
        timestamp=ts,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        csrcs=csrcs,
        extension=extension,
    )


def build_rtp(
    payload_type: int, marker: bool, sequence: int, timestamp: int, ssrc: int, payload: bytes
) -> bytes:
    """Serialise a plain RTP packet (no CSRC, extension or padding)."""
    return (
        RTP_HEADER.pack(
            0x80,
            (0x80 if marker else 0) | (payload_type & 0x7F),
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + payload
    )


def serialise_rtp(packet: RtpPacket, padding: int = 0) -> bytes:
    """Serialise any :class:`RtpPacket`, with CSRCs, extension and optional padding."""
    b0 = 0x80 | len(packet.csrcs)
    body = b"".join(struct.pack("!I", c) for c in packet.csrcs)
    if packet.extension is not None:
        profile, ext = packet.extension
        if len(ext) % 4:
            raise ValueError("extension length must be a multiple of 4")
        b0 |= 0x10
        body += struct.pack("!HH", profile, len(ext) // 4) + ext
    tail = b""
    if padding:
        b0 |= 0x20
        tail = bytes(padding - 1) + bytes([padding])
    header = RTP_HEADER.pack(
        b0,
        (0x80 if packet.marker else 0) | packet.payload_type,
        packet.sequence & 0xFFFF,
        packet.timestamp & 0xFFFFFFFF,
        packet.ssrc,
    )
    return header + body + packet.payload + tail


# --------------------------------------------------------------------------- RTCP


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block of an SR/RR."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_seq: int
    jitter: int
    lsr: int
    dlsr: int


@dataclass(frozen=True, slots=True)
class RtcpReport:
    """A parsed SR or RR (the first packet of a compound RTCP datagram)."""

    packet_type: int
    ssrc: int
    ntp_middle: int  # middle 32 bits of the NTP timestamp of an SR, 0 for an RR
    packet_count: int
    octet_count: int
    blocks: tuple[ReportBlock, ...]


_BLOCK = struct.Struct("!IBBHIIII")


def ntp_timestamp(unix_time: float) -> tuple[int, int]:
    """Return (seconds, fraction) of the 64-bit NTP timestamp for a Unix time."""
    secs = int(unix_time) + NTP_EPOCH_OFFSET
    frac = int((unix_time % 1.0) * (1 << 32)) & 0xFFFFFFFF
    return secs & 0xFFFFFFFF, frac


def _pack_block(block: ReportBlock) -> bytes:
    lost = block.cumulative_lost & 0xFFFFFF
    return _BLOCK.pack(
        block.ssrc,
        block.fraction_lost & 0xFF,
        lost >> 16,
        lost & 0xFFFF,
        block.highest_seq & 0xFFFFFFFF,
        block.jitter & 0xFFFFFFFF,
        block.lsr & 0xFFFFFFFF,
        block.dlsr & 0xFFFFFFFF,
    )


def build_sr(
    ssrc: int,
    unix_time: float,
    rtp_timestamp: int,
    packet_count: int,
    octet_count: int,
    blocks: tuple[ReportBlock, ...] = (),
) -> bytes:
    """Build a sender report (with up to 31 report blocks)."""
    secs, frac = ntp_timestamp(unix_time)
    body = struct.pack(
        "!IIIIII",
        ssrc,
        secs,
        frac,
        rtp_timestamp & 0xFFFFFFFF,
        packet_count & 0xFFFFFFFF,
        octet_count & 0xFFFFFFFF,
    ) + b"".join(_pack_block(b) for b in blocks[:31])
    return struct.pack("!BBH", 0x80 | len(blocks[:31]), RTCP_SR, len(body) // 4) + body


def build_rr(ssrc: int, blocks: tuple[ReportBlock, ...] = ()) -> bytes:
    """Build a receiver report."""
    body = struct.pack("!I", ssrc) + b"".join(_pack_block(b) for b in blocks[:31])
    return struct.pack("!BBH", 0x80 | len(blocks[:31]), RTCP_RR, len(body) // 4) + body


def parse_rtcp(data: bytes) -> RtcpReport | None:
    """Parse the leading SR/RR of an RTCP datagram; ``None`` if malformed."""
    if len(data) < 8:
        return None
    b0, pt, length = struct.unpack_from("!BBH", data)
    if b0 >> 6 != RTP_VERSION or pt not in (RTCP_SR, RTCP_RR):
        return None
    size = (length + 1) * 4
    if size > len(data):
        return None
    count = b0 & 0x1F
    ssrc = struct.unpack_from("!I", data, 4)[0]
    offset = 8
    ntp_middle = packets = octets = 0
    if pt == RTCP_SR:
        if size < 28:
            return None
        secs, frac, _rtp_ts, packets, octets = struct.unpack_from("!IIIII", data, 8)
        ntp_middle = ((secs & 0xFFFF) << 16) | (frac >> 16)
        offset = 28
    if offset + count * 24 > size:
        return None
    blocks = []
    for i in range(count):
        bssrc, frac_lost, lost_hi, lost_lo, hseq, jit, lsr, dlsr = _BLOCK.unpack_from(
            data, offset + i * 24
        )
        blocks.append(
            ReportBlock(bssrc, frac_lost, (lost_hi << 16) | lost_lo, hseq, jit, lsr, dlsr)
        )
    return RtcpReport(pt, ssrc, ntp_middle, packets, octets, tuple(blocks))
