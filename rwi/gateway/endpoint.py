"""``/rwi/v1``: authenticate at upgrade, then feed frames to the service in order."""

from __future__ import annotations

import logging
import uuid

from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from rwi import protocol
from rwi.config import TokenConfig
from rwi.errors import RwiError
from rwi.gateway.connection import Connection
from rwi.gateway.outbox import Outbox
from rwi.gateway.ratelimit import TokenBucket
from rwi.service import Service

log = logging.getLogger(__name__)

#: Frames above this size are a WebSocket-level violation and close the connection;
#: between the contract's limit and this one they get an error reply.
WS_MAX_SIZE = 1 << 20


def authenticate(
    headers: Headers, query: QueryParams, tokens: tuple[TokenConfig, ...]
) -> TokenConfig | None:
    """Bearer header first; ``?token=`` only when no Authorization header is sent."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        secret = secret.strip()
    else:
        secret = query.get("token", "")
    if not secret:
        return None
    for token in tokens:
        if token.token == secret:
            return token
    return None


async def rwi_endpoint(websocket: WebSocket) -> None:
    service: Service = websocket.app.state.service
    config = service.config.rwi
    token = authenticate(websocket.headers, websocket.query_params, config.tokens)
    if token is None:
        await websocket.send_denial_response(
            JSONResponse(
                {"error": "missing or unknown token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="rwi"'},
            )
        )
        return
    await websocket.accept()
    if len(service.connections) >= config.max_connections:
        err = RwiError("rate_limited", f"max_connections ({config.max_connections}) reached")
        await websocket.send_json(protocol.error(None, err))
        await websocket.close(code=1013)
        return

    outbox = Outbox(websocket.send_text)
    outbox.start()
    client = websocket.client
    connection = Connection(
        connection_id=uuid.uuid4().hex[:16],
        token=token,
        outbox=outbox,
        commands=TokenBucket(config.command_rate_limit),
        originates=TokenBucket(config.originate_rate_limit),
        remote=f"{client.host}:{client.port}" if client else "",
    )
    reason = "client closed"
    try:
        await service.open_session(connection)
        while not outbox.closed:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                await service.submit(
                    connection,
                    "",
                    RwiError("parse_error", f"binary frames are not accepted ({len(data)} bytes)"),
                )
            elif len(text) > config.max_frame_bytes or len(text.encode()) > config.max_frame_bytes:
                await service.submit(
                    connection,
                    text[:256],
                    RwiError(
                        "invalid_request",
                        f"frame is larger than {config.max_frame_bytes} bytes",
                    ),
                )
            else:
                await service.submit(connection, text)
        if outbox.closed:
            reason = "slow consumer"
    except WebSocketDisconnect:
        pass
    finally:
        await service.close_session(connection.connection_id, reason)
        await outbox.close()
