"""The kit of the crash and outage drills (``scripts/chaos_kill.py``, ``chaos_db.py``,
``soak.py``) and of their end-to-end tests: the real ``rwi serve`` as a user starts it,
SIPp peers answering its calls, an RWI client that keeps originating through crashes
and outages and remembers every reply, and the figures read back from the event log.

Everything runs on loopback. A drill owns every process it starts and ends each one by
its own handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import websockets

from rwi.store.database import asyncpg_dsn
from tests.support.databases import with_database
from tests.support.ports import free_block, free_port, wide_range
from tests.support.serve import ROOT, start_serve

TOKEN = "drill-token"
SIPP_COMMON = ["-i", "127.0.0.1", "-bind_local", "-mi", "127.0.0.1", "-ci", "127.0.0.1", "-nostdin"]

#: A UAS that answers at once (SDP names ``{sdp_port}``) and waits for the BYE. Unlike
#: SIPp's built-in ``uas`` it has no time-wait after the BYE, so its current-call count
#: is exactly the dialogs nobody ended.
UAS_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="drill uas">
  <recv request="INVITE" crlf="true"/>
  <send retrans="500">
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]drill[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=sipp 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio {sdp_port} RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=sendrecv
]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]>
  </send>
</scenario>
"""


# ------------------------------------------------------------------------------ SIPp
class SippUas:
    """A SIPp UAS taking any number of calls, with its statistics in a CSV file every
    second (``current_calls`` reads the newest row)."""

    def __init__(self, workdir: Path, *, sdp_port: int | None = None, name: str = "") -> None:
        base = free_block(6)
        self.sip_port, self.media_port = base, base + 2
        self.name = name or f"uas_{base}"
        self.workdir = workdir
        self.scenario = workdir / f"{self.name}.xml"
        sdp = sdp_port if sdp_port is not None else self.media_port
        self.scenario.write_text(UAS_SCENARIO.replace("{sdp_port}", str(sdp)))
        self.stats = workdir / f"{self.name}_stats.csv"
        self.messages = workdir / f"{self.name}_messages.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, *, trace: bool = False) -> None:
        """``trace``: keep every SIP message in ``messages`` (for ``offered_rtp``)."""
        binary = shutil.which("sipp")
        if binary is None:
            raise RuntimeError("sipp is not installed (apt-get install sip-tester)")
        self.proc = await asyncio.create_subprocess_exec(
            binary, "-sf", str(self.scenario), *SIPP_COMMON,
            "-p", str(self.sip_port), "-mp", str(self.media_port),
            "-cp", str(free_block(2)), "-trace_stat", "-stf", str(self.stats), "-fd", "1",
            *(["-trace_msg", "-message_file", str(self.messages)] if trace else []),
            cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip

    def offered_rtp(self) -> tuple[str, int]:
        """Where the caller's SDP offer (in the traced INVITE) wants RTP sent."""
        text = self.messages.read_text(errors="replace")
        match = re.search(r"^m=audio (\d+) ", text, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"{self.name}: no SDP offer traced yet")
        return "127.0.0.1", int(match.group(1))

    def _rows(self) -> list[dict[str, str]]:
        if not self.stats.exists():
            return []
        text = self.stats.read_text(errors="replace")
        # Only whole rows: SIPp may be writing the last one as we read.
        lines = text[: text.rfind("\n") + 1].splitlines()
        if len(lines) < 2:
            return []
        header = lines[0].split(";")
        rows = [line.split(";") for line in lines[1:]]
        return [dict(zip(header, row, strict=True)) for row in rows if len(row) == len(header)]

    async def counters(self, limit: float = 10.0) -> dict[str, int]:
        """The statistics of a row SIPp writes from now on (not an older one):
        ``current`` calls (dialogs up), ``ok`` and ``failed`` calls so far."""
        seen = len(self._rows())
        async with asyncio.timeout(limit):
            while True:  # SIPp writes a row a second, to a file: nothing to wait on
                rows = self._rows()
                if len(rows) > seen:
                    break
                await asyncio.sleep(0.1)
        last = rows[-1]
        return {
            "current": int(last["CurrentCall"]),
            "ok": int(last["SuccessfulCall(C)"]),
            "failed": int(last["FailedCall(C)"]),
        }

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


# ---------------------------------------------------------------------- the service
@dataclass
class DrillService:
    """``rwi serve`` on its own process, configured for drills: a SIP trunk to one SIPp
    UAS (``trunk_port``, changeable between starts), local users, no rate limits."""

    workdir: Path
    database_url: str
    trunk_port: int
    users: dict[str, int] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    sip_port: int = field(default_factory=free_port)
    #: 2000 media ports of their own: a drill runs longer than one test's port slice lasts
    media_base: int = field(default_factory=lambda: wide_range(2000)[0])
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def config(self) -> Path:
        return self.workdir / "rwi.toml"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rwi/v1"

    def write_config(self) -> None:
        users = "".join(
            f'[[sip.users]]\nname = "{name}"\ncontact = "sip:{name}@127.0.0.1:{p}"\n'
            for name, p in self.users.items()
        )
        self.config.write_text(
            f'[rwi]\nlisten = "127.0.0.1:{self.port}"\ncommand_rate_limit = 100000\n'
            f"originate_rate_limit = 100000\nmax_calls_per_connection = 100000\n"
            f'[[rwi.tokens]]\nname = "drill"\ntoken = "{TOKEN}"\nscopes = ["call.control"]\n'
            f'[database]\nurl = "{self.database_url}"\n[log]\nlevel = "WARNING"\n'
            f'[storage]\ndata_dir = "{self.workdir / "data"}"\n'
            f'[sip]\nlisten = ["udp:127.0.0.1:{self.sip_port}"]\n'
            'allowed_destinations = ["127.0.0.0/8"]\n'
            f"authenticate_invites = false\nmax_transactions_per_source = 0\n{users}"
            f'[[sip.trunks]]\nname = "trunk"\nproxy = "127.0.0.1:{self.trunk_port}"\n'
            f"[media]\nport_min = {self.media_base}\nport_max = {self.media_base + 1999}\n"
        )

    async def start(self) -> None:
        self.write_config()
        log = (self.workdir / f"serve-{self.starts}.log").open("wb")
        env = {k: v for k, v in os.environ.items() if k != "RWI_DATABASE_URL"}
        self.proc, _ = await start_serve(self.config, stderr=log.fileno(), env=env)
        log.close()
        self.starts += 1

    async def kill(self) -> None:
        """SIGKILL: no BYE, no flush, nothing leaves the dying process."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self, limit: float = 30.0) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), limit)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    async def readyz(self) -> int:
        """HTTP status of ``GET /readyz`` (0 when nothing answers)."""
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return 0
        try:
            writer.write(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 10)
            return int(status.split()[1])
        except (OSError, TimeoutError, IndexError, ValueError):
            return 0
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def verify(self) -> dict[str, Any]:
        """``rwi verify`` run as a user runs it: its exit code and last line."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rwi", "--config", str(self.config), "verify",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 300)
        lines = out.decode(errors="replace").strip().splitlines()
        return {"ok": proc.returncode == 0, "rc": proc.returncode, "said": lines[-1:] or [""]}


