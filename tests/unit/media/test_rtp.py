"""RTP/RTCP parsing: valid variants and every malformation returns ``None``."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from sip_media.media import rtp


def _pkt(**kw: object) -> rtp.RtpPacket:
    base: dict[str, object] = dict(
        payload_type=0, marker=False, sequence=1, timestamp=160, ssrc=7, payload=b"\xff" * 160
    )
    base.update(kw)
    return rtp.RtpPacket(**base)  # type: ignore[arg-type]


def test_plain_round_trip() -> None:
    data = rtp.build_rtp(8, True, 65535, 2**32 - 1, 0xDEADBEEF, b"abc")
    p = rtp.parse_rtp(data)
    assert p == rtp.RtpPacket(8, True, 65535, 2**32 - 1, 0xDEADBEEF, b"abc")


def test_padding_csrc_and_extension() -> None:
    pkt = _pkt(csrcs=(1, 2, 3), extension=(0xBEDE, b"\x01\x02\x03\x04"))
    data = rtp.serialise_rtp(pkt, padding=4)
    parsed = rtp.parse_rtp(data)
    assert parsed == pkt


def test_rejections() -> None:
    good = rtp.serialise_rtp(_pkt(csrcs=(1,), extension=(1, b"abcd")), padding=2)
    assert rtp.parse_rtp(good) is not None
    assert rtp.parse_rtp(good[:11]) is None  # truncated header
    assert rtp.parse_rtp(b"\x40" + good[1:]) is None  # version 1
    assert rtp.parse_rtp(b"\xc0" + good[1:]) is None  # version 3
    assert rtp.parse_rtp(b"") is None
    # CSRC count runs past the end
    assert rtp.parse_rtp(bytes([0x8F]) + bytes(15)) is None
    # extension header truncated / extension length past the end
    assert rtp.parse_rtp(bytes([0x90, 0]) + bytes(10) + b"\x00\x01") is None
    assert rtp.parse_rtp(bytes([0x90, 0]) + bytes(10) + b"\x00\x01\x00\x09" + bytes(8)) is None
    # padding: zero, or more than the packet holds
    assert rtp.parse_rtp(bytes([0xA0, 0]) + bytes(10) + b"xy\x00") is None
    assert rtp.parse_rtp(bytes([0xA0, 0]) + bytes(10) + b"xy\x09") is None
    # RTCP multiplexed on the RTP port (PT 200 -> 72 with marker)
    assert rtp.parse_rtp(rtp.build_rr(5)) is None


def test_padding_only_payload_is_empty() -> None:
    data = bytes([0xA0, 0]) + bytes(10) + b"\x00\x00\x03"
    p = rtp.parse_rtp(data)
    assert p is not None and p.payload == b""


@given(st.binary(max_size=300))
def test_fuzz_never_raises(data: bytes) -> None:
    p = rtp.parse_rtp(data)
    if p is not None:
        assert 0 <= p.payload_type < 128
    rtp.parse_rtcp(data)


def test_rtcp_sr_and_rr_round_trip() -> None:
    block = rtp.ReportBlock(9, 12, 300, 70000, 42, 0x12345678, 65536)
    sr = rtp.build_sr(1, 1_700_000_000.5, 1234, 50, 8000, (block,))
    parsed = rtp.parse_rtcp(sr)
    assert parsed is not None
    assert parsed.packet_type == rtp.RTCP_SR and parsed.ssrc == 1
    assert parsed.packet_count == 50 and parsed.octet_count == 8000
    assert parsed.blocks == (block,)
    secs, frac = rtp.ntp_timestamp(1_700_000_000.5)
    assert parsed.ntp_middle == ((secs & 0xFFFF) << 16) | (frac >> 16)
    rr = rtp.parse_rtcp(rtp.build_rr(3, (block,)))
    assert rr is not None and rr.packet_type == rtp.RTCP_RR and rr.blocks == (block,)
    assert rtp.parse_rtcp(sr[:20]) is None
    assert rtp.parse_rtcp(struct.pack("!BBH", 0x80, 202, 0) + bytes(4)) is None
