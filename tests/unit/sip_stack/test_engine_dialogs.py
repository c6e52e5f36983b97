"""Engine + INVITE session behaviour on a manual clock (no sockets, no sleeping)."""

from __future__ import annotations

import pytest

from sip_media.sip import notifications as n
from sip_media.sip.agent import Invitation
from sip_media.sip.routing import Route
from sip_media.sip.states import InviteSessionState, ReinviteState
from sip_media.sip.transaction import TxState
from tests.unit.sip_stack.harness import HOLD_SDP, SDP, Harness, invite


def only_session(h: Harness) -> Invitation:
    assert len(h.sessions) == 1
    inv = h.sessions[0]
    assert isinstance(inv, Invitation)
    return inv


def answered_call(h: Harness) -> tuple[Invitation, str]:
    h.inject(invite(sdp=SDP))
    inv = only_session(h)
    inv.answer(SDP.encode())
    ok = h.take()[-1]
    assert ok.status == 200
    h.inject(invite(method="ACK", branch="z9hG4bKack", to_tag=ok.to_tag))
    assert inv.state is InviteSessionState.CONNECTED
    h.take()
    return inv, ok.to_tag


def test_uas_call_lifecycle(h: Harness) -> None:
    h.inject(invite(sdp=SDP))
    inv = only_session(h)
    assert inv.state is InviteSessionState.INCOMING
    [trying] = h.take()
    assert trying.status == 100 and not trying.to_tag
    assert ";received=127.0.0.1" in trying.vias[0] and "rport=5070" in trying.vias[0]

    inv.ring()
    [ringing] = h.take()
    assert ringing.status == 180 and ringing.to_tag
    assert inv.state is InviteSessionState.EARLY

    inv.answer(SDP.encode())
    [ok] = h.take()
    assert ok.status == 200 and ok.to_tag == ringing.to_tag and ok.body
    assert inv.state is InviteSessionState.CONNECTING
    h.clock.advance(0.5)  # 2xx retransmitted until the ACK (RFC 6026, timer G/L)
    assert [m.status for m in h.take()] == [200]

    h.inject(invite(method="ACK", branch="z9hG4bKack", to_tag=ok.to_tag))
    assert inv.state is InviteSessionState.CONNECTED
    assert h.of(n.SessionDidStart)
    h.clock.advance(10)
    assert h.take() == []  # ACKed: no more 2xx

    h.inject(invite(method="BYE", branch="z9hG4bKbye", cseq=2, to_tag=ok.to_tag))
    [bye_ok] = h.take()
    assert (bye_ok.status, bye_ok.cseq_method) == (200, "BYE")
    assert inv.state is InviteSessionState.DISCONNECTED
    [ended] = h.of(n.SessionDidEnd)
    assert ended == n.SessionDidEnd(inv.leg_id, "normal", 200, "remote")
    assert [x.new for x in h.of(n.SessionDidChangeState)] == [  # type: ignore[attr-defined]
        "early",
        "connecting",
        "connected",
        "disconnected",
    ]


def test_retransmitted_invite_is_absorbed(h: Harness) -> None:
    h.inject(invite(sdp=SDP))
    inv = only_session(h)
    inv.ring()
    h.take()
    h.inject(invite(sdp=SDP))
    assert len(h.sessions) == 1
    assert [m.status for m in h.take()] == [180]  # last provisional repeated
    assert h.engine.stats.counters["retransmissions_absorbed"] == 1


def test_cancel_matches_invite_200_and_487(h: Harness) -> None:
    h.inject(invite(sdp=SDP))
    inv = only_session(h)
    inv.ring()
    h.take()
    h.inject(invite(method="CANCEL"))
    sent = h.take()
    assert [(m.status, m.cseq_method) for m in sent] == [(200, "CANCEL"), (487, "INVITE")]
    assert inv.state is InviteSessionState.DISCONNECTED
    assert h.of(n.SessionDidEnd)[0] == n.SessionDidEnd(inv.leg_id, "cancelled", 487, "remote")
    h.inject(invite(method="ACK", to_tag=sent[1].to_tag))  # ACK for 487: same branch
    tx = h.engine.table.server[("z9hG4bKa1", "127.0.0.1:5070", "INVITE")]
    assert tx.state is TxState.CONFIRMED


def test_cancel_without_matching_invite_gets_481(h: Harness) -> None:
    h.inject(invite(method="CANCEL", branch="z9hG4bKnone"))
    [resp] = h.take()
    assert (resp.status, resp.cseq_method) == (481, "CANCEL")


