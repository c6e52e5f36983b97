"""Prometheus metrics of one running service, served at ``/metrics``.

Where it sits: beside the loop, never inside the pure domain. Counters and histograms
are counted where things happen: the service (commands and their latency from frame in
to reply out, calls ended by outcome, connections opened), the store's writer (append
latency, batch size, events appended) and the executor (effects run). Gauges are read
at scrape time from what already holds them: the live state (calls by state,
recordings, queue waiting, agents by state), the open connections, and the SIP and
media stacks' own stats objects (``sip_media`` knows nothing of Prometheus).

Each service has its own registry, so several services in one process (the tests)
never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from rwi.domain.call import CallStatus
from rwi.domain.model import State
from sip_media.media.stats import TICK_BUCKETS, MediaStats

#: seconds; commands are mostly a durable append (milliseconds), some wait for SIP
COMMAND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
APPEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 4000)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
AGENT_STATES = ("logged_out", "available", "ringing", "busy", "wrap_up", "paused")


class SipStats(Protocol):
    """``sip_media.sip.stats.Stats``."""

    requests: Any
    responses: Any

    def snapshot(self) -> dict[str, int]: ...


@dataclass
class Sources:
    """What the scrape-time collector reads; each is optional (no SIP, not started)."""

    state: Callable[[], State] | None = None
    connections: Callable[[], int] | None = None
    sip: Callable[[], SipStats] | None = None
    media: Callable[[], MediaStats] | None = None
    effects: Callable[[], dict[tuple[str, str], int]] | None = None


class Metrics:
    """The service's metrics; see the module docstring."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sources = Sources()
        r = self.registry
        self.commands = Counter(
            "rwi_commands",
            "RWI commands answered, by action and result (success or the error code)",
            ["action", "result"],
            registry=r,
        )
        self.command_seconds = Histogram(
            "rwi_command_seconds",
            "Time from a command's frame in to its reply out",
            ["action"],
            buckets=COMMAND_BUCKETS,
            registry=r,
        )
        self.calls_ended = Counter(
            "rwi_calls_ended",
            "Calls ended, by outcome (call.hangup reason)",
            ["outcome"],
            registry=r,
        )
        self.connections_opened = Counter(
            "rwi_websocket_connections_opened", "RWI WebSocket connections accepted", registry=r
        )
        self.events_appended = Counter(
            "rwi_events_appended", "Events made durable in the log (rate: events/s)", registry=r
        )
        self.append_seconds = Histogram(
            "rwi_event_append_seconds",
            "Time to write and commit one batch of the event log",
            buckets=APPEND_BUCKETS,
            registry=r,
        )
        self.append_batch = Histogram(
            "rwi_event_append_batch_events",
            "Events per committed batch of the event log",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "rwi_event_loop_lag_seconds",
            "How much later than due the event loop woke a probe (rwi.loop_lag): the delay "
            "every command, SIP message and report waiting at that moment suffered",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        r.register(_Collector(self.sources))

    # --- counted where things happen -------------------------------------------------

    def command(self, action: str, result: str, started: float) -> None:
        """One reply sent; ``started`` is the ``time.perf_counter()`` of its frame."""
        self.commands.labels(action, result).inc()
        self.command_seconds.labels(action).observe(time.perf_counter() - started)

    def appended(self, events: int, seconds: float) -> None:
        """One batch committed by the writer."""
        self.events_appended.inc(events)
        self.append_seconds.observe(seconds)
        self.append_batch.observe(events)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Collector(Collector):
    """The gauges and the SIP/media counters, read at scrape time."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: its families depend on what is attached

    def collect(self) -> Iterator[Metric]:
        s = self.sources
        if s.state is not None:
            yield from _state_metrics(s.state())
        if s.connections is not None:
            yield GaugeMetricFamily(
                "rwi_websocket_connections", "Open RWI WebSocket connections", s.connections()
            )
        if s.sip is not None:
            yield from _sip_metrics(s.sip())
        if s.media is not None:
            yield from _media_metrics(s.media())
        if s.effects is not None:
            effects = CounterMetricFamily(
                "rwi_effects", "Effects run on SIP and media, by effect and result",
                labels=["effect", "result"],
            )  # fmt: skip
            for (effect, result), count in sorted(s.effects().items()):
                effects.add_metric([effect, result], count)
            yield effects


def _state_metrics(state: State) -> Iterator[Metric]:
    calls = GaugeMetricFamily("rwi_calls_active", "Calls in progress, by state", labels=["state"])
    by_state = dict.fromkeys((str(s) for s in CallStatus), 0)
    for call in state.calls.values():
        by_state[str(call.state)] += 1
    for name, count in by_state.items():
        calls.add_metric([name], count)
    yield calls
    yield GaugeMetricFamily(
        "rwi_recordings_active", "Recordings running or paused", len(state.recordings)
    )
    waiting = GaugeMetricFamily(
        "rwi_queue_waiting", "Calls waiting in each queue", labels=["queue"]
    )
    for queue_id, queue in sorted(state.queues.items()):
        waiting.add_metric([queue_id], len(queue.entries))
    yield waiting
    agents = GaugeMetricFamily("rwi_agents", "Agents by state", labels=["state"])
    by_status = dict.fromkeys(AGENT_STATES, 0)
    for agent in state.agents.values():
        by_status[agent.status] = by_status.get(agent.status, 0) + 1
    for status, count in by_status.items():
        agents.add_metric([status], count)
    yield agents


def _sip_metrics(stats: SipStats) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "rwi_sip_requests", "SIP requests on the wire (retransmissions included)",
        labels=["direction", "method"],
    )  # fmt: skip
    for (direction, method), count in sorted(stats.requests.items()):
        requests.add_metric([direction, method], count)
    yield requests
    responses = CounterMetricFamily(
        "rwi_sip_responses", "SIP responses on the wire, by the CSeq method and status",
        labels=["direction", "method", "status"],
    )  # fmt: skip
    for (direction, method, status), count in sorted(stats.responses.items()):
        responses.add_metric([direction, method, str(status)], count)
    yield responses
    counters = stats.snapshot()
    yield CounterMetricFamily(
        "rwi_sip_retransmissions", "SIP retransmissions sent by our transactions",
        counters.get("retransmissions", 0),
    )  # fmt: skip
    stack = CounterMetricFamily("rwi_sip_stack", "The SIP stack's own counters", labels=["counter"])
    for name, count in sorted(counters.items()):
        stack.add_metric([name], count)
    yield stack


def _media_metrics(stats: MediaStats) -> Iterator[Metric]:
    packets = CounterMetricFamily("rwi_rtp_packets", "RTP packets", labels=["direction"])
    packets.add_metric(["in"], stats.rtp_packets_in)
    packets.add_metric(["out"], stats.rtp_packets_out)
    yield packets
    yield CounterMetricFamily(
        "rwi_rtp_packets_lost", "RTP packets the far ends sent that never arrived",
        stats.rtp_packets_lost,
    )  # fmt: skip
    yield GaugeMetricFamily(
        "rwi_rtp_jitter_ms", "Mean interarrival jitter of the legs receiving RTP", stats.jitter_ms
    )
    yield GaugeMetricFamily("rwi_media_legs", "Media legs open", stats.legs)
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*TICK_BUCKETS, float("inf")), stats.tick_buckets, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    yield HistogramMetricFamily(
        "rwi_media_tick_seconds", "Duration of one 20 ms media tick",
        buckets=buckets, sum_value=stats.tick_seconds,
    )  # fmt: skip
    yield CounterMetricFamily(
        "rwi_media_late_ticks", "Media ticks run late (catching up)", stats.late_ticks
    )
    yield CounterMetricFamily(
        "rwi_media_skipped_ticks", "Media ticks skipped (too far behind)", stats.skipped_ticks
    )
