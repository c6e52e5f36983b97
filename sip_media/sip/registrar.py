"""REGISTER handling, digest authentication of local users, and client-side digest.

Where it sits: a transaction user beside ``agent``, called by ``engine`` for REGISTER
and before an INVITE whose From names a local user. Bindings live here in memory; every
change is posted as ``RegistrationDidChange`` with the full binding list so the service
can persist it, and ``restore`` reloads them at start. Digest (RFC 2617/7616, MD5,
qop=auth) challenge/verify and the client ``Authorization`` for trunks that send
401/407 are local helpers (``_digest_*``) pending ``sip.digest``/``sip.bindings``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sip_media.adapter_types import Binding
from sip_media.sip import notifications as n
from sip_media.sip.errors import SipError
from sip_media.sip.headers import AuthHeader
from sip_media.sip.msgview import MsgView, param
from sip_media.sip.transaction import ServerTransaction
from sip_media.sip.transport import Address, Transport
from sip_media.sip.uri import NameAddr

if TYPE_CHECKING:
    from sip_media.sip.engine import Engine
    from sip_media.sip.routing import Route

log = logging.getLogger(__name__)

MIN_EXPIRES = 60
MAX_EXPIRES = 7200
DEFAULT_EXPIRES = 3600
NONCE_LIFETIME = 300


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def digest_response(
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str,
    cnonce: str,
) -> str:
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    if qop:
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


class DigestServer:
    """Stateless nonces (timestamp + HMAC) and credential verification."""

    def __init__(self, realm: str, users: dict[str, str]) -> None:
        self.realm = realm
        self.users = users
        self._secret = secrets.token_bytes(16)

    def nonce(self, now: float | None = None) -> str:
        stamp = str(int(time.time() if now is None else now))
        mac = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:20]
        return f"{stamp}.{mac}"

    def _nonce_state(self, nonce: str) -> str:
        stamp, _, mac = nonce.partition(".")
        good = hmac.new(self._secret, stamp.encode(), hashlib.sha256).hexdigest()[:20]
        if not hmac.compare_digest(mac, good) or not stamp.isdigit():
            return "bad"
        return "stale" if time.time() - int(stamp) > NONCE_LIFETIME else "ok"

    def challenge(self, stale: bool = False) -> str:
        items = [
            ("realm", self.realm),
            ("nonce", self.nonce()),
            ("algorithm", "MD5"),
            ("qop", "auth"),
        ]
        if stale:
            items.append(("stale", "true"))
        return str(AuthHeader.build("Digest", items))

    def verify(self, header: str | None, method: str) -> tuple[str | None, bool]:
        """(authenticated username or None, stale nonce?)."""
        if not header:
            return None, False
        try:
            auth = AuthHeader.parse(header)
        except SipError:
            return None, False
        if not auth.is_digest or auth.param("realm") != self.realm:
            return None, False
        username = auth.param("username") or ""
        password = self.users.get(username)
        nonce = auth.param("nonce") or ""
        uri = auth.param("uri") or ""
        if password is None:
            return None, False
        state = self._nonce_state(nonce)
        if state == "bad":
            return None, False
        qop = auth.param("qop")
        expected = digest_response(
            username,
            self.realm,
            password,
            method,
            uri,
            nonce,
            qop,
            auth.param("nc") or "",
            auth.param("cnonce") or "",
        )
        if not hmac.compare_digest(expected, (auth.param("response") or "").lower()):
            return None, False
        if state == "stale":
            return None, True
        return username, False


def client_authorization(msg: MsgView, method: str, route: Route) -> str | None:
    """Answer a 401/407 challenge from a trunk with our credentials (RFC 2617 §3.2.2)."""
    name = "www-authenticate" if msg.status == 401 else "proxy-authenticate"
    value = msg.header(name)
    if value is None or route.username is None or route.password is None:
        return None
    try:
        challenge = AuthHeader.parse(value)
    except SipError:
        return None
    if not challenge.is_digest or (challenge.param("algorithm") or "MD5").upper() != "MD5":
        return None
    realm = challenge.param("realm") or ""
    nonce = challenge.param("nonce") or ""
    qops = [q.strip() for q in (challenge.param("qop") or "").split(",") if q.strip()]
    qop = "auth" if "auth" in qops else None
    cnonce = secrets.token_hex(8)
    nc = "00000001"
    uri = route.request_uri
    response = digest_response(
        route.username, realm, route.password, method, uri, nonce, qop, nc, cnonce
    )
    items = [
        ("username", route.username),
        ("realm", realm),
        ("nonce", nonce),
        ("uri", uri),
        ("response", response),
        ("algorithm", "MD5"),
    ]
    if qop:
        items += [("qop", qop), ("nc", nc), ("cnonce", cnonce)]
    opaque = challenge.param("opaque")
    if opaque is not None:
        items.append(("opaque", opaque))
    return str(AuthHeader.build("Digest", items))


class Registrar:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        config = engine.config
        self.digest = DigestServer(config.realm, config.users)
        self.bindings: dict[str, dict[str, Binding]] = {}  # user -> contact -> binding

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.engine.config.domains[0]}"

    # ------------------------------------------------------------------ REGISTER
    def handle(
        self, msg: MsgView, tx: ServerTransaction, source: Address, transport: Transport
    ) -> None:
        engine = self.engine
        try:
            to_user = NameAddr.parse(msg.to).uri.user or ""
        except SipError as exc:
            engine.respond(msg, tx, 400, exc.reason)
            return
        user, stale = self.digest.verify(msg.header("authorization"), "REGISTER")
        if user is None:
            engine.respond(
                msg, tx, 401, "Unauthorized",
                extra=(("WWW-Authenticate", self.digest.challenge(stale)),),
            )  # fmt: skip
            return
        if user != to_user:
            engine.respond(msg, tx, 403, "Forbidden (To does not match credentials)")
            return
        try:
            changed = self._apply(user, msg, source, transport)
        except SipError as exc:
            extra = (("Min-Expires", str(MIN_EXPIRES)),) if exc.status == 423 else ()
            engine.respond(msg, tx, exc.status, exc.reason, extra=extra)
            return
        now = time.time()
        current = self.current(user)
        contacts = tuple(
            ("Contact", f"<{b.contact}>;expires={max(0, int(b.expires_at - now))}") for b in current
        )
        engine.respond(msg, tx, 200, "OK", extra=contacts)
        if changed:
            engine.notify(n.RegistrationDidChange(self.aor(user), tuple(current)))

    def _apply(self, user: str, msg: MsgView, source: Address, transport: Transport) -> bool:
        contacts = msg.header_list("contact")
        header_expires = msg.header("expires")
        default = DEFAULT_EXPIRES
        if header_expires is not None:
            try:
                default = int(header_expires.strip())
            except ValueError as exc:
                raise SipError("Bad Expires", status=400) from exc
        store = self.bindings.setdefault(user, {})
        if not contacts:
            return False  # a fetch
        if any(c.strip() == "*" for c in contacts):
            if default != 0 or len(contacts) > 1:
                raise SipError("Contact * needs Expires: 0 and no other Contact", status=400)
            changed = bool(store)
            store.clear()
            return changed
        now = time.time()
        changed = False
        for value in contacts:
            uri = str(NameAddr.parse(value).uri)
            expires_param = param(value, "expires")
            expires = int(expires_param) if expires_param and expires_param.isdigit() else default
            old = store.get(uri)
            if old is not None and old.call_id == msg.call_id and msg.cseq <= old.cseq:
                raise SipError("Out of order REGISTER", status=500)
            if expires == 0:
                changed |= store.pop(uri, None) is not None
                continue
            if expires < MIN_EXPIRES:
                raise SipError("Interval Too Brief", status=423)
            if old is None and len(store) >= self.engine.config.max_contacts_per_aor:
                raise SipError("Too many contacts for this address-of-record", status=403)
            if old is None and self._from_source(source[0]) >= (
                self.engine.config.max_registrations_per_source
            ):
                raise SipError("Too many registrations from this address", status=403)
            store[uri] = Binding(
                aor=self.aor(user),
                contact=uri,
                expires_at=now + min(expires, MAX_EXPIRES),
                source=source,
                transport=transport.name,
                call_id=msg.call_id,
                cseq=msg.cseq,
            )
            changed = True
        return changed

    def _from_source(self, host: str) -> int:
        return sum(1 for s in self.bindings.values() for b in s.values() if b.source[0] == host)

    def current(self, user: str) -> list[Binding]:
        now = time.time()
        store = self.bindings.get(user, {})
        for uri in [u for u, b in store.items() if b.expires_at <= now]:
            del store[uri]
        return sorted(store.values(), key=lambda b: -b.expires_at)

    def restore(self, bindings: Iterable[Binding]) -> None:
        for binding in bindings:
            user = binding.aor.split(":", 1)[-1].split("@", 1)[0]
            self.bindings.setdefault(user, {})[binding.contact] = binding

    def contacts_for(self, user: str) -> list[tuple[str, Address | None, str]]:
        """Registered contacts, newest first: (contact URI, source address, transport)."""
        return [(b.contact, b.source or None, b.transport) for b in self.current(user)]

    # ------------------------------------------------------------------ INVITE auth
    def authorize_invite(self, msg: MsgView, tx: ServerTransaction) -> tuple[bool, str | None]:
        """Local users must prove who they are (407); others pass unauthenticated."""
        config = self.engine.config
        try:
            from_user = NameAddr.parse(msg.from_).uri.user or ""
        except SipError:
            from_user = ""
        if not config.authenticate_invites or from_user not in config.users:
            return True, None
        user, stale = self.digest.verify(msg.header("proxy-authorization"), "INVITE")
        if user is None:
            self.engine.respond(
                msg, tx, 407, "Proxy Authentication Required",
                extra=(("Proxy-Authenticate", self.digest.challenge(stale)),),
            )  # fmt: skip
            return False, None
        if user != from_user:
            self.engine.respond(msg, tx, 403, "Forbidden (From does not match credentials)")
            return False, None
        return True, user