def test_in_dialog_request_for_unknown_dialog_gets_481(h: Harness) -> None:
    h.inject(invite(method="BYE", cseq=2, to_tag="nope", branch="z9hG4bKb"))
    assert h.take()[0].status == 481


def test_remote_hold_reinvite_is_answered_recvonly() -> None:
    h = Harness(answer_sdp=lambda inv, offer: SDP.replace("sendrecv", "recvonly").encode())
    _inv, tag = answered_call(h)
    h.inject(invite(branch="z9hG4bKre", cseq=2, to_tag=tag, sdp=HOLD_SDP))
    sent = h.take()
    assert [m.status for m in sent] == [100, 200]
    assert b"a=recvonly" in sent[1].body
    [got] = h.of(n.SessionGotReinvite)
    assert got.hold  # type: ignore[attr-defined]


async def test_glare_reinvite_gets_491(h: Harness) -> None:
    inv, tag = answered_call(h)
    future = inv.reinvite(SDP.encode())
    assert inv.reinvite_state is ReinviteState.SENT
    ours = h.take()
    assert ours[0].method == "INVITE" and ours[0].is_request
    h.inject(invite(branch="z9hG4bKglare", cseq=2, to_tag=tag, sdp=SDP))
    assert [m.status for m in h.take()] == [100, 491]
    assert not future.done()


def test_out_of_order_cseq_gets_500(h: Harness) -> None:
    _inv, tag = answered_call(h)
    h.inject(invite(method="INFO", branch="z9hG4bKi1", cseq=5, to_tag=tag))
    h.inject(invite(method="INFO", branch="z9hG4bKi2", cseq=4, to_tag=tag))
    assert [m.status for m in h.take()] == [200, 500]


def test_info_dtmf_relay(h: Harness) -> None:
    _inv, tag = answered_call(h)
    body = "Signal=5\nDuration=160\n"
    h.inject(
        invite(method="INFO", branch="z9hG4bKi", cseq=2, to_tag=tag,
               extra="Content-Type: application/dtmf-relay\n").replace(
            "Content-Length: 0\n\n", f"Content-Length: {len(body) + 2}\n\n{body}"
        )
    )  # fmt: skip
    assert h.take()[0].status == 200
    [info] = h.of(n.SessionGotInfo)
    assert (info.digit, info.duration_ms) == ("5", 160)  # type: ignore[attr-defined]


async def test_refer_gets_202_and_sipfrag_notify(h: Harness) -> None:
    _inv, tag = answered_call(h)
    h.inject(
        invite(method="REFER", branch="z9hG4bKr", cseq=2, to_tag=tag,
               extra="Refer-To: <sip:carol@127.0.0.1?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>\n")
    )  # fmt: skip
    sent = h.take()
    assert sent[0].status == 202
    notify = sent[1]
    assert notify.method == "NOTIFY" and notify.body == b"SIP/2.0 100 Trying\r\n"
    assert notify.header("event") == "refer;id=2"
    assert (notify.header("content-type") or "").startswith("message/sipfrag")
    [refer] = h.of(n.SessionGotRefer)
    assert refer.replaces == "abc;to-tag=1;from-tag=2"  # type: ignore[attr-defined]


def test_malformed_request_gets_400_with_reason(h: Harness) -> None:
    h.inject(invite().replace("CSeq: 1 INVITE", "CSeq: one INVITE"))
    [(raw, dest)] = h.wire.sent
    status_line = raw.split(b"\r\n", 1)[0].decode()
    assert status_line.startswith("SIP/2.0 400 ") and "CSeq" in status_line
    assert dest == ("127.0.0.1", 5070)
    assert h.engine.stats.counters["malformed_requests"] == 1


def test_malformed_response_is_dropped_and_counted(h: Harness) -> None:
    h.inject("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\n\n")
    assert h.take() == []
    assert h.engine.stats.counters["malformed_responses"] == 1


def test_responses_outside_allow_list_are_dropped(h: Harness) -> None:
    h.inject(invite(method="OPTIONS", branch="z9hG4bKo"), source=("192.0.2.7", 5060))
    assert h.take() == []
    assert h.engine.stats.counters["dropped_by_allow_list"] == 1


def test_rate_limit_answers_503_with_retry_after(h: Harness) -> None:
    h.engine.limiter._limit = 2
    for i in range(3):
        h.inject(invite(method="OPTIONS", branch=f"z9hG4bKo{i}"))
    sent = h.take()
    assert [m.status for m in sent] == [200, 200, 503]
    assert sent[2].header("retry-after")


