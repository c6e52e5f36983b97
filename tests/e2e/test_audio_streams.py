"""Audio streams (contract §12) end to end: SIPp tone phones through the real service,
a real WebSocket bot on 127.0.0.1 (``tests.support.bot``), the phone side's audio tapped
from the service's own media engine and checked by spectrum. The bot gets the right tone
in the right channel (``peer`` alone is what the caller hears), a duplex bot is heard by
the caller and its marks come back, on a bridged call only this call's party hears it, a
URL outside ``[media] stream_allowed_urls`` is ``forbidden`` and never connected to, a
stalled bot loses its own frames while the bridge goes on, a bot that closes ends its
stream ``remote_closed``, hangup ends the stream; the log replays to the live state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rwi.client import Client, Forbidden, InvalidParams, NotFound
from tests.e2e.pbx import Pbx, answered, g711_file, heard, pbx, sip_tables, start, tone_phone
from tests.support.bot import Bot, tone16
from tests.support.observer import wait_until

pytestmark = pytest.mark.e2e

CUSTOMER, BOT, AGENT = 440.0, 1000.0, 1500.0
FREQS = (CUSTOMER, BOT, AGENT)


def tables(tmp: Path, **media: Any) -> tuple[Any, Any, dict[str, Any]]:
    cust = tone_phone(tmp, g711_file(tmp / "c440.ul", 0, CUSTOMER))
    agent = tone_phone(tmp, g711_file(tmp / "a1500.ul", 0, AGENT))
    t = sip_tables(tmp, trunk=cust, users={"agent1": agent})
    t["media"].update(media)
    return cust, agent, t


async def caller_answered(rig: Pbx, client: Client) -> None:
    """The customer's call ``leg_a``, answered and its media flowing."""
    await answered(client, "leg_a", "sip:5550100@trunk")
    await rig.sip_answered("leg_a")


async def bridged(rig: Pbx, client: Client) -> None:
    await answered(client, "leg_a", "sip:5550100@trunk")
    await answered(client, "leg_b", "sip:agent1@local")
    await rig.sip_answered("leg_a")
    await rig.sip_answered("leg_b")
    await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
    await client.events.wait("call.bridged", call_id="leg_a")


async def test_listen_both_tracks_reach_the_bot_caller_first(db_url: str, tmp_path: Path) -> None:
    cust, agent, t = tables(tmp_path)
    async with Bot() as bot, pbx(db_url, tmp_path, t) as rig:
        await start(rig, (cust, ()), (agent, ()))
        client = await rig.client("bot-token")
        await bridged(rig, client)
        reply = await client.media.stream_start(
            call_id="leg_a", url=bot.url, tracks="both", metadata={"case": 7}
        )
        sid = reply["stream_id"]
        started = await client.events.wait("media.stream.started", call_id="leg_a")
        assert started.data["stream_id"] == sid
        call = await bot.call()
        assert call.start == {
            "type": "start", "stream_id": sid, "call_id": "leg_a", "sample_rate": 8000,
            "tracks": "both", "mode": "listen", "metadata": {"case": 7},
        }  # fmt: skip
        await call.wait_frames(75)  # 1.5 s of audio
        both = call.samples(2)[-8000:]
        assert heard(both[:, 0], FREQS) == {CUSTOMER}
        assert heard(both[:, 1], FREQS) == {AGENT}
        reply = await client.media.stream_stop(call_id="leg_a")
        assert reply == {"stream_ids": [sid]}
        stopped = await client.events.wait("media.stream.stopped", call_id="leg_a")
        data = stopped.data
        assert data["reason"] == "rwi" and data["frames_sent"] >= 75
        assert data["frames_dropped"] == 0
        async with asyncio.timeout(5):
            await call.closed.wait()
        assert call.texts[-1] == {"type": "stop"}
        # the bridge was never disturbed
        _, hears = await rig.tap("leg_a", 1.0)
        assert heard(hears, FREQS) == {AGENT}
        await rig.replay_matches()


