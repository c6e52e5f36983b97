"""baresip (a real softphone) calling through the engine and being called by it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sip_media.adapter import (
    Answered,
    AnswerLeg,
    DialLeg,
    Ended,
    HangupLeg,
    IncomingCall,
    ReferReceived,
    RegistrationChanged,
    Reinvited,
    ReplyRefer,
    RingLeg,
    SipAdapter,
)
from tests.interop.sip.harness import engine_config
from tests.support.baresip import Baresip, sip_port
from tests.support.observer import Observer
from tests.support.ports import free_port

pytestmark = pytest.mark.interop


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Baresip]:
    port = sip_port()
    bs = Baresip(
        tmp_path / "baresip",
        port,
        free_port(),
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
    await adapter.execute(DialLeg("b1", f"sip:bob@127.0.0.1:{phone.sip_port}"))
    answered = await observer.wait(Answered, "b1")
    assert answered.sdp is not None and b"PCMU/8000" in answered.sdp
    await phone.wait_event("CALL_ESTABLISHED")
    await adapter.execute(HangupLeg("b1"))
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
    await adapter.execute(RingLeg(call.leg_id))
    await adapter.execute(AnswerLeg(call.leg_id))
    await observer.wait(Answered, call.leg_id)
    await phone.wait_event("CALL_ESTABLISHED")
    await phone.command("hangup")
    ended = await observer.wait(Ended, call.leg_id)
    assert (ended.cause, ended.by) == ("normal", "remote")


async def test_registered_phones_call_each_other_through_the_engine(tmp_path: Path) -> None:
    """bob and carol register with digest auth; bob calls carol via the B2BUA."""
    users = {"bob": "bobpw", "carol": "carolpw"}
    adapter = SipAdapter(engine_config(users=users), no_media=True)
    await adapter.start()
    observer = Observer(adapter)
    host, port = adapter.local_address()
    phones: list[Baresip] = []
    try:
        for name, password in users.items():
            port_of_phone = sip_port()
            phone = Baresip(
                tmp_path / name,
                port_of_phone,
                free_port(),
                f"<sip:{name}@{host}:{port}>;auth_pass={password};regint=600;"
                "answermode=auto;audio_codecs=PCMU/8000/1",
            )
            phones.append(phone)
            await phone.start()
            aor = f"sip:{name}@{host}:{port}"
            await observer.wait_for(
                lambda o, aor=aor: isinstance(o, RegistrationChanged) and o.aor == aor
            )
        bob, carol = phones
        assert adapter.engine.resolve("sip:carol@local").address[1] == carol.sip_port

        await bob.command("dial", f"sip:carol@{host}:{port}")
        incoming = await observer.wait(IncomingCall)
        assert incoming.user == "bob"  # passed the 407 digest challenge
        await adapter.execute(RingLeg(incoming.leg_id))
        await adapter.execute(DialLeg("to-carol", "sip:carol@local", caller_id="bob"))
        await observer.wait(Answered, "to-carol")
        await adapter.execute(AnswerLeg(incoming.leg_id))
        await observer.wait(Answered, incoming.leg_id)
        await bob.wait_event("CALL_ESTABLISHED")
        await carol.wait_event("CALL_ESTABLISHED")

        await bob.command("hangup")
        ended = await observer.wait(Ended, incoming.leg_id)
        assert ended.by == "remote"
        await adapter.execute(HangupLeg("to-carol"))
        await observer.wait(Ended, "to-carol")
        await carol.wait_event("CALL_CLOSED")
    finally:
        for phone in phones:
            await phone.stop()
        await adapter.stop()


async def test_baresip_holds_resumes_and_blind_transfers(
    adapter: SipAdapter, observer: Observer, phone: Baresip
) -> None:
    host, port = adapter.local_address()
    await phone.command("dial", f"sip:alice@{host}:{port}")
    call = await observer.wait(IncomingCall)
    leg = call.leg_id
    await adapter.execute(AnswerLeg(leg))
    await phone.wait_event("CALL_ESTABLISHED")

    await phone.command("hold")
    held = await observer.wait(Reinvited, leg)
    assert held.hold
    await phone.command("resume")
    resumed = await observer.wait_for(
        lambda o: isinstance(o, Reinvited) and o.leg_id == leg and not o.hold
    )
    assert isinstance(resumed, Reinvited)

    await phone.command("transfer", f"sip:carol@{host}:{port}")
    refer = await observer.wait(ReferReceived, leg)
    assert refer.refer_to.strip("<>") == f"sip:carol@{host}:{port}"
    await adapter.execute(ReplyRefer(leg, refer.refer_id, 200))
    ended = await observer.wait(Ended, leg)  # the phone hangs up once the transfer is done
    assert ended.by == "remote"
