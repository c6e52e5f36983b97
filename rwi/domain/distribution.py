"""Which agents a queue offers its best waiting entry to (contract §10), purely.

Called by the queues feature (``rwi.domain.queues``) whenever an entry or an agent
becomes free; it only chooses among the candidates it is given (available, member of
the queue, with the entry's skills), it decides nothing else.

- ``ring_all``: every candidate; the first to answer wins.
- ``longest_idle``: the one available the longest.
- ``round_robin``: the next one after the agent offered last, in the queue's member
  order (agents not configured as members come after, by id).
- ``fewest_calls``: the one that answered the fewest queue calls, the longest idle first
  among equals.

Agents that already missed this entry are chosen only when no other candidate is left,
so a no-answer passes the entry on to the next agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STRATEGIES = frozenset({"manual", "ring_all", "longest_idle", "round_robin", "fewest_calls"})


@dataclass(frozen=True)
class Candidate:
    agent_id: str
    idle_since: str
    calls: int


def choose(
    strategy: str,
    candidates: Sequence[Candidate],
    *,
    tried: Sequence[str] = (),
    members: Sequence[str] = (),
    last_agent: str | None = None,
) -> list[str]:
    """The agent ids to offer the entry to (empty: nobody, or ``manual``)."""
    if not candidates or strategy not in STRATEGIES or strategy == "manual":
        return []
    if strategy == "ring_all":
        return sorted(c.agent_id for c in candidates)
    fresh = [c for c in candidates if c.agent_id not in tried]
    pool = fresh or list(candidates)
    if strategy == "longest_idle":
        return [min(pool, key=lambda c: (c.idle_since, c.agent_id)).agent_id]
    if strategy == "fewest_calls":
        return [min(pool, key=lambda c: (c.calls, c.idle_since, c.agent_id)).agent_id]
    return [_next_in_turn([c.agent_id for c in pool], members, last_agent)]


def _next_in_turn(ids: list[str], members: Sequence[str], last_agent: str | None) -> str:
    order = [m for m in members if m in ids] + sorted(i for i in ids if i not in members)
    ring = list(members) + sorted(i for i in ids if i not in members)
    if last_agent is None or last_agent not in ring:
        return order[0]
    start = ring.index(last_agent)
    for step in range(1, len(ring) + 1):
        agent = ring[(start + step) % len(ring)]
        if agent in ids:
            return agent
    return order[0]
