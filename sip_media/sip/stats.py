"""Counters and SIP trace logging for the SIP stack.

Where it sits: beside every layer. Transports, transactions and the engine bump named
counters here and count messages by method and status (received ones once parsed,
sent ones from their start line); :meth:`Stats.snapshot`, ``requests`` and
``responses`` are what a metrics exporter reads.
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
    "stray_answers_ended",
    "send_errors",
    "errors",
)

#: methods counted by name; any other is counted as ``OTHER`` (a peer choosing method
#: names must not grow the counters without bound)
KNOWN_METHODS = frozenset(
    [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    ]
)


def _method(name: str) -> str:
    return name if name in KNOWN_METHODS else "OTHER"


class Stats:
    """Named monotonically increasing counters, SIP messages by method and status, plus
    the optional trace switch."""

    __slots__ = ("counters", "requests", "responses", "trace")

    def __init__(self, trace: bool = False) -> None:
        self.counters: Counter[str] = Counter({name: 0 for name in COUNTER_NAMES})
        #: (direction "in"/"out", method) -> requests on the wire (retransmissions too)
        self.requests: Counter[tuple[str, str]] = Counter()
        #: (direction, method of the CSeq, status) -> responses on the wire
        self.responses: Counter[tuple[str, str, int]] = Counter()
        self.trace = trace

    def bump(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount

    def request(self, direction: str, method: str) -> None:
        self.requests[(direction, _method(method))] += 1

    def response(self, direction: str, method: str, status: int) -> None:
        if 100 <= status <= 699:
            self.responses[(direction, _method(method), status)] += 1

    def sent(self, data: bytes) -> None:
        """Count one outgoing message from its start line and CSeq (no full parse)."""
        line, _, rest = data.partition(b"\r\n")
        parts = line.split(b" ", 2)
        if len(parts) < 2:
            return
        if parts[0].startswith(b"SIP/"):
            if parts[1].isdigit():
                self.response("out", _cseq_method(rest), int(parts[1]))
        else:
            self.request("out", parts[0].decode("ascii", "replace"))

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


def _cseq_method(headers: bytes) -> str:
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"cseq":
            return value.split()[-1].decode("ascii", "replace") if value.split() else ""
        if not line:
            break
    return ""
