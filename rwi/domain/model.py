"""Domain values: the live state, and what goes into and comes out of ``decide``.

``State`` is mutable on purpose: ``evolve`` folds millions of events on a rebuild and
copying the whole state per event would make that quadratic. Only ``evolve`` mutates it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rwi.domain.aggregates import (
    AgentState,
    ConferenceState,
    QueueState,
    RecordingState,
    StreamState,
    SupervisionState,
)
from rwi.domain.call import CallState

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: Streams: every event belongs to exactly one.
SERVICE_STREAM = "service"


def session_stream(connection_id: str) -> str:
    return f"session:{connection_id}"


def call_stream(call_id: str) -> str:
    return f"call:{call_id}"


def recording_stream(recording_id: str) -> str:
    return f"recording:{recording_id}"


def queue_stream(queue_id: str) -> str:
    return f"queue:{queue_id}"


def agent_stream(agent_id: str) -> str:
    return f"agent:{agent_id}"


def conference_stream(conf_id: str) -> str:
    return f"conference:{conf_id}"


def media_stream(stream_id: str) -> str:
    return f"stream:{stream_id}"


class EventLike(Protocol):
    """What ``evolve`` reads: a stored event, or one decided but not yet stored."""

    @property
    def type(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def meta(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Emit:
    """An event decided by ``decide``, before it has a ``seq``."""

    stream_id: str
    type: str
    data: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    """A validated RWI request, with who sent it.

    ``nonce`` is fresh randomness chosen by the service for this command, so ids the
    decision creates (playback ids, consultation suffixes) are inputs, not side effects.
    """

    action: str
    action_id: str
    params: dict[str, Any]
    connection_id: str
    token: str
    scopes: frozenset[str]
    idempotency_key: str | None = None
    nonce: str = ""


@dataclass(frozen=True)
class Observation:
    """Something that happened outside the domain: SIP, media, a timer firing."""

    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class AwaitResult:
    """A command whose reply waits for the result of a request effect it caused (a far
    end's SIP status, a round-trip time): the first ``observation`` whose data has every
    ``match`` item completes the reply, adding its ``fields`` to the reply's data; none
    within ``timeout_secs`` completes it with ``timeout_data`` instead."""

    observation: str
    match: tuple[tuple[str, Any], ...]
    fields: tuple[str, ...]
    timeout_secs: float
    timeout_data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The events a command causes and the reply data it gets on success; ``awaits``:
    the reply goes out only once the result it names has been observed (and logged)."""

    events: tuple[Emit, ...] = ()
    data: dict[str, Any] | None = None
    awaits: AwaitResult | None = None


@dataclass
class SessionState:
    connection_id: str
    token: str
    contexts: set[str] = field(default_factory=set)
    #: queues whose ``queue.*`` and members' ``agent.*`` events it gets (dashboards)
    queues: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class StoredReply:
    """A command's outcome kept for ``meta.idempotency_key`` retries."""

    params_hash: str
    outcome: dict[str, Any]
    ts: str


@dataclass(frozen=True)
class ContextPolicy:
    """What happens to an offered call nobody claims (contract §4)."""

    name: str
    no_answer_timeout_secs: float = 30.0
    no_answer_action: str = "hangup"
    no_answer_transfer_target: str = ""
    no_answer_tone_hz: float = 425.0
    no_answer_tone_secs: float = 3.0


@dataclass(frozen=True)
class QueuePolicy:
    """A configured queue (``[[queues]]``, contract §10); unconfigured ones are manual."""

    name: str
    strategy: str = "manual"
    members: tuple[str, ...] = ()
    music: str | None = None
    agent_ring_secs: float = 15.0
    wrap_up_secs: float = 5.0
    max_wait_secs: float = 0.0
    max_no_answer: int = 3
    #: an agent that missed an offer (no answer, busy, reject) rests this long before
    #: it is offered a call again (0: at once)
    retry_secs: float = 5.0


@dataclass(frozen=True)
class AgentPolicy:
    """A configured agent (``[[agents]]``); unconfigured ones are ``sip:<id>@local``."""

    id: str
    destination: str = ""
    skills: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """Configured limits ``decide`` and ``plan`` apply; not part of the folded state."""

    max_calls_per_connection: int = 200
    orphan_hold_secs: float = 30.0
    contexts: tuple[ContextPolicy, ...] = ()
    #: where recordings are written (``record.*`` events name full paths)
    recordings_dir: str = "recordings"
    queues: tuple[QueuePolicy, ...] = ()
    agents: tuple[AgentPolicy, ...] = ()
    #: ``[media] stream_allowed_urls``: where call audio may be streamed (§12)
    stream_allowed_urls: tuple[str, ...] = ("ws://127.0.0.1", "ws://localhost")
    #: ``[sip] t1_ms`` in seconds: a SIP request's reply waits for Timer F (64 x T1)
    sip_t1_secs: float = 0.5

    def queue(self, name: str) -> QueuePolicy:
        for queue in self.queues:
            if queue.name == name:
                return queue
        return QueuePolicy(name=name)

    def agent(self, agent_id: str) -> AgentPolicy:
        for agent in self.agents:
            if agent.id == agent_id:
                return agent
        return AgentPolicy(id=agent_id, destination=f"sip:{agent_id}@local")

    def context(self, name: str | None) -> ContextPolicy:
        for context in self.contexts:
            if context.name == name:
                return context
        return ContextPolicy(name=name or "")


@dataclass
class State:
    policy: Policy = field(default_factory=Policy)
    sessions: dict[str, SessionState] = field(default_factory=dict)
    #: the aggregates, one map each, keyed by id (their streams: ``call:<id>``...)
    calls: dict[str, CallState] = field(default_factory=dict)
    recordings: dict[str, RecordingState] = field(default_factory=dict)
    queues: dict[str, QueueState] = field(default_factory=dict)
    agents: dict[str, AgentState] = field(default_factory=dict)
    conferences: dict[str, ConferenceState] = field(default_factory=dict)
    #: by supervisor call id (its events are events of the supervisor's call)
    supervisions: dict[str, SupervisionState] = field(default_factory=dict)
    streams: dict[str, StreamState] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], StoredReply] = field(default_factory=dict)
    instance: str | None = None
    #: SIP registrations by address-of-record, as the registrar reported them
    registrations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: what a new process needs to end each live call's SIP dialog after a crash, as the
    #: SIP side last reported it (``sip_media``'s ``DialogRecord.to_dict()``)
    dialogs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: live calls whose owning or attached connection went away: call_id -> {token: ts}
    away: dict[str, dict[str, str]] = field(default_factory=dict)
    #: calls that ended while a connection of the token was away, replayed by its
    #: ``session.resume`` (``rwi.domain.away``): token -> {call_id: ended ts}
    missed: dict[str, dict[str, str]] = field(default_factory=dict)
    #: derived index (not part of the snapshot): how many calls each connection owns
    owned: dict[str, int] = field(default_factory=dict)

    def owned_by(self, connection_id: str) -> int:
        return self.owned.get(connection_id, 0)

    def conference_of(self, call_id: str) -> ConferenceState | None:
        """The conference ``call_id`` is a member of, if any (a call is in one at most)."""
        for conference in self.conferences.values():
            if call_id in conference.members:
                return conference
        return None

    def set_owner(self, call: CallState, owner: str | None) -> None:
        """The one place a call's owner changes, so ``owned`` stays exact."""
        if call.owner == owner:
            return
        if call.owner is not None:
            left = self.owned.get(call.owner, 0) - 1
            if left > 0:
                self.owned[call.owner] = left
            else:
                self.owned.pop(call.owner, None)
        if owner is not None:
            self.owned[owner] = self.owned.get(owner, 0) + 1
        call.owner = owner

    def snapshot(self) -> dict[str, Any]:
        """A plain, comparable picture of the state (replay checks and tooling)."""
        return {
            "instance": self.instance,
            "sessions": {
                cid: {"token": s.token, "contexts": sorted(s.contexts), "queues": sorted(s.queues)}
                for cid, s in sorted(self.sessions.items())
            },
            "calls": {
                cid: {
                    **c.summary(),
                    "owner": c.owner,
                    "attached": dict(sorted(c.attached.items())),
                    "held_from": c.held_from.value if c.held_from else None,
                    "playback_id": c.playback_id,
                    "orphaned_at": c.orphaned_at,
                    "destination": c.destination,
                    "ringback": c.ringback,
                    "ringback_target": c.ringback_target,
                    "hold_target": c.hold_target,
                    "passthrough_from": c.passthrough_from,
                    "b2bua_peer": c.b2bua_peer,
                    "early_media": c.early_media,
                    "transfer_kind": c.transfer_kind,
                    "transfer_leg": c.transfer_leg,
                    "transfer_peer": c.transfer_peer,
                    "transfer_of": c.transfer_of,
                    "ending": c.ending,
                }
                for cid, c in sorted(self.calls.items())
            },
            "recordings": _plain(self.recordings),
            "queues": _plain(self.queues),
            "agents": _plain(self.agents),
            "conferences": _plain(self.conferences),
            "supervisions": _plain(self.supervisions),
            "streams": _plain(self.streams),
            "registrations": dict(sorted(self.registrations.items())),
            "dialogs": dict(sorted(self.dialogs.items())),
            "away": {k: dict(sorted(v.items())) for k, v in sorted(self.away.items())},
            "missed": {k: dict(sorted(v.items())) for k, v in sorted(self.missed.items())},
            "idempotency": {
                f"{token}/{key}": {"params_hash": r.params_hash, "outcome": r.outcome}
                for (token, key), r in sorted(self.idempotency.items())
            },
        }


def _plain(aggregates: Mapping[str, DataclassInstance]) -> dict[str, dict[str, Any]]:
    return {key: asdict(value) for key, value in sorted(aggregates.items())}
