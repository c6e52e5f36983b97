"""The notification bus and the adapter's observation stream."""

from __future__ import annotations

import asyncio

from sip_media.adapter import Ended, SipAdapter
from sip_media.sip import notifications as n
from sip_media.sip.engine import EngineConfig


def test_bus_delivers_in_order_and_survives_a_failing_subscriber() -> None:
    center = n.NotificationCenter()
    seen: list[n.Notification] = []

    def broken(note: n.Notification) -> None:
        raise RuntimeError("subscriber bug")

    center.subscribe(broken)
    unsubscribe = center.subscribe(seen.append)
    first = n.SessionDidStart("a", None)
    second = n.SessionDidEnd("a", "normal", 200, "remote")
    center.post(first)
    center.post(second)
    unsubscribe()
    center.post(first)
    assert seen == [first, second]


async def test_adapter_maps_notifications_to_observations() -> None:
    adapter = SipAdapter(EngineConfig(udp=[]))
    stream = adapter.observations()
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # let the iterator register its queue
    adapter.engine.notify(n.SessionDidEnd("leg", "busy", 486, "remote"))
    assert await asyncio.wait_for(pending, 1) == Ended("leg", "busy", 486, "remote")
    await stream.aclose()


def test_reoffer_answer_keeps_media_address_and_mirrors_hold() -> None:
    from sip_media.nomedia import answer_keeping_media

    ours = (
        b"v=0\r\no=media 77 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
        b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
    hold = (
        b"v=0\r\no=x 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 5000 RTP/AVP 0 8\r\na=sendonly\r\n"
    )
    answer = answer_keeping_media(hold, ours)
    assert answer is not None
    assert b"m=audio 40000 RTP/AVP 8" in answer and b"a=recvonly" in answer
    assert b"o=media 77 4 IN IP4 127.0.0.1" in answer  # same session, version bumped
