"""Conferences end to end (contract §5 Conference, §11): four SIPp phones, each saying
its own tone, in one conference on the real service; what each member hears is taken
from the service's own media engine and checked by spectrum: every member hears the
three others and never itself; a muted member is not heard but still hears; a removed
member hears nobody and is heard by nobody; a member whose phone hangs up leaves; a
destroyed conference leaves its calls up; a member's customer, left behind when its
bridge is left on add, stays answered hearing neither. The log replays to the live
state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rwi.client import Client, Event, InvalidState, NotFound
from tests.e2e.pbx import (
    Pbx,
    Sipp,
    answered,
    call_sipp,
    g711_file,
    heard,
    pbx,
    sip_tables,
    start,
    tone_phone,
)  # fmt: skip
from tests.support.wav import read_wav, write_tone_wav

pytestmark = pytest.mark.e2e

#: what each member's phone says: m1..m3 are dialled, m4 calls in
SAYS = {"m1": 440.0, "m2": 700.0, "m3": 1000.0, "m4": 1500.0}
#: what the customer m1 was bridged to says (the second test): it never joins
CUSTOMER = 1200.0
FREQS = (*SAYS.values(), CUSTOMER)
#: the hold music of the second test (m4's tone: m4 is not in that test)
MUSIC = SAYS["m4"]
ROUTES = [{"name": "conf-line", "match_user": r"^2\d{3}$", "context": "sales"}]


def hanging_up_caller(tmp: Path, tone: Path) -> Sipp:
    """A phone that calls in saying ``tone`` and hangs up (BYE) once it has been sent
    an in-dialog MESSAGE: the test's cue, so the hangup comes when the test wants it."""
    middle = f"""  <nop><action><exec rtp_stream="{tone},-1,0"/></action></nop>
  <recv request="MESSAGE"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]>
  </send>"""
    return call_sipp(tmp, "uac_call", middle=middle, pause_ms=0)


async def conf_event(client: Client, name: str, **data: Any) -> Event:
    """The first ``name`` event whose data has ``data`` (a call's id is the frame's)."""
    return await client.events.wait(name, within=10, **data)


async def hearing(rig: Pbx, legs: list[str]) -> dict[str, set[float]]:
    """Which tones each leg is sent, over the same second (the kit's tap is a recorder
    on the service's media engine: the same one ``record.start`` uses)."""
    taps = await asyncio.gather(*(rig.tap(leg, 1.0) for leg in legs))
    return {leg: heard(sent_to, FREQS) for leg, (_, sent_to) in zip(legs, taps, strict=True)}


def everyone_but(*legs: str, among: tuple[str, ...] = tuple(SAYS)) -> dict[str, set[float]]:
    """Each of ``among`` hears every one of ``among`` except itself and ``legs``."""
    return {leg: {SAYS[o] for o in among if o != leg and o not in legs} for leg in among}


