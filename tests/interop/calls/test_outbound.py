"""Outbound legs against SIPp UASs: dial, bridge, audio both ways, busy, no answer, OPTIONS.

SIPp answers our INVITEs; RTP flows between SIPp (``rtp_stream`` of a raw G.711 tone,
or ``-rtp_echo``) and our anchored media legs, and our own recorder shows what each leg
said and heard (numpy DFT at the test tones).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from sip_media.call_types import (
    DuplicateLegError,
    LegAnswered,
    LegEnded,
    LegFailed,
    LegProgress,
    RecordingDone,
    SignallingError,
    UnknownLegError,
)
from tests.interop.calls.rig import Rig
from tests.support.audio import g711_file, heard, levels
from tests.support.sipp_templates import ANSWER_OPTIONS, RING_180
from tests.support.wav import read_wav

pytestmark = pytest.mark.interop

TONES = (440.0, 1000.0, 1500.0)


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    return float(np.argmax(spectrum) * 8000 / samples.size)


async def test_two_sipp_legs_bridged_audio_flows_both_ways(rig: Rig) -> None:
    """SIPp #1 streams 1 kHz PCMU; SIPp #2 (PCMA) echoes. Bridged through our media, the
    tone goes out on B transcoded, comes back from SIPp #2 and is heard again on A."""
    ul = g711_file(rig.tmp / "tone1k.ul", 0, 1000.0)
    talker = rig.sipp(
        "uas_call",
        ring=RING_180,
        sdp_port="[rtpstream_audio_port]",
        pt=0,
        codec="PCMU",
        ack_action=f'<action><exec rtp_stream="{ul},-1,0"/></action>',
    )
    echo = rig.sipp("uas_call", sdp_port="[media_port]", pt=8, codec="PCMA")
    await talker.start()
    await echo.start("-rtp_echo")
    await rig.legs.dial("a", talker.uri, caller_id="Alice")
    await rig.legs.dial("b", echo.uri)
    progress = await rig.obs.wait(LegProgress, "a")
    assert (progress.status, progress.early_media) == (180, False)
    await rig.obs.wait(LegAnswered, "a")
    await rig.obs.wait(LegAnswered, "b")
    assert rig.legs.info("a").payload_type == 0
    assert rig.legs.info("b").payload_type == 8
    assert rig.legs.info("b").remote_rtp == ("127.0.0.1", echo.media_port)
    await rig.legs.bridge("a", "b")
    await asyncio.sleep(0.3)
    rec_a = await rig.legs.record("a", "bridge/a.wav", mode="separate")
    rec_b = await rig.legs.record("b", "bridge/b.wav", mode="separate")
    await asyncio.sleep(1.2)
    await rig.legs.stop_record(rec_a.recording_id)
    await rig.legs.stop_record(rec_b.recording_id)
    done = await rig.obs.wait_for(
        lambda o: isinstance(o, RecordingDone) and o.recording_id == rec_b.recording_id
    )
    assert done.leg_id == "b" and done.legs == ("b",)
    wav_a = read_wav(Path(rec_a.path))[800:]
    wav_b = read_wav(Path(rec_b.path))[800:]
    said_a, heard_a = wav_a[:, 0], wav_a[:, 1]
    said_b, heard_b = wav_b[:, 0], wav_b[:, 1]
    # A -> B: what SIPp #1 sent is what we sent to SIPp #2 ...
    assert heard(said_a, TONES) == {1000.0} and heard(heard_b, TONES) == {1000.0}
    # ... SIPp #2 received it (it echoed it back), and B -> A carried the echo to SIPp #1.
    assert heard(said_b, TONES) == {1000.0} and heard(heard_a, TONES) == {1000.0}
    for signal in (said_a, heard_b, said_b, heard_a):
        assert abs(peak_hz(signal) - 1000.0) < 5
    await rig.legs.hangup("a")
    await rig.legs.hangup("b")
    ended = await rig.obs.wait(LegEnded, "a")
    assert (ended.by, ended.reason, ended.sip_status) == ("local", "bye", 200)
    await rig.obs.wait(LegEnded, "b")
    await talker.finish()
    await echo.finish()
    assert rig.media_legs() == set()