async def test_uac_early_dialog_then_answer_then_bye(h: Harness) -> None:
    inv = h.engine.new_session("leg-1", "outgoing")
    route = Route(request_uri="sip:bob@127.0.0.1:5070", address=("127.0.0.1", 5070))
    inv.dial(route, "<sip:alice@127.0.0.1>", (), SDP.encode(), timeout=0)
    [req] = h.take()
    assert req.method == "INVITE" and req.body
    reply = (
        "SIP/2.0 {code}\nVia: {via}\nFrom: {from_}\nTo: <sip:bob@127.0.0.1:5070>;tag=rt1\n"
        "Call-ID: {cid}\nCSeq: 1 INVITE\nContact: <sip:bob@127.0.0.1:5070>\nContent-Length: 0\n\n"
    )
    fill = {"via": req.vias[0], "from_": req.from_, "cid": req.call_id}
    h.inject(reply.format(code="183 Session Progress", **fill))
    h.inject(reply.format(code="180 Ringing", **fill))
    assert inv.state is InviteSessionState.EARLY
    assert [x.status for x in h.of(n.SessionGotRingIndication)] == [183, 180]  # type: ignore[attr-defined]
    h.inject(reply.format(code="200 OK", **fill))
    [ack] = h.take()
    assert ack.method == "ACK" and ack.to_tag == "rt1" and ack.cseq == 1
    assert inv.state is InviteSessionState.CONNECTED
    h.inject(reply.format(code="200 OK", **fill))  # retransmitted 2xx is re-ACKed
    assert [m.method for m in h.take()] == ["ACK"]
    inv.hangup()
    [bye] = h.take()
    assert bye.method == "BYE" and bye.cseq == 2 and bye.to_tag == "rt1"
    assert inv.state is InviteSessionState.DISCONNECTING


async def test_uac_hangup_before_provisional_cancels_after_it(h: Harness) -> None:
    inv = h.engine.new_session("leg-2", "outgoing")
    route = Route(request_uri="sip:bob@127.0.0.1:5070", address=("127.0.0.1", 5070))
    inv.dial(route, "<sip:alice@127.0.0.1>", (), None, timeout=0)
    [req] = h.take()
    inv.hangup()
    assert h.take() == []  # §9.1: no CANCEL before a provisional
    h.inject(
        f"SIP/2.0 100 Trying\nVia: {req.vias[0]}\nFrom: {req.from_}\nTo: <sip:bob@x>\n"
        f"Call-ID: {req.call_id}\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
    )
    [cancel] = h.take()
    assert cancel.method == "CANCEL" and cancel.branch == req.branch


@pytest.mark.parametrize("code", [486, 603])
async def test_uac_rejected_acks_and_fails(h: Harness, code: int) -> None:
    inv = h.engine.new_session("leg-3", "outgoing")
    route = Route(request_uri="sip:bob@127.0.0.1:5070", address=("127.0.0.1", 5070))
    inv.dial(route, "<sip:alice@127.0.0.1>", (), None, timeout=0)
    [req] = h.take()
    h.inject(
        f"SIP/2.0 {code} Nope\nVia: {req.vias[0]}\nFrom: {req.from_}\nTo: <sip:bob@x>;tag=z\n"
        f"Call-ID: {req.call_id}\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
    )
    [ack] = h.take()
    assert ack.method == "ACK" and ack.branch == req.branch and ack.to_tag == "z"
    [fail] = h.of(n.SessionDidFail)
    assert fail.status == code and fail.by == "remote"  # type: ignore[attr-defined]
    assert inv.state is InviteSessionState.DISCONNECTED


def test_invite_with_replaces_names_the_replaced_leg(h: Harness) -> None:
    inv, tag = answered_call(h)
    h.sessions.clear()
    h.inject(
        invite(branch="z9hG4bKrep", call_id="call-2", sdp=SDP,
               extra=f"Replaces: call-1;to-tag={tag};from-tag=ft1\n")
    )  # fmt: skip
    new = only_session(h)
    assert new.replaces == inv.leg_id
    assert [m.status for m in h.take()] == [100]


def test_invite_with_unknown_replaces_gets_481(h: Harness) -> None:
    h.inject(
        invite(branch="z9hG4bKrep", call_id="call-2", sdp=SDP,
               extra="Replaces: nope;to-tag=a;from-tag=b\n")
    )  # fmt: skip
    assert [m.status for m in h.take()] == [100, 481]
    assert h.sessions == []