def process_figures(pid: int) -> dict[str, int]:
    """Resident memory (KiB) and open file descriptors of a live process."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


# ------------------------------------------------------------------------- databases
@asynccontextmanager
async def scratch_database(server_url: str, prefix: str = "rwi_drill") -> AsyncIterator[str]:
    """A new database on the server of ``server_url`` for one drill; dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(server_url, name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class PrivatePostgres:
    """A PostgreSQL of the drill's own (the ``pgserver`` package's binaries, data in
    ``directory``), which the drill may stop and start at will: never the shared one."""

    def __init__(self, directory: Path) -> None:
        import pgserver  # the embedded mode's package: only this drill needs it here

        self.directory = directory
        self._server = pgserver.get_server(directory, cleanup_mode="stop")
        self.url: str = self._server.get_uri()

    def _pg_ctl(self, *args: str) -> None:
        from pgserver import _commands

        _commands.pg_ctl(["-w", *args], pgdata=self.directory, user=self._server.system_user)

    def stop(self, mode: str = "fast") -> None:
        """Down, every connection cut (``fast``: a clean shutdown; ``immediate``: as if
        the server crashed, recovery on the next start)."""
        self._pg_ctl("-m", mode, "stop")

    def start(self) -> None:
        # ``restart`` on a stopped server starts it with the options it last ran with.
        self._pg_ctl("-l", str(self.directory / "log"), "restart")

    def close(self) -> None:
        self._server.cleanup()


@contextmanager
def private_postgres(directory: Path) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(directory)
    try:
        yield server
    finally:
        server.close()


async def logged_commands(database_url: str) -> dict[str, str]:
    """action_id -> outcome (``success``/``error``) of every command in the log."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT data->>'action_id' AS action_id, data->'outcome'->>'response' AS outcome "
            "FROM events WHERE type = 'rwi.command'"
        )
    finally:
        await conn.close()
    return {r["action_id"]: r["outcome"] for r in rows}


async def events_in_log(database_url: str) -> dict[str, int]:
    """Events in the log (rows), its head as ``event_head`` says (equal: no gap), and
    the rows PostgreSQL's statistics count as ever inserted into it (equal to the rows:
    nothing written was lost; read after the writer's connection has closed, since a
    backend reports its counts when it ends)."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = int(await conn.fetchval("SELECT count(*) FROM events"))
        head = int(await conn.fetchval("SELECT last_seq FROM event_head WHERE id = 1"))
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        inserted = int(
            await conn.fetchval(
                "SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'events'"
            )
        )
    finally:
        await conn.close()
    return {"rows": rows, "head": head, "inserted": inserted}


