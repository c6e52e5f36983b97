"""The media engine core: one 20 ms tick for all legs (receive, mix, send).

Where it sits: the heart of ``sip_media.media``.  Effects arrive through
:meth:`MediaEngine.apply` (see :mod:`.control`); packets are drained from every leg's
socket whenever the runner sees the engine's epoll descriptor readable
(:meth:`MediaEngine.drain`) and at the start of each :meth:`MediaEngine.tick`;
observations accumulate for the runner (:mod:`.service` in process, :mod:`.worker` in
worker processes) to collect with :meth:`MediaEngine.drain_observations`.  The core is
synchronous and single-threaded; it never sleeps — the runner owns the clock.

On arrival: RFC 4733 starts interrupt prompts at once; same-codec bridges with nothing
else attached relay each packet to the other leg (new header, payload untouched);
every other packet goes into its leg's jitter buffer.  Per tick: pull one frame per
mixed leg -> decode them together -> in-band DTMF -> mix by the matrix
(:mod:`.mixer`) -> record -> encode together -> send.
"""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from . import api, g711
from .config import MediaAllowList, MediaConfig
from .control import apply_effect
from .dtmf import DtmfEnd, DtmfSignal, DtmfStart, InbandDetector, detect_frames
from .leg import FRAME, MediaLeg, PortPool
from .mixer import MixPlan, Node, Topology, build_edges, compile_plan, decode_rows, encode_rows, mix
from .recorder import Recorder
from .sources import Playback, SoundCache
from .stats import TICK_BUCKETS, MediaStats
from .stream_hub import StreamHub
from .stream_tap import StreamTap, offer_all, take_all
from .stream_urls import StreamUrlAllowList

log = logging.getLogger(__name__)
HOUSEKEEPING_TICKS: Final = 10
PacketHandler = Callable[[bytes, float], "list[DtmfSignal] | bool"]
F32 = npt.NDArray[np.float32]


