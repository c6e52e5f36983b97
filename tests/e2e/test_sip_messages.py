"""Out-of-dialog (page-mode) SIP MESSAGE both ways, end to end with SIPp phones: one
the dialplan routes to a context reaches that context's subscribers (an unrouted one
is answered 404, as an INVITE would be); ``sip.message {destination}`` reaches a local
user and a trunk, and its reply carries that phone's (that carrier's) answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.pbx import Sipp, pbx, sip_tables

pytestmark = pytest.mark.e2e

ROUTES = [{"name": "sales-line", "match_user": r"^2\d{3}$", "context": "sales"}]


async def test_an_out_of_dialog_message_goes_to_its_contexts_subscribers(
    db_url: str, tmp_path: Path
) -> None:
    async with pbx(db_url, tmp_path, sip_tables(tmp_path, routes=ROUTES)) as rig:
        sales = await rig.client()
        other = await rig.client("app2-token")
        await sales.session.subscribe(contexts=["sales"])
        await other.session.subscribe(contexts=["support"])
        phone = Sipp(tmp_path, "uac_page", code=200)
        rig.sipps.append(phone)
        await phone.start("-s", "2000", remote=f"127.0.0.1:{rig.sip_port}")
        assert await phone.finish() == 0  # answered 200
        received = await sales.events.wait("sip.message.received", within=10)
        assert received.context == "sales"
        assert received.data == {
            "from": "alice", "to": "2000", "content_type": "text/plain",
            "body": "Please call me back\r\n",
        }  # fmt: skip

        unrouted = Sipp(tmp_path, "uac_page", code=404)
        rig.sipps.append(unrouted)
        await unrouted.start("-s", "9999", remote=f"127.0.0.1:{rig.sip_port}")
        assert await unrouted.finish() == 0  # answered 404, nothing pushed
        assert [e.name for e in sales.events.received] == ["sip.message.received"]
        assert not other.events.received
        await rig.replay_matches()


async def test_a_page_mode_message_to_a_local_user_and_to_a_trunk(
    db_url: str, tmp_path: Path
) -> None:
    phone = Sipp(tmp_path, "uas_page", code="202 Accepted", user="1001")
    carrier = Sipp(tmp_path, "uas_page", code="202 Accepted", user="5551234")
    tables = sip_tables(tmp_path, users={"1001": phone}, trunk=carrier)
    async with pbx(db_url, tmp_path, tables) as rig:
        rig.sipps += [phone, carrier]
        await phone.start()
        await carrier.start()
        client = await rig.client()
        ticket = {"body": "Your ticket number is 12345", "extra_headers": {"X-Ticket": "12345"}}
        for peer, destination in ((phone, "sip:1001@local"), (carrier, "sip:5551234@trunk")):
            reply = await client.sip.message(destination=destination, **ticket)
            assert (reply["status"], reply["reason"]) == (202, "Accepted")
            assert reply["rtt_ms"] > 0
            # it checked the user or number dialled, the body and the X- header
            assert await peer.finish() == 0
        nobody = await client.sip.message(destination="sip:1002@local", body="anyone?")
        assert nobody["status"] == 404  # no such user: our own answer
        await rig.replay_matches()
