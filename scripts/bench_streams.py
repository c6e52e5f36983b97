#!/usr/bin/env python3
"""Audio-stream benchmark: N answered calls, each streamed duplex at 8 kHz to a local
echo bot, the caller hearing itself back through the bot (contract §12).

Three processes, each with its own GIL: the phones (one UDP socket sending one stamped
20 ms PCMU frame per call every 20 ms), the media engine (this process, its stream
thread the WebSocket clients), and the bot (a ``websockets`` server on 127.0.0.1 that
sends every frame straight back, like ``examples/echo_bot.py``, made as cheap as such a
server goes: it shares the cores with the engine). Each frame carries
(call, sequence) as 16 G.711 symbols that survive decoding to PCM16, the bot and encoding
unchanged, so the phone reads back which frame it hears and when. Half-way through the
warm-up the bot sends one ``clear`` (see ``run``): what is measured is the steady state.

Reported (one JSON line): calls, frames_sent (stamped frames the phones sent in the
measured window), frames_heard (of those, the ones that came back), loss_pct,
bot_roundtrip_p50_ms/p99_ms (phone → engine → bot → engine → phone, send to kernel
receive time), the streams' own counts at the end (frames to the bots, from the bots,
dropped), cpu_pct of the engine process, of the bot and of the phones (100 = one core),
late/skipped ticks and tick_ms_avg, and playout_backlog_p50/max_frames: the bot's audio
queued ahead of playback per stream, sampled every 250 ms (1 = none waiting beyond the
next tick). The round trip moves in 20 ms steps with that backlog: a continuous echo
never drains what a stall (the bot's frame missing its tick) added, until the next
``clear``. A frame heard twice counts once, at its first arrival. Everything runs on
127.0.0.1.

``--sweep 100,150,200,250,300`` (``--sweep`` alone: those counts): one run per stream
count, each line with ``ok`` (loss_pct under ``--max-loss-pct``, default 0.1, and no
stream failed), then ``streams_max``: the highest count that was ok, its round trip
p50/p99, and the counts that were not (on a shared machine a smaller count can fail
too: shown, not hidden).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sip_media.media import api, g711
from sip_media.media.config import MediaConfig
from sip_media.media.service import InProcessMedia, start_media
from tests.support.ports import free_port, wide_range

SO_TIMESTAMPNS = 35  # Linux: kernel receive timestamp (CLOCK_REALTIME) as ancillary data
RTP = struct.Struct("!BBHII")
STAMP_BYTES = 8  # call u32, sequence u32 -> 16 nibbles


def symbols() -> tuple[np.ndarray, np.ndarray]:
    """16 PCMU codes that decode to PCM16 and encode back to themselves, loud enough to
    never be mistaken for silence, and the inverse table (255 = not a symbol)."""
    codes = [
        c
        for c in range(256)
        if abs(int(g711.ULAW_DECODE[c])) >= 1000
        and int(g711.encode(g711.PCMU, g711.ULAW_DECODE[c : c + 1].astype(np.int16))[0]) == c
    ][:16]
    inverse = np.full(256, 255, dtype=np.uint8)
    inverse[np.array(codes)] = np.arange(16)
    return np.array(codes, dtype=np.uint8), inverse


def payloads(n: int, seq: int, sym: np.ndarray) -> np.ndarray:
    """``n`` x 160 PCMU bytes: (call, seq) as 16 symbols, then a constant symbol."""
    raw = np.zeros((n, STAMP_BYTES), dtype=np.uint8)
    raw[:, 0:4] = np.arange(n, dtype=">u4").view(np.uint8).reshape(n, 4)
    raw[:, 4:8] = np.frombuffer(struct.pack("!I", seq), dtype=np.uint8)
    nibbles = np.stack([raw >> 4, raw & 15], axis=2).reshape(n, 2 * STAMP_BYTES)
    out = np.full((n, 160), sym[5], dtype=np.uint8)
    out[:, : 2 * STAMP_BYTES] = sym[nibbles]
    return out


def phones(conn: Connection, warmup: float, measure: float) -> None:
    """Send a stamped frame per call every 20 ms; read back which frames were heard.

    Cheap while it runs (it shares the cores with the engine): a packet received is only
    kept (its stamp bytes and kernel receive time), the stamps are decoded at the end."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, opt, 8 * 1024 * 1024)
    conn.send(sock.getsockname()[1])
    leg_ports: list[int] = conn.recv()
    n = len(leg_ports)
    sym, inverse = symbols()
    sent_at: dict[int, int] = {}  # sequence -> send time (ns, CLOCK_REALTIME)
    stamps: list[bytes] = []  # each packet's stamp symbols, as received
    stamped_at: list[bytes] = []  # its kernel receive time: struct timespec (s, ns)
    start = time.monotonic() + 0.05
    t_measure, t_end = start + warmup, start + warmup + measure
    t_stop = t_end + 1.0  # what is still on its way through the bot
    window: list[int] = []
    seq, next_send = 0, start
    recvmsg, sendto = sock.recvmsg, sock.sendto
    first, last = RTP.size, RTP.size + 2 * STAMP_BYTES
    while (now := time.monotonic()) < t_stop:
        if now >= next_send and now < t_end:
            body = payloads(n, seq, sym)
            sent_at[seq] = time.time_ns()
            for i, port in enumerate(leg_ports):
                header = RTP.pack(0x80, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, 1000 + i)
                sendto(header + body[i].tobytes(), ("127.0.0.1", port))
            if now >= t_measure:
                window.append(seq)
            seq += 1
            next_send += 0.02
        try:
            while True:
                data, anc, _, _ = recvmsg(2048, 64)
                if len(data) >= last and anc and anc[0][1] == SO_TIMESTAMPNS:
                    stamps.append(data[first:last])
                    stamped_at.append(anc[0][2][:16])
        except BlockingIOError:
            pass
        time.sleep(0.001)
    # (call, sequence) of every packet heard, decoded at once; silence and the start of a
    # stream before the echo carry no stamp
    codes = inverse[np.frombuffer(b"".join(stamps), np.uint8).reshape(-1, 2 * STAMP_BYTES)]
    stamped = (codes != 255).all(axis=1)
    nibbles = codes[stamped]
    raw = np.ascontiguousarray((nibbles[:, 0::2] << 4 | nibbles[:, 1::2]).astype(np.uint8))
    call_seq = raw.view(">u4").astype(np.int64)  # (m, 2)
    times = np.frombuffer(b"".join(stamped_at), "<i8").reshape(-1, 2)[stamped]
    t_recv = times[:, 0] * 10**9 + times[:, 1]
    calls, seqs = call_seq[:, 0], call_seq[:, 1]
    measured = np.isin(seqs, np.array(window, dtype=np.int64))
    keys = calls[measured] * (1 << 32) + seqs[measured]
    _, once = np.unique(keys, return_index=True)  # a frame heard twice counts once: first
    seq_sent = np.array([sent_at.get(int(s), 0) for s in range(seq)], dtype=np.int64)
    heard_seqs = seqs[measured][once]
    delays = (t_recv[measured][once] - seq_sent[heard_seqs]).astype(np.float64) / 1e6
    conn.send((n * len(window), len(once), delays))


