"""``rwi.client``'s connection: one WebSocket at a time, reconnected and resumed by itself.

The command path: ``request`` gives every frame an ``action_id`` and a
``meta.idempotency_key`` and keeps it pending until its reply arrives; the reader task
resolves replies and passes each event whose ``seq`` is new to ``Events``.

When the socket drops, the run loop reconnects (with backoff) and, in one burst of
frames, re-subscribes the contexts and queues, re-attaches the calls this client controls (the
service orphaned them when the old connection closed), resends every command still
waiting for its reply (same ``action_id`` and key, so the service answers a retry with
the first execution's reply instead of executing it twice), attaches the calls those
commands take, and sends ``session.resume`` from the last ``seq`` delivered. Sending it
as one burst lets the service decide ``session.resume`` early. The service replays
what this connection has not been sent yet and says in the reply's ``last_seq`` where
the replay ends; live events follow it. Events that arrived ahead of the reply (live
events of a call re-attached in the burst) are held and merged into the replay by
``seq``, so ``events`` sees every event once, in ``seq`` order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import websockets
from websockets.exceptions import InvalidStatus

from rwi.client.actions import Actions
from rwi.client.errors import CommandError, RwiClientError, command_error
from rwi.client.events import Event, Events

log = logging.getLogger(__name__)

#: Commands whose success makes this connection a call's controller, and the reply or
#: params field naming the call.
TAKES_CALL = frozenset({"call.originate", "call.answer", "call.ring", "session.attach_call"})
#: Connection-scoped commands: a retry on a new connection must execute again (a stored
#: reply would leave the new connection unsubscribed or detached), so each send gets a
#: fresh idempotency key.
PER_CONNECTION = frozenset(
    {
        "session.subscribe",
        "session.unsubscribe",
        "session.attach_call",
        "session.detach_call",
        "session.list_calls",
        "session.resume",
    }
)


class ConnectionFailed(RwiClientError):
    """The service could not be reached, or refused the token."""


class ClientClosed(RwiClientError):
    """The client was closed while a command waited for its reply."""


@dataclass
class _Pending:
    action: str
    frame: dict[str, Any]
    reply: asyncio.Future[dict[str, Any]]
    link: int = 0  # the link it was last sent on


@dataclass
class _Link:
    """One WebSocket connection and where its handshake stands."""

    number: int
    ws: websockets.ClientConnection
    waiting: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    resume_id: str | None = None
    resumed: bool = True
    #: events that arrived before the resume reply, merged into the replay by seq
    early: list[Event] = field(default_factory=list)
    #: the reply's ``last_seq`` while the replay up to it is still arriving
    replay_until: int | None = None
    gap: bool = False
    ready: bool = False


class _Retry(Exception):
    """The handshake must be done again on a fresh connection."""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")[:23] + "Z"


class Client(Actions):
    """An RWI client; see the module docstring. Use ``connect`` to get one."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        since_seq: int | None = None,
        command_timeout: float = 30.0,
        retry_delay: float = 0.2,
        max_retry_delay: float = 5.0,
        reattach_for: float = 30.0,
        history: int = 10000,
        subscribe: Iterable[str] = (),
        attach: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(self.request)
        self.url = url
        self.token = token
        self.events = Events(history)
        #: the highest ``seq`` delivered to ``events``
        self.last_seq = since_seq or 0
        #: ``last_seq`` when the latest command reply arrived. The service sends a
        #: command's reply before the events it causes, so those have a higher ``seq``:
        #: ``events.wait(..., after_seq=rwi.last_reply_seq)`` right after a command
        #: returns finds the event it caused, not an older one of the same kind (reading
        #: ``last_seq`` then could already count that event).
        self.last_reply_seq = 0
        #: reconnections so far (each one resumed; counted as its handshake starts)
        self.reconnects = 0
        self.command_timeout = command_timeout
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.reattach_for = reattach_for
        # A client that has seen no event resumes from its own start, not from the
        # beginning of the log (an old call with a reused call_id is not news).
        self._floor = None if since_seq is not None else _now_iso()
        self._resume_at_start = since_seq is not None
        self._contexts: set[str] = set(subscribe)
        self._queues: set[str] = set()
        #: call_id -> attach mode ("control" for the calls this client took)
        self._calls: dict[str, str] = dict(attach or {})
        self._pending: dict[str, _Pending] = {}
        self._link: _Link | None = None
        self._links = itertools.count(1)
        self._ready = asyncio.Event()
        self._closing = False
        self._fatal: BaseException | None = None
        self._runner: asyncio.Task[None] | None = None

    @property
    def calls(self) -> frozenset[str]:
        """The calls this client controls or watches (re-attached after a reconnect)."""
        return frozenset(self._calls)

    @property
    def contexts(self) -> frozenset[str]:
        return frozenset(self._contexts)

    @property
    def queues(self) -> frozenset[str]:
        """The queues this client watches as a dashboard (re-subscribed after a reconnect)."""
        return frozenset(self._queues)

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (and resume from ``since_seq`` if given); raise if that fails."""
        self._runner = asyncio.create_task(self._run())
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait([self._runner, ready], return_when=asyncio.FIRST_COMPLETED)
        if not self._ready.is_set():
            ready.cancel()
            await self._runner
            raise self._fatal or ConnectionFailed(f"could not connect to {self.url}")

    async def close(self) -> None:
        self._closing = True
        link = self._link
        if link is not None:
            await link.ws.close()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.wait({self._runner})  # our own cancellation still reaches us
        self._fail_pending(ClientClosed("the client was closed"))
        await self.events.close()

    def drop_connection(self) -> None:
        """Cut the current socket without a closing handshake, as a network failure
        would (the client reconnects and resumes); for tests and diagnostics."""
        link = self._link
        if link is not None:
            link.ws.transport.abort()

    async def wait_connected(self, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            await self._ready.wait()

    # --- commands ------------------------------------------------------------------------

    async def request(self, action: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send ``action``; its reply's ``data``, or its ``CommandError``. Survives
        reconnects: the same frame is sent again until a reply arrives."""
        if self._fatal is not None:
            raise self._fatal
        if self._closing:
            raise ClientClosed("the client is closed")
        action_id = f"c-{uuid.uuid4().hex[:16]}"
        frame: dict[str, Any] = {
            "rwi": "1.0",
            "action_id": action_id,
            "action": action,
            "params": params or {},
            "meta": {"idempotency_key": f"k-{uuid.uuid4().hex}"},
        }
        pending = _Pending(action, frame, asyncio.get_running_loop().create_future())
        self._pending[action_id] = pending
        try:
            link = self._link
            if link is not None and link.ready:
                await self._send(link, pending)
            async with asyncio.timeout(self.command_timeout):
                reply = await pending.reply
        finally:
            self._pending.pop(action_id, None)
        if reply.get("response") != "success":
            err = reply.get("error") or {}
            raise command_error(
                action, action_id, str(err.get("code", "")), str(err.get("message", ""))
            )
        data: dict[str, Any] = reply.get("data") or {}
        return data

    async def _send(self, link: _Link, pending: _Pending) -> None:
        pending.link = link.number
        if pending.action in PER_CONNECTION:
            pending.frame["meta"] = {"idempotency_key": f"k-{uuid.uuid4().hex}"}
        with contextlib.suppress(websockets.ConnectionClosed):
            await link.ws.send(json.dumps(pending.frame))

    def _track(self, action: str, params: dict[str, Any], data: dict[str, Any]) -> None:
        """What a successful reply changes in the contexts and calls to restore."""
        if action in ("session.subscribe", "session.unsubscribe"):
            self._contexts = set(data.get("contexts", ()))
            self._queues = set(data.get("queues", ()))
        elif action in TAKES_CALL:
            self._calls[str(params["call_id"])] = str(params.get("mode", "control"))
        elif action == "session.detach_call":
            self._calls.pop(str(params["call_id"]), None)
        for key in ("transfer_call_id", "consultation_call_id"):
            if isinstance(data.get(key), str):
                self._calls[data[key]] = "control"

    # --- the connection loop -------------------------------------------------------------

    async def _run(self) -> None:
        delay = self.retry_delay
        first = True
        reattach_until: float | None = None
        while not self._closing:
            try:
                ws = await websockets.connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    max_size=None,
                    open_timeout=10,
                )
            except InvalidStatus as exc:
                self._fatal = ConnectionFailed(f"{self.url}: {exc}")
                self._fail_pending(self._fatal)
                return
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                if first:
                    self._fatal = ConnectionFailed(f"could not connect to {self.url}: {exc}")
                    return
                log.info("rwi client: reconnect failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
                continue
            link = _Link(next(self._links), ws)
            self._link = link
            reader = asyncio.create_task(self._read(link))
            try:
                if reattach_until is None:
                    reattach_until = time.monotonic() + self.reattach_for
                # on the first connection a call owned by another is not ours to wait for
                give_up = first or time.monotonic() > reattach_until
                resume = not first or self._resume_at_start
                if not first:
                    # counted before the handshake: a command resent in it may get its
                    # reply before the handshake ends
                    self.reconnects += 1
                await self._handshake(link, resume=resume, give_up=give_up)
                link.ready = True
                for pending in list(self._pending.values()):
                    if pending.link != link.number:
                        await self._send(link, pending)
                first = False
                reattach_until = None
                delay = self.retry_delay
                self._ready.set()
                await reader
            except (_Retry, TimeoutError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
            except (websockets.ConnectionClosed, ConnectionError):
                pass
            finally:
                self._ready.clear()
                link.ready = False
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reader
                await ws.close()
            if self._fatal is not None:
                return

    async def _handshake(self, link: _Link, *, resume: bool, give_up: bool) -> None:
        """Restore contexts and calls, resend pending commands, resume (one burst)."""
        frames: list[dict[str, Any]] = []
        attaches: dict[str, str] = {}  # action_id -> call_id, for calls known before

        def internal(action: str, params: dict[str, Any]) -> dict[str, Any]:
            action_id = f"h-{uuid.uuid4().hex[:16]}"
            link.waiting[action_id] = asyncio.get_running_loop().create_future()
            frame = {"rwi": "1.0", "action_id": action_id, "action": action, "params": params}
            frames.append(frame)
            return frame

        subscriptions = {"contexts": sorted(self._contexts), "queues": sorted(self._queues)}
        if self._contexts or self._queues:
            internal("session.subscribe", {k: v for k, v in subscriptions.items() if v})
        for call_id, mode in sorted(self._calls.items()):
            params = {"call_id": call_id, "mode": mode}
            attaches[internal("session.attach_call", params)["action_id"]] = call_id
        resent = list(self._pending.values())
        for pending in resent:
            pending.link = link.number
            if pending.action in PER_CONNECTION:
                pending.frame["meta"] = {"idempotency_key": f"k-{uuid.uuid4().hex}"}
            frames.append(pending.frame)
            call_id = pending.frame["params"].get("call_id")
            if pending.action in TAKES_CALL - {"session.attach_call"} and isinstance(call_id, str):
                # the first execution may have taken it for the old connection
                internal("session.attach_call", {"call_id": call_id})
        if resume:
            link.resume_id = internal("session.resume", {"since_seq": self.last_seq})["action_id"]
            link.resumed = False
        for frame in frames:
            await link.ws.send(json.dumps(frame))
        async with asyncio.timeout(self.command_timeout):
            replies = {aid: await future for aid, future in list(link.waiting.items())}
        retry = False
        for action_id, call_id in attaches.items():
            code = (replies[action_id].get("error") or {}).get("code")
            if code == "already_owned" and not give_up:
                retry = True  # the service has not closed our old connection yet
            elif code is not None:
                log.warning("rwi client: call %s not attached: %s", call_id, code)
                self._calls.pop(call_id, None)
        if retry or link.gap:
            raise _Retry()

    async def _read(self, link: _Link) -> None:
        try:
            async for text in link.ws:
                frame = json.loads(text)
                if "event" in frame and "seq" in frame:
                    await self._event(link, Event.from_frame(frame))
                elif "response" in frame:
                    self._reply(link, frame)
                    if link.resumed and link.replay_until is None:
                        await self._flush_early(link, None)
        finally:
            for future in link.waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection lost during the handshake"))

    def _reply(self, link: _Link, frame: dict[str, Any]) -> None:
        action_id = frame.get("action_id")
        if not isinstance(action_id, str):
            log.warning("rwi client: error without action_id: %s", frame.get("error"))
            return
        if action_id == link.resume_id:
            link.resumed = True
            last = (frame.get("data") or {}).get("last_seq")
            if frame.get("response") != "success" or not isinstance(last, int):
                # no replay to merge with: what came early may hide a gap
                link.gap = any(e.seq > self.last_seq for e in link.early)
                link.early.clear()
            elif last > self.last_seq:
                link.replay_until = last
        future = link.waiting.get(action_id)
        if future is not None:
            if not future.done():
                future.set_result(frame)
            return
        pending = self._pending.get(action_id)
        if pending is not None and not pending.reply.done():
            self.last_reply_seq = self.last_seq
            if frame.get("response") == "success":
                self._track(pending.action, pending.frame["params"], frame.get("data") or {})
            pending.reply.set_result(frame)

    async def _event(self, link: _Link, event: Event) -> None:
        if not link.resumed:
            link.early.append(event)
            return
        if link.gap:
            return
        until = link.replay_until
        if until is None:
            await self._deliver(event)
            return
        # replayed events come in seq order up to ``until``; the early ones slot in
        await self._flush_early(link, event.seq if event.seq <= until else None)
        await self._deliver(event)
        if event.seq >= until:
            link.replay_until = None
            await self._flush_early(link, None)

    async def _flush_early(self, link: _Link, below: int | None) -> None:
        """Deliver the held early events (those below ``below``, or all)."""
        if not link.early:
            return
        link.early.sort(key=lambda e: e.seq)
        while link.early and (below is None or link.early[0].seq < below):
            await self._deliver(link.early.pop(0))

    async def _deliver(self, event: Event) -> None:
        if event.seq <= self.last_seq:
            return
        if self._floor is not None and event.ts < self._floor:
            return
        self.last_seq = event.seq
        if event.name == "call.hangup" and event.call_id is not None:
            self._calls.pop(event.call_id, None)
        await self.events.add(event)

    def _fail_pending(self, error: BaseException) -> None:
        for pending in self._pending.values():
            if not pending.reply.done():
                pending.reply.set_exception(error)


@asynccontextmanager
async def connect(url: str, token: str, **options: Any) -> AsyncIterator[Client]:
    """``async with connect(url, token) as rwi:`` a started ``Client``, closed after."""
    client = Client(url, token, **options)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


__all__ = ["Client", "ClientClosed", "CommandError", "ConnectionFailed", "connect"]
