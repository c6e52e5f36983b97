"""Basic call flows between the engine and SIPp on loopback (both directions)."""

from __future__ import annotations

import asyncio

import pytest

from sip_media.adapter import (
    Answered,
    AnswerLeg,
    DialLeg,
    Ended,
    HangupLeg,
    IncomingCall,
    Provisional,
    RegistrationChanged,
    Reinvite,
    Reinvited,
    RingLeg,
    SipAdapter,
)
from sip_media.nomedia import offer_sdp
from sip_media.sip.routing import TrunkConfig
from sip_media.sip.timers import TimerConfig
from tests.interop.sip.harness import engine_config, peers_ready
from tests.support.observer import Observer, wait_until
from tests.support.ports import free_port
from tests.support.sipp import Sipps

pytestmark = pytest.mark.interop


def remote(adapter: SipAdapter) -> str:
    host, port = adapter.local_address()
    return f"{host}:{port}"


async def answer_incoming(adapter: SipAdapter, observer: Observer, ring: bool = True) -> str:
    call = await observer.wait(IncomingCall)
    assert call.sdp is not None and b"m=audio" in call.sdp
    if ring:
        await adapter.execute(RingLeg(call.leg_id))
    await adapter.execute(AnswerLeg(call.leg_id))
    return call.leg_id


