"""The aggregates beyond calls, each kept in its own map of ``State`` by its id.

Every aggregate has its stream (``recording:<id>``, ``queue:<id>``, ``agent:<id>``,
``conference:<id>``, ``stream:<id>``): its events, its timers (``StartTimer``) and its
delivery are keyed by it. The feature that owns an aggregate (recordings §8, supervisions
§9, queues and agents §10, conferences §11, audio streams §12) grows its fields and is the only one
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
class QueueEntry:
    """A call waiting in a queue (contract §10); its place is (priority, since, seq)."""

    call_id: str
    priority: int
    #: when it began to wait (a requeue keeps the time waited: it moves this back)
    since: str
    #: FIFO among entries of one priority that began in the same millisecond
    seq: int
    max_wait_secs: float | None = None
    skills: list[str] = field(default_factory=list)
    held: bool = False
    #: the connection that owned the call when it joined (delivery once the call is gone)
    owner: str | None = None
    #: agent id -> agent leg ringing for this entry now
    offers: dict[str, str] = field(default_factory=dict)
    #: agents that missed this entry (tried last when it is offered again)
    tried: list[str] = field(default_factory=list)
    #: offers made so far (agent leg ids are numbered by it)
    offered: int = 0
    #: an offer made by ``queue.dequeue``/``queue.assign_agent``: no distribution meanwhile
    manual: bool = False


@dataclass
class QueueState:
    queue_id: str
    strategy: str = "manual"
    entries: dict[str, QueueEntry] = field(default_factory=dict)
    joined: int = 0
    #: the agent offered last (``round_robin`` goes on after it)
    last_agent: str | None = None


@dataclass
class AgentState:
    agent_id: str
    #: logged_out | available | ringing | busy | wrap_up | paused
    status: str = "logged_out"
    reason: str | None = None
    logged_in: bool = False
    queues: list[str] = field(default_factory=list)
    #: when it last became available (``longest_idle``)
    idle_since: str = ""
    #: queue calls answered (``fewest_calls``)
    calls: int = 0
    #: consecutive offers missed (``max_no_answer`` pauses it)
    missed: int = 0
    #: its leg ringing for an offer, and the queued call it is offered
    offer_leg: str | None = None
    offer_call: str | None = None
    offer_queue: str | None = None
    #: its leg connected to a queued call
    busy_leg: str | None = None
    #: the owner of the queued call it is offered or took, until it is free again (its
    #: events go there)
    owner: str | None = None
    #: the leg of the offer it missed, while it rests before the next (``retry_secs``)
    resting: str | None = None
    #: ``paused``/``logged_out`` asked for while it had a call: applied once it is free
    pending: str | None = None
    pending_reason: str | None = None


@dataclass
class ConferenceState:
    conf_id: str
    max_members: int = 10
    #: the connection that created it (it receives the conference's events)
    owner: str | None = None
    #: member call id -> muted, in joining order
    members: dict[str, bool] = field(default_factory=dict)


@dataclass
class SupervisionState:
    """A supervisor leg monitoring an agent leg (contract §9), keyed by the supervisor
    leg: one agent at a time per supervisor, several supervisors per agent."""

    supervisor_call_id: str
    target_call_id: str
    #: ``listen`` | ``whisper`` | ``barge``
    mode: str
    started_at: str = ""
    #: the connections of both legs when it began (its end still reaches them after a
    #: leg is gone)
    connections: list[str] = field(default_factory=list)


@dataclass
class StreamState:
    """An audio stream of a call to a WebSocket bot (contract §12)."""

    stream_id: str
    call_id: str
    url: str = ""
    #: ``listen`` | ``duplex``
    mode: str = "listen"
    #: ``caller`` | ``peer`` | ``both``
    tracks: str = "caller"
    sample_rate: int = 8000
    #: the connection that started it (its events go there after the call is gone)
    owner: str | None = None
    started_at: str = ""
    #: the media side reported the connection open (``media.stream.started``)
    open: bool = False
    #: set once it is being stopped (``rwi``); the media side reports the end
    stopping: str | None = None
