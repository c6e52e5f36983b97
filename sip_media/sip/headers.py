"""SIP header fields: an ordered, case-insensitive multi-map plus typed views.

Sits between ``uri`` (values such as name-addr) and ``message`` (which owns a ``Headers``).
Names are normalised on the way in (compact forms such as ``v``/``m``/``l`` become their
full canonical names), so every layer looks headers up by one spelling. Comma-separated
list headers (Via, Contact, Route...) are split into one entry per value, splitting only
outside quoted strings and ``<...>``; every other header — including unknown ones — is
kept verbatim, because its grammar may give a comma another meaning (Date, auth headers).
Typed views (``Via``, ``CSeq``, ``AuthHeader``, ``Replaces``...) parse one value each and
raise ``SipParseError`` (400) on malformed input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from .errors import SipParseError
from .uri import NameAddr, Params, parse_generic_params, read_quoted, split_hostport, split_quoted

# RFC 3261 §7.3.3 plus extensions (RFC 3265, 3515, 3841, 4028, 4474, 4916).
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Identity",
    "Identity-Info", "In-Reply-To", "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version",
    "Organization", "P-Asserted-Identity", "Path", "Priority", "Privacy", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To",
    "Referred-By", "Reject-Contact", "Replaces", "Reply-To", "Request-Disposition", "Require",
    "Retry-After", "Route", "RSeq", "Server", "Service-Route", "Session-Expires", "SIP-ETag",
    "SIP-If-Match", "Subject", "Subscription-State", "Supported", "Timestamp", "To",
    "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
)  # fmt: skip
_CANONICAL: dict[str, str] = {n.lower(): n for n in _KNOWN}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1): one entry per value.
LIST_HEADERS = frozenset(
    n.lower()
    for n in (
        "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
        "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info",
        "In-Reply-To", "Path", "Proxy-Require", "Record-Route", "Reply-To", "Require", "Route",
        "Service-Route", "Supported", "Unsupported", "Via", "Warning", "P-Asserted-Identity",
        "Accept-Contact", "Reject-Contact",
    )
)  # fmt: skip

_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
MAX_UINT32 = 2**32 - 1


def is_token(text: str) -> bool:
    return bool(text) and all(c in _TOKEN_CHARS for c in text)


def canonical_name(name: str) -> str:
    """Full canonical spelling of a header name (compact forms expanded)."""
    low = name.lower()
    if len(low) == 1 and low in COMPACT_FORMS:
        return COMPACT_FORMS[low]
    return _CANONICAL.get(low, name)


def _key(name: str) -> str:
    return canonical_name(name).lower()


def split_values(name: str, value: str) -> list[str]:
    """Split a header value into its list elements if ``name`` is a list header."""
    if canonical_name(name).lower() not in LIST_HEADERS or "," not in value:
        return [value.strip()]
    return [part.strip() for part in split_quoted(value, ",", angle=True)]


@dataclass(frozen=True)
class Headers:
    """Ordered multi-map of (canonical name, value). Lookups are case-insensitive."""

    items: tuple[tuple[str, str], ...] = ()
    # Lower-cased canonical names, parallel to ``items``: lookups compare plain strings.
    _keys: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: normalise once at construction so every lookup sees canonical names.
        items = tuple((canonical_name(n), v) for n, v in self.items)
        for name, value in items:
            # Header injection guard: values built from RWI input must never smuggle a
            # line break (or an extra header) onto the wire.
            if not is_token(name) or "\r" in value or "\n" in value:
                raise SipParseError(f"Invalid header field {name[:40]!r}")
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "_keys", tuple(n.lower() for n, _ in items))

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        return cls(tuple(pairs))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._keys

    def get(self, name: str, default: str | None = None) -> str | None:
        key = _key(name)
        for k, (_, v) in zip(self._keys, self.items, strict=True):
            if k == key:
                return v
        return default

    def get_all(self, name: str) -> tuple[str, ...]:
        key = _key(name)
        return tuple(v for k, (_, v) in zip(self._keys, self.items, strict=True) if k == key)

    def add(self, name: str, value: str) -> Headers:
        return Headers((*self.items, (name, value)))

    def prepend(self, name: str, value: str) -> Headers:
        """Insert before every other header (a proxy/UAC pushing its Via)."""
        return Headers(((name, value), *self.items))

    def remove(self, name: str) -> Headers:
        low = canonical_name(name).lower()
        return Headers(tuple((n, v) for n, v in self.items if n.lower() != low))

    def set(self, name: str, *values: str) -> Headers:
        """Replace every ``name`` entry with ``values``, at the position of the first one."""
        low = canonical_name(name).lower()
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self.items:
            if n.lower() == low:
                if not placed:
                    out.extend((name, x) for x in values)
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.extend((name, x) for x in values)
        return Headers(tuple(out))


# -- scalar values ---------------------------------------------------------------------


def parse_uint(value: str, what: str, *, maximum: int = MAX_UINT32, clamp: bool = False) -> int:
    """Parse a non-negative decimal; ``clamp`` caps overlarge values instead of refusing."""
    text = value.strip()
    if not text or not text.isascii() or not text.isdigit():
        raise SipParseError(f"Invalid {what}: {text[:40]!r}")
    # Compare lengths first: never build a huge int from a hostile 10**100.
    stripped = text.lstrip("0") or "0"
    if len(stripped) > len(str(maximum)) or int(stripped) > maximum:
        if clamp:
            return maximum
        raise SipParseError(f"{what} out of range: {text[:40]!r}")
    return int(stripped)


def parse_call_id(value: str) -> str:
    text = value.strip()
    if not text or any(c.isspace() for c in text):
        raise SipParseError("Invalid Call-ID")
    return text


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, value: str) -> CSeq:
        parts = value.split()
        if len(parts) != 2 or not is_token(parts[1]):
            raise SipParseError(f"Invalid CSeq: {value.strip()[:60]!r}")
        return cls(parse_uint(parts[0], "CSeq number"), parts[1])

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


# -- Via -------------------------------------------------------------------------------

_VIA_RE = re.compile(
    r"\s*([^/\s]+)\s*/\s*([^/\s]+)\s*/\s*([^\s;/]+)\s+([^;]*?)\s*(;.*)?\Z", re.DOTALL
)


@dataclass(frozen=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host[:port];params`` (RFC 3261 §20.42, RFC 3581)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP"
    version: str = "2.0"

    @classmethod
    def parse(cls, value: str) -> Via:
        m = _VIA_RE.match(value)
        if m is None:
            raise SipParseError(f"Invalid Via: {value.strip()[:60]!r}")
        protocol, version, transport, sent_by, params = m.groups()
        if not (is_token(protocol) and is_token(version) and is_token(transport)):
            raise SipParseError("Invalid Via sent-protocol")
        host, port = split_hostport(sent_by)
        return cls(
            transport=transport.upper(),
            host=host,
            port=port,
            params=parse_generic_params(params or ""),
            protocol=protocol.upper(),
            version=version,
        )

    def __str__(self) -> str:
        tail = "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self.params)
        return f"{self.protocol}/{self.version}/{self.transport} {self.sent_by}{tail}"

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def param(self, name: str) -> str | None:
        low = name.lower()
        return next((v for n, v in self.params if n.lower() == low), None)

    def has_param(self, name: str) -> bool:
        low = name.lower()
        return any(n.lower() == low for n, _ in self.params)

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def rport(self) -> int | None:
        """The filled-in rport value (RFC 3581); None when absent or still empty."""
        value = self.param("rport")
        return int(value) if value is not None and value.isdigit() else None

    def with_param(self, name: str, value: str | None = None) -> Via:
        kept = tuple(p for p in self.params if p[0].lower() != name.lower())
        return replace(self, params=(*kept, (name, value)))


# -- Contact ---------------------------------------------------------------------------


def parse_contacts(values: Sequence[str]) -> tuple[NameAddr, ...] | None:
    """Contact values as name-addrs; ``None`` means the wildcard ``Contact: *``.

    A wildcard mixed with other contacts is malformed (RFC 3261 §10.3 step 6).
    """
    if any(v.strip() == "*" for v in values):
        if len(values) != 1:
            raise SipParseError("Contact '*' combined with other contacts")
        return None
    return tuple(NameAddr.parse(v) for v in values)


def parse_name_addrs(values: Sequence[str]) -> tuple[NameAddr, ...]:
    return tuple(NameAddr.parse(v) for v in values)


# -- Authentication (RFC 3261 §20.7/§20.27/§20.44, RFC 7616) ---------------------------

UNQUOTED_AUTH_PARAMS = frozenset({"algorithm", "nc", "stale", "userhash", "charset"})


@dataclass(frozen=True)
class AuthHeader:
    """A challenge or credentials: ``scheme`` plus ordered auth-params (values unquoted).

    ``raw`` keeps the text after the scheme verbatim, so schemes we do not parse (the
    Basic/Bearer token68 form, or ``NoOneKnowsThisScheme``) can still be forwarded.
    """

    scheme: str
    params: tuple[tuple[str, str], ...] = ()
    raw: str = ""

    @classmethod
    def parse(cls, value: str) -> AuthHeader:
        text = value.strip()
        scheme, _, rest = text.partition(" ")
        if not is_token(scheme):
            raise SipParseError("Invalid authentication scheme")
        rest = rest.strip()
        try:
            params = _parse_auth_params(rest)
        except SipParseError:
            if scheme.lower() == "digest":
                raise
            params = ()  # opaque credentials of a scheme we do not understand
        return cls(scheme=scheme, params=params, raw=rest)

    @classmethod
    def build(
        cls,
        scheme: str,
        items: Iterable[tuple[str, str]],
        *,
        unquoted: frozenset[str] = UNQUOTED_AUTH_PARAMS,
    ) -> AuthHeader:
        """Render params, quoting all but the token-valued ones named in ``unquoted``.

        Credentials send ``qop=auth`` bare while challenges quote it (RFC 7616 §3.3/§3.4):
        pass ``UNQUOTED_AUTH_PARAMS | {"qop"}`` when building credentials.
        """
        params = tuple(items)
        return cls(scheme=scheme, params=params, raw=_render_auth_params(params, unquoted))

    def param(self, name: str) -> str | None:
        low = name.lower()
        return next((v for n, v in self.params if n.lower() == low), None)

    @property
    def is_digest(self) -> bool:
        return self.scheme.lower() == "digest"

    def __str__(self) -> str:
        return f"{self.scheme} {self.raw}" if self.raw else self.scheme


def _parse_auth_params(text: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    if not text:
        return ()
    for item in split_quoted(text, ","):
        if not item.strip():
            continue  # tolerate stray commas ("a=1,,b=2", a trailing ",")
        name, eq, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not is_token(name):
            raise SipParseError(f"Invalid auth parameter {item.strip()[:40]!r}")
        if value.startswith('"'):
            content, end = read_quoted(value, 0)
            if end != len(value):
                raise SipParseError(f"Garbage after quoted auth parameter {name!r}")
            value = content
        elif not is_token(value):
            raise SipParseError(f"Invalid value for auth parameter {name!r}")
        out.append((name, value))
    return tuple(out)


def _render_auth_params(params: Sequence[tuple[str, str]], unquoted: frozenset[str]) -> str:
    parts = []
    for name, value in params:
        if name.lower() in unquoted and is_token(value):
            parts.append(f"{name}={value}")
        else:
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{name}="{escaped}"')
    return ", ".join(parts)


# -- Dialog-related extension headers --------------------------------------------------


def _split_head(value: str, what: str) -> tuple[str, Params]:
    head, semi, rest = value.strip().partition(";")
    head = head.strip()
    if not head:
        raise SipParseError(f"Empty {what}")
    return head, parse_generic_params(semi + rest)


def _param(params: Params, name: str) -> str | None:
    return next((v for n, v in params if n.lower() == name), None)


@dataclass(frozen=True)
class Replaces:
    """RFC 3891 ``Replaces: call-id;to-tag=..;from-tag=..[;early-only]``."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    @classmethod
    def parse(cls, value: str) -> Replaces:
        call_id, params = _split_head(value, "Replaces")
        to_tag, from_tag = _param(params, "to-tag"), _param(params, "from-tag")
        if to_tag is None or from_tag is None:
            raise SipParseError("Replaces needs to-tag and from-tag")
        early = any(n.lower() == "early-only" for n, _ in params)
        return cls(parse_call_id(call_id), to_tag, from_tag, early)

    def __str__(self) -> str:
        early = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{early}"