async def test_sipp_uac_basic_call_bye_from_sipp(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    proc = await peers.sipp("uac_basic", remote(adapter), "-s", "alice", "-d", "100")
    leg = await answer_incoming(adapter, observer)
    await observer.wait(Answered, leg)
    ended = await observer.wait(Ended, leg)
    assert (ended.cause, ended.sip_status, ended.by) == ("normal", 200, "remote")
    result = await peers.finish(proc)
    assert result.rc == 0, result.stderr
    assert adapter.stats["errors"] == 0


async def test_engine_uac_to_sipp_uas_bye_from_engine(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    port = free_port()
    proc = await peers.sipp("uas_basic", None, port=port)
    await adapter.execute(DialLeg("leg-1", f"sip:bob@127.0.0.1:{port}", caller_id="Alice"))
    ringing = await observer.wait(Provisional, "leg-1")
    assert ringing.status == 180
    answered = await observer.wait(Answered, "leg-1")
    assert answered.sdp is not None and b"m=audio" in answered.sdp
    await adapter.execute(HangupLeg("leg-1"))
    ended = await observer.wait(Ended, "leg-1")
    assert (ended.cause, ended.by) == ("normal", "local")
    result = await peers.finish(proc)
    assert result.rc == 0, result.stderr


async def test_engine_uac_bye_from_sipp_uas(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    port = free_port()
    proc = await peers.sipp("uas_bye", None, port=port)
    await adapter.execute(DialLeg("leg-2", f"sip:bob@127.0.0.1:{port}"))
    await observer.wait(Answered, "leg-2")
    ended = await observer.wait(Ended, "leg-2")
    assert (ended.cause, ended.by) == ("normal", "remote")
    assert (await peers.finish(proc)).rc == 0


async def test_sipp_uac_waits_for_bye_from_engine(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    proc = await peers.sipp("uac_wait_bye", remote(adapter), "-s", "alice")
    leg = await answer_incoming(adapter, observer, ring=False)
    await observer.wait(Answered, leg)
    await adapter.execute(HangupLeg(leg))
    ended = await observer.wait(Ended, leg)
    assert (ended.cause, ended.by) == ("normal", "local")
    assert (await peers.finish(proc)).rc == 0


async def test_sipp_cancels_before_answer(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    proc = await peers.sipp("uac_cancel", remote(adapter), "-s", "alice")
    call = await observer.wait(IncomingCall)
    await adapter.execute(RingLeg(call.leg_id))
    ended = await observer.wait(Ended, call.leg_id)
    assert (ended.cause, ended.sip_status, ended.by) == ("cancelled", 487, "remote")
    assert (await peers.finish(proc)).rc == 0


async def test_engine_uac_gets_486_busy(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    port = free_port()
    proc = await peers.sipp("uas_busy", None, port=port)
    await adapter.execute(DialLeg("leg-3", f"sip:bob@127.0.0.1:{port}"))
    ended = await observer.wait(Ended, "leg-3")
    assert (ended.cause, ended.sip_status, ended.by) == ("busy", 486, "remote")
    assert (await peers.finish(proc)).rc == 0  # SIPp got its ACK


async def test_engine_uac_no_answer_times_out_with_cancel(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    port = free_port()
    proc = await peers.sipp("uas_noanswer", None, port=port)
    await adapter.execute(DialLeg("leg-4", f"sip:bob@127.0.0.1:{port}", timeout=1.0))
    await observer.wait(Provisional, "leg-4")
    ended = await observer.wait(Ended, "leg-4")
    assert (ended.cause, ended.sip_status, ended.by) == ("no-answer", 487, "local")
    assert (await peers.finish(proc)).rc == 0


async def test_sipp_puts_engine_on_hold(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    proc = await peers.sipp("uac_hold", remote(adapter), "-s", "alice")
    leg = await answer_incoming(adapter, observer)
    reinvited = await observer.wait(Reinvited, leg)
    assert reinvited.hold and reinvited.sdp is not None and b"a=sendonly" in reinvited.sdp
    ended = await observer.wait(Ended, leg)
    assert ended.by == "remote"
    assert (await peers.finish(proc)).rc == 0


async def test_retransmitted_invite_is_absorbed(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    proc = await peers.sipp("uac_dup_invite", remote(adapter), "-s", "alice")
    call = await observer.wait(IncomingCall)
    await wait_until(lambda: adapter.stats["retransmissions_absorbed"] >= 1, "duplicate INVITE")
    result_task = asyncio.ensure_future(peers.finish(proc))
    await adapter.execute(AnswerLeg(call.leg_id))
    await observer.wait(Ended, call.leg_id)
    assert (await result_task).rc == 0
    assert sum(isinstance(o, IncomingCall) for o in observer.seen) == 1


async def test_lossy_network_calls_complete(peers: Sipps) -> None:
    """SIPp drops 10% of messages both ways; retransmissions must save every call.

    RFC 3261's own T1 (500 ms), not the suite's fast timers: SIPp retransmits on its own
    500 ms base, and with T1 = 100 ms our BYE transaction (Timer J = 64*T1) was gone
    before SIPp's fourth BYE arrived (7.5 s), which then got a 481. 60 calls: with 20, a
    run in ten happened to need no retransmission at all."""
    adapter = SipAdapter(engine_config(timers=TimerConfig(t1=0.5, t2=4.0, t4=5.0)), no_media=True)
    await adapter.start()
    try:
        adapter.auto_answer = True
        proc = await peers.sipp(
            "uac_basic", remote(adapter), "-s", "alice", "-d", "50", "-lost", "10",
            "-r", "20", "-l", "20",
            calls=60,
        )  # fmt: skip
        result = await peers.finish(proc, limit=120)
        assert result.rc == 0, result.stderr[-2000:]
        stats = adapter.stats
        assert stats["retransmissions"] + stats["retransmissions_absorbed"] > 0
    finally:
        await adapter.stop()


async def test_sipp_uac_basic_call_over_tcp(peers: Sipps) -> None:
    tcp_port = free_port()
    adapter = SipAdapter(engine_config(tcp=[("127.0.0.1", tcp_port)]), no_media=True)
    await adapter.start()
    try:
        observer = Observer(adapter)
        proc = await peers.sipp(
            "uac_basic", f"127.0.0.1:{tcp_port}", "-s", "alice", "-t", "t1", "-d", "50"
        )
        leg = await answer_incoming(adapter, observer)
        await observer.wait(Answered, leg)
        ended = await observer.wait(Ended, leg)
        assert ended.by == "remote"
        result = await peers.finish(proc)
        assert result.rc == 0, result.stderr
        assert adapter.stats["retransmissions"] == 0  # reliable transport: no timer G
    finally:
        await adapter.stop()


async def test_sipp_register_with_digest_auth(peers: Sipps) -> None:
    adapter = SipAdapter(engine_config(users={"alice": "s3cret"}), no_media=True)
    await adapter.start()
    try:
        observer = Observer(adapter)
        host, port = adapter.local_address()
        proc = await peers.sipp(
            "uac_register", f"{host}:{port}", "-s", "alice", "-au", "alice", "-ap", "s3cret"
        )
        registered = await observer.wait(RegistrationChanged)
        assert registered.aor == f"sip:alice@{host}:{port}"
        [binding] = registered.bindings
        assert binding.contact.startswith("sip:alice@127.0.0.1:")
        unregistered = await observer.wait_for(
            lambda o: isinstance(o, RegistrationChanged) and not o.bindings
        )
        assert unregistered.aor == registered.aor
        result = await peers.finish(proc)
        assert result.rc == 0, result.stderr[-3000:]

        bad = await peers.sipp(
            "uac_register_badpass", f"{host}:{port}", "-s", "alice", "-au", "alice", "-ap", "wrong"
        )
        assert (await peers.finish(bad)).rc == 0
        assert adapter.engine.registrar.current("alice") == []
    finally:
        await adapter.stop()


async def test_engine_answers_trunk_digest_challenge(peers: Sipps) -> None:
    port = free_port()
    trunk = TrunkConfig("itsp", ("127.0.0.1", port), "trunkuser", "trunkpw", from_user="+15550100")
    adapter = SipAdapter(engine_config(trunks={"itsp": trunk}), no_media=True)
    await adapter.start()
    try:
        observer = Observer(adapter)
        proc = await peers.sipp("uas_auth", None, port=port)
        await adapter.execute(DialLeg("trunk-1", "sip:5551234@itsp"))
        await observer.wait(Answered, "trunk-1")
        await adapter.execute(HangupLeg("trunk-1"))
        ended = await observer.wait(Ended, "trunk-1")
        assert ended.cause == "normal"
        result = await peers.finish(proc)
        assert result.rc == 0, result.stderr[-3000:]
    finally:
        await adapter.stop()


async def test_engine_puts_sipp_on_hold_with_reinvite(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    port = free_port()
    proc = await peers.sipp("uas_reinvite", None, port=port)
    await adapter.execute(DialLeg("leg-h", f"sip:bob@127.0.0.1:{port}"))
    await observer.wait(Answered, "leg-h")
    hold = offer_sdp().replace(b"a=sendrecv", b"a=sendonly")
    result = await adapter.execute(Reinvite("leg-h", hold))
    assert result is not None and result.status == 200
    await adapter.execute(HangupLeg("leg-h"))
    await observer.wait(Ended, "leg-h")
    assert (await peers.finish(proc)).rc == 0  # SIPp saw the ACK for its 2xx


async def test_engine_uac_over_tcp_to_sipp_uas(peers: Sipps) -> None:
    tcp_port = free_port()
    adapter = SipAdapter(engine_config(tcp=[("127.0.0.1", tcp_port)]), no_media=True)
    await adapter.start()
    try:
        observer = Observer(adapter)
        port = free_port()
        proc = await peers.sipp("uas_basic", None, "-t", "t1", port=port)
        await peers_ready(port)
        await adapter.execute(DialLeg("tcp-1", f"sip:bob@127.0.0.1:{port};transport=tcp"))
        await observer.wait(Answered, "tcp-1")
        await adapter.execute(HangupLeg("tcp-1"))
        ended = await observer.wait(Ended, "tcp-1")
        assert ended.cause == "normal"
        assert (await peers.finish(proc)).rc == 0
    finally:
        await adapter.stop()


async def test_engine_uac_early_media_then_ringing_then_answer(
    adapter: SipAdapter, observer: Observer, peers: Sipps
) -> None:
    port = free_port()
    proc = await peers.sipp("uas_early_media", None, port=port)
    await adapter.execute(DialLeg("em", f"sip:bob@127.0.0.1:{port}"))
    progress = await observer.wait(Provisional, "em")
    assert progress.status == 183 and progress.sdp is not None and b"m=audio" in progress.sdp
    ringing = await observer.wait_for(
        lambda o: isinstance(o, Provisional) and o.leg_id == "em" and o.status == 180
    )
    assert isinstance(ringing, Provisional) and ringing.sdp is None
    await observer.wait(Answered, "em")
    await adapter.execute(HangupLeg("em"))
    await observer.wait(Ended, "em")
    assert (await peers.finish(proc)).rc == 0


async def test_engine_uac_over_tcp_to_a_closed_port_fails_at_once(peers: Sipps) -> None:
    """A refused TCP connect ends the call with 503 now, not after Timer B (32 s here)."""
    tcp_port = free_port()
    config = engine_config(tcp=[("127.0.0.1", tcp_port)], timers=TimerConfig())
    adapter = SipAdapter(config, no_media=True)
    await adapter.start()
    try:
        observer = Observer(adapter)
        closed = free_port()  # nothing listens there
        await adapter.execute(DialLeg("tcp-x", f"sip:bob@127.0.0.1:{closed};transport=tcp"))
        ended = await observer.wait(Ended, "tcp-x", limit=5)
        assert (ended.cause, ended.sip_status) == ("unreachable", 503), ended
        assert adapter.stats["timeouts"] == 0
    finally:
        await adapter.stop()
