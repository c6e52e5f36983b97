"""In-dialog requests other than the INVITE itself, and error answers for bad requests.

Where it sits: called by ``engine`` once a request has matched a session's dialog
(re-INVITE and BYE go to ``agent.Invitation`` instead); INFO (DTMF relay, RFC 2976 with
application/dtmf-relay), MESSAGE, NOTIFY, OPTIONS and REFER (RFC 3515, with its implicit
subscription and message/sipfrag NOTIFYs) are handled here and posted as notifications.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from sip_media.sip import notifications as n
from sip_media.sip.core import DialogUsage, SipCore
from sip_media.sip.dialog import new_branch, via_header
from sip_media.sip.errors import SipParseError
from sip_media.sip.msgview import MsgView, param
from sip_media.sip.transaction import ServerTransaction

log = logging.getLogger(__name__)


def handle(engine: SipCore, inv: DialogUsage, msg: MsgView, tx: ServerTransaction) -> None:
    """An in-dialog request other than INVITE and BYE."""
    method = msg.method
    if method == "INFO":
        _info(engine, inv, msg, tx)
    elif method == "MESSAGE":
        engine.respond(msg, tx, 200, "OK")
        engine.notify(n.SessionGotMessage(inv.leg_id, _ctype(msg), msg.body, msg.from_))
    elif method == "NOTIFY":
        engine.respond(msg, tx, 200, "OK")
        engine.notify(
            n.SessionGotNotify(
                inv.leg_id,
                (msg.header("event") or "").split(";", 1)[0].strip(),
                _ctype(msg),
                msg.body,
                msg.header("subscription-state") or "",
            )
        )
    elif method == "REFER":
        _refer(engine, inv, msg, tx)
    elif method in ("OPTIONS", "UPDATE"):
        engine.respond(msg, tx, 200, "OK")
    else:
        engine.respond(msg, tx, 405, "Method Not Allowed")


def send(
    engine: SipCore,
    inv: DialogUsage,
    method: str,
    *,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    on_done: Callable[[int, MsgView | None], None] | None = None,
) -> None:
    """Send ``method`` inside the session's dialog; ``on_done(status, msg)`` on each final
    (for INVITE also each retransmitted 2xx, so the caller can re-ACK); 408 on timeout,
    503 when the transport refused (allow-list)."""
    dialog = inv.dialog
    assert dialog is not None
    inv.confirm()
    transport = engine.transport_for(inv.route.transport if inv.route else None)
    if inv.invite_tx is not None:
        transport = engine.transport_of(inv.invite_tx)
    branch = new_branch()
    via = via_header(transport.name, *transport.local, branch)
    data = dialog.request(method, via, extra=extra, body=body, content_type=content_type)

    def on_response(status: int, msg: MsgView) -> None:
        if status >= 200 and on_done is not None:
            on_done(status, msg)

    engine.send_request(
        data,
        destination(engine, inv),
        transport,
        (branch, method),
        invite=method == "INVITE",
        on_response=on_response,
        on_timeout=lambda: on_done(408, None) if on_done is not None else None,
        on_transport_error=lambda: on_done(503, None) if on_done is not None else None,
    )


def destination(engine: SipCore, inv: DialogUsage) -> tuple[str, int]:
    """Next hop for a request in this dialog; for a UAS dialog whose remote target is
    outside the allow-list (NAT, hostile Contact), fall back to the INVITE's source."""
    dialog = inv.dialog
    assert dialog is not None
    dest = dialog.next_hop()
    if (
        inv.direction == "incoming"
        and dialog.remote_addr is not None
        and not dialog.route_set
        and not engine.allow.permits(dest[0])
    ):
        return dialog.remote_addr
    return dest


def _ctype(msg: MsgView) -> str:
    return (msg.header("content-type") or "").split(";", 1)[0].strip().lower()


def parse_dtmf_relay(body: bytes) -> tuple[str | None, int | None]:
    digit: str | None = None
    duration: int | None = None
    for line in body.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        key = key.strip().lower()
        if key == "signal":
            digit = value.strip()[:1] or None
        elif key == "duration":
            try:
                duration = int(value.strip())
            except ValueError:
                duration = None
    return digit, duration


