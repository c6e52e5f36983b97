"""Typed notifications and the asyncio notification bus.

Where it sits: between the SIP stack (``agent``, ``registrar``) and whoever drives it
(``sip_media.adapter``). Sessions post frozen dataclasses here (shaped after sipsimple's
SIPSessionDidStart / DidEnd / GotRingIndication ...); subscribers get them synchronously
in post order, or through an async iterator backed by a queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Notification:
    session_id: str


@dataclass(frozen=True, slots=True)
class SessionNewIncoming(Notification):
    request_uri: str
    from_header: str
    to_header: str
    headers: tuple[tuple[str, str], ...]
    sdp: bytes | None
    source: tuple[str, int]
    authenticated_user: str | None = None


@dataclass(frozen=True, slots=True)
class SessionGotRingIndication(Notification):
    status: int
    sdp: bytes | None


@dataclass(frozen=True, slots=True)
class SessionGotProvisionalResponse(Notification):
    status: int
    reason: str
    sdp: bytes | None


@dataclass(frozen=True, slots=True)
class SessionDidStart(Notification):
    sdp: bytes | None


@dataclass(frozen=True, slots=True)
class SessionDidFail(Notification):
    status: int
    reason: str
    by: str  # "local" | "remote"


@dataclass(frozen=True, slots=True)
class SessionDidEnd(Notification):
    cause: str
    status: int
    by: str  # "local" | "remote"


@dataclass(frozen=True, slots=True)
class SessionDidChangeState(Notification):
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class SessionGotReinvite(Notification):
    """Remote re-INVITE accepted; ``hold`` is True when the offer puts us on hold."""

    sdp: bytes | None
    hold: bool


@dataclass(frozen=True, slots=True)
class SessionReinviteResult(Notification):
    status: int
    sdp: bytes | None


@dataclass(frozen=True, slots=True)
class SessionGotInfo(Notification):
    content_type: str
    body: bytes
    digit: str | None = None
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SessionGotMessage(Notification):
    content_type: str
    body: bytes
    from_header: str = ""
    to_header: str = ""
    request_uri: str = ""


@dataclass(frozen=True, slots=True)
class SessionGotNotify(Notification):
    event: str
    content_type: str
    body: bytes
    subscription_state: str = ""


@dataclass(frozen=True, slots=True)
class SessionGotRefer(Notification):
    refer_to: str
    referred_by: str | None
    replaces: str | None
    refer_id: str = ""


@dataclass(frozen=True, slots=True)
class RegistrationDidChange(Notification):
    """``session_id`` is the address-of-record; ``bindings`` are its current bindings."""

    bindings: tuple[object, ...] = field(default=())


Subscriber = Callable[[Notification], None]


class NotificationCenter:
    """A tiny synchronous pub/sub bus with async-iterator subscribers."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def post(self, notification: Notification) -> None:
        for callback in list(self._subscribers):
            try:
                callback(notification)
            except Exception:
                log.exception("notification subscriber failed on %r", notification)

    async def stream(self) -> AsyncIterator[Notification]:
        queue: asyncio.Queue[Notification] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            unsubscribe()
