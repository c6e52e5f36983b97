"""The TCP transport on every event loop a user can run it on: the standard loop that
the library defaults to, and uvloop, which `rwi serve` uses. uvloop's transports are not
subclasses of the standard library's, so nothing may check for those classes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop

from sip_media.sip.errors import SipParseError
from sip_media.sip.message import Message
from sip_media.sip.stats import Stats
from sip_media.sip.transport import Address, AllowList, TcpTransport, Transport

OPTIONS = (
    b"OPTIONS sip:svc@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-loop-1\r\n"
    b"From: <sip:probe@127.0.0.1>;tag=1\r\n"
    b"To: <sip:svc@127.0.0.1>\r\n"
    b"Call-ID: loop-1@127.0.0.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: 0\r\n\r\n"
)

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


async def exchange() -> tuple[Message, bytes]:
    """A client connects, sends one request; the transport frames it and answers on the
    same connection."""
    received: asyncio.Queue[tuple[Message | SipParseError, Address]] = asyncio.Queue()

    def on_message(item: Message | SipParseError, source: Address, _: Transport) -> None:
        received.put_nowait((item, source))

    transport = TcpTransport(("127.0.0.1", 0), AllowList(["127.0.0.0/8"]), Stats(), on_message)
    await transport.start()
    try:
        reader, writer = await asyncio.open_connection(*transport.local)
        writer.write(OPTIONS)
        await writer.drain()
        item, source = await asyncio.wait_for(received.get(), 5)
        assert isinstance(item, Message)
        assert transport.send(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", source)
        reply = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        return item, reply
    finally:
        transport.close()


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_tcp_transport_frames_and_answers_on_every_loop(loop: str) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        message, reply = runner.run(exchange())
    assert message.method == "OPTIONS"
    assert reply.startswith(b"SIP/2.0 200 OK")
