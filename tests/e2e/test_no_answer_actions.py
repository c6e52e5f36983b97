"""A context's no-answer actions end to end (a SIPp caller nobody claims is transferred
to a target phone, or hears a tone and is hung up), and early media reported after a
180 Ringing, against SIPp peers with audio checked by spectrum."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwi.client import InvalidState
from tests.e2e.pbx import TONES, answered, events_of, pbx, sip_tables, tone_phone
from tests.support.audio import g711_file, heard
from tests.support.sipp_templates import RING_180, call_sipp

pytestmark = pytest.mark.e2e

ROUTES = [
    {"name": "sales-line", "match_user": "^2000$", "context": "sales"},
    {"name": "support-line", "match_user": "^3000$", "context": "support"},
]
CONTEXTS = [
    {"name": "sales", "no_answer_timeout_secs": 1, "no_answer_action": "transfer",
     "no_answer_transfer_target": "sip:voicemail@local"},
    {"name": "support", "no_answer_timeout_secs": 1, "no_answer_action": "play_tone",
     "no_answer_tone_hz": 1000, "no_answer_tone_secs": 2.5},
]  # fmt: skip


async def test_unclaimed_call_is_transferred_then_ends_with_its_caller(
    db_url: str, tmp_path: Path
) -> None:
    voicemail = tone_phone(tmp_path, g711_file(tmp_path / "vm.ul", 0, 1500.0))
    tables = sip_tables(tmp_path, users={"voicemail": voicemail}, routes=ROUTES)
    async with pbx(db_url, tmp_path, tables, contexts=CONTEXTS) as rig:
        rig.sipps.append(voicemail)
        await voicemail.start()
        client = await rig.client()
        await client.session.subscribe(contexts=["sales"])
        caller = call_sipp(tmp_path, "uac_call", middle="", pause_ms=4000)
        rig.sipps.append(caller)
        await caller.start("-s", "2000", "-rtp_echo", remote=f"127.0.0.1:{rig.sip_port}")

        incoming = await client.events.wait("call.incoming", within=10)
        call_id = str(incoming.call_id)
        await client.events.wait("call.answered", call_id=call_id, within=10)
        with pytest.raises(InvalidState) as late:
            await client.call.answer(call_id=call_id)
        assert "no-answer action" in late.value.message
        await rig.sip_answered(f"{call_id}-t")
        said, heard_by_caller = await rig.tap(call_id, 1.0)
        assert heard(heard_by_caller, TONES) == {1500.0}  # the voicemail phone
        assert heard(said, TONES) == {1500.0}  # echoed back by the caller

        hangup = await client.events.wait("call.hangup", call_id=call_id, within=10)
        assert hangup.data["reason"] == "caller"
        assert events_of(client, call_id) == ["call.incoming", "call.answered", "call.hangup"]
        assert await caller.finish() == 0
        assert await voicemail.finish() == 0  # the target leg ended with the caller
        await rig.replay_matches()


async def test_unclaimed_call_hears_a_tone_and_is_hung_up(db_url: str, tmp_path: Path) -> None:
    tables = sip_tables(tmp_path, routes=ROUTES)
    async with pbx(db_url, tmp_path, tables, contexts=CONTEXTS) as rig:
        client = await rig.client()
        await client.session.subscribe(contexts=["support"])
        caller = call_sipp(tmp_path, "uac_wait_bye")
        rig.sipps.append(caller)
        await caller.start("-s", "3000", remote=f"127.0.0.1:{rig.sip_port}")

        incoming = await client.events.wait("call.incoming", within=10)
        call_id = str(incoming.call_id)
        await client.events.wait("call.answered", call_id=call_id, within=10)
        await rig.sip_answered(call_id)
        _, heard_by_caller = await rig.tap(call_id, 1.0)
        assert heard(heard_by_caller, TONES) == {1000.0}
        hangup = await client.events.wait("call.hangup", call_id=call_id, within=10)
        assert (hangup.data["reason"], hangup.data["hangup_by"]) == ("no_answer", "system")
        assert await caller.finish() == 0  # it got our BYE after the tone
        await rig.replay_matches()


RING_180_183 = (
    RING_180
    + """
  <send>
    <![CDATA[
SIP/2.0 183 Session Progress
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 53655765 2353687637 IN IP4 [local_ip]
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
]]>
  </send>
  <pause milliseconds="300"/>"""
)


async def test_early_media_after_ringing(db_url: str, tmp_path: Path) -> None:
    trunk = call_sipp(
        tmp_path, "uas_call", ring=RING_180_183, sdp_port="[media_port]", pt=0, codec="PCMU"
    )
    tables = sip_tables(tmp_path, trunk=trunk)
    async with pbx(db_url, tmp_path, tables) as rig:
        rig.sipps.append(trunk)
        await trunk.start("-rtp_echo")
        client = await rig.client()
        await answered(client, "out", "sip:5550123@trunk")
        early = await client.events.wait("call.early_media", call_id="out")
        assert early.data == {"sip_status": 183}
        assert events_of(client, "out") == ["call.ringing", "call.early_media", "call.answered"]
        await client.call.hangup(call_id="out")
        await client.events.wait("call.hangup", call_id="out")
        assert await trunk.finish() == 0
        await rig.replay_matches()