async def test_bridge_with_distinct_tones_each_side_hears_only_the_other(rig: Rig) -> None:
    """SIPp streams 1 kHz on A; leg C's far RTP end is the test's socket sending 440 Hz."""
    ul = g711_file(rig.tmp / "tone1k.ul", 0, 1000.0)
    talker = rig.sipp(
        "uas_call",
        sdp_port="[rtpstream_audio_port]",
        pt=0,
        codec="PCMU",
        ack_action=f'<action><exec rtp_stream="{ul},-1,0"/></action>',
    )
    far = rig.peer(440.0)
    phone = rig.sipp("uas_call", sdp_port=far.port, pt=0, codec="PCMU")
    await talker.start()
    await phone.start()
    await rig.legs.dial("a", talker.uri)
    await rig.legs.dial("c", phone.uri)
    await rig.obs.wait(LegAnswered, "a")
    await rig.obs.wait(LegAnswered, "c")
    local = rig.legs.info("c").local_rtp
    assert local is not None
    far.start(local)
    await rig.legs.bridge("a", "c")
    await asyncio.sleep(0.3)
    rec = await rig.legs.record("a", "distinct.wav", mode="separate")
    start = asyncio.get_running_loop().time()
    await asyncio.sleep(1.0)
    await rig.legs.stop_record(rec.recording_id)
    wav = read_wav(Path(rec.path))[400:]
    assert heard(wav[:, 0], TONES) == {1000.0}  # SIPp -> A
    assert heard(wav[:, 1], TONES) == {440.0}  # C -> A (what went to SIPp)
    got = far.audio()[-6000:]
    assert heard(got, TONES) == {1000.0}  # A -> C
    assert asyncio.get_running_loop().time() - start < 5
    await rig.legs.unbridge("a", "c")
    await asyncio.sleep(0.3)
    quiet = far.audio()[-2400:]
    assert levels(quiet, (1000.0,))[1000.0] < 100
    await rig.legs.hangup("a")
    await rig.legs.hangup("c")
    await talker.finish()
    await phone.finish()


async def test_dial_busy_reports_leg_failed_486(rig: Rig) -> None:
    busy = rig.sipp("uas_busy")
    await busy.start()
    await rig.legs.dial("busy-1", busy.uri)
    failed = await rig.obs.wait(LegFailed, "busy-1")
    assert (failed.sip_status, failed.reason) == (486, "busy")
    assert not [o for o in rig.obs.of("busy-1") if isinstance(o, LegEnded)]
    await busy.finish()  # SIPp got its ACK
    assert rig.media_legs() == set()
    with pytest.raises(UnknownLegError):
        await rig.legs.hangup("busy-1")


async def test_dial_no_answer_cancels_and_reports_leg_failed(rig: Rig) -> None:
    """Our dial timeout fires: CANCEL goes out, SIPp answers 487, LegFailed(487, no_answer)."""
    silent = rig.sipp("uas_noanswer")
    await silent.start()
    await rig.legs.dial("slow-1", silent.uri, timeout=1.0)
    progress = await rig.obs.wait(LegProgress, "slow-1")
    assert progress.status == 180
    failed = await rig.obs.wait(LegFailed, "slow-1", limit=8)
    assert (failed.sip_status, failed.reason) == (487, "no_answer")
    await silent.finish()
    assert rig.media_legs() == set()


async def test_hangup_while_ringing_is_a_local_cancel(rig: Rig) -> None:
    silent = rig.sipp("uas_noanswer")
    await silent.start()
    await rig.legs.dial("ring-1", silent.uri)
    await rig.obs.wait(LegProgress, "ring-1")
    await rig.legs.hangup("ring-1")
    ended = await rig.obs.wait(LegEnded, "ring-1")
    assert (ended.by, ended.reason, ended.sip_status) == ("local", "cancel", 487)
    await silent.finish()


async def test_options_ping_in_dialog_returns_status_and_rtt(rig: Rig) -> None:
    peer = rig.sipp("uas_call", sdp_port="[media_port]", pt=0, codec="PCMU", middle=ANSWER_OPTIONS)
    await peer.start("-rtp_echo")
    await rig.legs.dial("opt-1", peer.uri)
    await rig.obs.wait(LegAnswered, "opt-1")
    status, rtt_ms = await rig.legs.options_ping("opt-1")
    assert status == 200
    assert 0 < rtt_ms < 5000
    await rig.legs.hangup("opt-1")
    await rig.obs.wait(LegEnded, "opt-1")
    await peer.finish()


async def test_dial_refusals_raise_typed_errors_and_report_nothing(rig: Rig) -> None:
    with pytest.raises(SignallingError) as info:
        await rig.legs.dial("bad-1", "sip:nobody@local")  # not registered: 404
    assert info.value.sip_status == 404
    with pytest.raises(SignallingError):
        await rig.legs.dial("bad-2", "sip:x@127.0.0.1:5", extra_headers=[("X-Evil", "a\r\nb")])
    busy = rig.sipp("uas_busy")
    await busy.start()
    await rig.legs.dial("dup", busy.uri)
    with pytest.raises(DuplicateLegError):
        await rig.legs.dial("dup", busy.uri)
    await rig.obs.wait(LegFailed, "dup")
    await busy.finish()
    await asyncio.sleep(0.1)
    assert not rig.obs.of("bad-1") and not rig.obs.of("bad-2")
    assert rig.media_legs() == set()


async def test_dial_outside_the_allow_list_fails_and_sends_nothing(rig: Rig) -> None:
    """Security rule: 192.0.2.1 is outside 127.0.0.0/8, so the INVITE is never sent."""
    await rig.legs.dial("far-1", "sip:bob@192.0.2.1:5060")
    failed = await rig.obs.wait(LegFailed, "far-1")
    assert (failed.sip_status, failed.reason) == (503, "unreachable")
    assert rig.legs.sip.stats["dropped_by_allow_list"] >= 1
    assert rig.media_legs() == set()
