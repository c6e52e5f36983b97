"""One stream's WebSocket client: the wire side of contract §12.

Where it sits: run by :class:`~.stream_hub.StreamHub` on its thread, one coroutine per
stream, between the stream's :class:`~.stream_tap.StreamTap` and the bot. It connects
(no proxy, no redirects: only the allow-listed URL is ever reached), sends the start
frame, then the clock's 20 ms frames as little-endian PCM16 (``both``: two interleaved
channels, caller first) and DTMF as text; it queues the bot's binary audio for playback
(duplex) and answers ``mark`` and ``clear``; at the end it sends ``{"type":"stop"}``
and closes. 16 kHz streams are resampled both ways with libsamplerate (the
``samplerate`` package), whose streaming converter keeps state across 20 ms frames.

The audio path is the hot one (a frame each way per stream every 20 ms), so it skips
websockets' per-message machinery while keeping its connection for the handshake,
pings and the close: the hub's one wake per tick writes every stream's frames at once
(:meth:`StreamClient.flush`, framed here, no await per frame), and the bot's frames
are handled in the read callback as they are parsed (:class:`_Connection`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import samplerate
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

from . import api
from .stream_tap import F32, FRAME, StreamTap

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

log = logging.getLogger(__name__)
Report = Callable[[api.Observation], None]
#: libsamplerate's medium sinc converter: ~6 ms of delay, far above telephone quality
CONVERTER = "sinc_medium"
#: largest frame accepted from a bot (1 MiB: ~30 s of 16 kHz audio)
MAX_MESSAGE = 1 << 20
#: what may wait in the kernel and in the connection for a slow bot (each ~1 s of audio at
#: 16 kHz, two tracks): beyond it the tap's own bounded queue fills and frames are dropped,
#: instead of seconds of stale audio piling up in socket buffers
SEND_BUFFER = 32 * 1024
WRITE_LIMIT = 32 * 1024


_HEAD_SHORT = struct.Struct("!BB")
_HEAD_MEDIUM = struct.Struct("!BBH")
_HEAD_LONG = struct.Struct("!BBQ")


class MaskKeys:
    """Client masking keys (RFC 6455 §5.3: from a strong source of entropy), drawn from
    the OS a page at a time: one ``getrandom`` per 1024 frames, not one per frame (a
    system call each, which also hands the GIL to the media clock and back)."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def take(self) -> bytes:
        if self._at >= len(self._pool):
            self._pool = os.urandom(4096)
            self._at = 0
        key = self._pool[self._at : self._at + 4]
        self._at += 4
        return key


