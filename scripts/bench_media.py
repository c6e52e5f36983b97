#!/usr/bin/env python3
"""Media engine benchmark: N bridged calls (2N legs) of 20 ms G.711 on loopback.

A separate load-generator process (its own GIL) plays the phones: it sends one RTP
packet per leg every 20 ms, each payload stamped with (leg, sequence, send time), and
receives what the engine forwards from the other leg of the call.  The engine runs
in this process (``--workers 0``, the in-process runner) or in worker processes.

Reported (one JSON line): calls, legs, loss_pct (stamped packets sent in the measured
window that never came out of the other leg), jitter_p99_ms (the jitter the engine
adds: p99 of the RFC 3550 transit-time difference |D| between consecutive packets of a
stream; send times are stamped per packet, arrival times by the kernel with
SO_TIMESTAMPNS so the generator's own scheduling does not count; with --transcode the
engine re-times every stream, so D compares arrivals with the engine's own RTP
timestamps; both variants are also reported as transit_/output_jitter_p99_ms),
delay_var_p99_ms
(p99 of transit minus the stream's minimum transit),
cpu_pct of the engine process(es) (100 = one core), kb_per_leg (engine RSS growth per
leg), plus the engine's late/skipped tick counts and, because the machine may be
shared, the CPU the load generator and everything else used meanwhile
(other_procs_cpu_pct) and kernel interrupt work (softirq_cpu_pct, mostly the loopback
traffic itself).

``--conference``: conferences of ``--members`` legs (default 10) instead of calls, every
member mixed N-1 by the tick, for each count in ``--conferences`` (default 10..100): each
member sends its stamp (conference, sequence) in its own 16-sample slot of the frame and
silence elsewhere, so what a member is sent (the sum of the others, minus itself) carries
every other member's stamp intact; loss_pct counts (receiver, sender, sequence) that never
came out, jitter_p99_ms is the output jitter (the mix re-times every stream). One line
per count, then ``media_conference_max``: the most members mixed at once with loss under
0.1 % and jitter p99 under 5 ms.

``--record``: every bridged call also recorded (``mixed``, one mono WAV per call in a
temporary recordings directory, removed at the end), for each count in ``--record-calls``
(default 100..600).  A recorded call leaves pass-through for the mixing path, so the
stamps travel as symbols that survive decode and encode unchanged and jitter_p99_ms is
the output jitter.  Each line adds cpu_pct_per_call (engine CPU / calls) and
disk_mb_per_s (growth of the WAVs over the measured window), then ``media_record_max``:
the most recorded calls with loss under 0.1 % and jitter p99 under 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import struct
import sys
import tempfile
import time
import wave
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sip_media.media import api, g711
from sip_media.media.config import MediaConfig
from sip_media.media.service import InProcessMedia, start_media
from tests.support.ports import wide_range

STAMP = struct.Struct("!IIQ")  # leg index, sequence, send time (ns, CLOCK_REALTIME)
SO_TIMESTAMPNS = 35  # Linux: kernel receive timestamp (CLOCK_REALTIME) as ancillary data
PACKET = struct.Struct("!BBHIIIIQ144x")  # RTP header + stamp + 144 bytes of filler
RTP = struct.Struct("!BBHII")


def _symbols(src_pt: int) -> tuple[np.ndarray, np.ndarray]:
    """16 codes of law ``src_pt`` whose transcoded images are distinct, and the inverse.

    With --transcode the stamp travels as 32 such symbols (one per nibble): decoding,
    mixing with gain 1 and encoding to the other law maps each symbol to a known code,
    so the receiver can read the stamp back from the transcoded payload.
    """
    dst_pt = g711.PCMA if src_pt == g711.PCMU else g711.PCMU
    images: dict[int, int] = {}
    for code in range(256):
        value = int(g711.DECODE_TABLES[src_pt][code])
        image = int(g711.encode(dst_pt, np.array([value], dtype=np.int16))[0])
        if abs(value) >= 1000 and image not in images.values():
            images[code] = image
        if len(images) == 16:
            break
    codes = np.array(list(images), dtype=np.uint8)
    inverse = np.full(256, 255, dtype=np.uint8)
    inverse[np.array(list(images.values()))] = np.arange(16)
    return codes, inverse


def _stamp_payloads(
    legs: np.ndarray, seq: int, t_ns: int, sym_u: np.ndarray, sym_a: np.ndarray
) -> bytes:
    """Payloads (n x 160 bytes) carrying (leg, seq, time) as transcodable symbols
    (PCMU symbols for even legs, PCMA symbols for odd ones)."""
    raw = np.zeros((legs.size, 16), dtype=np.uint8)
    raw[:, 0:4] = legs.astype(">u4").view(np.uint8).reshape(-1, 4)
    raw[:, 4:8] = np.frombuffer(struct.pack("!I", seq), dtype=np.uint8)
    raw[:, 8:16] = np.frombuffer(struct.pack("!Q", t_ns), dtype=np.uint8)
    nibbles = np.stack([raw >> 4, raw & 15], axis=2).reshape(-1, 32)
    odd = (legs % 2 == 1)[:, None]
    payload = np.where(odd, sym_a[0], sym_u[0]).astype(np.uint8).repeat(160, axis=1)
    payload[:, :32] = np.where(odd, sym_a[nibbles], sym_u[nibbles])
    return payload.tobytes()


SLOT = 16  # samples of the frame each conference member writes its stamp into
MAX_MEMBERS = 160 // SLOT


def _slot_symbols() -> tuple[np.ndarray, np.ndarray]:
    """16 PCMU codes that survive decode, a sum with silence and encode unchanged, and
    the inverse (255 = not a symbol)."""
    codes = [
        c
        for c in range(256)
        if abs(int(g711.ULAW_DECODE[c])) >= 1000
        and int(g711.encode(g711.PCMU, g711.ULAW_DECODE[c : c + 1].astype(np.int16))[0]) == c
    ][:16]
    inverse = np.full(256, 255, dtype=np.uint8)
    inverse[np.array(codes)] = np.arange(16)
    return np.array(codes, dtype=np.uint8), inverse


def _slot_payloads(legs: np.ndarray, seq: int, members: int, sym: np.ndarray) -> bytes:
    """Payloads (n x 160 PCMU bytes): silence, except (conference, seq) as 12 symbols
    in the member's own slot (leg ``i`` is member ``i % members`` of conference
    ``i // members``)."""
    n = legs.size
    raw = np.zeros((n, 6), dtype=np.uint8)
    raw[:, 0:2] = (legs // members).astype(">u2").view(np.uint8).reshape(-1, 2)
    raw[:, 2:6] = np.frombuffer(struct.pack("!I", seq), dtype=np.uint8)
    nibbles = np.stack([raw >> 4, raw & 15], axis=2).reshape(n, 12)
    payload = np.full((n, 160), g711.ULAW_ENCODE[0], dtype=np.uint8)
    cols = (legs % members)[:, None] * SLOT + np.arange(12)
    payload[np.arange(n)[:, None], cols] = sym[nibbles]
    return payload.tobytes()


def _big_buffers(sock: socket.socket) -> None:
    for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # *BUFFORCE
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, 8 * 1024 * 1024)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, opt, 8 * 1024 * 1024)


