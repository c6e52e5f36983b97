"""The transactions that end a stale dialog: BYE, CANCEL (+ the adopted INVITE), final response.

Where it sits: under :mod:`sip_media.sip.stale`, which validates the record, checks the
allow-list and picks the transport, then calls :func:`bye`, :func:`cancel` or
:func:`final` here. Each runs real RFC 3261 transactions on the engine (Timer E/F for
BYE and CANCEL; the dead process's INVITE client transaction adopted so a 487 is ACKed
and a 2xx that crossed the CANCEL is ACKed and BYEd; a server INVITE transaction with
Timer G/H for the final response) and waits for its outcome until ``deadline`` (the
event loop's clock); every message goes through the engine's transports and so through
the outbound allow-list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sip_media.sip.core import SipCore
from sip_media.sip.dialog import (
    Dialog,
    build_request,
    build_response,
    new_branch,
    new_tag,
    strip_tag,
    via_header,
)
from sip_media.sip.dialog_record import MAX_CSEQ, DialogRecord, header_with_tag
from sip_media.sip.msgview import MsgView, param
from sip_media.sip.routing import Route
from sip_media.sip.transaction import ClientTransaction, ServerTransaction, TxState
from sip_media.sip.transport import Address, Transport

log = logging.getLogger(__name__)

NO_RESPONSE = 408  # no final response within the bound (or Timer F/B)
TRANSPORT_FAILED = 503  # the transport could not send the request

Headers = tuple[tuple[str, str], ...]
_background: set[asyncio.Task[Any]] = set()


def dialog_of(record: DialogRecord) -> Dialog:
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


async def bye(
    engine: SipCore,
    transport: Transport,
    record: DialogRecord,
    extra: Headers,
    deadline: float,
) -> int:
    dialog = dialog_of(record)
    return await in_dialog(
        engine, transport, dialog, "BYE", record.bye_cseq, record.destination, extra, deadline,
        record.trunk,
    )  # fmt: skip


async def in_dialog(
    engine: SipCore,
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
    engine: SipCore, msg: MsgView, method: str, uri: str, dest: Address, trunk: str | None
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
    engine: SipCore,
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


async def cancel(
    engine: SipCore,
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
            on_terminated=engine.table.drop,
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
        dialog = dialog_of(record)
        dest = dialog.next_hop_within(engine.allow.permits, record.destination)
        return await in_dialog(
            engine, transport, dialog, "BYE", record.bye_cseq, dest, extra, deadline,
            record.trunk,
        )  # fmt: skip
    return status


def _ack_and_bye(
    engine: SipCore,
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
    dest = dialog.next_hop_within(engine.allow.permits, record.destination)
    ack = dialog.request(
        "ACK", via_header(transport.name, *transport.local, new_branch()), record.cseq
    )
    transport.send(ack, dest)
    deadline = asyncio.get_running_loop().time() + engine.config.timers.timer_f
    task = asyncio.get_running_loop().create_task(
        in_dialog(
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
        super().__init__(*args, **kwargs, on_ack_timeout=self._no_ack)
        #: True once the ACK came, False when Timer H ran out first
        self.ended: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def receive_ack(self) -> None:
        super().receive_ack()
        if not self.ended.done():
            self.ended.set_result(True)

    def _no_ack(self) -> None:
        if not self.ended.done():
            self.ended.set_result(False)


async def final(
    engine: SipCore,
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
        key,
        True,
        send,
        transport.reliable,
        engine.scheduler,
        engine.config.timers,
        engine.stats,
        on_terminated=engine.table.drop,
    )
    tx.transport = transport
    tx.source = dest
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
