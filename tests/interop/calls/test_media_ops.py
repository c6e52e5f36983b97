"""Media operations on live SIP legs: hold music, DTMF-interruptible prompts, RTP timeout.

SIPp does the signalling; where the test must hear exactly what a far end receives,
SIPp's SDP answer names the test's own RTP socket (the far RTP end of that leg).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from sip_media.call_types import LegAnswered, LegDtmf, LegEnded, PlaybackDone
from sip_media.media import g711
from sip_media.media.api import ToneSource
from tests.interop.calls.rig import Rig, dial_far_socket, until_heard, window
from tests.support.audio import g711_file, heard, rms
from tests.support.wav import read_wav

pytestmark = pytest.mark.interop

TONES = (440.0, 600.0, 1000.0, 1500.0)


async def test_hold_music_to_held_leg_silence_to_its_peer_unhold_restores(rig: Rig) -> None:
    ul = g711_file(rig.tmp / "tone1k.ul", 0, 1000.0)
    talker = rig.sipp(
        "uas_call",
        sdp_port="[rtpstream_audio_port]",
        pt=0,
        codec="PCMU",
        ack_action=f'<action><exec rtp_stream="{ul},-1,0"/></action>',
    )
    await talker.start()
    await rig.legs.dial("a", talker.uri)
    await rig.obs.wait(LegAnswered, "a")
    far, phone = await dial_far_socket(rig, "c", 440.0)
    await rig.legs.bridge("a", "c")
    await until_heard(far, {1000.0}, TONES)

    await rig.legs.hold("c")  # default hold music
    await asyncio.sleep(0.3)
    rec = await rig.legs.record("a", "hold_a.wav", mode="separate")
    held = await window(1.0)
    await rig.legs.stop_record(rec.recording_id)

    await rig.legs.hold("c", ToneSource("tone", frequency=1500.0, seconds=1.0))
    await until_heard(far, {1500.0}, TONES)

    await rig.legs.unhold("c")
    await asyncio.sleep(0.3)
    rec2 = await rig.legs.record("a", "unhold_a.wav", mode="separate")
    resumed = await window(0.6)
    await rig.legs.stop_record(rec2.recording_id)

    music = far.audio(*held)
    assert heard(music, TONES) == set() and rms(music) > 300  # music, not the peer
    spectrum = np.abs(np.fft.rfft(music.astype(float))) ** 2
    freqs = np.fft.rfftfreq(music.size, 1 / 8000)
    assert spectrum[freqs < 1100].sum() > 0.8 * spectrum.sum()  # the synthesised chords
    peer_heard = read_wav(Path(rec.path))[400:, 1]
    assert rms(peer_heard) < 30  # the held leg's peer hears silence
    assert heard(far.audio(*resumed), TONES) == {1000.0}
    assert heard(read_wav(Path(rec2.path))[400:, 1], TONES) == {440.0}
    await rig.legs.hangup("a")
    await rig.legs.hangup("c")
    await talker.finish()
    await phone.finish()


async def test_prompt_interrupted_by_rfc4733_digit_within_a_frame(rig: Rig) -> None:
    far, phone = await dial_far_socket(rig, "ivr", None)
    looped = await rig.legs.play("ivr", ToneSource("tone", frequency=1500.0), loop=True)
    await asyncio.sleep(0.2)
    await rig.legs.stop_play("ivr")
    stopped = await rig.obs.wait_for(
        lambda o: isinstance(o, PlaybackDone) and o.playback_id == looped
    )
    assert (stopped.interrupted, stopped.digit) == (True, None)

    prompt = ToneSource("tone", frequency=600.0, seconds=5.0)
    await rig.legs.play("ivr", prompt, interrupt_on_dtmf=True, playback_id="menu-1")
    await asyncio.sleep(0.5)
    assert heard(far.audio(time.monotonic() - 0.3), TONES) == {600.0}
    far.send_digit("7", 120)
    done = await rig.obs.wait_for(
        lambda o: isinstance(o, PlaybackDone) and o.playback_id == "menu-1"
    )
    assert done == PlaybackDone("ivr", "menu-1", True, "7")
    dtmf = await rig.obs.wait(LegDtmf, "ivr")
    assert (dtmf.digit, dtmf.duration_ms, dtmf.via) == ("7", 120, "rfc4733")
    await asyncio.sleep(0.2)
    assert far.digit_sent_at is not None
    after = [d for t, d in far.received if t >= far.digit_sent_at and d[1] & 0x7F == 0]
    prompt_frames = sum(1 for d in after if heard(g711.decode(0, d[12:]), (600.0,), 1000.0))
    assert prompt_frames <= 1
    assert len(after) >= 5  # the leg kept sending (silence) after the prompt stopped
    await rig.legs.hangup("ivr")
    await phone.finish()


async def test_rtp_timeout_hangs_up_and_reports_it(
    rig_factory: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await rig_factory(rtp_timeout_s=1.0)
    mute = rig.sipp("uas_call", sdp_port="[media_port]", pt=0, codec="PCMU")
    await mute.start()  # no -rtp_echo, no stream: SIPp never sends RTP
    await rig.legs.dial("quiet", mute.uri)
    await rig.obs.wait(LegAnswered, "quiet")
    ended = await rig.obs.wait(LegEnded, "quiet", limit=6)
    assert (ended.by, ended.reason) == ("local", "rtp_timeout")
    await mute.finish()  # SIPp got our BYE
    assert rig.media_legs() == set()
