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
