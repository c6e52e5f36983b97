"""A leg: one RTP endpoint (UDP socket pair) with its inbound and outbound stream state.

Where it sits: the engine owns one :class:`MediaLeg` per call party.  Inbound, the engine
hands each datagram to :meth:`Leg.receive` (validation, symmetric-RTP latching,
RFC 3550 statistics, jitter buffer, RFC 4733 events); outbound, it calls
:meth:`Leg.send_audio` once per tick with an encoded frame, and the leg writes the
header from its own SSRC / sequence / timestamp so the stream stays continuous whatever
source feeds it (marker bit on a source change).  Nothing is ever sent to an address
outside the allow-list.  :class:`PortPool` hands out even RTP ports with RTCP on +1.
"""

from __future__ import annotations

import random
import socket
import struct
from typing import Final

from . import g711
from .config import MediaAllowList
from .dtmf import DtmfSignal, EventReceiver, EventSender, InbandDetector
from .errors import PortsExhaustedError, UnsupportedCodecError
from .jitter import JitterBuffer
from .rtp import RTP_HEADER, ReportBlock, build_rr, build_sr, parse_rtcp, parse_rtp

_FAST: Final = struct.Struct("!xBHII")
_PACK: Final = RTP_HEADER.pack
FRAME: Final = 160
COMFORT_NOISE_PT: Final = 13
SENDING: Final = ("sendrecv", "sendonly")
RECEIVING: Final = ("sendrecv", "recvonly")
Addr = tuple[str, int]


RCVBUF_BYTES: Final = 6144  # the kernel doubles it: about ten 20 ms packets