async def test_duplex_bot_is_the_callers_party_marks_and_hangup(
    db_url: str, tmp_path: Path
) -> None:
    cust, _, t = tables(tmp_path)
    async with Bot(mode="tone", reply_hz=BOT) as bot, pbx(db_url, tmp_path, t) as rig:
        await start(rig, (cust, ()))
        client = await rig.client("bot-token")
        await caller_answered(rig, client)
        reply = await client.media.stream_start(call_id="leg_a", url=bot.url, mode="duplex")
        sid = reply["stream_id"]
        await client.events.wait("media.stream.started", call_id="leg_a")
        call = await bot.call()
        said, hears = await rig.tap("leg_a", 1.0)
        assert heard(hears, FREQS) == {BOT}  # the bot speaks to the caller
        assert heard(said, FREQS) == {CUSTOMER}
        got = call.samples()[-4000:, 0]
        assert heard(got, FREQS) == {CUSTOMER}  # and hears the caller, not itself
        await call.send(tone16(BOT, 1600, 8000))
        await call.send({"type": "mark", "name": "prompt-1"})
        mark = await client.events.wait("media.stream.mark", call_id="leg_a")
        assert mark.data == {"stream_id": sid, "name": "prompt-1"}
        await client.call.hangup(call_id="leg_a")
        await client.events.wait("call.hangup", call_id="leg_a")
        stopped = await client.events.wait("media.stream.stopped", call_id="leg_a")
        assert stopped.data["reason"] == "hangup"
        assert stopped.data["frames_received"] > 0
        await rig.replay_matches()


async def test_url_outside_the_allow_list_is_forbidden_and_never_reached(
    db_url: str, tmp_path: Path
) -> None:
    async with Bot() as allowed, Bot() as other:
        cust, _, t = tables(tmp_path, stream_allowed_urls=[f"ws://127.0.0.1:{allowed.port}/"])
        async with pbx(db_url, tmp_path, t) as rig:
            await start(rig, (cust, ()))
            client = await rig.client("bot-token")
            await answered(client, "leg_a", "sip:5550100@trunk")
            for url in (other.url, "ws://127.0.0.1.example.net/bot", "ws://10.9.8.7/"):
                with pytest.raises(Forbidden):
                    await client.media.stream_start(call_id="leg_a", url=url)
            with pytest.raises(InvalidParams):
                await client.media.stream_start(call_id="leg_a", url="ftp://127.0.0.1/")
            app = await rig.client("app-token")
            with pytest.raises(Forbidden) as denied:
                await app.media.stream_start(call_id="leg_a", url=allowed.url)
            assert denied.value.message == "scope required: media.stream"
            await client.media.stream_start(call_id="leg_a", url=allowed.url)
            await client.events.wait("media.stream.started", call_id="leg_a")
            assert len(allowed.calls) == 1 and other.calls == []


async def test_listen_peer_track_is_what_the_caller_hears(db_url: str, tmp_path: Path) -> None:
    cust, agent, t = tables(tmp_path)
    async with Bot() as bot, pbx(db_url, tmp_path, t) as rig:
        await start(rig, (cust, ()), (agent, ()))
        client = await rig.client("bot-token")
        await bridged(rig, client)
        await client.media.stream_start(call_id="leg_a", url=bot.url, tracks="peer")
        call = await bot.call()
        assert call.start["tracks"] == "peer"
        await call.wait_frames(75)
        assert {len(f) for f in call.frames} == {320}  # mono, 20 ms at 8 kHz
        assert heard(call.samples()[-8000:, 0], FREQS) == {AGENT}  # the agent, not the caller
        await client.media.stream_stop(call_id="leg_a")
        stopped = await client.events.wait("media.stream.stopped", call_id="leg_a")
        assert stopped.data["reason"] == "rwi"


async def test_duplex_on_a_bridged_call_whispers_to_this_calls_party_only(
    db_url: str, tmp_path: Path
) -> None:
    cust, agent, t = tables(tmp_path)
    async with Bot(mode="tone", reply_hz=BOT) as bot, pbx(db_url, tmp_path, t) as rig:
        await start(rig, (cust, ()), (agent, ()))
        client = await rig.client("bot-token")
        await bridged(rig, client)
        # the bot on the agent's leg: agent assist, whispered to the agent
        await client.media.stream_start(call_id="leg_b", url=bot.url, mode="duplex")
        await client.events.wait("media.stream.started", call_id="leg_b")
        call = await bot.call()
        await call.wait_frames(50)
        assert heard(call.samples()[-4000:, 0], FREQS) == {AGENT}  # it hears the agent
        _, agent_hears = await rig.tap("leg_b", 1.0)
        assert heard(agent_hears, FREQS) == {CUSTOMER, BOT}  # the customer and the bot
        _, customer_hears = await rig.tap("leg_a", 1.0)
        assert heard(customer_hears, FREQS) == {AGENT}  # the customer never hears the bot
        await client.media.stream_stop(call_id="leg_b")
        stopped = await client.events.wait("media.stream.stopped", call_id="leg_b")
        assert stopped.data["reason"] == "rwi" and stopped.data["frames_received"] > 0
        await rig.replay_matches()


