"""The service loop: command or observation -> decide -> durable append -> reply, push.

Decisions are taken one at a time, synchronously, in arrival order; each decision's
events are folded into the live state at once (so the next decision sees them) and
queued for the group-commit writer, which stores them in that same order. Replies and
pushes wait for durability: nothing leaves before the event that causes it is stored.
If an append fails, the live state may hold events the log does not: the service then
rebuilds the state from the log before deciding anything else. While the log cannot be
read (the database is away) commands are refused with ``internal_error``, unrecorded;
the rebuild retries until the database is back, and the service carries on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from rwi import logs, protocol
from rwi.config import Config, TokenConfig, sip_t1_secs
from rwi.domain import Command, Emit, Observation, State, decide, evolve, observe
from rwi.domain.decide import iso, restarted, shutting_down
from rwi.domain.delivery import ResumeFilter, recipients
from rwi.domain.effects import Effect
from rwi.domain.features import available
from rwi.domain.model import (
    SERVICE_STREAM,
    AwaitResult,
    Policy,
    session_stream,
)
from rwi.domain.plan import plan
from rwi.errors import RwiError
from rwi.executor import Executor
from rwi.metrics import Metrics
from rwi.pending_replies import PendingReplies
from rwi.sounds import SoundLibrary
from rwi.store import (
    AppendPart,
    EventReader,
    GroupCommitWriter,
    NewEvent,
    StoreError,
    UnstorableEventError,
)
from rwi.store.writer import encode_json
from sip_media.media.stream_urls import LOOPBACK

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
MAX_RECORDED_FRAME = 4096


def storable(value: Any) -> Any:
    """``value`` with every string's NUL and lone surrogates escaped (``\\x00``)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def utcnow() -> datetime:
    return datetime.now(UTC)


def params_hash(params: Any) -> str:
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _action_label(text: str) -> str:
    """The metrics' action label of a frame not decided on: its action if that exists,
    else ``invalid`` (as ``_decide`` labels a frame it cannot parse)."""
    try:
        return protocol.resolve(protocol.parse_frame(text).action).name
    except RwiError:
        return "invalid"


class Outgoing(Protocol):
    """A client's ordered way out (``rwi.gateway.outbox.Outbox``)."""

    @property
    def last_seq(self) -> int: ...
    def reply(self, frame: dict[str, Any]) -> None: ...
    def event(self, frame: dict[str, Any]) -> None: ...
    def sent(self, seq: int) -> bool: ...
    def hold_live(self) -> None: ...
    def replayed(self, frame: dict[str, Any]) -> None: ...
    def release_live(self) -> None: ...


class ServiceClient(Protocol):
    """A connected RWI client as the service sees it (``rwi.gateway.connection``)."""

    @property
    def connection_id(self) -> str: ...
    @property
    def token(self) -> TokenConfig: ...
    @property
    def remote(self) -> str: ...
    @property
    def outbox(self) -> Outgoing: ...
    def admit(self, action: str) -> None:
        """Raise ``rate_limited`` when the client's limits refuse ``action``."""


def policy_of(config: Config) -> Policy:
    """The configured limits the domain applies."""
    return Policy(
        max_calls_per_connection=config.rwi.max_calls_per_connection,
        orphan_hold_secs=config.rwi.orphan_hold_secs,
        recordings_dir=str(config.storage.recordings_dir),
        stream_allowed_urls=tuple(config.media.get("stream_allowed_urls", LOOPBACK)),
        contexts=config.rwi.contexts,
        queues=config.queues,
        agents=config.agents,
        sip_t1_secs=sip_t1_secs(config.sip, config.source),
    )


async def load_state(reader: EventReader, policy: Policy) -> tuple[State, int]:
    """The live state folded from the whole log (the same ``evolve`` as live), and the
    number of events folded."""
    state = State(policy=policy)
    count = 0
    async for event in reader.read_all(0):
        evolve(state, event)
        count += 1
    return state, count


@dataclass
class _Prepared:
    """Decided and folded into the live state, waiting to be durable."""

    parts: list[AppendPart]
    emits: list[Emit]
    targets: list[set[str]] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)


