"""Fixtures for media interop tests: the engine, SIPp peers and the test's own RTP peers.

SIPp is driven without our SIP stack: the test is a UAC by hand
(``tests.support.hand_uac``) in front of a SIPp UAS scenario from this directory.
Every port comes from ``tests.support.ports``; a missing ``sipp`` fails the tests (it
never skips them).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sip_media.media import api, g711
from sip_media.media.config import MediaConfig
from sip_media.media.service import InProcessMedia
from tests.support import audio as tones
from tests.support.hand_uac import HandUac
from tests.support.observer import wait_until
from tests.support.ports import port_range
from tests.support.rtp import RtpPeer
from tests.support.sipp import Sipp
from tests.support.wav import read_wav

HERE = Path(__file__).parent


@pytest.fixture
def media_config(tmp_path: Path) -> MediaConfig:
    port_min, port_max = port_range(99)  # 49 RTP/RTCP pairs (test_typed_errors counts them)
    return MediaConfig(
        sounds_dir=tmp_path / "sounds",
        recordings_dir=tmp_path / "recordings",
        port_min=port_min,
        port_max=port_max,
        rtp_timeout_s=30.0,
    )


@pytest.fixture
async def media(media_config: MediaConfig) -> AsyncIterator[InProcessMedia]:
    service = InProcessMedia(media_config)
    await service.start()
    yield service
    await service.close()


@pytest.fixture
async def peers() -> AsyncIterator[Callable[..., RtpPeer]]:
    made: list[RtpPeer] = []

    def make(**kw: Any) -> RtpPeer:
        peer = RtpPeer(**kw)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()


@pytest.fixture
async def sipp(tmp_path: Path) -> AsyncIterator[Callable[..., HandUac]]:
    """``sipp(scenario, pt, media_action)``: a SIPp UAS and the test's hand-made UAC."""
    made: list[HandUac] = []

    def make(scenario: str, pt: int, media_action: str = "") -> HandUac:
        uas = Sipp(
            tmp_path, HERE / scenario, pt=pt, codec=g711.CODEC_NAMES[pt], media_action=media_action
        )
        made.append(HandUac(uas, pt))
        return made[-1]

    yield make
    for s in made:
        await s.close()


@pytest.fixture
def audio() -> Iterator[SimpleNamespace]:
    yield SimpleNamespace(
        tone_pcm=tones.tone,
        levels=tones.levels,
        read_wav=read_wav,
        heard=tones.heard,
        RATE=tones.RATE,
    )


async def wait_obs(
    service: Any, predicate: Callable[[api.Observation], bool], timeout: float = 5.0
) -> api.Observation:
    async with asyncio.timeout(timeout):
        result: api.Observation = await service.observations.wait_for(predicate)
        return result


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_obs


@pytest.fixture
def eventually() -> Callable[..., Any]:
    """Wait (bounded) for a condition on engine counters or received packets: they have
    no change notification, so this polls; observations are awaited with ``wait``."""

    async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        await wait_until(predicate, "condition", timeout)

    return until
