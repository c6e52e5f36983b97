"""The aggregates beyond calls, each kept in its own map of ``State`` by its id.

Every aggregate has its stream (``recording:<id>``, ``queue:<id>``, ``agent:<id>``,
``conference:<id>``, ``stream:<id>``): its events, its timers (``StartTimer``) and its
delivery are keyed by it. The feature that owns an aggregate (recordings §8, queues and
agents §10, conferences §11, audio streams §12) grows its fields and is the only one
folding into its map; until that feature is built the map stays empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RecordingState:
    recording_id: str
    #: the call it was started on (a recording belongs to that call, not its bridge)
    call_id: str
    #: ``mixed`` or ``separate_legs``
    mode: str = "mixed"
    #: relative to the recordings directory (what the media engine is given), and full
    file: str = ""
    path: str = ""
    started_at: str = ""
    max_duration_secs: float | None = None
    #: who asked for it (its events also go to whoever owns the call then)
    owner: str | None = None
    #: pause intervals ``[from, to]`` (ISO times; ``to`` None while paused)
    pauses: list[list[str | None]] = field(default_factory=list)
    #: set once it is being stopped: ``rwi`` | ``system`` (the media reports the end)
    stopping: str | None = None

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None


@dataclass
class QueueState:
    queue_id: str


@dataclass
class AgentState:
    agent_id: str


@dataclass
class ConferenceState:
    conf_id: str


@dataclass
class StreamState:
    stream_id: str
    call_id: str