class Service:
    """The loop. Its collaborators come in here: the store's writer and reader, the
    clock, the ``executor`` that runs effects on SIP and media (None: no SIP/media side,
    call commands are not offered), the sounds directory commands are checked against,
    optionally the state already folded from the log (``load_state``), and the
    ``metrics`` it counts commands, calls and connections in."""

    def __init__(
        self,
        config: Config,
        writer: GroupCommitWriter,
        reader: EventReader,
        clock: Clock = utcnow,
        *,
        executor: Executor | None = None,
        sounds: SoundLibrary | None = None,
        state: State | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.writer = writer
        self.reader = reader
        self.clock = clock
        self.policy = policy_of(config)
        self._loaded = state is not None
        self.state = state if state is not None else State(policy=self.policy)
        self.connections: dict[str, ServiceClient] = {}
        self.instance = uuid.uuid4().hex[:12]
        self._tasks: set[asyncio.Task[None]] = set()
        self.executor = executor
        self.sounds = sounds if sounds is not None else SoundLibrary()
        self._built = available(media=executor is not None)
        #: replies waiting for a request effect's result (``Decision.awaits``)
        self.replies = PendingReplies()
        self._healthy = asyncio.Event()
        self._healthy.set()
        #: set once a recovery has either finished or found the log unreachable: until
        #: then a command waits for it; after a failed attempt it is refused at once
        self._settled = asyncio.Event()
        self._settled.set()
        #: set each time an observation is stored and pushed (a shutdown waits on it)
        self._observed = asyncio.Event()
        self.rebuilt_events = 0
        self.metrics = metrics if metrics is not None else Metrics()
        self.metrics.sources.state = lambda: self.state
        self.metrics.sources.connections = lambda: len(self.connections)

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if not self._loaded:
            await self.rebuild()
        if self.executor is not None:
            self.executor.start(self.observe)
        ts = iso(self.clock())
        # What a restart means (calls end: their SIP dialogs and media legs lived in the
        # old process) is logged with the start; ending the old dialogs on SIP is planned
        # from ``service.started``.
        await self._commit(
            [
                Emit(SERVICE_STREAM, "service.started", {"instance": self.instance}),
                *restarted(self.state, ts),
            ],
            {"ts": ts},
        )

    async def shutdown(self, limit: float = 5.0) -> None:
        """A clean stop, while SIP and media still run: log what it means (recordings
        are stopped, ``rwi.domain.decide.shutting_down``) and wait, up to ``limit``
        seconds, until the media side's reports of it are logged too (what is still
        open then is closed at the next start)."""
        ts = iso(self.clock())
        emits = shutting_down(self.state, ts)
        if not emits or not self._healthy.is_set():
            return
        try:
            await self._commit(emits, {"ts": ts})
        except StoreError as exc:
            log.warning("shutdown: could not log the stop of recordings: %s", exc)
            return
        pending = {e.data["recording_id"] for e in emits if "recording_id" in e.data}
        try:
            async with asyncio.timeout(limit):
                while pending & self.state.recordings.keys():
                    self._observed.clear()
                    await self._observed.wait()
        except TimeoutError:
            log.warning("shutdown: recordings still open after %.0f s: %s", limit, pending)

    async def stop(self) -> None:
        """Let every in-flight command finish its append and reply."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self.replies.close()

    async def rebuild(self) -> None:
        """Live state from the log, through the same ``evolve`` as live."""
        self.state, self.rebuilt_events = await load_state(self.reader, self.policy)

    async def _recover(self) -> None:
        if not self._healthy.is_set():
            return
        self._healthy.clear()
        self._settled.clear()
        log.error("an append failed: rebuilding the live state from the log")
        try:
            while True:
                try:
                    await self.rebuild()
                    break
                except Exception as exc:  # never decide on a state not rebuilt
                    log.error("rebuild failed (the log is unreachable?), retrying: %r", exc)
                    self._settled.set()  # commands are refused until the log is back
                    await asyncio.sleep(0.5)
        finally:
            self._healthy.set()
            self._settled.set()

    async def _usable(self) -> bool:
        """Whether commands can be decided: not while the live state waits to be
        rebuilt from a log that cannot be read (the database is away)."""
        await self._settled.wait()
        return self._healthy.is_set()

    # --- sessions ------------------------------------------------------------------------

    async def open_session(self, connection: ServiceClient) -> None:
        await self._healthy.wait()
        self.connections[connection.connection_id] = connection
        self.metrics.connections_opened.inc()
        data = {
            "connection_id": connection.connection_id,
            "token": connection.token.name,
            "remote": connection.remote,
        }
        await self._commit(
            [Emit(session_stream(connection.connection_id), "session.opened", data)],
            {"ts": iso(self.clock()), "connection_id": connection.connection_id},
        )

    async def close_session(self, connection_id: str, reason: str) -> None:
        self.connections.pop(connection_id, None)
        if connection_id not in self.state.sessions:
            return
        data = {"connection_id": connection_id, "reason": reason}
        await self._commit(
            [Emit(session_stream(connection_id), "session.closed", data)],
            {"ts": iso(self.clock()), "connection_id": connection_id},
        )

    # --- commands ------------------------------------------------------------------------

    async def submit(
        self, connection: ServiceClient, text: str, refused: RwiError | None = None
    ) -> None:
        """Decide on one frame now; its append, reply and pushes complete in a task.

        ``refused`` is set for frames the gateway cannot hand over (binary, oversize):
        they are answered and recorded like any other outcome.
        """
        started = time.perf_counter()
        ready = self._settled.is_set() and self._healthy.is_set()  # the fast path
        if not ready and not await self._usable():
            refused_id = protocol.action_id_of(text) or protocol.new_action_id()
            err = RwiError(
                "internal_error",
                f"the event log is unavailable; action_id {refused_id} was not executed",
            )
            # answered, counted and logged like any other refusal (nothing is recorded)
            label = _action_label(text)
            self._reply(connection, protocol.error(refused_id, err), (label, started))
            return
        self._decide(connection, text, refused, started)

    def _decide(
        self, connection: ServiceClient, text: str, refused: RwiError | None, started: float
    ) -> None:
        now = self.clock()
        ts = iso(now)
        action_id: str | None = None
        action: str | None = None
        label = "invalid"  # the metrics' action label: only actions that exist
        raw_params: Any = None
        key: str | None = None
        emits: tuple[Emit, ...] = ()
        extra: dict[str, Any] = {}
        resume_from: int | None = None
        awaits: AwaitResult | None = None
        try:
            if refused is not None:
                raise refused
            request = protocol.parse_frame(text)
            action_id, action, raw_params = request.action_id, request.action, request.params
            spec = protocol.resolve(request.action)
            action = label = spec.name
            protocol.authorise(spec, connection.token.scopes, self.built, self._unavailable)
            params = spec.validate(request.params)
            self.sounds.check(spec.name, params)
            key = request.meta.get("idempotency_key")
            stored = self._idempotent_reply(connection, key, request.params)
            if stored is not None:
                outcome = stored
                extra["replayed"] = True
            else:
                connection.admit(spec.name)
                command = Command(
                    action=spec.name,
                    action_id=request.action_id,
                    params=params,
                    connection_id=connection.connection_id,
                    token=connection.token.name,
                    scopes=connection.token.scopes,
                    idempotency_key=key,
                    nonce=uuid.uuid4().hex[:12],
                )
                decision = decide(self.state, command, now)
                emits = decision.events
                awaits = decision.awaits
                outcome = {"response": "success"}
                if decision.data is not None:
                    outcome["data"] = decision.data
                if spec.name == "session.resume":
                    resume_from = int(params.get("since_seq", 0))
                    connection.outbox.hold_live()
        except RwiError as err:
            outcome = {"response": "error", "error": err.wire()}
            if action_id is None:
                action_id = protocol.action_id_of(text)
        except Exception:
            log.exception("internal error deciding action_id=%s", action_id)
            internal = RwiError("internal_error", f"internal error handling action_id {action_id}")
            outcome = {"response": "error", "error": internal.wire()}
        if action_id is None:
            action_id = protocol.new_action_id()
        record = self._command_record(
            connection, action, action_id, raw_params, text, key, outcome, extra
        )
        meta = {"ts": ts, "connection_id": connection.connection_id, "action_id": action_id}
        prepared = self._prepare([record, *emits], meta)
        reply = self._reply_frame(action_id, outcome)
        finish = self._finish(connection, prepared, reply, resume_from, awaits, (label, started))
        call_id = raw_params.get("call_id") if isinstance(raw_params, dict) else None
        # the task's log lines (and the reply's) say which command and call they are about
        with logs.context(
            action_id=action_id, call_id=call_id if isinstance(call_id, str) else None
        ):
            task = asyncio.create_task(finish)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def built(self) -> frozenset[str]:
        """Call commands are executed only when a SIP/media side is attached."""
        return self._built

    def _unavailable(self, action: str) -> str | None:
        """Why a call command is off: the configuration has no SIP side to execute it."""
        if self.executor is None and action in available(media=True) - self._built:
            return (
                f"action {action!r} needs SIP and media, and {self.config.source} has no [sip] "
                "section (add one; rwi.example.toml shows the settings)"
            )
        return None

    def _idempotent_reply(
        self, connection: ServiceClient, key: str | None, params: Any
    ) -> dict[str, Any] | None:
        if key is None:
            return None
        stored = self.state.idempotency.get((connection.token.name, key))
        if stored is None:
            return None
        if stored.params_hash != params_hash(params):
            raise RwiError(
                "idempotency_conflict",
                f"meta.idempotency_key {key!r} was already used with different params",
            )
        return stored.outcome

    def _command_record(
        self,
        connection: ServiceClient,
        action: str | None,
        action_id: str,
        raw_params: Any,
        text: str,
        key: str | None,
        outcome: dict[str, Any],
        extra: dict[str, Any],
    ) -> Emit:
        data: dict[str, Any] = {
            "connection_id": connection.connection_id,
            "token": connection.token.name,
            "action": action,
            "action_id": action_id,
            "params": raw_params,
            "outcome": outcome,
            **extra,
        }
        if raw_params is None:
            data["frame"] = text[:MAX_RECORDED_FRAME]
        if key is not None:
            data["idempotency_key"] = key
            data["params_hash"] = params_hash(raw_params)
        try:
            # A text frame is valid UTF-8, so a lone surrogate can only arrive as a \u
            # escape, and NUL as one or raw: without either, the record is storable and
            # the writer's own encoding is the only one needed.
            if "\\u" in text or "\x00" in text:
                encode_json(data)
        except UnstorableEventError:
            # jsonb cannot hold NUL or lone surrogates: keep the frame exactly, as
            # base64, and the readable fields with those characters escaped.
            data = storable(data)
            data["frame_b64"] = base64.b64encode(
                text.encode("utf-8", "surrogatepass")[:MAX_RECORDED_FRAME]
            ).decode()
        return Emit(session_stream(connection.connection_id), "rwi.command", data)

    @staticmethod
    def _reply_frame(action_id: str, outcome: dict[str, Any]) -> dict[str, Any]:
        if outcome["response"] == "success":
            return protocol.success(action_id, outcome.get("data"))
        return {
            "rwi": protocol.VERSION,
            "action_id": action_id,
            "response": "error",
            "error": outcome["error"],
        }

    async def _finish(
        self,
        connection: ServiceClient,
        prepared: _Prepared,
        reply: dict[str, Any],
        resume_from: int | None,
        awaits: AwaitResult | None,
        timing: tuple[str, float],
    ) -> None:
        """Once durable: the reply, then the pushes; for ``session.resume`` the reply
        says where the replay ends, and the replay follows it, then the held live events."""
        try:
            seqs = await self.writer.append_atomic(prepared.parts)
        except StoreError as exc:
            log.error("append for action_id=%s failed: %s", reply.get("action_id"), exc)
            err = RwiError(
                "internal_error",
                f"could not store action_id {reply.get('action_id')}; it was not executed",
            )
            self._reply(connection, protocol.error(reply.get("action_id"), err), timing)
            connection.outbox.release_live()
            await self._recover()
            return
        replay: list[dict[str, Any]] = []
        if resume_from is not None:
            try:
                # everything decided after the resume is held live, so the log up to
                # the resume's own record is the whole replay
                replay = await self._replay(connection, resume_from, seqs[0])
            except (OSError, StoreError) as exc:
                log.error("session.resume could not read the log: %s", exc)
                err = RwiError("internal_error", "could not read the log for session.resume")
                self._reply(connection, protocol.error(reply.get("action_id"), err), timing)
                connection.outbox.release_live()
                return
            last = replay[-1]["seq"] if replay else resume_from
            reply = {**reply, "data": {**reply.get("data", {}), "last_seq": last}}
        if awaits is not None and reply["response"] == "success":
            # registered before the effects run, so their result cannot be missed
            action_id = reply["action_id"]
            self.replies.expect(
                awaits,
                reply.get("data"),
                lambda data: self._reply(
                    connection, protocol.success(action_id, data), timing, seqs[0]
                ),
            )
        else:
            self._reply(connection, reply, timing, seqs[0])
        self._push(prepared, seqs)
        if resume_from is not None:
            for frame in replay:
                connection.outbox.replayed(frame)
            connection.outbox.release_live()

    def _reply(
        self,
        connection: ServiceClient,
        frame: dict[str, Any],
        timing: tuple[str, float],
        seq: int | None = None,
    ) -> None:
        """Send a command's reply; count it and log it (``seq``: the command's record)."""
        connection.outbox.reply(frame)
        result = "success" if frame["response"] == "success" else frame["error"]["code"]
        self.metrics.command(timing[0], result, timing[1])
        # refusals are worth an operator's eye; the successes are the log's business
        level = logging.DEBUG if result == "success" else logging.INFO
        extra = {"seq": seq, "action_id": frame["action_id"]}
        log.log(level, "%s %s", timing[0], result, extra=extra)

    # --- observations --------------------------------------------------------------------

    async def observe(self, observation: Observation) -> list[int]:
        """Record an outside happening and what it means; returns the stored seqs."""
        await self.wait_healthy()
        return await self.observe_soon(observation)

    async def wait_healthy(self) -> None:
        """Until the live state is not being rebuilt after a failed append."""
        await self._healthy.wait()

    def observe_soon(self, observation: Observation) -> asyncio.Future[list[int]]:
        """``observe`` without waiting for the commit: decided, folded and queued for
        the writer now, in call order. Its effects and pushes still leave only once it
        is stored. The SIP side reports through this, so a burst of reports shares one
        commit instead of waiting a commit each. Call it after ``wait_healthy``."""
        call_id = observation.data.get("call_id")
        with logs.context(call_id=call_id if isinstance(call_id, str) else None):
            return self._observe_now(observation)

    def _observe_now(self, observation: Observation) -> asyncio.Future[list[int]]:
        now = self.clock()
        emits = observe(self.state, observation, now)
        record = Emit(SERVICE_STREAM, "observation", {"type": observation.type, **observation.data})
        prepared = self._prepare(
            [record, *emits], {"ts": iso(now), "observation": observation.type}
        )
        try:
            future = self.writer.append_soon(prepared.parts)
        except StoreError:
            self._spawn(self._recover())
            raise

        def stored(done: asyncio.Future[list[int]]) -> None:
            if done.cancelled():
                return
            error = done.exception()
            if error is not None:
                log.error("observation %s could not be stored: %s", observation.type, error)
                self._spawn(self._recover())
                return
            self._push(prepared, done.result())
            self.replies.observed(observation)
            self._observed.set()

        future.add_done_callback(stored)
        return future

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- shared: fold, append, push ------------------------------------------------------

    def _prepare(self, emits: Sequence[Emit], meta: dict[str, Any]) -> _Prepared:
        prepared = _Prepared(parts=[], emits=[])
        for emit in emits:
            emit = Emit(emit.stream_id, emit.type, emit.data, {**meta, **emit.meta})
            prepared.targets.append(recipients(self.state, emit))
            if self.executor is not None:
                prepared.effects += plan(self.state, emit)
            evolve(self.state, emit)
            prepared.emits.append(emit)
            event = NewEvent(type=emit.type, data=emit.data, meta=emit.meta)
            if prepared.parts and prepared.parts[-1].stream_id == emit.stream_id:
                last = prepared.parts[-1]
                prepared.parts[-1] = AppendPart(last.stream_id, [*last.events, event])
            else:
                prepared.parts.append(AppendPart(emit.stream_id, [event]))
        return prepared

    async def _commit(self, emits: Sequence[Emit], meta: dict[str, Any]) -> list[int]:
        prepared = self._prepare(emits, meta)
        try:
            seqs = await self.writer.append_atomic(prepared.parts)
        except StoreError:
            await self._recover()
            raise
        self._push(prepared, seqs)
        return seqs

    def _push(self, prepared: _Prepared, seqs: Sequence[int]) -> None:
        if prepared.effects and self.executor is not None:
            self.executor.submit(prepared.effects)
        for emit, seq, targets in zip(prepared.emits, seqs, prepared.targets, strict=True):
            if emit.type == "call.hangup":
                self.metrics.calls_ended.labels(str(emit.data.get("reason", ""))).inc()
            if not targets:
                continue
            frame = event_frame(emit.type, emit.data, seq, emit.meta.get("ts", ""))
            for connection_id in targets:
                connection = self.connections.get(connection_id)
                if connection is not None:
                    connection.outbox.event(frame)

    async def _replay(
        self, connection: ServiceClient, since_seq: int, until_seq: int
    ) -> list[dict[str, Any]]:
        """session.resume: the entitled events in ``(since_seq, until_seq]`` this
        connection has not been sent yet."""
        outbox = connection.outbox
        if connection.connection_id not in self.state.sessions:
            return []
        wanted = ResumeFilter(self.state, connection.connection_id)
        frames: list[dict[str, Any]] = []
        async for event in self.reader.read_all(since_seq):
            if event.seq > until_seq:
                break
            if wanted(event) and not outbox.sent(event.seq):
                frames.append(
                    event_frame(event.type, event.data, event.seq, event.meta.get("ts", ""))
                )
        return frames


def event_frame(event_type: str, data: dict[str, Any], seq: int, ts: str) -> dict[str, Any]:
    body = {k: v for k, v in data.items() if k not in ("call_id", "context")}
    top: dict[str, Any] = {}
    # an out-of-dialog MESSAGE names its context like an offered call does
    if event_type == "call.incoming" or (
        event_type == "sip.message.received" and "context" in data
    ):
        top["context"] = data.get("context")
    return protocol.event(event_type, data.get("call_id"), seq, ts, body, **top)
