"""REGISTER handling (placeholder until digest/bindings wiring lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sip_media.sip.msgview import MsgView
from sip_media.sip.transaction import ServerTransaction
from sip_media.sip.transport import Address, Transport

if TYPE_CHECKING:
    from sip_media.sip.engine import Engine
    from sip_media.sip.routing import Route


class Registrar:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def handle(
        self, msg: MsgView, tx: ServerTransaction, source: Address, transport: Transport
    ) -> None:
        self.engine.respond(msg, tx, 501, "Not Implemented")

    def restore(self, bindings: object) -> None:
        return None

    def contacts_for(self, user: str) -> list[tuple[str, Address | None, str]]:
        return []


def client_authorization(msg: MsgView, method: str, route: Route) -> str | None:
    return None
