"""``rwi.client``: the Python client of the RWI WebSocket protocol (asyncio).

    async with connect("ws://127.0.0.1:8080/rwi/v1", token) as rwi:
        await rwi.call.originate(call_id="leg_a", destination="sip:1001@local")
        answered = await rwi.events.wait("call.answered", call_id="leg_a")

One typed method per action (``rwi.client.actions``, generated from
``rwi.protocol.SPECS``), one exception per error code (``rwi.client.errors``), events
as an async iterator and waits (``rwi.client.events``), and a connection that
reconnects and resumes by itself (``rwi.client.session``).
"""

from rwi.client.errors import (
    ERRORS,
    AlreadyOwned,
    CallExists,
    CallNotFound,
    CommandError,
    Forbidden,
    IdempotencyConflict,
    InternalError,
    InvalidParams,
    InvalidRequest,
    InvalidState,
    NotFound,
    ParseError,
    RateLimited,
    RwiClientError,
    UnknownAction,
)
from rwi.client.events import Event, Events
from rwi.client.session import Client, ClientClosed, ConnectionFailed, connect

__all__ = [
    "ERRORS",
    "AlreadyOwned",
    "CallExists",
    "CallNotFound",
    "Client",
    "ClientClosed",
    "CommandError",
    "ConnectionFailed",
    "Event",
    "Events",
    "Forbidden",
    "IdempotencyConflict",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "InvalidState",
    "NotFound",
    "ParseError",
    "RateLimited",
    "RwiClientError",
    "UnknownAction",
    "connect",
]
