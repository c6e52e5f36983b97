"""Fixtures for the SIP stack unit tests (the harness itself is in ``harness.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.sip_stack.harness import Harness


@pytest.fixture
def h() -> Iterator[Harness]:
    yield Harness()
