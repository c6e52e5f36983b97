"""The adapter seam: execute Effects on the SIP engine, report Observations back.

Where it sits: the only door between the call-control service and ``sip_media``. The
service calls ``await adapter.execute(effect)`` (results where the effect has one, e.g.
OPTIONS status and RTT) and consumes ``adapter.observations()`` (or ``subscribe``).
Internally it maps engine notifications (``sip.notifications``) to the typed
observations in ``adapter_types``. With ``no_media=True`` it answers and offers a valid
SDP pointing at the discard port, for benchmarks and interop tests.

Usage::

    config = EngineConfig(udp=[("127.0.0.1", 5060)], allowed_destinations=("127.0.0.0/8",),
                          users={"alice": "pw"}, trunks={"itsp": TrunkConfig(...)})
    adapter = SipAdapter(config, bindings=[Binding.from_dict(r) for r in persisted])
    await adapter.start()
    async for obs in adapter.observations():       # IncomingCall, Provisional, Answered,
        match obs:                                 # Ended, Reinvited, DtmfInfo, ...
            case IncomingCall(leg_id=leg):
                await adapter.execute(RingLeg(leg))
                await adapter.execute(AnswerLeg(leg, sdp=answer_from_media_engine))
            case RegistrationChanged(aor=aor, bindings=bs):
                persist(aor, [b.to_dict() for b in bs])
    await adapter.execute(DialLeg("leg-2", "sip:alice@local", caller_id="Bob"))
    await adapter.stop()

Every DialLeg ends with exactly one ``Ended`` (also when it cannot be routed: cause
``unroutable``); effects on an unknown leg return ``EffectResult(status=481)``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from urllib.parse import quote

from sip_media.adapter_types import *  # noqa: F403  (re-export the vocabulary)
from sip_media.adapter_types import (
    Answered,
    AnswerLeg,
    Binding,
    DialLeg,
    DtmfInfo,
    Effect,
    EffectResult,
    Ended,
    HangupLeg,
    IncomingCall,
    MessageReceived,
    NotifyReceived,
    OptionsResult,
    Provisional,
    ReferReceived,
    RegistrationChanged,
    Reinvite,
    Reinvited,
    RejectLeg,
    ReplyRefer,
    RingLeg,
    SendInfo,
    SendMessage,
    SendNotify,
    SendOptions,
    SendRefer,
    SipObservation,
)
from sip_media.nomedia import answer_keeping_media, answer_sdp, offer_sdp
from sip_media.sip import indialog
from sip_media.sip import notifications as n
from sip_media.sip.agent import Invitation, ReofferHook
from sip_media.sip.dialog import check_header
from sip_media.sip.engine import Engine, EngineConfig, MessageFilter
from sip_media.sip.errors import SipError
from sip_media.sip.msgview import MsgView
from sip_media.sip.outbound import request_out_of_dialog
from sip_media.sip.uri import SipURI, quote_string

log = logging.getLogger(__name__)

#: A caller id usable as the user part of our From URI (RFC 3261 unreserved characters).
_SIP_USER = re.compile(r"^[A-Za-z0-9_.!~*'()+-]{1,64}$")

ObservationCallback = Callable[[SipObservation], None]


def _keep_media(inv: Invitation, offer: bytes | None) -> bytes | None:
    """Remote re-offers (hold/resume, refresh) are answered at once, keeping the leg's
    media address; ``Reinvited`` tells the service (and later the media engine)."""
    return answer_keeping_media(offer, inv.local_sdp)


class SipAdapter:
    """Effects in, observations out, over one :class:`Engine`."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        no_media: bool = False,
        auto_answer: bool = False,
        bindings: Iterable[Binding] = (),
        answer_reinvite: ReofferHook = _keep_media,
        accept_message: MessageFilter | None = None,
    ) -> None:
        """``answer_reinvite``: our SDP answer to a remote re-INVITE's offer (the call-leg
        layer answers from its media legs); by default the leg's media is kept.
        ``accept_message``: which out-of-dialog MESSAGEs are taken (200, reported as
        ``MessageReceived``); the others are answered 404 (default: all are taken)."""
        self.engine = Engine(
            config,
            on_new_session=self._on_new_session,
            answer_sdp=answer_reinvite,
            accept_message=accept_message,
        )
        self.no_media = no_media
        self.auto_answer = auto_answer
        self._initial_bindings = tuple(bindings)
        self._callbacks: list[ObservationCallback] = []
        self._queues: list[asyncio.Queue[SipObservation]] = []
        self.engine.center.subscribe(self._on_notification)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.engine.start()
        self.engine.registrar.restore(self._initial_bindings)

    async def stop(self) -> None:
        for inv in list(self.engine.sessions.values()):
            inv.hangup()
        await self.engine.stop()

    @property
    def stats(self) -> dict[str, int]:
        """Counters plus current gauges, ready for a metrics exporter."""
        engine = self.engine
        snapshot = engine.stats.snapshot()
        snapshot["sessions_active"] = len(engine.sessions)
        snapshot["transactions_active"] = len(engine.table.client) + len(engine.table.server)
        snapshot["bindings_active"] = sum(len(b) for b in engine.registrar.bindings.values())
        return snapshot

    def local_address(self, transport: str = "UDP") -> tuple[str, int]:
        return self.engine.local_address(transport)

    # ------------------------------------------------------------------ observations
    def subscribe(self, callback: ObservationCallback) -> Callable[[], None]:
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    async def observations(self) -> AsyncIterator[SipObservation]:
        queue: asyncio.Queue[SipObservation] = asyncio.Queue()
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)

    def _emit(self, obs: SipObservation) -> None:
        for queue in self._queues:
            queue.put_nowait(obs)
        for callback in list(self._callbacks):
            try:
                callback(obs)
            except Exception:
                log.exception("observation callback failed on %r", obs)

    def _on_new_session(self, inv: Invitation, msg: MsgView) -> None:
        if self.auto_answer:
            try:
                inv.answer(answer_sdp(msg.body or None, None))
            except SipError as exc:
                inv.reject(exc.status, exc.reason)
            return
        self._emit(
            IncomingCall(
                inv.leg_id,
                request_uri=msg.ruri,
                from_=msg.from_,
                to=msg.to,
                headers=tuple(msg.message.headers),  # canonical names, in order
                sdp=msg.body or None,
                source=msg.source or ("", 0),
                user=inv.user,
                replaces=inv.replaces,
            )
        )

    def _on_notification(self, note: n.Notification) -> None:
        leg = note.session_id
        match note:
            case n.SessionGotRingIndication(status=status, sdp=sdp):
                self._emit(Provisional(leg, status, sdp))
            case n.SessionGotProvisionalResponse(status=status, sdp=sdp):
                self._emit(Provisional(leg, status, sdp))
            case n.SessionDidStart(sdp=sdp):
                self._emit(Answered(leg, sdp))
            case n.SessionDidEnd(cause=cause, status=status, by=by):
                self._emit(Ended(leg, cause, status, by))
            case n.SessionDidFail(status=status, reason=reason, by=by):
                self._emit(Ended(leg, reason, status, by))
            case n.SessionGotReinvite(sdp=sdp, hold=hold):
                self._emit(Reinvited(leg, sdp, hold))
            case n.SessionGotInfo(digit=digit, duration_ms=duration, content_type=ctype, body=body):
                if digit is not None:
                    self._emit(DtmfInfo(leg, digit, duration))
                else:
                    self._emit(MessageReceived(leg, ctype, body, method="INFO"))
            case n.SessionGotMessage(content_type=ctype, body=body, from_header=from_):
                self._emit(
                    MessageReceived(
                        leg, ctype, body, from_, to=note.to_header, request_uri=note.request_uri
                    )
                )
            case n.SessionGotNotify(
                event=event, content_type=ctype, body=body, subscription_state=ss
            ):
                self._emit(NotifyReceived(leg, event, ctype, body, ss))
            case n.SessionGotRefer(refer_to=to, referred_by=by, replaces=rep, refer_id=rid):
                self._emit(ReferReceived(leg, rid, to, by, rep))
            case n.RegistrationDidChange(bindings=bindings):
                typed = tuple(b for b in bindings if isinstance(b, Binding))
                self._emit(RegistrationChanged("", aor=leg, bindings=typed))
            case _:
                pass

    # ------------------------------------------------------------------ effects
    async def execute(self, effect: Effect) -> EffectResult | None:
        try:
            match effect:
                case DialLeg():
                    try:
                        return self._dial(effect)
                    except SipError as exc:  # unroutable / malformed: the leg ends at once
                        self._emit(Ended(effect.leg_id, "unroutable", exc.status, "local"))
                        raise
                case SendOptions(target=target) if target is not None:
                    return await self._out_of_dialog(
                        "OPTIONS", effect.leg_id, target, extra=effect.extra_headers
                    )
                case SendMessage(target=target) if target is not None:
                    return await self._out_of_dialog(
                        "MESSAGE",
                        effect.leg_id,
                        target,
                        effect.body,
                        effect.content_type,
                        extra=effect.extra_headers,
                    )
                case _:
                    pass
            inv = self.engine.sessions.get(effect.leg_id)
            if inv is None:
                return EffectResult(effect.leg_id, 481, "No such leg")
            match effect:
                case RingLeg(status=status, sdp=sdp):
                    inv.ring(status, sdp)
                case AnswerLeg(sdp=sdp):
                    if sdp is None and self.no_media:
                        sdp = answer_sdp(inv.remote_sdp, None)
                    inv.answer(sdp)
                case RejectLeg(code=code, reason=reason):
                    inv.reject(code, reason)
                case HangupLeg():
                    inv.hangup()
                case Reinvite(sdp=sdp):
                    status, _ = await inv.reinvite(sdp)
                    return EffectResult(effect.leg_id, status)
                case SendMessage(body=body, content_type=ctype):
                    extra = effect.extra_headers
                    return await self._in_dialog(inv, "MESSAGE", extra, body, ctype)
                case SendNotify(event=event, body=body, content_type=ctype, subscription_state=ss):
                    extra = (("Event", event), ("Subscription-State", ss), *effect.extra_headers)
                    return await self._in_dialog(inv, "NOTIFY", extra, body, ctype)
                case SendInfo(body=body, content_type=ctype):
                    return await self._in_dialog(inv, "INFO", (), body, ctype)
                case SendOptions():
                    return await self._in_dialog(inv, "OPTIONS", effect.extra_headers, b"", None)
                case SendRefer(refer_to=refer_to, replaces_leg=replaces_leg):
                    return await self._refer(inv, refer_to, replaces_leg)
                case ReplyRefer(refer_id=rid, status=status, reason=reason, final=final):
                    indialog.send_refer_notify(
                        self.engine,
                        inv,
                        rid,
                        status,
                        reason or self.engine.reason(status),
                        final=final,
                    )
                case _:
                    return EffectResult(effect.leg_id, 501, f"Unsupported {type(effect).__name__}")
        except SipError as exc:
            return EffectResult(effect.leg_id, exc.status, exc.reason)
        return None

    def _dial(self, effect: DialLeg) -> EffectResult:
        route = self.engine.resolve(effect.target)
        host, _ = self.engine.local_address(route.transport)
        # The caller id is the From user too (phones show it, call logs dial it back),
        # unless a trunk insists on its own; text that is no SIP user stays display only.
        caller = effect.caller_id or ""
        user = route.from_user or (caller if _SIP_USER.match(caller) else "anonymous")
        from_uri = effect.from_uri or f"sip:{user}@{route.from_domain or host}"
        SipURI.parse(from_uri)  # SipParseError (400) for anything that is not a URI
        for name, value in (*effect.extra_headers, ("Display", effect.caller_id or "")):
            check_header(name, value)
        display = f"{quote_string(effect.caller_id)} " if effect.caller_id else ""
        from_header = f"{display}<{from_uri}>"
        leg_id = effect.leg_id or "out-" + secrets.token_hex(6)
        inv = self.engine.new_session(leg_id, "outgoing")
        sdp = effect.sdp_offer
        if sdp is None and self.no_media:
            sdp = offer_sdp(host)
        inv.dial(route, from_header, effect.extra_headers, sdp, effect.timeout)
        return EffectResult(leg_id, 0, "dialing")

    async def _in_dialog(
        self,
        inv: Invitation,
        method: str,
        extra: tuple[tuple[str, str], ...],
        body: bytes,
        ctype: str | None,
    ) -> EffectResult:
        for name, value in extra:
            check_header(name, value)  # SipError 400: nothing is sent
        # Not loop.time(): on uvloop (rwi serve's loop) it counts whole milliseconds, so
        # a loopback round trip would measure 0.
        started = time.perf_counter()
        status, msg = await indialog.send_and_wait(
            self.engine, inv, method, extra=extra, body=body, content_type=ctype
        )
        return self._answered(method, inv.leg_id, status, msg, started)

    async def _out_of_dialog(
        self,
        method: str,
        leg_id: str,
        target: str,
        body: bytes = b"",
        ctype: str | None = None,
        *,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> EffectResult:
        for name, value in extra:
            check_header(name, value)
        started = time.perf_counter()  # not loop.time(): see _in_dialog
        route = self.engine.resolve(target)
        status, msg = await request_out_of_dialog(
            self.engine, method, route, body, ctype, extra=extra
        )
        return self._answered(method, leg_id, status, msg, started)

    def _answered(
        self, method: str, leg_id: str, status: int, msg: MsgView | None, started: float
    ) -> EffectResult:
        """A request's final status, reason and round trip (from ``started``); an
        OPTIONS also reported as ``OptionsResult``."""
        rtt = time.perf_counter() - started
        if method == "OPTIONS":
            self._emit(OptionsResult(leg_id, status, rtt))
        # no response (Timer F's 408, a transport's 503): no round trip to report
        answered = rtt if msg is not None else None
        return EffectResult(leg_id, status, self._reason(status, msg), rtt=answered)

    def _reason(self, status: int, msg: MsgView | None) -> str:
        """The far end's reason phrase; ours for a status no response carried (408)."""
        return msg.reason if msg is not None and msg.reason else self.engine.reason(status)

    async def _refer(
        self, inv: Invitation, refer_to: str, replaces_leg: str | None
    ) -> EffectResult:
        target = refer_to
        if replaces_leg is not None:
            other = self.engine.sessions.get(replaces_leg)
            if other is None or other.dialog is None:
                return EffectResult(inv.leg_id, 481, "No such leg to replace")
            target = f"{refer_to}?Replaces={quote(other.replaces_value(), safe='')}"
        host, port = self.engine.local_address()
        extra = (("Refer-To", f"<{target}>"), ("Referred-By", f"<sip:{host}:{port}>"))
        return await self._in_dialog(inv, "REFER", extra, b"", None)
