"""A stop step that never ends is cancelled at its bound and names where it waited; a
failing step is logged and the stop goes on (``rwi.stop_steps``)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from rwi.stop_steps import run_step


async def test_a_stuck_step_is_cancelled_at_its_bound_and_logs_where_it_waited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stuck = asyncio.Event()
    cancelled = asyncio.Event()

    async def far_end_never_answers() -> None:
        try:
            await stuck.wait()
        finally:
            cancelled.set()

    async def close_part() -> None:
        await asyncio.create_task(far_end_never_answers(), name="part-worker")

    with caplog.at_level(logging.ERROR, logger="rwi.stop_steps"):
        ended = await run_step("the part", close_part(), 0.2)
    assert ended is False
    assert cancelled.is_set()  # the awaited worker task was cancelled with it
    [record] = [r for r in caplog.records if "did not end" in r.getMessage()]
    text = record.getMessage()
    assert "the part" in text
    assert "part-worker" in text and "far_end_never_answers" in text


async def test_a_failing_step_is_logged_and_counts_as_ended(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken() -> None:
        raise RuntimeError("socket already gone")

    with caplog.at_level(logging.ERROR, logger="rwi.stop_steps"):
        assert await run_step("broken part", broken(), 1.0) is True
    assert any("broken part failed" in r.getMessage() for r in caplog.records)


async def test_a_step_that_ends_in_time_returns_true_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []

    async def quick() -> None:
        await asyncio.sleep(0)
        done.append("closed")

    with caplog.at_level(logging.WARNING, logger="rwi.stop_steps"):
        assert await run_step("quick part", quick(), 1.0) is True
    assert done == ["closed"]
    assert caplog.records == []


async def test_cancelling_the_stop_cancels_the_step() -> None:
    step_cancelled = asyncio.Event()
    entered = asyncio.Event()

    async def waits() -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            step_cancelled.set()

    outer = asyncio.create_task(run_step("part", waits(), 60))
    await entered.wait()
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert step_cancelled.is_set()