# ------------------------------------------------------------------------- the client
@dataclass
class Reply:
    action: str
    response: str  # "success", "error", or "none": the connection went before a reply
    sent_at: float
    at: float
    code: str = ""


class CallLoad:
    """An RWI application under drill: originates calls at ``rate`` (one leg to the
    trunk each), hangs each up after ``hold`` seconds (retrying while refused), and
    reconnects whenever the service goes away. Every command and its reply is kept in
    ``replies`` by action_id: the ledger a drill checks against the log."""

    def __init__(self, url: str, rate: float, hold: float, destination: str = "trunk") -> None:
        self.url = url
        self.rate = rate
        self.hold = hold
        self.destination = destination
        self.replies: dict[str, Reply] = {}
        self.not_sent = 0  # ticks that found no connection (the service was down)
        self.answered = 0
        self.hung_up = 0
        #: answered calls whose connection went before their hangup: a crash cut them
        self.cut = 0
        #: connections made so far (the current one is the last)
        self.connections = 0
        #: seq -> type of every event pushed to this client: each was durable first
        self.pushed: dict[int, str] = {}
        self._ws: Any = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._connected = asyncio.Event()
        self._link: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._run_id = uuid.uuid4().hex[:6]

    async def __aenter__(self) -> CallLoad:
        self._link = asyncio.create_task(self._keep_connected())
        async with asyncio.timeout(30):
            await self._connected.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._calls):
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)
        if self._link is not None:
            self._link.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._link
        if self._ws is not None:
            await self._ws.close()

    async def _keep_connected(self) -> None:
        while True:
            try:
                ws = await websockets.connect(
                    self.url, additional_headers={"Authorization": f"Bearer {TOKEN}"}
                )
            except (OSError, websockets.WebSocketException, TimeoutError):
                await asyncio.sleep(0.1)  # the service is restarting: try again soon
                continue
            self._ws = ws
            self.connections += 1
            self._connected.set()
            try:
                async for text in ws:
                    frame = json.loads(text)
                    if "seq" in frame:
                        self.pushed[frame["seq"]] = frame["event"]
                    key = frame.get("action_id") or f"{frame.get('event')}:{frame.get('call_id')}"
                    future = self._waiting.pop(key, None)
                    if future is not None and not future.done():
                        future.set_result(frame)
            except websockets.WebSocketException:
                pass
            self._connected.clear()
            self._ws = None
            for future in self._waiting.values():  # nothing more arrives on that connection
                if not future.done():
                    future.set_exception(ConnectionError("connection lost"))
            self._waiting.clear()

    def _expect(self, key: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        return future

    def expect_event(self, event: str, call_id: str) -> asyncio.Future[dict[str, Any]]:
        """The next ``event`` of ``call_id`` on this connection (ask before causing it)."""
        return self._expect(f"{event}:{call_id}")

    async def command(self, action: str, params: dict[str, Any], limit: float = 30.0) -> Reply:
        ws = self._ws
        if ws is None:
            raise ConnectionError("not connected")
        action_id = uuid.uuid4().hex[:16]
        future = self._expect(action_id)
        sent_at = time.monotonic()
        reply = Reply(action, "none", sent_at, sent_at)
        self.replies[action_id] = reply
        try:
            await ws.send(json.dumps({"action": action, "action_id": action_id, "params": params}))
            frame = await asyncio.wait_for(future, limit)
        except (ConnectionError, websockets.WebSocketException, TimeoutError):
            self._waiting.pop(action_id, None)
            return reply
        reply.at = time.monotonic()
        reply.response = frame["response"]
        reply.code = frame.get("error", {}).get("code", "")
        return reply

    async def call(self, n: int) -> None:
        """One call: originate, wait for the answer, hold, hang up (retried while the
        store is unavailable, for as long as the connection that owns the call lasts)."""
        call_id = f"d{self._run_id}_{n}"
        connection = self.connections
        answered = self._expect(f"call.answered:{call_id}")
        try:
            reply = await self.command(
                "call.originate", {"call_id": call_id, "destination": f"sip:{n}@{self.destination}"}
            )
            if reply.response != "success":
                return
            await asyncio.wait_for(answered, 15)
            self.answered += 1
            await asyncio.sleep(self.hold)
            for _ in range(60):
                if self.connections != connection:
                    raise ConnectionError("the owner went with the crash")
                reply = await self.command("call.hangup", {"call_id": call_id})
                if reply.response == "success":
                    self.hung_up += 1
                    return
                if reply.response == "none":
                    raise ConnectionError("the owner went with the crash")
                if reply.code != "internal_error":
                    return
                await asyncio.sleep(0.5)
        except ConnectionError:
            if answered.done() and not answered.exception():
                self.cut += 1  # answered, then cut: the restart must end its dialog
        except TimeoutError:
            return
        finally:
            self._waiting.pop(f"call.answered:{call_id}", None)
            if answered.done() and not answered.cancelled():
                answered.exception()  # retrieved: a lost connection is no news here

    async def run(self, seconds: float) -> None:
        """Offer calls at the rate for ``seconds``; return once every call is done."""
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            await asyncio.sleep(max(0.0, start + n / self.rate - time.monotonic()))
            n += 1
            if self._ws is None:
                self.not_sent += 1
                continue
            task = asyncio.create_task(self.call(n))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)
        await asyncio.gather(*list(self._calls), return_exceptions=True)

    def successes(self) -> set[str]:
        return {a for a, r in self.replies.items() if r.response == "success"}

    def summary(self) -> dict[str, int]:
        counts = Counter(r.response for r in self.replies.values())
        return {
            "commands": len(self.replies),
            "success": counts["success"],
            "error": counts["error"],
            "no_reply": counts["none"],
            "not_sent": self.not_sent,
            "answered": self.answered,
            "hung_up": self.hung_up,
            "cut": self.cut,
        }


