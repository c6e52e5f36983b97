"""The call-leg layer on loopback for the calls interop tests: ``CallLegs`` and its far ends.

A ``Rig`` is one started ``CallLegs`` (SIP on a reserved UDP port, media in process on
a reserved port range, outbound allow-list 127.0.0.0/8 for both) with an ``Observer``
of what it reports, and factories for the test's SIPps (call templates from
``tests.support.sipp_templates``) and RTP peers, all closed at teardown. Where a test
must see exactly what a far end receives (hold music, a prompt cut by a digit), SIPp
still does the signalling but its SDP names the test's own RTP socket
(``dial_far_socket``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sip_media.call_types import LegAnswered
from sip_media.calls import CallLegs
from sip_media.media.config import MediaConfig
from sip_media.sip.engine import EngineConfig
from sip_media.sip.timers import TimerConfig
from tests.support.audio import heard
from tests.support.observer import Observer
from tests.support.ports import free_port, port_range
from tests.support.rtp import RtpPeer
from tests.support.sipp import Sipp
from tests.support.sipp_templates import call_sipp


@dataclass
class Rig:
    """One started CallLegs with its observer, SIPp factory and RTP peers."""

    legs: CallLegs
    obs: Observer
    tmp: Path
    sipps: list[Sipp] = field(default_factory=list)
    rtp: list[RtpPeer] = field(default_factory=list)

    @property
    def sip_target(self) -> str:
        host, port = self.legs.sip.local_address()
        return f"{host}:{port}"

    def sipp(self, scenario: str, **subs: object) -> Sipp:
        peer = call_sipp(self.tmp, scenario, **subs)
        self.sipps.append(peer)
        return peer

    def peer(self, freq: float | None = None) -> RtpPeer:
        p = RtpPeer(freq)
        self.rtp.append(p)
        return p

    def media_legs(self) -> set[str]:
        engine = getattr(self.legs.media, "engine", None)
        return set(engine.legs) if engine is not None else set()


async def dial_far_socket(rig: Rig, leg_id: str, freq: float | None) -> tuple[RtpPeer, Sipp]:
    """Dial a SIPp UAS whose SDP names our own RTP socket; start that socket's stream."""
    far = rig.peer(freq)
    phone = rig.sipp("uas_call", sdp_port=far.port, pt=0, codec="PCMU")
    await phone.start()
    await rig.legs.dial(leg_id, phone.uri)
    await rig.obs.wait(LegAnswered, leg_id)
    local = rig.legs.info(leg_id).local_rtp
    assert local is not None
    far.start(local)
    return far, phone


async def until_heard(
    peer: RtpPeer,
    expected: set[float],
    tones: tuple[float, ...],
    within: float = 5.0,
    span: float = 0.5,
) -> None:
    """Until the last ``span`` s ``peer`` received hold exactly the ``expected`` tones:
    a change of mixing takes effect on a later tick than the call that asked for it, and
    a loaded machine delays that tick, so the test waits for the audio itself to show it
    (a span straddling the change holds the old sound too and does not count)."""
    deadline = time.monotonic() + within
    got: set[float] = set()
    await asyncio.sleep(span)  # the whole span after the change was asked for
    while time.monotonic() < deadline:
        now = time.monotonic()
        got = heard(peer.audio(now - span, now), tones)
        if got == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"heard {sorted(got)}, not {sorted(expected)}, within {within} s")


async def window(seconds: float) -> tuple[float, float]:
    """Let ``seconds`` of audio flow; the monotonic instants it began and ended."""
    start = time.monotonic()
    await asyncio.sleep(seconds)
    return start, time.monotonic()


def engine_config() -> EngineConfig:
    return EngineConfig(
        udp=[("127.0.0.1", free_port())],
        allowed_destinations=("127.0.0.0/8",),
        timers=TimerConfig(t1=0.1, t2=0.4, t4=0.5),
    )


def media_config(tmp: Path, **media: Any) -> MediaConfig:
    port_min, port_max = port_range(99)
    return MediaConfig(
        sounds_dir=tmp / "sounds",
        recordings_dir=tmp / "recordings",
        port_min=port_min,
        port_max=port_max,
        allowed_destinations=("127.0.0.0/8",),
        **media,
    )


async def make_rig(tmp: Path, **media: Any) -> Rig:
    legs = await CallLegs.start(engine_config(), media_config(tmp, **media))
    return Rig(legs, Observer(legs), tmp)


async def close_rig(rig: Rig) -> None:
    for s in rig.sipps:
        await s.close()
    for p in rig.rtp:
        p.close()
    await rig.legs.close()
