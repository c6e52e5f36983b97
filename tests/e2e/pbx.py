"""The end-to-end rig: the real service with SIP and media, SIPp phones, RWI clients.

One ``Pbx`` is a running service (uvicorn, PostgreSQL, SIP on a free UDP port, media on a
free port range, allow-list 127.0.0.0/8) whose config names the test's SIPp peers:
a trunk and local users with static contacts. ``Pbx.client`` hands out the shipped
``rwi.client.Client`` (typed commands and errors, ``events.wait``, ``events.received``);
wire checks use ``tests.support.client`` (see there). Audio is checked by tapping the
service's own media engine with a recorder and looking at the spectrum.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rwi.client import Client
from rwi.store.database import asyncpg_dsn
from sip_media.call_types import RecordingDone
from tests.support.audio import g711_file, heard
from tests.support.determinism import assert_deterministic
from tests.support.ports import free_port, port_range
from tests.support.service import Running, make_config, running_service
from tests.support.sipp import Sipp
from tests.support.sipp_templates import RING_180, call_sipp
from tests.support.wav import read_wav

TONES = (440.0, 1000.0, 1500.0)

#: the e2e toolkit in one import: the rig, and the kit's peers and audio checks
__all__ = [
    "RING_180", "TONES", "Pbx", "Sipp", "answered", "call_sipp", "db_events", "echo_agent",
    "events_of", "g711_file", "heard", "pbx", "read_wav", "sip_tables", "start", "tone_phone",
]  # fmt: skip


@dataclass
class Pbx:
    svc: Running
    db_url: str
    tmp: Path
    sipps: list[Sipp] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)

    async def client(self, token: str = "app-token", **options: Any) -> Client:
        """A started ``rwi.client.Client`` on the service, closed with the rig."""
        client = Client(self.svc.url, token, **options)
        await client.start()
        self.clients.append(client)
        return client

    @property
    def sip_port(self) -> int:
        port: int = self.svc.runtime.legs.sip.local_address()[1]
        return port

    async def tap(self, leg: str, seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """What ``leg``'s far end sends (said) and what it is sent (heard), recorded by
        the service's own media engine for ``seconds``."""
        legs = self.svc.runtime.legs
        done: asyncio.Future[RecordingDone] = asyncio.get_running_loop().create_future()
        rec = await legs.record(leg, f"taps/{leg}-{id(self)}.wav", mode="separate")

        def on(obs: object) -> None:
            mine = isinstance(obs, RecordingDone) and obs.recording_id == rec.recording_id
            if mine and not done.done():
                done.set_result(obs)

        unsubscribe = legs.subscribe(on)
        try:
            await asyncio.sleep(seconds)  # the length of the recording, not a wait for it
            await legs.stop_record(rec.recording_id)
            finished = await asyncio.wait_for(done, 10)
        finally:
            unsubscribe()
        wav = read_wav(Path(finished.path))[800:]
        return wav[:, 0], wav[:, 1]

    async def sip_answered(self, call_id: str, limit: float = 10.0) -> None:
        """Until SIP reports ``call_id`` answered (an inbound call's ACK, an outbound
        call's 200): from then on its media leg exists. A decided ``call.answered``
        comes earlier for inbound calls, before the executor has sent the 200."""
        await self.observed("sip.call.answered", call_id, limit)

    async def observed(self, kind: str, call_id: str, limit: float = 10.0) -> dict[str, Any]:
        """The first logged observation ``kind`` (``sip.call.ended``...) of ``call_id``,
        waited for: what SIP reported, also for a leg the domain has already ended."""

        async def find() -> dict[str, Any]:
            async for page in self.svc.service.reader.follow(0, poll_interval=0.2):
                for event in page:
                    data = event.data
                    if (
                        event.type == "observation"
                        and data.get("type") == kind
                        and data.get("call_id") == call_id
                    ):
                        return dict(data)
            raise AssertionError("the log ended")  # follow() does not end

        return await asyncio.wait_for(find(), limit)

    async def replay_matches(self) -> None:
        await assert_deterministic(self.svc, self.db_url)


def sip_tables(
    tmp: Path,
    *,
    trunk: Sipp | None = None,
    users: dict[str, Sipp] | None = None,
    routes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    port_min, port_max = port_range(200)
    sip: dict[str, Any] = {
        "listen": [f"udp:127.0.0.1:{free_port()}"],
        "allowed_destinations": ["127.0.0.0/8"],
        "authenticate_invites": False,
        "users": [
            {"name": name, "contact": f"sip:{name}@127.0.0.1:{peer.sip_port}"}
            for name, peer in (users or {}).items()
        ],
    }
    if trunk is not None:
        sip["trunks"] = [{"name": "trunk", "proxy": f"127.0.0.1:{trunk.sip_port}"}]
    return {
        "sip": sip,
        "media": {"port_min": port_min, "port_max": port_max, "rtp_timeout_s": 20.0},
        "storage": {
            "data_dir": str(tmp / "data"),
            "sounds_dir": str(tmp / "sounds"),
            "recordings_dir": str(tmp / "recordings"),
        },
        "routes": routes or [],
    }


@asynccontextmanager
async def pbx(db_url: str, tmp: Path, tables: dict[str, Any], **rwi: Any) -> AsyncIterator[Pbx]:
    config = make_config(db_url, tables=tables, **rwi)
    async with running_service(config) as svc:
        rig = Pbx(svc, db_url, tmp)
        try:
            yield rig
        finally:
            for client in rig.clients:
                await client.close()
            for sipp in rig.sipps:
                await sipp.close()


def events_of(client: Client, call_id: str) -> list[str]:
    """The names of the events ``client`` received for ``call_id``, in order."""
    return [e.name for e in client.events.received if e.call_id == call_id]


async def db_events(db_url: str, stream: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        rows = await conn.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY seq", stream)
    finally:
        await conn.close()
    return [r["type"] for r in rows]


def tone_phone(tmp: Path, freq_file: Path) -> Sipp:
    """A phone (customer or agent) that answers and says the tone in ``freq_file``."""
    return call_sipp(
        tmp, "uas_call", ring=RING_180, sdp_port="[rtpstream_audio_port]", pt=0, codec="PCMU",
        ack_action=f'<action><exec rtp_stream="{freq_file},-1,0"/></action>',
    )  # fmt: skip


def echo_agent(tmp: Path) -> Sipp:
    """An agent's phone that answers and echoes what it hears."""
    return call_sipp(tmp, "uas_call", ring=RING_180, sdp_port="[media_port]", pt=0, codec="PCMU")


async def answered(client: Client, call_id: str, destination: str, **params: Any) -> None:
    """Originate ``call_id`` and wait until it is answered."""
    data = await client.call.originate(call_id=call_id, destination=destination, **params)
    assert data == {"call_id": call_id}, data
    await client.events.wait("call.answered", call_id=call_id, within=15)


async def start(rig: Pbx, *peers: tuple[Sipp, tuple[str, ...]]) -> None:
    """Start each SIPp with its arguments; the rig closes them at the end."""
    for peer, args in peers:
        rig.sipps.append(peer)
        await peer.start(*args)
