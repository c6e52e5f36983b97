"""REFER (RFC 3515) with its implicit subscription, in both roles, against SIPp."""

from __future__ import annotations

import pytest

from sip_media.adapter import (
    Answered,
    AnswerLeg,
    DialLeg,
    Ended,
    HangupLeg,
    IncomingCall,
    NotifyReceived,
    ReferReceived,
    ReplyRefer,
    SendRefer,
    SipAdapter,
)
from tests.support.observer import Observer
from tests.support.ports import free_port
from tests.support.sipp import Sipps

pytestmark = pytest.mark.interop


async def test_sipp_refers_engine_and_gets_sipfrag_notifies(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    host, port = adapter.local_address()
    proc = await peers.sipp("uac_refer", f"{host}:{port}", "-s", "alice")
    call = await observer.wait(IncomingCall)
    await adapter.execute(AnswerLeg(call.leg_id))
    refer = await observer.wait(ReferReceived, call.leg_id)
    assert refer.refer_to.startswith("<sip:carol@")
    assert refer.referred_by is not None
    await adapter.execute(ReplyRefer(call.leg_id, refer.refer_id, 200))
    ended = await observer.wait(Ended, call.leg_id)
    assert ended.by == "remote"
    result = await peers.finish(proc)
    assert result.rc == 0, result.stderr[-3000:]


async def test_engine_refers_sipp_and_gets_notify(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    port = free_port()
    proc = await peers.sipp("uas_refer", None, port=port)
    await adapter.execute(DialLeg("leg-r", f"sip:bob@127.0.0.1:{port}"))
    await observer.wait(Answered, "leg-r")
    result = await adapter.execute(SendRefer("leg-r", "sip:carol@127.0.0.1"))
    assert result is not None and result.status == 202
    notify = await observer.wait(NotifyReceived, "leg-r")
    assert notify.event == "refer" and notify.body.startswith(b"SIP/2.0 200")
    assert notify.subscription_state.startswith("terminated")
    await adapter.execute(HangupLeg("leg-r"))
    await observer.wait(Ended, "leg-r")
    assert (await peers.finish(proc)).rc == 0


async def test_invite_with_replaces_takes_over_a_dialog(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    host, port = adapter.local_address()
    proc = await peers.sipp("uac_replaces", f"{host}:{port}", "-s", "alice")
    first = await observer.wait(IncomingCall)
    await adapter.execute(AnswerLeg(first.leg_id))
    second = await observer.wait_for(
        lambda o: isinstance(o, IncomingCall) and o.leg_id != first.leg_id
    )
    assert isinstance(second, IncomingCall) and second.replaces == first.leg_id
    await adapter.execute(AnswerLeg(second.leg_id))
    await observer.wait(Answered, second.leg_id)
    await adapter.execute(HangupLeg(first.leg_id))
    ended = await observer.wait(Ended, first.leg_id)
    assert ended.by == "local"
    ended = await observer.wait(Ended, second.leg_id)
    assert ended.by == "remote"
    result = await peers.finish(proc)
    assert result.rc == 0, result.stderr[-3000:]
