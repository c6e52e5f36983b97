"""Dialogs left behind by a crashed process: record them while live, end them after.

Where it sits: a transaction user beside ``agent``, on the same engine (``SipCore``). While a
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
  A 481 to the CANCEL (the INVITE was already over: maybe answered, unlogged) is
  followed by a BYE in the early dialog, if the record has one.
- ``inbound_early``: the final response (``reason_code``, 480 by default) through a
  server INVITE transaction (Timer G retransmissions until the ACK, Timer H); with
  ``answer_sent``, a BYE too (our 2xx may have reached the caller unlogged).

Every message carries ``Reason: SIP;cause=<reason_code>;text="..."`` (RFC 3326) and
goes out through the engine's transports, so the outbound allow-list applies to each;
a record whose destination is outside it is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from sip_media.sip import indialog, stale_tx
from sip_media.sip.core import SipCore
from sip_media.sip.dialog import strip_tag
from sip_media.sip.dialog_record import CSEQ_STEP, DialogKind, DialogRecord, DialogRecordError
from sip_media.sip.errors import SipError
from sip_media.sip.stale_tx import NO_RESPONSE, TRANSPORT_FAILED, Headers
from sip_media.sip.states import InviteSessionState
from sip_media.sip.transport import Transport

if TYPE_CHECKING:
    from sip_media.sip.agent import Invitation

log = logging.getLogger(__name__)

STALE_TIMEOUT = 8.0  # seconds end_stale waits for an outcome by default


# ------------------------------------------------------------------------ recording
def record_of(engine: SipCore, inv: Invitation) -> DialogRecord | None:
    """The record that would end ``inv`` from a new process; None when there is nothing
    to end (no dialog yet, already over) or the session cannot be recorded (logged)."""
    try:
        return _record(engine, inv)
    except (SipError, KeyError, IndexError) as exc:
        log.warning("leg %s: no dialog record: %s", inv.leg_id, exc)
        return None


def _record(engine: SipCore, inv: Invitation) -> DialogRecord | None:
    dialog = inv.dialog
    if dialog is None or inv.state is InviteSessionState.DISCONNECTED:
        return None
    trunk: str | None
    if inv.direction == "outgoing":
        route = inv.route
        if route is None:
            return None
        trunk = route.trunk
        transport = engine.transport_for(route.transport).name
        if inv.state in (InviteSessionState.OUTGOING, InviteSessionState.EARLY):
            via, to, cseq = inv.pending_invite()
            return DialogRecord(
                kind=DialogKind.OUTBOUND_EARLY,
                call_id=dialog.call_id,
                local_tag=dialog.local_tag,
                remote_tag=dialog.remote_tag,
                local_uri=dialog.local_uri,
                remote_uri=to,
                cseq=cseq,
                destination=route.address,
                transport=transport,
                remote_target=dialog.remote_target if dialog.remote_tag else "",
                route_set=tuple(dialog.route_set),
                request_uri=route.request_uri,
                vias=(via,),
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
        if inv.state in (InviteSessionState.INCOMING, InviteSessionState.EARLY):
            vias = list(msg.vias)
            vias[0] = engine.stamp_via(vias[0], msg)  # as our 100/180 carried it
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
    engine: SipCore,
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
            status = await stale_tx.bye(engine, transport, record, reason, deadline)
        case DialogKind.OUTBOUND_EARLY:
            status = await stale_tx.cancel(engine, transport, record, reason, deadline)
        case DialogKind.INBOUND_EARLY:
            status = await stale_tx.final(
                engine, transport, record, reason_code, reason, deadline, not answer_sent
            )
            if answer_sent and record.remote_target:
                dialog = stale_tx.dialog_of(record)
                dest = dialog.next_hop_within(engine.allow.permits, record.destination)
                status = await stale_tx.in_dialog(
                    engine, transport, dialog, "BYE", record.bye_cseq, dest, reason, deadline,
                    record.trunk,
                )  # fmt: skip
    log.info("stale dialog %s (leg %s): %d", record.call_id, record.leg_id or "?", status)
    return status


def _transport(engine: SipCore, name: str) -> Transport | None:
    """The engine's transport of that name, else its UDP one, else its first."""
    by_name = {t.name: t for t in engine.transports}
    return by_name.get(name) or by_name.get("UDP") or next(iter(engine.transports), None)


__all__ = [
    "CSEQ_STEP",
    "NO_RESPONSE",
    "STALE_TIMEOUT",
    "TRANSPORT_FAILED",
    "end_stale",
    "record_of",
]