async def test_a_conference_of_four_tone_phones(db_url: str, tmp_path: Path) -> None:
    phones = {
        leg: tone_phone(tmp_path, g711_file(tmp_path / f"{leg}.ul", 0, SAYS[leg]))
        for leg in ("m1", "m2", "m3")
    }
    caller = hanging_up_caller(tmp_path, g711_file(tmp_path / "m4.ul", 0, SAYS["m4"]))
    users = {f"100{n}": phones[f"m{n}"] for n in (1, 2, 3)}
    async with pbx(db_url, tmp_path, sip_tables(tmp_path, users=users, routes=ROUTES)) as rig:
        await start(rig, *((p, ()) for p in phones.values()))
        client = await rig.client()
        await client.session.subscribe(contexts=["sales"])
        for n in (1, 2, 3):
            await answered(client, f"m{n}", f"sip:100{n}@local")
            await rig.sip_answered(f"m{n}")
        rig.sipps.append(caller)
        await caller.start("-s", "2000", remote=f"127.0.0.1:{rig.sip_port}")
        incoming = await client.events.wait("call.incoming", within=10)
        m4 = str(incoming.call_id)
        await client.call.answer(call_id=m4)
        await rig.sip_answered(m4)
        legs = {"m1": "m1", "m2": "m2", "m3": "m3", "m4": m4}

        # m1 and m2 talk to each other first: joining leaves that bridge
        await client.call.bridge(leg_a="m1", leg_b="m2")
        await client.events.wait("call.bridged", call_id="m1")
        assert await client.conference.create(conf_id="room") == {
            "conf_id": "room", "max_members": 10,
        }  # fmt: skip
        await conf_event(client, "conference.created", conf_id="room")
        for n, leg in enumerate(("m1", "m2", "m3", "m4"), 1):
            data = await client.conference.add(conf_id="room", call_id=legs[leg])
            assert data["members"] == n
            await conf_event(client, "conference.member_joined", call_id=legs[leg], members=n)
        unbridged = await client.events.wait("call.unbridged", call_id="m1")
        assert unbridged.data["reason"] == "conference"

        async def check(expected: dict[str, set[float]]) -> None:
            got = await hearing(rig, [legs[leg] for leg in expected])
            assert {leg: got[legs[leg]] for leg in expected} == expected

        # every member hears the three others, never itself
        await check(everyone_but())

        # mute: m1 is heard by nobody but still hears everyone
        await client.conference.mute(conf_id="room", call_id="m1")
        await conf_event(client, "conference.member_muted", call_id="m1")
        await check({**everyone_but("m1"), "m1": {SAYS["m2"], SAYS["m3"], SAYS["m4"]}})
        status = await client.conference.status(conf_id="room")
        assert [(m["call_id"], m["muted"]) for m in status["members"]] == [
            ("m1", True), ("m2", False), ("m3", False), (m4, False),
        ]  # fmt: skip
        await client.conference.unmute(conf_id="room", call_id="m1")
        await conf_event(client, "conference.member_unmuted", call_id="m1")
        await check(everyone_but())

        # remove: m3 leaves, hears nobody and nobody hears it; its call stays up
        await client.conference.remove(conf_id="room", call_id="m3")
        left = await conf_event(client, "conference.member_left", call_id="m3")
        assert (left.data["reason"], left.data["members"]) == ("removed", 3)
        await check({**everyone_but("m3", among=("m1", "m2", "m4")), "m3": set()})

        # m4's phone hangs up (on the test's cue, a MESSAGE): it leaves the conference
        await client.sip.message(call_id=m4, content_type="text/plain", body="bye")
        await client.events.wait("call.hangup", call_id=m4, within=10)
        left = await conf_event(client, "conference.member_left", call_id=m4)
        assert (left.data["reason"], left.data["members"]) == ("hangup", 2)
        await check(everyone_but(among=("m1", "m2")))

        # destroy: the last members leave, their calls stay up and hear nobody
        await client.conference.destroy(conf_id="room")
        await conf_event(client, "conference.destroyed", conf_id="room")
        gone = [
            str(e.call_id)
            for e in client.events.received
            if e.name == "conference.member_left" and e.data["reason"] == "destroyed"
        ]
        assert sorted(gone) == ["m1", "m2"]
        await check({"m1": set(), "m2": set()})
        calls = await client.session.list_calls()
        assert sorted(c["call_id"] for c in calls["calls"]) == ["m1", "m2", "m3"]
        with pytest.raises(NotFound):
            await client.conference.status(conf_id="room")

        for leg in ("m1", "m2", "m3"):
            await client.call.hangup(call_id=leg)
            await client.events.wait("call.hangup", call_id=leg)
        for phone in (*phones.values(), caller):
            assert await phone.finish() == 0
        await rig.replay_matches()


def anywhere(samples: Any, seconds: float = 0.2) -> set[float]:
    """Every test tone heard in some ``seconds`` of ``samples``."""
    size = int(8000 * seconds)
    parts = [samples[i : i + size] for i in range(0, samples.size - size + 1, size)]
    return set().union(*(heard(part, FREQS) for part in parts))


