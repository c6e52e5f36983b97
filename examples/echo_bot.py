"""An example voice bot for audio streams (protocol §12, docs/voice-bots.md).

The service is the WebSocket client: a ``media.stream.start {mode: "duplex"}`` makes it
connect here, send a start frame, then 20 ms frames of PCM16 LE. This bot answers audio
with audio: ``--reply echo`` (the default) sends every frame of the caller's track
straight back, so the caller hears themself; ``--reply tone`` plays a tone at the
stream's rate instead, paced by the clock. After each second of audio it sends a mark
(``{"type":"mark","name":"second-N"}``): the RWI client gets ``media.stream.mark`` once
the caller has heard that second. A ``#`` from the caller's keypad (a ``dtmf`` text frame)
sends ``clear``, dropping whatever is still queued (barge-in).

Run it with the project's environment (it needs only ``websockets`` and ``numpy``)::

    .venv/bin/python examples/echo_bot.py --port 8765

then, on an answered call, ``media.stream.start {"call_id": ..., "url":
"ws://127.0.0.1:8765/echo", "mode": "duplex"}``. It listens on 127.0.0.1 unless told
otherwise; the service reaches only URLs under ``[media] stream_allowed_urls``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

FRAMES_PER_MARK = 50  # 50 x 20 ms = one second


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def caller_channel(frame: bytes, channels: int) -> bytes:
    """The caller's samples of a frame: ``both`` interleaves caller and peer, and what
    the bot sends back is always mono."""
    if channels == 1:
        return frame
    return np.frombuffer(frame, dtype="<i2")[0::channels].tobytes()


def tone(freq: float, rate: int, start: int, n: int) -> bytes:
    t = (np.arange(start, start + n)) / rate
    return (6000.0 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


class EchoBot:
    """One instance serves every stream the service opens; each connection is one
    stream of one call."""

    def __init__(self, reply: str, tone_hz: float) -> None:
        self.reply = reply
        self.tone_hz = tone_hz

    async def handle(self, ws: ServerConnection) -> None:
        try:
            start: dict[str, Any] = json.loads(await ws.recv())
        except (ConnectionClosed, ValueError):
            return
        if start.get("type") != "start":
            await ws.close(1002, "the first frame must be the start frame")
            return
        rate = int(start["sample_rate"])
        channels = 2 if start["tracks"] == "both" else 1
        log(f"stream {start['stream_id']} of call {start['call_id']}: {start}")
        speaker = None
        if self.reply == "tone":
            speaker = asyncio.get_running_loop().create_task(self.speak_tone(ws, rate))
        frames = 0
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    frames += 1
                    if self.reply == "echo":
                        await ws.send(caller_channel(message, channels))
                        if frames % FRAMES_PER_MARK == 0:
                            name = f"second-{frames // FRAMES_PER_MARK}"
                            await ws.send(json.dumps({"type": "mark", "name": name}))
                    continue
                control = json.loads(message)
                log(f"stream {start['stream_id']}: {control}")
                if control.get("type") == "dtmf" and control.get("digit") == "#":
                    await ws.send(json.dumps({"type": "clear"}))
                elif control.get("type") == "stop":
                    break
        except ConnectionClosed:
            pass
        finally:
            if speaker is not None:
                speaker.cancel()
        log(f"stream {start['stream_id']} ended after {frames} frames")

    async def speak_tone(self, ws: ServerConnection, rate: int) -> None:
        """A tone in 20 ms frames, paced by the loop's clock: sending faster would only
        fill the service's queue for the call (it plays at the call's pace)."""
        n = rate // 50
        loop = asyncio.get_running_loop()
        sent, next_at = 0, loop.time()
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.send(tone(self.tone_hz, rate, sent, n))
                sent += n
                if sent // n % FRAMES_PER_MARK == 0:
                    name = f"second-{sent // n // FRAMES_PER_MARK}"
                    await ws.send(json.dumps({"type": "mark", "name": name}))
                next_at += 0.02
                await asyncio.sleep(max(0.0, next_at - loop.time()))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--reply", choices=("echo", "tone"), default="echo")
    parser.add_argument("--tone-hz", type=float, default=1000.0)
    args = parser.parse_args()
    bot = EchoBot(args.reply, args.tone_hz)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serve(bot.handle, args.host, args.port, compression=None, max_queue=16):
        log(f"echo bot listening on ws://{args.host}:{args.port}/ ({args.reply})")
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
