"""G.711 µ-law / A-law codecs with numpy lookup tables (decode and encode step).

Where it sits: the engine decodes every leg's jitter-buffer frame with :func:`decode`
into int16 linear PCM before mixing, and encodes the mixed frame with :func:`encode`
before the RTP header is written.  Tables are built once at import with the ITU-T G.711
reference algorithm (the same as the old stdlib ``audioop``), so encode/decode is one
numpy fancy-indexing operation, vectorised across all legs of a tick.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

PCMU: Final = 0
PCMA: Final = 8
SUPPORTED_PAYLOAD_TYPES: Final = (PCMU, PCMA)
CODEC_NAMES: Final = {PCMU: "PCMU", PCMA: "PCMA"}
# The encoded value of digital silence, used for concealment and idle frames.
SILENCE_BYTE: Final = {PCMU: 0xFF, PCMA: 0xD5}

# Segment end points of the ITU-T G.711 reference code (14-bit µ-law, 13-bit A-law).
_SEG_UEND: Final = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_SEG_AEND: Final = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _ulaw_decode_one(u: int) -> int:
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


def _alaw_decode_one(a: int) -> int:
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t += 0x108
        t <<= seg - 1
    return t if (a & 0x80) else -t


def _build_encode_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Vectorised ITU reference encoders over every int16 value (index = uint16 view)."""
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    # µ-law (14-bit magnitude domain, bias 0x84, clip 8159).
    v = pcm >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    v = np.where(v < 0, -v, v)
    v = np.minimum(v, 8159) + (0x84 >> 2)
    seg = np.searchsorted(np.array(_SEG_UEND), v, side="left")
    uval = np.where(
        seg >= 8,
        0x7F,
        (np.minimum(seg, 7) << 4) | ((v >> (np.minimum(seg, 7) + 1)) & 0x0F),
    )
    ulaw = (uval ^ mask).astype(np.uint8)
    # A-law (13-bit magnitude domain).
    a = pcm >> 3
    amask = np.where(a >= 0, 0xD5, 0x55)
    a = np.where(a >= 0, a, -a - 1)
    aseg = np.searchsorted(np.array(_SEG_AEND), a, side="left")
    segc = np.minimum(aseg, 7)
    aval = np.where(
        aseg >= 8,
        0x7F,
        (segc << 4) | np.where(segc < 2, (a >> 1) & 0x0F, (a >> segc) & 0x0F),
    )
    alaw = (aval ^ amask).astype(np.uint8)
    return ulaw, alaw


ULAW_DECODE: Final = np.array([_ulaw_decode_one(i) for i in range(256)], dtype=np.int16)
ALAW_DECODE: Final = np.array([_alaw_decode_one(i) for i in range(256)], dtype=np.int16)
ULAW_ENCODE, ALAW_ENCODE = _build_encode_tables()
DECODE_TABLES: Final = {PCMU: ULAW_DECODE, PCMA: ALAW_DECODE}
ENCODE_TABLES: Final = {PCMU: ULAW_ENCODE, PCMA: ALAW_ENCODE}


def decode(payload_type: int, data: bytes | npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """Decode G.711 bytes (any shape when given an array) to int16 linear PCM."""
    codes = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    result: npt.NDArray[np.int16] = DECODE_TABLES[payload_type][codes]
    return result


def encode(payload_type: int, pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """Encode int16 linear PCM (any shape) to G.711 codes of the same shape."""
    result: npt.NDArray[np.uint8] = ENCODE_TABLES[payload_type][pcm.view(np.uint16)]
    return result


def transcode(from_pt: int, to_pt: int, data: bytes) -> bytes:
    """Convert one G.711 payload to the other law (used by tests and tools)."""
    if from_pt == to_pt:
        return data
    return encode(to_pt, decode(from_pt, data)).tobytes()
