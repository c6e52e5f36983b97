"""Leg-keyed pass-throughs on live SIP legs: conferences, supervision, DTMF out, and the
whole layer over media worker processes (placement by ``group``)."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from sip_media.call_types import (
    LegAnswered,
    LegEnded,
    MediaFailure,
    RecordingDone,
    UnknownLegError,
)
from tests.interop.calls.rig import Rig, dial_far_socket, until_heard
from tests.support.audio import g711_file, heard
from tests.support.observer import wait_until
from tests.support.wav import read_wav

pytestmark = pytest.mark.interop

TONES = (440.0, 1000.0, 1500.0)


async def test_conference_mute_and_supervision_whisper(rig: Rig) -> None:
    p1, s1 = await dial_far_socket(rig, "p1", 440.0)
    p2, s2 = await dial_far_socket(rig, "p2", 1000.0)
    p3, s3 = await dial_far_socket(rig, "p3", 1500.0)
    for leg in ("p1", "p2", "p3"):
        await rig.legs.conference_add("room", leg)
    await until_heard(p1, {1000.0, 1500.0}, TONES)
    await until_heard(p2, {440.0, 1500.0}, TONES)
    await until_heard(p3, {440.0, 1000.0}, TONES)
    await rig.legs.conference_mute("room", "p3")
    await until_heard(p1, {1000.0}, TONES)
    await until_heard(p3, {440.0, 1000.0}, TONES)  # muted still hears
    for leg in ("p1", "p2", "p3"):
        await rig.legs.conference_remove("room", leg)

    await rig.legs.bridge("p1", "p2")
    await rig.legs.supervise("p3", "p1", "whisper")
    await until_heard(p1, {1000.0, 1500.0}, TONES)  # the agent hears the whisper
    await until_heard(p3, {440.0, 1000.0}, TONES)  # the supervisor hears both
    await until_heard(p2, {440.0}, TONES)  # the customer does not hear it
    await rig.legs.stop_supervise("p3")
    await until_heard(p3, set(), TONES)

    sent_from = time.monotonic()
    await rig.legs.send_dtmf("p1", "4#", duration_ms=100)

    def dtmf_events() -> list[bytes]:
        return [d for t, d in p1.received if t >= sent_from and d[1] & 0x7F == 101]

    def both_ended() -> bool:  # an end packet of each digit has arrived
        return {d[12] for d in dtmf_events() if d[13] & 0x80} == {4, 11}

    await wait_until(both_ended, "an end packet of each digit", limit=5)
    events = dtmf_events()
    assert {d[12] for d in events} == {4, 11}  # RFC 4733 codes of "4" and "#"
    assert {struct.unpack("!H", d[14:16])[0] for d in events if d[13] & 0x80} == {800}

    with pytest.raises(UnknownLegError):
        await rig.legs.bridge("p1", "nobody")
    with pytest.raises(MediaFailure) as info:
        await rig.legs.stop_supervise("p3")
    assert info.value.media_code == "unknown_id"
    for leg in ("p1", "p2", "p3"):
        await rig.legs.hangup(leg)
    for s in (s1, s2, s3):
        await s.finish()


async def test_call_legs_over_media_worker_processes(
    rig_factory: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await rig_factory(workers=2)
    ul = g711_file(rig.tmp / "tone1k.ul", 0, 1000.0)
    talker = rig.sipp(
        "uas_call",
        sdp_port="[rtpstream_audio_port]",
        pt=0,
        codec="PCMU",
        ack_action=f'<action><exec rtp_stream="{ul},-1,0"/></action>',
    )
    echo = rig.sipp("uas_call", sdp_port="[media_port]", pt=8, codec="PCMA")
    await talker.start()
    await echo.start("-rtp_echo")
    await rig.legs.dial("w-a", talker.uri, group="call-9")
    await rig.legs.dial("w-b", echo.uri, group="call-9")
    await rig.obs.wait(LegAnswered, "w-a")
    await rig.obs.wait(LegAnswered, "w-b")
    await rig.legs.bridge("w-a", "w-b")
    await asyncio.sleep(0.3)
    rec = await rig.legs.record("w-a", "worker.wav", mode="separate")
    await asyncio.sleep(1.0)
    await rig.legs.stop_record(rec.recording_id)
    await rig.obs.wait_for(  # finalised in the worker process
        lambda o: isinstance(o, RecordingDone) and o.recording_id == rec.recording_id
    )
    wav = read_wav(Path(rec.path))[800:]
    assert heard(wav[:, 0], TONES) == {1000.0}
    assert heard(wav[:, 1], TONES) == {1000.0}  # out to SIPp #2, echoed, back to A
    await rig.legs.hangup("w-a")
    await rig.legs.hangup("w-b")
    await rig.obs.wait(LegEnded, "w-b")
    await talker.finish()
    await echo.finish()
