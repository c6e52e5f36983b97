"""A connection's outgoing frames, in order, with the resume merge.

Replies and events are queued here synchronously (no await between a reply and the
events its command caused), and one sender task writes them to the socket, so the order
of queueing is the order on the wire. During ``session.resume`` live events are held
back until the replay from the log has been sent. An event is never sent twice on a
connection: the outbox remembers the seqs it sent (the last ``SENT_MEMORY``), so a
replay skips what went out live before ``session.resume``. Live events are sent in
``seq`` order; only a replay can go back below a live event sent before it (the client
merges them by ``seq``, knowing from the reply's ``last_seq`` where the replay ends).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from rwi import jsontext

log = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]

#: How many sent seqs an outbox remembers for resume's duplicate check; older ones are
#: summarised as "everything up to the oldest forgotten seq was sent".
SENT_MEMORY = 10000


class Outbox:
    def __init__(self, send: Send, max_queued: int = 10000) -> None:
        self._send = send
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._max_queued = max_queued
        self._task: asyncio.Task[None] | None = None
        self.last_seq = 0
        self._sent: set[int] = set()
        self._sent_order: deque[int] = deque()
        self._forgotten = 0
        self._held: list[dict[str, Any]] | None = None
        self.closed = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        self.closed = True
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task

    def reply(self, frame: dict[str, Any]) -> None:
        self._put(frame)

    def event(self, frame: dict[str, Any]) -> None:
        """A live event; dropped if this connection already got it (resume overlap)."""
        if self._held is not None:
            self._held.append(frame)
            return
        self._emit_event(frame)

    def sent(self, seq: int) -> bool:
        """Whether the event ``seq`` already went out on this connection."""
        return seq <= self._forgotten or seq in self._sent

    def _emit_event(self, frame: dict[str, Any]) -> None:
        seq = frame["seq"]
        if self.sent(seq):
            return
        self._sent.add(seq)
        self._sent_order.append(seq)
        if len(self._sent_order) > SENT_MEMORY:
            oldest = self._sent_order.popleft()
            self._sent.discard(oldest)
            self._forgotten = max(self._forgotten, oldest)
        self.last_seq = max(self.last_seq, seq)
        self._put(frame)

    def hold_live(self) -> None:
        if self._held is None:
            self._held = []

    def replayed(self, frame: dict[str, Any]) -> None:
        """An event read back from the log during resume (skipped if already sent)."""
        self._emit_event(frame)

    def release_live(self) -> None:
        held, self._held = self._held or [], None
        for frame in held:
            self._emit_event(frame)

    def _put(self, frame: dict[str, Any]) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self._max_queued:
            # A client that stops reading must not grow the server without bound; it can
            # reconnect and use session.resume to get what it missed.
            log.warning("outbox full (%d frames): closing slow connection", self._max_queued)
            self.closed = True
            self._queue.put_nowait(None)
            return
        self._queue.put_nowait(jsontext.dumps(frame))

    async def _run(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None:
                return
            try:
                await self._send(text)
            except Exception as exc:  # the socket is gone: nothing more can be sent
                log.debug("send failed, outbox stops: %s", exc)
                self.closed = True
                return