@dataclass(frozen=True)
class EventHeader:
    """RFC 6665 ``Event: package[.template];id=..``."""

    package: str
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> EventHeader:
        package, params = _split_head(value, "Event")
        if not is_token(package):
            raise SipParseError("Invalid Event package")
        return cls(package, params)

    @property
    def id(self) -> str | None:
        return _param(self.params, "id")

    def __str__(self) -> str:
        return self.package + "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self.params)


@dataclass(frozen=True)
class SubscriptionState:
    """RFC 6665 ``Subscription-State: active|pending|terminated;expires=..;reason=..``."""

    state: str
    params: Params = field(default=())

    @classmethod
    def parse(cls, value: str) -> SubscriptionState:
        state, params = _split_head(value, "Subscription-State")
        if not is_token(state):
            raise SipParseError("Invalid Subscription-State")
        return cls(state.lower(), params)

    @property
    def expires(self) -> int | None:
        value = _param(self.params, "expires")
        return None if value is None else parse_uint(value, "expires", clamp=True)

    @property
    def reason(self) -> str | None:
        return _param(self.params, "reason")

    @property
    def retry_after(self) -> int | None:
        value = _param(self.params, "retry-after")
        return None if value is None else parse_uint(value, "retry-after", clamp=True)

    def __str__(self) -> str:
        return self.state + "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self.params)
