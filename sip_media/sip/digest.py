"""HTTP Digest authentication for SIP (RFC 7616, RFC 2617, RFC 3261 §22, RFC 8760).

Two sides, both pure apart from an injectable clock and random source:
- ``DigestServer`` (registrar / UAS): issues challenges whose nonce is an HMAC over a
  timestamp, so any process holding the secret can verify it without shared state; the
  only state kept is the highest nonce-count seen per live nonce (replay protection),
  bounded and pruned as nonces expire.
- ``DigestClient`` / ``authorization_for`` (UAC): answers a 401/407 challenge.
The transaction layer never sees any of this: the agent calls ``verify`` on an inbound
request and, on ``AuthError``, answers with the error's status and challenge headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import AuthError, SipParseError
from .headers import UNQUOTED_AUTH_PARAMS, AuthHeader
from .uri import SipURI

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
# RFC 8760 §2.4: offer the strongest first; clients pick the first they support.
CLIENT_PREFERENCE = ("SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS")
_NONCE_MAC_BYTES = 16


def _hash_for(algorithm: str) -> Callable[[bytes], str]:
    base = algorithm.upper().removesuffix("-SESS")
    if base not in _HASHES:
        raise AuthError(f"Unsupported digest algorithm {algorithm!r}", status=401)
    return _HASHES[base]


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value of RFC 7616 §3.4.1 (and RFC 2069 when ``qop`` is None)."""
    h = _hash_for(algorithm)
    ha1 = h(f"{username}:{realm}:{password}".encode())
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + h(body)
    ha2 = h(a2.encode())
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())


# -- client side -----------------------------------------------------------------------


def credentials_header_name(status: int) -> str:
    """``Authorization`` answers a 401, ``Proxy-Authorization`` a 407."""
    return "Proxy-Authorization" if status == 407 else "Authorization"


def choose_challenge(challenges: Sequence[AuthHeader]) -> AuthHeader | None:
    """The Digest challenge with the strongest algorithm we support, or None."""
    usable = [
        c
        for c in challenges
        if c.is_digest and (c.param("algorithm") or "MD5").upper() in CLIENT_PREFERENCE
    ]
    usable.sort(key=lambda c: CLIENT_PREFERENCE.index((c.param("algorithm") or "MD5").upper()))
    return usable[0] if usable else None


def authorization_for(
    challenge: AuthHeader,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
    body: bytes = b"",
) -> AuthHeader:
    """Credentials answering ``challenge`` (RFC 7616 §3.4). Prefers qop=auth."""
    if not challenge.is_digest:
        raise AuthError(f"Unsupported authentication scheme {challenge.scheme!r}", status=401)
    realm, nonce = challenge.param("realm"), challenge.param("nonce")
    if realm is None or nonce is None:
        raise AuthError("Digest challenge without realm or nonce", status=401)
    algorithm = challenge.param("algorithm") or "MD5"
    offered = [q.strip().lower() for q in (challenge.param("qop") or "").split(",") if q.strip()]
    qop = "auth" if "auth" in offered else ("auth-int" if "auth-int" in offered else None)
    nc_text = f"{nc:08x}"
    if qop is not None or algorithm.upper().endswith("-SESS"):
        cnonce = cnonce or secrets.token_hex(8)
    response = digest_response(
        algorithm=algorithm,
        username=username,
        realm=realm,
        password=password,
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=nc_text if qop else None,
        cnonce=cnonce,
        body=body,
    )
    items = [("username", username), ("realm", realm), ("nonce", nonce), ("uri", uri)]
    items.append(("response", response))
    if challenge.param("algorithm") is not None:
        items.append(("algorithm", algorithm))
    if cnonce is not None:
        items.append(("cnonce", cnonce))
    opaque = challenge.param("opaque")
    if opaque is not None:
        items.append(("opaque", opaque))
    if qop is not None:
        items += [("qop", qop), ("nc", nc_text)]
    return AuthHeader.build("Digest", items, unquoted=UNQUOTED_AUTH_PARAMS | {"qop"})


