"""The event loop the suites that exercise the shipped service run on: uvloop.

``rwi serve`` runs on uvloop (``rwi.cli._fast_loop``), so the interop and e2e suites do
too: their conftests answer pytest-asyncio's ``pytest_asyncio_loop_factories`` hook
with ``SHIPPED``, which makes every test and async fixture there run on a uvloop loop.
"""

from __future__ import annotations

from collections.abc import Mapping

import uvloop
from pytest_asyncio.plugin import LoopFactory

SHIPPED: Mapping[str, LoopFactory] = {"uvloop": uvloop.new_event_loop}
