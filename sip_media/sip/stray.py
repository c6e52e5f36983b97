"""2xx responses to INVITEs this process never sent: ACK each, then BYE its dialog.

Where it sits: a transaction user beside ``agent`` and ``stale``, on the same
``Engine``, which hands it every 2xx to an INVITE that matches neither a client
transaction nor a live dialog. Such a 2xx answers a call for a process that is gone:
a crashed one whose ACK was held (``EngineConfig.ack_hold``) until its owner had
stored the answer, so no log knows the dialog. The far end retransmits the 2xx for
64*T1 (RFC 3261 §13.3.1.4) until an ACK comes; the process now on the port ACKs it
and, not wanting the dialog, ends it with a BYE (§13.2.2.4; RFC 6026 §7.2 passes a
stray 2xx to the core).

The dialog is read from the 2xx alone: our From tag and theirs in To, its Call-ID and
CSeq, their Contact (the To URI without one) and Record-Route. The ACK carries the
INVITE's CSeq number, the BYE the next one, with ``Reason`` (RFC 3326). A
retransmission of a 2xx already handled gets the same ACK again and no second BYE (the
last ``MAX_REMEMBERED`` are kept). Requests go through the engine's transport, so the
outbound allow-list applies; a Contact or Route outside it is replaced by where the 2xx
came from. The per-source transaction limit applies to new ones.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from sip_media.sip.dialog import Dialog, new_branch, strip_tag, via_header
from sip_media.sip.errors import SipError
from sip_media.sip.msgview import MsgView
from sip_media.sip.transport import Address, Transport
from sip_media.sip.uri import NameAddr

if TYPE_CHECKING:
    from sip_media.sip.core import SipCore
    from sip_media.sip.transport import RateLimiter

log = logging.getLogger(__name__)

MAX_REMEMBERED = 1024
REASON = ("Reason", 'SIP;cause=480;text="Answer for an unknown call"')


class StrayAnswers:
    """ACK + BYE for stray INVITE 2xx responses; see the module docstring. ``limiter``
    is the engine's per-source limit on new transactions."""

    def __init__(self, core: SipCore, limiter: RateLimiter) -> None:
        self.core = core
        self.limiter = limiter
        self._acks: OrderedDict[tuple[str, str, str], tuple[bytes, Address]] = OrderedDict()

    def receive(self, msg: MsgView, source: Address, transport: Transport) -> None:
        key = (msg.call_id, msg.from_tag, msg.to_tag)
        sent = self._acks.get(key)
        if sent is not None:  # a retransmission: it did not see our ACK (§13.2.2.4)
            self._send(transport, *sent)
            return
        if not msg.from_tag or not msg.to_tag:
            return  # no dialog to name
        stats = self.core.stats
        if not self.limiter.allow(source[0]):
            stats.bump("rate_limited")
            return
        try:
            dialog = _dialog_of(msg)
        except SipError as exc:
            log.info("stray 2xx from %s:%d not answered: %s", *source, exc)
            return
        dest = dialog.next_hop_within(self.core.allow.permits, source)
        via = via_header(transport.name, *transport.local, new_branch())
        ack = dialog.request("ACK", via, msg.cseq)
        self._acks[key] = (ack, dest)
        while len(self._acks) > MAX_REMEMBERED:
            self._acks.popitem(last=False)
        stats.bump("stray_answers_ended")
        log.info("stray 2xx for call %s from %s:%d: ACK and BYE", msg.call_id, *source)
        self._send(transport, ack, dest)
        branch = new_branch()
        bye = dialog.request(
            "BYE", via_header(transport.name, *transport.local, branch), msg.cseq + 1,
            extra=(REASON,),
        )  # fmt: skip
        self.core.send_request(
            bye,
            dest,
            transport,
            (branch, "BYE"),
            invite=False,
            on_response=lambda status, _msg: log.info(
                "stray call %s: BYE %d", msg.call_id, status
            ) if status >= 200 else None,
            on_timeout=lambda: log.info("stray call %s: no answer to the BYE", msg.call_id),
        )  # fmt: skip

    def _send(self, transport: Transport, data: bytes, dest: Address) -> None:
        self.core.stats.bump("messages_out")
        transport.send(data, dest)


def _dialog_of(msg: MsgView) -> Dialog:
    """The UAC side of the dialog a 2xx to our INVITE establishes (§12.1.2)."""
    dialog = Dialog(
        call_id=msg.call_id,
        local_tag=msg.from_tag,
        remote_tag=msg.to_tag,
        local_uri=strip_tag(msg.from_),
        remote_uri=strip_tag(msg.to),
        remote_target=str(NameAddr.parse(strip_tag(msg.to)).uri),
        local_contact="",
        local_seq=msg.cseq,
        route_set=list(reversed(msg.header_list("record-route"))),
    )
    dialog.refresh_target(msg.header("contact"))
    return dialog


__all__ = ["MAX_REMEMBERED", "StrayAnswers"]
