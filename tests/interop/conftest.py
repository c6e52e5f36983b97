"""These tests run on the event loop ``rwi serve`` ships with (``tests.support.event_loop``)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from pytest_asyncio.plugin import LoopFactory

from tests.support.event_loop import SHIPPED


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    return SHIPPED
