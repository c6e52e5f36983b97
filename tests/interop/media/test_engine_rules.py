"""Engine rules on real sockets: allow-list, hostile packets, latching, continuity,
RTCP, RTP timeout, typed errors.  Peers are the test's own UDP sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import socket
from pathlib import Path
from typing import Any

import pytest

from sip_media.media import api, rtp
from sip_media.media.errors import (
    DuplicateIdError,
    InvalidEffectError,
    PortsExhaustedError,
    UnknownIdError,
    UnknownMediaLegError,
    UnsafePathError,
    UnsupportedCodecError,
)
from sip_media.media.service import InProcessMedia

pytestmark = pytest.mark.interop


async def test_outbound_allow_list_drops_and_counts(media: Any, eventually: Any) -> None:
    await media.execute(api.CreateLeg("x", "192.0.2.10", 4000, 0))
    await media.execute(api.CreateLeg("y", "255.255.255.255", 4000, 0))
    legs = media.engine.legs
    await eventually(lambda: legs["x"].tx_blocked >= 5 and legs["y"].tx_blocked >= 5)
    for leg_id in ("x", "y"):
        leg = media.engine.legs[leg_id]
        assert leg.tx_packets == 0 and leg.tx_blocked >= 5


async def test_hostile_packets_are_counted_and_never_crash(
    media: Any, peers: Any, eventually: Any
) -> None:
    peer = peers(pt=0, freq=1000.0)
    created = await media.execute(api.CreateLeg("a", "127.0.0.1", peer.port, 0))
    target = ("127.0.0.1", created.local_port)
    peer.start(target)
    leg = media.engine.legs["a"]
    await eventually(lambda: leg.connected)
    garbage = [b"", b"\x80", b"\x40" + bytes(20), bytes([0xBF]) + bytes(11), b"\xa0" + bytes(11)]
    garbage += [bytes([0x90, 0]) + bytes(10) + b"\x00\x01\xff\xff", b"\xff" * 3000]
    for data in garbage:
        peer.send_raw(data)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.sendto(rtp.build_rtp(0, False, 1, 1, 1, b"\x00" * 160), target)
    stranger.sendto(b"\x80" * 50, ("127.0.0.1", created.local_port + 1))  # bad RTCP
    stranger.close()
    await eventually(lambda: leg.rx_bad >= 5 and leg.rtcp_bad == 1)
    packets_then = leg.rx_packets
    await eventually(lambda: leg.rx_packets > packets_then + 5)  # the real stream still flows
    # latched: the socket is connected to the peer, the stranger's packet never counts
    assert leg.latched == ("127.0.0.1", peer.port) and leg.connected
    assert leg.remote_ssrc == peer.ssrc


async def test_ssrc_seq_ts_continuity_and_marker_on_source_change(
    media: Any, peers: Any, eventually: Any
) -> None:
    peer = peers(pt=0)

    async def ten_more() -> None:
        count = len(peer.received)
        await eventually(lambda: len(peer.received) >= count + 10)

    await media.execute(api.CreateLeg("a", "127.0.0.1", peer.port, 0))
    await ten_more()
    await media.execute(api.StartPlayback("a", api.ToneSource("ringback", region="us")))
    await ten_more()
    await media.execute(api.HoldLeg("a"))
    await ten_more()
    packets = [rtp.parse_rtp(d) for _, d in peer.received]
    assert all(p is not None for p in packets)
    parsed = [p for p in packets if p is not None]
    assert len({p.ssrc for p in parsed}) == 1
    for prev, cur in itertools.pairwise(parsed):
        assert (cur.sequence - prev.sequence) & 0xFFFF == 1
        assert (cur.timestamp - prev.timestamp) & 0xFFFFFFFF == 160
    markers = [i for i, p in enumerate(parsed) if p.marker]
    assert len(markers) == 3  # first packet, ringback started, hold music started


async def test_rtcp_reports_and_rtp_timeout(tmp_path: Path, media_config: Any, peers: Any) -> None:
    config = dataclasses.replace(media_config, rtcp_interval_s=0.3, rtp_timeout_s=0.6)
    service = InProcessMedia(config)
    await service.start()
    try:
        peer = peers(pt=0, freq=440.0)
        rtcp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtcp_sock.bind(("127.0.0.1", peer.port + 1))
        rtcp_sock.setblocking(False)
        created = await service.execute(api.CreateLeg("a", "127.0.0.1", peer.port, 0))
        peer.start(("127.0.0.1", created.local_port))
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(5):
            report = rtp.parse_rtcp(await loop.sock_recv(rtcp_sock, 2048))
        rtcp_sock.close()
        assert report is not None and report.packet_type == rtp.RTCP_SR
        assert report.ssrc == service.engine.legs["a"].ssrc
        peer.close()  # the far end goes silent
        async with asyncio.timeout(5):
            timeout = await service.observations.wait_for(lambda o: isinstance(o, api.RtpTimeout))
        assert timeout.leg_id == "a"
        blocks = report.blocks
        assert not blocks or blocks[0].ssrc == peer.ssrc
    finally:
        await service.close()


async def test_typed_errors(media: Any, media_config: Any) -> None:
    await media.execute(api.CreateLeg("a"))
    with pytest.raises(DuplicateIdError):
        await media.execute(api.CreateLeg("a"))
    with pytest.raises(UnsupportedCodecError):
        await media.execute(api.CreateLeg("g729", payload_type=18))
    with pytest.raises(UnknownMediaLegError):
        await media.execute(api.Connect("a", "nope"))
    with pytest.raises(InvalidEffectError):
        await media.execute(api.Connect("a", "a"))
    with pytest.raises(UnknownIdError):
        await media.execute(api.StopPlayback("nope"))
    with pytest.raises(UnsafePathError):
        await media.execute(api.StartPlayback("a", api.FileSource("../../etc/passwd")))
    with pytest.raises(UnsafePathError):
        await media.execute(api.Record(("a",), "/tmp/x.wav"))
    with pytest.raises(InvalidEffectError):
        await media.execute(api.SendDtmf("a", "12x"))
    # the port range holds 49 pairs; "a" took one
    for i in range(48):
        await media.execute(api.CreateLeg(f"leg{i}"))
    with pytest.raises(PortsExhaustedError):
        await media.execute(api.CreateLeg("one-too-many"))
    await media.execute(api.DestroyLeg("leg0"))
    await media.execute(api.CreateLeg("again"))


async def test_destroy_leg_finishes_its_playbacks_and_recordings(
    media: Any, wait: Any, audio: Any, eventually: Any
) -> None:
    await media.execute(api.CreateLeg("a"))
    play = await media.execute(api.StartPlayback("a", api.ToneSource("beep"), loop=True))
    rec = await media.execute(api.Record(("a",), "gone.wav"))
    ticks = media.engine.stats["ticks"]
    await eventually(lambda: media.engine.stats["ticks"] >= ticks + 5)
    await media.execute(api.DestroyLeg("a"))
    done = await wait(media, lambda o: isinstance(o, api.PlaybackFinished))
    assert done.playback_id == play.playback_id and done.interrupted
    finished = await wait(media, lambda o: isinstance(o, api.RecordingFinished))
    assert finished.recording_id == rec.recording_id and finished.reason == "leg_gone"
    assert audio.read_wav(Path(finished.path)).shape[0] > 0


async def test_reinvite_moves_the_leg_to_a_new_peer_and_direction(
    media: Any, peers: Any, eventually: Any
) -> None:
    first = peers(pt=0, freq=440.0)
    second = peers(pt=0, freq=1000.0)
    created = await media.execute(api.CreateLeg("a", "127.0.0.1", first.port, 0))
    first.start(("127.0.0.1", created.local_port))
    await eventually(lambda: media.engine.legs["a"].connected and len(first.received) > 2)
    # re-INVITE: new remote; the leg re-latches on the new source
    await media.execute(api.UpdateLeg("a", remote_ip="127.0.0.1", remote_port=second.port))
    first.close()
    second.start(("127.0.0.1", created.local_port))
    leg = media.engine.legs["a"]
    await eventually(lambda: leg.connected and len(second.received) >= 5)
    assert leg.latched == ("127.0.0.1", second.port)
    # hold from the far end: we answer recvonly and stop sending
    await media.execute(api.UpdateLeg("a", direction="recvonly"))
    await asyncio.sleep(0.05)  # let packets already in flight land
    before = len(second.received)
    await asyncio.sleep(0.2)  # ten ticks in which nothing may be sent
    assert len(second.received) == before
    await media.execute(api.UpdateLeg("a", direction="sendrecv"))
    await eventually(lambda: len(second.received) > before)


async def test_pass_through_bridge_relays_rfc4733_and_reports_it(
    media: Any, peers: Any, wait: Any, eventually: Any
) -> None:
    pa = peers(pt=8, freq=440.0, te_pt=101)
    pb = peers(pt=8, freq=1000.0)
    a = await media.execute(api.CreateLeg("a", "127.0.0.1", pa.port, 8, telephone_event_pt=101))
    b = await media.execute(api.CreateLeg("b", "127.0.0.1", pb.port, 8, telephone_event_pt=96))
    pa.start(("127.0.0.1", a.local_port))
    pb.start(("127.0.0.1", b.local_port))
    await media.execute(api.Connect("a", "b"))
    await eventually(lambda: media.engine.passthrough_pairs() == [("a", "b")])
    await eventually(lambda: media.engine.legs["b"].tx_packets > 5)
    pa.send_digit("8", 100)
    got = await wait(media, lambda o: isinstance(o, api.DtmfReceived))
    assert (got.leg_id, got.digit, got.duration_ms) == ("a", "8", 100)

    def relayed() -> list[bytes]:
        return [d for _, d in pb.received if d[1] & 0x7F == 96]  # b's payload type

    await eventually(lambda: sum(1 for d in relayed() if d[13] & 0x80) == 3)
    events = relayed()
    assert events and {d[12] for d in events} == {8}
    assert sum(1 for d in events if d[13] & 0x80) == 3
    ssrcs = {d[8:12] for _, d in pb.received}
    assert len(ssrcs) == 1  # one outbound stream for b, whatever the source


async def test_a_bridged_pair_destroyed_together_is_freed_without_the_cycle_collector(
    media: Any, peers: Any, eventually: Any
) -> None:
    """A same-codec bridge relays packets leg to leg (each leg names the other): a call's
    hangup destroys both in one go, and nothing of them may wait for a full collection
    (rwi serve makes those rare: with their sockets and buffers they piled up)."""
    import gc

    a, b = peers(pt=0, freq=500.0), peers(pt=0, freq=900.0)
    for leg_id, peer in (("a", a), ("b", b)):
        created = await media.execute(api.CreateLeg(leg_id, "127.0.0.1", peer.port, 0))
        peer.start(("127.0.0.1", created.local_port))
    await media.execute(api.Connect("a", "b"))
    legs = media.engine.legs
    await eventually(lambda: legs["a"].relay is legs["b"] and legs["b"].relay is legs["a"])
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        # both between two ticks, as a hangup's effects run
        media.engine.apply(api.DestroyLeg("a"))
        media.engine.apply(api.DestroyLeg("b"))
        media.engine.tick()  # the next tick's plan lets go of them
        gc.collect()
        left = [o for o in gc.garbage if type(o).__name__ == "MediaLeg"]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
