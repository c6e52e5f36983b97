"""``/metrics`` end to end: a real service with SIP and media, a SIPp phone answering
(and echoing RTP), driven by ``rwi.client``; the counts move as the call happens, and
the gauges of recordings, queues and agents, the refusals and the SIP retransmissions
move when those happen (RTP loss, jitter and late ticks: tests/unit/rwi/
test_metrics_collector.py, loopback has none)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rwi.client import CallNotFound, connect
from tests.e2e.pbx import RING_180, Sipp, pbx, sip_tables
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_a_real_call(db_url: str, tmp_path: Path) -> None:
    phone = Sipp(tmp_path, "uas_call", ring=RING_180, sdp_port="[media_port]", pt=0, codec="PCMU")
    async with (
        pbx(db_url, tmp_path, sip_tables(tmp_path, trunk=phone)) as rig,
        httpx.AsyncClient(base_url=rig.svc.http) as http,
    ):
        rig.sipps.append(phone)
        await phone.start("-rtp_echo")
        before = await scrape(http)
        assert value(before, "rwi_websocket_connections") == 0
        assert value(before, "rwi_calls_active", state="answered") == 0
        async with connect(rig.svc.url, "app-token") as rwi:
            await rwi.call.originate(call_id="leg_a", destination="sip:100@trunk")
            await rwi.events.wait("call.answered", call_id="leg_a", within=15)
            # a prompt to the phone, echoed back: RTP both ways
            await rwi.media.play(
                call_id="leg_a", source={"type": "tone", "frequency": 1000, "duration_ms": 400}
            )
            await rwi.events.wait("media.play.finished", call_id="leg_a", within=15)
            during = await scrape(http)
            await rwi.call.hangup(call_id="leg_a")
            await rwi.events.wait("call.hangup", call_id="leg_a")
        assert await phone.finish() == 0
        after = await scrape(http)

    assert value(during, "rwi_websocket_connections") == 1
    assert value(during, "rwi_calls_active", state="answered") == 1
    assert value(after, "rwi_calls_active", state="answered") == 0
    assert value(after, "rwi_calls_ended_total", outcome="rwi") == 1
    assert value(after, "rwi_websocket_connections_opened_total") == 1
    for action in ("call.originate", "media.play", "call.hangup"):
        assert value(after, "rwi_commands_total", action=action, result="success") == 1
        assert value(after, "rwi_command_seconds_count", action=action) == 1
        assert value(after, "rwi_command_seconds_sum", action=action) > 0
    # the log grew in committed batches
    events = value(after, "rwi_events_appended_total")
    assert events > value(before, "rwi_events_appended_total") + 5
    assert value(after, "rwi_event_append_batch_events_sum") == events
    assert value(after, "rwi_event_append_seconds_count") > value(
        before, "rwi_event_append_seconds_count"
    )
    # SIP on the wire, both ways
    assert value(after, "rwi_sip_requests_total", direction="out", method="INVITE") >= 1
    assert value(after, "rwi_sip_requests_total", direction="out", method="BYE") >= 1
    assert (
        value(after, "rwi_sip_responses_total", direction="in", method="INVITE", status="180") >= 1
    )
    assert (
        value(after, "rwi_sip_responses_total", direction="in", method="INVITE", status="200") >= 1
    )
    assert value(after, "rwi_sip_responses_total", direction="in", method="BYE", status="200") >= 1
    assert ("rwi_sip_retransmissions_total", ()) in after
    # media: packets both ways, the clock ticking, the legs gone at the end
    assert value(during, "rwi_media_legs") >= 1 and value(after, "rwi_media_legs") == 0
    assert value(after, "rwi_rtp_packets_total", direction="out") > 0
    assert value(after, "rwi_rtp_packets_total", direction="in") > 0
    assert ("rwi_rtp_packets_lost_total", ()) in after
    assert ("rwi_rtp_jitter_ms", ()) in during
    ticks = value(after, "rwi_media_tick_seconds_count")
    assert ticks > value(before, "rwi_media_tick_seconds_count")
    assert value(after, "rwi_media_tick_seconds_bucket", le="+Inf") == ticks
    assert ("rwi_media_late_ticks_total", ()) in after
    assert value(after, "rwi_effects_total", effect="Dial", result="ok") == 1
    # the loop-lag probe kept sampling through the call (every 50 ms; the tone alone 400)
    lag = value(after, "rwi_event_loop_lag_seconds_count")
    assert lag > value(before, "rwi_event_loop_lag_seconds_count")
    assert value(after, "rwi_event_loop_lag_seconds_bucket", le="+Inf") == lag
    assert value(after, "rwi_queue_waiting") == 0
    assert value(after, "rwi_agents", state="available") == 0
    assert value(after, "rwi_recordings_active") == 0


async def test_metrics_of_recordings_queues_agents_refusals_and_retransmissions(
    db_url: str, tmp_path: Path
) -> None:
    # the phone rings only after 1.2 s: our INVITE goes again at T1 (0.5 s) meanwhile
    late = '  <pause milliseconds="1200"/>\n' + RING_180
    phone = Sipp(tmp_path, "uas_call", ring=late, sdp_port="[media_port]", pt=0, codec="PCMU")
    tables = sip_tables(tmp_path, trunk=phone)
    tables["queues"] = [{"name": "m", "strategy": "manual", "members": ["1001"], "wrap_up_secs": 0}]
    write_tone_wav(tmp_path / "sounds" / "hold_music.wav", 440.0, seconds=5)
    async with (
        pbx(db_url, tmp_path, tables) as rig,
        httpx.AsyncClient(base_url=rig.svc.http) as http,
    ):
        rig.sipps.append(phone)
        await phone.start()
        before = await scrape(http)
        async with connect(rig.svc.url, "admin-token") as rwi:
            await rwi.call.originate(call_id="leg_a", destination="sip:100@trunk")
            await rwi.events.wait("call.answered", call_id="leg_a", within=15)
            answered = await scrape(http)

            started = await rwi.record.start(call_id="leg_a")
            await rwi.events.wait("record.started", call_id="leg_a", within=10)
            recording = await scrape(http)
            await rwi.record.stop(call_id="leg_a")
            await rwi.events.wait(
                "record.stopped", call_id="leg_a", recording_id=started["recording_id"]
            )
            recorded = await scrape(http)

            await rwi.agent.login(agent_id="1001", queues=["m"])
            await rwi.queue.enqueue(call_id="leg_a", queue_id="m")
            queued = await scrape(http)

            with pytest.raises(CallNotFound):
                await rwi.call.hangup(call_id="nobody")
            await rwi.call.hangup(call_id="leg_a")
            await rwi.events.wait("call.hangup", call_id="leg_a")
            after = await scrape(http)
        assert await phone.finish() == 0

    assert value(before, "rwi_sip_retransmissions_total") == 0
    assert value(answered, "rwi_sip_retransmissions_total") >= 1
    assert value(answered, "rwi_sip_requests_total", direction="out", method="INVITE") >= 2
    assert value(before, "rwi_recordings_active") == 0
    assert value(recording, "rwi_recordings_active") == 1
    assert value(recorded, "rwi_recordings_active") == 0
    assert value(queued, "rwi_queue_waiting", queue="m") == 1
    assert value(queued, "rwi_agents", state="available") == 1
    assert value(queued, "rwi_agents", state="logged_out") == 0
    assert value(after, "rwi_queue_waiting", queue="m") == 0
    assert value(after, "rwi_commands_total", action="call.hangup", result="call_not_found") == 1
    assert value(after, "rwi_commands_total", action="call.hangup", result="success") == 1
    for action in ("record.start", "record.stop", "agent.login", "queue.enqueue"):
        assert value(after, "rwi_commands_total", action=action, result="success") == 1
