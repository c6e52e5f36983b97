"""Start and stop the service's parts in order: database, migrations, store, service.

It also wires the service's metrics (``rwi.metrics``) to the parts they read.

Shared by ``rwi serve`` (through the app's lifespan) and by the tests, so both run the
same start-up and the same clean shutdown (no acknowledged event is lost: the writer
drains its queue before the database is stopped).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from rwi.config import Config
from rwi.domain import State
from rwi.loop_lag import LoopLagProbe
from rwi.metrics import Metrics
from rwi.projections.runner import ProjectionRunner
from rwi.service import Service, load_state, policy_of
from rwi.sounds import SoundLibrary
from rwi.stop_steps import run_step
from rwi.store import EventReader, GroupCommitWriter
from rwi.store.database import (
    EmbeddedPostgres,
    asyncpg_dsn,
    create_pool,
    migrate,
    migrations_current,
)

log = logging.getLogger(__name__)

#: how long each part may take to close before it is cancelled (``stop``)
STEP_SECS = 4.0


@dataclass
class Runtime:
    config: Config
    database_url: str = ""
    embedded: EmbeddedPostgres | None = None
    pool: asyncpg.Pool | None = None
    writer: GroupCommitWriter | None = None
    service: Service | None = None
    projections: ProjectionRunner | None = None
    revision: str = ""
    legs: Any = None  # sip_media.calls.CallLegs, when [sip] is configured
    ingest: Any = None  # rwi.sip_ingest.SipIngest
    executor: Any = None  # rwi.executor.Executor
    metrics: Metrics = field(default_factory=Metrics)
    loop_lag: LoopLagProbe | None = None

    @property
    def embedded_mode(self) -> bool:
        return not self.config.database.url

    def start_database(self) -> str:
        """The database URL to use, starting the embedded PostgreSQL if none is set."""
        if self.database_url:
            return self.database_url
        if self.config.database.url:
            self.database_url = self.config.database.url
        else:
            self.embedded = EmbeddedPostgres(self.config.storage.data_dir / "pg")
            self.database_url = self.embedded.start()
        return self.database_url

    async def start(self) -> Service:
        url = self.start_database()
        self.revision = await migrate(url)
        self.pool = await create_pool(url, self.config.database.pool_size)
        dsn = asyncpg_dsn(url)
        self.writer = GroupCommitWriter(dsn, on_batch=self.metrics.appended)
        await self.writer.start()
        reader = EventReader(self.pool, dsn)
        # The state comes first: the SIP side starts with the registrations it holds.
        state, _ = await load_state(reader, policy_of(self.config))
        sounds = await self._start_sip(state) if self.config.sip else None
        self.service = Service(
            self.config,
            self.writer,
            reader,
            executor=self.executor,
            sounds=sounds,
            state=state,
            metrics=self.metrics,
        )
        await self.service.start()
        if self.ingest is not None:
            self.ingest.start(self.service)
        self.projections = ProjectionRunner(self.service.reader, dsn)
        await self.projections.start()
        self.loop_lag = LoopLagProbe(self.metrics.loop_lag.observe)
        self.loop_lag.start()
        return self.service

    async def _start_sip(self, state: State) -> SoundLibrary:
        """SIP and media, when ``[sip]`` is configured: phones and trunks can call."""
        from rwi.sip_executor import release_held_ack, sip_executor
        from rwi.sip_ingest import SipIngest, message_filter, restored_bindings
        from rwi.sip_settings import sip_settings
        from sip_media.calls import CallLegs
        from sip_media.media.assets import ensure_assets

        settings = sip_settings(self.config)
        ensure_assets(settings.media.sounds_dir)
        settings.media.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.legs = await CallLegs.start(
            settings.engine,
            settings.media,
            bindings=restored_bindings(state),
            accept_message=message_filter(settings),
        )
        self.ingest = SipIngest(self.legs, settings, stored=release_held_ack(self.legs))
        self.executor = sip_executor(self.legs, settings)
        legs, executor = self.legs, self.executor
        self.metrics.sources.sip = lambda: legs.sip.engine.stats
        self.metrics.sources.media = legs.media.stats
        self.metrics.sources.effects = lambda: dict(executor.ran)
        return SoundLibrary(settings.media.sounds_dir)

    async def ready(self) -> tuple[bool, dict[str, object]]:
        checks: dict[str, object] = {}
        if self.pool is None:
            return False, {"database": "not started"}
        try:
            await self.pool.fetchval("SELECT 1")
            checks["database"] = "ok"
            current = await migrations_current(self.pool, self.database_url)
        except Exception as exc:  # whatever the check hit, the service is not ready: 503
            # A pool connection the server dropped can fail with a client-side error
            # (InterfaceError, InternalClientError), not only a PostgreSQL or OS one.
            return False, {"database": f"unreachable: {exc!r}"}
        checks["migrations"] = "current" if current else "pending"
        return current, checks

    async def stop(self) -> None:
        """Each part closed in order, each within its bound (``rwi.stop_steps``): a part
        stuck on a far end or a stalled database never keeps the rest from closing."""
        if self.loop_lag is not None:
            await self.loop_lag.stop()
        if self.service is not None and self.legs is not None:
            # before SIP and media close: their last reports (a recording's file closed)
            # are ingested and logged by this process, not left to the next start
            await run_step("service shutdown", self.service.shutdown(), STEP_SECS + 5)
        if self.ingest is not None:
            await run_step("sip ingest", self.ingest.close(), STEP_SECS)
        if self.executor is not None:
            await run_step("effect executor", self.executor.close(), STEP_SECS)
        if self.legs is not None:
            # every live leg is hung up one by one first: allow for a few hundred
            await run_step("sip and media", self.legs.close(), 2.5 * STEP_SECS)
        if self.service is not None:
            await run_step("in-flight commands", self.service.stop(), STEP_SECS)
        if self.projections is not None:
            await run_step("projections", self.projections.stop(), STEP_SECS)
        if self.writer is not None:
            # what is still queued was never acknowledged; committing it is still worth
            # a longer wait than the other parts get
            await run_step("event store writer", self.writer.close(), 2 * STEP_SECS)
        pool = self.pool
        if pool is not None and not await run_step("database pool", pool.close(), STEP_SECS):
            pool.terminate()
        if self.embedded is not None:
            self.embedded.stop()
