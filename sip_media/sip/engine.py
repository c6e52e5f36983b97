"""The SIP engine: owns transports, the transaction table and the live sessions.

Where it sits: the hub of ``sip_media.sip``. Transports hand it bytes; it parses them
(``message`` via ``msgview``), matches transactions (§17.1.3/§17.2.3), applies the
per-source limit, answers malformed requests with 400, and dispatches to the transaction
users: ``agent.Invitation`` for INVITE dialogs (re-INVITE, BYE), ``indialog`` for the
other in-dialog methods, ``registrar`` for REGISTER, ``stray`` for a 2xx to an INVITE
it never sent (ACK + BYE). The users see it as a
``core.SipCore``. Outbound, it builds Vias and sends through transactions; everything
it sends passes the transport's allow-list. Its owner (the adapter) hands it, at
construction, the hooks for a new incoming session and for answering re-offers.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from sip_media.sip import indialog
from sip_media.sip import notifications as n
from sip_media.sip.agent import Invitation, ReofferHook
from sip_media.sip.config import CONTENT_POLICY, SESSION_POLICY, EngineConfig
from sip_media.sip.dialog import build_response, new_call_id, new_tag
from sip_media.sip.errors import SipError, SipParseError
from sip_media.sip.headers import Replaces
from sip_media.sip.message import (
    REASON_PHRASES,
    Message,
    Request,
    validate_request,
)
from sip_media.sip.msgview import MsgView
from sip_media.sip.registrar import Registrar, client_authorization
from sip_media.sip.routing import Route, Router, TrunkConfig
from sip_media.sip.sessions import SessionTable
from sip_media.sip.stats import Stats
from sip_media.sip.stray import StrayAnswers
from sip_media.sip.timers import LoopScheduler, Scheduler
from sip_media.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    TransactionTable,
    TxState,
)
from sip_media.sip.transport import (
    Address,
    AllowList,
    RateLimiter,
    TcpTransport,
    Transport,
    UdpTransport,
)

log = logging.getLogger(__name__)

__all__ = ["Engine", "EngineConfig", "NewSessionHook", "Route", "TrunkConfig"]

#: Told of each new incoming INVITE session (100 Trying sent, nothing else yet).
NewSessionHook = Callable[[Invitation, MsgView], None]
#: Which out-of-dialog MESSAGEs are taken (200); the others are answered 404.
MessageFilter = Callable[[MsgView], bool]


def _keep_local_sdp(inv: Invitation, offer: bytes | None) -> bytes | None:
    return inv.local_sdp


class Engine:
    """Transports, transactions and sessions of one SIP endpoint.

    ``on_new_session``: told of each new incoming INVITE session; ``answer_sdp``: our
    answer to a remote re-offer (default: the session's current local SDP);
    ``accept_message``: which out-of-dialog MESSAGEs are taken (default: all).
    """

    def __init__(
        self,
        config: EngineConfig,
        scheduler: Scheduler | None = None,
        *,
        on_new_session: NewSessionHook | None = None,
        answer_sdp: ReofferHook | None = None,
        accept_message: MessageFilter | None = None,
    ) -> None:
        self.config = config
        self._accept_message = accept_message
        self.stats = Stats(trace=config.trace)
        self.allow = AllowList(config.allowed_destinations)
        self.limiter = RateLimiter(config.max_transactions_per_source)
        self.table = TransactionTable()
        self.transports: list[Transport] = []
        self.session_table: SessionTable[Invitation] = SessionTable()
        self.sessions = self.session_table.sessions
        self.dialogs = self.session_table.dialogs
        self.by_invite_tx = self.session_table.by_invite_tx
        self.center = n.NotificationCenter()
        self._scheduler = scheduler
        self.registrar = Registrar(self)
        self.router = Router(
            config.domains, config.trunks, config.static_contacts, self.registrar.contacts_for
        )
        self._answer_sdp = answer_sdp or _keep_local_sdp
        self.strays = StrayAnswers(self, self.limiter)
        self._on_new_session = on_new_session

    # ------------------------------------------------------------------ lifecycle
    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:
            self._scheduler = LoopScheduler()
        return self._scheduler

    async def start(self) -> None:
        for addr in self.config.udp:
            udp = UdpTransport(addr, self.allow, self.stats, self._receive)
            await udp.start()
            self.transports.append(udp)
        for addr in self.config.tcp:
            tcp = TcpTransport(
                addr, self.allow, self.stats, self._receive_framed, self._unreachable
            )
            await tcp.start()
            self.transports.append(tcp)
        _ = self.scheduler

    async def stop(self) -> None:
        for transport in self.transports:
            transport.close()
        self.transports.clear()

    def _unreachable(self, dest: Address) -> None:
        """A connection-oriented transport could not reach ``dest``: fail the requests
        sent there now (a call to a phone that refuses TCP ends at once, with 503)."""
        for tx in list(self.table.client.values()):
            if tx.dest == dest:
                tx.transport_failed()

    def local_address(self, name: str = "UDP") -> Address:
        return self.transport_for(name).local

    def transport_for(self, name: str | None) -> Transport:
        wanted = (name or "UDP").upper()
        for transport in self.transports:
            if transport.name == wanted:
                return transport
        return self.transports[0]

    @staticmethod
    def transport_param(transport: Transport) -> str:
        return "" if transport.name == "UDP" else f";transport={transport.name.lower()}"

    def transport_of(self, tx: ServerTransaction) -> Transport:
        transport: Transport = tx.transport
        return transport

    def new_tag(self) -> str:
        return new_tag()

    def new_call_id(self) -> str:
        return new_call_id(self.transports[0].local[0])

    @staticmethod
    def reason(status: int) -> str:
        return REASON_PHRASES.get(status, "Unknown")

    def notify(self, notification: n.Notification) -> None:
        self.center.post(notification)

    # ------------------------------------------------------------------ sessions
    def new_session(self, leg_id: str, direction: str) -> Invitation:
        """A new INVITE session on this engine (``outgoing``: call ``dial`` next)."""
        return Invitation(self, self.session_table, leg_id, direction, self._answer_sdp)

    # ------------------------------------------------------------------ sending
    def send_raw(self, data: bytes, dest: Address, transport: str | None) -> None:
        self.stats.bump("messages_out")
        self.transport_for(transport).send(data, dest)

    def send_request(
        self,
        data: bytes,
        dest: Address,
        transport: Transport,
        key: tuple[str, ...],
        *,
        invite: bool,
        on_response: Callable[[int, Any], None],
        on_timeout: Callable[[], None],
        ack_factory: Callable[[Any], bytes] | None = None,
        on_transport_error: Callable[[], None] | None = None,
    ) -> ClientTransaction:
        def send(payload: bytes) -> bool:
            self.stats.bump("messages_out")
            return transport.send(payload, dest)

        tx = ClientTransaction(
            key,
            invite,
            data,
            send,
            transport.reliable,
            self.scheduler,
            self.config.timers,
            self.stats,
            on_response=on_response,
            on_timeout=on_timeout,
            ack_factory=ack_factory,
            on_transport_error=on_transport_error,
            dest=dest,
            on_terminated=self.table.drop,
        )
        self.table.add_client(tx)
        tx.start()
        return tx

    def response_bytes(
        self,
        msg: MsgView,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        contact: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> bytes:
        vias = list(msg.vias)
        vias[0] = self.stamp_via(vias[0], msg)
        rr = (
            msg.header_list("record-route") if 100 < status < 300 and msg.method == "INVITE" else []
        )
        return build_response(
            status,
            reason or self.reason(status),
            vias=vias,
            from_=msg.from_,
            to=msg.to,
            call_id=msg.call_id,
            cseq=f"{msg.cseq} {msg.cseq_method}",
            to_tag=to_tag if status > 100 else None,
            contact=contact,
            record_routes=rr,
            extra=extra,
            body=body,
            content_type=content_type,
        )

    def stamp_via(self, via: str, msg: MsgView) -> str:
        source = msg.source
        if source is None:
            return via
        host, port = source
        if ";rport" in via and ";rport=" not in via:
            via = via.replace(";rport", f";rport={port}", 1)
        return f"{via};received={host}"

    def respond(
        self,
        msg: MsgView,
        tx: ServerTransaction,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        contact: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        tx.respond(
            status,
            self.response_bytes(
                msg,
                status,
                reason,
                to_tag=to_tag or (self.new_tag() if not msg.to_tag and status > 100 else None),
                contact=contact,
                extra=extra,
                body=body,
                content_type=content_type,
            ),
        )

    # ------------------------------------------------------------------ receiving
    def _receive(self, data: bytes, source: Address, transport: Transport) -> None:
        self.stats.bump("messages_in")
        try:
            msg = MsgView.parse(data)
        except SipParseError as exc:
            self._malformed(data, source, transport, exc)
            return
        self._process(msg, source, transport)

    def _receive_framed(
        self, item: Message | SipParseError, source: Address, transport: Transport
    ) -> None:
        """Stream transports hand over parsed messages (or the framer's parse error)."""
        self.stats.bump("messages_in")
        if isinstance(item, SipParseError):
            self.stats.bump("malformed_requests")
            log.info("malformed message on TCP from %s:%d: %s", *source, item.reason)
            return
        try:
            msg = MsgView(item)
        except SipParseError as exc:
            self._malformed(item.serialize(), source, transport, exc)
            return
        self._process(msg, source, transport)

    def _process(self, msg: MsgView, source: Address, transport: Transport) -> None:
        try:
            if msg.is_request:
                self.stats.bump("requests_in")
                self.stats.request("in", msg.method)
                self._on_request(msg, source, transport)
            else:
                self.stats.bump("responses_in")
                self.stats.response("in", msg.cseq_method, msg.status)
                self._on_response(msg, source, transport)
        except SipError as exc:
            log.warning("error handling message from %s:%d: %s", *source, exc)
            self.stats.bump("errors")
        except Exception:
            log.exception("unexpected error handling message from %s:%d", *source)
            self.stats.bump("errors")

    def _malformed(
        self, data: bytes, source: Address, transport: Transport, exc: SipParseError
    ) -> None:
        if data.startswith(b"SIP/"):
            self.stats.bump("malformed_responses")
            log.info("dropped malformed response from %s:%d: %s", *source, exc.reason)
            return
        self.stats.bump("malformed_requests")
        log.info("malformed request from %s:%d: %s", *source, exc.reason)
        if data.startswith(b"ACK "):
            return
        response = indialog.bad_request_bytes(data, source, exc)
        if response is not None:
            self.stats.bump("messages_out")
            transport.send(response, source)

    def _new_server_tx(
        self, msg: MsgView, source: Address, transport: Transport
    ) -> ServerTransaction:
        def send(payload: bytes) -> bool:
            self.stats.bump("messages_out")
            return transport.send(payload, source)

        tx = ServerTransaction(
            msg.tx_key(),
            msg.method == "INVITE",
            send,
            transport.reliable,
            self.scheduler,
            self.config.timers,
            self.stats,
            request=msg,
            on_terminated=self.table.drop,
        )
        tx.transport = transport
        tx.source = source
        self.table.add_server(tx)
        return tx

    def _on_request(self, msg: MsgView, source: Address, transport: Transport) -> None:
        msg.source = source
        self._dispatch_request(msg, source, transport)

    def _dispatch_request(self, msg: MsgView, source: Address, transport: Transport) -> None:
        method = msg.method
        if method == "ACK":
            self._on_ack(msg)
            return
        existing = self.table.server.get(msg.tx_key())
        if existing is not None:
            existing.receive_retransmission()
            return
        if not self.limiter.allow(source[0]):
            self.stats.bump("rate_limited")
            tx = self._new_server_tx(msg, source, transport)
            self.respond(msg, tx, 503, "Service Unavailable", extra=(("Retry-After", "5"),))
            return
        tx = self._new_server_tx(msg, source, transport)
        if method == "INVITE":
            tx.respond(100, self.response_bytes(msg, 100, "Trying"))
        assert isinstance(msg.message, Request)
        policy = SESSION_POLICY if method in ("INVITE", "UPDATE", "PRACK") else CONTENT_POLICY
        rejection = validate_request(msg.message, policy)
        if rejection is not None:
            self.respond(msg, tx, rejection.status, rejection.reason, extra=rejection.headers)
            return
        if method == "CANCEL":
            self._on_cancel(msg, tx)
            return
        if msg.to_tag:
            inv = self.dialogs.get((msg.call_id, msg.to_tag, msg.from_tag))
            if inv is None:
                self.respond(msg, tx, 481, "Call/Transaction Does Not Exist")
                return
            if not inv.dialog or not inv.dialog.accept_remote_cseq(msg.cseq, method):
                self.respond(msg, tx, 500, "CSeq Out of Order")
                return
            if method == "INVITE":
                inv.on_reinvite(msg, tx)
            elif method == "BYE":
                inv.on_bye(msg, tx)
            else:
                indialog.handle(self, inv, msg, tx)
            return
        if method == "INVITE":
            self._on_new_invite(msg, tx, source)
        elif method == "REGISTER":
            self.registrar.handle(msg, tx, source, transport)
        elif method == "OPTIONS":
            self.respond(msg, tx, 200, "OK", extra=(("Accept", "application/sdp"),))
        elif method == "MESSAGE":
            if self._accept_message is None or self._accept_message(msg):
                indialog.out_of_dialog_message(self, msg, tx)
            else:
                self.respond(msg, tx, 404, "Not Found")
        elif method == "BYE":
            self.respond(msg, tx, 481, "Call/Transaction Does Not Exist")
        else:
            self.respond(
                msg,
                tx,
                405,
                "Method Not Allowed",
                extra=(("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REGISTER"),),
            )

    def _on_ack(self, msg: MsgView) -> None:
        tx = self.table.server.get(msg.tx_key())
        if tx is not None and tx.state in (TxState.COMPLETED, TxState.CONFIRMED):
            tx.receive_ack()
            return
        inv = self.dialogs.get((msg.call_id, msg.to_tag, msg.from_tag))
        if inv is not None:
            inv.on_ack(msg)

    def _on_cancel(self, msg: MsgView, tx: ServerTransaction) -> None:
        invite_key = (msg.branch, msg.sent_by, "INVITE")
        inv = self.by_invite_tx.get(invite_key)
        invite_tx = self.table.server.get(invite_key)
        if inv is None and invite_tx is None:
            self.respond(msg, tx, 481, "Call/Transaction Does Not Exist")
            return
        self.respond(msg, tx, 200, "OK")
        if inv is not None:
            inv.on_cancel()

    def is_local_host(self, host: str) -> bool:
        host = host.lower().strip("[]")
        if host in self.config.domains or host in self.config.local_hosts:
            return True
        return host == "localhost" or any(t.local[0] == host for t in self.transports)

    def _on_new_invite(self, msg: MsgView, tx: ServerTransaction, source: Address) -> None:
        assert isinstance(msg.message, Request)
        if not self.is_local_host(msg.message.uri.host):
            self.respond(msg, tx, 403, "Relaying Denied")  # security rule: no open relay
            return
        allowed, user = self.registrar.authorize_invite(msg, tx)
        if not allowed:
            return
        leg_id = "in-" + secrets.token_hex(6)
        inv = self.new_session(leg_id, "incoming")
        inv.accept_request(msg, tx)
        inv.user = user
        assert inv.dialog is not None
        inv.dialog.remote_addr = source
        self.by_invite_tx[tx.key] = inv
        replaces = msg.header("replaces")
        if replaces is not None:
            try:
                rep = Replaces.parse(replaces)
            except SipParseError as exc:
                inv.reject(400, exc.reason)
                return
            target = self.dialogs.get((rep.call_id, rep.to_tag, rep.from_tag))
            if target is None or target is inv:
                inv.reject(481, "Call/Transaction Does Not Exist")
                return
            if rep.early_only and target.state.value in ("connecting", "connected"):
                inv.reject(486, "Busy Here")  # RFC 3891 §3: early-only vs confirmed dialog
                return
            inv.replaces = target.leg_id
        if self._on_new_session is not None:
            self._on_new_session(inv, msg)

    def _on_response(self, msg: MsgView, source: Address, transport: Transport) -> None:
        tx = self.table.client.get(msg.client_key())
        if tx is not None:
            tx.receive_response(msg.status, msg)
            return
        if msg.cseq_method == "INVITE" and 200 <= msg.status < 300:
            inv = self.dialogs.get((msg.call_id, msg.from_tag, msg.to_tag))
            if inv is not None:
                inv.on_invite_response(msg.status, msg)
                return
            self.stats.bump("unmatched_responses")
            self.strays.receive(msg, source, transport)
            return
        self.stats.bump("unmatched_responses")
        log.debug("unmatched response %d %s", msg.status, msg.cseq_method)

    # ------------------------------------------------------------------ helpers for TUs
    def resolve(self, target: str) -> Route:
        return self.router.resolve(target)

    def client_auth(self, msg: MsgView, method: str, route: Route) -> str | None:
        return client_authorization(msg, method, route)
