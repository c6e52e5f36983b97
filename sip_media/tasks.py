"""Stopping the stack's own background tasks (the call-leg pump, the media clock).

Used by the ``close()`` of the layers that own such a task. Awaiting a cancelled task
under ``suppress(CancelledError)`` would also swallow a cancellation of ``close()``
itself (a shutdown step bounded by its caller), so the caller could not tell a clean
stop from one it had to abandon.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended; its own failure is raised, its
    cancellation is not, and a cancellation of the caller reaches the caller."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.result()
