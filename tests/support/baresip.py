"""A baresip process on loopback driven through its ctrl_tcp module (netstring JSON).

Options beyond the defaults (all optional, so existing callers are unchanged):
``tone_hz`` is the frequency of the looped file ``aufile`` sends, ``record`` loads
``sndfile`` so every call leaves ``snd/dump-<time>-enc.wav`` (what the phone said) and
``-dec.wav`` (what it heard), ``rtp_ports`` names the phone's RTP port range (by
default 20 ports reserved from ``tests.support.ports``: baresip binds them lazily),
``contacts`` (``"Name" <sip:...>`` lines) loads the ``contact`` module, whose
``contact_next`` and ``message <text>`` commands send a page-mode MESSAGE to the current
contact: the only MESSAGE baresip 1.0.0 sends (it has none within a call's dialog).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

from tests.support.ports import free_block, port_range
from tests.support.wav import write_tone_wav

MODULES = "/usr/lib/baresip/modules"


def sip_port() -> int:
    """A SIP port for a baresip phone: baresip also listens for SIP over TLS on the port
    above it, so both are reserved."""
    return free_block(2)


class Baresip:
    def __init__(
        self,
        home: Path,
        sip_port: int,
        ctrl_port: int,
        account: str,
        *,
        tone_hz: float = 440.0,
        record: bool = False,
        rtp_ports: str | None = None,
        contacts: tuple[str, ...] = (),
    ) -> None:
        self.home = home
        self.sip_port = sip_port
        self.ctrl_port = ctrl_port
        self.account = account
        self.tone_hz = tone_hz
        self.record = record
        if rtp_ports is None:
            low, high = port_range(20)
            rtp_ports = f"{low}-{high}"
        self.rtp_ports = rtp_ports
        self.contacts = contacts
        self.proc: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._responses: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._token = 0

    def write_config(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tone = self.home / "tone.wav"
        # long: aufile hangs up the call when its file ends
        write_tone_wav(tone, self.tone_hz, seconds=120, rate=8000)
        recording: list[str] = []
        if self.record:
            self.snd_path.mkdir(parents=True, exist_ok=True)
            recording = ["module sndfile.so", f"snd_path {self.snd_path}"]
        (self.home / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    f"sip_listen 127.0.0.1:{self.sip_port}",
                    "net_interface 127.0.0.1",
                    "sip_trans_def udp",
                    f"audio_source aufile,{tone}",
                    "audio_player aubridge,nil",
                    "audio_alert aubridge,nil",
                    f"rtp_ports {self.rtp_ports}",
                    f"module_path {MODULES}",
                    "module g711.so",
                    "module aufile.so",
                    "module aubridge.so",
                    *recording,
                    "module_app account.so",
                    "module_app menu.so",
                    *(["module_app contact.so"] if self.contacts else []),
                    "module_app ctrl_tcp.so",
                    f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
                    "",
                ]
            )
        )
        (self.home / "accounts").write_text(self.account + "\n")
        (self.home / "contacts").write_text("".join(f"{c}\n" for c in self.contacts))

    async def start(self) -> None:
        exe = shutil.which("baresip")
        assert exe, "baresip is not installed (apt-get install baresip)"
        self.write_config()
        self.proc = await asyncio.create_subprocess_exec(
            exe,
            "-f",
            str(self.home),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=(self.home / "stdout.log").open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port
                )
                break
            except OSError:
                if loop.time() > deadline or self.proc.returncode is not None:
                    raise AssertionError(f"baresip ctrl_tcp not up: {self.log()[-2000:]}") from None
                await asyncio.sleep(0.05)
        self._pump = asyncio.ensure_future(self._read_loop())

    @property
    def snd_path(self) -> Path:
        """Where ``sndfile`` writes its recordings (with ``record=True``)."""
        return self.home / "snd"

    def recordings(self, kind: str) -> list[Path]:
        """``sndfile``'s files of one kind, ``"enc"`` (said) or ``"dec"`` (heard), oldest
        first. Their names have one-second resolution: two calls of this phone in the
        same second share (and overwrite) one file."""
        return sorted(self.snd_path.glob(f"dump-*-{kind}.wav"))

    def log(self) -> str:
        path = self.home / "stdout.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def _read_loop(self) -> None:
        assert self._reader is not None
        reader = self._reader
        while True:
            try:
                length = await reader.readuntil(b":")
                payload = await reader.readexactly(int(length[:-1]))
                await reader.readexactly(1)  # trailing ','
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                return
            message = json.loads(payload)
            if message.get("response"):
                fut = self._responses.pop(str(message.get("token")), None)
                if fut is not None and not fut.done():
                    fut.set_result(message)
            else:
                self.events.append(message)
                self._changed.set()

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        assert self._writer is not None
        self._token += 1
        token = str(self._token)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[token] = fut
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        return await asyncio.wait_for(fut, 10)

    async def wait_event(self, kind: str, limit: float = 10) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            index = 0
            while True:
                for event in self.events[index:]:
                    if event.get("type") == kind:
                        return event
                index = len(self.events)
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), limit)
        except TimeoutError:
            raise AssertionError(
                f"baresip: no {kind}; events {self.events}; log {self.log()[-3000:]}"
            ) from None

    async def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 3)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
