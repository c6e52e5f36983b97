"""One audio stream's meeting point between the media clock and its WebSocket client.

Where it sits: the engine (:mod:`.engine`) owns a :class:`StreamTap` per running stream
(``StartAudioStream``); on every tick it *offers* the leg's 20 ms of audio and, for a duplex
stream, *takes* the bot's next 20 ms to mix into what the leg hears. The client
(:mod:`.stream_client`, on the stream thread of :mod:`.stream_hub`) drains the one
queue and fills the other. Both queues are bounded and the clock side never waits:
a frame that does not fit is dropped and counted (``frames_dropped``), so a slow, stalled
or dead bot costs its own stream frames and nothing else. ``collections.deque``
appends and pops are atomic, which is all the two threads share.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FRAME = 160  # 20 ms at 8 kHz, the engine's frame
F32 = npt.NDArray[np.float32]
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
    #: towards the bot: audio rows ``(channels, 160)`` float32, or a text frame (DTMF)
    to_bot: collections.deque[F32 | str] = field(default_factory=collections.deque)
    #: towards the call: 20 ms float32 frames at 8 kHz and marks, in the bot's order
    to_call: collections.deque[F32 | Mark] = field(default_factory=collections.deque)
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

    def offer(self, caller: F32, peer: F32) -> bool:
        """This tick's audio for the bot; False when it was dropped (queue full)."""
        if not self.live:
            return True
        if len(self.to_bot) >= TO_BOT_FRAMES:
            self.dropped_to_bot += 1
            return False
        match self.tracks:
            case "caller":
                rows = caller[np.newaxis].copy()
            case "peer":
                rows = peer[np.newaxis].copy()
            case _:
                rows = np.stack((caller, peer))
        self.to_bot.append(rows)
        return True

    def offer_text(self, text: str) -> None:
        """A control frame for the bot (DTMF); text is small and never dropped for audio."""
        if self.live:
            self.to_bot.append(text)

    def take(self) -> tuple[F32 | None, list[str]]:
        """The bot's next 20 ms (None: nothing queued) and the marks now reached."""
        frame: F32 | None = None
        marks: list[str] = []
        queue = self.to_call
        while queue:
            item = queue[0]
            if isinstance(item, Mark):
                queue.popleft()
                marks.append(item.name)
                continue
            if frame is not None:
                break
            popped = queue.popleft()
            assert not isinstance(popped, Mark)
            frame = popped
        return frame, marks

    # ------------------------------------------------------------ the client's side

    def play(self, frame: F32) -> None:
        """Queue 20 ms of the bot's audio (8 kHz); dropped and counted when full."""
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
