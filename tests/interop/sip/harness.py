"""The SIP engine on loopback for the SIP interop tests: its config and readiness of peers.

Tests run a ``SipAdapter`` (without media) from ``engine_config`` against SIPp
(``tests.support.sipp``) and baresip (``tests.support.baresip``) processes; every
port comes from ``tests.support.ports``.
"""

from __future__ import annotations

import asyncio

from sip_media.sip.engine import EngineConfig
from sip_media.sip.timers import TimerConfig
from tests.support.ports import free_port


async def peers_ready(port: int, limit: float = 10) -> None:
    """Wait until a peer accepts TCP connections on ``port`` (UDP needs no wait: the
    transaction layer retransmits until the peer is up)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"nothing listening on TCP {port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return


def engine_config(**overrides: object) -> EngineConfig:
    """SIP on a reserved UDP port, fast timers, outbound allowed to 127.0.0.0/8 only."""
    config = EngineConfig(
        udp=[("127.0.0.1", free_port())],
        allowed_destinations=("127.0.0.0/8",),
        timers=TimerConfig(t1=0.1, t2=0.4, t4=0.5),
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config
