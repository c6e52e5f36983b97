"""Bounded shutdown steps: ``rwi.runtime.Runtime.stop`` runs each part's close through
``run_step`` so a stop always ends.

A part that waits on something outside the process (a far end that never answers, a
database that stalls) must not hold ``rwi serve`` past SIGTERM, nor keep the steps
after it (the writer's final commit) from running. A step that overruns its bound is
cancelled and logged with the chain of awaits it was stuck in, which names the cause;
a step that was merely slow is logged as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: a step slower than this is worth a warning even when it ends within its bound
SLOW_SECS = 2.0
#: an overrun logs where the process's tasks wait (an awaited task cannot be followed
#: from its awaiter on 3.11, so all of them), this many at most
MAX_TASKS_LOGGED = 50


async def run_step(name: str, work: Awaitable[None], limit: float) -> bool:
    """Await ``work`` for up to ``limit`` seconds; cancel it past that. True if it ended."""
    started = time.monotonic()
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=limit)
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)  # its own clean-up runs before ours
        raise
    if not done:
        log.error(
            "stop: %s did not end within %.0f s and is cancelled; the tasks waiting:\n%s",
            name,
            limit,
            "\n".join(
                f"  {t.get_name()}: " + " <- ".join(awaiting(t))
                for t in list(asyncio.all_tasks())[:MAX_TASKS_LOGGED]
                if not t.done()
            ),
        )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return False
    took = time.monotonic() - started
    if took > SLOW_SECS:
        log.warning("stop: %s took %.1f s", name, took)
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("stop: %s failed: %r", name, exc, exc_info=exc)
    return True


def awaiting(task: asyncio.Future[Any]) -> list[str]:
    """Where a pending task is suspended: each frame of its await chain, innermost
    last (``Task.get_stack`` shows only the outermost frame)."""
    frames: list[str] = []
    seen: set[int] = set()
    obj: Any = task
    while obj is not None and id(obj) not in seen:
        seen.add(id(obj))
        if isinstance(obj, asyncio.Task):
            obj = obj.get_coro()
            continue
        frame = next(
            (f for a in ("cr_frame", "gi_frame", "ag_frame") if (f := getattr(obj, a, None))),
            None,
        )
        if frame is not None:
            code = frame.f_code
            where = "/".join(Path(code.co_filename).parts[-2:])
            frames.append(f"{where}:{frame.f_lineno} {code.co_name}")
        obj = next(
            (w for a in ("cr_await", "gi_yieldfrom", "ag_await") if (w := getattr(obj, a, None))),
            None,
        )
    return frames
