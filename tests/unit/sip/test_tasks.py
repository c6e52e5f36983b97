"""Stopping a background task (``sip_media.tasks.cancel_and_wait``): the task ends, its
own failure is raised, and a cancellation of the closer is not swallowed."""

from __future__ import annotations

import asyncio

import pytest

from sip_media.tasks import cancel_and_wait


async def _forever(cleaned: list[str]) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        cleaned.append("done")


async def test_the_task_is_cancelled_and_its_clean_up_has_run() -> None:
    cleaned: list[str] = []
    task = asyncio.create_task(_forever(cleaned))
    await asyncio.sleep(0)  # let it start, so its finally is reached
    await cancel_and_wait(task)
    assert task.cancelled() and cleaned == ["done"]


async def test_a_task_that_had_failed_raises_its_error() -> None:
    async def broken() -> None:
        raise RuntimeError("pump broke")

    task = asyncio.create_task(broken())
    await asyncio.wait({task})
    with pytest.raises(RuntimeError, match="pump broke"):
        await cancel_and_wait(task)


async def test_a_cancellation_of_the_closer_reaches_the_closer() -> None:
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await release.wait()  # its clean-up takes a while

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    closer = asyncio.create_task(cancel_and_wait(task))
    await asyncio.sleep(0)
    closer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closer  # a suppressed await would have returned normally here
    release.set()
    await asyncio.wait({task})
    assert task.cancelled()
