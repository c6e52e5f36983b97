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
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rwi import protocol
from rwi.config import Config, TokenConfig
from rwi.domain import Command, Emit, Observation, State, decide, evolve, observe
from rwi.domain.calls import HANDLERS as CALL_HANDLERS
from rwi.domain.calls import check_sound_path, hangup_events
from rwi.domain.decide import BUILT, iso
from rwi.domain.delivery import ResumeFilter, recipients
from rwi.domain.model import SERVICE_STREAM, ContextPolicy, Policy, session_stream
from rwi.domain.transfers import HANDLERS as TRANSFER_HANDLERS
from rwi.effects import Effect, Executor, plan
from rwi.errors import RwiError
from rwi.gateway.outbox import Outbox
from rwi.gateway.ratelimit import TokenBucket
from rwi.sounds import sound_exists
from rwi.store import (
    AppendPart,
    EventReader,
    GroupCommitWriter,
    NewEvent,
    StoreError,
    UnstorableEventError,
)
from rwi.store.writer import encode_json

log = logging.getLogger(__name__)

CALL_BUILT = frozenset(CALL_HANDLERS) | frozenset(TRANSFER_HANDLERS)

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


@dataclass
class Connection:
    """One authenticated WebSocket connection, as the service sees it."""

    connection_id: str
    token: TokenConfig
    outbox: Outbox
    commands: TokenBucket
    originates: TokenBucket
    remote: str = ""


@dataclass
class _Prepared:
    """Decided and folded into the live state, waiting to be durable."""

    parts: list[AppendPart]
    emits: list[Emit]
    targets: list[set[str]] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)


