"""What an effect handler may read and change of the engine: its tables and hooks.

Where it sits: :mod:`.control` applies effects against this protocol; the engine
(:class:`~.engine.MediaEngine`) provides it and forwards :meth:`~.engine.MediaEngine.apply`
to :mod:`.control`. Keeping the protocol apart lets the handlers be written without
importing the engine that calls them.
"""

from __future__ import annotations

from typing import Protocol

from . import api
from .config import MediaAllowList, MediaConfig
from .leg import MediaLeg, PortPool
from .mixer import Topology
from .recorder import Recorder
from .sources import Playback, SoundCache
from .stream_hub import StreamHub
from .stream_tap import StreamTap
from .stream_urls import StreamUrlAllowList


class EngineTables(Protocol):
    """Legs, sources, sinks and topology of one engine, and its bookkeeping hooks."""

    config: MediaConfig
    ports: PortPool
    allow: MediaAllowList
    sounds: SoundCache
    legs: dict[str, MediaLeg]
    playbacks: dict[str, Playback]
    recorders: dict[str, Recorder]
    topology: Topology
    streams: dict[str, StreamTap]
    stream_hub: StreamHub
    stream_allow: StreamUrlAllowList

    def mark_dirty(self) -> None:
        """The topology changed: recompile the plan before the next mix."""
        ...

    def register(self, leg: MediaLeg) -> None:
        """Start polling a new leg's sockets."""
        ...

    def unregister(self, leg: MediaLeg) -> None:
        """Stop polling a leg and close its sockets."""
        ...

    def unlatch(self, leg: MediaLeg) -> None:
        """Replace a connected RTP socket so the leg can latch onto a new source."""
        ...

    def finish_playback(self, pb: Playback, interrupted: bool, digit: str | None) -> None:
        """End a playback and report it (once)."""
        ...

    def finish_recording(self, rec: Recorder, reason: api.RecordingEndReason) -> None:
        """Finalise a recording and report it, with why it ended."""
        ...

    def stop_stream(self, tap: StreamTap, reason: str) -> None:
        """End a stream; ``StreamStopped`` follows."""
        ...