_UNRECORDED_DIALOGS = """
WITH dialed AS (SELECT data->>'call_id' AS call_id FROM events WHERE type = 'call.originated'),
ended AS (
  SELECT data->>'call_id' AS call_id FROM events
   WHERE type = 'call.hangup' AND data->>'reason' = 'system'
),
recorded AS (
  SELECT DISTINCT data->>'call_id' AS call_id FROM events
   WHERE type = 'observation' AND data ? 'dialog'
)
SELECT count(*) FROM dialed JOIN ended USING (call_id)
 WHERE call_id NOT IN (SELECT call_id FROM recorded)
"""


async def ended_without_dialog_record(database_url: str) -> int:
    """Outbound calls a restart ended whose SIP dialog was never recorded in the log:
    the crash came between the originate and the leg's first report. If the INVITE
    had already left, the far end's dialog is one the restart cannot end."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return int(await conn.fetchval(_UNRECORDED_DIALOGS))
    finally:
        await conn.close()


async def pushed_missing_from_log(load: CallLoad, database_url: str) -> list[int]:
    """Seqs of events pushed to the client that the log does not hold as pushed."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT seq, type FROM events WHERE seq = ANY($1::bigint[])", list(load.pushed)
        )
    finally:
        await conn.close()
    stored = {r["seq"]: r["type"] for r in rows}
    return sorted(seq for seq, kind in load.pushed.items() if stored.get(seq) != kind)


async def missing_from_log(load: CallLoad, database_url: str) -> list[str]:
    """Commands that got a success reply and are not in the log as a success."""
    logged = await logged_commands(database_url)
    return sorted(a for a in load.successes() if logged.get(a) != "success")


# ------------------------------------------------------------------------ RTP probe
class RtpProbe:
    """The far RTP end of a call under drill: once given its ``target`` (the address
    of the SDP offer) it sends 20 ms PCMU frames there, and it timestamps what arrives,
    so a drill can count the media that flowed in any window."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.received: list[float] = []
        self.sent: list[float] = []
        self.target: tuple[str, int] | None = None
        self._seq = 0
        self._ssrc = random.getrandbits(32)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._on_read)
        self._task = asyncio.create_task(self._send_loop())

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _on_read(self) -> None:
        while True:
            try:
                self.sock.recv(2048)
            except (BlockingIOError, ConnectionRefusedError):
                return
            self.received.append(time.monotonic())

    async def _send_loop(self) -> None:
        start, k = time.monotonic(), 0
        while True:
            k += 1
            await asyncio.sleep(max(0.0, start + k * 0.02 - time.monotonic()))
            if self.target is None:
                continue
            head = struct.pack("!BBHII", 0x80, 0, self._seq, self._seq * 160, self._ssrc)
            self._seq = (self._seq + 1) & 0xFFFF
            with contextlib.suppress(OSError):
                self.sock.sendto(head + b"\xff" * 160, self.target)
                self.sent.append(time.monotonic())

    @staticmethod
    def count(times: list[float], since: float, until: float) -> int:
        return sum(1 for t in times if since <= t < until)

    def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
