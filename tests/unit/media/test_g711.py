"""G.711 tables are bit-exact with the ITU-T reference algorithm (as in old ``audioop``).

The expected values come from a straight pure-Python transcription of the reference
code (Sun/ITU g711.c), evaluated for every int16 input and every code byte.
"""

from __future__ import annotations

import numpy as np

from sip_media.media import g711

SEG_UEND = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
SEG_AEND = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _search(val: int, table: tuple[int, ...]) -> int:
    for i, end in enumerate(table):
        if val <= end:
            return i
    return len(table)


def ref_linear2ulaw(pcm16: int) -> int:
    pcm_val = pcm16 >> 2
    if pcm_val < 0:
        pcm_val = -pcm_val
        mask = 0x7F
    else:
        mask = 0xFF
    pcm_val = min(pcm_val, 8159) + (0x84 >> 2)
    seg = _search(pcm_val, SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm_val >> (seg + 1)) & 0xF)) ^ mask


def ref_linear2alaw(pcm16: int) -> int:
    pcm_val = pcm16 >> 3
    if pcm_val >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm_val = -pcm_val - 1
    seg = _search(pcm_val, SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= ((pcm_val >> 1) if seg < 2 else (pcm_val >> seg)) & 0xF
    return aval ^ mask


def ref_ulaw2linear(u: int) -> int:
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if u & 0x80 else (t - 0x84)


def ref_alaw2linear(a: int) -> int:
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


ALL_PCM = np.arange(-32768, 32768, dtype=np.int32)


def test_ulaw_encode_all_65536_values() -> None:
    expected = np.array([ref_linear2ulaw(int(v)) for v in ALL_PCM], dtype=np.uint8)
    assert np.array_equal(g711.encode(g711.PCMU, ALL_PCM.astype(np.int16)), expected)


def test_alaw_encode_all_65536_values() -> None:
    expected = np.array([ref_linear2alaw(int(v)) for v in ALL_PCM], dtype=np.uint8)
    assert np.array_equal(g711.encode(g711.PCMA, ALL_PCM.astype(np.int16)), expected)


def test_decode_all_256_codes() -> None:
    codes = bytes(range(256))
    assert g711.decode(g711.PCMU, codes).tolist() == [ref_ulaw2linear(c) for c in codes]
    assert g711.decode(g711.PCMA, codes).tolist() == [ref_alaw2linear(c) for c in codes]


def test_round_trip_is_stable_and_silence_bytes() -> None:
    for pt in g711.SUPPORTED_PAYLOAD_TYPES:
        codes = np.arange(256, dtype=np.uint8)
        again = g711.encode(pt, g711.decode(pt, codes))
        # every code decodes to a value that encodes back to a code with the same value
        assert np.array_equal(g711.decode(pt, again), g711.decode(pt, codes))
        assert abs(int(g711.decode(pt, bytes([g711.SILENCE_BYTE[pt]]))[0])) <= 8


def test_transcode_preserves_a_tone() -> None:
    t = np.arange(800) / 8000
    pcm = (10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    ulaw = g711.encode(g711.PCMU, pcm).tobytes()
    alaw = g711.transcode(g711.PCMU, g711.PCMA, ulaw)
    back = g711.decode(g711.PCMA, alaw).astype(float)
    assert np.max(np.abs(back - pcm)) < 700
