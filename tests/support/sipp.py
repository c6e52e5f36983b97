"""SIPp as a far end in interop and e2e tests and benchmarks: one launcher for all of them.

A ``Sipp`` is one SIPp process running one scenario: a template file whose ``{name}``
placeholders are filled from keyword arguments (``sipp_templates`` has the call
templates and the fragments they take). Its ports come from ``tests.support.ports``:
the SIP port (``-p``), a control port (``-cp``) and four consecutive media ports
(``-mp``: SIPp binds audio RTP/RTCP there and video at +2/+3 even for audio calls).
Every SIPp runs loopback-only (``-i/-mi/-ci 127.0.0.1 -bind_local -nostdin``), under
its own ``-timeout`` and a hard kill a little later, with its output in files under
the test's directory; ``Sipps`` kills whatever a test started at teardown. A missing
``sipp`` fails the test: it never skips it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.ports import free_block, free_port

PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
#: the call templates a scenario named by a plain string comes from
CALL_SCENARIOS = Path(__file__).resolve().parent.parent / "interop" / "calls" / "scenarios"
CALL_DEFAULTS: dict[str, object] = {"ring": "", "ack_action": "", "middle": ""}


def render(template: Path, subs: dict[str, object]) -> str:
    """The template with its ``{name}`` placeholders filled; none may be left over
    (the leading XML comment may name them)."""
    text = template.read_text()
    for key, value in subs.items():
        text = text.replace("{" + key + "}", str(value))
    body = text.split("-->", 1)[-1]
    leftover = PLACEHOLDER.search(body)
    assert leftover is None, f"unfilled placeholder {leftover.group()} in {template.name}"
    return text


@dataclass
class SippResult:
    rc: int
    stdout: str
    stderr: str


class Sipp:
    """One SIPp process running ``scenario``: a template file filled with ``subs`` (a
    plain name is one of the call templates in ``CALL_SCENARIOS``, whose ``ring``,
    ``ack_action`` and ``middle`` default to nothing), or with ``builtin`` one of SIPp's
    built-in scenarios (``uac``, ``uas``: for benchmarks)."""

    def __init__(
        self,
        workdir: Path,
        scenario: Path | str,
        *,
        sip_port: int | None = None,
        builtin: bool = False,
        **subs: object,
    ) -> None:
        self.sip_port = sip_port if sip_port is not None else free_port()
        self.media_port = free_block(4)
        self.ctrl_port = free_port()
        self.workdir = workdir
        if builtin:
            self.name = f"{scenario}_{self.sip_port}"
            self.scenario_args = ["-sn", str(scenario)]
        else:
            if isinstance(scenario, str):
                scenario, subs = CALL_SCENARIOS / f"{scenario}.xml", {**CALL_DEFAULTS, **subs}
            self.name = f"{scenario.stem}_{self.sip_port}"
            path = workdir / f"{self.name}.xml"
            path.write_text(render(scenario, subs))
            self.scenario_args = ["-sf", str(path)]
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def uri(self) -> str:
        return f"sip:bob@127.0.0.1:{self.sip_port}"

    def _file(self, suffix: str) -> Path:
        return self.workdir / f"{self.name}{suffix}"

    async def start(
        self,
        *extra: str,
        remote: str | None = None,
        calls: int | None = 1,
        timeout: float | None = 20.0,
    ) -> None:
        """Run the scenario ``calls`` times (as UAC towards ``remote``, else as UAS;
        ``None``: until killed); SIPp gives up after ``timeout`` s and is killed 5 s
        later if still running (``None``: the caller kills it)."""
        sipp = shutil.which("sipp")
        if sipp is None:
            pytest.fail("sipp is not installed (apt-get install sip-tester)")
        argv = [sipp] + ([remote] if remote else []) + self.scenario_args + [
            "-i", "127.0.0.1", "-bind_local", "-mi", "127.0.0.1", "-ci", "127.0.0.1",
            "-nostdin", "-p", str(self.sip_port), "-mp", str(self.media_port),
            "-cp", str(self.ctrl_port),
            "-trace_err", "-error_file", str(self._file("_err.log")),
        ]  # fmt: skip
        if calls is not None:
            argv += ["-m", str(calls)]
        if timeout is not None:
            argv += ["-timeout", f"{timeout:g}s", "-timeout_error"]
        with self._file(".out").open("wb") as out, self._file(".stderr").open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, *extra, cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL,
                stdout=out, stderr=err,
            )  # fmt: skip
        if timeout is not None:
            asyncio.get_running_loop().call_later(timeout + 5.0, self.kill)

    async def result(self, limit: float = 10.0) -> SippResult:
        """How SIPp ended (exit code 0: the calls went exactly as the scenario says)."""
        assert self.proc is not None
        try:
            async with asyncio.timeout(limit):
                rc = await self.proc.wait()
        except TimeoutError:
            self.kill()
            raise AssertionError(f"SIPp {self.name} did not finish: {self.log()}") from None
        out = self._file(".out").read_text(errors="replace")
        return SippResult(rc, out, self._file(".stderr").read_text(errors="replace") + self.log())

    async def finish(self, limit: float = 10.0) -> int:
        """SIPp's exit code, which must be 0."""
        rc = (await self.result(limit)).rc
        if rc != 0:
            raise AssertionError(f"SIPp {self.name} exited {rc}: {self.log()}")
        return rc

    def log(self) -> str:
        err = self._file("_err.log")
        text = err.read_text(errors="replace") if err.exists() else ""
        return text[-3000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    async def close(self) -> None:
        self.kill()
        if self.proc is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.proc.wait()


class Sipps:
    """The SIPps one test started from a directory of scenarios; all dead at teardown."""

    def __init__(self, workdir: Path, scenarios: Path) -> None:
        self.workdir = workdir
        self.scenarios = scenarios
        self.started: list[Sipp] = []

    async def sipp(
        self,
        scenario: str,
        remote: str | None,
        *extra: str,
        port: int | None = None,
        calls: int = 1,
    ) -> Sipp:
        peer = Sipp(self.workdir, self.scenarios / f"{scenario}.xml", sip_port=port)
        self.started.append(peer)
        await peer.start(*extra, remote=remote, calls=calls, timeout=25.0)
        return peer

    async def finish(self, peer: Sipp, limit: float = 30) -> SippResult:
        return await peer.result(limit)

    async def close(self) -> None:
        for peer in self.started:
            await peer.close()
