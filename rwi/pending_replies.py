"""Replies that wait for a request effect's result (``Decision.awaits``).

Where this sits: the service hands a durable command's reply here instead of sending
it when its decision asked to wait (``sip.options_ping`` waits for the far end's answer).
The request effect runs; its result comes back as an observation and is logged like any
other; once it is durable the service shows it here, and the first waiting reply it
matches goes out with the result's fields. A reply nobody answers goes out after its
timeout with the timeout data (``status: 408`` for a SIP request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rwi.domain.model import AwaitResult, Observation

Complete = Callable[[dict[str, Any]], None]


@dataclass(eq=False)
class _Waiting:
    awaits: AwaitResult
    data: dict[str, Any]
    complete: Complete
    timer: asyncio.TimerHandle | None = None


class PendingReplies:
    def __init__(self) -> None:
        self._by_type: dict[str, list[_Waiting]] = {}

    def __len__(self) -> int:
        return sum(len(waiting) for waiting in self._by_type.values())

    def expect(self, awaits: AwaitResult, data: dict[str, Any] | None, complete: Complete) -> None:
        """Call ``complete`` with the reply's data once the awaited result is observed,
        or with ``awaits.timeout_data`` after ``awaits.timeout_secs``."""
        waiting = _Waiting(awaits, dict(data or {}), complete)
        self._by_type.setdefault(awaits.observation, []).append(waiting)
        waiting.timer = asyncio.get_running_loop().call_later(
            awaits.timeout_secs, self._timed_out, waiting
        )

    def observed(self, observation: Observation) -> None:
        """A durable observation: completes the first reply waiting for it."""
        waiting_list = self._by_type.get(observation.type)
        if not waiting_list:
            return
        for waiting in waiting_list:
            if all(observation.data.get(k) == v for k, v in waiting.awaits.match):
                result = {f: observation.data.get(f) for f in waiting.awaits.fields}
                self._done(waiting, {**waiting.data, **result})
                return

    def close(self) -> None:
        """The service stops: every waiting reply goes out as timed out."""
        for waiting_list in list(self._by_type.values()):
            for waiting in list(waiting_list):
                self._timed_out(waiting)

    def _timed_out(self, waiting: _Waiting) -> None:
        self._done(waiting, {**waiting.data, **waiting.awaits.timeout_data})

    def _done(self, waiting: _Waiting, data: dict[str, Any]) -> None:
        waiting_list = self._by_type.get(waiting.awaits.observation, [])
        if waiting not in waiting_list:
            return
        waiting_list.remove(waiting)
        if not waiting_list:
            self._by_type.pop(waiting.awaits.observation, None)
        if waiting.timer is not None:
            waiting.timer.cancel()
        waiting.complete(data)