class DigestClient:
    """Remembers nonce-counts so repeated requests on one nonce send nc=2, 3..."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._counts: dict[str, int] = {}

    def authorize(
        self, challenge: AuthHeader, *, method: str, uri: str, body: bytes = b""
    ) -> AuthHeader:
        nonce = challenge.param("nonce") or ""
        count = self._counts.get(nonce, 0) + 1
        self._counts = {nonce: count}  # only the latest nonce matters
        return authorization_for(
            challenge,
            method=method,
            uri=uri,
            username=self.username,
            password=self._password,
            nc=count,
            body=body,
        )


# -- server side -----------------------------------------------------------------------


@dataclass(frozen=True)
class Authenticated:
    username: str
    realm: str
    algorithm: str


class DigestServer:
    """Issues and verifies Digest challenges for one realm.

    ``lookup(username)`` returns the password, or None for an unknown user. ``proxy``
    selects 407/Proxy-Authenticate instead of 401/WWW-Authenticate.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        lookup: Callable[[str], str | None],
        *,
        clock: Callable[[], float] = time.time,
        nonce_ttl: float = 300.0,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        proxy: bool = False,
        max_tracked_nonces: int = 10_000,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        for alg in algorithms:
            _hash_for(alg)
        self.realm = realm
        self._secret = secret
        self._lookup = lookup
        self._clock = clock
        self._ttl = nonce_ttl
        self._algorithms = tuple(a.upper() for a in algorithms)
        self._proxy = proxy
        self._max_tracked = max_tracked_nonces
        self._random = random_bytes
        self._seen_nc: dict[str, int] = {}
        self._forgotten = float("-inf")  # nonces issued up to this time lost their nc record
        self.opaque = hmac.new(secret, b"opaque:" + realm.encode(), "sha256").hexdigest()[:32]

    @property
    def status(self) -> int:
        return 407 if self._proxy else 401

    @property
    def challenge_header_name(self) -> str:
        return "Proxy-Authenticate" if self._proxy else "WWW-Authenticate"

    @property
    def credentials_header_name(self) -> str:
        return "Proxy-Authorization" if self._proxy else "Authorization"

    def make_nonce(self) -> str:
        stamp = struct.pack(">d", self._clock()) + self._random(8)
        mac = hmac.new(self._secret, stamp + self.realm.encode(), "sha256").digest()
        return base64.urlsafe_b64encode(stamp + mac[:_NONCE_MAC_BYTES]).decode().rstrip("=")

    def _nonce_time(self, nonce: str) -> float | None:
        """Issue time of a nonce we minted, or None if it is not ours / tampered with."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return None
        if len(raw) != 16 + _NONCE_MAC_BYTES:
            return None
        stamp, mac = raw[:16], raw[16:]
        good = hmac.new(self._secret, stamp + self.realm.encode(), "sha256").digest()
        if not hmac.compare_digest(mac, good[:_NONCE_MAC_BYTES]):
            return None
        issued: float = struct.unpack(">d", stamp[:8])[0]
        return issued

    def challenges(self, *, stale: bool = False) -> tuple[tuple[str, str], ...]:
        """Challenge headers (one per algorithm, strongest first) for a 401/407."""
        nonce = self.make_nonce()
        out = []
        for alg in self._algorithms:
            items = [("realm", self.realm), ("nonce", nonce), ("opaque", self.opaque)]
            items += [("algorithm", alg), ("qop", "auth")]
            if stale:
                items.append(("stale", "true"))
            out.append((self.challenge_header_name, str(AuthHeader.build("Digest", items))))
        return tuple(out)

    def _refuse(self, reason: str, *, stale: bool = False) -> AuthError:
        return AuthError(
            reason, status=self.status, stale=stale, headers=self.challenges(stale=stale)
        )

    def verify(self, credentials: AuthHeader | None, *, method: str, uri: str) -> Authenticated:
        """Check credentials for a request with ``method`` and Request-URI ``uri``.

        Raises ``AuthError`` (401/407 with fresh challenges; ``stale`` set when only the
        nonce had expired) on any failure.
        """
        if credentials is None:
            raise self._refuse("Authentication required")
        if not credentials.is_digest:
            raise self._refuse(f"Unsupported authentication scheme {credentials.scheme!r}")
        p = credentials.param
        username, realm, nonce = p("username"), p("realm"), p("nonce")
        digest_uri, response = p("uri"), p("response")
        qop, nc, cnonce = p("qop"), p("nc"), p("cnonce")
        algorithm = (p("algorithm") or "MD5").upper()
        if username is None or realm is None or nonce is None:
            raise self._refuse("Incomplete Digest credentials")
        if digest_uri is None or response is None:
            raise self._refuse("Incomplete Digest credentials")
        if realm != self.realm:
            raise self._refuse("Credentials for another realm")
        if algorithm not in self._algorithms:
            raise self._refuse(f"Algorithm {algorithm} not offered")
        if qop != "auth" or nc is None or cnonce is None:
            raise self._refuse("qop=auth with nc and cnonce is required")
        if not _same_uri(digest_uri, uri):
            raise self._refuse("Digest uri does not match the Request-URI")
        issued = self._nonce_time(nonce)
        if issued is None:
            raise self._refuse("Unknown or forged nonce")
        password = self._lookup(username)
        expected = digest_response(
            algorithm=algorithm,
            username=username,
            realm=realm,
            password=password or "",
            method=method,
            uri=digest_uri,
            nonce=nonce,
            qop=qop,
            nc=nc,
            cnonce=cnonce,
        )
        if password is None or not hmac.compare_digest(expected, response.lower()):
            raise self._refuse("Wrong credentials")
        now = self._clock()
        if not 0 <= now - issued <= self._ttl:
            raise self._refuse("Nonce expired", stale=True)
        self._check_nonce_count(nonce, nc, now)
        return Authenticated(username, realm, algorithm)

    def _check_nonce_count(self, nonce: str, nc: str, now: float) -> None:
        if len(nc) != 8 or any(c not in "0123456789abcdefABCDEF" for c in nc):
            raise self._refuse("Malformed nonce-count")
        count = int(nc, 16)
        if nonce not in self._seen_nc and (self._nonce_time(nonce) or 0.0) <= self._forgotten:
            # Its nc history was dropped under memory pressure: make the client start over.
            raise self._refuse("Nonce no longer tracked", stale=True)
        if count <= self._seen_nc.get(nonce, 0):
            raise self._refuse("Replayed nonce-count")
        if nonce not in self._seen_nc and len(self._seen_nc) >= self._max_tracked:
            self._prune(now)
        self._seen_nc[nonce] = count

    def _prune(self, now: float) -> None:
        live = {n: c for n, c in self._seen_nc.items() if self._alive(n, now)}
        if len(live) >= self._max_tracked:
            # Still full of live nonces: forget the oldest half. Their clients get a
            # stale re-challenge (see _check_nonce_count); memory stays bounded.
            by_age = sorted(live, key=lambda n: self._nonce_time(n) or 0.0)
            half = (len(by_age) + 1) // 2
            dropped, kept = by_age[:half], by_age[half:]
            ages = [self._nonce_time(n) or 0.0 for n in dropped]
            self._forgotten = max([self._forgotten, *ages])
            live = {n: live[n] for n in kept}
        self._seen_nc = live

    def _alive(self, nonce: str, now: float) -> bool:
        issued = self._nonce_time(nonce)
        return issued is not None and now - issued <= self._ttl


def _same_uri(digest_uri: str, request_uri: str) -> bool:
    if digest_uri == request_uri:
        return True
    try:
        return SipURI.parse(digest_uri).equivalent(SipURI.parse(request_uri))
    except SipParseError:
        return False
