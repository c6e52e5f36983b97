"""re-INVITE inside an established INVITE session (RFC 3261 §14, glare §14.1/§14.2).

Where it sits: mixed into ``agent.Invitation``. Sending: one re-INVITE at a time
(``ReinviteState.SENT``), the TU ACKs its 2xx (and every retransmission of it).
Receiving: glare with our own pending re-INVITE -> 491; a second one while we are still
answering -> 500 with Retry-After; otherwise the offer is answered through
``engine.answer_sdp`` (488 when unusable) and posted as ``SessionGotReinvite`` with the
hold flag (a=sendonly/inactive or c=0.0.0.0).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from sip_media.sip import indialog
from sip_media.sip import notifications as n
from sip_media.sip.dialog import Dialog, new_branch, via_header
from sip_media.sip.errors import SdpError, SipError
from sip_media.sip.msgview import MsgView
from sip_media.sip.sdp import SessionDescription
from sip_media.sip.states import ReinviteState, SessionState
from sip_media.sip.transaction import ServerTransaction

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sip_media.sip.agent import Invitation
    from sip_media.sip.engine import Engine, Route


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


class ReinviteMixin:
    """The re-INVITE half of :class:`agent.Invitation` (state lives on the session)."""

    engine: Engine
    leg_id: str
    state: SessionState
    reinvite_state: ReinviteState
    dialog: Dialog | None
    route: Route | None
    invite_tx: ServerTransaction | None
    reinvite_tx: ServerTransaction | None
    local_sdp: bytes | None
    remote_sdp: bytes | None
    _reinvite_future: asyncio.Future[tuple[int, bytes | None]] | None

    def _end(self, cause: str, status: int, by: str) -> None:
        raise NotImplementedError

    def _reinvite_to(self, new: ReinviteState) -> None:
        old = self.reinvite_state
        if old is not new:
            self.reinvite_state = new
            log.debug("session %s re-INVITE: %s -> %s", self.leg_id, old.value, new.value)

    def _session(self) -> Invitation:
        return cast("Invitation", self)

    def reinvite(self, sdp: bytes | None) -> asyncio.Future[tuple[int, bytes | None]]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[int, bytes | None]] = loop.create_future()
        if (
            self.state is not SessionState.CONNECTED
            or self.reinvite_state is not ReinviteState.IDLE
        ):
            fut.set_result((491, None))
            return fut
        self._reinvite_to(ReinviteState.SENT)
        self._reinvite_future = fut
        if sdp is not None:
            self.local_sdp = sdp
        indialog.send(
            self.engine,
            self._session(),
            "INVITE",
            body=self.local_sdp or b"",
            on_done=self._on_reinvite_done,
        )
        return fut

    def _on_reinvite_done(self, status: int, msg: MsgView | None) -> None:
        if 200 <= status < 300 and msg is not None and self.dialog is not None:
            self._ack_reinvite(msg)
            if self.reinvite_state is ReinviteState.IDLE:
                return  # retransmitted 2xx: re-ACKed above, already reported
        self._reinvite_to(ReinviteState.IDLE)
        sdp = msg.body if msg is not None and msg.body else None
        if 200 <= status < 300 and msg is not None and self.dialog is not None:
            self.dialog.refresh_target(msg.header("contact"))
            if sdp:
                self.remote_sdp = sdp
        fut = self._reinvite_future
        self._reinvite_future = None
        if fut is not None and not fut.done():
            fut.set_result((status, sdp))
        self.engine.notify(n.SessionReinviteResult(self.leg_id, status, sdp))
        if status in (408, 481):
            self._end("failed", status, "remote")

    def _ack_reinvite(self, msg: MsgView) -> None:
        """The TU ACKs a 2xx to its own re-INVITE (§13.2.2.4), same CSeq, new branch."""
        assert self.dialog is not None
        tname = self.route.transport if self.route else None
        if self.invite_tx is not None:
            tname = self.engine.transport_of(self.invite_tx).name
        transport = self.engine.transport_for(tname)
        via = via_header(transport.name, *transport.local, new_branch())
        ack = self.dialog.request("ACK", via, msg.cseq)
        self.engine.send_raw(
            ack, indialog.destination(self.engine, self._session()), transport.name
        )

    def on_reinvite(self, msg: MsgView, tx: ServerTransaction) -> None:
        """Remote re-INVITE (§14.2): glare -> 491, overlapping -> 500, else answer."""
        if self.reinvite_state is ReinviteState.SENT:
            self.engine.respond(msg, tx, 491, "Request Pending")
            return
        if (
            self.reinvite_state is ReinviteState.RECEIVED
            or self.state is not SessionState.CONNECTED
        ):
            self.engine.respond(
                msg, tx, 500, "Server Internal Error", extra=(("Retry-After", "1"),)
            )
            return
        assert self.dialog is not None
        self.dialog.refresh_target(msg.header("contact"))
        offer = msg.body or None
        hold = is_hold(offer)
        if offer:
            self.remote_sdp = offer
        try:
            answer = self.engine.answer_sdp(self._session(), offer)
        except SipError as exc:
            self.engine.respond(msg, tx, exc.status, exc.reason)  # 488: keep the old session
            return
        self.reinvite_tx = tx
        self.engine.respond(
            msg, tx, 200, "OK", contact=self.dialog.local_contact, body=answer or b""
        )
        self.engine.notify(n.SessionGotReinvite(self.leg_id, offer, hold))
