"""RFC 3261 timer values and the injectable scheduler the transaction layer runs on.

Where it sits: below ``transaction`` and ``agent``. Transactions never touch the event
loop's clock directly; they ask a :class:`Scheduler` to call them back. Production uses
:class:`LoopScheduler` (``loop.call_later``); unit tests use :class:`ManualScheduler`
and advance time explicitly, so Timer A..K run deterministically without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1/T2/T4 (RFC 3261 §17.1.1.1, table 4) and derived timers."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timer_b(self) -> float:
        return 64 * self.t1

    @property
    def timer_d(self) -> float:
        return max(32.0, 64 * self.t1)

    @property
    def timer_f(self) -> float:
        return 64 * self.t1

    @property
    def timer_h(self) -> float:
        return 64 * self.t1

    @property
    def timer_i(self) -> float:
        return self.t4

    @property
    def timer_j(self) -> float:
        return 64 * self.t1

    @property
    def timer_k(self) -> float:
        return self.t4

    @property
    def timer_l(self) -> float:
        """RFC 6026: server INVITE 'Accepted' state lifetime."""
        return 64 * self.t1

    @property
    def timer_m(self) -> float:
        """RFC 6026: client INVITE 'Accepted' state lifetime."""
        return 64 * self.t1


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """What transactions need from a clock: now and call-me-later."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...


class LoopScheduler:
    """The real scheduler: the running asyncio loop's monotonic clock."""

    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()

    def now(self) -> float:
        return self._loop.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self._loop.call_later(delay, callback)


class _ManualHandle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """A virtual clock for tests: nothing fires until :meth:`advance` is called."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._seq = itertools.count()
        self._heap: list[tuple[float, int, _ManualHandle, Callable[[], None]]] = []

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        handle = _ManualHandle()
        heapq.heappush(self._heap, (self._now + delay, next(self._seq), handle, callback))
        return handle

    def advance(self, seconds: float) -> None:
        """Move the clock forward, firing every due callback in time order."""
        target = self._now + seconds
        while self._heap and self._heap[0][0] <= target + 1e-9:
            when, _, handle, callback = heapq.heappop(self._heap)
            self._now = max(self._now, when)
            if not handle.cancelled:
                callback()
        self._now = target

    def pending(self) -> int:
        return sum(1 for entry in self._heap if not entry[2].cancelled)