def load_generator(
    conn: Connection,
    n_socks: int,
    warmup: float,
    measure: float,
    transcode: bool,
    phases: int,
    members: int = 0,
    record: bool = False,
) -> None:
    """Phones: send a stamped frame per leg every 20 ms, collect what comes back.

    Legs are spread over ``phases`` evenly spaced send slots per 20 ms (independent
    phones are not phase-locked; ``phases=1`` is the synchronised worst case).  Odd
    legs speak PCMA when ``transcode`` is set (stamps then travel as symbols and are
    stamped once per slot rather than per packet); with ``record`` every leg speaks PCMU
    and stamps travel as symbols that PCMU decode and encode leave unchanged."""
    socks = []
    for _ in range(n_socks):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _big_buffers(s)
        socks.append(s)
    conn.send([s.getsockname()[1] for s in socks])
    leg_ports: list[int] = conn.recv()
    n = len(leg_ports)
    targets = [("127.0.0.1", p) for p in leg_ports]
    senders = [socks[i % n_socks].sendto for i in range(n)]
    pack = PACKET.pack
    sym_u, _ = _symbols(g711.PCMU)
    sym_a, _ = _symbols(g711.PCMA)
    sym_slot, _ = _slot_symbols()
    if record and not transcode:
        sym_u = sym_a = sym_slot
    seq = 0
    stamps = bytearray()
    headers = bytearray()
    times = bytearray()
    sent_window = [0, 0]  # first and last sequence sent inside the measured window
    start = time.monotonic() + 0.05
    t_measure, t_end = start + warmup, start + warmup + measure
    t_stop = t_end + 0.5
    next_send = start
    recvs = [s.recvmsg for s in socks]
    time_ns = time.time_ns
    chunk = -(-n // phases)
    slot = 0
    while True:
        now = time.monotonic()
        if now >= t_stop:
            break
        if now >= next_send and now < t_end:
            ts = (seq * 160) & 0xFFFFFFFF
            if slot == 0 and now >= t_measure:
                if sent_window[0] == 0:
                    sent_window[0] = seq
                sent_window[1] = seq
            lo, hi = slot * chunk, min(n, (slot + 1) * chunk)
            if members:
                body = _slot_payloads(np.arange(lo, hi), seq, members, sym_slot)
                for i in range(lo, hi):
                    k = (i - lo) * 160
                    head = RTP.pack(0x80, 0, seq & 0xFFFF, ts, i)
                    senders[i](head + body[k : k + 160], targets[i])
            elif transcode or record:
                body = _stamp_payloads(np.arange(lo, hi), seq, time_ns(), sym_u, sym_a)
                for i in range(lo, hi):
                    k = (i - lo) * 160
                    head = RTP.pack(0x80, 8 if transcode and i % 2 else 0, seq & 0xFFFF, ts, i)
                    senders[i](head + body[k : k + 160], targets[i])
            else:
                for i in range(lo, hi):
                    senders[i](pack(0x80, 0, seq & 0xFFFF, ts, i, i, seq, time_ns()), targets[i])
            slot += 1
            if slot == phases:
                slot = 0
                seq += 1
            next_send += 0.02 / phases
            continue
        # Sleep instead of blocking on the sockets: a sender never has to wake us up
        # (cross-CPU wake-ups are what loopback sends cost most), and the kernel
        # timestamps say when each packet really arrived.
        time.sleep(max(0.0, min(next_send, t_stop) - now))
        recording = time.monotonic() >= t_measure
        for recv in recvs:
            while True:
                try:
                    data, anc, _flags, _addr = recv(2048, 64)
                except BlockingIOError:
                    break
                if recording and len(data) == 172 and anc:
                    if members:
                        stamps += data[12:172]
                    elif transcode or record:
                        stamps += data[1:2] + data[12:44]
                    else:
                        stamps += data[12:28]
                    headers += data[4:12]  # the engine's outgoing RTP timestamp and SSRC
                    times += anc[0][2][:16]
    conn.send((bytes(stamps), bytes(headers), bytes(times), sent_window, n))


def _read_symbols(stamps: bytes, same_law: bool = False) -> bytes:
    """Turn (pt, 32 symbols) records back into 16-byte stamps (invalid -> leg 2**32-1);
    ``same_law``: PCMU in and out (the symbols of :func:`_slot_symbols`)."""
    rows = np.frombuffer(stamps, dtype=np.uint8).reshape(-1, 33)
    if same_law:
        nib = _slot_symbols()[1][rows[:, 1:]]
    else:
        _, inv_u = _symbols(g711.PCMU)  # PCMU in -> PCMA out
        _, inv_a = _symbols(g711.PCMA)  # PCMA in -> PCMU out
        pcma_out = (rows[:, :1] & 0x7F) == g711.PCMA
        nib = np.where(pcma_out, inv_u[rows[:, 1:]], inv_a[rows[:, 1:]])
    raw = ((nib[:, 0::2] << 4) | (nib[:, 1::2] & 15)).astype(np.uint8)
    raw[(nib == 255).any(axis=1), :4] = 255
    return raw.tobytes()


def _output_jitter(headers: bytes, t_recv: np.ndarray) -> np.ndarray:
    """|D| of RFC 3550 per outgoing stream: arrival vs the engine's own RTP timestamps.

    This is the jitter the far end sees on a stream the engine re-times (the mixing
    path gives every leg its own clock), independent of the load generator's timing.
    """
    hdr = np.frombuffer(headers, dtype=np.dtype([("ts", ">u4"), ("ssrc", ">u4")]))
    order = np.lexsort((t_recv, hdr["ssrc"]))
    ssrc, ts, t = hdr["ssrc"][order], hdr["ts"][order].astype(np.int64), t_recv[order]
    same = ssrc[1:] == ssrc[:-1]
    dts = np.diff(ts)
    dts = np.where(dts < -(1 << 31), dts + (1 << 32), dts)  # timestamp wrap
    d = np.abs(np.diff(t) / 1e6 - dts / 8.0)[same & (dts > 0) & (dts <= 160 * 5)]
    return d


def analyse(
    stamps: bytes,
    headers: bytes,
    times: bytes,
    window: list[int],
    n: int,
    transcode: bool,
    record: bool = False,
) -> dict[str, float]:
    """Loss and jitter of a calls run; ``record``: every call went through the mixing
    path (a recorder taps it), so it was re-timed like a transcoded one."""
    if transcode or record:
        stamps = _read_symbols(stamps, same_law=not transcode)
    rec = np.frombuffer(stamps, dtype=np.dtype([("leg", ">u4"), ("seq", ">u4"), ("t", ">u8")]))
    spec = np.frombuffer(times, dtype=np.int64).reshape(-1, 2)  # struct timespec
    t_recv = spec[:, 0] * 1_000_000_000 + spec[:, 1]
    valid = rec["leg"] < n  # silence/concealment frames carry no stamp
    leg, seq = rec["leg"][valid].astype(np.int64), rec["seq"][valid].astype(np.int64)
    transit = (t_recv[valid] - rec["t"][valid].astype(np.int64)) / 1e6
    first, last = window
    last -= 10  # packets sent in the last 200 ms may still be in flight
    in_window = (seq >= first) & (seq <= last)
    keys = np.unique(leg[in_window] * (1 << 32) + seq[in_window])
    expected = n * (last - first + 1)
    loss_pct = 100.0 * (expected - keys.size) / expected
    order = np.lexsort((seq, leg))
    leg, seq, transit = leg[order], seq[order], transit[order]
    first_copy = np.concatenate([[True], (leg[1:] != leg[:-1]) | (seq[1:] != seq[:-1])])
    leg, seq, transit = leg[first_copy], seq[first_copy], transit[first_copy]
    same = (leg[1:] == leg[:-1]) & (seq[1:] == seq[:-1] + 1)
    d = np.abs(np.diff(transit))[same]
    mins = np.full(n, np.inf)
    np.minimum.at(mins, leg, transit)
    out_jitter = _output_jitter(headers, t_recv)
    # Engine-added jitter: pass-through keeps the caller's timing, so compare transit
    # times (send stamp -> kernel arrival); the mixing path re-times every stream, so
    # compare arrivals with the engine's own RTP timestamps.
    added = out_jitter if transcode or record else d
    return {
        "loss_pct": round(float(loss_pct), 4),
        "jitter_p99_ms": round(float(np.percentile(added, 99)), 3) if added.size else -1.0,
        "transit_jitter_p99_ms": round(float(np.percentile(d, 99)), 3) if d.size else -1.0,
        "output_jitter_p99_ms": round(float(np.percentile(out_jitter, 99)), 3),
        "delay_var_p99_ms": round(float(np.percentile(transit - mins[leg], 99)), 3),
        "transit_p50_ms": round(float(np.percentile(transit, 50)), 3),
    }


def analyse_conference(
    payloads: bytes, headers: bytes, times: bytes, window: list[int], n: int, members: int
) -> dict[str, float]:
    """Loss over (receiver, sender, sequence) and the output jitter of a conference run."""
    rows = np.frombuffer(payloads, dtype=np.uint8).reshape(-1, 160)
    hdr = np.frombuffer(headers, dtype=np.dtype([("ts", ">u4"), ("ssrc", ">u4")]))
    spec = np.frombuffer(times, dtype=np.int64).reshape(-1, 2)
    t_recv = spec[:, 0] * 1_000_000_000 + spec[:, 1]
    _, receiver = np.unique(hdr["ssrc"], return_inverse=True)
    _, inverse = _slot_symbols()
    first, last = window
    last -= 10  # packets sent in the last 200 ms may still be in flight
    n_confs = -(-n // members)
    keys = []
    for slot in range(members):
        nib = inverse[rows[:, slot * SLOT : slot * SLOT + 12]].astype(np.int64)
        raw = (nib[:, 0::2] << 4) | nib[:, 1::2]
        conf = (raw[:, 0] << 8) | raw[:, 1]
        seq = (raw[:, 2] << 24) | (raw[:, 3] << 16) | (raw[:, 4] << 8) | raw[:, 5]
        ok = (nib != 255).all(axis=1) & (seq >= first) & (seq <= last) & (conf < n_confs)
        sender = conf * members + slot
        keys.append(((receiver[ok] * n + sender[ok]) << 24) | (seq[ok] - first))
    unique = np.unique(np.concatenate(keys))
    got = unique.size
    expected = n * (members - 1) * (last - first + 1)
    jitter = _output_jitter(headers, t_recv)
    # how many members each receiver heard at all: N-1, never itself
    pairs = np.unique(unique >> 24)
    heard = np.bincount(pairs // n, minlength=int(receiver.max()) + 1 if receiver.size else 0)
    return {
        "senders_heard_min": int(heard.min()) if heard.size else 0,
        "senders_heard_max": int(heard.max()) if heard.size else 0,
        "loss_pct": round(100.0 * (expected - got) / expected, 4),
        "jitter_p99_ms": round(float(np.percentile(jitter, 99)), 3) if jitter.size else -1.0,
        "output_jitter_p99_ms": round(float(np.percentile(jitter, 99)), 3) if jitter.size else -1.0,
    }


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _system_busy() -> tuple[float, float]:
    """(process-context busy, irq+softirq) CPU seconds of the machine (/proc/stat)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tck = os.sysconf("SC_CLK_TCK")
    return (v[0] + v[1] + v[2] + v[7]) / tck, (v[5] + v[6]) / tck


def _tree_bytes(root: Path) -> int:
    """Bytes of the files under ``root`` (the recordings written so far)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _wav_seconds(root: Path) -> list[float]:
    """Duration of each finalised WAV under ``root``."""
    seconds = []
    for path in sorted(root.rglob("*.wav")):
        with wave.open(str(path)) as w:
            seconds.append(w.getnframes() / w.getframerate())
    return seconds


def _proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run(args: argparse.Namespace, conferences: int = 0) -> dict[str, object]:
    """One run: ``args.calls`` bridged calls, or ``conferences`` of ``args.members``;
    its sounds and recordings live in a temporary directory removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_media_"))
    try:
        return await _run(args, conferences, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def _run(args: argparse.Namespace, conferences: int, tmp: Path) -> dict[str, object]:
    members = args.members if conferences else 0
    record = bool(args.record) and not members
    rec_dir = tmp / "rec"
    n_legs = conferences * members if conferences else 2 * args.calls
    size = 4 * n_legs + 100
    port_min, port_max = (
        (args.port_min, args.port_min + size) if args.port_min else wide_range(size)
    )
    config = MediaConfig(
        sounds_dir=tmp / "sounds",
        recordings_dir=rec_dir,
        port_min=port_min,
        port_max=port_max,
        workers=args.workers,
        rtp_timeout_s=0,
        relay_batch_ms=args.relay_batch_ms,
    )
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    # daemon: if this run fails half-way, the generator (waiting for its leg ports) must
    # not keep the process from exiting with the error
    gen = ctx.Process(
        target=load_generator,
        args=(
            child,
            args.sockets,
            args.warmup,
            args.measure,
            args.transcode,
            args.phases,
            members,
            record,
        ),
        daemon=True,
    )
    gen.start()
    gen_ports: list[int] = parent.recv()
    service = await start_media(config)
    pids = [os.getpid()]
    if not isinstance(service, InProcessMedia):
        pids = [p.pid for p in service._procs]
    rss_before = sum(_proc_rss_kb(p) for p in pids)
    leg_ports = []
    for i in range(n_legs):
        created = await service.execute(
            api.CreateLeg(
                f"l{i}",
                "127.0.0.1",
                gen_ports[i % args.sockets],
                8 if args.transcode and not members and i % 2 else 0,
                group=f"conf{i // members}" if members else f"c{i // 2}",
            )
        )
        assert isinstance(created, api.LegCreated)
        leg_ports.append(created.local_port)
    if members:
        for i in range(n_legs):
            await service.execute(api.JoinConference(f"conf{i // members}", f"l{i}", False))
    else:
        for c in range(args.calls):
            await service.execute(api.Connect(f"l{2 * c}", f"l{2 * c + 1}"))
            if record:
                legs = (f"l{2 * c}", f"l{2 * c + 1}")
                started = await service.execute(api.Record(legs, f"calls/c{c}.wav", "mixed"))
                assert isinstance(started, api.RecordingStarted)
    parent.send(leg_ports)
    await asyncio.sleep(0.05 + args.warmup)
    assert gen.pid is not None
    cpu0, gen0, t0 = sum(_proc_cpu(p) for p in pids), _proc_cpu(gen.pid), time.monotonic()
    sys0 = _system_busy()
    disk0 = _tree_bytes(rec_dir) if record else 0
    await asyncio.sleep(args.measure)
    cpu1, gen1, t1 = sum(_proc_cpu(p) for p in pids), _proc_cpu(gen.pid), time.monotonic()
    sys1 = _system_busy()
    disk1 = _tree_bytes(rec_dir) if record else 0
    rss_after = sum(_proc_rss_kb(p) for p in pids)
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, parent.poll, args.warmup + args.measure + 30):
        raise SystemExit("load generator did not report")
    stamps, headers, times, window, n = parent.recv()
    stats: dict[str, int] = {}
    if isinstance(service, InProcessMedia):
        stats = dict(service.engine.stats)
    await service.close()
    if not isinstance(service, InProcessMedia):
        for worker_stats in getattr(service, "worker_stats", []):
            for key, value in worker_stats.items():
                stats[key] = stats.get(key, 0) + value
    gen.join(5)
    result: dict[str, object]
    if members:
        result = {"bench": "media_conference", "conferences": conferences, "members": members}
        result["legs"] = n_legs
        result.update(analyse_conference(stamps, headers, times, window, n, members))
        result["mode"] = "conference"
    else:
        result = {"bench": "media_record" if record else "media", "calls": args.calls}
        result["legs"] = n_legs
        result.update(analyse(stamps, headers, times, window, n, args.transcode, record))
        result["mode"] = "transcode" if args.transcode else "passthrough"
        if record:  # a recorded call is mixed, never passed through
            result["mode"] = "record+transcode" if args.transcode else "record"
    result["phases"] = args.phases
    result["cpu_pct"] = round(100.0 * (cpu1 - cpu0) / (t1 - t0), 1)
    if record:
        result["cpu_pct_per_call"] = round(100.0 * (cpu1 - cpu0) / (t1 - t0) / args.calls, 3)
        result["disk_mb_per_s"] = round((disk1 - disk0) / (t1 - t0) / 1e6, 3)
        # the engine finalised them on close: one WAV per call, none empty
        seconds = _wav_seconds(rec_dir)
        result["recordings"] = len(seconds)
        result["recorded_s_min"] = round(min(seconds), 2) if seconds else 0.0
    result["loadgen_cpu_pct"] = round(100.0 * (gen1 - gen0) / (t1 - t0), 1)
    others = (sys1[0] - sys0[0]) - (cpu1 - cpu0) - (gen1 - gen0)
    result["other_procs_cpu_pct"] = round(100.0 * max(0.0, others) / (t1 - t0), 1)
    result["softirq_cpu_pct"] = round(100.0 * (sys1[1] - sys0[1]) / (t1 - t0), 1)
    result["cores"] = os.cpu_count() or 0
    result["kb_per_leg"] = round((rss_after - rss_before) / n_legs, 1)
    result["workers"] = args.workers
    result["pps_each_way"] = n_legs * 50
    for key in ("late_ticks", "skipped_ticks", "ticks"):
        if key in stats:
            result[key] = stats[key]
    if stats.get("ticks"):
        result["tick_ms_avg"] = round(stats["tick_ns"] / stats["ticks"] / 1e6, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--measure", type=float, default=10.0)
    parser.add_argument("--sockets", type=int, default=16)
    parser.add_argument(
        "--port-min", type=int, default=None, help="default: a range from tests.support.ports"
    )
    parser.add_argument("--relay-batch-ms", type=float, default=2.0)
    parser.add_argument(
        "--phases",
        type=int,
        default=10,
        help="send slots per 20 ms the legs are spread over (1 = all phones in lock-step)",
    )
    parser.add_argument(
        "--transcode",
        action="store_true",
        help="odd legs use PCMA: every frame is decoded, mixed and encoded by the tick",
    )
    parser.add_argument(
        "--conference",
        action="store_true",
        help="conferences of --members instead of calls, one run per --conferences count",
    )
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--conferences", default="10,20,30,50,70,100")
    parser.add_argument(
        "--record",
        action="store_true",
        help="every bridged call recorded (mixed WAV), one run per --record-calls count",
    )
    parser.add_argument("--record-calls", default="100,200,300,400,500,600")
    parser.add_argument("--max-loss-pct", type=float, default=0.1)
    parser.add_argument("--max-jitter-ms", type=float, default=5.0)
    args = parser.parse_args()
    if args.conference and args.record:
        parser.error("--conference and --record are separate benchmarks")
    if args.conference:
        if not 2 <= args.members <= MAX_MEMBERS:
            parser.error(f"--members must be 2..{MAX_MEMBERS} (one {SLOT}-sample slot each)")
        counts = [int(c) for c in args.conferences.split(",")]
        best, failed = sweep(args, [(c, c * args.members) for c in counts])
        summary: dict[str, object] = {
            "bench": "media_conference_max",
            "members": args.members,
            "max_members_mixed": best,
            # a shared machine's other load can fail a smaller step: shown, not hidden
            "failed_members": failed,
        }
    elif args.record:
        counts = [int(c) for c in args.record_calls.split(",")]
        best, failed = sweep(args, [(0, c) for c in counts])
        summary = {
            "bench": "media_record_max",
            "max_recorded_calls": best,
            "failed_calls": failed,  # as above: shown, not hidden
        }
    else:
        result = asyncio.run(run(args))
        sys.stdout.write(json.dumps(result) + "\n")
        return
    summary["max_loss_pct"] = args.max_loss_pct
    summary["max_jitter_p99_ms"] = args.max_jitter_ms
    summary["workers"] = args.workers
    sys.stdout.write(json.dumps(summary) + "\n")


def sweep(args: argparse.Namespace, steps: list[tuple[int, int]]) -> tuple[int, list[int]]:
    """One run per (conferences, size) step, each printed with ``ok`` (loss and jitter
    under the limits): the largest size that held, and the sizes that did not.  ``size``
    is the members mixed for a conference step, else the calls to set up."""
    best, failed = 0, []
    for conferences, size in steps:
        step = argparse.Namespace(**vars(args))
        if not conferences:
            step.calls = size
        result = asyncio.run(run(step, conferences))
        loss, jitter = result["loss_pct"], result["jitter_p99_ms"]
        assert isinstance(loss, float) and isinstance(jitter, float)
        result["ok"] = loss < args.max_loss_pct and 0 <= jitter < args.max_jitter_ms
        if result["ok"]:
            best = max(best, size)
        else:
            failed.append(size)
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return best, failed


if __name__ == "__main__":
    main()
