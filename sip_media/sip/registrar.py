"""REGISTER handling, digest authentication of local users, and client-side digest.

Where it sits: a transaction user beside ``agent``, called by ``engine`` for REGISTER
and before an INVITE whose From names a local user. It wires the pure pieces together:
``digest.DigestServer`` (401 for REGISTER, 407 for INVITE) and
``bindings.apply_register`` (RFC 3261 §10.3). Bindings are held in memory per AOR;
every change is posted as ``RegistrationDidChange`` with the AOR's full binding set so
the service can persist it, and ``restore`` reloads persisted bindings at start.
``client_authorization`` answers 401/407 from trunks (``digest.authorization_for``).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable

from sip_media.sip import notifications as n
from sip_media.sip.bindings import (
    Binding,
    RegistrarPolicy,
    aor_of,
    apply_register,
    rebuild,
    sweep,
)
from sip_media.sip.core import SipCore
from sip_media.sip.digest import DigestServer, authorization_for, choose_challenge
from sip_media.sip.errors import AuthError, SipError
from sip_media.sip.headers import AuthHeader
from sip_media.sip.message import Request
from sip_media.sip.msgview import MsgView
from sip_media.sip.routing import Route
from sip_media.sip.transaction import ServerTransaction
from sip_media.sip.transport import Address, Transport
from sip_media.sip.uri import NameAddr, SipURI

log = logging.getLogger(__name__)


def client_authorization(msg: MsgView, method: str, route: Route) -> str | None:
    """Credentials answering a trunk's 401/407 (RFC 2617/7616), or None if we cannot."""
    if route.username is None or route.password is None:
        return None
    name = "www-authenticate" if msg.status == 401 else "proxy-authenticate"
    challenges: list[AuthHeader] = []
    for value in msg.header_list(name):
        try:
            challenges.append(AuthHeader.parse(value))
        except SipError:
            continue
    challenge = choose_challenge(challenges)
    if challenge is None:
        return None
    try:
        header = authorization_for(
            challenge,
            method=method,
            uri=route.request_uri,
            username=route.username,
            password=route.password,
        )
    except AuthError as exc:
        log.info("cannot answer %s challenge: %s", route.trunk or route.request_uri, exc.reason)
        return None
    return str(header)


def _credentials(msg: MsgView, name: str) -> AuthHeader | None:
    value = msg.header(name)
    if value is None:
        return None
    try:
        return AuthHeader.parse(value)
    except SipError:
        return None


class Registrar:
    def __init__(self, core: SipCore) -> None:
        self.core = core
        config = core.config
        secret = secrets.token_bytes(32)
        self.digest = DigestServer(
            config.realm, secret, config.users.get, algorithms=config.digest_algorithms
        )
        self.proxy_digest = DigestServer(
            config.realm, secret, config.users.get, algorithms=config.digest_algorithms, proxy=True
        )
        self.policy = RegistrarPolicy(
            max_contacts_per_aor=config.max_contacts_per_aor,
            max_bindings_per_source=config.max_registrations_per_source,
        )
        self.bindings: dict[str, tuple[Binding, ...]] = {}  # AOR -> bindings, best first

    # ------------------------------------------------------------------ REGISTER
    def handle(
        self, msg: MsgView, tx: ServerTransaction, source: Address, transport: Transport
    ) -> None:
        core = self.core
        request = msg.message
        assert isinstance(request, Request)
        try:
            to_uri = request.to.uri
            if not core.is_local_host(to_uri.host):
                raise SipError("Not a domain served here", status=403)
            user = self.digest.verify(
                _credentials(msg, "authorization"), method="REGISTER", uri=str(request.uri)
            ).username
            if user != (to_uri.user or ""):
                raise SipError("Credentials do not match the To user", status=403)
            aor = aor_of(to_uri)
            now = time.time()
            from_source = sum(
                1 for bs in self.bindings.values() for b in bs if b.source[0] == source[0]
            )
            outcome = apply_register(
                request,
                self.bindings.get(aor, ()),
                now=now,
                policy=self.policy,
                source=source,
                transport=transport.name,
                source_bindings=from_source,
            )
        except SipError as exc:
            core.respond(msg, tx, exc.status, exc.reason, extra=exc.headers)
            return
        if outcome.bindings:
            self.bindings[aor] = outcome.bindings
        else:
            self.bindings.pop(aor, None)
        core.respond(msg, tx, 200, "OK", extra=outcome.contact_headers(now))
        if outcome.changed:
            core.notify(n.RegistrationDidChange(aor, outcome.bindings))

    def restore(self, bindings: Iterable[Binding]) -> None:
        """Reload persisted bindings (expired ones are dropped)."""
        self.bindings.update(rebuild(list(bindings), time.time()))

    def current(self, user: str) -> list[Binding]:
        """Live bindings of every local AOR whose user part is ``user``, best first."""
        now = time.time()
        out: list[Binding] = []
        for aor in list(self.bindings):
            live, expired = sweep(self.bindings[aor], now)
            if expired:
                if live:
                    self.bindings[aor] = live
                else:
                    del self.bindings[aor]
                self.core.notify(n.RegistrationDidChange(aor, live))
            if live and SipURI.parse(aor).user == user:
                out.extend(live)
        return out

    def contacts_for(self, user: str) -> list[tuple[str, Address | None, str]]:
        """Registered contacts for routing: (contact URI, REGISTER source, transport)."""
        return [
            (b.contact, b.source if b.source[0] else None, b.transport) for b in self.current(user)
        ]

    # ------------------------------------------------------------------ INVITE auth
    def authorize_invite(self, msg: MsgView, tx: ServerTransaction) -> tuple[bool, str | None]:
        """Local users must prove who they are (407); other callers pass unauthenticated."""
        config = self.core.config
        try:
            from_user = NameAddr.parse(msg.from_).uri.user or ""
        except SipError:
            from_user = ""
        if not config.authenticate_invites or from_user not in config.users:
            return True, None
        assert isinstance(msg.message, Request)
        try:
            user = self.proxy_digest.verify(
                _credentials(msg, "proxy-authorization"), method="INVITE", uri=str(msg.message.uri)
            ).username
        except AuthError as exc:
            self.core.respond(msg, tx, exc.status, exc.reason, extra=exc.headers)
            return False, None
        if user != from_user:
            self.core.respond(msg, tx, 403, "Forbidden (From does not match credentials)")
            return False, None
        return True, user
