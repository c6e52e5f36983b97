"""The B2BUA leg: one INVITE session (sipsimple's ``Invitation``) on either side.

Where it sits: the transaction user above ``transaction``/``dialog``, below the adapter.
State machine ``outgoing|incoming -> early -> connecting -> connected -> disconnecting
-> disconnected`` with a re-INVITE sub-state; every change goes through
:meth:`Invitation.transition`. Happenings are posted as notifications; in-dialog
requests other than INVITE/BYE (INFO, MESSAGE, NOTIFY, REFER, OPTIONS) are handled by
``sip_media.sip.indialog``, re-INVITEs by the session's ``reinvite.Reinvites``. It sees
the engine only as a :class:`~sip_media.sip.core.SipCore` and files itself in the
engine's :class:`~sip_media.sip.sessions.SessionTable`; the engine creates sessions
(:meth:`~sip_media.sip.engine.Engine.new_session`) with the hook that answers re-offers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from sip_media.sip import indialog
from sip_media.sip import notifications as n
from sip_media.sip.core import SipCore
from sip_media.sip.dialog import (
    Dialog,
    DialogState,
    build_request,
    new_branch,
    strip_tag,
    via_header,
)
from sip_media.sip.msgview import MsgView
from sip_media.sip.reinvite import Reinvites
from sip_media.sip.routing import Route
from sip_media.sip.sessions import SessionTable
from sip_media.sip.states import CAUSES, InviteSessionState, ReinviteState
from sip_media.sip.timers import TimerHandle
from sip_media.sip.transaction import ServerTransaction, TxState

log = logging.getLogger(__name__)

#: The owner's answer to a remote re-offer on a session (see ``reinvite.Reinvites``).
ReofferHook = Callable[["Invitation", bytes | None], bytes | None]


class Invitation:
    """An INVITE dialog usage; ``direction`` is ``outgoing`` (UAC) or ``incoming`` (UAS)."""

    def __init__(
        self,
        core: SipCore,
        table: SessionTable[Invitation],
        leg_id: str,
        direction: str,
        answer_sdp: ReofferHook,
    ) -> None:
        self.core = core
        self.table = table
        self.leg_id = leg_id
        self.direction = direction
        self.state = (
            InviteSessionState.OUTGOING if direction == "outgoing" else InviteSessionState.INCOMING
        )
        self.reinvites = Reinvites(core, self, lambda offer: answer_sdp(self, offer), self._end)
        self.dialog: Dialog | None = None
        self.local_sdp: bytes | None = None
        self.remote_sdp: bytes | None = None
        self.invite_tx: ServerTransaction | None = None  # UAS: the initial INVITE
        self.request: MsgView | None = None
        self.route: Route | None = None
        self.refers: dict[str, tuple[str, int]] = {}
        self.user: str | None = None  # digest-authenticated local user (UAS)
        self.replaces: str | None = None  # leg_id named by an incoming Replaces
        # UAC bookkeeping
        self._invite_parts: dict[str, str] = {}
        self._invite_cseq = 1
        self._ack: bytes | None = None
        self._provisional = False
        self._cancel_wanted = False
        self._end_cause: str | None = None
        self._timeout: TimerHandle | None = None
        self._auth_tried = False
        self._bye_after_ack = False
        self._ack_hold: TimerHandle | None = None  # our 2xx ACK waits for ``confirm``

    # ------------------------------------------------------------------ re-INVITE
    @property
    def reinvite_state(self) -> ReinviteState:
        return self.reinvites.state

    def reinvite(self, sdp: bytes | None) -> asyncio.Future[tuple[int, bytes | None]]:
        """Send a re-INVITE (with ``sdp``, else the current local SDP); (status, sdp)."""
        return self.reinvites.send(sdp)

    def on_reinvite(self, msg: MsgView, tx: ServerTransaction) -> None:
        """Remote re-INVITE (§14.2): glare -> 491, overlapping -> 500, else answer."""
        self.reinvites.receive(msg, tx)

    # ------------------------------------------------------------------ state machine
    def transition(self, new: InviteSessionState) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        log.debug("session %s: %s -> %s", self.leg_id, old.value, new.value)
        self.core.notify(n.SessionDidChangeState(self.leg_id, old.value, new.value))
        if new is InviteSessionState.DISCONNECTED:
            if self._timeout is not None:
                self._timeout.cancel()
            if self.dialog is not None:
                self.dialog.transition(DialogState.TERMINATED)
            self.table.forget(self)

    def _end(self, cause: str, status: int, by: str) -> None:
        if self.state is InviteSessionState.DISCONNECTED:
            return
        was_connected = self.state in (
            InviteSessionState.CONNECTING,
            InviteSessionState.CONNECTED,
            InviteSessionState.DISCONNECTING,
        )
        self.transition(InviteSessionState.DISCONNECTED)
        if was_connected or cause in ("cancelled", "no-answer", "replaced"):
            self.core.notify(n.SessionDidEnd(self.leg_id, cause, status, by))
        else:
            self.core.notify(n.SessionDidFail(self.leg_id, status, cause, by))

    # ------------------------------------------------------------------ UAC
    def dial(
        self,
        route: Route,
        from_header: str,
        extra: tuple[tuple[str, str], ...],
        sdp: bytes | None,
        timeout: float,
    ) -> None:
        core = self.core
        self.route = route
        self.local_sdp = sdp
        transport = core.transport_for(route.transport)
        host, port = transport.local
        local_tag = core.new_tag()
        call_id = core.new_call_id()
        user = route.from_user or "sip_media"
        contact = f"<sip:{user}@{host}:{port}{core.transport_param(transport)}>"
        to = f"<{route.request_uri}>"
        self.dialog = Dialog(
            call_id=call_id,
            local_tag=local_tag,
            remote_tag="",
            local_uri=from_header,
            remote_uri=to,
            remote_target=route.request_uri,
            local_contact=contact,
            local_seq=0,
        )
        self.table.register_session(self)
        self._send_invite(extra)
        if timeout > 0:
            self._timeout = core.scheduler.call_later(timeout, self._no_answer)

    def _send_invite(self, extra: tuple[tuple[str, str], ...]) -> None:
        assert self.dialog is not None and self.route is not None
        core = self.core
        transport = core.transport_for(self.route.transport)
        branch = new_branch()
        via = via_header(transport.name, *transport.local, branch)
        cseq = self.dialog.next_cseq()
        self._invite_cseq = cseq
        self._invite_parts = {"via": via, "branch": branch, "to": self.dialog.remote_uri}
        self._extra = extra
        data = self.dialog.request(
            "INVITE", via, cseq, extra=extra, body=self.local_sdp or b"", content_type=None
        )
        core.send_request(
            data,
            self.route.address,
            transport,
            (branch, "INVITE"),
            invite=True,
            on_response=self.on_invite_response,
            on_timeout=lambda: self._end("timeout", 408, "local"),
            ack_factory=self._non2xx_ack,
            on_transport_error=lambda: self._end("unreachable", 503, "local"),
        )

    def _non2xx_ack(self, response: MsgView) -> bytes:
        assert self.dialog is not None
        assert self.route is not None
        return build_request(
            "ACK",
            self.route.request_uri,  # §17.1.1.3: same Request-URI as the INVITE
            via=self._invite_parts["via"],
            from_=self.dialog.from_header(),
            to=response.to,
            call_id=self.dialog.call_id,
            cseq=self._invite_cseq,
        )

    def _cancel(self) -> None:
        assert self.dialog is not None and self.route is not None
        transport = self.core.transport_for(self.route.transport)
        data = build_request(
            "CANCEL",
            self.route.request_uri,
            via=self._invite_parts["via"],
            from_=self.dialog.from_header(),
            to=self._invite_parts["to"],
            call_id=self.dialog.call_id,
            cseq=self._invite_cseq,
        )
        self.core.send_request(
            data,
            self.route.address,
            transport,
            (self._invite_parts["branch"], "CANCEL"),
            invite=False,
            on_response=lambda status, msg: None,
            on_timeout=lambda: self._end(self._end_cause or "cancelled", 487, "local"),
        )

    def _no_answer(self) -> None:
        if self.state in (InviteSessionState.OUTGOING, InviteSessionState.EARLY):
            self._end_cause = "no-answer"
            self.hangup()

    def on_invite_response(self, status: int, msg: MsgView) -> None:
        dialog = self.dialog
        assert dialog is not None
        if self.state is InviteSessionState.DISCONNECTED and status >= 300:
            return
        if status < 200:
            self._provisional = True
            if self._cancel_wanted:
                self._cancel_wanted = False
                self._cancel()
                return
            if msg.to_tag and not dialog.remote_tag:
                self._establish(msg)
            if self.state is InviteSessionState.OUTGOING and status > 100:
                self.transition(InviteSessionState.EARLY)
            if status > 100:
                sdp = msg.body or None
                if sdp:
                    self.remote_sdp = sdp
                if status in (180, 183):
                    self.core.notify(n.SessionGotRingIndication(self.leg_id, status, sdp))
                else:
                    self.core.notify(
                        n.SessionGotProvisionalResponse(self.leg_id, status, msg.reason, sdp)
                    )
            return
        if status < 300:
            self._on_invite_2xx(msg)
            return
        if status in (401, 407) and self._retry_with_auth(msg):
            return
        if self._timeout is not None:
            self._timeout.cancel()
        cause = self._end_cause or (
            "cancelled" if status == 487 else CAUSES.get(status, "rejected")
        )
        self._end(cause, status, "local" if self._end_cause or status == 487 else "remote")

    def _retry_with_auth(self, msg: MsgView) -> bool:
        route = self.route
        if self._auth_tried or route is None or not route.username:
            return False
        header = self.core.client_auth(msg, "INVITE", route)
        if header is None:
            return False
        self._auth_tried = True
        name = "Authorization" if msg.status == 401 else "Proxy-Authorization"
        self._send_invite((*self._extra, (name, header)))
        return True

    def _establish(self, msg: MsgView) -> None:
        dialog = self.dialog
        assert dialog is not None
        dialog.remote_tag = msg.to_tag
        dialog.route_set = list(reversed(msg.header_list("record-route")))
        dialog.refresh_target(msg.header("contact"))
        self.table.register_dialog(self)

    def _on_invite_2xx(self, msg: MsgView) -> None:
        dialog = self.dialog
        assert dialog is not None
        if self.state in (InviteSessionState.CONNECTED, InviteSessionState.DISCONNECTING) or (
            self.state is InviteSessionState.DISCONNECTED and self._ack is not None
        ):
            if msg.to_tag != dialog.remote_tag and dialog.remote_tag:
                self._drop_fork(msg)
                return
            if self._ack is not None and self._ack_hold is None:  # re-ACK (§13.2.2.4)
                tname = self.route.transport if self.route else None
                self.core.send_raw(self._ack, dialog.next_hop(), tname)
            return
        if dialog.remote_tag != msg.to_tag:
            if dialog.remote_tag:
                self.table.unregister_dialog(self)
            self._establish(msg)
        dialog.transition(DialogState.CONFIRMED)
        if self._timeout is not None:
            self._timeout.cancel()
        self.transition(InviteSessionState.CONNECTING)
        transport = self.core.transport_for(self.route.transport if self.route else None)
        via = via_header(transport.name, *transport.local, new_branch())
        self._ack = dialog.request("ACK", via, self._invite_cseq)
        hold = self.core.config.ack_hold
        if hold > 0:
            # Held until the owner has stored the answer (``confirm``): if this process
            # dies meanwhile, the far end keeps retransmitting its 2xx and whichever
            # process then holds our port ACKs and BYEs it as a stray (``stray``).
            self._ack_hold = self.core.scheduler.call_later(hold, self.confirm)
        else:
            self.core.send_raw(self._ack, dialog.next_hop(), transport.name)
        if msg.body:
            self.remote_sdp = msg.body
        if self.state is InviteSessionState.DISCONNECTED:
            return
        self.transition(InviteSessionState.CONNECTED)
        self.core.notify(n.SessionDidStart(self.leg_id, msg.body or None))
        if self._cancel_wanted or self._end_cause:
            self.hangup()  # CANCEL crossed the 2xx: end with BYE

    def confirm(self) -> None:
        """UAC: send the ACK of the 2xx if ``ack_hold`` is holding it (at once otherwise:
        the owner says the answer is durable, the hold ran out, or the dialog needs its
        next request, which must not overtake the ACK)."""
        if self._ack_hold is None:
            return
        self._ack_hold.cancel()
        self._ack_hold = None
        if self._ack is not None and self.dialog is not None:
            transport = self.core.transport_for(self.route.transport if self.route else None)
            self.core.send_raw(self._ack, self.dialog.next_hop(), transport.name)

    def _drop_fork(self, msg: MsgView) -> None:
        """A 2xx from a second fork (§13.2.2.4): ACK it, then BYE that dialog at once."""
        assert self.dialog is not None
        fork = replace(self.dialog, remote_tag=msg.to_tag, local_seq=self._invite_cseq)
        fork.route_set = list(reversed(msg.header_list("record-route")))
        fork.refresh_target(msg.header("contact"))
        transport = self.core.transport_for(self.route.transport if self.route else None)
        for method in ("ACK", "BYE"):
            via = via_header(transport.name, *transport.local, new_branch())
            cseq = self._invite_cseq if method == "ACK" else fork.next_cseq()
            self.core.send_raw(fork.request(method, via, cseq), fork.next_hop(), transport.name)

    # ------------------------------------------------------------------ UAS
    def accept_request(self, msg: MsgView, tx: ServerTransaction) -> None:
        """Initial INVITE: build the UAS dialog (§12.1.1)."""
        self.request = msg
        self.invite_tx = tx
        tx.on_ack_timeout = self._ack_timeout
        transport = self.core.transport_of(tx)
        host, port = transport.local
        self.dialog = Dialog(
            call_id=msg.call_id,
            local_tag=self.core.new_tag(),
            remote_tag=msg.from_tag,
            local_uri=strip_tag(msg.to),
            remote_uri=strip_tag(msg.from_),
            remote_target=msg.ruri,
            local_contact=f"<sip:{host}:{port}{self.core.transport_param(transport)}>",
            local_seq=0,
            remote_seq=msg.cseq,
            route_set=msg.header_list("record-route"),
        )
        self.dialog.refresh_target(msg.header("contact"))
        self.remote_sdp = msg.body or None
        self.table.register_dialog(self)

    def _respond_invite(self, status: int, reason: str, sdp: bytes | None = None) -> None:
        assert self.request is not None and self.invite_tx is not None and self.dialog
        data = self.core.response_bytes(
            self.request,
            status,
            reason,
            to_tag=self.dialog.local_tag,
            contact=self.dialog.local_contact if status < 300 else None,
            body=sdp or b"",
        )
        self.invite_tx.respond(status, data)

    def ring(self, status: int = 180, sdp: bytes | None = None) -> None:
        if self.state not in (InviteSessionState.INCOMING, InviteSessionState.EARLY):
            return
        self.transition(InviteSessionState.EARLY)
        if self.dialog is not None:
            self.dialog.transition(DialogState.EARLY)
        self._respond_invite(status, "Ringing" if status == 180 else "Session Progress", sdp)

    def answer(self, sdp: bytes | None) -> None:
        if self.state not in (InviteSessionState.INCOMING, InviteSessionState.EARLY):
            return
        self.local_sdp = sdp
        assert self.dialog is not None
        self.dialog.transition(DialogState.CONFIRMED)
        self.transition(InviteSessionState.CONNECTING)
        self._respond_invite(200, "OK", sdp)

    def reject(self, code: int, reason: str | None = None) -> None:
        if self.state not in (InviteSessionState.INCOMING, InviteSessionState.EARLY):
            return
        self._respond_invite(code, reason or self.core.reason(code))
        self._end(CAUSES.get(code, "rejected"), code, "local")

    def on_ack(self, msg: MsgView) -> None:
        if self.invite_tx is not None and self.invite_tx.state is TxState.ACCEPTED:
            self.invite_tx.ack_2xx()
        self.reinvites.on_ack(msg)
        if self.state is InviteSessionState.CONNECTING:
            self.transition(InviteSessionState.CONNECTED)
            self.core.notify(n.SessionDidStart(self.leg_id, msg.body or self.remote_sdp))
            if self._bye_after_ack:
                self.hangup()

    def _ack_timeout(self) -> None:
        if self.state in (InviteSessionState.CONNECTING, InviteSessionState.CONNECTED):
            log.warning("session %s: no ACK for 2xx, sending BYE", self.leg_id)
            self._end_cause = "no-ack"
            self.hangup()

    def on_cancel(self) -> bool:
        """CANCEL matched our INVITE transaction: answer 487 if still unanswered."""
        if self.state in (InviteSessionState.INCOMING, InviteSessionState.EARLY):
            self._respond_invite(487, "Request Terminated")
            self._end("cancelled", 487, "remote")
            return True
        return False

    # ------------------------------------------------------------------ both
    def hangup(self) -> None:
        state = self.state
        if state is InviteSessionState.DISCONNECTED:
            return
        if self.direction == "incoming" and state in (
            InviteSessionState.INCOMING,
            InviteSessionState.EARLY,
        ):
            self._respond_invite(480, "Temporarily Unavailable")
            self._end(self._end_cause or "cancelled", 480, "local")
            return
        if state in (InviteSessionState.OUTGOING, InviteSessionState.EARLY):
            self._end_cause = self._end_cause or "cancelled"
            if self._provisional:
                self._cancel()
            else:
                self._cancel_wanted = True  # §9.1: CANCEL only after a provisional
            return
        if state is InviteSessionState.DISCONNECTING:
            return
        if (
            self.direction == "incoming"
            and state is InviteSessionState.CONNECTING
            and (self._end_cause != "no-ack")
        ):
            self._bye_after_ack = True  # §15: no BYE before the ACK for our 2xx
            return
        self.transition(InviteSessionState.DISCONNECTING)
        cause = self._end_cause or "normal"
        indialog.send(
            self.core,
            self,
            "BYE",
            on_done=lambda status, msg: self._end(cause, 200, "local"),
        )

    def on_bye(self, msg: MsgView, tx: ServerTransaction) -> None:
        self.core.respond(msg, tx, 200, "OK")
        if self.invite_tx is not None and self.state is InviteSessionState.CONNECTING:
            self.invite_tx.ack_2xx()
        self._end("normal", 200, "remote")

    def pending_invite(self) -> tuple[str, str, int]:
        """UAC: the INVITE in flight as (Via, To, CSeq), for a dialog record."""
        parts = self._invite_parts
        return parts["via"], parts["to"], self._invite_cseq

    def replaces_value(self) -> str:
        """``Replaces`` value naming this dialog for the remote peer (RFC 3891)."""
        assert self.dialog is not None
        d = self.dialog
        return f"{d.call_id};to-tag={d.remote_tag};from-tag={d.local_tag}"
