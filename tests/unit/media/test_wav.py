"""WAV conversion to 8 kHz mono from every common format, and the incremental writer."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from sip_media.media import assets
from sip_media.media.errors import MediaFileError
from sip_media.media.wav import WavWriter, load_8k_mono


def peak_hz(x: np.ndarray, rate: int = 8000) -> float:
    spec = np.abs(np.fft.rfft(x.astype(float) * np.hanning(x.size)))
    return float(np.argmax(spec) * rate / x.size)


def write_raw_wav(
    path: Path, rate: int, channels: int, bits: int, body: bytes, tag: int = 1, ext: bool = False
) -> None:
    align = channels * bits // 8
    if ext:
        fmt = struct.pack("<HHIIHH", 0xFFFE, channels, rate, rate * align, align, bits)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + bytes(14)
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    riff += b"LIST" + struct.pack("<I", 4) + b"INFO"  # an extra chunk to skip
    riff += b"data" + struct.pack("<I", len(body)) + body
    path.write_bytes(b"RIFF" + struct.pack("<I", len(riff)) + riff)


def tone(rate: int, seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("bits", [8, 16, 24, 32])
def test_formats_and_rates(tmp_path: Path, rate: int, bits: int) -> None:
    x = tone(rate, 0.5, 1000.0)
    stereo = np.stack([x, x], axis=1).reshape(-1)
    if bits == 8:
        body = np.round(stereo * 127 + 128).astype(np.uint8).tobytes()
    elif bits == 16:
        body = np.round(stereo * 32767).astype("<i2").tobytes()
    elif bits == 24:
        v = np.round(stereo * (2**23 - 1)).astype(np.int32)
        body = np.stack([v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF], axis=1)
        body = body.astype(np.uint8).tobytes()
    else:
        body = np.round(stereo * (2**31 - 1)).astype("<i4").tobytes()
    path = tmp_path / "t.wav"
    write_raw_wav(path, rate, 2, bits, body)
    out = load_8k_mono(path)
    assert out.dtype == np.int16
    assert abs(out.size - 4000) <= 1
    assert abs(peak_hz(out) - 1000.0) < 10
    assert 14000 < np.max(np.abs(out)) < 18000


def test_float_extensible_mono_and_aliasing_filtered(tmp_path: Path) -> None:
    rate = 48000
    x = tone(rate, 0.5, 500.0) + tone(rate, 0.5, 7000.0)  # 7 kHz must not alias into band
    path = tmp_path / "f.wav"
    write_raw_wav(path, rate, 1, 32, x.astype("<f4").tobytes(), tag=3, ext=True)
    out = load_8k_mono(path).astype(float)
    spec = np.abs(np.fft.rfft(out))
    freqs = np.fft.rfftfreq(out.size, 1 / 8000)
    assert abs(freqs[np.argmax(spec)] - 500) < 5
    alias = spec[np.abs(freqs - 1000) < 20].max()  # 7 kHz would fold to 1 kHz
    assert alias < spec.max() / 100


def test_bad_files(tmp_path: Path) -> None:
    p = tmp_path / "bad.wav"
    p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(MediaFileError):
        load_8k_mono(p)
    p.write_bytes(b"not a wav at all")
    with pytest.raises(MediaFileError):
        load_8k_mono(p)
    with pytest.raises(MediaFileError):
        load_8k_mono(tmp_path / "missing.wav")
    write_raw_wav(p, 8000, 1, 12, b"\x00" * 30)
    with pytest.raises(MediaFileError):
        load_8k_mono(p)


def test_writer_header_is_valid_during_and_after(tmp_path: Path) -> None:
    path = tmp_path / "w.wav"
    fh = path.open("wb")
    writer = WavWriter(fh, 2)
    frame = np.zeros(320, dtype=np.int16)
    for _ in range(60):  # 1.2 s of stereo
        writer.write(frame)
    # crash now: the file on disk is playable up to the last whole second
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 8000
        assert w.getnframes() >= 8000
    writer.close()
    with wave.open(str(path)) as w:
        assert w.getnframes() == 60 * 160


def test_generated_assets(tmp_path: Path) -> None:
    assets.ensure_assets(tmp_path)
    music = load_8k_mono(tmp_path / assets.HOLD_MUSIC_NAME)
    beep = load_8k_mono(tmp_path / assets.BEEP_NAME)
    assert music.size == 16 * 8000 and np.max(np.abs(music)) > 10000
    assert abs(peak_hz(beep) - 1000) < 10
    spec = np.abs(np.fft.rfft(music.astype(float)))
    freqs = np.fft.rfftfreq(music.size, 1 / 8000)
    for f in (440, 1000, 1500):  # reserved test tones are absent from the music
        assert spec[np.abs(freqs - f) < 3].max() < spec.max() / 20
