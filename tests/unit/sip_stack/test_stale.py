"""Stale dialogs on a manual clock: records taken from live sessions, then ended by a
fresh engine that never knew them (BYE, CANCEL + ACK of the 487, final response)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip_media.sip import notifications as n
from sip_media.sip.agent import Invitation
from sip_media.sip.dialog_record import (
    CSEQ_STEP,
    DialogKind,
    DialogRecord,
    DialogRecordError,
)
from sip_media.sip.engine import Engine, EngineConfig
from sip_media.sip.msgview import MsgView
from sip_media.sip.routing import TrunkConfig
from sip_media.sip.stale import NO_RESPONSE, end_stale, record_of
from sip_media.sip.states import InviteSessionState
from tests.unit.sip_stack.harness import PEER, SDP, Harness, invite

FAR = ("127.0.0.1", 5070)
TWO_VIAS = "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKproxy\n"


def reply(req: MsgView, status: int, to_tag: str = "", extra: str = "") -> str:
    """A response to ``req`` as the far end would send it."""
    to = req.to if req.to_tag or not to_tag else f"{req.to};tag={to_tag}"
    vias = "".join(f"Via: {v}\n" for v in req.vias)
    return (
        f"SIP/2.0 {status} Whatever\n{vias}From: {req.from_}\nTo: {to}\n"
        f"Call-ID: {req.call_id}\nCSeq: {req.cseq} {req.cseq_method}\n{extra}Content-Length: 0\n\n"
    )


async def wire(h: Harness, count: int = 1) -> list[tuple[MsgView, tuple[str, int]]]:
    """Let the task under test run until ``count`` messages are on the wire (bounded:
    it only needs its turns on the loop), and take them with their destinations."""
    for _ in range(200):
        if len(h.wire.sent) >= count:
            break
        await asyncio.sleep(0)
    out = [(MsgView.parse(data), dest) for data, dest in h.wire.sent]
    h.wire.sent.clear()
    assert len(out) == count, [m.method or m.status for m, _ in out]
    return out


async def sent(h: Harness, count: int = 1) -> list[MsgView]:
    return [msg for msg, _ in await wire(h, count)]


def start(coro: Coroutine[Any, Any, int]) -> asyncio.Task[int]:
    return asyncio.get_running_loop().create_task(coro)


def inbound(h: Harness, *, ring: bool = True, extra: str = "") -> Invitation:
    h.inject(invite(sdp=SDP, extra=extra))
    [inv] = h.sessions
    assert isinstance(inv, Invitation)
    if ring:
        inv.ring()
    h.take()
    return inv


def answered_inbound(h: Harness) -> Invitation:
    inv = inbound(h)
    inv.answer(SDP.encode())
    [ok] = h.take()
    h.inject(invite(method="ACK", branch="z9hG4bKack", to_tag=ok.to_tag))
    return inv


def outbound(h: Harness, *, ring_tag: str = "rt") -> tuple[Invitation, MsgView]:
    inv = h.engine.new_session("out-1", "outgoing")
    inv.dial(h.engine.resolve("sip:bob@127.0.0.1:5070"), "<sip:alice@127.0.0.1>", (), None, 0)
    [inv_msg] = h.take()
    if ring_tag:
        h.inject(reply(inv_msg, 180, ring_tag, "Contact: <sip:bob@127.0.0.1:5070>\n"))
    return inv, inv_msg


def taken(record: DialogRecord | None) -> DialogRecord:
    """The record as a new process reads it back from the log."""
    assert record is not None
    return DialogRecord.from_dict(record.to_dict())


# ------------------------------------------------------------------------- records
def test_records_follow_an_inbound_session(h: Harness) -> None:
    inv = inbound(h, ring=False, extra=TWO_VIAS)
    early = record_of(h.engine, inv)
    assert early is not None and early.kind is DialogKind.INBOUND_EARLY
    assert early.vias[0].endswith(";received=127.0.0.1") and "rport=5070" in early.vias[0]
    assert early.vias[1] == "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKproxy"
    assert (early.remote_tag, early.cseq, early.destination) == ("ft1", 1, PEER)
    assert early.local_uri == "<sip:alice@127.0.0.1>" and early.remote_uri == "<sip:bob@127.0.0.1>"
    inv.ring()
    [ringing] = h.take()
    assert ringing.to_tag == early.local_tag  # the tag our 1xx carried
    inv.answer(SDP.encode())
    [ok] = h.take()
    h.inject(invite(method="ACK", branch="z9hG4bKack", to_tag=ok.to_tag))
    confirmed = record_of(h.engine, inv)
    assert confirmed is not None and confirmed.kind is DialogKind.CONFIRMED
    assert (confirmed.local_tag, confirmed.remote_tag) == (ok.to_tag, "ft1")
    assert confirmed.remote_target == "sip:bob@127.0.0.1:5070"
    assert (confirmed.destination, confirmed.cseq, confirmed.leg_id) == (FAR, 0, inv.leg_id)
    h.inject(invite(method="BYE", branch="z9hG4bKbye", cseq=2, to_tag=ok.to_tag))
    assert record_of(h.engine, inv) is None


def test_records_follow_an_outbound_session(h: Harness) -> None:
    inv = h.engine.new_session("out-1", "outgoing")
    inv.dial(h.engine.resolve("sip:bob@127.0.0.1:5070"), "<sip:alice@127.0.0.1>", (), None, 0)
    [inv_msg] = h.take()
    before = record_of(h.engine, inv)
    assert before is not None and before.kind is DialogKind.OUTBOUND_EARLY
    assert before.vias == (inv_msg.vias[0],) and before.request_uri == inv_msg.ruri
    assert (before.remote_tag, before.remote_target, before.cseq) == ("", "", 1)
    h.inject(reply(inv_msg, 180, "rt", "Contact: <sip:bob@127.0.0.1:5072>\n"))
    ringing = record_of(h.engine, inv)
    assert ringing is not None and ringing.kind is DialogKind.OUTBOUND_EARLY
    assert (ringing.remote_tag, ringing.remote_target) == ("rt", "sip:bob@127.0.0.1:5072")
    assert ringing.local_tag == inv_msg.from_tag and ringing.destination == FAR
    h.inject(reply(inv_msg, 200, "rt", "Contact: <sip:bob@127.0.0.1:5072>\n"))
    confirmed = record_of(h.engine, inv)
    assert confirmed is not None and confirmed.kind is DialogKind.CONFIRMED
    assert confirmed.destination == ("127.0.0.1", 5072) and confirmed.cseq == 1


# ------------------------------------------------------------------------- ending
async def test_bye_from_a_fresh_engine(h: Harness) -> None:
    record = taken(record_of(h.engine, answered_inbound(h)))
    fresh = Harness()
    task = start(end_stale(fresh.engine, record, timeout=5))
    [bye] = await sent(fresh)
    assert bye.method == "BYE" and bye.ruri == "sip:bob@127.0.0.1:5070"
    assert (bye.call_id, bye.from_tag, bye.to_tag) == (record.call_id, record.local_tag, "ft1")
    assert bye.cseq == record.cseq + CSEQ_STEP
    assert bye.header("reason") == 'SIP;cause=480;text="Service restarted"'
    assert fresh.wire.sent == [] and fresh.engine.stats.counters["messages_out"] == 1
    fresh.clock.advance(0.5)  # Timer E: it is a real client transaction
    [again] = fresh.take()
    assert again.branch == bye.branch
    fresh.inject(reply(bye, 200))
    assert await task == 200


async def test_bye_challenged_by_the_trunk_is_answered_once(h: Harness) -> None:
    record = taken(record_of(h.engine, answered_inbound(h)))
    fresh = Harness()
    fresh.engine.config.trunks["itsp"] = TrunkConfig("itsp", FAR, username="u", password="pw")
    task = start(end_stale(fresh.engine, replace(record, trunk="itsp")))
    [bye] = await sent(fresh)
    fresh.inject(reply(bye, 407, extra='Proxy-Authenticate: Digest realm="itsp", nonce="n1"\n'))
    [bye2] = await sent(fresh)
    assert bye2.method == "BYE" and bye2.cseq == bye.cseq + 1
    assert 'username="u"' in (bye2.header("proxy-authorization") or "")
    fresh.inject(reply(bye2, 200))
    assert await task == 200


async def test_cancel_then_the_487_is_acked(h: Harness) -> None:
    inv, inv_msg = outbound(h)
    record = taken(record_of(h.engine, inv))
    fresh = Harness()
    task = start(end_stale(fresh.engine, record, timeout=5))
    [cancel] = await sent(fresh)
    assert cancel.method == "CANCEL" and cancel.ruri == inv_msg.ruri
    assert cancel.vias == [inv_msg.vias[0]] and cancel.branch == inv_msg.branch
    assert (cancel.from_, cancel.to, cancel.call_id) == (inv_msg.from_, inv_msg.to, inv_msg.call_id)
    assert (cancel.cseq, cancel.cseq_method) == (inv_msg.cseq, "CANCEL")
    assert "cause=480" in (cancel.header("reason") or "")
    fresh.inject(reply(cancel, 200))
    fresh.inject(reply(inv_msg, 487, "rt"))
    [ack] = await sent(fresh)
    assert ack.method == "ACK" and ack.ruri == inv_msg.ruri and ack.branch == inv_msg.branch
    assert (ack.to_tag, ack.cseq, ack.cseq_method) == ("rt", inv_msg.cseq, "ACK")
    assert await task == 487
    fresh.inject(reply(inv_msg, 487, "rt"))  # retransmitted 487: ACKed again
    [again] = fresh.take()
    assert again.method == "ACK" and again.branch == inv_msg.branch


async def test_cancel_refused_with_481_without_an_early_dialog_returns_at_once(
    h: Harness,
) -> None:
    inv, _ = outbound(h, ring_tag="")  # no 1xx with a To tag: nothing to BYE
    record = taken(record_of(h.engine, inv))
    fresh = Harness()
    task = start(end_stale(fresh.engine, record, timeout=5))
    [cancel] = await sent(fresh)
    fresh.inject(reply(cancel, 481))
    assert await task == 481
    assert fresh.take() == []


async def test_cancel_refused_with_481_byes_the_early_dialog(h: Harness) -> None:
    """The INVITE was answered and ACKed by the dead process, which never reported it:
    CANCEL finds no transaction, so the dialog the 1xx opened gets a BYE."""
    inv, inv_msg = outbound(h)
    record = taken(record_of(h.engine, inv))
    fresh = Harness()
    task = start(end_stale(fresh.engine, record, timeout=5))
    [cancel] = await sent(fresh)
    fresh.inject(reply(cancel, 481))
    [(bye, dest)] = await wire(fresh)
    assert bye.method == "BYE" and bye.ruri == "sip:bob@127.0.0.1:5070" and dest == FAR
    assert (bye.from_tag, bye.to_tag, bye.call_id) == (inv_msg.from_tag, "rt", inv_msg.call_id)
    assert bye.cseq == inv_msg.cseq + CSEQ_STEP
    fresh.inject(reply(bye, 200))
    assert await task == 200


@pytest.mark.parametrize("contact_host", ["127.0.0.1:5072", "192.0.2.1"])
async def test_a_2xx_crossing_the_cancel_is_acked_then_byed(h: Harness, contact_host: str) -> None:
    inv, inv_msg = outbound(h)
    record = taken(record_of(h.engine, inv))
    fresh = Harness()
    task = start(end_stale(fresh.engine, record, timeout=5))
    [cancel] = await sent(fresh)
    fresh.inject(reply(cancel, 200))
    ok = reply(inv_msg, 200, "rt", f"Contact: <sip:bob@{contact_host}>\n")
    fresh.inject(ok)
    (ack, ack_dest), (bye, bye_dest) = await wire(fresh, 2)
    expected = ("127.0.0.1", 5072) if contact_host.startswith("127.") else record.destination
    assert ack_dest == bye_dest == expected  # a Contact outside the allow-list: INVITE's hop
    assert ack.method == "ACK" and ack.branch != inv_msg.branch and ack.to_tag == "rt"
    assert ack.ruri == f"sip:bob@{contact_host}" and ack.cseq == inv_msg.cseq
    assert bye.method == "BYE" and bye.cseq == inv_msg.cseq + 1 and bye.to_tag == "rt"
    fresh.inject(ok)  # retransmitted 2xx: the same ACK again
    [again] = fresh.take()
    assert again.method == "ACK" and again.branch == ack.branch
    fresh.inject(reply(bye, 200))
    assert await task == 200
    assert fresh.engine.stats.counters["dropped_by_allow_list"] == 0


async def test_final_response_to_an_unanswered_inbound_invite(h: Harness) -> None:
    inv = inbound(h, extra=TWO_VIAS)
    record = taken(record_of(h.engine, inv))
    fresh = Harness()
    task = start(end_stale(fresh.engine, record, reason_code=503, timeout=5))
    [final] = await sent(fresh)
    assert (final.status, final.cseq, final.cseq_method) == (503, 1, "INVITE")
    assert final.vias == list(record.vias) and len(final.vias) == 2
    assert (final.from_tag, final.to_tag, final.call_id) == ("ft1", record.local_tag, "call-1")
    assert final.header("reason") == 'SIP;cause=503;text="Service restarted"'
    fresh.clock.advance(0.5)  # Timer G until the ACK
    [again] = fresh.take()
    assert again.status == 503
    fresh.inject(invite(sdp=SDP, extra=TWO_VIAS))  # a retransmitted INVITE gets it again
    [again] = fresh.take()
    assert again.status == 503 and fresh.sessions == []
    fresh.inject(invite(method="ACK", to_tag=record.local_tag))
    assert await task == 503
    fresh.clock.advance(30)
    assert fresh.take() == []


async def test_answer_sent_adds_a_bye_after_the_final_response(h: Harness) -> None:
    """We had sent our 2xx when we died (no LegAnswered logged): 480 for a caller that
    never got it, BYE for one that did."""
    inv = inbound(h)
    record = taken(record_of(h.engine, inv))
    fresh = Harness()
    task = start(end_stale(fresh.engine, record, timeout=5, answer_sent=True))
    (final, final_dest), (bye, bye_dest) = await wire(fresh, 2)
    assert final.status == 480 and final_dest == PEER
    assert bye.method == "BYE" and bye.ruri == "sip:bob@127.0.0.1:5070" and bye_dest == FAR
    assert (bye.from_tag, bye.to_tag) == (record.local_tag, "ft1")
    assert bye.from_ == f"<sip:alice@127.0.0.1>;tag={record.local_tag}"
    fresh.inject(reply(bye, 200))
    assert await task == 200


# ------------------------------------------------------------------------ refusals
# ------------------------------------------------------------- held ACK, stray 2xx
def held_answer(h: Harness, contact: str = "127.0.0.1:5072") -> tuple[Invitation, str]:
    """An outbound session answered with ``ack_hold`` on: the 2xx (as text), no ACK."""
    h.engine.config.ack_hold = 2.0
    inv, inv_msg = outbound(h, ring_tag="")
    ok = reply(inv_msg, 200, "rt", f"Contact: <sip:bob@{contact}>\n")
    h.inject(ok)
    assert h.take() == []  # held
    assert inv.state is InviteSessionState.CONNECTED and h.of(n.SessionDidStart)
    return inv, ok


def test_the_ack_waits_for_confirm_then_answers_retransmissions(h: Harness) -> None:
    inv, ok = held_answer(h)
    h.inject(ok)  # the far end retransmits while we hold: still nothing
    assert h.take() == []
    inv.confirm()
    [(ack, dest)] = [(MsgView.parse(d), a) for d, a in h.wire.sent]
    h.wire.sent.clear()
    assert ack.method == "ACK" and ack.to_tag == "rt" and dest == ("127.0.0.1", 5072)
    h.inject(ok)
    [again] = h.take()
    assert again.method == "ACK" and again.branch == ack.branch
    inv.confirm()  # once only
    h.clock.advance(2.0)  # the bound's timer was cancelled
    assert h.take() == []


def test_a_held_ack_goes_when_the_bound_runs_out(h: Harness) -> None:
    held_answer(h)
    h.clock.advance(1.9)
    assert h.take() == []
    h.clock.advance(0.1)
    [ack] = h.take()
    assert ack.method == "ACK"


def test_hanging_up_sends_the_held_ack_before_the_bye(h: Harness) -> None:
    inv, _ = held_answer(h)
    inv.hangup()
    ack, bye = h.take()
    assert (ack.method, bye.method) == ("ACK", "BYE")
    h.clock.advance(2.0)
    assert {m.method for m in h.take()} == {"BYE"}  # Timer E only: no second ACK


@pytest.mark.parametrize("contact_host", ["127.0.0.1:5072", "192.0.2.1"])
async def test_a_fresh_engine_acks_and_byes_a_stray_2xx(h: Harness, contact_host: str) -> None:
    """The process holding the ACK died: the far end's retransmitted 2xx reaches a new
    one, which knows no such INVITE."""
    _, ok = held_answer(h, contact_host)
    answer = MsgView.parse(ok.replace("\n", "\r\n").encode())
    fresh = Harness()
    fresh.inject(ok, source=FAR)
    (ack, ack_dest), (bye, bye_dest) = await wire(fresh, 2)
    expected = ("127.0.0.1", 5072) if contact_host.startswith("127.") else FAR
    assert ack_dest == bye_dest == expected  # a Contact outside the allow-list: the source
    assert ack.method == "ACK" and ack.ruri == f"sip:bob@{contact_host}"
    assert (ack.call_id, ack.from_tag, ack.to_tag) == (
        answer.call_id, answer.from_tag, "rt",
    )  # fmt: skip
    assert ack.cseq == answer.cseq and ack.branch != answer.branch
    assert bye.method == "BYE" and bye.cseq == answer.cseq + 1 and bye.to_tag == "rt"
    assert "cause=480" in (bye.header("reason") or "")
    fresh.inject(ok, source=FAR)  # it missed our ACK: the same ACK, no second BYE
    [again] = fresh.take()
    assert again.method == "ACK" and again.branch == ack.branch
    fresh.inject(reply(bye, 200), source=FAR)
    fresh.clock.advance(5.0)  # the BYE's transaction is over: nothing retransmitted
    assert fresh.take() == []
    counters = fresh.engine.stats.counters
    assert (counters["stray_answers_ended"], counters["dropped_by_allow_list"]) == (1, 0)


def test_a_2xx_without_tags_names_no_dialog_and_gets_nothing(h: Harness) -> None:
    _, inv_msg = outbound(h, ring_tag="")
    fresh = Harness()
    fresh.inject(reply(inv_msg, 200), source=FAR)  # no To tag
    assert fresh.take() == [] and fresh.engine.stats.counters["stray_answers_ended"] == 0


def refused_records(h: Harness) -> list[DialogRecord]:
    confirmed = taken(record_of(h.engine, answered_inbound(h)))
    other = Harness()
    early_in = taken(record_of(other.engine, inbound(other)))
    inv, _ = outbound(other)
    early_out = taken(record_of(other.engine, inv))
    return [replace(r, destination=("192.0.2.1", 5060)) for r in (confirmed, early_in, early_out)]


async def test_a_destination_outside_the_allow_list_is_refused_and_nothing_sent(
    h: Harness,
) -> None:
    for record in refused_records(h):
        fresh = Harness()
        with pytest.raises(DialogRecordError) as caught:
            await end_stale(fresh.engine, record, timeout=1)
        assert caught.value.code == "destination_refused" and caught.value.field == "destination"
        assert fresh.wire.sent == []
        counters = fresh.engine.stats.counters
        assert (counters["messages_out"], counters["dropped_by_allow_list"]) == (0, 1)


async def test_refused_on_a_real_udp_engine_too(h: Harness) -> None:
    [record, *_] = refused_records(h)
    engine = Engine(EngineConfig(udp=[("127.0.0.1", 0)], allowed_destinations=("127.0.0.0/8",)))
    await engine.start()
    try:
        with pytest.raises(DialogRecordError):
            await end_stale(engine, record, timeout=1)
        assert engine.stats.counters["messages_out"] == 0
        assert engine.stats.counters["dropped_by_allow_list"] == 1
    finally:
        await engine.stop()


async def test_no_final_within_the_bound_is_408(h: Harness) -> None:
    record = taken(record_of(h.engine, answered_inbound(h)))
    fresh = Harness()
    assert await end_stale(fresh.engine, record, timeout=0.05) == NO_RESPONSE


async def test_a_dialog_live_in_this_engine_is_not_touched(h: Harness) -> None:
    inv = answered_inbound(h)
    record = taken(record_of(h.engine, inv))
    with pytest.raises(DialogRecordError) as caught:
        await end_stale(h.engine, record, timeout=1)
    assert caught.value.code == "live_dialog" and h.take() == []


async def test_bad_arguments_raise_clear_errors(h: Harness) -> None:
    record = taken(record_of(h.engine, answered_inbound(h)))
    fresh = Harness()
    with pytest.raises(DialogRecordError):
        await end_stale(fresh.engine, record.to_dict(), timeout=1)  # type: ignore[arg-type]
    for code in (200, 180, 700, True):
        with pytest.raises(ValueError):
            await end_stale(fresh.engine, record, reason_code=code, timeout=1)
    empty = Engine(EngineConfig(udp=[]), fresh.clock)
    with pytest.raises(DialogRecordError) as caught:
        await end_stale(empty, record, timeout=1)
    assert caught.value.code == "no_transport"
    assert fresh.wire.sent == []


# --------------------------------------------------------------------- odd records
ODD_TEXT = st.text(
    alphabet=st.sampled_from(list(' ;,<>:@"\\=%[]/?!tagbranchz9hG4bK\u00e9\u2028\t'))
)
ODD_FIELDS = (
    "call_id",
    "local_tag",
    "remote_tag",
    "local_uri",
    "remote_uri",
    "remote_target",
    "request_uri",
    "route_set",
    "vias",
    "trunk",
)


def base_records() -> list[DialogRecord]:
    h = Harness()
    confirmed = taken(record_of(h.engine, answered_inbound(h)))
    other = Harness()
    early_in = taken(record_of(other.engine, inbound(other)))
    inv, _ = outbound(other)
    return [confirmed, early_in, taken(record_of(other.engine, inv))]


BASES = base_records()


@settings(max_examples=150, deadline=None)
@given(base=st.sampled_from(BASES), name=st.sampled_from(ODD_FIELDS), text=ODD_TEXT)
def test_odd_records_end_or_fail_clearly(base: DialogRecord, name: str, text: str) -> None:
    """Whatever a record holds, end_stale returns a status or raises DialogRecordError,
    and sends only to loopback."""
    data = base.to_dict()
    data[name] = [text] if name in ("route_set", "vias") else text
    try:
        record = DialogRecord.from_dict(data)
    except DialogRecordError:
        return
    fresh = Harness()

    async def run() -> int | None:
        try:
            return await end_stale(fresh.engine, record, timeout=0.01, answer_sent=True)
        except DialogRecordError:
            return None

    status = asyncio.run(run())
    assert status is None or 300 <= status <= 699 or status == 200
    assert all(dest[0] == "127.0.0.1" for _, dest in fresh.wire.sent)
