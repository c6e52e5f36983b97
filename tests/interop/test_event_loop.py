"""The tests here run on uvloop, the loop ``rwi serve`` ships with, fixtures included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest


@pytest.fixture
async def fixture_loop() -> AsyncIterator[asyncio.AbstractEventLoop]:
    yield asyncio.get_running_loop()


async def test_tests_and_their_async_fixtures_run_on_uvloop(
    fixture_loop: asyncio.AbstractEventLoop,
) -> None:
    loop = asyncio.get_running_loop()
    assert type(loop).__module__.startswith("uvloop"), type(loop)
    assert fixture_loop is loop
