"""Dialogs left behind by a crashed process: record them while live, end them after.

Where it sits: a transaction user beside ``agent``, on the same ``Engine``. While a
session is live, :func:`record_of` turns it into a :class:`~.dialog_record.DialogRecord`
(the call-leg layer reports it on its observations; the service logs it). After a
restart, :func:`end_stale` hands the record to a fresh engine that never knew the
dialog, which tells the far end the call is over:

- ``confirmed``: BYE (a non-INVITE client transaction: Timer E retransmissions, Timer F),
  CSeq ``record.cseq + CSEQ_STEP``; a 401/407 is answered once when the record names a
  configured trunk with credentials.
- ``outbound_early``: CANCEL (client transaction) with the INVITE's Via, and the dead
  INVITE's client transaction is *adopted* (nothing re-sent) so the 487 that follows is
  ACKed (§17.1.1.3) and a 2xx that crossed the CANCEL is ACKed and BYEd (§9.1, §15).
- ``inbound_early``: the final response (``reason_code``, 480 by default) through a
  server INVITE transaction (Timer G retransmissions until the ACK, Timer H).

Every message carries ``Reason: SIP;cause=<reason_code>;text="..."`` (RFC 3326) and
goes out through the engine's transports, so the outbound allow-list applies to each;
a record whose destination is outside it is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sip_media.sip import indialog
from sip_media.sip.dialog import (
    Dialog,
    build_request,
    build_response,
    new_branch,
    new_tag,
    strip_tag,
    via_header,
)
from sip_media.sip.dialog_record import (
    CSEQ_STEP,
    MAX_CSEQ,
    DialogKind,
    DialogRecord,
    DialogRecordError,
    header_with_tag,
)
from sip_media.sip.errors import SipError
from sip_media.sip.msgview import MsgView, param
from sip_media.sip.routing import Route
from sip_media.sip.states import SessionState
from sip_media.sip.transaction import ClientTransaction, ServerTransaction, TxState
from sip_media.sip.transport import Address, Transport

if TYPE_CHECKING:
    from sip_media.sip.agent import Invitation
    from sip_media.sip.engine import Engine

log = logging.getLogger(__name__)

STALE_TIMEOUT = 8.0  # seconds end_stale waits for an outcome by default
NO_RESPONSE = 408  # end_stale: no final response within the bound (or Timer F/B)
TRANSPORT_FAILED = 503  # end_stale: the transport could not send the request

Headers = tuple[tuple[str, str], ...]
_background: set[asyncio.Task[Any]] = set()


# ------------------------------------------------------------------------ recording
def record_of(engine: Engine, inv: Invitation) -> DialogRecord | None:
    """The record that would end ``inv`` from a new process; None when there is nothing
    to end (no dialog yet, already over) or the session cannot be recorded (logged)."""
    try:
        return _record(engine, inv)
    except (SipError, KeyError, IndexError) as exc:
        log.warning("leg %s: no dialog record: %s", inv.leg_id, exc)
        return None


def _record(engine: Engine, inv: Invitation) -> DialogRecord | None:
    dialog = inv.dialog
    if dialog is None or inv.state is SessionState.DISCONNECTED:
        return None
    trunk: str | None
    if inv.direction == "outgoing":
        route = inv.route
        if route is None:
            return None
        trunk = route.trunk
        transport = engine.transport_for(route.transport).name
        if inv.state in (SessionState.OUTGOING, SessionState.EARLY):
            parts = inv._invite_parts  # the INVITE in flight (same package: agent's state)
            return DialogRecord(
                kind=DialogKind.OUTBOUND_EARLY,
                call_id=dialog.call_id,
                local_tag=dialog.local_tag,
                remote_tag=dialog.remote_tag,
                local_uri=dialog.local_uri,
                remote_uri=parts["to"],
                cseq=inv._invite_cseq,
                destination=route.address,
                transport=transport,
                remote_target=dialog.remote_target if dialog.remote_tag else "",
                route_set=tuple(dialog.route_set),
                request_uri=route.request_uri,
                vias=(parts["via"],),
                leg_id=inv.leg_id,
                trunk=trunk,
            )
    else:
        tx, msg = inv.invite_tx, inv.request
        if tx is None or msg is None:
            return None
        transport = engine.transport_of(tx).name
        source = tx.source or dialog.remote_addr or ("", 0)
        trunk = next(
            (t.name for t in engine.config.trunks.values() if t.proxy[0] == source[0]), None
        )
        if inv.state in (SessionState.INCOMING, SessionState.EARLY):
            vias = list(msg.vias)
            vias[0] = engine._stamp_via(vias[0], msg)  # as our 100/180 carried it
            return DialogRecord(
                kind=DialogKind.INBOUND_EARLY,
                call_id=msg.call_id,
                local_tag=dialog.local_tag,
                remote_tag=msg.from_tag,
                local_uri=strip_tag(msg.to),
                remote_uri=strip_tag(msg.from_),
                cseq=msg.cseq,
                destination=source,
                transport=transport,
                remote_target=dialog.remote_target,
                route_set=tuple(dialog.route_set),
                vias=tuple(vias),
                leg_id=inv.leg_id,
                trunk=trunk,
            )
    return DialogRecord(
        kind=DialogKind.CONFIRMED,
        call_id=dialog.call_id,
        local_tag=dialog.local_tag,
        remote_tag=dialog.remote_tag,
        local_uri=dialog.local_uri,
        remote_uri=dialog.remote_uri,
        cseq=dialog.local_seq,
        destination=indialog.destination(engine, inv),
        transport=transport,
        remote_target=dialog.remote_target,
        route_set=tuple(dialog.route_set),
        leg_id=inv.leg_id,
        trunk=trunk,
    )


# --------------------------------------------------------------------------- ending
async def end_stale(
    engine: Engine,
    record: DialogRecord,
    *,
    reason_code: int = 480,
    reason_text: str = "Service restarted",
    timeout: float = STALE_TIMEOUT,  # noqa: ASYNC109 (a bound on the whole exchange)
    answer_sent: bool = False,
) -> int:
    """End the dialog ``record`` describes, from an engine that never knew it.

    Returns, within about ``timeout`` seconds:

    - ``confirmed``: the BYE's final status (200; 481 if the far end had already
      forgotten the dialog...).
    - ``outbound_early``: the INVITE's final status if it comes within the bound after
      the CANCEL was accepted (487 normally; if a 2xx crossed the CANCEL, it is ACKed and
      BYEd and the BYE's status is returned), otherwise the CANCEL's own final status
      (200; 481 when the INVITE transaction is already gone). On 481, if the record
      holds an early dialog (a 1xx with a To tag), a BYE follows in that dialog, in
      case the INVITE had been answered unreported, and its status is returned (200:
      it was, and is now over; 481: it was not).
    - ``inbound_early``: ``reason_code`` (sent as the final response; a response gets no
      reply: the wait is for the ACK, which stops the retransmissions). With
      ``answer_sent`` (the log shows we had decided to answer, but no ``LegAnswered``:
      our 2xx may have reached the caller), a BYE follows the final response at once
      (a UAS may BYE only a confirmed dialog, and the caller has one exactly when it
      got the 2xx, in which case it ignores our late final response) and its status
      is returned (200 or 481).
    - :data:`NO_RESPONSE` (408) when no final came in time, :data:`TRANSPORT_FAILED`
      (503) when the transport could not send.

    Raises :class:`DialogRecordError` (and nothing else) when it will not send at all:
    an invalid record (``invalid_record``), a destination outside the allow-list
    (``destination_refused``, counted as ``dropped_by_allow_list``), a dialog still live
    in this engine (``live_dialog``), no transport (``no_transport``); and ``ValueError``
    for a ``reason_code`` that is not a final non-2xx status. Retransmissions may go on
    in the engine after it returns (until Timer F, H or D), as for any transaction.
    """
    if not isinstance(record, DialogRecord):
        raise DialogRecordError(f"not a DialogRecord: {type(record).__name__}")
    record.check()
    if isinstance(reason_code, bool) or not isinstance(reason_code, int):
        raise ValueError("reason_code must be an integer SIP status")
    if not 300 <= reason_code <= 699:
        raise ValueError(f"reason_code must be a final non-2xx status, not {reason_code}")
    for inv in list(engine.sessions.values()):
        if inv.dialog is not None and inv.dialog.call_id == record.call_id:
            raise DialogRecordError(
                f"dialog {record.call_id!r:.60} is live in this process", code="live_dialog"
            )
    transport = _transport(engine, record.transport)
    if transport is None:
        raise DialogRecordError("the engine has no transport", code="no_transport")
    if not transport.permitted(record.destination):  # counted and logged by the transport
        raise DialogRecordError(
            f"destination {record.destination[0]}:{record.destination[1]} is outside "
            "allowed_destinations",
            field="destination",
            code="destination_refused",
        )
    text = "".join(c for c in reason_text if c.isprintable() and c not in '"\\')[:120]
    reason: Headers = (("Reason", f'SIP;cause={reason_code};text="{text}"'),)
    deadline = asyncio.get_running_loop().time() + max(0.0, timeout)
    log.info(
        "ending stale %s dialog %s (leg %s) at %s:%d",
        record.kind.value,
        record.call_id,
        record.leg_id or "?",
        *record.destination,
    )
    match record.kind:
        case DialogKind.CONFIRMED:
            status = await _bye(engine, transport, record, reason, deadline)
        case DialogKind.OUTBOUND_EARLY:
            status = await _cancel(engine, transport, record, reason, deadline)
        case DialogKind.INBOUND_EARLY:
            status = await _final(
                engine, transport, record, reason_code, reason, deadline, not answer_sent
            )
            if answer_sent and record.remote_target:
                dialog = _dialog(record)
                dest = _next_hop(engine, dialog, record.destination)
                status = await _in_dialog(
                    engine, transport, dialog, "BYE", record.bye_cseq, dest, reason, deadline,
                    record.trunk,
                )  # fmt: skip
    log.info("stale dialog %s (leg %s): %d", record.call_id, record.leg_id or "?", status)
    return status


def _transport(engine: Engine, name: str) -> Transport | None:
    """The engine's transport of that name, else its UDP one, else its first."""
    by_name = {t.name: t for t in engine.transports}
    return by_name.get(name) or by_name.get("UDP") or next(iter(engine.transports), None)


def _next_hop(engine: Engine, dialog: Dialog, fallback: Address) -> Address:
    """Where a request in ``dialog`` goes; ``fallback`` (the address the dialog's INVITE
    came from or went to) when its Route/Contact is unusable or outside the allow-list
    (NAT, hostile Contact), as ``indialog.destination`` does for live dialogs."""
    try:
        dest = dialog.next_hop()
    except SipError:
        return fallback
    return dest if engine.allow.permits(dest[0]) else fallback


def _dialog(record: DialogRecord) -> Dialog:
    return Dialog(
        call_id=record.call_id,
        local_tag=record.local_tag,
        remote_tag=record.remote_tag,
        local_uri=record.local_uri,
        remote_uri=record.remote_uri,
        remote_target=record.remote_target,
        local_contact="",
        local_seq=record.cseq,
        route_set=list(record.route_set),
    )


async def _bye(
    engine: Engine,
    transport: Transport,
    record: DialogRecord,
    extra: Headers,
    deadline: float,
) -> int:
    dialog = _dialog(record)
    return await _in_dialog(
        engine, transport, dialog, "BYE", record.bye_cseq, record.destination, extra, deadline,
        record.trunk,
    )  # fmt: skip


async def _in_dialog(
    engine: Engine,
    transport: Transport,
    dialog: Dialog,
    method: str,
    cseq: int,
    dest: Address,
    extra: Headers,
    deadline: float,
    trunk: str | None,
) -> int:
    """One in-dialog request; a trunk's 401/407 answered once with its credentials."""
    headers = extra
    for attempt in range(2):
        branch = new_branch()
        via = via_header(transport.name, *transport.local, branch)
        data = dialog.request(method, via, min(cseq + attempt, MAX_CSEQ), extra=headers)
        status, msg = await _transact(engine, transport, data, dest, (branch, method), deadline)
        if status in (401, 407) and msg is not None and attempt == 0:
            auth = _challenge_answer(engine, msg, method, dialog.remote_target, dest, trunk)
            if auth is not None:
                headers = (*extra, auth)
                continue
        return status
    return NO_RESPONSE  # not reached: the second attempt always returns


def _challenge_answer(
    engine: Engine, msg: MsgView, method: str, uri: str, dest: Address, trunk: str | None
) -> tuple[str, str] | None:
    config = engine.config.trunks.get(trunk or "")
    if config is None or config.username is None or config.password is None:
        return None
    route = Route(
        request_uri=uri,
        address=dest,
        username=config.username,
        password=config.password,
        trunk=config.name,
    )
    value = engine.client_auth(msg, method, route)
    if value is None:
        return None
    return ("Authorization" if msg.status == 401 else "Proxy-Authorization", value)


async def _transact(
    engine: Engine,
    transport: Transport,
    data: bytes,
    dest: Address,
    key: tuple[str, ...],
    deadline: float,
) -> tuple[int, MsgView | None]:
    """A non-INVITE client transaction; its final status (408 / 503 as documented)."""
    fut: asyncio.Future[tuple[int, MsgView | None]] = asyncio.get_running_loop().create_future()

    def done(status: int, msg: MsgView | None) -> None:
        if not fut.done():
            fut.set_result((status, msg))

    engine.send_request(
        data,
        dest,
        transport,
        key,
        invite=False,
        on_response=lambda status, msg: done(status, msg) if status >= 200 else None,
        on_timeout=lambda: done(NO_RESPONSE, None),
        on_transport_error=lambda: done(TRANSPORT_FAILED, None),
    )
    try:
        async with asyncio.timeout_at(deadline):
            return await fut
    except TimeoutError:
        return NO_RESPONSE, None


# ---------------------------------------------------------------- unanswered outbound
class _AdoptedInvite(ClientTransaction):
    """The dead process's INVITE client transaction, taken over without re-sending the
    INVITE: it absorbs the final response (ACKing a non-2xx through ``ack_factory``, and
    its retransmissions) and ends after ``lifetime`` if none comes."""

    kind = "adopted client"

    def adopt(self, lifetime: float) -> None:
        self.transition(TxState.PROCEEDING)
        self.start_timer("lifetime", lifetime, self._expire)

    def _expire(self) -> None:
        if self.state in (TxState.CALLING, TxState.PROCEEDING):
            self._timeout()


async def _cancel(
    engine: Engine,
    transport: Transport,
    record: DialogRecord,
    extra: Headers,
    deadline: float,
) -> int:
    loop = asyncio.get_running_loop()
    invite_final: asyncio.Future[int] = loop.create_future()
    via = record.vias[0]
    branch = param(via, "branch") or ""
    from_ = header_with_tag(record.local_uri, record.local_tag)
    acks: dict[str, tuple[bytes, Address]] = {}

    def settle(status: int) -> None:
        if not invite_final.done():
            invite_final.set_result(status)

    def non2xx_ack(response: MsgView) -> bytes:
        return build_request(
            "ACK",
            record.request_uri,  # §17.1.1.3: as the INVITE, with the response's To
            via=via,
            from_=from_,
            to=response.to,
            call_id=record.call_id,
            cseq=record.cseq,
        )

    def on_response(status: int, msg: MsgView) -> None:
        if status < 200:
            return
        if status >= 300:
            settle(status)
            return
        sent = acks.get(msg.to_tag)
        if sent is not None:  # a retransmitted 2xx: ACK again (§13.2.2.4)
            transport.send(*sent)
            return
        acks[msg.to_tag] = _ack_and_bye(engine, transport, record, msg, extra, settle)

    key = (branch, "INVITE")
    if key not in engine.table.client:
        adopted = _AdoptedInvite(
            key,
            True,
            b"",
            lambda payload: transport.send(payload, record.destination),
            transport.reliable,
            engine.scheduler,
            engine.config.timers,
            engine.stats,
            on_response=on_response,
            on_timeout=lambda: settle(NO_RESPONSE),
            ack_factory=non2xx_ack,
        )
        engine.table.add_client(adopted)
        adopted.adopt(engine.config.timers.timer_b)
    data = build_request(
        "CANCEL",
        record.request_uri,
        via=via,
        from_=from_,
        to=record.remote_uri,  # §9.1: the INVITE's To, without the early dialog's tag
        call_id=record.call_id,
        cseq=record.cseq,
        extra=extra,
    )
    status, _ = await _transact(
        engine, transport, data, record.destination, (branch, "CANCEL"), deadline
    )
    if 200 <= status < 300 or invite_final.done():
        try:
            async with asyncio.timeout_at(deadline):
                return await asyncio.shield(invite_final)
        except TimeoutError:
            return status
    if status == 481 and record.remote_tag and record.remote_target:
        # No INVITE transaction left to cancel: it ended while nobody listened, maybe
        # with a 2xx our predecessor ACKed but never reported. The early dialog's tags
        # then name the confirmed dialog: BYE it (481 again if there is none).
        dialog = _dialog(record)
        dest = _next_hop(engine, dialog, record.destination)
        return await _in_dialog(
            engine, transport, dialog, "BYE", record.bye_cseq, dest, extra, deadline,
            record.trunk,
        )  # fmt: skip
    return status


def _ack_and_bye(
    engine: Engine,
    transport: Transport,
    record: DialogRecord,
    msg: MsgView,
    extra: Headers,
    settle: Callable[[int], None],
) -> tuple[bytes, Address]:
    """A 2xx crossed our CANCEL: ACK it, then BYE that dialog (in the background)."""
    dialog = Dialog(
        call_id=record.call_id,
        local_tag=record.local_tag,
        remote_tag=msg.to_tag,
        local_uri=record.local_uri,
        remote_uri=strip_tag(msg.to),
        remote_target=record.request_uri,
        local_contact="",
        local_seq=record.cseq,
        route_set=list(reversed(msg.header_list("record-route"))),
    )
    dialog.refresh_target(msg.header("contact"))
    dest = _next_hop(engine, dialog, record.destination)
    ack = dialog.request(
        "ACK", via_header(transport.name, *transport.local, new_branch()), record.cseq
    )
    transport.send(ack, dest)
    deadline = asyncio.get_running_loop().time() + engine.config.timers.timer_f
    task = asyncio.get_running_loop().create_task(
        _in_dialog(
            engine, transport, dialog, "BYE", record.cseq + 1, dest, extra, deadline, record.trunk
        )
    )
    _background.add(task)

    def finished(done: asyncio.Task[int]) -> None:
        _background.discard(done)
        if not done.cancelled() and done.exception() is None:
            settle(done.result())

    task.add_done_callback(finished)
    return ack, dest


# ----------------------------------------------------------------- unanswered inbound
class _StaleInviteServer(ServerTransaction):
    """A server INVITE transaction for an INVITE the dead process received: it only
    sends our final response (Timer G) and absorbs the ACK and INVITE retransmissions."""

    kind = "stale server"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ended: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def receive_ack(self) -> None:
        super().receive_ack()
        if not self.ended.done():
            self.ended.set_result(True)


async def _final(
    engine: Engine,
    transport: Transport,
    record: DialogRecord,
    code: int,
    extra: Headers,
    deadline: float,
    wait_ack: bool,
) -> int:
    top = record.vias[0]
    sent = top.split(";", 1)[0].split(None, 1)
    sent_by = sent[1].strip().lower() if len(sent) > 1 else ""
    key = (param(top, "branch") or "", sent_by, "INVITE")
    data = build_response(
        code,
        engine.reason(code),
        vias=record.vias,
        from_=header_with_tag(record.remote_uri, record.remote_tag),
        to=record.local_uri,
        call_id=record.call_id,
        cseq=f"{record.cseq} INVITE",
        to_tag=record.local_tag or new_tag(),
        extra=extra,
    )
    dest = record.destination

    def send(payload: bytes) -> bool:
        engine.stats.bump("messages_out")
        return transport.send(payload, dest)

    tx = _StaleInviteServer(
        key, True, send, transport.reliable, engine.scheduler, engine.config.timers, engine.stats
    )
    tx.transport = transport
    tx.source = dest
    tx.on_ack_timeout = lambda: None if tx.ended.done() else tx.ended.set_result(False)
    engine.table.add_server(tx)
    tx.respond(code, data)
    if not wait_ack:
        return code
    try:
        async with asyncio.timeout_at(deadline):
            acked = await asyncio.shield(tx.ended)
    except TimeoutError:
        acked = False
    if not acked:
        log.info("stale dialog %s: no ACK for our %d (yet)", record.call_id, code)
    return code


__all__ = [
    "CSEQ_STEP",
    "NO_RESPONSE",
    "STALE_TIMEOUT",
    "TRANSPORT_FAILED",
    "end_stale",
    "record_of",
]
