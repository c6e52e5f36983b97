"""SIP URIs and name-addr values (RFC 3261 §19.1, §20.10; RFC 5118 for IPv6).

Bottom of the SIP stack: ``headers`` and ``message`` build on these values, and every
layer above (transactions, dialogs, the registrar) routes and compares with them.
Components are stored *unescaped* (``%XX`` decoded once, never twice) and re-escaped on
serialisation, so a value survives a parse/serialise round trip with the same meaning.
URIs of schemes we do not route on (``isbn:``, ``http:``...) are kept as an opaque
absolute URI so a parser never refuses them: refusing is an application decision (416).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from .errors import SipParseError

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_UNRESERVED = _ALNUM + "-_.!~*'()"
# RFC 3261 §25.1: characters that may appear unescaped in each URI component.
_USER_SAFE = frozenset(_UNRESERVED + "&=+$,;?/")
_PASSWORD_SAFE = frozenset(_UNRESERVED + "&=+$,")
_PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
_HEADER_SAFE = frozenset(_UNRESERVED + "[]/?:+$")
_TOKEN = frozenset(_ALNUM + "-.!%*_+`'~")
_HOST_CHARS = frozenset(_ALNUM + "-._")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*\Z")
_OPAQUE_BAD = frozenset(' \t\r\n<>"')
_HEX = frozenset("0123456789abcdefABCDEF")

Params = tuple[tuple[str, str | None], ...]

# RFC 3261 §19.1.4: these URI parameters must match when present in either URI.
_STRICT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def unescape(text: str, allowed: frozenset[str], what: str) -> str:
    """Decode ``%XX`` escapes once; reject characters the component may not carry raw."""
    if "%" not in text:
        bad = next((c for c in text if c not in allowed), None)
        if bad is not None:
            raise SipParseError(f"Invalid character {bad!r} in URI {what}")
        return text
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or not all(h in _HEX for h in pair):
                raise SipParseError(f"Invalid %-escape in URI {what}")
            out.append(int(pair, 16))
            i += 3
            continue
        if c not in allowed:
            raise SipParseError(f"Invalid character {c!r} in URI {what}")
        out.extend(c.encode())
        i += 1
    return out.decode("utf-8", "surrogateescape")


def escape(text: str, safe: frozenset[str]) -> str:
    """Percent-encode every octet of ``text`` that is not in ``safe`` (RFC 3261 §19.1.2)."""
    if all(c in safe for c in text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    return "".join(chr(b) if chr(b) in safe else f"%{b:02X}" for b in raw)


def check_host(host: str) -> str:
    """Validate a host (hostname, IPv4 or bracketed IPv6 reference) and return it."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise SipParseError("Unterminated IPv6 reference in host")
        inner = host[1:-1]
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            # RFC 5118 §4.10: RFC 3261's ABNF admits "2001:db8:::192.0.2.1"; tolerate it.
            try:
                ipaddress.IPv6Address(inner.replace(":::", "::", 1))
            except ValueError:
                raise SipParseError(f"Invalid IPv6 reference {host!r}") from None
        return host
    if not host or any(c not in _HOST_CHARS for c in host):
        raise SipParseError(f"Invalid host {host!r}")
    return host


def parse_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise SipParseError(f"Invalid port {text!r}")
    return int(text)


