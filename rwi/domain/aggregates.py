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


@dataclass
class QueueState:
    queue_id: str


@dataclass
class AgentState:
    agent_id: str


@dataclass
class ConferenceState:
    conf_id: str
    max_members: int = 10
    #: the connection that created it (it receives the conference's events)
    owner: str | None = None
    #: member call id -> muted, in joining order
    members: dict[str, bool] = field(default_factory=dict)


@dataclass
class StreamState:
    stream_id: str
    call_id: str
