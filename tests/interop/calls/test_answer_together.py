"""The SIPp phones of the ``ring_all`` race (``uas_answer_together``), driven by hand
through every order of requests the losing phone may get, so that the e2e race test
can never fail on the scenario: our CANCEL before its 200, our CANCEL crossing its 200
(with the ACK and the BYE in the same read), or no CANCEL at all. The other phone is
the winner each time (ACK, BYE). SIPp must end both calls as passed, and the phones'
step log must tell which way each went."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path

import pytest

from tests.support.audio import g711_file
from tests.support.ports import udp_socket
from tests.support.sipp import Sipp
from tests.support.sipp_templates import call_sipp

pytestmark = pytest.mark.interop


class Caller:
    """One call to a user of the SIPp phones, from our own UDP socket, by hand."""

    def __init__(self, sipp: Sipp, user: str) -> None:
        self.sipp, self.user = sipp, user
        self.sock = udp_socket()
        self.sock.setblocking(False)
        self.rtp = udp_socket()  # where the phone's tone goes (never read)
        self.call_id = f"race-{user}-{random.getrandbits(32):x}"
        self.branch = self._branch()
        self.to_tag = ""

    @staticmethod
    def _branch() -> str:
        return f"z9hG4bK{random.getrandbits(40):x}"

    def _send(self, method: str, cseq: int, *, branch: str, tag: bool, sdp: str = "") -> None:
        port = self.sock.getsockname()[1]
        to = f"<sip:{self.user}@127.0.0.1:{self.sipp.sip_port}>"
        lines = [
            f"{method} sip:{self.user}@127.0.0.1:{self.sipp.sip_port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}",
            "Max-Forwards: 70",
            "From: <sip:queue@127.0.0.1>;tag=race",
            f"To: {to}" + (f";tag={self.to_tag}" if tag else ""),
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:queue@127.0.0.1:{port}>",
        ]
        if sdp:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(sdp)}")
        data = ("\r\n".join(lines) + "\r\n\r\n" + sdp).encode()
        self.sock.sendto(data, ("127.0.0.1", self.sipp.sip_port))

    def invite(self) -> None:
        rtp = self.rtp.getsockname()[1]
        sdp = (
            "v=0\r\no=q 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {rtp} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        self._send("INVITE", 1, branch=self.branch, tag=False, sdp=sdp)

    def cancel(self) -> None:
        self._send("CANCEL", 1, branch=self.branch, tag=False)

    def ack(self, final: int) -> None:
        # a non-2xx final is ACKed in the INVITE's transaction, a 2xx in a new one
        self._send("ACK", 1, branch=self.branch if final >= 300 else self._branch(), tag=True)

    def bye(self) -> None:
        self._send("BYE", 2, branch=self._branch(), tag=True)

    async def response(self, status: int, method: str) -> str:
        """The next response ``status`` to ``method`` (others are skipped); an INVITE
        is sent again every 500 ms until it rings (SIPp may still be starting)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(10):
            while True:
                try:
                    async with asyncio.timeout(0.5):
                        reply = (await loop.sock_recv(self.sock, 65535)).decode()
                except TimeoutError:
                    if status == 180:
                        self.invite()
                    continue
                cseq = re.search(r"^CSeq:\s*\d+\s+(\w+)", reply, re.M)
                if reply.startswith(f"SIP/2.0 {status} ") and cseq and cseq[1] == method:
                    tag = re.search(r"^To:.*;tag=([^;\s]+)", reply, re.M)
                    self.to_tag = tag[1] if tag else self.to_tag
                    return reply

    def close(self) -> None:
        for sock in (self.sock, self.rtp):
            sock.close()


def steps(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            _tick, _call_id, user, step = line.split()
            out.setdefault(user, []).append(step)
    return out


WON = ["rang", "answered", "ack", "bye"]


@pytest.mark.parametrize(
    ("order", "loser_steps"),
    [
        ("cancel_before_answer", ["rang", "cancel", "ack"]),
        ("cancel_crossed_in_one_read", ["rang", "answered", "cancel", "ack", "bye"]),
        ("no_cancel_ack_and_bye_in_one_read", WON),
    ],
)
async def test_the_race_phones_take_every_order_of_requests(
    tmp_path: Path, order: str, loser_steps: list[str]
) -> None:
    tones = [g711_file(tmp_path / f"{f}.ul", 0, f) for f in (1500.0, 2000.0)]
    # a CANCEL "before the answer" needs time to arrive: the phones answer 1 s late then
    sync_ms = 1000 if order == "cancel_before_answer" else 20
    sipp = call_sipp(tmp_path, "uas_answer_together", user_1="1001", tone_1=tones[0],
                     tone_2=tones[1], sync_ms=sync_ms)  # fmt: skip
    log = tmp_path / "steps.log"
    await sipp.start("-trace_logs", "-log_file", str(log), calls=2, timeout=30)
    loser, winner = Caller(sipp, "1001"), Caller(sipp, "1002")
    try:
        for caller in (loser, winner):
            caller.invite()
        for caller in (loser, winner):
            await caller.response(180, "INVITE")
        if order == "cancel_before_answer":
            loser.cancel()
            await loser.response(200, "CANCEL")
            await loser.response(487, "INVITE")
            loser.ack(487)
        for caller in (winner,) if order == "cancel_before_answer" else (loser, winner):
            await caller.response(200, "INVITE")
        if order == "cancel_crossed_in_one_read":
            loser.cancel()  # as sent before its 200 reached us: then ACK, BYE at once
        if order != "cancel_before_answer":
            loser.ack(200)
            loser.bye()
            if order == "cancel_crossed_in_one_read":
                await loser.response(200, "CANCEL")
            await loser.response(200, "BYE")
        winner.ack(200)
        winner.bye()
        await winner.response(200, "BYE")
        assert await sipp.finish() == 0
    finally:
        sipp.kill()
        for caller in (loser, winner):
            caller.close()
    assert steps(log) == {"1001": loser_steps, "1002": WON}
