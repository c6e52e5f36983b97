"""re-INVITE inside an established INVITE session (RFC 3261 §14, glare §14.1/§14.2).

Where it sits: a collaborator of ``agent.Invitation``, which builds one
:class:`Reinvites` per session with the engine core, the session itself and the hook
that answers a remote offer. Sending: one re-INVITE at a time
(``ReinviteState.SENT``), the TU ACKs its 2xx (and every retransmission of it).
Receiving: glare with our own pending re-INVITE -> 491; a second one while we are still
answering -> 500 with Retry-After; otherwise the offer is answered through
the ``answer`` hook (488 when unusable) and posted as ``SessionGotReinvite`` with the
hold flag (a=sendonly/inactive or c=0.0.0.0).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from sip_media.sip import indialog
from sip_media.sip import notifications as n
from sip_media.sip.core import DialogUsage, SipCore
from sip_media.sip.dialog import new_branch, via_header
from sip_media.sip.errors import SdpError, SipError
from sip_media.sip.msgview import MsgView
from sip_media.sip.sdp import SessionDescription
from sip_media.sip.states import InviteSessionState, ReinviteState
from sip_media.sip.transaction import ServerTransaction

log = logging.getLogger(__name__)

#: The session's answer to a remote re-offer (None: no offer, we offer); SipError refuses.
AnswerHook = Callable[[bytes | None], bytes | None]
#: Ends the session: (cause, SIP status, "local" | "remote").
EndHook = Callable[[str, int, str], None]


def is_hold(sdp: bytes | None) -> bool:
    """True when the offer stops the peer receiving our audio (sendonly/inactive/0.0.0.0)."""
    if not sdp:
        return False
    try:
        desc = SessionDescription.parse(sdp)
    except SdpError:
        return False
    audio = [m for m in desc.media if m.media == "audio" and m.port]
    return bool(audio) and all(desc.direction_of(m) in ("sendonly", "inactive") for m in audio)


class ReinvitingSession(DialogUsage, Protocol):
    """What re-INVITE handling reads and updates on its session."""

    local_sdp: bytes | None
    remote_sdp: bytes | None

    @property
    def state(self) -> InviteSessionState: ...


class Reinvites:
    """Re-INVITEs of one session, sent and received; holds the re-INVITE sub-state."""

    def __init__(
        self, core: SipCore, session: ReinvitingSession, answer: AnswerHook, end: EndHook
    ) -> None:
        self.core = core
        self.session = session
        self.answer = answer
        self.end = end
        self.state = ReinviteState.IDLE
        self.tx: ServerTransaction | None = None  # a remote re-INVITE we answered 2xx
        self._future: asyncio.Future[tuple[int, bytes | None]] | None = None

    def _to(self, new: ReinviteState) -> None:
        old = self.state
        if old is not new:
            self.state = new
            log.debug("session %s re-INVITE: %s -> %s", self.session.leg_id, old.value, new.value)

    def send(self, sdp: bytes | None) -> asyncio.Future[tuple[int, bytes | None]]:
        session = self.session
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[int, bytes | None]] = loop.create_future()
        if (
            session.state is not InviteSessionState.CONNECTED
            or self.state is not ReinviteState.IDLE
        ):
            fut.set_result((491, None))
            return fut
        self._to(ReinviteState.SENT)
        self._future = fut
        if sdp is not None:
            session.local_sdp = sdp
        indialog.send(
            self.core,
            session,
            "INVITE",
            body=session.local_sdp or b"",
            on_done=self._on_done,
        )
        return fut

    def _on_done(self, status: int, msg: MsgView | None) -> None:
        session = self.session
        dialog = session.dialog
        if 200 <= status < 300 and msg is not None and dialog is not None:
            self._ack(msg)
            if self.state is ReinviteState.IDLE:
                return  # retransmitted 2xx: re-ACKed above, already reported
        self._to(ReinviteState.IDLE)
        sdp = msg.body if msg is not None and msg.body else None
        if 200 <= status < 300 and msg is not None and dialog is not None:
            dialog.refresh_target(msg.header("contact"))
            if sdp:
                session.remote_sdp = sdp
        fut = self._future
        self._future = None
        if fut is not None and not fut.done():
            fut.set_result((status, sdp))
        self.core.notify(n.SessionReinviteResult(session.leg_id, status, sdp))
        if status in (408, 481):
            self.end("failed", status, "remote")

    def _ack(self, msg: MsgView) -> None:
        """The TU ACKs a 2xx to its own re-INVITE (§13.2.2.4), same CSeq, new branch."""
        session = self.session
        assert session.dialog is not None
        core = self.core
        tname = session.route.transport if session.route else None
        if session.invite_tx is not None:
            tname = core.transport_of(session.invite_tx).name
        transport = core.transport_for(tname)
        via = via_header(transport.name, *transport.local, new_branch())
        ack = session.dialog.request("ACK", via, msg.cseq)
        core.send_raw(ack, indialog.destination(core, session), transport.name)

    def receive(self, msg: MsgView, tx: ServerTransaction) -> None:
        """Remote re-INVITE (§14.2): glare -> 491, overlapping -> 500, else answer."""
        session = self.session
        core = self.core
        if self.state is ReinviteState.SENT:
            core.respond(msg, tx, 491, "Request Pending")
            return
        if (
            self.state is ReinviteState.RECEIVED
            or session.state is not InviteSessionState.CONNECTED
        ):
            core.respond(msg, tx, 500, "Server Internal Error", extra=(("Retry-After", "1"),))
            return
        assert session.dialog is not None
        session.dialog.refresh_target(msg.header("contact"))
        offer = msg.body or None
        hold = is_hold(offer)
        if offer:
            session.remote_sdp = offer
        try:
            answer = self.answer(offer)
        except SipError as exc:
            core.respond(msg, tx, exc.status, exc.reason)  # 488: keep the old session
            return
        self.tx = tx
        core.respond(msg, tx, 200, "OK", contact=session.dialog.local_contact, body=answer or b"")
        core.notify(n.SessionGotReinvite(session.leg_id, offer, hold))

    def on_ack(self, msg: MsgView) -> None:
        """An ACK in the dialog: it may complete the remote re-INVITE we answered."""
        if self.tx is not None and msg.cseq == self.tx.request.cseq:
            self.tx.ack_2xx()
            self.tx = None
