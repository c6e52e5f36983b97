"""Inbound legs from SIPp UACs: LegOffered waits for the service, then answer (with
audio both ways and SIP INFO DTMF), early media, reject, caller CANCEL, remote hold."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sip_media.call_types import (
    LegAnswered,
    LegDtmf,
    LegEnded,
    LegOffered,
    LegStateError,
    MessageIn,
    NegotiationError,
    ReferIn,
)
from sip_media.media.api import ToneSource
from tests.interop.calls.rig import Rig
from tests.support.audio import heard
from tests.support.observer import wait_until
from tests.support.sipp_templates import uac_info_dtmf, uac_reinvite, uac_request
from tests.support.wav import read_wav

pytestmark = pytest.mark.interop

TONES = (440.0, 600.0, 1000.0)
PCMU_OFFER = "m=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000"


async def test_inbound_call_offered_then_answered_with_audio_and_info_dtmf(rig: Rig) -> None:
    caller = rig.sipp("uac_call", middle=uac_info_dtmf(2, "5"), pause_ms=2500)
    await caller.start("-s", "svc", "-rtp_echo", remote=rig.sip_target)
    offered = await rig.obs.wait(LegOffered)
    leg = offered.leg_id
    assert leg.startswith("in-")
    assert (offered.caller, offered.caller_name, offered.callee) == ("alice", "Alice Caller", "svc")
    assert offered.request_uri_user == "svc"
    assert offered.headers["x-customer-id"] == "4711"
    assert offered.source[0] == "127.0.0.1" and offered.trunk is None
    await asyncio.sleep(0.2)  # the INVITE waits: no media leg, no answer yet
    assert rig.media_legs() == set() and rig.legs.info(leg).state == "offered"
    await rig.legs.ring(leg)
    await rig.legs.answer(leg)
    with pytest.raises(LegStateError):
        await rig.legs.answer(leg)
    await rig.obs.wait(LegAnswered, leg)
    info = rig.legs.info(leg)
    assert (info.payload_type, info.telephone_event_pt) == (0, 101)
    assert info.remote_rtp == ("127.0.0.1", caller.media_port)
    dtmf = await rig.obs.wait(LegDtmf, leg)
    assert (dtmf.digit, dtmf.duration_ms, dtmf.via) == ("5", 160, "info")
    await rig.legs.play(leg, ToneSource("tone", frequency=600.0, seconds=3.0), playback_id="p1")
    rec = await rig.legs.record(leg, "inbound.wav", mode="separate")
    await asyncio.sleep(1.2)
    await rig.legs.stop_record(rec.recording_id)
    wav = read_wav(Path(rec.path))[800:]
    assert heard(wav[:, 1], TONES) == {600.0}  # we sent the prompt to SIPp ...
    assert heard(wav[:, 0], TONES) == {600.0}  # ... and SIPp echoed it back
    ended = await rig.obs.wait(LegEnded, leg)
    assert (ended.by, ended.sip_status, ended.reason) == ("remote", 200, "bye")
    await caller.finish()
    assert rig.media_legs() == set()


async def test_early_media_183_then_answer(rig: Rig) -> None:
    caller = rig.sipp("uac_call", pause_ms=1500)
    await caller.start("-s", "svc", "-rtp_echo", remote=rig.sip_target)
    leg = (await rig.obs.wait(LegOffered)).leg_id
    await rig.legs.ring(leg, early_media=True)
    assert rig.media_legs() == {leg}
    await rig.legs.play(leg, ToneSource("tone", frequency=440.0, seconds=2.0))
    rec = await rig.legs.record(leg, "early.wav", mode="separate")
    await asyncio.sleep(0.8)
    await rig.legs.stop_record(rec.recording_id)
    wav = read_wav(Path(rec.path))[800:]
    assert heard(wav[:, 0], TONES) == {440.0}  # early media reached SIPp and came back
    await rig.legs.answer(leg)
    await rig.obs.wait(LegAnswered, leg)
    await rig.obs.wait(LegEnded, leg)
    await caller.finish()


async def test_inbound_reject_486_reaches_sipp(rig: Rig) -> None:
    caller = rig.sipp("uac_reject", code=486, sdp_media=PCMU_OFFER)
    await caller.start("-s", "svc", remote=rig.sip_target)
    leg = (await rig.obs.wait(LegOffered)).leg_id
    await rig.legs.reject(leg, 486)
    ended = await rig.obs.wait(LegEnded, leg)
    assert (ended.by, ended.sip_status, ended.reason) == ("local", 486, "rejected")
    await caller.finish()  # exit 0 only if SIPp saw the 486
    await asyncio.sleep(0.3)
    assert rig.legs.sip.stats["retransmissions"] == 0  # SIPp's ACK matched our final
    assert rig.media_legs() == set()


async def test_caller_cancel_while_offered_ends_leg_remote_cancel(rig: Rig) -> None:
    caller = rig.sipp("uac_cancel")
    await caller.start("-s", "svc", remote=rig.sip_target)
    leg = (await rig.obs.wait(LegOffered)).leg_id
    ended = await rig.obs.wait(LegEnded, leg)
    assert (ended.by, ended.sip_status, ended.reason) == ("remote", 487, "cancel")
    await caller.finish()
    await asyncio.sleep(0.3)
    assert rig.legs.sip.stats["retransmissions"] == 0  # SIPp's ACK matched our final


async def test_remote_reinvite_hold_and_resume_update_media_direction(rig: Rig) -> None:
    middle = "\n".join(
        (
            '  <pause milliseconds="200"/>',
            uac_reinvite(2, "sendonly", "recvonly"),
            '  <pause milliseconds="800"/>',
            uac_reinvite(3, "sendrecv", "sendrecv"),
        )
    )
    caller = rig.sipp("uac_call", middle=middle, pause_ms=800)
    await caller.start("-s", "svc", "-rtp_echo", remote=rig.sip_target)
    leg = (await rig.obs.wait(LegOffered)).leg_id
    await rig.legs.answer(leg)
    await rig.obs.wait(LegAnswered, leg)
    assert rig.legs.info(leg).direction == "sendrecv"
    await wait_until(lambda: rig.legs.info(leg).direction == "recvonly", "held", 5)
    engine = getattr(rig.legs.media, "engine")  # noqa: B009 (InProcessMedia only)
    assert engine.legs[leg].direction == "recvonly"
    await wait_until(lambda: rig.legs.info(leg).direction == "sendrecv", "resumed", 5)
    assert engine.legs[leg].direction == "sendrecv"
    await rig.obs.wait(LegEnded, leg)
    await caller.finish()  # our 200s carried a=recvonly, then a=sendrecv


@pytest.mark.parametrize(
    "sdp_media",
    [
        "m=audio [media_port] RTP/AVP 18\na=rtpmap:18 G729/8000",  # no common codec
        "m=video [media_port] RTP/AVP 96\na=rtpmap:96 H264/90000",  # no audio at all
        "m=audio notaport RTP/AVP 0",  # malformed
    ],
)
async def test_unusable_offer_is_refused_488_on_answer(rig: Rig, sdp_media: str) -> None:
    caller = rig.sipp("uac_reject", code=488, sdp_media=sdp_media)
    await caller.start("-s", "svc", remote=rig.sip_target)
    leg = (await rig.obs.wait(LegOffered)).leg_id
    with pytest.raises(NegotiationError) as info:
        await rig.legs.answer(leg)
    assert (info.value.code, info.value.sip_status) == ("not_acceptable", 488)
    ended = await rig.obs.wait(LegEnded, leg)
    assert (ended.by, ended.sip_status, ended.reason) == ("local", 488, "not_acceptable")
    await caller.finish()  # SIPp saw the 488
    assert rig.media_legs() == set()


UAC_ANSWERS = """  <recv request="{method}"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]>
  </send>"""


async def test_in_dialog_message_and_refer_both_ways(rig: Rig) -> None:
    middle = "\n".join(
        (
            uac_request("MESSAGE", 2, "hello from sipp", "Content-Type: text/plain\n"),
            '  <recv response="200"/>',
            UAC_ANSWERS.replace("{method}", "MESSAGE"),
            uac_request("REFER", 3, extra="Refer-To: <sip:carol@127.0.0.1>\n"),
            '  <recv response="202"/>',
            UAC_ANSWERS.replace("{method}", "NOTIFY"),
            UAC_ANSWERS.replace("{method}", "NOTIFY"),
        )
    )
    caller = rig.sipp("uac_call", middle=middle, pause_ms=100)
    await caller.start("-s", "svc", remote=rig.sip_target)
    leg = (await rig.obs.wait(LegOffered)).leg_id
    await rig.legs.answer(leg)
    message = await rig.obs.wait(MessageIn, leg)
    assert (message.content_type, message.body) == ("text/plain", b"hello from sipp")
    assert await rig.legs.send_message(leg, b"hello back") == 200
    refer = await rig.obs.wait(ReferIn, leg)
    assert refer.refer_to == "<sip:carol@127.0.0.1>"
    await rig.legs.reply_refer(leg, refer.refer_id, 200)
    ended = await rig.obs.wait(LegEnded, leg)
    assert ended.by == "remote"
    await caller.finish()  # SIPp got our MESSAGE and both sipfrag NOTIFYs
