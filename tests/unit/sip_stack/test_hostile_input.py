"""Whatever arrives on the wire, the engine answers or drops it: never an exception,
and never a packet outside the allow-list (hostile messages name 192.0.2.x hosts)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.sip_stack.harness import SDP, Harness, invite

BASE = invite(sdp=SDP).replace("\n", "\r\n").encode()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    h = Harness()
    h.engine._receive(data, ("127.0.0.1", 5070), h.wire)
    assert h.engine.stats.counters["errors"] == 0
    assert all(dest[0] == "127.0.0.1" for _, dest in h.wire.sent)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(BASE) - 1), st.binary(min_size=1, max_size=8), st.booleans())
def test_mutated_invites_never_raise(pos: int, junk: bytes, insert: bool) -> None:
    data = BASE[:pos] + junk + (BASE[pos:] if insert else BASE[pos + len(junk) :])
    h = Harness()
    h.engine._receive(data, ("127.0.0.1", 5070), h.wire)
    assert h.engine.stats.counters["errors"] == 0
    assert all(dest[0] == "127.0.0.1" for _, dest in h.wire.sent)


def test_hostile_via_and_contact_hosts_get_no_traffic() -> None:
    h = Harness()
    hostile = (
        invite(sdp=SDP)
        .replace("Via: SIP/2.0/UDP 127.0.0.1:5070", "Via: SIP/2.0/UDP 192.0.2.66:5060")
        .replace("Contact: <sip:bob@127.0.0.1:5070>", "Contact: <sip:bob@255.255.255.255>")
    )
    h.inject(hostile)
    inv = h.sessions[0]
    inv.answer(SDP.encode())  # type: ignore[attr-defined]
    ok = h.sent()[-1]
    h.inject(invite(method="ACK", branch="z9hG4bKack", to_tag=ok.to_tag))
    inv.hangup()  # type: ignore[attr-defined]  not to the Contact: back to the source
    assert h.wire.sent[-1][0].startswith(b"BYE ")
    assert all(dest == ("127.0.0.1", 5070) for _, dest in h.wire.sent)  # symmetric routing


async def test_dial_refuses_header_injection() -> None:
    from sip_media.adapter import DialLeg, SipAdapter
    from sip_media.sip.engine import EngineConfig

    adapter = SipAdapter(EngineConfig(udp=[("127.0.0.1", 0)]), no_media=True)
    await adapter.start()
    try:
        evil = DialLeg("x", "sip:bob@127.0.0.1:9", extra_headers=(("X-A", "1\r\nBYE: now"),))
        result = await adapter.execute(evil)
        assert result is not None and result.status == 400
        quoted = DialLeg("y", "sip:bob@127.0.0.1:9", caller_id='Eve" <sip:admin@x>\r\nX: 1')
        result = await adapter.execute(quoted)
        assert result is not None and result.status == 400
        assert adapter.stats["messages_out"] == 0
    finally:
        await adapter.stop()
