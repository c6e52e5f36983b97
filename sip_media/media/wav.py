"""WAV reading (any common PCM format) → 8 kHz mono, and the incremental WAV writer.

Where it sits: players load prompts through :func:`load_8k_mono` (RIFF parsed here:
8/16/24/32-bit integer PCM, 32/64-bit float, WAVE_FORMAT_EXTENSIBLE, any channel count
and rate; channels averaged; rate converted with a windowed-sinc low-pass and linear
interpolation in numpy).  Recorders write through :class:`WavWriter`, which rewrites
the RIFF/data sizes periodically so a crash leaves a playable file.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from .errors import MediaFileError

TARGET_RATE: Final = 8000
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
MAX_FILE_BYTES: Final = 512 * 1024 * 1024


def _parse_chunks(data: bytes) -> tuple[tuple[int, int, int, int], bytes]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise MediaFileError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise MediaFileError("short fmt chunk")
            tag, channels, rate, _br, _align, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            if fmt is None:
                raise MediaFileError("data chunk before fmt chunk")
            return fmt, body
        pos += 8 + size + (size & 1)
    raise MediaFileError("no fmt/data chunk")


def _samples(fmt: tuple[int, int, int, int], body: bytes) -> npt.NDArray[np.float64]:
    tag, channels, _rate, bits = fmt
    if channels < 1:
        raise MediaFileError("no channels")
    width = bits // 8
    usable = len(body) - len(body) % (width * channels) if width else 0
    raw = body[:usable]
    if tag == _PCM and bits == 8:
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif tag == _PCM and bits == 16:
        x = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    elif tag == _PCM and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / float(1 << 23)
    elif tag == _PCM and bits == 32:
        x = np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)
    elif tag == _FLOAT and bits in (32, 64):
        x = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float64)
        x = np.nan_to_num(np.clip(x, -1.0, 1.0))
    else:
        raise MediaFileError(f"unsupported WAV format tag={tag} bits={bits}")
    result: npt.NDArray[np.float64] = x.reshape(-1, channels).mean(axis=1)
    return result


def lowpass_kernel(cutoff: float, rate: float, taps: int = 63) -> npt.NDArray[np.float64]:
    """Windowed-sinc (Blackman) low-pass FIR with unity DC gain."""
    n = np.arange(taps) - (taps - 1) / 2
    h = np.sinc(2 * cutoff / rate * n) * np.blackman(taps)
    result: npt.NDArray[np.float64] = h / h.sum()
    return result


def resample(x: npt.NDArray[np.float64], rate: int, target: int) -> npt.NDArray[np.float64]:
    """Resample mono float audio from ``rate`` to ``target`` Hz."""
    if rate == target or x.size == 0:
        return x
    if rate > target:
        x = np.convolve(x, lowpass_kernel(0.45 * target, rate), mode="same")
    duration = x.size / rate
    n_out = max(1, round(duration * target))
    t_out = np.arange(n_out) * (rate / target)
    result: npt.NDArray[np.float64] = np.interp(t_out, np.arange(x.size), x)
    return result


def load_8k_mono(path: Path) -> npt.NDArray[np.int16]:
    """Read any supported WAV file and return 8 kHz mono int16 samples."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise MediaFileError(f"{path.name}: file too large")
        data = path.read_bytes()
    except OSError as exc:
        raise MediaFileError(f"cannot read {path.name}: {exc.strerror}") from exc
    fmt, body = _parse_chunks(data)
    if not 1000 <= fmt[2] <= 384000:
        raise MediaFileError(f"unsupported sample rate {fmt[2]}")
    x = resample(_samples(fmt, body), fmt[2], TARGET_RATE)
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def wav_header(channels: int, rate: int, data_bytes: int) -> bytes:
    """A 44-byte canonical 16-bit PCM WAV header."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        channels,
        rate,
        rate * channels * 2,
        channels * 2,
        16,
        b"data",
        data_bytes,
    )


def write_wav(path: Path, samples: npt.NDArray[np.int16], rate: int = TARGET_RATE) -> None:
    """Write int16 samples (shape ``(n,)`` or ``(n, channels)``) as a WAV file."""
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    body = samples.astype("<i2").tobytes()
    path.write_bytes(wav_header(channels, rate, len(body)) + body)


class WavWriter:
    """Incremental 16-bit WAV writer whose header is fixed up every ``fixup_bytes``."""

    def __init__(self, fh: BinaryIO, channels: int, rate: int = TARGET_RATE) -> None:
        self._fh = fh
        self.channels = channels
        self.rate = rate
        self.data_bytes = 0
        self._since_fixup = 0
        self._fixup_every = rate * channels * 2  # one second of audio
        fh.write(wav_header(channels, rate, 0))
        fh.flush()

    def write(self, samples: npt.NDArray[np.int16]) -> None:
        """Append interleaved samples; fix the header once a second of audio is written."""
        body = samples.astype("<i2", copy=False).tobytes()
        self._fh.write(body)
        self.data_bytes += len(body)
        self._since_fixup += len(body)
        if self._since_fixup >= self._fixup_every:
            self.fixup()

    def fixup(self) -> None:
        """Rewrite RIFF and data sizes so the file on disk is playable as it stands."""
        pos = self._fh.tell()
        self._fh.seek(4)
        self._fh.write(struct.pack("<I", 36 + self.data_bytes))
        self._fh.seek(40)
        self._fh.write(struct.pack("<I", self.data_bytes))
        self._fh.seek(pos)
        self._fh.flush()
        self._since_fixup = 0

    def close(self) -> None:
        """Final header fix-up and close."""
        self.fixup()
        self._fh.close()

    @property
    def duration_secs(self) -> float:
        """Seconds of audio written so far."""
        return self.data_bytes / (self.rate * self.channels * 2)


def close_interrupted(path: Path) -> tuple[float, int]:
    """Make a WAV written by :class:`WavWriter` valid after its process died: the sizes
    in its header are set from the whole frames on disk (a torn last frame is cut off).
    Returns the seconds of audio and the file's size."""
    with path.open("r+b") as fh:
        head = fh.read(44)
        if len(head) < 44 or head[:4] != b"RIFF" or head[36:40] != b"data":
            raise MediaFileError(f"{path} is not a WAV this engine wrote")
        channels, rate = struct.unpack("<HI", head[22:28])
        frame = 2 * channels
        size = fh.seek(0, 2)
        data = (size - 44) // frame * frame
        fh.truncate(44 + data)
        fh.seek(0)
        fh.write(wav_header(channels, rate, data))
    return data / (rate * frame), 44 + data
