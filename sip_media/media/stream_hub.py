"""The stream thread: every audio stream's WebSocket client of one engine, off the clock.

Where it sits: owned by the engine (:mod:`.engine`), started with its first stream. It
runs an asyncio loop on a thread of its own, in the service's process or in a media
worker alike, so a bot's connection, slow reads and JSON never run inside the 20 ms
tick (and work the same whichever runner the engine has). The engine hands it taps
(:meth:`start`, :meth:`stop`) and wakes it once per tick (:meth:`wake`); what the
clients report (started, marks, stopped) waits in :attr:`reports` for the engine to
pass on with its own observations.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading

from . import api
from .stream_client import MaskKeys, StreamClient
from .stream_tap import StreamTap

log = logging.getLogger(__name__)


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it exists, as ``rwi serve`` runs (whatever loop the engine's runner
    has): the thread spends most of its time in socket reads, writes and task switches,
    which cost a fraction of the standard loop's there."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class StreamHub:
    def __init__(self, connect_timeout: float = 5.0) -> None:
        self.connect_timeout = connect_timeout
        self.reports: collections.deque[api.Observation] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[str, StreamClient] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = 0  # streams started and not yet reported stopped
        self._keys = MaskKeys()  # used on the thread only

    @property
    def active(self) -> bool:
        return self._running > 0

    def _ensure(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = _new_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=main, name="media-streams", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    def _report(self, obs: api.Observation) -> None:
        self.reports.append(obs)

    # ------------------------------------------------------------ from the clock

    def start(self, tap: StreamTap) -> None:
        """Connect ``tap``'s stream; its ``StreamStarted`` or ``StreamStopped`` follows."""
        self._running += 1
        self._ensure().call_soon_threadsafe(self._spawn, tap)

    def stop(self, tap: StreamTap, reason: str) -> None:
        """End a stream (``tap.stopping`` is set at once: no more audio either way)."""
        if tap.stopping is None:
            tap.stopping = reason
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop, tap.stream_id)

    def wake(self) -> None:
        """Frames were offered this tick: let the clients send them."""
        if self._loop is not None and self._clients:
            self._loop.call_soon_threadsafe(self._flush_all)

    def ended(self, obs: api.StreamStopped) -> None:
        """The engine passed a stream's end on."""
        self._running -= 1

    def close(self, timeout: float = 3.0) -> None:
        """Stop the thread once the running clients have said goodbye (bounded)."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        done = threading.Event()

        async def finish() -> None:
            tasks = list(self._tasks.values())
            for client in self._clients.values():
                client.stop()
            if tasks:
                await asyncio.wait(tasks, timeout=timeout)
            done.set()

        loop.call_soon_threadsafe(lambda: loop.create_task(finish()))
        done.wait(timeout + 1.0)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout + 1.0)
        self._loop = None

    # ---------------------------------------------------------- on the thread

    def _spawn(self, tap: StreamTap) -> None:
        client = StreamClient(tap, self._report, self.connect_timeout, keys=self._keys)
        self._clients[tap.stream_id] = client
        task = asyncio.get_running_loop().create_task(client.run(), name=tap.stream_id)
        self._tasks[tap.stream_id] = task

        def forget(_: asyncio.Task[None]) -> None:
            self._clients.pop(tap.stream_id, None)
            self._tasks.pop(tap.stream_id, None)

        task.add_done_callback(forget)

    def _stop(self, stream_id: str) -> None:
        client = self._clients.get(stream_id)
        task = self._tasks.get(stream_id)
        if client is None or task is None:
            return
        if client.tap.open:
            client.stop()
        else:
            task.cancel()  # still connecting

    def _flush_all(self) -> None:
        """One callback per tick writes every stream's frames (no task switch each)."""
        for client in self._clients.values():
            if client.tap.to_bot:
                client.flush()
