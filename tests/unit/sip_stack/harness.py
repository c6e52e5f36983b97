"""In-process harness for the SIP stack unit tests: an Engine on a manual clock with a
recording loopback transport, and the requests and SDP the tests inject."""

from __future__ import annotations

from collections.abc import Callable

from sip_media.sip import notifications as n
from sip_media.sip.agent import Invitation
from sip_media.sip.engine import Engine, EngineConfig
from sip_media.sip.msgview import MsgView
from sip_media.sip.stats import Stats
from sip_media.sip.timers import ManualScheduler, TimerConfig
from sip_media.sip.transport import Address, AllowList, Transport

PEER: Address = ("127.0.0.1", 5070)


class RecordingTransport(Transport):
    """Stands in for the UDP socket: records what the engine sends (allow-list applies)."""

    name = "UDP"
    reliable = False

    def __init__(self, allow: AllowList, stats: Stats) -> None:
        super().__init__(("127.0.0.1", 5060), allow, stats)
        self.sent: list[tuple[bytes, Address]] = []

    def send(self, data: bytes, dest: Address) -> bool:
        if not self.permitted(dest):
            return False
        self.sent.append((data, dest))
        return True

    def close(self) -> None:
        pass


class Harness:
    def __init__(
        self,
        on_new_session: Callable[[Invitation, MsgView], None] | None = None,
        answer_sdp: Callable[[Invitation, bytes | None], bytes | None] | None = None,
    ) -> None:
        self.clock = ManualScheduler()
        self.sessions: list[object] = []
        self.engine = Engine(
            EngineConfig(udp=[], timers=TimerConfig(t1=0.5, t2=4.0, t4=5.0)),
            self.clock,
            on_new_session=on_new_session or (lambda inv, msg: self.sessions.append(inv)),
            answer_sdp=answer_sdp,
        )
        self.wire = RecordingTransport(self.engine.allow, self.engine.stats)
        self.engine.transports.append(self.wire)
        self.notes: list[n.Notification] = []
        self.engine.center.subscribe(self.notes.append)

    def inject(self, text: str, source: Address = PEER) -> None:
        data = text.replace("\n", "\r\n").encode()
        if b"\r\n\r\n" not in data:
            data += b"\r\n"
        self.engine._receive(data, source, self.wire)

    def sent(self) -> list[MsgView]:
        return [MsgView.parse(data) for data, _ in self.wire.sent]

    def take(self) -> list[MsgView]:
        out = self.sent()
        self.wire.sent.clear()
        return out

    def of(self, kind: type[n.Notification]) -> list[n.Notification]:
        return [x for x in self.notes if isinstance(x, kind)]


def invite(
    branch: str = "z9hG4bKa1",
    call_id: str = "call-1",
    cseq: int = 1,
    to_tag: str = "",
    sdp: str = "",
    method: str = "INVITE",
    extra: str = "",
) -> str:
    to = "<sip:alice@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    body = sdp
    ctype = "Content-Type: application/sdp\n" if body else ""
    return (
        f"{method} sip:alice@127.0.0.1:5060 SIP/2.0\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\n"
        "From: <sip:bob@127.0.0.1>;tag=ft1\n"
        f"To: {to}\n"
        f"Call-ID: {call_id}\n"
        f"CSeq: {cseq} {method}\n"
        "Contact: <sip:bob@127.0.0.1:5070>\n"
        "Max-Forwards: 70\n"
        f"{extra}{ctype}Content-Length: {len(body.replace(chr(10), chr(13) + chr(10)))}\n\n{body}"
    )


SDP = (
    "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
    "m=audio 4000 RTP/AVP 0\na=sendrecv\n"
)
HOLD_SDP = SDP.replace("a=sendrecv", "a=sendonly")
