"""The allow-list of WebSocket URLs call audio may be streamed to (``[media]
stream_allowed_urls``).

Where it sits: consulted twice, by the call-control service before it accepts a
``media.stream.start`` (``forbidden`` otherwise) and by the media engine before it opens
the connection, so nothing outside the configured prefixes is ever reached. An entry is
a URL prefix matched by its parts, never as a raw string: ``ws://127.0.0.1`` admits any
port and path on that host but not ``ws://127.0.0.1.evil.example`` nor
``ws://127.0.0.1@evil.example``; a port or path in an entry narrows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

#: the default: a bot on this machine only
LOOPBACK = ("ws://127.0.0.1", "ws://localhost")
_SCHEMES = ("ws", "wss")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


class StreamUrlError(ValueError):
    """Not a WebSocket URL we can connect to (bad scheme, credentials, no host)."""


@dataclass(frozen=True)
class StreamUrl:
    scheme: str
    host: str
    port: int | None
    path: str


def parse(url: str) -> StreamUrl:
    """The parts of a ``ws://`` or ``wss://`` URL; ``StreamUrlError`` names what is wrong."""
    if not url or len(url) > 2048 or _UNSAFE.search(url):
        raise StreamUrlError("must be a ws:// or wss:// URL without spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise StreamUrlError(f"is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in _SCHEMES:
        raise StreamUrlError("must start with ws:// or wss://")
    if "@" in parts.netloc:
        raise StreamUrlError("must not carry credentials (user@host)")
    if not parts.hostname:
        raise StreamUrlError("must name a host")
    if parts.fragment:
        raise StreamUrlError("must not have a #fragment")
    path = parts.path or "/"
    if ".." in path.split("/"):
        raise StreamUrlError("must not contain '..' path segments")
    return StreamUrl(parts.scheme.lower(), parts.hostname.lower(), port, path)


def _default_port(url: StreamUrl) -> int:
    return url.port if url.port is not None else (443 if url.scheme == "wss" else 80)


class StreamUrlAllowList:
    """URL prefixes a stream may connect to; every entry is checked when built."""

    def __init__(self, prefixes: tuple[str, ...] = LOOPBACK) -> None:
        try:
            self._entries = tuple(parse(p) for p in prefixes)
        except StreamUrlError as exc:
            raise StreamUrlError(f"bad stream_allowed_urls entry: {exc}") from None

    def permits(self, url: str) -> bool:
        """True if ``url`` is well formed and falls under one of the prefixes."""
        try:
            target = parse(url)
        except StreamUrlError:
            return False
        return any(self._matches(entry, target) for entry in self._entries)

    @staticmethod
    def _matches(entry: StreamUrl, target: StreamUrl) -> bool:
        if entry.scheme != target.scheme or entry.host != target.host:
            return False
        if entry.port is not None and entry.port != _default_port(target):
            return False
        prefix = entry.path
        if prefix in ("", "/"):
            return True
        base = prefix.rstrip("/")
        return target.path == base or target.path.startswith(base + "/")