async def test_hold_bridge_and_recording_of_a_member(db_url: str, tmp_path: Path) -> None:
    """A member bridged to a customer leaves that bridge on add: the customer, who does
    not join, stays answered and hears neither the conference nor the member (nor is
    heard). A held member is heard by nobody and hears the hold music (only it does),
    and comes back on unhold; ``call.bridge`` on a member is refused; a recording of a
    member's call has what it says in one channel and the conference as it hears it in
    the other."""
    three = ("m1", "m2", "m3")
    phones = {leg: tone_phone(tmp_path, g711_file(tmp_path / f"{leg}.ul", 0, SAYS[leg]))
              for leg in three}  # fmt: skip
    customer = tone_phone(tmp_path, g711_file(tmp_path / "customer.ul", 0, CUSTOMER))
    users = {f"100{n}": phones[f"m{n}"] for n in (1, 2, 3)} | {"1004": customer}
    write_tone_wav(tmp_path / "sounds" / "hold_music.wav", MUSIC, seconds=5)
    async with pbx(db_url, tmp_path, sip_tables(tmp_path, users=users)) as rig:
        await start(rig, *((p, ()) for p in (*phones.values(), customer)))
        client = await rig.client("admin-token")
        await client.conference.create(conf_id="room")
        await answered(client, "cust", "sip:1004@local")
        await rig.sip_answered("cust")
        for n, leg in enumerate(three, 1):
            await answered(client, leg, f"sip:100{n}@local")
            await rig.sip_answered(leg)
            if leg == "m1":  # m1 talks to the customer until it joins
                await client.call.bridge(leg_a="cust", leg_b="m1")
                await client.events.wait("call.bridged", call_id="cust")
                assert await hearing(rig, ["cust", "m1"]) == {
                    "cust": {SAYS["m1"]}, "m1": {CUSTOMER},
                }  # fmt: skip
            await client.conference.add(conf_id="room", call_id=leg)
        unbridged = await client.events.wait("call.unbridged", call_id="m1")
        assert unbridged.data["reason"] == "conference"
        rid = (await client.record.start(call_id="m1", mode="separate_legs"))["recording_id"]
        await client.events.wait("record.started", call_id="m1")
        everyone = everyone_but(among=three)
        # the customer hears nothing (neither m1 nor the conference), nobody hears it
        assert await hearing(rig, [*three, "cust"]) == {**everyone, "cust": set()}
        calls = (await client.session.list_calls())["calls"]
        assert {c["call_id"]: c["state"] for c in calls}["cust"] == "answered"

        # hold: m2's voice leaves the conference, m2 hears the music, nobody else does
        await client.call.hold(call_id="m2")
        await client.events.wait("media.hold.started", call_id="m2")
        assert await hearing(rig, list(three)) == {
            "m1": {SAYS["m3"]}, "m2": {MUSIC}, "m3": {SAYS["m1"]},
        }  # fmt: skip
        status = await client.conference.status(conf_id="room")
        assert [m["call_id"] for m in status["members"]] == list(three)  # still a member

        # a member cannot be bridged: it is in the conference's mix
        with pytest.raises(InvalidState) as refused:
            await client.call.bridge(leg_a="m1", leg_b="m3")
        assert "in conference 'room'" in refused.value.message

        await client.call.unhold(call_id="m2")
        await client.events.wait("media.hold.stopped", call_id="m2")
        assert await hearing(rig, list(three)) == everyone

        # the recording: m1's voice left, the conference as m1 heard it right
        await client.record.stop(call_id="m1")
        stopped = await client.events.wait("record.stopped", call_id="m1")
        assert stopped.data["recording_id"] == rid
        wav = read_wav(Path(stopped.data["path"]))[1600:]
        assert wav.shape[1] == 2
        assert heard(wav[:, 0], FREQS) == {SAYS["m1"]}
        # never itself, no music, no customer
        assert anywhere(wav[:, 1]) == {SAYS["m2"], SAYS["m3"]}

        for leg in (*three, "cust"):
            await client.call.hangup(call_id=leg)
            await client.events.wait("call.hangup", call_id=leg)
        for phone in (*phones.values(), customer):
            assert await phone.finish() == 0
        await rig.replay_matches()
