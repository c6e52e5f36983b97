"""Counters and SIP trace logging for the SIP stack.

Where it sits: beside every layer. Transports, transactions and the engine bump named
counters here; :meth:`Stats.snapshot` returns a plain dict ready for a metrics exporter.
SIP trace (full messages on the ``sip_media.sip.trace`` logger) is off by default.
"""

from __future__ import annotations

import logging
from collections import Counter

trace_log = logging.getLogger("sip_media.sip.trace")

COUNTER_NAMES = (
    "messages_in",
    "messages_out",
    "requests_in",
    "responses_in",
    "transactions_client",
    "transactions_server",
    "retransmissions",
    "retransmissions_absorbed",
    "malformed_requests",
    "malformed_responses",
    "dropped_by_allow_list",
    "rate_limited",
    "timeouts",
    "unmatched_responses",
    "send_errors",
    "errors",
)


class Stats:
    """Named monotonically increasing counters plus the optional trace switch."""

    __slots__ = ("counters", "trace")

    def __init__(self, trace: bool = False) -> None:
        self.counters: Counter[str] = Counter({name: 0 for name in COUNTER_NAMES})
        self.trace = trace

    def bump(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount

    def snapshot(self) -> dict[str, int]:
        return dict(self.counters)

    def trace_message(
        self, direction: str, transport: str, peer: tuple[str, int], data: bytes
    ) -> None:
        if self.trace:
            trace_log.info(
                "%s %s %s:%d\n%s",
                direction,
                transport,
                peer[0],
                peer[1],
                data.decode("utf-8", "replace"),
            )