def bot(conn: Connection, port: int) -> None:
    """The echo bot: every binary frame straight back, as cheaply as a ``websockets``
    server goes (it shares the machine with the engine): uvloop, and the frame answered
    in the connection's read callback (``EchoConnection``) instead of through a
    per-message ``recv``/``send`` round in a handler task."""
    import uvloop
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed
    from websockets.frames import Frame, Opcode
    from websockets.protocol import Event, State

    connections: set[ServerConnection] = set()

    class EchoConnection(ServerConnection):
        def process_event(self, event: Event) -> None:
            if isinstance(event, Frame) and event.opcode is Opcode.BINARY and event.fin:
                if self.protocol.state is State.OPEN:
                    self.protocol.send_binary(event.data)
                    self.send_data()
            else:
                super().process_event(event)  # text (start, stop), fragments, control

    async def echo(ws: ServerConnection) -> None:
        connections.add(ws)
        try:
            async for _text in ws:  # binary frames never get here
                pass
        except ConnectionClosed:
            pass
        finally:
            connections.discard(ws)

    async def serve_until_stopped() -> None:
        loop = asyncio.get_running_loop()
        async with serve(
            echo, "127.0.0.1", port, compression=None, max_queue=16,
            create_connection=EchoConnection,
        ):  # fmt: skip
            conn.send("ready")
            while await loop.run_in_executor(None, conn.recv) == "clear":
                for ws in list(connections):
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send(json.dumps({"type": "clear"}))

    uvloop.run(serve_until_stopped())


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="bench_streams_"))
    size = 4 * args.calls + 100
    port_min, port_max = wide_range(size)
    observed: list[api.Observation] = []
    changed = asyncio.Event()

    def on_observation(obs: api.Observation) -> None:
        observed.append(obs)
        changed.set()

    def count(kind: type) -> int:
        return sum(isinstance(o, kind) for o in observed)

    async def until(done: Callable[[], bool]) -> None:
        async with asyncio.timeout(30):
            while not done():
                changed.clear()
                await changed.wait()

    config = MediaConfig(
        sounds_dir=tmp / "sounds",
        recordings_dir=tmp / "rec",
        port_min=port_min,
        port_max=port_max,
        rtp_timeout_s=0,
    )
    ctx = multiprocessing.get_context("spawn")
    bot_port = free_port()
    bot_conn, bot_child = ctx.Pipe()
    bot_proc = ctx.Process(target=bot, args=(bot_child, bot_port))
    bot_proc.start()
    phone_conn, phone_child = ctx.Pipe()
    phone_proc = ctx.Process(target=phones, args=(phone_child, args.warmup, args.measure))
    phone_proc.start()
    phone_port: int = phone_conn.recv()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, bot_conn.recv)
    service = await start_media(config, on_observation)
    assert isinstance(service, InProcessMedia)
    leg_ports = []
    for i in range(args.calls):
        created = await service.execute(api.CreateLeg(f"l{i}", "127.0.0.1", phone_port, 0))
        assert isinstance(created, api.LegCreated)
        leg_ports.append(created.local_port)
        url = f"ws://127.0.0.1:{bot_port}/echo"
        await service.execute(api.StartAudioStream(f"s{i}", f"l{i}", url, duplex=True))

    await until(lambda: count(api.StreamStarted) + count(api.StreamStopped) >= args.calls)
    phone_conn.send(leg_ports)
    # Playout runs at the call's pace, so a backlog the start-up left (200 streams
    # connecting, the first ticks late) would stay in every call's queue for good: the
    # bot clears once, half-way through the warm-up, as a bot does on barge-in.
    await asyncio.sleep(0.05 + args.warmup / 2)
    bot_conn.send("clear")
    await asyncio.sleep(args.warmup / 2)
    assert bot_proc.pid is not None
    assert phone_proc.pid is not None
    pids = (os.getpid(), bot_proc.pid, phone_proc.pid)
    cpu0, t0 = [proc_cpu(p) for p in pids], time.monotonic()
    backlog: list[int] = []  # the bot's audio queued ahead of playback, per stream
    while (left := t0 + args.measure - time.monotonic()) > 0:
        backlog.extend(len(tap.to_call) for tap in service.engine.streams.values())
        await asyncio.sleep(min(0.25, left))
    cpu1, t1 = [proc_cpu(p) for p in pids], time.monotonic()
    if not await loop.run_in_executor(None, phone_conn.poll, args.measure + 30):
        raise SystemExit("the phones did not report")
    sent, heard, delays = phone_conn.recv()
    for i in range(args.calls):
        await service.execute(api.StopAudioStream(f"s{i}"))
    await until(lambda: count(api.StreamStopped) >= args.calls)
    stats = dict(service.engine.stats)
    await service.close()
    bot_conn.send("stop")
    bot_proc.join(5)
    phone_proc.join(5)
    stopped = [o for o in observed if isinstance(o, api.StreamStopped)]
    result: dict[str, object] = {
        "bench": "streams",
        "calls": args.calls,
        "sample_rate": 8000,
        "frames_sent": sent,
        "frames_heard": heard,
        "loss_pct": round(100.0 * (sent - heard) / sent, 3) if sent else 0.0,
        "bot_roundtrip_p50_ms": round(float(np.percentile(delays, 50)), 1) if heard else None,
        "bot_roundtrip_p99_ms": round(float(np.percentile(delays, 99)), 1) if heard else None,
        "stream_frames_to_bot": sum(o.frames_sent for o in stopped),
        "stream_frames_from_bot": sum(o.frames_received for o in stopped),
        "stream_frames_dropped": sum(o.frames_dropped for o in stopped),
        "streams_failed": sum(o.reason != "rwi" for o in stopped),
        "cpu_pct": round(100.0 * (cpu1[0] - cpu0[0]) / (t1 - t0), 1),
        "bot_cpu_pct": round(100.0 * (cpu1[1] - cpu0[1]) / (t1 - t0), 1),
        "phones_cpu_pct": round(100.0 * (cpu1[2] - cpu0[2]) / (t1 - t0), 1),
        "cores": os.cpu_count() or 0,
    }
    for key in ("late_ticks", "skipped_ticks", "ticks"):
        if key in stats:
            result[key] = stats[key]
    if stats.get("ticks"):
        result["tick_ms_avg"] = round(stats["tick_ns"] / stats["ticks"] / 1e6, 2)
    if backlog:
        result["playout_backlog_p50_frames"] = float(np.percentile(backlog, 50))
        result["playout_backlog_max_frames"] = max(backlog)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--measure", type=float, default=10.0)
    parser.add_argument(
        "--sweep",
        nargs="?",
        const="100,150,200,250,300",
        help="stream counts, one run each: the highest with loss under --max-loss-pct",
    )
    parser.add_argument("--max-loss-pct", type=float, default=0.1)
    args = parser.parse_args()
    if args.sweep is None:
        print(json.dumps(asyncio.run(run(args))), flush=True)
        return
    best: dict[str, object] | None = None
    failed: list[int] = []
    for calls in [int(c) for c in args.sweep.split(",")]:
        step = argparse.Namespace(**vars(args))
        step.calls = calls
        result = asyncio.run(run(step))
        loss = result["loss_pct"]
        assert isinstance(loss, float)
        result["ok"] = loss < args.max_loss_pct and result["streams_failed"] == 0
        if result["ok"] and (best is None or calls > int(str(best["calls"]))):
            best = result
        elif not result["ok"]:
            failed.append(calls)
        print(json.dumps(result), flush=True)
    summary = {
        "bench": "streams_max",
        "max_streams": best["calls"] if best else 0,
        "bot_roundtrip_p50_ms": best["bot_roundtrip_p50_ms"] if best else None,
        "bot_roundtrip_p99_ms": best["bot_roundtrip_p99_ms"] if best else None,
        "failed_streams": failed,
        "max_loss_pct": args.max_loss_pct,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
