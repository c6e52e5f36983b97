"""In-dialog INFO (DTMF relay), MESSAGE, OPTIONS and NOTIFY in both directions."""

from __future__ import annotations

import pytest

from sip_media.adapter import (
    AnswerLeg,
    DtmfInfo,
    Ended,
    IncomingCall,
    MessageReceived,
    NotifyReceived,
    OptionsResult,
    SendInfo,
    SendMessage,
    SendOptions,
    SipAdapter,
)
from tests.support.observer import Observer
from tests.support.ports import free_port
from tests.support.sipp import Sipps

pytestmark = pytest.mark.interop


async def test_in_dialog_requests_both_ways(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    host, port = adapter.local_address()
    proc = await peers.sipp("uac_indialog", f"{host}:{port}", "-s", "alice")
    call = await observer.wait(IncomingCall)
    leg = call.leg_id
    await adapter.execute(AnswerLeg(leg))
    dtmf = await observer.wait(DtmfInfo, leg)
    assert (dtmf.digit, dtmf.duration_ms) == ("7", 160)
    message = await observer.wait(MessageReceived, leg)
    assert (message.content_type, message.body) == ("text/plain", b"hello from sipp\r\n")

    info = await adapter.execute(SendInfo.dtmf(leg, "4"))
    assert info is not None and info.status == 200
    sent = await adapter.execute(SendMessage(leg, b"hello sipp"))
    assert sent is not None and sent.status == 200
    options = await adapter.execute(SendOptions(leg))
    assert options is not None and options.status == 200 and options.rtt is not None
    result = await observer.wait(OptionsResult, leg)
    assert result.status == 200

    notify = await observer.wait(NotifyReceived, leg)
    assert notify.event == "message-summary" and b"Messages-Waiting" in notify.body
    await observer.wait(Ended, leg)
    assert (await peers.finish(proc)).rc == 0


async def test_out_of_dialog_options_to_sipp(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    port = free_port()
    proc = await peers.sipp("uas_options", None, port=port)
    result = await adapter.execute(SendOptions("", target=f"sip:ping@127.0.0.1:{port}"))
    assert result is not None and result.status == 200
    seen = await observer.wait(OptionsResult, "")
    assert seen.status == 200 and seen.rtt is not None and seen.rtt < 5
    assert (await peers.finish(proc)).rc == 0


async def test_send_to_a_forbidden_destination_is_dropped(adapter: SipAdapter) -> None:
    """192.0.2.1 is outside allowed_destinations: nothing is sent, the request fails."""
    result = await adapter.execute(SendOptions("", target="sip:x@192.0.2.1:5060"))
    assert result is not None and result.status == 503
    assert adapter.stats["dropped_by_allow_list"] >= 1