def _small_queue(sock: socket.socket) -> None:
    """Keep the kernel queue short (a few hundred ms): when the engine is overloaded,
    old packets are dropped instead of being played seconds late."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)


class PortPool:
    """Even RTP ports from a range; RTCP uses the odd port above."""

    def __init__(self, bind_ip: str, port_min: int, port_max: int) -> None:
        self.bind_ip = bind_ip
        start = port_min + (port_min & 1)
        self._free = list(range(start, port_max, 2))
        self._next = 0

    def rebind(self, port: int) -> socket.socket:
        """A fresh, unconnected RTP socket on a port this pool handed out before."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.bind_ip, port))
        _small_queue(sock)
        sock.setblocking(False)
        return sock

    def open(self) -> tuple[socket.socket, socket.socket, int]:
        """Bind a fresh RTP/RTCP socket pair on the next free even port."""
        for _ in range(len(self._free)):
            port = self._free[self._next]
            self._next = (self._next + 1) % len(self._free)
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtp.bind((self.bind_ip, port))
                rtcp.bind((self.bind_ip, port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            _small_queue(rtp)
            rtp.setblocking(False)
            rtcp.setblocking(False)
            return rtp, rtcp, port
        raise PortsExhaustedError("no free RTP port pair in the configured range")


class MediaLeg:
    """State of one RTP endpoint; see the module docstring."""

    __slots__ = (
        "_allow",
        "_jb_max",
        "_transit",
        "base_seq",
        "can_send",
        "connected",
        "cycles",
        "dest",
        "dest_allowed",
        "direction",
        "dtmf_rx",
        "dtmf_tx",
        "expected_prior",
        "inband",
        "inband_enabled",
        "jb",
        "jitter",
        "just_latched",
        "last_rx",
        "last_sr",
        "latched",
        "leg_id",
        "local_port",
        "marker_next",
        "max_seq",
        "next_rtcp",
        "pt",
        "received",
        "received_prior",
        "relay",
        "relay_offset",
        "remote_ssrc",
        "rtcp_bad",
        "rtcp_dest",
        "rtcp_interval",
        "rtcp_latched",
        "rtcp_rx",
        "rtcp_sock",
        "rtcp_tx",
        "rx_bad",
        "rx_bytes",
        "rx_foreign",
        "rx_other_pt",
        "rx_packets",
        "send_ok",
        "signalled",
        "silence",
        "sock",
        "ssrc",
        "te_pt",
        "timeout_reported",
        "tx_blocked",
        "tx_bytes",
        "tx_packets",
        "tx_seq",
        "tx_ts",
    )

    def __init__(
        self,
        leg_id: str,
        rtp_sock: socket.socket,
        rtcp_sock: socket.socket,
        local_port: int,
        allow: MediaAllowList,
        payload_type: int,
        telephone_event_pt: int | None,
        direction: str,
        now: float,
        inband: bool,
        jitter_max_frames: int = 6,
        rtcp_interval: float = 5.0,
    ) -> None:
        self.leg_id = leg_id
        self.sock = rtp_sock
        self.rtcp_sock = rtcp_sock
        self.local_port = local_port
        self._allow = allow
        self.pt = -1
        self.silence = b""
        self.te_pt = telephone_event_pt
        self.direction = direction
        self.inband_enabled = inband
        self.jb = JitterBuffer(0xFF, jitter_max_frames)
        self._jb_max = jitter_max_frames
        self.set_codec(payload_type)
        self.dtmf_rx = EventReceiver()
        self.dtmf_tx = EventSender()
        self.inband: InbandDetector | None = None
        self.signalled: Addr | None = None
        self.latched: Addr | None = None
        self.dest: Addr | None = None
        self.rtcp_dest: Addr | None = None
        self.rtcp_latched = False
        self.can_send = False
        self.dest_allowed = False
        self.send_ok = False
        self.connected = False
        self.just_latched = False
        self.relay: MediaLeg | None = None  # same-codec bridge peer: packets are forwarded
        self.relay_offset: int | None = None
        self.ssrc = random.getrandbits(32)
        self.tx_seq = random.getrandbits(16)
        self.tx_ts = random.getrandbits(32)
        self.marker_next = True
        # RFC 3550 receive statistics
        self.remote_ssrc: int | None = None
        self.base_seq = self.max_seq = self.cycles = 0
        self.received = self.expected_prior = self.received_prior = 0
        self.jitter = 0.0
        self._transit = 1e18
        self.last_sr: tuple[int, float] | None = None
        # counters
        self.rx_packets = self.rx_bytes = self.rx_bad = self.rx_foreign = 0
        self.rx_other_pt = self.tx_packets = self.tx_bytes = self.tx_blocked = 0
        self.rtcp_rx = self.rtcp_bad = self.rtcp_tx = 0
        self.last_rx = now
        self.timeout_reported = False
        self.rtcp_interval = rtcp_interval
        self.next_rtcp = now + random.uniform(0.2, 1.0) * rtcp_interval
        self._update_send()

    # ------------------------------------------------------------------ configuration

    def set_codec(self, payload_type: int) -> None:
        """Switch the negotiated G.711 law (PCMU=0 / PCMA=8)."""
        if payload_type not in g711.SUPPORTED_PAYLOAD_TYPES:
            raise UnsupportedCodecError(f"payload type {payload_type} is not PCMU/PCMA")
        if payload_type != self.pt:
            self.pt = payload_type
            self.silence = bytes([g711.SILENCE_BYTE[payload_type]]) * FRAME
            self.jb = JitterBuffer(g711.SILENCE_BYTE[payload_type], self._jb_max)

    def set_remote(self, ip: str | None, port: int | None) -> None:
        """New signalled remote (SDP); symmetric RTP latches again on the next packet.

        A connected socket must be replaced first (:meth:`PortPool.rebind`).
        """
        if ip is not None and port:
            self.signalled = (ip, port)
            self.dest = self.signalled
            self.rtcp_dest = (ip, port + 1)
        self.latched = None
        self.rtcp_latched = False
        self._update_send()

    def set_direction(self, direction: str) -> None:
        """Our media direction as put in the SDP answer (hold is sendonly/inactive)."""
        self.direction = direction
        self._update_send()

    def _update_send(self) -> None:
        self.can_send = self.direction in SENDING and self.dest is not None
        self.dest_allowed = self.dest is not None and self._allow.permits(self.dest[0])
        self.send_ok = self.can_send and self.dest_allowed

    @property
    def needs_inband(self) -> bool:
        """True when DTMF must be detected in the audio (no telephone-event)."""
        return self.inband_enabled and self.te_pt is None

    # ------------------------------------------------------------------------ inbound

    def receive(self, data: bytes, addr: Addr, now: float) -> list[DtmfSignal] | bool:
        """Handle one RTP datagram from the (not yet connected) socket.

        Returns DTMF signals for telephone-events, else False; bad packets are counted,
        never raised.  The first valid packet latches the remote (``just_latched`` is
        set for the engine to report media start) and connects the socket to it, so
        from then on the kernel drops other sources and the engine calls
        :meth:`on_packet` directly.
        """
        latched = self.latched
        if latched is not None and addr != latched:
            self.rx_foreign += 1
            return False
        signals = self.on_packet(data, now)
        if latched is not None or self.rx_packets == 0:
            return signals
        self.latched = addr
        self.just_latched = True
        if addr[1]:  # a source port of 0 cannot be answered: keep the SDP address
            self.dest = addr
            self._update_send()
            if self.dest_allowed:
                try:
                    self.sock.connect(addr)
                    self.connected = True
                except OSError:
                    self.connected = False
        return signals

    def on_packet(self, data: bytes, now: float) -> list[DtmfSignal] | bool:
        """Validate and dispatch one datagram from the latched source (the hot path)."""
        if len(data) >= 12 and data[0] == 0x80:
            b1, seq, ts, ssrc = _FAST.unpack_from(data)
            payload = data[12:]
        else:
            pkt = parse_rtp(data)
            if pkt is None:
                self.rx_bad += 1
                return False
            b1, seq, ts, ssrc, payload = (
                pkt.payload_type,
                pkt.sequence,
                pkt.timestamp,
                pkt.ssrc,
                pkt.payload,
            )
        self.rx_packets += 1
        self.rx_bytes += len(data)
        self.last_rx = now
        pt = b1 & 0x7F
        if pt == self.pt:
            # RFC 3550 A.1 / A.8 statistics, inlined: this runs for every packet.
            if ssrc != self.remote_ssrc:
                self._new_source(seq, ssrc)
            self.received += 1
            if 0 < ((seq - self.max_seq) & 0xFFFF) < 0x8000:
                if seq < self.max_seq:
                    self.cycles += 0x10000
                self.max_seq = seq
            transit = now * 8000.0 - ts
            d = transit - self._transit
            if d < 0:
                d = -d
            if d < 480000.0:
                self.jitter += (d - self.jitter) * 0.0625
            self._transit = transit
            peer = self.relay
            if peer is not None:
                offset = self.relay_offset
                if offset is None:
                    offset = self.relay_offset = (peer.tx_ts - ts) & 0xFFFFFFFF
                    peer.marker_next = True
                out_ts = (ts + offset) & 0xFFFFFFFF
                if peer.send_ok and peer.connected and not peer.marker_next:
                    # :meth:`forward` inlined for the common case: this is the
                    # per-packet cost of every pass-through bridge.
                    out_seq = peer.tx_seq
                    peer.tx_seq = (out_seq + 1) & 0xFFFF
                    peer.tx_ts = (out_ts + len(payload)) & 0xFFFFFFFF
                    try:
                        peer.sock.send(_PACK(0x80, peer.pt, out_seq, out_ts, peer.ssrc) + payload)
                    except OSError:
                        peer.tx_blocked += 1
                    else:
                        peer.tx_packets += 1
                        peer.tx_bytes += len(payload)
                else:
                    peer.forward(peer.pt, out_ts, payload, False)
            elif payload:
                self.jb.push(ts, payload)
        elif pt == self.te_pt:
            peer = self.relay
            if peer is not None and peer.te_pt is not None and self.relay_offset is not None:
                ts_out = (ts + self.relay_offset) & 0xFFFFFFFF
                peer.forward(peer.te_pt, ts_out, payload, bool(b1 & 0x80))
            return self.dtmf_rx.feed(ts, payload, now)
        elif pt != COMFORT_NOISE_PT:
            self.rx_other_pt += 1
        return False

    def _new_source(self, seq: int, ssrc: int) -> None:
        self.remote_ssrc = ssrc
        self.base_seq = self.max_seq = (seq - 1) & 0xFFFF
        self.cycles = self.received = self.expected_prior = self.received_prior = 0
        self._transit = 1e18  # first difference is ignored (> 60 s)
        self.jitter = 0.0
        self.jb.reset()

    def receive_rtcp(self, data: bytes, addr: Addr, now: float) -> None:
        """Handle an RTCP datagram (latch its source, remember the last SR)."""
        report = parse_rtcp(data)
        if report is None:
            self.rtcp_bad += 1
            return
        self.rtcp_rx += 1
        if not self.rtcp_latched:
            self.rtcp_dest = addr
            self.rtcp_latched = True
        if report.ntp_middle:
            self.last_sr = (report.ntp_middle, now)

    # ----------------------------------------------------------------------- outbound

    def send_audio(self, payload: bytes) -> None:
        """Send this tick's encoded frame (or a pending telephone-event instead)."""
        ts = self.tx_ts
        self.tx_ts = (ts + FRAME) & 0xFFFFFFFF
        if not self.can_send:
            return
        if not self.dest_allowed:
            self.tx_blocked += 1
            return
        pt = self.pt
        marker = self.marker_next
        if self.dtmf_tx.busy and self.te_pt is not None:
            event = self.dtmf_tx.next_packet(ts)
            if event is not None:
                marker, ts, payload = event
                pt = self.te_pt
        self.marker_next = False
        seq = self.tx_seq
        self.tx_seq = (seq + 1) & 0xFFFF
        packet = RTP_HEADER.pack(0x80, (0x80 | pt) if marker else pt, seq, ts, self.ssrc) + payload
        try:
            if self.connected:
                self.sock.send(packet)
            else:
                self.sock.sendto(packet, self.dest)  # type: ignore[arg-type]
        except OSError:
            self.tx_blocked += 1
            return
        self.tx_packets += 1
        self.tx_bytes += len(payload)

    def forward(self, pt: int, ts: int, payload: bytes, marker: bool) -> None:
        """Send a relayed payload with our own SSRC / sequence (pass-through bridge)."""
        if not self.can_send:
            return
        if not self.dest_allowed:
            self.tx_blocked += 1
            return
        if self.marker_next:
            marker = True
            self.marker_next = False
        seq = self.tx_seq
        self.tx_seq = (seq + 1) & 0xFFFF
        if pt == self.pt:
            self.tx_ts = (ts + len(payload)) & 0xFFFFFFFF
        packet = RTP_HEADER.pack(0x80, (0x80 | pt) if marker else pt, seq, ts, self.ssrc) + payload
        try:
            if self.connected:
                self.sock.send(packet)
            else:
                self.sock.sendto(packet, self.dest)  # type: ignore[arg-type]
        except OSError:
            self.tx_blocked += 1
            return
        self.tx_packets += 1
        self.tx_bytes += len(payload)

    def set_relay(self, peer: MediaLeg | None) -> None:
        """Start/stop forwarding this leg's packets to ``peer`` without decoding."""
        if peer is self.relay:
            return
        if self.relay is not None and peer is None:
            self.jb.reset()
        self.relay = peer
        self.relay_offset = None
        self.marker_next = True

    def rtcp_report(self, now: float, wall: float) -> None:
        """Send an SR (if we sent since the last one) or an RR, with one report block."""
        self.next_rtcp = now + self.rtcp_interval * random.uniform(0.8, 1.2)
        dest = self.rtcp_dest
        if dest is None or not self._allow.permits(dest[0]):
            return
        blocks: tuple[ReportBlock, ...] = ()
        if self.remote_ssrc is not None:
            ext_max = self.cycles + self.max_seq
            expected = ext_max - self.base_seq
            lost = max(0, expected - self.received)
            exp_int = expected - self.expected_prior
            rec_int = self.received - self.received_prior
            self.expected_prior, self.received_prior = expected, self.received
            lost_int = exp_int - rec_int
            fraction = (lost_int << 8) // exp_int if exp_int > 0 and lost_int > 0 else 0
            lsr = dlsr = 0
            if self.last_sr is not None:
                lsr = self.last_sr[0]
                dlsr = int((now - self.last_sr[1]) * 65536)
            blocks = (
                ReportBlock(self.remote_ssrc, fraction, lost, ext_max, int(self.jitter), lsr, dlsr),
            )
        if self.tx_packets:
            packet = build_sr(self.ssrc, wall, self.tx_ts, self.tx_packets, self.tx_bytes, blocks)
        else:
            packet = build_rr(self.ssrc, blocks)
        try:
            self.rtcp_sock.sendto(packet, dest)
            self.rtcp_tx += 1
        except OSError:
            self.tx_blocked += 1

    def packets_lost(self) -> int:
        """Packets of the current source that never arrived (RFC 3550 A.3)."""
        if self.remote_ssrc is None:
            return 0
        return max(0, self.cycles + self.max_seq - self.base_seq - self.received)

    def close(self) -> None:
        """Close both sockets and let go of the relay peer: two bridged legs point at each
        other, and a pair closed together (a call's hangup) would otherwise wait for the
        cycle collector, with their sockets and buffers."""
        self.relay = None
        self.sock.close()
        self.rtcp_sock.close()