async def test_a_stalled_bot_loses_its_own_frames_and_the_call_goes_on(
    db_url: str, tmp_path: Path
) -> None:
    cust, agent, t = tables(tmp_path)
    async with Bot(mode="stall") as bot, pbx(db_url, tmp_path, t) as rig:
        await start(rig, (cust, ()), (agent, ()))
        client = await rig.client("bot-token")
        await bridged(rig, client)
        reply = await client.media.stream_start(
            call_id="leg_a", url=bot.url, tracks="both", sample_rate=16000
        )
        sid = reply["stream_id"]
        await client.events.wait("media.stream.started", call_id="leg_a")
        await bot.call()
        # the engine's own counter: drops have no event until the stream ends
        media = rig.svc.runtime.legs.media
        await wait_until(
            lambda: media.engine.streams[sid].frames_dropped >= 50, "frames dropped", 30.0
        )
        said, hears = await rig.tap("leg_a", 1.0)  # the bridge is untouched
        assert heard(said, FREQS) == {CUSTOMER} and heard(hears, FREQS) == {AGENT}
        _, agent_hears = await rig.tap("leg_b", 1.0)
        assert heard(agent_hears, FREQS) == {CUSTOMER}
        await client.media.stream_stop(call_id="leg_a")
        stopped = await client.events.wait("media.stream.stopped", call_id="leg_a", within=10)
        data = stopped.data
        assert data["reason"] == "rwi" and data["frames_dropped"] >= 50, data
        await rig.replay_matches()


async def test_a_bot_that_closes_ends_its_stream_remote_closed(db_url: str, tmp_path: Path) -> None:
    cust, agent, t = tables(tmp_path)
    async with Bot(mode="close", close_after=25) as bot, pbx(db_url, tmp_path, t) as rig:
        await start(rig, (cust, ()), (agent, ()))
        client = await rig.client("bot-token")
        await bridged(rig, client)
        reply = await client.media.stream_start(call_id="leg_a", url=bot.url)
        sid = reply["stream_id"]
        stopped = await client.events.wait("media.stream.stopped", call_id="leg_a", within=10)
        data = stopped.data
        assert data["stream_id"] == sid and data["reason"] == "remote_closed", data
        assert data["frames_sent"] >= 25
        _, hears = await rig.tap("leg_a", 1.0)  # the call goes on
        assert heard(hears, FREQS) == {AGENT}
        with pytest.raises(NotFound):
            await client.media.stream_stop(call_id="leg_a")
        await rig.replay_matches()


async def test_a_transcriber_and_a_duplex_bot_on_one_call_at_once(
    db_url: str, tmp_path: Path
) -> None:
    """Several streams per call: a voice bot answers the caller (duplex) while a
    transcriber listens to both sides (``tracks: both``); the transcriber hears the
    caller in its first channel and the bot, which is what the caller hears, in its
    second. Stopping one leaves the other running."""
    cust, _, t = tables(tmp_path)
    async with (
        Bot(mode="tone", reply_hz=BOT) as voice,
        Bot() as transcriber,
        pbx(db_url, tmp_path, t) as rig,
    ):
        await start(rig, (cust, ()))
        client = await rig.client("bot-token")
        await caller_answered(rig, client)
        reply = await client.media.stream_start(call_id="leg_a", url=voice.url, mode="duplex")
        voice_id = reply["stream_id"]
        reply = await client.media.stream_start(call_id="leg_a", url=transcriber.url, tracks="both")
        listen_id = reply["stream_id"]
        assert listen_id != voice_id
        listening = await transcriber.call()
        assert listening.start["mode"] == "listen" and listening.start["tracks"] == "both"
        await listening.wait_frames(75)  # 1.5 s, the voice bot talking all along
        both = listening.samples(2)[-8000:]
        assert heard(both[:, 0], FREQS) == {CUSTOMER}
        assert heard(both[:, 1], FREQS) == {BOT}
        talking = await voice.call()
        assert heard(talking.samples()[-4000:, 0], FREQS) == {CUSTOMER}

        reply = await client.media.stream_stop(call_id="leg_a", stream_id=listen_id)
        assert reply == {"stream_ids": [listen_id]}
        stopped = await client.events.wait("media.stream.stopped", call_id="leg_a")
        assert stopped.data["stream_id"] == listen_id
        # the voice bot goes on: the caller still hears it
        _, hears = await rig.tap("leg_a", 1.0)
        assert heard(hears, FREQS) == {BOT}
        await client.call.hangup(call_id="leg_a")
        ended = await client.events.wait("media.stream.stopped", stream_id=voice_id, within=10)
        assert ended.data["reason"] == "hangup"
        await rig.replay_matches()