def test_invite_for_a_foreign_host_is_refused_no_open_relay(h: Harness) -> None:
    h.inject(invite(sdp=SDP).replace("INVITE sip:alice@127.0.0.1:5060", "INVITE sip:x@192.0.2.9"))
    assert [m.status for m in h.take()] == [100, 403]
    assert h.sessions == []


async def test_dial_to_a_forbidden_destination_fails_without_sending(h: Harness) -> None:
    inv = h.engine.new_session("leg-x", "outgoing")
    route = Route(request_uri="sip:bob@192.0.2.1", address=("192.0.2.1", 5060))
    inv.dial(route, "<sip:alice@127.0.0.1>", (), None, timeout=0)
    assert h.wire.sent == []
    assert inv.state is InviteSessionState.DISCONNECTED
    [fail] = h.of(n.SessionDidFail)
    assert (fail.status, fail.reason) == (503, "unreachable")  # type: ignore[attr-defined]
    assert h.engine.stats.counters["dropped_by_allow_list"] == 1


async def test_uac_no_answer_timeout_cancels(h: Harness) -> None:
    inv = h.engine.new_session("leg-t", "outgoing")
    route = Route(request_uri="sip:bob@127.0.0.1:5070", address=("127.0.0.1", 5070))
    inv.dial(route, "<sip:alice@127.0.0.1>", (), None, timeout=30)
    [req] = h.take()
    h.inject(
        f"SIP/2.0 180 Ringing\nVia: {req.vias[0]}\nFrom: {req.from_}\nTo: <sip:bob@x>;tag=q\n"
        f"Call-ID: {req.call_id}\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
    )
    h.clock.advance(29.9)
    assert [m.method for m in h.take()] == []
    h.clock.advance(0.2)
    [cancel] = h.take()
    assert cancel.method == "CANCEL"
    h.inject(
        f"SIP/2.0 487 Request Terminated\nVia: {req.vias[0]}\nFrom: {req.from_}\n"
        f"To: <sip:bob@x>;tag=q\nCall-ID: {req.call_id}\nCSeq: 1 INVITE\nContent-Length: 0\n\n"
    )
    [ended] = h.of(n.SessionDidEnd)
    assert (ended.cause, ended.status, ended.by) == ("no-answer", 487, "local")  # type: ignore[attr-defined]


def test_require_of_an_unimplemented_extension_gets_420(h: Harness) -> None:
    h.inject(invite(sdp=SDP, extra="Require: 100rel\n"))
    sent = h.take()
    assert [m.status for m in sent] == [100, 420]
    assert sent[1].header("unsupported") == "100rel"
    assert h.sessions == []


async def test_second_forked_2xx_is_acked_and_byed(h: Harness) -> None:
    inv = h.engine.new_session("leg-f", "outgoing")
    route = Route(request_uri="sip:bob@127.0.0.1:5070", address=("127.0.0.1", 5070))
    inv.dial(route, "<sip:alice@127.0.0.1>", (), None, timeout=0)
    [req] = h.take()
    ok = (
        "SIP/2.0 200 OK\nVia: {via}\nFrom: {from_}\nTo: <sip:bob@x>;tag={tag}\nCall-ID: {cid}\n"
        "CSeq: 1 INVITE\nContact: <sip:bob@127.0.0.1:5070>\nContent-Length: 0\n\n"
    )
    fill = {"via": req.vias[0], "from_": req.from_, "cid": req.call_id}
    h.inject(ok.format(tag="one", **fill))
    assert [m.method for m in h.take()] == ["ACK"]
    h.inject(ok.format(tag="two", **fill))
    ack, bye = h.take()
    assert (ack.method, ack.to_tag, ack.cseq) == ("ACK", "two", 1)
    assert (bye.method, bye.to_tag, bye.cseq) == ("BYE", "two", 2)
    assert inv.state is InviteSessionState.CONNECTED and inv.dialog is not None
    assert inv.dialog.remote_tag == "one"


def test_uas_hangup_before_ack_waits_for_the_ack(h: Harness) -> None:
    h.inject(invite(sdp=SDP))
    inv = only_session(h)
    inv.answer(SDP.encode())
    ok = h.take()[-1]
    inv.hangup()
    assert h.take() == []  # §15: BYE only after the ACK
    h.inject(invite(method="ACK", branch="z9hG4bKack", to_tag=ok.to_tag))
    [bye] = h.take()
    assert bye.method == "BYE" and inv.state is InviteSessionState.DISCONNECTING
