"""A duplex bot's audio on its way to the call (``stream_client.Resampled``): cut into
the engine's 20 ms frames, resampled from 16 kHz, and what a mark or a clear does to
what the converter still holds (regressions: at 16 kHz the last ~6 ms before a mark came
out only after it, with the bot's next words; a clear left them in front of those)."""

from __future__ import annotations

import numpy as np

from sip_media.media.stream_client import Resampled
from tests.support.audio import heard, levels

A, B = 1000.0, 1500.0
EDGE = 10  # samples: half a test tone's period, and the converter's ramp


def tone(freq: float, n: int, rate: int) -> bytes:
    """PCM16 LE, as a bot sends it."""
    t = np.arange(n) / rate
    return (6000 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def samples(frames: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(frames), dtype="<i2").astype(np.float32)


def bot_says(out: Resampled, freq: float, seconds: float, rate: int) -> list[bytes]:
    """The bot's audio in 20 ms messages, as a bot sends it."""
    pcm = tone(freq, int(rate * seconds), rate)
    step = rate // 50 * 2
    return [f for i in range(0, len(pcm), step) for f in out.push(pcm[i : i + step])]


def span(frames: list[bytes]) -> int:
    """Samples from the first to the last loud one (the tone's length, to a sample)."""
    loud = np.flatnonzero(np.abs(samples(frames)) > 3000)
    return int(loud[-1] - loud[0] + 1)


def test_frames_are_whole_and_8k_passes_unchanged() -> None:
    out = Resampled(1.0, 1, 160)
    frames = out.push(tone(A, 400, 8000))
    assert [len(f) for f in frames] == [320, 320]
    (last,) = out.flush()  # the 80 left, padded with silence
    assert len(last) == 320 and not any(last[160:])
    assert b"".join([*frames, last])[:800] == tone(A, 400, 8000)
    assert out.flush() == []


def test_a_flush_at_16k_gives_out_everything_pushed() -> None:
    out = Resampled(0.5, 1, 160)
    frames = bot_says(out, A, 1.0, 16000)
    assert abs(span(frames) - 8000) > 40  # the converter holds its delay back...
    frames += out.flush()
    assert {len(f) for f in frames} == {320}
    assert abs(span(frames) - 8000) <= EDGE  # ...and a flush gets it out: all of it
    assert heard(samples(frames), (A / 2, A, A * 2)) == {A}
    assert out.flush() == []


def test_after_a_flush_the_next_words_come_whole_and_alone() -> None:
    out = Resampled(0.5, 1, 160)
    bot_says(out, A, 0.5, 16000)
    out.flush()
    frames = bot_says(out, B, 0.4, 16000) + out.flush()
    assert abs(span(frames) - 3200) <= EDGE
    assert heard(samples(frames), (A, B)) == {B}


def test_a_drop_forgets_what_the_converter_holds() -> None:
    for ratio, rate in ((1.0, 8000), (0.5, 16000)):
        out = Resampled(ratio, 1, 160)
        bot_says(out, A, 0.99, rate)  # a partial frame pending, and the converter's delay
        out.drop()
        frames = bot_says(out, B, 0.4, rate) + out.flush()
        assert abs(span(frames) - 3200) <= EDGE, (rate, span(frames))
        first = samples(frames)[:80]  # where what was dropped would have been
        assert levels(first, (A,))[A] < 100, rate
