"""One contact-centre day written into a ``Logbook``: the call-history projections' fixture log.

An inbound call queued, answered by an agent leg, recorded, held, supervised and
transferred; an outbound call that is busy; a failed command; a re-used call id. The
projection tests fold it and assert every row; the CLI tests report on it.
"""

from __future__ import annotations

from tests.integration.projections.logbook import Logbook


async def contact_centre(log: Logbook) -> None:
    """An inbound call queued, answered by an agent leg, recorded, held, supervised,
    transferred; an outbound call that is busy; a failed command; a re-used call id."""
    await log.session("conn1", "app", 0)
    await log.session("conn2", "boss", 0)
    await log.observe("sip.call.offered", 1, call_id="c1", context="sales")
    await log.call(
        "c1", "call.incoming", 1, context="sales", caller="sip:100@x", callee="sip:200@y",
        direction="inbound", trunk="t1", headers={},
    )  # fmt: skip
    await log.command("conn1", "app", "call.answer", {"call_id": "c1"}, 3, data={"call_id": "c1"})
    await log.call("c1", "call.claimed", 3, connection_id="conn1", action="call.answer")
    await log.call("c1", "call.answered", 3)
    await log.call("c1", "queue.joined", 4, queue_id="q1", position=2, priority=5)
    await log.command(
        "conn1", "app", "call.originate", {"call_id": "a1", "destination": "sip:7@pbx"}, 10
    )
    await log.call(
        "a1", "call.originated", 10, owner="conn1", token="app", destination="sip:7@pbx",
        caller_id=None, timeout_secs=60, context=None, extra_headers={}, ringback="local",
    )  # fmt: skip
    await log.observe("sip.call.progress", 11, call_id="a1", status=180)
    await log.call("a1", "call.ringing", 11, sip_status=180)
    await log.call("a1", "call.answered", 15)
    await log.call(
        "c1", "queue.agent_connected", 15, queue_id="q1", agent_id="agent7", agent_call_id="a1"
    )
    await log.call("c1", "queue.left", 15, queue_id="q1", reason="connected")
    await log.command("conn1", "app", "call.bridge", {"leg_a": "c1", "leg_b": "a1"}, 16)
    await log.call("c1", "call.bridged", 16, leg_a="c1", leg_b="a1")
    await log.call("c1", "record.started", 20, recording_id="r1", mode="mixed", path="rec/r1.wav")
    await log.call("c1", "record.paused", 30, recording_id="r1")
    await log.call("c1", "record.resumed", 40, recording_id="r1")
    await log.call("c1", "media.hold.started", 60, music="moh.wav")
    await log.call("c1", "media.hold.stopped", 90)
    await log.command(
        "conn2", "boss", "call.originate", {"call_id": "s1", "destination": "sip:9@pbx"}, 95
    )
    await log.call(
        "s1", "call.originated", 95, owner="conn2", token="boss", destination="sip:9@pbx"
    )
    await log.call("s1", "call.answered", 97)
    watch = {"supervisor_call_id": "s1", "target_call_id": "a1"}
    await log.call("s1", "supervisor.listen.started", 100, **watch)
    await log.call("s1", "supervisor.whisper.started", 110, **watch)
    await log.call("s1", "supervisor.mode.stopped", 130, **watch)
    await log.call("c1", "call.transferred", 150, target="sip:300@y")
    await log.call("c1", "call.transfer.accepted", 152)
    await log.call(
        "c1", "record.stopped", 160, recording_id="r1", duration_secs=130.5, path="rec/r1.wav",
        reason="rwi",
    )  # fmt: skip
    await log.observe("sip.call.ended", 170, call_id="c1")
    await log.call("a1", "call.unbridged", 170, leg_a="c1", leg_b="a1", reason="hangup")
    await log.call("c1", "call.hangup", 170, reason="caller", sip_status=None, hangup_by="remote",
                   duration_secs=167)  # fmt: skip
    await log.command("conn1", "app", "call.hangup", {"call_id": "a1"}, 171)
    await log.call(
        "a1", "call.hangup", 171, reason="rwi", sip_status=None, hangup_by="rwi", duration_secs=156
    )
    # outbound, busy
    await log.command(
        "conn1", "app", "call.originate", {"call_id": "b1", "destination": "sip:5@pbx"}, 200
    )
    await log.call(
        "b1", "call.originated", 200, owner="conn1", token="app", destination="sip:5@pbx",
        caller_id="sip:me@pbx", context="sales",
    )  # fmt: skip
    await log.call("b1", "call.early_media", 201, sip_status=183)
    await log.call("b1", "call.busy", 204, sip_status=486)
    await log.call(
        "b1", "call.hangup", 204, reason="busy", sip_status=486, hangup_by="remote", duration_secs=0
    )
    # a refused command names a call that never existed: no calls row
    await log.command("conn1", "app", "call.answer", {"call_id": "zz"}, 205, error="call_not_found")
    # a client re-uses an id after its first call ended: a second leg
    await log.call(
        "c9", "call.incoming", 300, context="support", caller="a", callee="b", direction="inbound"
    )
    await log.call("c9", "call.hangup", 305, reason="canceled", sip_status=487, hangup_by="remote")
    await log.call(
        "c9", "call.incoming", 400, context="support", caller="c", callee="d", direction="inbound"
    )
    await log.call("c9", "call.ringing", 401)
