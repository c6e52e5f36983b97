"""The ``agent_states`` projection: one row per interval an agent spent in one state.

Folded from ``agent.state_changed`` (the agents feature, ``rwi.domain.agents``), set-based
in SQL: each event opens an interval (state, reason, the queue and queued call of an
offer or a call) that the agent's next event ends. A rebuild and the live runner run the
same statement over different ``seq`` ranges: it first ends the interval each agent has
open at the range's start with that agent's first event in the range, then inserts the
range's intervals, each ended by the agent's next event in the range (``lead``).
"""

from __future__ import annotations

import asyncpg

from rwi.projections.engine import Connect
from rwi.projections.tables import COLUMNS

_FOLD = f"""
WITH ev AS (
  SELECT seq,
         data->>'agent_id' AS agent_id,
         data->>'state' AS state,
         data->>'reason' AS reason,
         data->>'queue_id' AS queue_id,
         data->>'call_id' AS call_id,
         rwi_ts(meta->>'ts') AS at
    FROM events
   WHERE type = 'agent.state_changed' AND seq > $1 AND seq <= $2
), ended AS (
  UPDATE agent_states a
     SET ended_at = f.at, ended_seq = f.seq
    FROM (SELECT DISTINCT ON (agent_id) agent_id, seq, at FROM ev ORDER BY agent_id, seq) f
   WHERE a.agent_id = f.agent_id AND a.ended_seq IS NULL
)
INSERT INTO agent_states ({", ".join(COLUMNS["agent_states"])})
SELECT agent_id, state, reason, queue_id, call_id, at,
       lead(at) OVER w, seq, lead(seq) OVER w
  FROM ev
 WHERE agent_id IS NOT NULL AND state IS NOT NULL
WINDOW w AS (PARTITION BY agent_id ORDER BY seq)
"""


class AgentStatesProjection:
    name = "agent_states"
    tables = ("agent_states",)

    async def rebuild(
        self, conn: asyncpg.Connection, head: int, connect: Connect | None = None
    ) -> int:
        status: str = await conn.execute(_FOLD, 0, head)
        return int(status.rsplit(" ", 1)[-1])

    async def advance(self, conn: asyncpg.Connection, after: int, upto: int) -> None:
        await conn.execute(_FOLD, after, upto)
