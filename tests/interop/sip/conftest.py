"""Fixtures for the SIP engine against real SIPp / baresip processes (helpers: ``harness.py``
and ``tests.support``). Every peer process runs loopback-only under a hard timeout and
is killed at teardown; observations are awaited with timeouts, nothing sleeps and hopes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sip_media.adapter import SipAdapter
from tests.interop.sip.harness import engine_config
from tests.support.observer import Observer
from tests.support.sipp import Sipps

SCENARIOS = Path(__file__).parent / "scenarios"

pytestmark = pytest.mark.interop


@pytest.fixture
async def peers(tmp_path: Path) -> AsyncIterator[Sipps]:
    p = Sipps(tmp_path, SCENARIOS)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def adapter() -> AsyncIterator[SipAdapter]:
    a = SipAdapter(engine_config(), no_media=True)
    await a.start()
    try:
        yield a
    finally:
        await a.stop()


@pytest.fixture
def observer(adapter: SipAdapter) -> Observer:
    return Observer(adapter)
