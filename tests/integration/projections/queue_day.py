"""A morning of one queue, decided by the real domain (``tests.unit.rwi.world``) and
appended to a real log: the queue and agent projections' fixture.

Agents a1 and a2 log in to ``support`` (longest_idle, wrap-up 5 s, retry 3 s). c1 waits
4 s and is answered by a1; c2 is offered to a2, who is busy, and hangs up after 13 s;
both agents pause, c3 times out after 5 s; c4 waits 10 s in ``other``, is requeued to
``support`` (keeping its wait) and is answered by a1 3 s later, 13 s after it began to
wait. Every event carries the decision time the domain gave it.
"""

from __future__ import annotations

from rwi.domain.model import AgentPolicy, Policy, QueuePolicy
from rwi.store import NewEvent
from tests.integration.projections.logbook import Logbook
from tests.unit.rwi.world import World, outbound_answered


def _offered(w: World, call_id: str, agent_id: str) -> str:
    return w.state.queues["support"].entries[call_id].offers[agent_id]


def queue_morning() -> World:
    support = QueuePolicy(
        "support", strategy="longest_idle", members=("a1", "a2"), wrap_up_secs=5, retry_secs=3
    )
    agents = (AgentPolicy("a1", "sip:a1@local"), AgentPolicy("a2", "sip:a2@local"))
    policy = Policy(queues=(support,), agents=agents)
    w = World(policy)
    w.open("app")
    w.do("app", "agent.login", agent_id="a1")  # t0
    w.later(1)
    w.do("app", "agent.login", agent_id="a2")  # t1
    w.later(1)
    outbound_answered(w, "app", "c1")
    w.do("app", "queue.enqueue", call_id="c1", queue_id="support")  # t2, offered a1
    w.later(4)
    a1_leg = _offered(w, "c1", "a1")
    w.see("sip.call.answered", call_id=a1_leg)  # t6: connected
    w.later(1)
    outbound_answered(w, "app", "c2")
    w.do("app", "queue.enqueue", call_id="c2", queue_id="support")  # t7, offered a2
    w.later(1)
    w.see("sip.call.failed", call_id=_offered(w, "c2", "a2"), sip_status=486)  # t8: busy
    w.later(3)
    w.do("app", "agent.pause", agent_id="a2", reason="coffee")  # t11 (resting till then)
    w.later(9)
    w.see("sip.call.ended", call_id="c2")  # t20: abandoned
    w.later(1)
    w.see("sip.call.ended", call_id=a1_leg)  # t21: a1 wraps up
    w.later(5)
    w.see("timer.fired", stream_id="agent:a1", agent_id="a1", kind="wrap_up", since=a1_leg)
    w.later(1)
    w.do("app", "agent.pause", agent_id="a1", reason="meeting")  # t27
    w.later(3)
    outbound_answered(w, "app", "c3")
    w.do("app", "queue.enqueue", call_id="c3", queue_id="support", max_wait_secs=5)  # t30
    w.later(5)
    w.see("timer.fired", stream_id="queue:support", queue_id="support", kind="max_wait",
          since="2:c3")  # t35: timeout  # fmt: skip
    w.later(5)
    outbound_answered(w, "app", "c4")
    w.do("app", "queue.enqueue", call_id="c4", queue_id="other")  # t40 (manual queue)
    w.later(10)
    w.do("app", "queue.requeue", call_id="c4", queue_id="support")  # t50
    w.later(2)
    w.do("app", "agent.unpause", agent_id="a1")  # t52, offered c4
    w.later(1)
    w.see("sip.call.answered", call_id=_offered(w, "c4", "a1"))  # t53: connected
    return w


async def append(log: Logbook, w: World) -> None:
    """The world's log, event by event, as the service appends it."""
    for event in w.log:
        log.seqs += await log.writer.append(
            event.stream_id, [NewEvent(event.type, event.data, dict(event.meta))]
        )
