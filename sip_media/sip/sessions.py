"""The engine's table of live INVITE sessions: by leg id, by dialog, by INVITE transaction.

Where it sits: owned by ``engine`` (which looks sessions up to dispatch requests and
responses), written by each ``agent.Invitation`` as it gains a dialog and when it ends.
Generic over the session type so the table needs nothing of the session but its keys.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from sip_media.sip.dialog import Dialog
from sip_media.sip.transaction import ServerTransaction


class Keyed(Protocol):
    """The keys a session is filed under."""

    @property
    def leg_id(self) -> str: ...

    @property
    def dialog(self) -> Dialog | None: ...

    @property
    def invite_tx(self) -> ServerTransaction | None: ...


S = TypeVar("S", bound=Keyed)


class SessionTable(Generic[S]):
    """Live sessions, by leg id, by dialog key and by their initial INVITE transaction."""

    def __init__(self) -> None:
        self.sessions: dict[str, S] = {}
        self.dialogs: dict[tuple[str, str, str], S] = {}
        self.by_invite_tx: dict[tuple[str, ...], S] = {}

    def register_session(self, session: S) -> None:
        """A UAC session before any dialog exists (no remote tag yet)."""
        self.sessions[session.leg_id] = session

    def register_dialog(self, session: S) -> None:
        assert session.dialog is not None
        self.sessions[session.leg_id] = session
        self.dialogs[session.dialog.key] = session

    def unregister_dialog(self, session: S) -> None:
        if session.dialog is not None and self.dialogs.get(session.dialog.key) is session:
            del self.dialogs[session.dialog.key]

    def forget(self, session: S) -> None:
        """A session is over: drop it from every table (transactions finish on their own)."""
        if self.sessions.get(session.leg_id) is session:
            del self.sessions[session.leg_id]
        self.unregister_dialog(session)
        if session.invite_tx is not None:
            self.by_invite_tx.pop(session.invite_tx.key, None)
