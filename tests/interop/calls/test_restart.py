"""Restart recovery against SIPp: a CallLegs "crashes" (torn down without a word to the
far ends), a fresh CallLegs on the same SIP port ends each dialog from the record the
first one reported (BYE, CANCEL + ACK of the 487, final response), and SIPp, which
only passes if the call ends exactly as its scenario says, exits 0.

Each record goes through ``to_dict`` -> ``json.dumps`` -> ``json.loads`` ->
``from_dict`` first, as it would through the service's event log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sip_media.call_types import (
    DialogKind,
    DialogRecord,
    LegAnswered,
    LegOffered,
    LegProgress,
)
from sip_media.calls import CallLegs
from sip_media.media.config import MediaConfig
from sip_media.sip.engine import EngineConfig, TrunkConfig
from sip_media.sip.timers import TimerConfig
from tests.interop.calls.rig import Rig, close_rig
from tests.support.observer import Observer
from tests.support.ports import free_port, port_range
from tests.support.sipp import Sipp
from tests.support.sipp_templates import call_sipp

pytestmark = pytest.mark.interop


def logged(record: DialogRecord | None) -> DialogRecord:
    """The record as a restarted service reads it back from its log."""
    assert record is not None
    return DialogRecord.from_dict(json.loads(json.dumps(record.to_dict())))


async def crash(rig: Rig) -> None:
    """Stop ``rig.legs`` as SIGKILL would, as far as the far ends can tell: the SIP
    socket closes first, then every transaction, timer and session is dropped and the
    CallLegs closed with no leg left to hang up. Nothing may be sent meanwhile."""
    engine = rig.legs.sip.engine
    sent_before = engine.stats.counters["messages_out"]
    await engine.stop()
    for tx in [*engine.table.client.values(), *engine.table.server.values()]:
        tx.terminate()  # cancels its timers; sends nothing
    for inv in engine.sessions.values():
        if inv._timeout is not None:  # an outbound leg's no-answer timer
            inv._timeout.cancel()
    engine.sessions.clear()
    engine.dialogs.clear()
    engine.by_invite_tx.clear()
    rig.legs._legs.clear()
    await rig.legs.close()
    assert engine.stats.counters["messages_out"] == sent_before


async def restarted(tmp: Path, sip_port: int, trunks: dict[str, TrunkConfig] | None = None) -> Rig:
    """A new CallLegs on the SIP port of the one that crashed (fresh media range)."""
    base, port_max = port_range(99)
    legs = await CallLegs.start(
        EngineConfig(
            udp=[("127.0.0.1", sip_port)],
            allowed_destinations=("127.0.0.0/8",),
            timers=TimerConfig(t1=0.1, t2=0.4, t4=0.5),
            trunks=dict(trunks or {}),
        ),
        MediaConfig(
            sounds_dir=tmp / f"sounds{base}",
            recordings_dir=tmp / f"recordings{base}",
            port_min=base,
            port_max=port_max,
            allowed_destinations=("127.0.0.0/8",),
        ),
    )
    return Rig(legs, Observer(legs), tmp)


async def end_after_crash(
    rig: Rig,
    tmp: Path,
    record: DialogRecord,
    peer: Sipp,
    reason_code: int = 480,
    answer_sent: bool = False,
) -> int:
    """Crash ``rig``, end ``record`` from a fresh CallLegs (same port, same trunks);
    SIPp must pass."""
    port = rig.legs.sip.local_address()[1]
    trunks = rig.legs.sip.engine.config.trunks
    await crash(rig)
    second = await restarted(tmp, port, trunks)
    try:
        status = await second.legs.end_stale(
            record, reason_code=reason_code, timeout=5, answer_sent=answer_sent
        )
        await peer.finish()
        assert second.obs.seen == []  # no leg of the new process is involved
        return status
    finally:
        await close_rig(second)


async def test_outbound_answered_leg_gets_a_bye(rig: Rig, tmp_path: Path) -> None:
    phone = rig.sipp("uas_stale_bye")
    await phone.start()
    await rig.legs.dial("out-1", phone.uri)
    answered = await rig.obs.wait(LegAnswered, "out-1")
    record = logged(answered.dialog)
    assert record.kind is DialogKind.CONFIRMED and record.leg_id == "out-1"
    assert record.destination == ("127.0.0.1", phone.sip_port)
    assert await end_after_crash(rig, tmp_path, record, phone) == 200


async def test_outbound_ringing_leg_gets_a_cancel_and_the_487_is_acked(
    rig: Rig, tmp_path: Path
) -> None:
    phone = rig.sipp("uas_noanswer")
    await phone.start()
    await rig.legs.dial("out-2", phone.uri)
    before_1xx = rig.legs.dialog_record("out-2")  # CANCEL data before any provisional
    progress = await rig.obs.wait(LegProgress, "out-2")
    record = logged(progress.dialog)
    assert record.kind is DialogKind.OUTBOUND_EARLY and record.remote_tag  # early dialog
    assert before_1xx is not None and before_1xx.vias == record.vias
    assert await end_after_crash(rig, tmp_path, record, phone) == 487


async def test_outbound_answer_crossing_the_cancel_is_acked_and_byed(
    rig: Rig, tmp_path: Path
) -> None:
    phone = rig.sipp("uas_cancel_crossed")
    await phone.start()
    await rig.legs.dial("out-3", phone.uri)
    record = logged((await rig.obs.wait(LegProgress, "out-3")).dialog)
    assert await end_after_crash(rig, tmp_path, record, phone) == 200  # the BYE's status


async def test_inbound_answered_leg_gets_a_bye(rig: Rig, tmp_path: Path) -> None:
    caller = rig.sipp("uac_stale_bye")
    await caller.start("-s", "svc", remote=rig.sip_target)
    offered = await rig.obs.wait(LegOffered)
    assert offered.dialog is not None and offered.dialog.kind is DialogKind.INBOUND_EARLY
    await rig.legs.answer(offered.leg_id)
    answered = await rig.obs.wait(LegAnswered, offered.leg_id)
    record = logged(answered.dialog)
    assert record.kind is DialogKind.CONFIRMED
    assert record.remote_target == f"sip:erin@127.0.0.1:{caller.sip_port}"
    assert await end_after_crash(rig, tmp_path, record, caller) == 200


@pytest.mark.parametrize("code", [480, 503])
async def test_inbound_offered_leg_gets_a_final_response(
    rig: Rig, tmp_path: Path, code: int
) -> None:
    caller = rig.sipp("uac_stale_final", code=code)
    await caller.start("-s", "svc", remote=rig.sip_target)
    offered = await rig.obs.wait(LegOffered)
    await rig.legs.ring(offered.leg_id)
    record = logged(offered.dialog)
    assert record.kind is DialogKind.INBOUND_EARLY and record.cseq == 7
    assert record.destination == ("127.0.0.1", caller.sip_port)
    status = await end_after_crash(rig, tmp_path, record, caller, reason_code=code)
    assert status == code


async def test_a_trunk_challenging_the_bye_gets_credentials(tmp_path: Path) -> None:
    """The record names the trunk; the new process answers its 401 from the config."""
    trunk = call_sipp(tmp_path, "uas_stale_bye_auth")
    config = TrunkConfig(
        "itsp", ("127.0.0.1", trunk.sip_port), username="trunkuser", password="trunkpw"
    )
    rig = await restarted(tmp_path, free_port(), {"itsp": config})
    try:
        await trunk.start()
        await rig.legs.dial("out-4", "sip:100@itsp")
        record = logged((await rig.obs.wait(LegAnswered, "out-4")).dialog)
        assert record.trunk == "itsp"
        assert await end_after_crash(rig, tmp_path, record, trunk) == 200
    finally:
        await trunk.close()
        await close_rig(rig)


async def test_outbound_answer_never_logged_is_byed_after_the_cancel_481(
    rig: Rig, tmp_path: Path
) -> None:
    """Only LegProgress made it to the log: the CANCEL finds no transaction (481), the
    BYE in the dialog the 180 opened ends the call."""
    phone = rig.sipp("uas_answered_unreported")
    await phone.start()
    await rig.legs.dial("out-5", phone.uri)
    record = logged((await rig.obs.wait(LegProgress, "out-5")).dialog)
    await rig.obs.wait(LegAnswered, "out-5")  # happened, but "not logged"
    assert await end_after_crash(rig, tmp_path, record, phone) == 200


async def test_inbound_answer_never_logged_gets_a_bye(rig: Rig, tmp_path: Path) -> None:
    """Only LegOffered made it to the log, and the log shows we were answering."""
    caller = rig.sipp("uac_stale_answered")
    await caller.start("-s", "svc", remote=rig.sip_target)
    offered = await rig.obs.wait(LegOffered)
    await rig.legs.answer(offered.leg_id)
    await rig.obs.wait(LegAnswered, offered.leg_id)  # happened, but "not logged"
    record = logged(offered.dialog)
    assert await end_after_crash(rig, tmp_path, record, caller, answer_sent=True) == 200


async def test_an_answer_whose_ack_was_held_is_acked_and_byed_by_the_next_process(
    tmp_path: Path,
) -> None:
    """The crash came between the 2xx and the service storing ``LegAnswered`` (so
    ``confirm`` never came): the ACK was held, SIPp retransmits its 200, and the new
    process on the port, which never sent that INVITE, ACKs and BYEs it."""
    phone = call_sipp(tmp_path, "uas_unacked_answer")
    rig = await restarted(tmp_path, free_port())
    rig.legs.sip.engine.config.ack_hold = 30.0  # longer than the test: only a crash ends it
    try:
        await phone.start()
        await rig.legs.dial("out-6", phone.uri)
        await rig.obs.wait(LegAnswered, "out-6")
        port = rig.legs.sip.local_address()[1]
        await crash(rig)
        second = await restarted(tmp_path, port)
        try:
            await phone.finish()
            assert second.obs.seen == []
            assert second.legs.sip.engine.stats.counters["stray_answers_ended"] == 1
        finally:
            await close_rig(second)
    finally:
        await phone.close()
        await close_rig(rig)


async def test_a_confirmed_answer_is_acked_at_once(tmp_path: Path) -> None:
    """With the hold on, ``confirm`` (the service stored the answer) sends the ACK."""
    phone = call_sipp(tmp_path, "uas_stale_bye")
    rig = await restarted(tmp_path, free_port())
    rig.legs.sip.engine.config.ack_hold = 30.0
    try:
        await phone.start()
        await rig.legs.dial("out-7", phone.uri)
        record = logged((await rig.obs.wait(LegAnswered, "out-7")).dialog)
        rig.legs.confirm("out-7")
        assert await end_after_crash(rig, tmp_path, record, phone) == 200
    finally:
        await phone.close()
        await close_rig(rig)
