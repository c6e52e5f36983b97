"""``workers = N``: engines in worker processes, same effects and observations."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from sip_media.media import api
from sip_media.media.errors import InvalidEffectError, UnknownIdError, UnknownMediaLegError
from sip_media.media.service import start_media

pytestmark = pytest.mark.interop


async def test_worker_processes_bridge_dtmf_and_errors(
    media_config: Any, peers: Any, audio: Any, eventually: Any
) -> None:
    config = dataclasses.replace(media_config, workers=2)
    service = await start_media(config)
    try:
        p1 = peers(pt=0, freq=440.0)
        p2 = peers(pt=8, freq=1000.0)
        a = await service.execute(api.CreateLeg("a", "127.0.0.1", p1.port, 0, group="call-1"))
        b = await service.execute(api.CreateLeg("b", "127.0.0.1", p2.port, 8, group="call-1"))
        p1.start(("127.0.0.1", a.local_port))
        p2.start(("127.0.0.1", b.local_port))
        await service.execute(api.Connect("a", "b"))
        play = await service.execute(
            api.StartPlayback(
                "a", api.ToneSource("tone", frequency=1500.0, seconds=5.0), interrupt_on_dtmf=True
            )
        )
        await eventually(lambda: p1.audio().size >= 8 * 400 and p2.audio().size >= 8 * 400)
        p1.send_digit("3", 100)
        async with asyncio.timeout(5):
            digit = await service.observations.wait_for(lambda o: isinstance(o, api.DtmfReceived))
            stopped = await service.observations.wait_for(
                lambda o: isinstance(o, api.PlaybackFinished)
            )
        assert (digit.leg_id, digit.digit, digit.duration_ms) == ("a", "3", 100)
        assert stopped == api.PlaybackFinished(play.playback_id, "a", True, "3")
        await asyncio.sleep(0.6)  # a window of audio after the prompt stopped
        assert audio.heard(p1.audio()[-3200:], (440.0, 1000.0, 1500.0)) == {1000.0}
        assert audio.heard(p2.audio()[-3200:], (440.0, 1000.0, 1500.0)) == {440.0}
        # the workers report their counters (once a second): summed over both
        await eventually(lambda: service.stats().rtp_packets_in > 0, 5)
        stats = service.stats()
        assert stats.legs == 2 and stats.ticks > 0 and stats.rtp_packets_out > 0
        assert sum(stats.tick_buckets) == stats.ticks
        with pytest.raises(UnknownMediaLegError):
            await service.execute(api.HoldLeg("nobody"))
        with pytest.raises(UnknownIdError):
            await service.execute(api.StopPlayback(play.playback_id))
        # find a leg that lands on the other worker: cross-worker mixing is refused
        for i in range(20):
            await service.execute(api.CreateLeg(f"x{i}", group=f"g{i}"))
        with pytest.raises(InvalidEffectError):
            for i in range(20):
                await service.execute(api.Connect("a", f"x{i}"))
    finally:
        await service.close()


async def test_worker_recording_is_finalised_on_close(
    media_config: Any, peers: Any, audio: Any
) -> None:
    config = dataclasses.replace(media_config, workers=1)
    service = await start_media(config)
    closed = False
    try:
        peer = peers(pt=0, freq=440.0)
        leg = await service.execute(api.CreateLeg("a", "127.0.0.1", peer.port, 0))
        peer.start(("127.0.0.1", leg.local_port))
        rec = await service.execute(api.Record(("a",), "worker/a.wav", "separate"))
        await asyncio.sleep(0.5)  # half a second of audio to record
        await service.close()  # hangup of the whole engine finalises the file
        closed = True
        done = next(o for o in service.observations.history if isinstance(o, api.RecordingFinished))
        assert done.recording_id == rec.recording_id and done.duration_secs > 0.3
        assert done.reason == "closed"  # carried across the worker's pipe
        assert audio.heard(audio.read_wav(Path(done.path))[:, 0], (440.0,)) == {440.0}
    finally:
        if not closed:
            await service.close()
