"""Session state enums shared by ``agent`` (the INVITE session) and ``reinvite``.

``InviteSessionState`` is sipsimple's Invitation state: outgoing|incoming -> early ->
connecting -> connected -> disconnecting -> disconnected; ``ReinviteState`` is the
re-INVITE sub-state of a connected session.
"""

from __future__ import annotations

import enum


class InviteSessionState(enum.Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"
    EARLY = "early"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"


class ReinviteState(enum.Enum):
    IDLE = "idle"
    SENT = "sent"
    RECEIVED = "received"


# Final INVITE status -> Ended.cause reported to the service.
CAUSES = {486: "busy", 600: "busy", 603: "declined", 408: "no-answer", 480: "unavailable"}
