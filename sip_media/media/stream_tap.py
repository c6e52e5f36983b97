"""One audio stream's meeting point between the media clock and its WebSocket client.

Where it sits: the engine (:mod:`.engine`) owns a :class:`StreamTap` per running stream
(``StartAudioStream``); on every tick it *offers* the leg's 20 ms of audio and, for a duplex
stream, *takes* the bot's next 20 ms to mix into what the leg hears. The client
(:mod:`.stream_client`, on the stream thread of :mod:`.stream_hub`) drains the one
queue and fills the other. Both queues are bounded and the clock side never waits:
a frame that does not fit is dropped and counted (``frames_dropped``), so a slow, stalled
or dead bot costs its own stream frames and nothing else. ``collections.deque``
appends and pops are atomic, which is all the two threads share.

Audio crosses as PCM16 bytes at 8 kHz, the wire's own form: :func:`offer_all` and
:func:`take_all` convert every stream's frame of a tick in one array operation, so
neither thread converts a frame at a time.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FRAME = 160  # 20 ms at 8 kHz, the engine's frame
F32 = npt.NDArray[np.float32]
#: one channel's 20 ms as PCM16 LE
FRAME_BYTES = 2 * FRAME
#: frames towards the bot held while its connection is slow (then dropped): 1 s
TO_BOT_FRAMES = 50
#: the bot's audio queued ahead of playback (bots send speech faster than real time): 120 s
TO_CALL_FRAMES = 6000


@dataclass(frozen=True, slots=True)
class Mark:
    """A bot's mark in the playback queue: reported once the audio before it is out."""

    name: str


@dataclass
class StreamTap:
    stream_id: str
    leg_id: str
    url: str
    tracks: str = "caller"
    sample_rate: int = 8000
    duplex: bool = False
    start: dict[str, Any] = field(default_factory=dict)
    #: towards the bot: 20 ms of PCM16 at 8 kHz (``both``: channels interleaved), or a
    #: text frame (DTMF)
    to_bot: collections.deque[bytes | str] = field(default_factory=collections.deque)
    #: towards the call: 20 ms of PCM16 at 8 kHz and marks, in the bot's order
    to_call: collections.deque[bytes | Mark] = field(default_factory=collections.deque)
    #: the WebSocket is open and the start frame sent (audio is offered from then on)
    open: bool = False
    #: why it is being ended (set by the engine: ``rwi``, ``hangup``), None while running
    stopping: str | None = None
    #: counters, each written by one thread only (the clock, or the client)
    frames_sent: int = 0
    frames_received: int = 0
    dropped_to_bot: int = 0
    dropped_to_call: int = 0

    @property
    def frames_dropped(self) -> int:
        return self.dropped_to_bot + self.dropped_to_call

    @property
    def channels(self) -> int:
        return 2 if self.tracks == "both" else 1

    @property
    def live(self) -> bool:
        return self.open and self.stopping is None

    # ------------------------------------------------------------- the clock's side

    def offer(self, frame: bytes) -> bool:
        """This tick's audio for the bot; False when it was dropped (queue full)."""
        if not self.live:
            return True
        if len(self.to_bot) >= TO_BOT_FRAMES:
            self.dropped_to_bot += 1
            return False
        self.to_bot.append(frame)
        return True

    def offer_text(self, text: str) -> None:
        """A control frame for the bot (DTMF); text is small and never dropped for audio."""
        if self.live:
            self.to_bot.append(text)

    def take(self) -> tuple[bytes | None, list[str]]:
        """The bot's next 20 ms (None: nothing queued) and the marks now reached: those
        before it and right behind it.

        The client may clear the queue meanwhile (barge-in): only what was popped counts,
        and an emptied queue is no error (an exception here would cost every leg the tick).
        """
        frame: bytes | None = None
        marks: list[str] = []
        queue = self.to_call
        try:
            while queue:
                if frame is not None and not isinstance(queue[0], Mark):
                    break  # the next frame is for the next tick
                item = queue.popleft()
                if isinstance(item, Mark):
                    marks.append(item.name)
                elif frame is None:
                    frame = item
                else:
                    break  # a frame queued after a clear raced the peek: it goes too
        except IndexError:
            pass
        return frame, marks

    # ------------------------------------------------------------ the client's side

    def play(self, frame: bytes) -> None:
        """Queue 20 ms of the bot's audio (PCM16, 8 kHz); dropped and counted when full."""
        if len(self.to_call) >= TO_CALL_FRAMES:
            self.dropped_to_call += 1
            return
        self.to_call.append(frame)

    def mark(self, name: str) -> None:
        self.to_call.append(Mark(name))

    def clear(self) -> list[str]:
        """Drop the queued audio (barge-in); the marks in it are reached at once."""
        marks: list[str] = []
        while True:
            try:
                item = self.to_call.popleft()
            except IndexError:
                break
            if isinstance(item, Mark):
                marks.append(item.name)
        return marks


# ---------------------------------------------------------------- a tick, every stream


def offer_all(taps: Sequence[tuple[StreamTap, int]], inbound: F32, outbound: F32 | None) -> None:
    """Offer each ``(tap, row)`` its leg's row of this tick: ``caller`` from ``inbound``
    (what the leg's far end says), ``peer`` from ``outbound`` (what it hears; None:
    silence), both converted to PCM16 once for all the streams."""
    live = [(tap, row) for tap, row in taps if tap.live]
    if not live:
        return
    rows = [row for _tap, row in live]
    caller = _pcm16(inbound[rows])
    peer = both = caller
    tracks = {tap.tracks for tap, _row in live}
    if tracks != {"caller"}:
        peer = _pcm16(outbound[rows]) if outbound is not None else np.zeros_like(caller)
    if "both" in tracks:
        both = np.stack((caller, peer), axis=2)  # (streams, 160, 2): caller first
    # one bytes object per track, sliced per stream (cheaper than a row's tobytes each)
    data = {"caller": caller.tobytes(), "peer": peer.tobytes(), "both": both.tobytes()}
    for i, (tap, _row) in enumerate(live):
        size = FRAME_BYTES * tap.channels
        tap.offer(data[tap.tracks][i * size : (i + 1) * size])


def take_all(taps: Sequence[tuple[StreamTap, int]], outbound: F32) -> list[tuple[StreamTap, str]]:
    """Add each duplex tap's next 20 ms from its bot into its leg's row of ``outbound``
    (converted from PCM16 once for all the streams); the marks now reached, in order."""
    rows: list[int] = []
    frames: list[bytes] = []
    reached: list[tuple[StreamTap, str]] = []
    for tap, row in taps:
        if not tap.duplex:
            continue
        if not tap.to_call:
            continue
        frame, marks = tap.take()
        if frame is not None:
            rows.append(row)
            frames.append(frame)
        if marks:
            reached.extend((tap, name) for name in marks)
    if frames:
        audio = np.frombuffer(b"".join(frames), dtype="<i2").reshape(len(frames), FRAME)
        if len(set(rows)) == len(rows):
            outbound[rows] += audio
        else:  # two duplex streams on one leg: both play (a fancy-index add keeps one)
            for row, frame_audio in zip(rows, audio, strict=True):
                outbound[row] += frame_audio
    return reached


def _pcm16(rows: F32) -> npt.NDArray[np.int16]:
    return np.clip(rows, -32768, 32767).astype("<i2")
