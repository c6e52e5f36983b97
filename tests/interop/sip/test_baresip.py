"""baresip (a real softphone) calling through the engine and being called by it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sip_media.adapter import (
    Answer,
    Answered,
    Dial,
    Ended,
    Hangup,
    IncomingCall,
    Ring,
    SipAdapter,
)

from .baresip_peer import Baresip
from .conftest import Observer, free_port

pytestmark = pytest.mark.interop


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Baresip]:
    port = free_port()
    bs = Baresip(
        tmp_path / "baresip",
        port,
        free_port(socket.SOCK_STREAM),
        f"<sip:bob@127.0.0.1:{port}>;regint=0;answermode=auto;audio_codecs=PCMU/8000/1",
    )
    await bs.start()
    try:
        yield bs
    finally:
        await bs.stop()


async def test_engine_calls_baresip_which_auto_answers(
    adapter: SipAdapter, observer: Observer, phone: Baresip
) -> None:
    await adapter.execute(Dial("b1", f"sip:bob@127.0.0.1:{phone.sip_port}"))
    answered = await observer.wait(Answered, "b1")
    assert answered.sdp is not None and b"PCMU/8000" in answered.sdp
    await phone.wait_event("CALL_ESTABLISHED")
    await adapter.execute(Hangup("b1"))
    ended = await observer.wait(Ended, "b1")
    assert (ended.cause, ended.by) == ("normal", "local")
    await phone.wait_event("CALL_CLOSED")


async def test_baresip_calls_engine_and_hangs_up(
    adapter: SipAdapter, observer: Observer, phone: Baresip
) -> None:
    host, port = adapter.local_address()
    reply = await phone.command("dial", f"sip:alice@{host}:{port}")
    assert reply["ok"], reply
    call = await observer.wait(IncomingCall)
    assert "bob" in call.from_
    await adapter.execute(Ring(call.leg_id))
    await adapter.execute(Answer(call.leg_id))
    await observer.wait(Answered, call.leg_id)
    await phone.wait_event("CALL_ESTABLISHED")
    await phone.command("hangup")
    ended = await observer.wait(Ended, call.leg_id)
    assert (ended.cause, ended.by) == ("normal", "remote")
