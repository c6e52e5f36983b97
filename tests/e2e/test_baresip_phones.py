"""Seed scenarios with baresip, a real softphone, as the agents' phones and as a caller.

Each phone is a baresip process (``tests/support/baresip.py``) that registers
to the service as a local user with digest auth (``[[sip.users]]`` with a password and
no static contact: the service can only reach it through the binding its registrar
persisted in the log), answers by itself, sends a looped tone of its own from
``aufile`` and records what it hears with ``sndfile``. The customer on the trunk is a
SIPp UAS streaming another tone. Audio is checked with numpy on both sides: the
service's own tap of a leg, and the file baresip wrote of what it decoded.
"""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest

from rwi.store.database import asyncpg_dsn
from sip_media.call_types import LegOffered
from tests.e2e.pbx import TONES, Pbx, events_of, pbx, sip_tables
from tests.support.audio import g711_file, heard
from tests.support.baresip import Baresip, sip_port
from tests.support.ports import free_port
from tests.support.sipp import Sipp
from tests.support.sipp_templates import RING_180, call_sipp
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e

CUSTOMER_HZ, PHONE_HZ, PLAY_HZ = 1000.0, 440.0, 1500.0
assert {CUSTOMER_HZ, PHONE_HZ, PLAY_HZ} == set(TONES)
RATE = 8000


