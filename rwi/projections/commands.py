"""The ``rwi_commands`` projection: one row per ``rwi.command`` event, set-based in SQL.

Every frame a connection sent, with its outcome: who (connection, token), what (action,
action_id, params, the call it names), the reply (response, error code), when it was
received (``meta.ts``, the decision time) and how long until it was durable
(``latency_ms`` = ``recorded_at`` - ``received_at``, a generated column). Rows depend on
one event each, so a rebuild and the live runner run the same ``INSERT ... SELECT``
over different ``seq`` ranges.
"""

from __future__ import annotations

import asyncpg

from rwi.projections.engine import Connect
from rwi.projections.tables import COLUMNS

_INSERT = f"""
INSERT INTO rwi_commands ({", ".join(COLUMNS["rwi_commands"])})
SELECT seq,
       data->>'connection_id',
       data->>'token',
       data->>'action',
       data->>'action_id',
       left(coalesce(data#>>'{{params,call_id}}', data#>>'{{params,leg_a}}',
                     data#>>'{{params,supervisor_call_id}}',
                     data#>>'{{params,consultation_call_id}}'), 200),
       data->'params',
       data#>>'{{outcome,response}}',
       data#>>'{{outcome,error,code}}',
       data->>'idempotency_key',
       coalesce(data->'replayed' = 'true'::jsonb, false),
       rwi_ts(meta->>'ts'),
       recorded_at
  FROM events
 WHERE type = 'rwi.command' AND seq > $1 AND seq <= $2
"""


class CommandsProjection:
    name = "rwi_commands"
    tables = ("rwi_commands",)

    async def rebuild(
        self, conn: asyncpg.Connection, head: int, connect: Connect | None = None
    ) -> int:
        status: str = await conn.execute(_INSERT, 0, head)
        return int(status.rsplit(" ", 1)[-1])

    async def advance(self, conn: asyncpg.Connection, after: int, upto: int) -> None:
        await conn.execute(_INSERT, after, upto)
