"""UDP and TCP transports, the outbound allow-list and per-source rate limiting.

Where it sits: the bottom of the stack. Transports move bytes only. Inbound, each
datagram (UDP) or framed message (TCP) is handed to a ``Receiver`` callback (the engine),
which parses it. Outbound, every send goes through :class:`AllowList`: a destination
outside it is dropped and counted as ``dropped_by_allow_list`` (security rule: no packet
may leave the configured networks). TLS would be another :class:`Transport` subclass.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

from sip_media.sip.errors import SipParseError
from sip_media.sip.message import Message, StreamFramer
from sip_media.sip.stats import Stats

log = logging.getLogger(__name__)

Address = tuple[str, int]
Receiver = Callable[[bytes, Address, "Transport"], None]
FramedReceiver = Callable[[Message | SipParseError, Address, "Transport"], None]

MAX_MESSAGE_SIZE = 65535


class AllowList:
    """Outbound destinations the stack may talk to: CIDRs and literal host names."""

    __slots__ = ("_cache", "_hosts", "_networks")

    def __init__(self, entries: Iterable[str]) -> None:
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._hosts: set[str] = set()
        self._cache: dict[str, bool] = {}
        for entry in entries:
            try:
                self._networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self._hosts.add(entry.strip().lower())

    def permits(self, host: str) -> bool:
        cached = self._cache.get(host)
        if cached is not None:
            return cached
        allowed = self._check(host)
        if len(self._cache) < 4096:
            self._cache[host] = allowed
        return allowed

    def _check(self, host: str) -> bool:
        if host.lower() in self._hosts:
            return True
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(ip in net for net in self._networks)


class RateLimiter:
    """New server transactions per source IP per second (fixed one-second window)."""

    __slots__ = ("_counts", "_limit", "_window")

    def __init__(self, per_second: int) -> None:
        self._limit = per_second
        self._window = 0
        self._counts: dict[str, int] = {}

    def allow(self, source_ip: str, now: float | None = None) -> bool:
        if self._limit <= 0:
            return True
        window = int(time.monotonic() if now is None else now)
        if window != self._window:
            self._window = window
            self._counts.clear()
        count = self._counts.get(source_ip, 0) + 1
        self._counts[source_ip] = count
        return count <= self._limit


class Transport:
    """Base class: a bound local address that can send bytes to a peer."""

    name = "UDP"
    reliable = False

    def __init__(self, local: Address, allow: AllowList, stats: Stats) -> None:
        self.local = local
        self.allow = allow
        self.stats = stats

    def permitted(self, dest: Address) -> bool:
        if self.allow.permits(dest[0]):
            return True
        self.stats.bump("dropped_by_allow_list")
        log.warning("dropped %s message to %s:%d: outside allowed_destinations", self.name, *dest)
        return False

    def send(self, data: bytes, dest: Address) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class UdpTransport(Transport):
    """SIP over UDP on a non-blocking socket watched with ``loop.add_reader``.

    The hot path of the stack: one wake-up drains up to ``BATCH`` queued datagrams (the
    asyncio datagram transport costs a loop iteration per datagram), and sends go
    straight to ``sendto``; a full socket buffer drops the datagram (counted), which the
    transaction layer's retransmissions cover, as for any UDP loss.
    """

    name = "UDP"
    reliable = False
    BATCH = 64

    def __init__(self, local: Address, allow: AllowList, stats: Stats, receiver: Receiver) -> None:
        super().__init__(local, allow, stats)
        self.receiver = receiver
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.local[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, 4 * 1024 * 1024)
            sock.bind(self.local)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        name = sock.getsockname()
        self.local = (str(name[0]), int(name[1]))
        self._loop.add_reader(sock.fileno(), self._drain)

    def _drain(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(self.BATCH):
            try:
                data, addr = sock.recvfrom(MAX_MESSAGE_SIZE + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                log.debug("udp receive error: %s", exc)
                continue
            try:
                self.on_datagram(data, (addr[0], addr[1]))
            except Exception:  # never let one datagram stop the reader
                self.stats.bump("errors")
                log.exception("unhandled error on a datagram from %s:%d", addr[0], addr[1])

    def on_datagram(self, data: bytes, source: Address) -> None:
        if not data.strip(b"\r\n"):
            return  # keep-alive (RFC 5626 CRLF)
        self.stats.trace_message("recv", self.name, source, data)
        self.receiver(data, source, self)

    def send(self, data: bytes, dest: Address) -> bool:
        if self._sock is None or not self.permitted(dest):
            return False
        self.stats.sent(data)
        self.stats.trace_message("send", self.name, dest, data)
        try:
            self._sock.sendto(data, dest)
        except (BlockingIOError, InterruptedError):
            self.stats.bump("send_errors")  # full buffer: a lost datagram, retransmitted
        except OSError as exc:  # unreachable network, bad address: a transport error
            self.stats.bump("send_errors")
            log.info("udp send to %s:%d failed: %s", dest[0], dest[1], exc)
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: TcpTransport) -> None:
        self.owner = owner
        self.framer = StreamFramer()
        self.stream: asyncio.Transport | None = None
        self.peer: Address = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream protocol is always handed a stream transport, but uvloop's (which
        # `rwi serve` runs on) does not subclass asyncio.Transport: no isinstance check.
        self.stream = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1]))
        self.owner.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        if self.owner.stats.trace:
            self.owner.stats.trace_message("recv", self.owner.name, self.peer, data)
        for item in self.framer.feed(data):
            self.owner.framed_receiver(item, self.peer, self.owner)
        if self.framer.closed and self.stream is not None:
            log.warning("closing TCP connection from %s:%d: framing lost", *self.peer)
            self.stream.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner.connections.get(self.peer) is self:
            del self.owner.connections[self.peer]


@dataclass
class _Pending:
    chunks: list[bytes]


class TcpTransport(Transport):
    """SIP over TCP (RFC 3261 §18): ``message.StreamFramer`` cuts the stream; parsed
    messages (or per-message parse errors) go to ``framed_receiver``. Responses and
    requests to a peer reuse its open connection; otherwise one is opened."""

    name = "TCP"
    reliable = True

    def __init__(
        self,
        local: Address,
        allow: AllowList,
        stats: Stats,
        framed_receiver: FramedReceiver,
        on_unreachable: Callable[[Address], None] = lambda _: None,
    ) -> None:
        super().__init__(local, allow, stats)
        self.framed_receiver = framed_receiver
        #: told when a connection to a peer cannot be opened: what was queued for it is
        #: lost, and the transactions waiting on it should fail now rather than time out
        self.on_unreachable = on_unreachable
        self.connections: dict[Address, _TcpConnection] = {}
        self._pending: dict[Address, _Pending] = {}
        self._server: asyncio.Server | None = None
        self.server_ssl: ssl.SSLContext | None = None
        self.client_ssl: ssl.SSLContext | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _TcpConnection(self), self.local[0], self.local[1], ssl=self.server_ssl
        )
        sock = self._server.sockets[0].getsockname()
        self.local = (str(sock[0]), int(sock[1]))

    def send(self, data: bytes, dest: Address) -> bool:
        if not self.permitted(dest):
            return False
        self.stats.sent(data)
        self.stats.trace_message("send", self.name, dest, data)
        conn = self.connections.get(dest)
        if conn is not None and conn.stream is not None and not conn.stream.is_closing():
            conn.stream.write(data)
            return True
        pending = self._pending.get(dest)
        if pending is not None:
            pending.chunks.append(data)
            return True
        self._pending[dest] = _Pending([data])
        asyncio.get_running_loop().create_task(self._connect(dest))
        return True

    async def _connect(self, dest: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await loop.create_connection(
                lambda: _TcpConnection(self),
                dest[0],
                dest[1],
                local_addr=(self.local[0], 0),
                ssl=self.client_ssl,
            )
        except OSError as exc:
            log.warning("TCP connect to %s:%d failed: %s", *dest, exc)
            self.stats.bump("send_errors")
            self._pending.pop(dest, None)
            self.on_unreachable(dest)
            return
        pending = self._pending.pop(dest, _Pending([]))
        self.connections[dest] = proto
        if proto.stream is not None:
            for chunk in pending.chunks:
                proto.stream.write(chunk)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self.connections.values()):
            if conn.stream is not None:
                conn.stream.close()
        self.connections.clear()


class TlsTransport(TcpTransport):
    """The TLS seam (RFC 3261 §26.2): the TCP transport with SSL contexts on both sides.
    Not wired into ``EngineConfig`` yet; certificates are a deployment concern."""

    name = "TLS"

    def __init__(
        self,
        local: Address,
        allow: AllowList,
        stats: Stats,
        framed_receiver: FramedReceiver,
        server_ssl: ssl.SSLContext,
        client_ssl: ssl.SSLContext,
    ) -> None:
        super().__init__(local, allow, stats, framed_receiver)
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