def wire_frame(opcode: Opcode, payload: bytes, key: bytes) -> bytes:
    """One whole (FIN), masked client frame, as websockets would serialize it."""
    n = len(payload)
    if n < 126:
        head = _HEAD_SHORT.pack(0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = _HEAD_MEDIUM.pack(0x80 | opcode, 0x80 | 126, n)
    else:
        head = _HEAD_LONG.pack(0x80 | opcode, 0x80 | 127, n)
    return head + key + apply_mask(payload, key)


class _Connection(ClientConnection):
    """A connection that hands each data frame to :attr:`on_frame` as it is parsed, in
    the read callback: no message queue, no task switch per frame. Frames that come
    before :attr:`on_frame` is set (in the read that completed the handshake) wait in
    :attr:`early` for the client to take them first."""

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self.on_frame: Callable[[Frame], None] | None = None
        self.early: list[Frame] = []

    def process_event(self, event: Event) -> None:
        if self.response is None or not isinstance(event, Frame) or event.opcode > Opcode.BINARY:
            super().process_event(event)  # the handshake; ping, pong and close frames
        elif self.on_frame is None:
            self.early.append(event)
        else:
            self.on_frame(event)


class _NoRedirect(connect):
    """``connect`` that follows no redirect: the bot may not send us elsewhere."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class Resampled:
    """PCM16 (little-endian, channels interleaved) cut into exact frames of ``size``
    samples, resampled on the way if needed. At 8 kHz a whole frame passes as it is.

    The converter holds back its filter's delay (~6 ms at 16 -> 8 kHz): :meth:`flush`
    gets it out (the audio before a mark is then all in frames), :meth:`drop` forgets it
    (a clear), and the converter starts afresh after either."""

    def __init__(self, ratio: float, channels: int, size: int) -> None:
        self.ratio = ratio
        self.channels = channels
        self.frame_bytes = size * channels * 2
        self._group = channels * 2  # the bytes of one sample on every channel
        self._resampler = (
            samplerate.Resampler(CONVERTER, channels=channels) if ratio != 1.0 else None
        )
        self._odd = b""  # before the resampler: bytes short of a whole sample
        self._pending = b""
        self._held = 0.0  # what the converter holds back, in output samples

    def push(self, data: bytes) -> list[bytes]:
        """Returns the whole frames now complete."""
        if self._resampler is not None:
            data = self._resample(data)
        size = self.frame_bytes
        if not self._pending and len(data) == size:
            return [data]
        buf = self._pending + data
        whole = len(buf) // size
        self._pending = buf[whole * size :]
        return [buf[i * size : (i + 1) * size] for i in range(whole)]

    def flush(self) -> list[bytes]:
        """Everything pushed and not yet out, the converter's tail included, as whole
        frames (the last one padded with silence): before a mark, so that the mark
        follows all of the audio before it. A trailing part of a sample stays for the
        data that completes it."""
        pending = self._pending + self._tail()
        cut = len(pending) - len(pending) % self._group
        self._pending = pending[cut:]
        if not cut:
            return []
        size = self.frame_bytes
        buf = pending[:cut] + bytes(-cut % size)
        return [buf[i : i + size] for i in range(0, len(buf), size)]

    def drop(self) -> None:
        """Forget everything pushed and not yet out (a clear: none of it is played)."""
        self._pending = self._odd = b""
        self._restart()

    def _resample(self, data: bytes) -> bytes:
        assert self._resampler is not None
        data = self._odd + data
        cut = len(data) - len(data) % self._group
        self._odd = data[cut:]
        samples = np.frombuffer(data, dtype="<i2", count=cut // 2).astype(np.float32)
        rows = samples.reshape(-1, self.channels)
        out = np.asarray(
            self._resampler.process(rows, self.ratio, end_of_input=False), dtype=np.float32
        )
        out = out.reshape(-1, self.channels)
        self._held += len(rows) * self.ratio - len(out)
        return pcm16(out)

    def _tail(self) -> bytes:
        """What the converter holds back, pushed out by as much silence as it takes."""
        held = round(self._held)
        if self._resampler is None or held <= 0:
            self._restart()
            return b""
        silence = np.zeros((int(np.ceil(held / self.ratio)) + 2, self.channels), np.float32)
        out = self._resampler.process(silence, self.ratio, end_of_input=False)
        self._restart()
        return pcm16(np.asarray(out, dtype=np.float32).reshape(-1, self.channels)[:held])

    def _restart(self) -> None:
        if self._resampler is not None:
            self._resampler.reset()
        self._held = 0.0


def pcm16(rows: F32) -> bytes:
    """Samples in the engine's int16 scale as PCM16 LE (rows: interleaved channels)."""
    return np.clip(rows, -32768, 32767).astype("<i2").tobytes()


class StreamClient:
    """The connection of one stream; :meth:`run` returns when it has ended."""

    def __init__(
        self,
        tap: StreamTap,
        report: Report,
        connect_timeout: float,
        close_timeout: float = 2.0,
        keys: MaskKeys | None = None,
    ) -> None:
        self.tap = tap
        self.report = report
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.keys = keys or MaskKeys()
        self.stopped = asyncio.Event()
        rate = tap.sample_rate / 8000
        self._to_bot = Resampled(rate, tap.channels, int(FRAME * rate))
        self._to_call = Resampled(1 / rate, 1, FRAME)
        self._ws: _Connection | None = None
        self._fragments: list[bytes] = []  # a fragmented message so far
        self._fragmented: Opcode = Opcode.BINARY
        self._error: str | None = None
        self._remote_closed = False

    async def run(self) -> None:
        tap = self.tap
        try:
            ws = await self._connect()
        except Exception as exc:
            self._end("failed", f"cannot connect: {exc}")
            return
        except asyncio.CancelledError:  # stopped while connecting
            self._end(tap.stopping or "rwi", None)
            return
        reason = "failed"
        tasks: list[asyncio.Task[Any]] = []
        try:
            ws.on_frame = self._frame
            for frame in ws.early:
                self._frame(frame)
            ws.early.clear()
            await ws.send(json.dumps({"type": "start", **tap.start}))
            self._ws = ws
            tap.open = True
            self.report(api.StreamStarted(tap.stream_id, tap.leg_id))
            receiver = asyncio.create_task(self._receive(ws))
            stop = asyncio.create_task(self.stopped.wait())
            tasks = [receiver, stop]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            reason = "remote_closed" if self._remote_closed else "failed"
        except ConnectionClosed:
            reason = "remote_closed"
        except Exception as exc:
            log.info("stream %s failed: %s", tap.stream_id, exc)
            self._error = str(exc)
        finally:
            tap.open = False
            self._ws = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._close(ws)
            self._end(tap.stopping or reason, self._error)

    def stop(self) -> None:
        """End the stream now, even in the middle of a send to a stalled bot."""
        self.stopped.set()

    def flush(self) -> None:
        """Write what the clock queued for the bot, at once and without waiting (the
        hub calls this once per tick for every stream with frames queued).

        A bot that does not read leaves up to ``WRITE_LIMIT`` bytes (plus one tick's
        frames) in the connection's buffer: beyond it frames stay in the tap, whose
        bounded queue then drops and counts them, as it would for any slow consumer.
        """
        ws = self._ws
        if ws is None:
            return
        try:
            transport = ws.transport
            if ws.protocol.state is not State.OPEN or transport.is_closing():
                return
            if transport.get_write_buffer_size() >= WRITE_LIMIT:
                return
            tap, keys = self.tap, self.keys
            queue = tap.to_bot
            out: list[bytes] = []
            while queue and tap.stopping is None:
                item = queue.popleft()
                if isinstance(item, str):
                    out.append(wire_frame(Opcode.TEXT, item.encode(), keys.take()))
                    continue
                for frame in self._to_bot.push(item):
                    out.append(wire_frame(Opcode.BINARY, frame, keys.take()))
                    tap.frames_sent += 1
            if out:
                transport.write(b"".join(out))
        except Exception as exc:  # a bug here must end this stream, not the others
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        log.info("stream %s failed: %s", self.tap.stream_id, exc)
        if self._error is None:
            self._error = str(exc)
        self.stopped.set()

    async def _connect(self) -> _Connection:
        ws = await _NoRedirect(
            self.tap.url,
            proxy=None,
            open_timeout=self.connect_timeout,
            close_timeout=self.close_timeout,
            compression=None,
            max_size=MAX_MESSAGE,
            write_limit=WRITE_LIMIT,
            user_agent_header="rwi-media-stream",
            create_connection=_Connection,
        )
        assert isinstance(ws, _Connection)
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        return ws

    async def _receive(self, ws: ClientConnection) -> None:
        """The frames are handled as they arrive (:meth:`_frame`): this only waits for
        the connection to end."""
        await ws.wait_closed()
        self._remote_closed = True

    def _frame(self, frame: Frame) -> None:
        """A data frame from the bot, in the connection's read callback."""
        try:
            opcode, data = frame.opcode, frame.data
            if opcode is Opcode.CONT or not frame.fin:
                # the protocol checked the order and the message's size (max_size)
                if opcode is not Opcode.CONT:
                    self._fragmented = opcode
                self._fragments.append(bytes(data))
                if not frame.fin:
                    return
                opcode, data = self._fragmented, b"".join(self._fragments)
                self._fragments = []
            if opcode is Opcode.BINARY:
                self.tap.frames_received += 1
                if self.tap.duplex:
                    self._audio(bytes(data))
            else:
                self._control(bytes(data))
        except Exception as exc:  # a bug here must end this stream, not the others
            self._fail(exc)

    def _audio(self, data: bytes) -> None:
        for frame in self._to_call.push(data):
            self.tap.play(frame)

    def _control(self, text: bytes) -> None:
        try:
            message: Any = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        tap = self.tap
        match message.get("type"):
            case "mark" if tap.duplex:
                name = message.get("name")
                for frame in self._to_call.flush():
                    tap.play(frame)
                tap.mark(str(name)[:256] if name is not None else "")
            case "clear" if tap.duplex:
                self._to_call.drop()
                for name in tap.clear():
                    self.report(api.StreamMark(tap.stream_id, tap.leg_id, name))

    async def _close(self, ws: ClientConnection) -> None:
        """The last frame and the closing handshake; a bot that does not take them within
        ``close_timeout`` has its connection aborted."""
        try:
            async with asyncio.timeout(self.close_timeout):
                await ws.send(json.dumps({"type": "stop"}))
                await ws.close()
        except (TimeoutError, ConnectionClosed, OSError):
            ws.transport.abort()

    def _end(self, reason: str, error: str | None) -> None:
        tap = self.tap
        self.report(
            api.StreamStopped(
                tap.stream_id,
                tap.leg_id,
                reason,
                tap.frames_sent,
                tap.frames_received,
                tap.frames_dropped,
                error,
            )
        )