class MediaEngine:
    """All legs, sources, sinks and the mixing matrix of one process."""

    def __init__(self, config: MediaConfig, port_range: tuple[int, int] | None = None) -> None:
        self.config = config
        lo, hi = port_range or (config.port_min, config.port_max)
        self.ports = PortPool(config.bind_ip, lo, hi)
        self.allow = MediaAllowList(config.allowed_destinations)
        self.sounds = SoundCache(config.sounds_dir)
        self.legs: dict[str, MediaLeg] = {}
        self.playbacks: dict[str, Playback] = {}
        self.recorders: dict[str, Recorder] = {}
        self.streams: dict[str, StreamTap] = {}
        self.stream_allow = StreamUrlAllowList(config.stream_allowed_urls)
        self.stream_hub = StreamHub(config.stream_connect_timeout_s)
        self.topology = Topology(
            listen_gain=config.listen_gain,
            whisper_gain=config.whisper_gain,
            barge_gain=config.barge_gain,
        )
        self._by_fd: dict[int, tuple[MediaLeg, bool]] = {}
        self._fast: dict[int, tuple[Callable[[int], bytes], PacketHandler, MediaLeg]] = {}
        self._poll = select.epoll()
        self._observations: list[api.Observation] = []
        self._dirty = True
        self._ticks = 0
        self._plan: MixPlan | None = None
        self._pass: list[tuple[MediaLeg, MediaLeg]] = []
        self._mixed: list[MediaLeg] = []
        self._mixed_pos: dict[str, int] = {}
        self._sources: list[Playback] = []
        self._alaw_rows = np.zeros(0, dtype=np.int64)
        self._inband_rows = np.zeros(0, dtype=np.int64)
        self._signatures: dict[str, set[Node]] = {}
        self._dtmf_wait: set[str] = set()  # bridge legs kept mixed while sending DTMF
        self._house_legs: list[MediaLeg] = []
        self.stats = {"ticks": 0, "late_ticks": 0, "skipped_ticks": 0, "tick_ns": 0}
        self._tick_buckets = [0] * (len(TICK_BUCKETS) + 1)
        #: RTP counters of the legs already closed (in, out, lost)
        self._closed_rtp = [0, 0, 0]

    # ----------------------------------------------------------------- bookkeeping

    def emit(self, obs: api.Observation) -> None:
        """Queue an observation for the runner."""
        self._observations.append(obs)

    @property
    def has_observations(self) -> bool:
        """True when observations are waiting to be drained."""
        return bool(self._observations)

    def drain_observations(self) -> list[api.Observation]:
        """Return and clear the observations gathered since the last call."""
        out, self._observations = self._observations, []
        return out

    def mark_dirty(self) -> None:
        """The topology changed: recompile the plan before the next mix."""
        self._dirty = True

    def register(self, leg: MediaLeg) -> None:
        """Start polling a new leg's sockets."""
        self.legs[leg.leg_id] = leg
        for sock, is_rtp in ((leg.sock, True), (leg.rtcp_sock, False)):
            self._by_fd[sock.fileno()] = (leg, is_rtp)
            self._poll.register(sock.fileno(), select.EPOLLIN)
        self._dirty = True

    def unregister(self, leg: MediaLeg) -> None:
        """Stop polling a leg and close its sockets."""
        for sock in (leg.sock, leg.rtcp_sock):
            fd = sock.fileno()
            self._by_fd.pop(fd, None)
            self._fast.pop(fd, None)
            try:
                self._poll.unregister(fd)
            except (OSError, ValueError):
                log.debug("fd %s was not registered", fd)
        self._closed_rtp[0] += leg.rx_packets
        self._closed_rtp[1] += leg.tx_packets
        self._closed_rtp[2] += leg.packets_lost()
        leg.close()
        self.legs.pop(leg.leg_id, None)
        self._dirty = True

    def snapshot(self) -> MediaStats:
        """The engine's counters now (see ``sip_media.media.stats``)."""
        legs = list(self.legs.values())
        receiving = [leg.jitter for leg in legs if leg.remote_ssrc is not None]
        return MediaStats(
            ticks=self.stats["ticks"],
            late_ticks=self.stats["late_ticks"],
            skipped_ticks=self.stats["skipped_ticks"],
            tick_seconds=self.stats["tick_ns"] / 1e9,
            tick_buckets=tuple(self._tick_buckets),
            rtp_packets_in=self._closed_rtp[0] + sum(leg.rx_packets for leg in legs),
            rtp_packets_out=self._closed_rtp[1] + sum(leg.tx_packets for leg in legs),
            rtp_packets_lost=self._closed_rtp[2] + sum(leg.packets_lost() for leg in legs),
            legs=len(legs),
            # jitter is kept in 8 kHz timestamp units
            jitter_ms=sum(receiving) / len(receiving) / 8.0 if receiving else 0.0,
        )

    def unlatch(self, leg: MediaLeg) -> None:
        """Replace a connected RTP socket so the leg can latch onto a new source."""
        if not leg.connected:
            return
        fd = leg.sock.fileno()
        self._by_fd.pop(fd, None)
        self._fast.pop(fd, None)
        self._poll.unregister(fd)
        leg.sock.close()
        leg.sock = self.ports.rebind(leg.local_port)
        leg.connected = False
        self._by_fd[leg.sock.fileno()] = (leg, True)
        self._poll.register(leg.sock.fileno(), select.EPOLLIN)

    def finish_playback(self, pb: Playback, interrupted: bool, digit: str | None) -> None:
        """End a playback and report it (once)."""
        if pb.done:
            return
        pb.done = True
        self.playbacks.pop(pb.playback_id, None)
        self.topology.sources.pop(pb.playback_id, None)
        self._dirty = True
        if pb.report:
            self.emit(api.PlaybackFinished(pb.playback_id, pb.leg_id, interrupted, digit))

    def finish_recording(self, rec: Recorder, reason: api.RecordingEndReason) -> None:
        """Finalise a recording and report it, with why it ended."""
        self.recorders.pop(rec.recording_id, None)
        self._dirty = True
        try:
            duration = rec.close()
        except OSError as exc:
            self.emit(api.RecordingWriteFailed(rec.recording_id, str(rec.path), str(exc)))
            return
        self.emit(
            api.RecordingFinished(rec.recording_id, str(rec.path), round(duration, 3), reason)
        )

    def stop_stream(self, tap: StreamTap, reason: str) -> None:
        """End a stream: no audio either way from now; ``StreamStopped`` follows."""
        self.streams.pop(tap.stream_id, None)
        self.stream_hub.stop(tap, reason)
        self._dirty = True

    def _stream_reports(self) -> None:
        reports = self.stream_hub.reports
        while reports:
            obs = reports.popleft()
            if isinstance(obs, api.StreamStopped):
                self.stream_hub.ended(obs)
                if self.streams.pop(obs.stream_id, None) is not None:
                    self._dirty = True
            self.emit(obs)

    def close(self) -> None:
        """Finalise everything and release all sockets."""
        for rec in list(self.recorders.values()):
            self.finish_recording(rec, "closed")
        for tap in list(self.streams.values()):
            self.stop_stream(tap, "hangup")
        self.stream_hub.close()
        self._stream_reports()
        for leg in list(self.legs.values()):
            self.unregister(leg)
        self._poll.close()

    def fileno(self) -> int:
        """The epoll descriptor of all leg sockets: readable when a packet waits.

        Runners watch it and call :meth:`drain`, so pass-through packets are relayed
        as soon as they arrive instead of waiting for the next tick.
        """
        return self._poll.fileno()

    def drain(self, now: float | None = None, rounds: int = 4) -> None:
        """Read waiting packets now (relay, jitter buffers, DTMF, RTCP).

        At most ``rounds`` passes over the ready sockets, so a backlog cannot keep the
        caller (the clock, the signalling loop) waiting; the rest follows shortly.
        """
        self._receive(time.monotonic() if now is None else now, rounds)

    def passthrough_pairs(self) -> list[tuple[str, str]]:
        """Bridged leg pairs currently forwarded without decoding (for tests/metrics)."""
        return [(a.leg_id, b.leg_id) for a, b in self._pass]

    # ----------------------------------------------------------------------- receive

    def _receive(self, now: float, rounds: int = 64) -> None:
        poll = self._poll.poll
        by_fd = self._by_fd
        fast = self._fast
        for _ in range(rounds):
            ready = poll(0)
            if not ready:
                return
            for fd, _mask in ready:
                hot = fast.get(fd)
                if hot is not None:  # latched RTP socket: recv + handle, nothing else
                    try:
                        data = hot[0](2048)
                    except OSError:
                        continue
                    signals = hot[1](data, now)
                    if signals:
                        self._dtmf(hot[2], signals, "rfc4733")  # type: ignore[arg-type]
                    continue
                entry = by_fd.get(fd)
                if entry is None:
                    continue
                leg, is_rtp = entry
                if is_rtp and leg.connected:  # latched: the kernel filters the source
                    try:
                        data = leg.sock.recv(2048)
                    except OSError:
                        continue
                    signals = leg.on_packet(data, now)
                    if signals:
                        self._dtmf(leg, signals, "rfc4733")  # type: ignore[arg-type]
                    continue
                sock = leg.sock if is_rtp else leg.rtcp_sock
                try:
                    data, addr = sock.recvfrom(2048)
                except OSError:
                    continue
                if not is_rtp:
                    leg.receive_rtcp(data, addr, now)
                    continue
                signals = leg.receive(data, addr, now)
                if leg.just_latched:
                    leg.just_latched = False
                    self.emit(api.MediaStarted(leg.leg_id, addr[0], addr[1]))
                    if leg.connected:
                        fast[fd] = (leg.sock.recv, leg.on_packet, leg)
                if signals:
                    self._dtmf(leg, signals, "rfc4733")  # type: ignore[arg-type]

    def _dtmf(self, leg: MediaLeg, signals: list[DtmfSignal], method: str) -> None:
        for sig in signals:
            if isinstance(sig, DtmfStart):
                for pb in list(self.playbacks.values()):
                    if pb.leg_id == leg.leg_id and pb.interrupt_on_dtmf:
                        self.finish_playback(pb, True, sig.digit)
            elif isinstance(sig, DtmfEnd):
                self.emit(api.DtmfReceived(leg.leg_id, sig.digit, sig.duration_ms, method))
                for tap in self.streams.values():
                    if tap.leg_id == leg.leg_id:
                        tap.offer_text(f'{{"type":"dtmf","digit":"{sig.digit}"}}')

    # ------------------------------------------------------------------------ compile

    def _compile(self) -> None:
        topo = self.topology
        edges = build_edges(topo)
        degree: dict[str, int] = {}
        for dst, src, _gain in edges:
            for node in (dst, src):
                if node[0] == "leg":
                    degree[node[1]] = degree.get(node[1], 0) + 1
        busy = {leg for rec in self.recorders.values() for leg in rec.legs}
        busy.update(tap.leg_id for tap in self.streams.values())
        passthrough: list[tuple[MediaLeg, MediaLeg]] = []
        paired: set[str] = set()
        self._dtmf_wait = set()
        for pair in topo.bridges:
            a, b = (self.legs.get(x) for x in sorted(pair))
            if a is None or b is None or a.pt != b.pt:
                continue
            if degree.get(a.leg_id) != 2 or degree.get(b.leg_id) != 2:
                continue
            if a.leg_id in busy or b.leg_id in busy or a.needs_inband or b.needs_inband:
                continue
            if a.dtmf_tx.busy or b.dtmf_tx.busy:
                self._dtmf_wait.update((a.leg_id, b.leg_id))
                continue
            passthrough.append((a, b))
            paired.update((a.leg_id, b.leg_id))
        relays = {a.leg_id: b for a, b in passthrough} | {b.leg_id: a for a, b in passthrough}
        for leg in self.legs.values():
            leg.set_relay(relays.get(leg.leg_id))
        mixed = [leg for leg in self.legs.values() if leg.leg_id not in paired]
        sources = [pb for pb in self.playbacks.values() if not pb.done]
        leg_rows = {leg.leg_id: i for i, leg in enumerate(mixed)}
        src_rows = {pb.playback_id: i for i, pb in enumerate(sources)}
        self._plan = compile_plan(edges, leg_rows, src_rows)
        self._pass, self._mixed, self._sources = passthrough, mixed, sources
        self._mixed_pos = leg_rows
        self._alaw_rows = np.array(
            [i for i, leg in enumerate(mixed) if leg.pt == g711.PCMA], dtype=np.int64
        )
        self._inband_rows = np.array(
            [i for i, leg in enumerate(mixed) if leg.needs_inband], dtype=np.int64
        )
        inputs: dict[str, set[Node]] = {}
        for dst, src, _gain in edges:
            if dst[0] == "leg":
                inputs.setdefault(dst[1], set()).add(src)
        # A leg whose inputs changed starts a new talk spurt (RTP marker bit). Compared
        # as plain sets: this runs over every leg on every topology change.
        previous, none = self._signatures, set[Node]()
        for leg_id, leg in self.legs.items():
            if previous.get(leg_id) != inputs.get(leg_id, none):
                leg.marker_next = True
        self._signatures = inputs
        self._dirty = False

    # --------------------------------------------------------------------------- tick

    def tick(self, now: float | None = None) -> None:
        """Run one 20 ms media cycle for every leg."""
        started = time.perf_counter_ns()
        now = time.monotonic() if now is None else now
        self._ticks += 1
        self.stats["ticks"] += 1
        self._receive(now, 8)  # a backlog is left to drain(): keep the tick short
        if self._dirty:
            self._compile()
        # Same-codec pass-through pairs were forwarded packet by packet in _receive.
        if self._mixed:
            self._tick_mixed()
        if self.stream_hub.active:
            self._stream_reports()
        self._housekeeping(now)
        if self.streams:
            # Once the tick's packets are out: woken earlier, the stream thread takes the
            # GIL at each send's system call and the rest of the tick waits for it.
            self.stream_hub.wake()
        took = time.perf_counter_ns() - started
        self.stats["tick_ns"] += took
        seconds = took / 1e9
        for i, bound in enumerate(TICK_BUCKETS):
            if seconds <= bound:
                self._tick_buckets[i] += 1
                break
        else:
            self._tick_buckets[-1] += 1

    def _tick_mixed(self) -> None:
        mixed = self._mixed
        frames = b"".join([f if (f := leg.jb.pull()) is not None else leg.silence for leg in mixed])
        codes = np.frombuffer(frames, dtype=np.uint8).reshape(len(mixed), FRAME)
        inbound = decode_rows(codes, self._alaw_rows)
        if self._inband_rows.size:
            self._inband(inbound)
        # A digit may have interrupted a prompt just now: its row reads as silence from
        # this tick on (``done``), the plan is recompiled on the next tick.
        sources = self._read_sources()
        plan = self._plan
        assert plan is not None
        outbound = mix(plan, inbound, sources) if not plan.out_edges.empty else None
        if self.streams:  # before recording: a recording has what the bot said too
            outbound = self._stream(inbound, outbound)
        if self.recorders:
            self._record(inbound, outbound)
        if outbound is None:
            for leg in mixed:
                leg.send_audio(leg.silence)
            return
        encoded = encode_rows(outbound, self._alaw_rows).tobytes()
        for i, leg in enumerate(mixed):
            leg.send_audio(encoded[i * FRAME : (i + 1) * FRAME])

    def _read_sources(self) -> F32:
        rows = np.zeros((len(self._sources), FRAME), dtype=np.float32)
        for i, pb in enumerate(self._sources):
            if pb.done:
                continue
            frame = pb.stream.read()
            if frame is None:
                self.finish_playback(pb, False, None)
            else:
                rows[i] = frame
        return rows

    def _stream(self, inbound: F32, outbound: F32 | None) -> F32 | None:
        """Offer each stream its leg's audio and mix the duplex bots' audio into what the
        leg hears. Duplex bots are offered theirs before the mix, so a bot never hears
        itself on ``peer``; listeners after it, so a transcriber of a bot's call has the
        bot's words on ``peer``, as the caller heard them."""
        pos = self._mixed_pos
        taps = [
            (tap, row) for tap in self.streams.values() if (row := pos.get(tap.leg_id)) is not None
        ]
        bots = [(tap, row) for tap, row in taps if tap.duplex]
        if outbound is None and bots:
            outbound = np.zeros_like(inbound)
        offer_all(bots, inbound, outbound)
        if outbound is not None and bots:
            for tap, name in take_all(bots, outbound):
                self.emit(api.StreamMark(tap.stream_id, tap.leg_id, name))
        offer_all([(tap, row) for tap, row in taps if not tap.duplex], inbound, outbound)
        return outbound

    def _inband(self, inbound: F32) -> None:
        detected = detect_frames(inbound[self._inband_rows])
        for row, digit in zip(self._inband_rows.tolist(), detected.tolist(), strict=True):
            leg = self._mixed[row]
            if leg.inband is None:
                if digit < 0:
                    continue
                leg.inband = InbandDetector()
            signals = leg.inband.feed(digit)
            if signals:
                self._dtmf(leg, signals, "inband")

    def _record(self, inbound: F32, outbound: F32 | None) -> None:
        silence = np.zeros(FRAME, dtype=np.float32)
        pos = self._mixed_pos
        for rec in list(self.recorders.values()):
            rows = [pos.get(leg) for leg in rec.legs]
            if any(r is None for r in rows):
                continue
            ins = [inbound[r] for r in rows if r is not None]
            if len(rows) == 1:
                r0 = rows[0]
                assert r0 is not None
                channels = [ins[0], outbound[r0] if outbound is not None else silence]
            else:
                channels = ins
            try:
                full = rec.write(channels)
            except OSError as exc:
                self.recorders.pop(rec.recording_id, None)
                self.emit(api.RecordingWriteFailed(rec.recording_id, str(rec.path), str(exc)))
                continue
            if full:
                self.finish_recording(rec, "max_duration")

    def _housekeeping(self, now: float) -> None:
        """Timers of one slice of the legs per tick: every leg every HOUSEKEEPING_TICKS.

        Spreading the walk over ticks keeps any single tick (and the relay it delays)
        short; a full pass over thousands of legs at once showed up as jitter.
        """
        slot = self._ticks % HOUSEKEEPING_TICKS
        if slot == 0:
            self._house_legs = list(self.legs.values())
            if any(not leg.dtmf_tx.busy for i in self._dtmf_wait if (leg := self.legs.get(i))):
                self._dirty = True  # DTMF sent: the bridge may pass through again
        legs = self._house_legs
        size = -(-len(legs) // HOUSEKEEPING_TICKS)
        wall = time.time()
        timeout = self.config.rtp_timeout_s
        for leg in legs[slot * size : (slot + 1) * size]:
            if leg.leg_id not in self.legs:
                continue
            signals = leg.dtmf_rx.poll(now)
            if signals:
                self._dtmf(leg, signals, "rfc4733")
            if leg.inband is not None and leg.leg_id not in self._mixed_pos:
                leg.inband = None
            if now >= leg.next_rtcp:
                leg.rtcp_report(now, wall)
            if (
                timeout > 0
                and not leg.timeout_reported
                and leg.direction in ("sendrecv", "recvonly")
                and now - leg.last_rx > timeout
            ):
                leg.timeout_reported = True
                self.emit(api.RtpTimeout(leg.leg_id, round(now - leg.last_rx, 1)))

    def apply(self, effect: api.Effect, now: float | None = None) -> api.Result:
        """Apply one effect (see :mod:`.control`); raises typed ``MediaError``s."""
        return apply_effect(self, effect, time.monotonic() if now is None else now)
