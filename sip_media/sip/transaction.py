"""RFC 3261 §17 transactions (with the RFC 6026 'Accepted' state), client and server.

Where it sits: between ``transport`` (bytes) and the transaction user (``agent``,
``registrar``, driven by ``engine``). Transactions deal in already-serialised bytes plus
the parsed message object they hand to the TU, so retransmissions cost one ``sendto``.
The engine matches inbound messages to transactions (``TransactionTable``); all timers
(A, B, D, E, F, G, H, I, J, K, L, M) run on an injectable :class:`Scheduler`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

from sip_media.sip.stats import Stats
from sip_media.sip.timers import Scheduler, TimerConfig, TimerHandle

log = logging.getLogger(__name__)

SendFn = Callable[[bytes], bool]


class TxState(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class _Transaction:
    """Shared plumbing: state transitions, timers, termination callback."""

    kind = "transaction"

    def __init__(
        self,
        key: tuple[str, ...],
        invite: bool,
        send: SendFn,
        reliable: bool,
        scheduler: Scheduler,
        timers: TimerConfig,
        stats: Stats,
        initial: TxState,
        on_terminated: Callable[[_Transaction], None] | None = None,
    ) -> None:
        self.key = key
        self.invite = invite
        self._send = send
        self.reliable = reliable
        self.scheduler = scheduler
        self.timers = timers
        self.stats = stats
        self.state = initial
        #: told once the transaction ends (its table drops it: ``TransactionTable.drop``)
        self.on_terminated = on_terminated
        self._handles: dict[str, TimerHandle] = {}

    def transition(self, new: TxState) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s: %s -> %s", self.kind, self.key, old.value, new.value)
        if new is TxState.TERMINATED:
            for handle in self._handles.values():
                handle.cancel()
            self._handles.clear()
            if self.on_terminated is not None:
                self.on_terminated(self)

    def start_timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self.stop_timer(name)
        self._handles[name] = self.scheduler.call_later(delay, callback)

    def stop_timer(self, name: str) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.cancel()

    def terminate(self) -> None:
        self.transition(TxState.TERMINATED)


class ClientTransaction(_Transaction):
    """Sends a request and feeds responses to the TU (§17.1)."""

    kind = "client"

    def __init__(
        self,
        key: tuple[str, ...],
        invite: bool,
        request: bytes,
        send: SendFn,
        reliable: bool,
        scheduler: Scheduler,
        timers: TimerConfig,
        stats: Stats,
        on_response: Callable[[int, Any], None],
        on_timeout: Callable[[], None],
        ack_factory: Callable[[Any], bytes] | None = None,
        on_transport_error: Callable[[], None] | None = None,
        dest: tuple[str, int] | None = None,
        on_terminated: Callable[[_Transaction], None] | None = None,
    ) -> None:
        super().__init__(
            key,
            invite,
            send,
            reliable,
            scheduler,
            timers,
            stats,
            TxState.CALLING if invite else TxState.TRYING,
            on_terminated,
        )
        self.on_transport_error = on_transport_error
        self.dest = dest
        self.request = request
        self.on_response = on_response
        self.on_timeout = on_timeout
        self.ack_factory = ack_factory
        self.ack: bytes | None = None
        self._interval = timers.t1

    def start(self) -> None:
        self.stats.bump("transactions_client")
        if not self._send(self.request):
            # §17.1.4: a transport failure (incl. the allow-list refusing) ends it now.
            self.stats.bump("send_errors")
            self.terminate()
            (self.on_transport_error or self.on_timeout)()
            return
        if self.invite:
            if not self.reliable:
                self.start_timer("timer_a", self._interval, self.timer_a)
            self.start_timer("timer_b", self.timers.timer_b, self.timer_b)
        else:
            if not self.reliable:
                self.start_timer("timer_e", self._interval, self.timer_e)
            self.start_timer("timer_f", self.timers.timer_f, self.timer_f)

    def transport_failed(self) -> None:
        """The transport could not deliver the request after ``send`` accepted it (a TCP
        connect refused): §17.1.4, the same as a failed send, and no wait for Timer B."""
        if self.state not in (TxState.CALLING, TxState.TRYING):
            return
        self.stats.bump("send_errors")
        self.terminate()
        (self.on_transport_error or self.on_timeout)()

    # -- timers ---------------------------------------------------------------------
    def timer_a(self) -> None:
        if self.state is not TxState.CALLING:
            return
        self.stats.bump("retransmissions")
        self._send(self.request)
        self._interval *= 2
        self.start_timer("timer_a", self._interval, self.timer_a)

    def timer_b(self) -> None:
        if self.state is TxState.CALLING:
            self._timeout()

    def timer_d(self) -> None:
        self.terminate()

    def timer_e(self) -> None:
        if self.state not in (TxState.TRYING, TxState.PROCEEDING):
            return
        self.stats.bump("retransmissions")
        self._send(self.request)
        if self.state is TxState.TRYING:
            self._interval = min(2 * self._interval, self.timers.t2)
        else:
            self._interval = self.timers.t2
        self.start_timer("timer_e", self._interval, self.timer_e)

    def timer_f(self) -> None:
        if self.state in (TxState.TRYING, TxState.PROCEEDING):
            self._timeout()

    def timer_k(self) -> None:
        self.terminate()

    def timer_m(self) -> None:
        self.terminate()

    def _timeout(self) -> None:
        self.stats.bump("timeouts")
        self.terminate()
        self.on_timeout()

    # -- input ----------------------------------------------------------------------
    def receive_response(self, status: int, response: Any) -> None:
        if self.invite:
            self._invite_response(status, response)
        else:
            self._non_invite_response(status, response)

    def _invite_response(self, status: int, response: Any) -> None:
        state = self.state
        if status < 200:
            if state in (TxState.CALLING, TxState.PROCEEDING):
                self.stop_timer("timer_a")
                self.transition(TxState.PROCEEDING)
                self.on_response(status, response)
        elif status < 300:
            if state in (TxState.CALLING, TxState.PROCEEDING):
                self.stop_timer("timer_a")
                self.stop_timer("timer_b")
                self.transition(TxState.ACCEPTED)
                self.start_timer("timer_m", self.timers.timer_m, self.timer_m)
                self.on_response(status, response)
            elif state is TxState.ACCEPTED:
                self.on_response(status, response)  # 2xx retransmission / forked 2xx
        elif state in (TxState.CALLING, TxState.PROCEEDING):
            self.stop_timer("timer_a")
            self.stop_timer("timer_b")
            self.ack = self.ack_factory(response) if self.ack_factory is not None else None
            if self.ack is not None:
                self._send(self.ack)
            self.transition(TxState.COMPLETED)
            self.start_timer("timer_d", 0.0 if self.reliable else self.timers.timer_d, self.timer_d)
            self.on_response(status, response)
        elif state is TxState.COMPLETED:
            self.stats.bump("retransmissions_absorbed")
            if self.ack is not None:
                self._send(self.ack)

    def _non_invite_response(self, status: int, response: Any) -> None:
        state = self.state
        if state not in (TxState.TRYING, TxState.PROCEEDING):
            self.stats.bump("retransmissions_absorbed")
            return
        if status < 200:
            self.transition(TxState.PROCEEDING)
            self.on_response(status, response)
            return
        self.stop_timer("timer_e")
        self.stop_timer("timer_f")
        self.transition(TxState.COMPLETED)
        self.start_timer("timer_k", 0.0 if self.reliable else self.timers.timer_k, self.timer_k)
        self.on_response(status, response)

    def cancel_pending(self) -> bool:
        """True while a CANCEL would be meaningful (a provisional has arrived)."""
        return self.invite and self.state is TxState.PROCEEDING


class ServerTransaction(_Transaction):
    """Absorbs request retransmissions and retransmits responses (§17.2)."""

    kind = "server"

    def __init__(
        self,
        key: tuple[str, ...],
        invite: bool,
        send: SendFn,
        reliable: bool,
        scheduler: Scheduler,
        timers: TimerConfig,
        stats: Stats,
        request: Any = None,
        *,
        on_terminated: Callable[[_Transaction], None] | None = None,
        on_ack_timeout: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            key,
            invite,
            send,
            reliable,
            scheduler,
            timers,
            stats,
            TxState.PROCEEDING if invite else TxState.TRYING,
            on_terminated,
        )
        self.request = request
        self.last_response: bytes | None = None
        self.last_status = 0
        #: told when no ACK came for our final response (Timer H, or RFC 6026's Timer L
        #: for a 2xx); an INVITE session that takes the transaction over sets its own
        self.on_ack_timeout = on_ack_timeout
        self.acked = False
        self.transport: Any = None  # set by the engine: where responses go
        self.source: tuple[str, int] | None = None
        self._interval = timers.t1
        stats.bump("transactions_server")

    def respond(self, status: int, data: bytes) -> None:
        state = self.state
        if state in (TxState.COMPLETED, TxState.CONFIRMED, TxState.TERMINATED):
            log.debug("server %s: response %d after final ignored", self.key, status)
            return
        if state is TxState.ACCEPTED:
            if 200 <= status < 300:
                self.last_response = data  # same 2xx, re-sent by the retransmit timer
                self._send(data)
            return
        self.last_response = data
        self.last_status = status
        self._send(data)
        if status < 200:
            if not self.invite:
                self.transition(TxState.PROCEEDING)
            return
        if self.invite:
            if status < 300:
                self.transition(TxState.ACCEPTED)
                self.start_timer("timer_l", self.timers.timer_l, self.timer_l)
                if not self.reliable:
                    self.start_timer("timer_g", self._interval, self.timer_g)
            else:
                self.transition(TxState.COMPLETED)
                if not self.reliable:
                    self.start_timer("timer_g", self._interval, self.timer_g)
                self.start_timer("timer_h", self.timers.timer_h, self.timer_h)
        else:
            self.transition(TxState.COMPLETED)
            self.start_timer("timer_j", 0.0 if self.reliable else self.timers.timer_j, self.timer_j)

    # -- timers ---------------------------------------------------------------------
    def timer_g(self) -> None:
        """Retransmit the final response (non-2xx §17.2.1, and 2xx per RFC 6026 §8.5)."""
        if self.state not in (TxState.COMPLETED, TxState.ACCEPTED) or self.last_response is None:
            return
        self.stats.bump("retransmissions")
        self._send(self.last_response)
        self._interval = min(2 * self._interval, self.timers.t2)
        self.start_timer("timer_g", self._interval, self.timer_g)

    def timer_h(self) -> None:
        if self.state is TxState.COMPLETED:
            self.stats.bump("timeouts")
            self.terminate()
            if self.on_ack_timeout is not None:
                self.on_ack_timeout()

    def timer_i(self) -> None:
        self.terminate()

    def timer_j(self) -> None:
        self.terminate()

    def timer_l(self) -> None:
        """RFC 6026: Accepted state ends; no ACK seen means the dialog must go."""
        if self.state is TxState.ACCEPTED:
            self.terminate()
            if not self.acked and self.on_ack_timeout is not None:
                self.stats.bump("timeouts")
                self.on_ack_timeout()

    # -- input ----------------------------------------------------------------------
    def receive_retransmission(self) -> None:
        self.stats.bump("retransmissions_absorbed")
        if self.state is TxState.ACCEPTED:
            return  # RFC 6026 §8.7: absorbed; the 2xx timer keeps retransmitting
        if self.last_response is not None and self.state is not TxState.CONFIRMED:
            self._send(self.last_response)

    def receive_ack(self) -> None:
        """ACK for a non-2xx final (same branch)."""
        if self.state is TxState.COMPLETED:
            self.stop_timer("timer_g")
            self.stop_timer("timer_h")
            self.transition(TxState.CONFIRMED)
            self.start_timer("timer_i", 0.0 if self.reliable else self.timers.timer_i, self.timer_i)
        else:
            self.stats.bump("retransmissions_absorbed")

    def ack_2xx(self) -> None:
        """The dialog saw the ACK for our 2xx: stop retransmitting it."""
        self.acked = True
        self.stop_timer("timer_g")


class TransactionTable:
    """Live transactions keyed for matching (§17.1.3 client, §17.2.3 server).

    A transaction added here is built with ``on_terminated=table.drop``, so that it
    leaves the table when it ends."""

    def __init__(self) -> None:
        self.client: dict[tuple[str, ...], ClientTransaction] = {}
        self.server: dict[tuple[str, ...], ServerTransaction] = {}

    def add_client(self, tx: ClientTransaction) -> None:
        self._check(tx)
        self.client[tx.key] = tx

    def add_server(self, tx: ServerTransaction) -> None:
        self._check(tx)
        self.server[tx.key] = tx

    def _check(self, tx: _Transaction) -> None:
        if tx.on_terminated != self.drop:
            raise ValueError(f"{tx.kind} {tx.key} was not built with on_terminated=table.drop")

    def drop(self, tx: _Transaction) -> None:
        """``tx`` ended: it matches nothing any more."""
        table: dict[tuple[str, ...], Any] = (
            self.client if isinstance(tx, ClientTransaction) else self.server
        )
        if table.get(tx.key) is tx:
            del table[tx.key]
