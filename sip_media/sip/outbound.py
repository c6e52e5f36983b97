"""Out-of-dialog requests (OPTIONS, MESSAGE, REGISTER to a trunk) with digest retry.

Where it sits: beside ``agent`` as a transaction user for one-shot requests; used by the
adapter. A 401/407 from a route that has credentials is answered once with an
Authorization header built by ``registrar.client_authorization``.
"""

from __future__ import annotations

import asyncio

from sip_media.sip.core import SipCore
from sip_media.sip.dialog import build_request, new_branch, new_tag, via_header
from sip_media.sip.msgview import MsgView
from sip_media.sip.routing import Route


async def request_out_of_dialog(
    engine: SipCore,
    method: str,
    route: Route,
    body: bytes = b"",
    content_type: str | None = None,
    *,
    to_uri: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> tuple[int, MsgView | None]:
    transport = engine.transport_for(route.transport)
    host, port = transport.local
    call_id = engine.new_call_id()
    from_ = f"<sip:{route.from_user or 'sip_media'}@{route.from_domain or host}>;tag={new_tag()}"
    to = f"<{to_uri or route.request_uri}>"
    cseq = 1
    headers = extra
    for _attempt in range(2):
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[int, MsgView | None]] = loop.create_future()

        def on_response(
            status: int, msg: MsgView, fut: asyncio.Future[tuple[int, MsgView | None]] = fut
        ) -> None:
            if status >= 200 and not fut.done():
                fut.set_result((status, msg))

        def on_timeout(fut: asyncio.Future[tuple[int, MsgView | None]] = fut) -> None:
            if not fut.done():
                fut.set_result((408, None))

        def on_error(fut: asyncio.Future[tuple[int, MsgView | None]] = fut) -> None:
            if not fut.done():
                fut.set_result((503, None))

        branch = new_branch()
        data = build_request(
            method,
            route.request_uri,
            via=via_header(transport.name, host, port, branch),
            from_=from_,
            to=to,
            call_id=call_id,
            cseq=cseq,
            contact=f"<sip:{route.from_user or 'sip_media'}@{host}:{port}>"
            if method == "REGISTER"
            else None,
            extra=headers,
            body=body,
            content_type=content_type,
        )
        engine.send_request(
            data,
            route.address,
            transport,
            (branch, method),
            invite=False,
            on_response=on_response,
            on_timeout=on_timeout,
            on_transport_error=on_error,
        )
        status, msg = await fut
        if status in (401, 407) and msg is not None and route.username and _attempt == 0:
            auth = engine.client_auth(msg, method, route)
            if auth is None:
                return status, msg
            name = "Authorization" if status == 401 else "Proxy-Authorization"
            headers = (*extra, (name, auth))
            cseq += 1
            continue
        return status, msg
    return 500, None
