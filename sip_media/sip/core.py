"""What a transaction user needs of the SIP engine, as a protocol.

Where it sits: between ``engine`` (which provides it) and the transaction users that
``engine`` drives: ``agent.Invitation`` and its ``reinvite.Reinvites``, ``indialog``,
``registrar``, ``outbound``, ``stray``, and ``stale``/``stale_tx`` (ending a previous
process's dialogs). They are written against :class:`SipCore` (send a request
through a client transaction, answer a request, stamp Vias, pick a transport, a clock,
stats, the notification center) and :class:`DialogUsage` (what an in-dialog request
needs of a session), so none of them imports the engine that calls them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from sip_media.sip import notifications as n
from sip_media.sip.config import EngineConfig
from sip_media.sip.dialog import Dialog
from sip_media.sip.msgview import MsgView
from sip_media.sip.routing import Route
from sip_media.sip.stats import Stats
from sip_media.sip.timers import Scheduler
from sip_media.sip.transaction import ClientTransaction, ServerTransaction, TransactionTable
from sip_media.sip.transport import Address, AllowList, Transport


class SipCore(Protocol):
    """The engine as its transaction users see it."""

    @property
    def config(self) -> EngineConfig: ...

    @property
    def allow(self) -> AllowList: ...

    @property
    def stats(self) -> Stats: ...

    @property
    def scheduler(self) -> Scheduler: ...

    @property
    def transports(self) -> Sequence[Transport]:
        """The bound transports, in the order they were started."""
        ...

    @property
    def table(self) -> TransactionTable:
        """The live transactions (a stale dialog's adopted ones are added here)."""
        ...

    @property
    def sessions(self) -> Mapping[str, DialogUsage]:
        """The live INVITE sessions by leg id."""
        ...

    def stamp_via(self, via: str, msg: MsgView) -> str:
        """``via`` with the received/rport a response to ``msg`` carries."""
        ...

    def transport_for(self, name: str | None) -> Transport:
        """The transport of that name (UDP when None), else the first one."""
        ...

    def transport_of(self, tx: ServerTransaction) -> Transport:
        """The transport a server transaction's request came in on."""
        ...

    def transport_param(self, transport: Transport) -> str:
        """``;transport=tcp`` for a Contact on a non-UDP transport, else ``""``."""
        ...

    def new_tag(self) -> str: ...

    def new_call_id(self) -> str: ...

    def reason(self, status: int) -> str:
        """The standard reason phrase of a status."""
        ...

    def is_local_host(self, host: str) -> bool:
        """True when ``host`` names this UAS (a served domain, a bound address)."""
        ...

    def notify(self, notification: n.Notification) -> None:
        """Post a happening to the notification center."""
        ...

    def send_raw(self, data: bytes, dest: Address, transport: str | None) -> None:
        """Send outside any transaction (ACK for a 2xx)."""
        ...

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
        """Start a client transaction for ``data``."""
        ...

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
        """A response to ``msg`` (Via stamped with received/rport)."""
        ...

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
        """Answer ``msg`` through its server transaction."""
        ...

    def client_auth(self, msg: MsgView, method: str, route: Route) -> str | None:
        """Credentials answering a 401/407 on ``route``, or None."""
        ...


class DialogUsage(Protocol):
    """What sending a request inside a session's dialog needs of the session."""

    @property
    def leg_id(self) -> str: ...

    @property
    def direction(self) -> str: ...

    @property
    def dialog(self) -> Dialog | None: ...

    @property
    def route(self) -> Route | None: ...

    @property
    def invite_tx(self) -> ServerTransaction | None: ...

    @property
    def refers(self) -> dict[str, tuple[str, int]]: ...

    def confirm(self) -> None:
        """Send a held ACK of our INVITE's 2xx now (no request may overtake it)."""
