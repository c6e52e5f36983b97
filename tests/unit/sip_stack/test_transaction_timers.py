"""RFC 3261 §17 transaction timers driven by the manual clock (no sleeping)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from sip_media.sip.stats import Stats
from sip_media.sip.timers import ManualScheduler, TimerConfig
from sip_media.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    TransactionTable,
    TxState,
)

T = TimerConfig(t1=0.5, t2=4.0, t4=5.0)


class Wire:
    def __init__(self, clock: ManualScheduler) -> None:
        self.clock = clock
        self.sent: list[tuple[float, bytes]] = []

    def send(self, data: bytes) -> bool:
        self.sent.append((self.clock.now(), data))
        return True

    def times(self, data: bytes) -> list[float]:
        return [round(t, 3) for t, d in self.sent if d == data]


def client(
    invite: bool, reliable: bool = False
) -> tuple[ClientTransaction, Wire, ManualScheduler, list[Any]]:
    clock = ManualScheduler()
    wire = Wire(clock)
    events: list[Any] = []
    table = TransactionTable()
    tx = ClientTransaction(
        ("z9hG4bK1", "INVITE" if invite else "OPTIONS"),
        invite,
        b"REQ",
        wire.send,
        reliable,
        clock,
        T,
        Stats(),
        on_response=lambda status, msg: events.append(status),
        on_timeout=lambda: events.append("timeout"),
        ack_factory=lambda msg: b"ACK",
        on_terminated=table.drop,
    )
    table.add_client(tx)
    tx.start()
    events.append(table)
    return tx, wire, clock, events


def test_timer_a_doubles_until_timer_b_fires() -> None:
    tx, wire, clock, events = client(invite=True)
    clock.advance(40)
    # sent at 0, then retransmitted after 0.5, 1, 2, 4, 8, 16 (cumulative) until B=32s
    assert wire.times(b"REQ") == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert "timeout" in events
    assert tx.state is TxState.TERMINATED
    assert tx.stats.counters["retransmissions"] == 6
    assert not events[0].client  # removed from the table


def test_provisional_stops_timer_a_and_b() -> None:
    tx, wire, clock, events = client(invite=True)
    clock.advance(0.6)
    tx.receive_response(180, None)
    clock.advance(100)
    assert wire.times(b"REQ") == [0.0, 0.5]
    assert tx.state is TxState.PROCEEDING
    assert "timeout" not in events


def test_invite_non2xx_acks_and_timer_d() -> None:
    tx, wire, clock, events = client(invite=True)
    tx.receive_response(486, None)
    assert tx.state is TxState.COMPLETED
    assert wire.times(b"ACK") == [0.0]
    clock.advance(1)
    tx.receive_response(486, None)  # retransmitted final: ACK again, not to TU
    assert wire.times(b"ACK") == [0.0, 1.0]
    assert events[1:].count(486) == 1
    clock.advance(31.5)
    assert tx.state is TxState.TERMINATED  # timer D = 32 s


def test_invite_2xx_accepted_then_timer_m() -> None:
    tx, _wire, clock, events = client(invite=True)
    tx.receive_response(200, None)
    tx.receive_response(200, None)  # retransmitted 2xx goes to the TU (it re-ACKs)
    assert tx.state is TxState.ACCEPTED
    assert events[1:] == [200, 200]
    clock.advance(32)
    assert tx.state is TxState.TERMINATED


def test_timer_e_caps_at_t2_and_timer_f_times_out() -> None:
    tx, wire, clock, events = client(invite=False)
    clock.advance(33)
    times = wire.times(b"REQ")
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[:5] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert max(gaps) == 4.0
    assert "timeout" in events
    assert tx.state is TxState.TERMINATED


def test_timer_e_in_proceeding_uses_t2() -> None:
    tx, wire, clock, _ = client(invite=False)
    tx.receive_response(100, None)
    clock.advance(0.5)  # first E fires at 0.5 in Proceeding -> next at +T2
    clock.advance(4.0)
    assert wire.times(b"REQ") == [0.0, 0.5, 4.5]


def test_timer_k_after_final() -> None:
    tx, _, clock, events = client(invite=False)
    tx.receive_response(200, None)
    tx.receive_response(200, None)  # absorbed
    assert events[1:] == [200]
    clock.advance(4.9)
    assert tx.state is TxState.COMPLETED
    clock.advance(0.2)
    assert tx.state is TxState.TERMINATED


def test_reliable_transport_has_no_retransmissions_and_zero_k() -> None:
    tx, wire, clock, _ = client(invite=False, reliable=True)
    clock.advance(10)
    assert wire.times(b"REQ") == [0.0]
    tx.receive_response(200, None)
    clock.advance(0)
    assert tx.state is TxState.TERMINATED


def server(
    invite: bool, reliable: bool = False, on_ack_timeout: Callable[[], None] | None = None
) -> tuple[ServerTransaction, Wire, ManualScheduler]:
    clock = ManualScheduler()
    wire = Wire(clock)
    tx = ServerTransaction(
        ("z9hG4bK2", "h:5060", "INVITE" if invite else "BYE"),
        invite,
        wire.send,
        reliable,
        clock,
        T,
        Stats(),
        on_ack_timeout=on_ack_timeout,
    )
    return tx, wire, clock


def test_server_invite_timer_g_and_h() -> None:
    timed_out: list[bool] = []
    tx, wire, clock = server(invite=True, on_ack_timeout=lambda: timed_out.append(True))
    tx.respond(100, b"100")
    tx.receive_retransmission()
    assert wire.times(b"100") == [0.0, 0.0]
    tx.respond(486, b"486")
    clock.advance(40)
    times = wire.times(b"486")
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0] and max(gaps) == 4.0
    assert times[-1] < 32.0
    assert tx.state is TxState.TERMINATED and timed_out == [True]


def test_server_invite_ack_confirms_then_timer_i() -> None:
    tx, wire, clock = server(invite=True)
    tx.respond(486, b"486")
    clock.advance(0.6)
    tx.receive_ack()
    assert tx.state is TxState.CONFIRMED
    tx.receive_retransmission()  # absorbed in Confirmed, nothing sent
    clock.advance(4.9)
    assert tx.state is TxState.CONFIRMED
    assert wire.times(b"486") == [0.0, 0.5]
    clock.advance(0.2)
    assert tx.state is TxState.TERMINATED


def test_server_2xx_retransmitted_until_ack_then_timer_l() -> None:
    tx, wire, clock = server(invite=True)
    tx.respond(200, b"200")
    clock.advance(1.6)
    tx.receive_retransmission()  # absorbed in Accepted (RFC 6026)
    tx.ack_2xx()
    clock.advance(10)
    assert wire.times(b"200") == [0.0, 0.5, 1.5]
    assert tx.state is TxState.ACCEPTED
    clock.advance(25)
    assert tx.state is TxState.TERMINATED


def test_server_2xx_without_ack_reports_timeout() -> None:
    lost: list[bool] = []
    tx, _wire, clock = server(invite=True, on_ack_timeout=lambda: lost.append(True))
    tx.respond(200, b"200")
    clock.advance(32.1)
    assert lost == [True]


@pytest.mark.parametrize(("reliable", "j"), [(False, 32.0), (True, 0.0)])
def test_server_non_invite_timer_j(reliable: bool, j: float) -> None:
    tx, wire, clock = server(invite=False, reliable=reliable)
    tx.respond(200, b"200")
    clock.advance(max(0.0, j - 0.1))
    if j:
        tx.receive_retransmission()
        assert wire.times(b"200")[-1] == pytest.approx(j - 0.1)
        assert tx.state is TxState.COMPLETED
    clock.advance(0.2)
    assert tx.state is TxState.TERMINATED


def test_the_table_takes_only_a_transaction_built_to_leave_it() -> None:
    table = TransactionTable()
    clock = ManualScheduler()
    wire = Wire(clock)
    orphan = ServerTransaction(
        ("z9hG4bK3", "h:5060", "BYE"), False, wire.send, False, clock, T, Stats()
    )
    with pytest.raises(ValueError, match="on_terminated"):
        table.add_server(orphan)
    tx = ServerTransaction(
        ("z9hG4bK3", "h:5060", "BYE"),
        False,
        wire.send,
        True,
        clock,
        T,
        Stats(),
        on_terminated=table.drop,
    )
    table.add_server(tx)
    assert table.server == {tx.key: tx}
    tx.respond(200, b"200")  # reliable: Timer J is 0
    clock.advance(0)
    assert tx.state is TxState.TERMINATED and table.server == {}
