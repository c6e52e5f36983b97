"""`rwi serve` as its own process, as a user starts it: for end-to-end tests and benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


async def start_serve(
    config: Path,
    *options: str,
    stderr: int | None = None,
    env: Mapping[str, str] | None = None,
    limit: float = 120.0,
) -> tuple[asyncio.subprocess.Process, list[str]]:
    """Start the service as the README does, ``./scripts/dev serve --config CONFIG
    [options]`` (which execs the installed ``rwi serve`` on uvloop, so the process is the
    service itself); return once it says where it listens, with the lines it printed
    until then. ``stderr=asyncio.subprocess.STDOUT`` keeps the logs in the same pipe
    (whoever passes it must read that pipe to the end)."""
    proc = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "dev"), "serve", "--config", str(config), *options,
        stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), limit)).decode()
        if not line:
            raise RuntimeError(f"rwi serve exited during start-up: {lines[-20:]}")
        lines.append(line.rstrip())
        if line.startswith("rwi: listening on"):
            return proc, lines
