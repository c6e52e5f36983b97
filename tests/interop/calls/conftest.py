"""Fixtures for the call-leg layer against real peers (the rig itself is in ``rig.py``).

SIPp scenarios for these tests are templates in ``scenarios/`` (see
``tests.support.sipp_templates``); a missing ``sipp`` fails the tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.interop.calls.rig import Rig, close_rig, make_rig

pytestmark = pytest.mark.interop


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = await make_rig(tmp_path)
    try:
        yield r
    finally:
        await close_rig(r)


@pytest.fixture
async def rig_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    made: list[Rig] = []

    async def make(**media: Any) -> Rig:
        r = await make_rig(tmp_path, **media)
        made.append(r)
        return r

    yield make
    for r in made:
        await close_rig(r)