class Service:
    def __init__(
        self,
        config: Config,
        writer: GroupCommitWriter,
        reader: EventReader,
        clock: Clock = utcnow,
    ) -> None:
        self.config = config
        self.writer = writer
        self.reader = reader
        self.clock = clock
        self.policy = Policy(
            max_calls_per_connection=config.rwi.max_calls_per_connection,
            orphan_hold_secs=config.rwi.orphan_hold_secs,
            contexts=tuple(
                ContextPolicy(
                    name=c.name,
                    no_answer_timeout_secs=c.no_answer_timeout_secs,
                    no_answer_action=c.no_answer_action,
                    no_answer_transfer_target=c.no_answer_transfer_target,
                    no_answer_tone_hz=c.no_answer_tone_hz,
                    no_answer_tone_secs=c.no_answer_tone_secs,
                )
                for c in config.rwi.contexts
            ),
        )
        self.state = State(policy=self.policy)
        self.connections: dict[str, Connection] = {}
        self.instance = uuid.uuid4().hex[:12]
        self._tasks: set[asyncio.Task[None]] = set()
        #: runs the effects of durable events on SIP and media; None = no SIP side
        self.executor: Executor | None = None
        self.sounds_dir: Path | None = None
        self._healthy = asyncio.Event()
        self._healthy.set()
        #: set once a recovery has either finished or found the log unreachable: until
        #: then a command waits for it; after a failed attempt it is refused at once
        self._settled = asyncio.Event()
        self._settled.set()
        self.rebuilt_events = 0
        #: dialogs of the calls the previous run left live, by call id: the SIP side
        #: ends them once it is up (``SipBridge.end_stale``)
        #: (the record, and whether the call had been answered in the log)
        self.stale_dialogs: dict[str, tuple[dict[str, Any], bool]] = {}

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.rebuild()
        ts = iso(self.clock())
        # Calls never survive a restart (their SIP dialogs and media legs lived in the
        # old process): end each one in the log, so history and clients agree.
        ended: list[Emit] = []
        gone: set[str] = set()
        for call in list(self.state.calls.values()):
            if call.call_id in gone:
                continue  # the other leg of a plain B2BUA call ends with its peer
            events = hangup_events(self.state, call, ts, "system", None, "system")
            gone.update(e.data["call_id"] for e in events if e.type == "call.hangup")
            ended += events
        self.stale_dialogs = {
            call_id: (dialog, self.state.calls[call_id].answered_at is not None)
            for call_id, dialog in self.state.dialogs.items()
            if call_id in self.state.calls
        }
        await self._commit(
            [Emit(SERVICE_STREAM, "service.started", {"instance": self.instance}), *ended],
            {"ts": ts},
        )

    async def stop(self) -> None:
        """Let every in-flight command finish its append and reply."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def rebuild(self) -> None:
        """Live state from the log, through the same ``evolve`` as live."""
        state = State(policy=self.policy)
        count = 0
        async for event in self.reader.read_all(0):
            evolve(state, event)
            count += 1
        self.state = state
        self.rebuilt_events = count

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

    async def open_session(self, connection: Connection) -> None:
        await self._healthy.wait()
        self.connections[connection.connection_id] = connection
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
        self, connection: Connection, text: str, refused: RwiError | None = None
    ) -> None:
        """Decide on one frame now; its append, reply and pushes complete in a task.

        ``refused`` is set for frames the gateway cannot hand over (binary, oversize):
        they are answered and recorded like any other outcome.
        """
        if not await self._usable():
            refused_id = protocol.action_id_of(text) or protocol.new_action_id()
            err = RwiError(
                "internal_error",
                f"the event log is unavailable; action_id {refused_id} was not executed",
            )
            connection.outbox.reply(protocol.error(refused_id, err))
            return
        now = self.clock()
        ts = iso(now)
        action_id: str | None = None
        action: str | None = None
        raw_params: Any = None
        key: str | None = None
        emits: tuple[Emit, ...] = ()
        extra: dict[str, Any] = {}
        after: Callable[[], Awaitable[None]] | None = None
        try:
            if refused is not None:
                raise refused
            request = protocol.parse_frame(text)
            action_id, action, raw_params = request.action_id, request.action, request.params
            spec = protocol.resolve(request.action)
            action = spec.name
            protocol.authorise(spec, connection.token.scopes, self.built)
            params = spec.validate(request.params)
            self._check_sounds(spec.name, params)
            key = request.meta.get("idempotency_key")
            stored = self._idempotent_reply(connection, key, request.params)
            if stored is not None:
                outcome = stored
                extra["replayed"] = True
            else:
                if not connection.commands.take():
                    raise RwiError(
                        "rate_limited",
                        f"command rate limit of {self.config.rwi.command_rate_limit:g}/s "
                        "for this connection exceeded",
                    )
                if spec.name == "call.originate" and not connection.originates.take():
                    raise RwiError(
                        "rate_limited",
                        f"originate_rate_limit of {self.config.rwi.originate_rate_limit:g}/s "
                        "for this connection exceeded",
                    )
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
                outcome = {"response": "success"}
                if decision.data is not None:
                    outcome["data"] = decision.data
                if spec.name == "session.resume":
                    since = int(params.get("since_seq", 0))
                    connection.outbox.hold_live()
                    after = lambda: self._replay(connection, since)  # noqa: E731
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
        task = asyncio.create_task(self._finish(connection, prepared, reply, after))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def built(self) -> frozenset[str]:
        """Call commands are executed only when a SIP/media side is attached."""
        return BUILT | CALL_BUILT if self.executor is not None else BUILT

    def _check_sounds(self, action: str, params: dict[str, Any]) -> None:
        """Sound files must exist inside the sounds directory when the command is given."""
        names: list[tuple[str, str]] = []
        source = params.get("source")
        if action == "media.play" and source and source.get("type") == "file" and "uri" in source:
            names.append(("params.source.uri", source["uri"]))
        if action == "call.hold" and params.get("music"):
            names.append(("params.music", params["music"]))
        music = params.get("hold_music")
        if action == "call.originate" and music and music.get("type") == "file" and "uri" in music:
            names.append(("params.hold_music.uri", music["uri"]))
        for field_name, name in names:
            check_sound_path(field_name, name)
            if self.sounds_dir is not None and not sound_exists(self.sounds_dir, name):
                raise RwiError(
                    "invalid_params",
                    f"{field_name}: no sound file {name!r} in the sounds directory",
                )

    def _idempotent_reply(
        self, connection: Connection, key: str | None, params: Any
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
        connection: Connection,
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
        connection: Connection,
        prepared: _Prepared,
        reply: dict[str, Any],
        after: Callable[[], Awaitable[None]] | None,
    ) -> None:
        try:
            seqs = await self.writer.append_atomic(prepared.parts)
        except StoreError as exc:
            log.error("append for action_id=%s failed: %s", reply.get("action_id"), exc)
            err = RwiError(
                "internal_error",
                f"could not store action_id {reply.get('action_id')}; it was not executed",
            )
            connection.outbox.reply(protocol.error(reply.get("action_id"), err))
            connection.outbox.release_live()
            await self._recover()
            return
        connection.outbox.reply(reply)
        self._push(prepared, seqs)
        if after is not None:
            await after()

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
            if not targets:
                continue
            frame = event_frame(emit.type, emit.data, seq, emit.meta.get("ts", ""))
            for connection_id in targets:
                connection = self.connections.get(connection_id)
                if connection is not None:
                    connection.outbox.event(frame)

    async def _replay(self, connection: Connection, since_seq: int) -> None:
        """session.resume: entitled events from the log, then live again."""
        outbox = connection.outbox
        try:
            session = self.state.sessions.get(connection.connection_id)
            if session is None:
                return
            wanted = ResumeFilter(self.state, connection.connection_id)
            start = max(since_seq, outbox.last_seq)
            async for event in self.reader.read_all(start):
                if wanted(event):
                    outbox.replayed(
                        event_frame(event.type, event.data, event.seq, event.meta.get("ts", ""))
                    )
        finally:
            outbox.release_live()


def event_frame(event_type: str, data: dict[str, Any], seq: int, ts: str) -> dict[str, Any]:
    body = {k: v for k, v in data.items() if k not in ("call_id", "context")}
    top: dict[str, Any] = {}
    if event_type == "call.incoming":
        top["context"] = data.get("context")
    return protocol.event(event_type, data.get("call_id"), seq, ts, body, **top)
