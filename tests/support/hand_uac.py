"""The test as a SIP UAC by hand, in front of a SIPp UAS: for media tests without our SIP stack.

The media interop tests drive the media engine alone, so nothing of ours speaks SIP:
``HandUac`` sends a hand-made INVITE with an SDP offer naming the engine's leg to a
``Sipp`` UAS, reads SIPp's answer to learn its RTP address, ACKs, and BYEs at the end.
Its socket is bound from ``tests.support.ports`` and held; requests are resent every
500 ms until the awaited response comes, within 10 s.
"""

from __future__ import annotations

import asyncio
import random
import re

from sip_media.media import g711
from tests.support.ports import udp_socket
from tests.support.sipp import Sipp


class HandUac:
    """Drives ``sipp`` (a UAS scenario offering payload type ``pt``) through one call."""

    def __init__(self, sipp: Sipp, pt: int) -> None:
        self.sipp = sipp
        self.pt = pt
        self.sock = udp_socket()
        self.sock.setblocking(False)
        self.to_tag = ""
        self.call_id = f"media-{sipp.sip_port}-{random.getrandbits(32):x}"

    async def start(self, echo: bool = False) -> None:
        """Start the SIPp UAS (echoing every RTP packet back with ``echo``)."""
        await self.sipp.start(*(["-rtp_echo"] if echo else []), timeout=30.0)

    def _request(self, method: str, cseq: int, body: str = "") -> bytes:
        port = self.sock.getsockname()[1]
        to_tag = f";tag={self.to_tag}" if self.to_tag and method != "INVITE" else ""
        lines = [
            f"{method} sip:svc@127.0.0.1:{self.sipp.sip_port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{random.getrandbits(40):x}",
            "Max-Forwards: 70",
            "From: <sip:test@127.0.0.1>;tag=media-test",
            f"To: <sip:svc@127.0.0.1>{to_tag}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:test@127.0.0.1:{port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    async def _exchange(self, data: bytes, want: str) -> str:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(10):
            while True:
                self.sock.sendto(data, ("127.0.0.1", self.sipp.sip_port))
                try:
                    async with asyncio.timeout(0.5):
                        while True:
                            reply = (await loop.sock_recv(self.sock, 65535)).decode()
                            if reply.startswith(want):
                                return reply
                except TimeoutError:
                    continue

    async def invite(self, rtp_port: int, te_pt: int | None = 101) -> tuple[str, int]:
        """Offer our leg's address; return SIPp's RTP address from its answer."""
        fmts = f"{self.pt} {te_pt}" if te_pt is not None else f"{self.pt}"
        sdp = (
            "v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {rtp_port} RTP/AVP {fmts}\r\n"
            f"a=rtpmap:{self.pt} {g711.CODEC_NAMES[self.pt]}/8000\r\n"
        )
        if te_pt is not None:
            sdp += f"a=rtpmap:{te_pt} telephone-event/8000\r\na=fmtp:{te_pt} 0-15\r\n"
        reply = await self._exchange(self._request("INVITE", 1, sdp), "SIP/2.0 200")
        tag = re.search(r"^To:.*;tag=([^;\s]+)", reply, re.M)
        self.to_tag = tag.group(1) if tag else ""
        port = re.search(r"^m=audio (\d+)", reply, re.M)
        addr = re.search(r"^c=IN IP4 (\S+)", reply, re.M)
        assert port and addr, reply
        self.sock.sendto(self._request("ACK", 1), ("127.0.0.1", self.sipp.sip_port))
        return addr.group(1), int(port.group(1))

    async def bye(self) -> None:
        await self._exchange(self._request("BYE", 2), "SIP/2.0 200")

    async def close(self) -> None:
        await self.sipp.close()
        self.sock.close()
