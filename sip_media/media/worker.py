"""Worker-process mode: engines in their own processes, so media never waits on the GIL.

Where it sits: :func:`~.service.start_media` with ``workers = N`` creates
:class:`WorkerMedia`, which spawns N processes running :func:`worker_main`.  Each worker
owns an engine with its own slice of the port range and its own absolute 20 ms clock,
and exchanges the very same frozen effect / result / observation dataclasses over a
pipe.  Legs are placed by ``CreateLeg.group`` (or leg id): legs that will be mixed
together (both legs of a call, a supervisor) must share a group; effects spanning
workers are refused with :class:`~.errors.InvalidEffectError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import multiprocessing
import select
import time
import zlib
from multiprocessing.connection import Connection
from typing import Any

from . import api
from .assets import ensure_assets
from .clock import TICK, run_clock_step
from .config import MediaConfig
from .engine import MediaEngine
from .errors import ERRORS_BY_CODE, InvalidEffectError, MediaError, UnknownIdError, WorkerError
from .hub import ObservationCallback, ObservationHub
from .stats import MediaStats

log = logging.getLogger(__name__)


def worker_main(conn: Connection, config: MediaConfig, port_range: tuple[int, int]) -> None:
    """Body of one worker process: apply effects between ticks until told to stop."""
    engine = MediaEngine(config, port_range)
    conn.send(("ready", 0))
    next_tick = time.monotonic()
    next_freeze = next_tick + 1.0
    running = True
    batch = config.relay_batch_ms / 1000.0
    next_drain = 0.0  # relay packets at most every ``relay_batch_ms`` (see service)
    while running:
        now = time.monotonic()
        watched = [conn.fileno()]
        deadline = next_tick
        if now >= next_drain:
            watched.append(engine.fileno())
        else:
            deadline = min(deadline, next_drain)
        readable, _, _ = select.select(watched, [], [], max(0.0, deadline - now))
        try:
            if engine.fileno() in readable:
                engine.drain()
                next_drain = time.monotonic() + batch
            if time.monotonic() >= next_tick:
                next_tick = run_clock_step(engine, next_tick, config.max_catchup_ticks)
        except Exception:  # a bug must not stop the media of every call
            log.exception("media worker tick failed")
            next_tick = time.monotonic() + TICK
        if conn.fileno() in readable:
            try:
                msg = conn.recv()
            except EOFError:
                break
            if msg is None:
                running = False
            else:
                req_id, effect = msg
                try:
                    conn.send(("result", req_id, engine.apply(effect)))
                except MediaError as exc:
                    conn.send(("error", req_id, exc.code, str(exc)))
                except Exception as exc:  # a bug: answer, log, keep serving other calls
                    log.exception("effect %r failed", effect)
                    conn.send(("error", req_id, MediaError.code, f"internal error: {exc}"))
        if next_tick >= next_freeze:
            # Long-lived engine state (legs, buffers) leaves the collector's view, so
            # a full collection never has to walk thousands of legs mid-call (those
            # pauses showed up as 100+ ms clock stalls).  Refcounting still frees it.
            gc.freeze()
            next_freeze = next_tick + 1.0
            conn.send(("snapshot", engine.snapshot()))
        observations = engine.drain_observations()
        if observations:
            conn.send(("obs", observations))
    engine.close()
    conn.send(("obs", engine.drain_observations()))
    conn.send(("stats", dict(engine.stats)))
    conn.close()


def _legs_of(effect: api.Effect) -> tuple[str, ...]:
    match effect:
        case api.Connect(leg_a=a, leg_b=b) | api.Disconnect(leg_a=a, leg_b=b):
            return (a, b)
        case api.PassThroughEarlyMedia(from_leg=a, to_leg=b):
            return (a, b)
        case api.SuperviseLeg(supervisor_leg=s, agent_leg=a):
            return (s, a)
        case api.Record(legs=legs):
            return legs
        case api.StopSupervising(supervisor_leg=s):
            return (s,)
        case (
            api.UpdateLeg(leg_id=leg)
            | api.DestroyLeg(leg_id=leg)
            | api.HoldLeg(leg_id=leg)
            | api.UnholdLeg(leg_id=leg)
            | api.StartPlayback(leg_id=leg)
            | api.SendDtmf(leg_id=leg)
            | api.JoinConference(leg_id=leg)
            | api.LeaveConference(leg_id=leg)
            | api.MuteConferenceMember(leg_id=leg)
            | api.StartAudioStream(leg_id=leg)
        ):
            return (leg,)
    return ()


class WorkerMedia:
    """Client side of the worker pool (runs in the service's event loop)."""

    def __init__(self, config: MediaConfig, callback: ObservationCallback | None = None) -> None:
        self.config = config
        self.observations = ObservationHub(callback)
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._pending: dict[int, asyncio.Future[api.Result]] = {}
        self._ids = itertools.count()
        self._leg_worker: dict[str, int] = {}
        self._id_worker: dict[str, int] = {}  # playbacks, recordings, conferences
        self.worker_stats: list[dict[str, int]] = []
        self._snapshots: dict[int, MediaStats] = {}
        self._ready = 0
        self._failed = False
        self._all_ready = asyncio.Event()

    async def start(self) -> None:
        """Spawn the workers, each with a disjoint slice of the port range."""
        ensure_assets(self.config.sounds_dir)
        ctx = multiprocessing.get_context("spawn")
        n = self.config.workers
        span = (self.config.port_max - self.config.port_min) // n
        loop = asyncio.get_running_loop()
        for i in range(n):
            lo = self.config.port_min + i * span
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=worker_main,
                args=(child, self.config, (lo, lo + span - 1)),
                name=f"media-worker-{i}",
                daemon=True,
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
            loop.add_reader(parent.fileno(), self._on_readable, i)
        try:
            async with asyncio.timeout(30):
                await self._all_ready.wait()
        except TimeoutError as exc:
            raise WorkerError("media workers did not start") from exc
        if self._failed:
            await self.close()
            raise WorkerError("a media worker exited during start-up")

    def _on_readable(self, index: int) -> None:
        conn = self._conns[index]
        try:
            while conn.poll(0):
                self._dispatch(conn.recv(), index)
        except (EOFError, OSError):
            self._failed = True
            self._all_ready.set()
            asyncio.get_running_loop().remove_reader(conn.fileno())
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(WorkerError(f"media worker {index} exited"))

    def stats(self) -> MediaStats:
        """The workers' counters as each last sent them (once a second)."""
        total = MediaStats()
        for snapshot in self._snapshots.values():
            total = total.merged(snapshot)
        return total

    def _dispatch(self, msg: tuple[Any, ...], index: int) -> None:
        kind = msg[0]
        if kind == "snapshot":
            self._snapshots[index] = msg[1]
        elif kind == "obs":
            for obs in msg[1]:
                if isinstance(obs, api.PlaybackFinished):
                    self._id_worker.pop(obs.playback_id, None)
                elif isinstance(obs, api.RecordingFinished | api.RecordingWriteFailed):
                    self._id_worker.pop(obs.recording_id, None)
                elif isinstance(obs, api.StreamStopped):
                    self._id_worker.pop("stream:" + obs.stream_id, None)
            self.observations.publish(msg[1])
        elif kind == "stats":
            self.worker_stats.append(msg[1])
        elif kind == "ready":
            self._ready += 1
            if self._ready == len(self._conns):
                self._all_ready.set()
        else:
            fut = self._pending.pop(msg[1], None)
            if fut is None or fut.done():
                return
            if kind == "result":
                fut.set_result(msg[2])
            else:
                fut.set_exception(ERRORS_BY_CODE.get(msg[2], MediaError)(msg[3]))

    def _route(self, effect: api.Effect) -> int:
        if isinstance(effect, api.CreateLeg):
            key = (effect.group or effect.leg_id).encode()
            return zlib.crc32(key) % len(self._conns)
        if isinstance(effect, api.StopPlayback):
            return self._known(effect.playback_id)
        if isinstance(effect, api.PauseRecord | api.ResumeRecord | api.StopRecord):
            return self._known(effect.recording_id)
        if isinstance(effect, api.StopAudioStream):
            return self._known("stream:" + effect.stream_id)
        workers = {self._leg_worker.get(leg, -1) for leg in _legs_of(effect)}
        if isinstance(effect, api.JoinConference):
            conf_worker = self._id_worker.get("conf:" + effect.conference_id)
            if conf_worker is not None:
                workers.add(conf_worker)
        if len(workers) != 1:
            raise InvalidEffectError("legs of this effect live in different media workers")
        worker = next(iter(workers))
        if worker < 0:
            return 0  # unknown leg: let a worker answer with UnknownMediaLegError
        return worker

    def _known(self, key: str) -> int:
        worker = self._id_worker.get(key)
        if worker is None:
            raise UnknownIdError(f"unknown id {key!r}")
        return worker

    async def execute(self, effect: api.Effect) -> api.Result:
        """Send an effect to the worker owning its legs and await the answer."""
        worker = self._route(effect)
        req_id = next(self._ids)
        fut: asyncio.Future[api.Result] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        self._conns[worker].send((req_id, effect))
        result = await fut
        match result:
            case api.LegCreated(leg_id=leg):
                self._leg_worker[leg] = worker
            case api.PlaybackStarted(playback_id=pid):
                self._id_worker[pid] = worker
            case api.RecordingStarted(recording_id=rid):
                self._id_worker[rid] = worker
        if isinstance(effect, api.DestroyLeg):
            self._leg_worker.pop(effect.leg_id, None)
        elif isinstance(effect, api.JoinConference):
            self._id_worker["conf:" + effect.conference_id] = worker
        elif isinstance(effect, api.StartAudioStream):
            self._id_worker["stream:" + effect.stream_id] = worker
        return result

    async def close(self) -> None:
        """Stop every worker (recordings are finalised) and wait for them."""
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        deadline = time.monotonic() + 5.0
        for proc in self._procs:
            await asyncio.to_thread(proc.join, max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
        loop = asyncio.get_running_loop()
        for i, conn in enumerate(self._conns):
            with contextlib.suppress(OSError, ValueError):
                loop.remove_reader(conn.fileno())
            self._on_readable(i)
            conn.close()