def _info(engine: SipCore, inv: DialogUsage, msg: MsgView, tx: ServerTransaction) -> None:
    ctype = _ctype(msg)
    digit: str | None = None
    duration: int | None = None
    if ctype == "application/dtmf-relay":
        digit, duration = parse_dtmf_relay(msg.body)
    elif ctype == "application/dtmf":
        digit = msg.body.decode("ascii", "replace").strip()[:1] or None
    engine.respond(msg, tx, 200, "OK")
    engine.notify(n.SessionGotInfo(inv.leg_id, ctype, msg.body, digit, duration))


def _refer(engine: SipCore, inv: DialogUsage, msg: MsgView, tx: ServerTransaction) -> None:
    refer_to = msg.header("refer-to")
    if not refer_to:
        engine.respond(msg, tx, 400, "Missing Refer-To")
        return
    refer_id = f"{inv.leg_id}:{msg.cseq}"
    inv.refers[refer_id] = (f"refer;id={msg.cseq}", msg.cseq)
    engine.respond(msg, tx, 202, "Accepted")
    replaces: str | None = None
    lower = refer_to.lower()
    i = lower.find("replaces=")
    if i >= 0:
        end = len(refer_to)
        for stop in (">", "&"):
            j = refer_to.find(stop, i)
            if j >= 0:
                end = min(end, j)
        from urllib.parse import unquote

        replaces = unquote(refer_to[i + len("replaces=") : end])
    engine.notify(
        n.SessionGotRefer(inv.leg_id, refer_to, msg.header("referred-by"), replaces, refer_id)
    )
    send_refer_notify(engine, inv, refer_id, 100, "Trying", final=False)


def send_refer_notify(
    engine: SipCore, inv: DialogUsage, refer_id: str, status: int, reason: str, *, final: bool
) -> None:
    """The implicit subscription's NOTIFY carrying ``SIP/2.0 <status>`` (RFC 3515 §2.4.5)."""
    entry = inv.refers.get(refer_id)
    if entry is None or inv.dialog is None:
        log.info("no REFER subscription %s on %s", refer_id, inv.leg_id)
        return
    event, _ = entry
    state = "terminated;reason=noresource" if final else "active;expires=60"
    if final:
        del inv.refers[refer_id]
    send(
        engine,
        inv,
        "NOTIFY",
        extra=(("Event", event), ("Subscription-State", state)),
        body=f"SIP/2.0 {status} {reason}\r\n".encode(),
        content_type="message/sipfrag;version=2.0",
    )


def send_and_wait(
    engine: SipCore,
    inv: DialogUsage,
    method: str,
    *,
    extra: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> asyncio.Future[tuple[int, MsgView | None]]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[tuple[int, MsgView | None]] = loop.create_future()

    def done(status: int, msg: MsgView | None) -> None:
        if not fut.done():
            fut.set_result((status, msg))

    send(engine, inv, method, extra=extra, body=body, content_type=content_type, on_done=done)
    return fut


def out_of_dialog_message(engine: SipCore, msg: MsgView, tx: ServerTransaction) -> None:
    engine.respond(msg, tx, 200, "OK")
    engine.notify(n.SessionGotMessage("", _ctype(msg), msg.body, msg.from_, msg.to, msg.ruri))


def bad_request_bytes(data: bytes, source: tuple[str, int], exc: SipParseError) -> bytes | None:
    """Best-effort 400 (or the parser's status) for a request the parser refused."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    wanted: dict[str, list[str]] = {
        "via": [],
        "v": [],
        "from": [],
        "f": [],
        "to": [],
        "t": [],
        "call-id": [],
        "i": [],
        "cseq": [],
    }
    for line in head.split("\r\n")[1:]:
        name, colon, value = line.partition(":")
        key = name.strip().lower()
        if colon and key in wanted:
            wanted[key].append(value.strip())
    vias = wanted["via"] + wanted["v"]
    if not vias:
        return None
    top = vias[0]
    if ";rport" in top and param(top, "rport") in (None, ""):
        top = top.replace(";rport", f";rport={source[1]}", 1)
    lines = [f"SIP/2.0 {exc.status} {_clean(exc.reason)}", f"Via: {top};received={source[0]}"]
    lines += [f"Via: {v}" for v in vias[1:]]
    for label, keys in (
        ("From", ("from", "f")),
        ("To", ("to", "t")),
        ("Call-ID", ("call-id", "i")),
    ):
        values = wanted[keys[0]] + wanted[keys[1]]
        if values:
            lines.append(f"{label}: {values[0]}")
    if wanted["cseq"]:
        lines.append(f"CSeq: {wanted['cseq'][0]}")
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")


def _clean(reason: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in reason)[:120]