def split_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` where host may be a bracketed IPv6 reference."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("Unterminated IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise SipParseError(f"Garbage after IPv6 reference: {rest!r}")
        return check_host(host), parse_port(rest[1:]) if rest else None
    host, colon, port = text.partition(":")
    return check_host(host), parse_port(port) if colon else None


def _parse_uri_params(text: str) -> Params:
    params: list[tuple[str, str | None]] = []
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not name:
            raise SipParseError("Empty URI parameter")
        params.append(
            (
                unescape(name, _PARAM_SAFE, "parameter"),
                unescape(value, _PARAM_SAFE, "parameter") if eq else None,
            )
        )
    return tuple(params)


def _find_param(params: Params, name: str) -> tuple[bool, str | None]:
    low = name.lower()
    for key, value in params:
        if key.lower() == low:
            return True, value
    return False, None


@dataclass(frozen=True)
class SipURI:
    """An absolute URI: ``sip``/``sips`` (fully parsed), ``tel`` (number + params) or other.

    For schemes other than sip/sips/tel only ``scheme`` and ``opaque`` (the text after
    ``scheme:``) are set. ``host`` keeps IPv6 references in brackets.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    opaque: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipURI:
        scheme, colon, rest = text.partition(":")
        if not colon or not _SCHEME_RE.match(scheme):
            raise SipParseError(f"Invalid URI {text[:80]!r}")
        scheme = scheme.lower()
        if scheme in ("sip", "sips"):
            return cls._parse_sip(scheme, rest)
        if not rest or any(c in _OPAQUE_BAD or ord(c) < 0x20 for c in rest):
            raise SipParseError(f"Invalid {scheme} URI")
        if scheme == "tel":
            number, semi, params = rest.partition(";")
            return cls(
                scheme="tel",
                user=unescape(number, _PARAM_SAFE, "telephone-subscriber"),
                params=_parse_uri_params(params) if semi else (),
            )
        return cls(scheme=scheme, opaque=rest)

    @classmethod
    def _parse_sip(cls, scheme: str, rest: str) -> SipURI:
        user = password = None
        userinfo, at, hostpart = rest.rpartition("@")
        if at:
            u, colon, p = userinfo.partition(":")
            user = unescape(u, _USER_SAFE, "user")
            password = unescape(p, _PASSWORD_SAFE, "password") if colon else None
        hostpart, qmark, header_text = hostpart.partition("?")
        hostport, semi, param_text = hostpart.partition(";")
        host, port = split_hostport(hostport)
        headers: list[tuple[str, str]] = []
        if qmark:
            for item in header_text.split("&"):
                name, eq, value = item.partition("=")
                if not name or not eq:
                    raise SipParseError("Malformed URI header")
                headers.append(
                    (
                        unescape(name, _HEADER_SAFE, "header"),
                        unescape(value, _HEADER_SAFE, "header"),
                    )
                )
        return cls(
            scheme=scheme,
            user=user,
            password=password,
            host=host,
            port=port,
            params=_parse_uri_params(param_text) if semi else (),
            headers=tuple(headers),
        )

    def __str__(self) -> str:
        return self.serialize()

    def serialize(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.scheme == "tel":
            out.append(escape(self.user or "", _PARAM_SAFE))
        else:
            if self.user is not None:
                out.append(escape(self.user, _USER_SAFE))
                if self.password is not None:
                    out.append(":" + escape(self.password, _PASSWORD_SAFE))
                out.append("@")
            out.append(self.host)
            if self.port is not None:
                out.append(f":{self.port}")
        for name, value in self.params:
            out.append(";" + escape(name, _PARAM_SAFE))
            if value is not None:
                out.append("=" + escape(value, _PARAM_SAFE))
        if self.headers:
            out.append("?")
            out.append(
                "&".join(
                    f"{escape(n, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}" for n, v in self.headers
                )
            )
        return "".join(out)

    # -- accessors -------------------------------------------------------------------

    @property
    def is_sip(self) -> bool:
        """True for sip: and sips: URIs (the only ones we route on)."""
        return self.scheme in ("sip", "sips")

    @property
    def host_port(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def has_param(self, name: str) -> bool:
        return _find_param(self.params, name)[0]

    def param(self, name: str) -> str | None:
        """Value of a URI parameter (case-insensitive name); None if absent or valueless."""
        return _find_param(self.params, name)[1]

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value else None

    def with_param(self, name: str, value: str | None = None) -> SipURI:
        kept = tuple(p for p in self.params if p[0].lower() != name.lower())
        return replace(self, params=(*kept, (name, value)))

    def without_param(self, name: str) -> SipURI:
        return replace(self, params=tuple(p for p in self.params if p[0].lower() != name.lower()))

    def without_headers(self) -> SipURI:
        return replace(self, headers=())

    def equivalent(self, other: SipURI) -> bool:
        """URI equality as defined by RFC 3261 §19.1.4 (not field-by-field equality)."""
        if self.scheme != other.scheme:
            return False
        if self.opaque is not None or other.opaque is not None:
            return self.opaque == other.opaque
        if self.user != other.user or self.password != other.password:
            return False
        if self.host.lower() != other.host.lower() or self.port != other.port:
            return False
        mine = {n.lower(): v for n, v in self.params}
        theirs = {n.lower(): v for n, v in other.params}
        for name in set(mine) | set(theirs):
            if name in mine and name in theirs:
                a, b = mine[name], theirs[name]
                if (a or "").lower() != (b or "").lower() or (a is None) != (b is None):
                    return False
            elif name in _STRICT_PARAMS:
                return False
        return {(n.lower(), v) for n, v in self.headers} == {
            (n.lower(), v) for n, v in other.headers
        }


def parse_generic_params(text: str) -> Params:
    """Parse ``;name[=value]`` header parameters (values may be quoted strings, kept verbatim).

    ``text`` starts at the first ``;`` (or is empty). LWS around ``;`` and ``=`` is allowed.
    """
    text = text.strip()
    if not text:
        return ()
    if not text.startswith(";"):
        raise SipParseError(f"Expected ';' before parameters, got {text[:40]!r}")
    params: list[tuple[str, str | None]] = []
    for item in split_quoted(text[1:], ";"):
        name, eq, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not name or any(c not in _TOKEN for c in name):
            raise SipParseError(f"Invalid header parameter {item.strip()[:40]!r}")
        if eq:
            if not value:
                raise SipParseError(f"Empty value for parameter {name!r}")
            if value.startswith('"'):
                if not _is_quoted(value):
                    raise SipParseError(f"Malformed quoted value for {name!r}")
            elif any(c not in _TOKEN and c not in "[]:" for c in value):
                # "[]:" admits IPv6 in Via received/maddr (RFC 5118 §4.5).
                raise SipParseError(f"Invalid value for parameter {name!r}")
        params.append((name, value if eq else None))
    return tuple(params)


def _is_quoted(value: str) -> bool:
    try:
        return read_quoted(value, 0)[1] == len(value)
    except SipParseError:
        return False


def read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read a quoted-string starting at ``text[start] == '"'``; return (content, end index)."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text):
                break
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise SipParseError("Unterminated quoted string")


def split_quoted(text: str, sep: str, *, angle: bool = False) -> list[str]:
    """Split on ``sep`` outside quoted strings (and outside ``<...>`` when ``angle``)."""
    parts: list[str] = []
    buf: list[str] = []
    in_quote = in_angle = False
    i = 0
    while i < len(text):
        c = text[i]
        if in_quote:
            if c == "\\" and i + 1 < len(text):
                buf.append(text[i : i + 2])
                i += 2
                continue
            if c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif angle and c == "<":
            in_angle = True
        elif angle and c == ">":
            in_angle = False
        elif c == sep and not in_angle:
            parts.append("".join(buf))
            buf = []
            i += 1
            continue
        buf.append(c)
        i += 1
    if in_quote:
        raise SipParseError("Unterminated quoted string")
    parts.append("".join(buf))
    return parts


def quote_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class NameAddr:
    """``[display-name] <uri> *(;param)`` as used by From, To, Contact, Route, Refer-To."""

    uri: SipURI
    display_name: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        s = text.strip()
        display: str | None = None
        if s.startswith('"'):
            display, end = read_quoted(s, 0)
            s = s[end:].lstrip()
            if not s.startswith("<"):
                raise SipParseError("Expected '<' after quoted display name")
        if s.startswith("<") or (display is None and "<" in s):
            lt = s.index("<")
            if display is None:
                words = s[:lt].strip()
                if any(c not in _TOKEN and c not in " \t" for c in words):
                    raise SipParseError(f"Invalid display name {words[:40]!r}")
                display = " ".join(words.split()) or None
            gt = s.find(">", lt)
            if gt < 0:
                raise SipParseError("Missing '>' after URI")
            uri = SipURI.parse(s[lt + 1 : gt])
            return cls(uri=uri, display_name=display, params=parse_generic_params(s[gt + 1 :]))
        # addr-spec without <>: ';' starts header parameters, and the URI may not carry
        # ';', '?' or ',' (RFC 3261 §20): "sip:a@b;tag=1" has a tag, not a URI param.
        uri_text, semi, rest = s.partition(";")
        uri_text = uri_text.strip()
        if "?" in uri_text or "," in uri_text or " " in uri_text or "\t" in uri_text:
            raise SipParseError("URI with headers, ',' or spaces must be enclosed in <>")
        return cls(uri=SipURI.parse(uri_text), params=parse_generic_params(semi + rest))

    def __str__(self) -> str:
        return self.serialize()

    def serialize(self) -> str:
        head = f"{quote_string(self.display_name)} " if self.display_name is not None else ""
        tail = "".join(f";{n}" if v is None else f";{n}={v}" for n, v in self.params)
        return f"{head}<{self.uri}>{tail}"

    def param(self, name: str) -> str | None:
        value = _find_param(self.params, name)[1]
        if value is not None and value.startswith('"') and _is_quoted(value):
            return read_quoted(value, 0)[0]
        return value

    def has_param(self, name: str) -> bool:
        return _find_param(self.params, name)[0]

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    def with_param(self, name: str, value: str | None = None) -> NameAddr:
        kept = tuple(p for p in self.params if p[0].lower() != name.lower())
        return replace(self, params=(*kept, (name, value)))

    def with_tag(self, tag: str) -> NameAddr:
        return self.with_param("tag", tag)