# --------------------------------------------------------------------------- helpers
def phone_tables(
    tmp: Path,
    users: dict[str, str],
    *,
    trunk: Sipp | None = None,
    routes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The rig's tables with ``users`` (name -> password) as local users that must
    register: no static contact, and INVITEs from them are digest-challenged."""
    tables = sip_tables(tmp, trunk=trunk, routes=routes)
    tables["sip"]["users"] = [{"name": name, "password": pw} for name, pw in users.items()]
    tables["sip"]["authenticate_invites"] = True
    return tables


def password(user: str) -> str:
    return f"pw-{user}-secret"


async def until(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Poll a condition until it holds; fail after ``limit`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit} s waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def baresip_phone(
    tmp: Path,
    service_port: int,
    user: str,
    tone_hz: float = PHONE_HZ,
    contacts: tuple[str, ...] = (),
) -> AsyncIterator[Baresip]:
    """A baresip phone for local user ``user`` of the service at ``service_port``: it
    registers there with digest auth at start-up, answers by itself, says ``tone_hz``
    and records what it hears and says."""
    phone = Baresip(
        tmp / f"baresip-{user}",
        sip_port(),
        free_port(),
        f"<sip:{user}@127.0.0.1:{service_port}>;auth_pass={password(user)};regint=600;"
        "answermode=auto;audio_codecs=PCMU/8000/1",
        tone_hz=tone_hz,
        record=True,
        contacts=contacts,
    )
    try:
        await phone.start()
        yield phone
    finally:
        await phone.stop()


def bound_ports(rig: Pbx, user: str) -> set[int]:
    """Source ports of ``user``'s bindings in the service's live state (a fold of the
    log): what the registrar persisted."""
    return {
        binding["source"][1]
        for aor, bindings in rig.svc.service.state.registrations.items()
        if aor.startswith(f"sip:{user}@")
        for binding in bindings
    }


async def until_registered(rig: Pbx, phone: Baresip, user: str) -> None:
    """baresip registers at start-up, often before ctrl_tcp has a listener to tell us:
    wait for the registrar's binding of the phone in the log instead."""
    await until(lambda: phone.sip_port in bound_ports(rig, user), f"{user}'s binding")
    logged = await registrations(rig.db_url, user)
    assert logged and logged[-1]["bindings"], logged


@asynccontextmanager
async def registered_phone(
    rig: Pbx, user: str, tone_hz: float = PHONE_HZ, contacts: tuple[str, ...] = ()
) -> AsyncIterator[Baresip]:
    """A baresip phone registered to the running service as ``user``; it is stopped
    (and un-registers) before the service stops."""
    async with baresip_phone(rig.tmp, rig.sip_port, user, tone_hz, contacts) as phone:
        await until_registered(rig, phone, user)
        yield phone


async def registrations(db_url: str, user: str) -> list[dict[str, Any]]:
    """The ``sip.registration.changed`` events of ``user``'s AOR in the log."""
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        rows = await conn.fetch(
            "SELECT data FROM events WHERE type = 'sip.registration.changed' "
            "AND stream_id LIKE $1 ORDER BY seq",
            f"registration:sip:{user}@%",
        )
    finally:
        await conn.close()
    return [json.loads(r["data"]) if isinstance(r["data"], str) else r["data"] for r in rows]


async def recording(phone: Baresip, kind: str = "dec", limit: float = 5.0) -> np.ndarray:
    """What ``phone`` heard (``"dec"``) or said (``"enc"``) in its one call, as
    ``sndfile`` wrote it: complete once the call is closed and the file's header names
    its length. One call per phone, so the one-second file names cannot collide."""

    def complete() -> bool:
        files = phone.recordings(kind)
        if len(files) != 1:
            return False
        try:
            with wave.open(str(files[0])) as w:
                return int(w.getnframes()) > 0
        except (EOFError, wave.Error):  # created, header not written yet
            return False

    await until(complete, f"baresip's {kind} recording in {phone.snd_path}", limit)
    with wave.open(str(phone.recordings(kind)[0])) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def last(samples: np.ndarray, seconds: float, skip: float = 0.2) -> np.ndarray:
    """The ``seconds`` before the last ``skip`` seconds of a recording."""
    end = len(samples) - int(skip * RATE)
    return samples[max(0, end - int(seconds * RATE)) : end]


def customer(tmp: Path) -> Sipp:
    tone = g711_file(tmp / "customer.ul", 0, CUSTOMER_HZ)
    return call_sipp(
        tmp, "uas_call", ring=RING_180, sdp_port="[rtpstream_audio_port]", pt=0,
        codec="PCMU", ack_action=f'<action><exec rtp_stream="{tone},-1,0"/></action>',
    )  # fmt: skip


# ----------------------------------------------------------------------------- tests
async def test_scenario_1_with_a_registered_baresip_agent(db_url: str, tmp_path: Path) -> None:
    cust = customer(tmp_path)
    tables = phone_tables(tmp_path, {"1001": password("1001")}, trunk=cust)
    async with pbx(db_url, tmp_path, tables) as rig, registered_phone(rig, "1001") as agent:
        rig.sipps.append(cust)
        await cust.start()
        client = await rig.client()

        reply = await client.call.originate(
            call_id="leg_a", destination="sip:1234567890@trunk", caller_id="2000", timeout_secs=30
        )
        assert reply == {"call_id": "leg_a"}
        await client.events.wait("call.answered", call_id="leg_a", within=10)

        reply = await client.call.originate(
            call_id="leg_b", destination="sip:1001@local", caller_id="2000", timeout_secs=30
        )
        assert reply == {"call_id": "leg_b"}
        await client.events.wait("call.answered", call_id="leg_b", within=10)
        established = await agent.wait_event("CALL_ESTABLISHED")
        assert established["direction"] == "incoming"
        assert established["peerdisplayname"] == "2000"  # caller_id, as the display name
        assert established["peeruri"].startswith("sip:2000@")  # and as the From user

        reply = await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
        assert reply == {"leg_a": "leg_a", "leg_b": "leg_b"}
        replied_at = client.last_reply_seq
        bridged = await client.events.wait("call.bridged", call_id="leg_a")
        assert bridged.data == {"leg_a": "leg_a", "leg_b": "leg_b"}
        assert replied_at < bridged.seq  # the reply came before the event it caused

        # audio both ways, as the service sees it: the customer's tone goes to baresip,
        # baresip's own tone goes to the customer (these taps are the recording window
        # of baresip's own file too)
        said_a, heard_a = await rig.tap("leg_a", 1.2)
        said_b, heard_b = await rig.tap("leg_b", 1.2)
        assert heard(said_a, TONES) == {CUSTOMER_HZ}
        assert heard(heard_b, TONES) == {CUSTOMER_HZ}
        assert heard(said_b, TONES) == {PHONE_HZ}
        assert heard(heard_a, TONES) == {PHONE_HZ}

        assert events_of(client, "leg_a") == ["call.ringing", "call.answered", "call.bridged"]
        assert events_of(client, "leg_b") == ["call.ringing", "call.answered"]
        listed = await client.session.list_calls()
        assert {c["call_id"]: c["state"] for c in listed["calls"]} == {
            "leg_a": "bridged", "leg_b": "bridged"}  # fmt: skip

        # the agent hangs up on the phone
        reply = await agent.command("hangup")
        assert reply["ok"], reply
        hangup = await client.events.wait("call.hangup", call_id="leg_b")
        assert hangup.data["hangup_by"] == "remote"
        assert hangup.data["reason"] == "callee"
        unbridged = await client.events.wait("call.unbridged", call_id="leg_a")
        assert unbridged.data == {"leg_a": "leg_b", "leg_b": "leg_a", "reason": "hangup"}
        await agent.wait_event("CALL_CLOSED")

        # what baresip itself decoded at the end of the bridge: the customer, only
        assert heard(last(await recording(agent, "dec"), 1.0), TONES) == {CUSTOMER_HZ}
        assert heard(last(await recording(agent, "enc"), 1.0), TONES) == {PHONE_HZ}

        # the whole story as the client saw it, in order (the survivor's unbridge is
        # decided together with, and just before, the gone leg's hangup)
        assert [(e.call_id, e.name) for e in client.events.received] == [
            ("leg_a", "call.ringing"), ("leg_a", "call.answered"),
            ("leg_b", "call.ringing"), ("leg_b", "call.answered"),
            ("leg_a", "call.bridged"),
            ("leg_a", "call.unbridged"), ("leg_b", "call.hangup"),
        ]  # fmt: skip
        listed = await client.session.list_calls()
        assert {c["call_id"]: c["state"] for c in listed["calls"]} == {
            "leg_a": "answered"}  # fmt: skip

        await client.call.hangup(call_id="leg_a")
        await client.events.wait("call.hangup", call_id="leg_a")
        assert await cust.finish() == 0
        await rig.replay_matches()


async def test_scenario_12_baresip_calls_in_and_the_client_answers(
    db_url: str, tmp_path: Path
) -> None:
    routes = [{"name": "sales-line", "match_user": "^2000$", "context": "sales"}]
    tables = phone_tables(tmp_path, {"1001": password("1001")}, routes=routes)
    async with pbx(db_url, tmp_path, tables) as rig, registered_phone(rig, "1001") as phone:
        client = await rig.client()
        reply = await client.session.subscribe(contexts=["sales"])
        assert reply == {"contexts": ["sales"]}

        # the phone dials the sales line; its INVITE is digest-challenged (407) first
        offers: list[LegOffered] = []
        unsubscribe = rig.svc.runtime.legs.subscribe(
            lambda obs: offers.append(obs) if isinstance(obs, LegOffered) else None
        )
        reply = await phone.command("dial", f"sip:2000@127.0.0.1:{rig.sip_port}")
        assert reply["ok"], reply
        incoming = await client.events.wait("call.incoming", within=10)
        call_id = str(incoming.call_id)
        unsubscribe()
        assert [(o.leg_id, o.user) for o in offers] == [(call_id, "1001")]  # authenticated
        assert incoming.context == "sales"
        assert incoming.data == {
            "caller": "1001", "callee": "2000", "direction": "inbound", "trunk": None,
            "headers": {}}  # fmt: skip

        reply = await client.call.answer(call_id=call_id)
        assert reply == {"call_id": call_id}
        await client.events.wait("call.answered", call_id=call_id)
        established = await phone.wait_event("CALL_ESTABLISHED")
        assert established["direction"] == "outgoing"
        await rig.sip_answered(call_id)

        # a tone played into the call reaches the phone; the phone's tone reaches us
        play = await client.media.play(
            call_id=call_id, source={"type": "tone", "frequency": PLAY_HZ, "duration_ms": 10000}
        )
        assert play["playback_id"].startswith("pb-")
        await client.events.wait("media.play.started", call_id=call_id)
        said, heard_by_phone = await rig.tap(call_id, 1.2)
        assert heard(heard_by_phone, TONES) == {PLAY_HZ}
        assert heard(said, TONES) == {PHONE_HZ}

        await client.call.hangup(call_id=call_id)
        hangup = await client.events.wait("call.hangup", call_id=call_id)
        assert (hangup.data["reason"], hangup.data["hangup_by"]) == ("rwi", "rwi")
        closed = await phone.wait_event("CALL_CLOSED")
        assert closed["param"] == "Connection reset by peer"  # our BYE
        finished = await client.events.wait("media.play.finished", call_id=call_id)
        playback_id = play["playback_id"]
        assert finished.data == {
            "playback_id": playback_id, "interrupted": True, "reason": "hangup"}  # fmt: skip
        assert heard(last(await recording(phone, "dec"), 1.0), TONES) == {PLAY_HZ}
        assert events_of(client, call_id) == [
            "call.incoming", "call.answered", "media.play.started", "media.play.finished",
            "call.hangup",
        ]  # fmt: skip
        await rig.replay_matches()


HOLD_HZ, AGENT2_HZ = 700.0, PLAY_HZ
FOUR = (PHONE_HZ, HOLD_HZ, CUSTOMER_HZ, AGENT2_HZ)


async def test_scenario_3b_attended_transfer_between_two_baresip_agents(
    db_url: str, tmp_path: Path
) -> None:
    """Seed scenario 3 method B (scenario 2's attended transfer, completed): the
    customer talks to agent1 (1001), is held while agent1 consults agent2 (1002), then
    talks to agent2; agent1's phone is hung up by the service, agent2 hangs up itself."""
    cust = customer(tmp_path)
    users = {"1001": password("1001"), "1002": password("1002")}
    tables = phone_tables(tmp_path, users, trunk=cust)
    write_tone_wav(tmp_path / "sounds" / "hold_music.wav", HOLD_HZ, seconds=5)
    async with (
        pbx(db_url, tmp_path, tables) as rig,
        registered_phone(rig, "1001", PHONE_HZ) as agent1,
        registered_phone(rig, "1002", AGENT2_HZ) as agent2,
    ):
        rig.sipps.append(cust)
        await cust.start()
        client = await rig.client()
        for leg, destination in (("leg_a", "sip:5550100@trunk"), ("leg_b", "sip:1001@local")):
            await client.call.originate(call_id=leg, destination=destination)
            await client.events.wait("call.answered", call_id=leg, within=10)
        await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
        await client.events.wait("call.bridged", call_id="leg_a")
        await agent1.wait_event("CALL_ESTABLISHED")

        # 1. attended transfer: the customer is held, agent1 consults agent2
        reply = await client.call.transfer_attended(call_id="leg_a", target="sip:1002@local")
        consult = reply["consultation_call_id"]
        assert consult.startswith("consult-leg_a-")
        await client.events.wait("call.answered", call_id=consult, within=10)
        await client.events.wait("call.bridged", call_id="leg_b")
        await agent2.wait_event("CALL_ESTABLISHED")
        await rig.sip_answered(consult)
        _, customer_hears = await rig.tap("leg_a", 1.0)
        _, agent1_hears = await rig.tap("leg_b", 1.0)
        _, agent2_hears = await rig.tap(consult, 1.0)
        assert heard(customer_hears, FOUR) == {HOLD_HZ}  # hold music, not the agents
        assert heard(agent1_hears, FOUR) == {AGENT2_HZ}
        assert heard(agent2_hears, FOUR) == {PHONE_HZ}

        # 2. complete: the service hangs up agent1's phone; customer and agent2 talk
        reply = await client.call.transfer_complete(call_id="leg_a", consultation_call_id=consult)
        assert reply == {"call_id": "leg_a", "leg_a": "leg_a", "leg_b": consult}
        hangup = await client.events.wait("call.hangup", call_id="leg_b")
        assert (hangup.data["reason"], hangup.data["hangup_by"]) == ("transfer", "rwi")
        closed = await agent1.wait_event("CALL_CLOSED")
        assert closed["param"] == "Connection reset by peer"
        # what agent1's phone heard last: agent2, in the consultation
        assert heard(last(await recording(agent1), 0.8), FOUR) == {AGENT2_HZ}
        rebridged = await client.events.wait("call.bridged", leg_a="leg_a", leg_b=consult)
        assert rebridged.data == {"leg_a": "leg_a", "leg_b": consult}
        _, customer_hears = await rig.tap("leg_a", 1.0)
        _, agent2_hears = await rig.tap(consult, 1.0)
        assert heard(customer_hears, FOUR) == {AGENT2_HZ}
        assert heard(agent2_hears, FOUR) == {CUSTOMER_HZ}

        # 3. agent2 hangs up on the phone; the customer's leg stays up, unbridged
        reply = await agent2.command("hangup")
        assert reply["ok"], reply
        hangup = await client.events.wait("call.hangup", call_id=consult)
        assert (hangup.data["reason"], hangup.data["hangup_by"]) == ("callee", "remote")
        unbridged = await client.events.wait("call.unbridged", after_seq=rebridged.seq)
        assert unbridged.call_id == "leg_a"
        assert unbridged.data == {"leg_a": consult, "leg_b": "leg_a", "reason": "hangup"}
        await agent2.wait_event("CALL_CLOSED")
        assert heard(last(await recording(agent2), 0.8), FOUR) == {CUSTOMER_HZ}

        assert events_of(client, "leg_a") == [
            "call.ringing", "call.answered", "call.bridged", "call.unbridged",
            "media.hold.started", "media.hold.stopped", "call.bridged", "call.unbridged",
        ]  # fmt: skip
        assert events_of(client, "leg_b") == [
            "call.ringing", "call.answered", "media.play.started", "media.play.finished",
            "call.bridged", "call.hangup",
        ]  # fmt: skip
        assert events_of(client, consult) == [
            "call.ringing", "call.answered", "call.unbridged", "call.hangup"]  # fmt: skip
        listed = await client.session.list_calls()
        assert {c["call_id"]: c["state"] for c in listed["calls"]} == {
            "leg_a": "answered"}  # fmt: skip

        await client.call.hangup(call_id="leg_a")
        await client.events.wait("call.hangup", call_id="leg_a")
        assert await cust.finish() == 0
        await rig.replay_matches()


async def test_a_registration_in_the_log_reaches_the_phone_after_a_restart(
    db_url: str, tmp_path: Path
) -> None:
    """The binding the registrar persisted is all the next run of the service has: the
    phone does not register again (regint 600 s), and is still reachable."""
    tables = phone_tables(tmp_path, {"1001": password("1001")})
    service_port = int(tables["sip"]["listen"][0].rsplit(":", 1)[1])
    async with baresip_phone(tmp_path, service_port, "1001") as phone:
        async with pbx(db_url, tmp_path, tables) as rig:
            await until_registered(rig, phone, "1001")
        registered = await registrations(db_url, "1001")
        async with pbx(db_url, tmp_path, tables) as rig:
            assert bound_ports(rig, "1001") == {phone.sip_port}  # restored from the log
            client = await rig.client()
            await client.call.originate(call_id="again", destination="sip:1001@local")
            await client.events.wait("call.answered", call_id="again", within=10)
            await phone.wait_event("CALL_ESTABLISHED")
            await rig.sip_answered("again")
            said, _ = await rig.tap("again", 1.0)
            assert heard(said, TONES) == {PHONE_HZ}
            await client.call.hangup(call_id="again")
            await client.events.wait("call.hangup", call_id="again")
            await phone.wait_event("CALL_CLOSED")
            assert await registrations(db_url, "1001") == registered  # no new REGISTER
            await phone.stop()  # it un-registers: the binding leaves the log's state
            await until(lambda: not bound_ports(rig, "1001"), "the un-REGISTER", 5)
            assert (await registrations(db_url, "1001"))[-1]["bindings"] == []
            await rig.replay_matches()


async def test_baresip_sends_a_message_during_a_call(db_url: str, tmp_path: Path) -> None:
    """baresip 1.0.0 sends MESSAGE only in page mode (its ``contact`` module's
    ``message`` command; it has none within a call's dialog): sent by an agent's phone
    while it is in a call, it is routed like any out-of-dialog MESSAGE and reaches the
    route's context, from that phone's user; the call goes on."""
    routes = [{"name": "sales-line", "match_user": r"^2\d{3}$", "context": "sales"}]
    tables = phone_tables(tmp_path, {"1001": password("1001")}, routes=routes)
    async with pbx(db_url, tmp_path, tables) as rig:
        sales = f'"Sales" <sip:2000@127.0.0.1:{rig.sip_port}>'
        async with registered_phone(rig, "1001", contacts=(sales,)) as phone:
            client = await rig.client()
            await client.session.subscribe(contexts=["sales"])
            await client.call.originate(call_id="leg_b", destination="sip:1001@local")
            await client.events.wait("call.answered", call_id="leg_b", within=10)
            await phone.wait_event("CALL_ESTABLISHED")

            assert (await phone.command("contact_next"))["ok"]
            reply = await phone.command("message", "Please call me back")
            assert reply["ok"], reply
            received = await client.events.wait("sip.message.received", within=10)
            assert received.context == "sales"
            assert received.call_id is None  # page mode: no call's dialog
            data = received.data
            assert (data["from"], data["to"], data["body"]) == (
                "1001", "2000", "Please call me back",
            )  # fmt: skip
            assert data["content_type"].startswith("text/plain")
            listed = await client.session.list_calls()
            assert [(c["call_id"], c["state"]) for c in listed["calls"]] == [("leg_b", "answered")]
            await client.call.hangup(call_id="leg_b")
            await client.events.wait("call.hangup", call_id="leg_b")
            await phone.wait_event("CALL_CLOSED")
        await rig.replay_matches()
