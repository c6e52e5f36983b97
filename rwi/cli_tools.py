"""Sub-commands of ``rwi`` that read the log: registered into the parser by ``rwi.cli``.

Each is a thin shell over a module that tests call directly: ``rwi.replay`` (replay,
export, import), ``rwi.projections`` (rebuild, verify), ``rwi.reporting`` (report).
The database is the one ``rwi serve`` uses (config, ``RWI_DATABASE_URL``, or the
embedded PostgreSQL), or ``--database-url``. Every failure is one ``rwi: ...`` line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import asyncpg

from rwi import reporting
from rwi.errors import ConfigError
from rwi.projections import PROJECTIONS, engine
from rwi.projections.verify import check_projection, check_state, describe
from rwi.replay import (
    ReplayError,
    Story,
    export_call,
    import_bundle,
    parse_bundle,
    replay_call,
    resolve_at,
    state_at,
)
from rwi.store.database import asyncpg_dsn, migrate, redact

#: Exit codes: 1 = the check or lookup failed, 2 = the request or setup is wrong.
FAILED, BAD_REQUEST = 1, 2

Tool = Callable[[asyncpg.Connection, argparse.Namespace, str], Awaitable[int]]


class ToolError(Exception):
    def __init__(self, message: str, code: int = BAD_REQUEST) -> None:
        super().__init__(message)
        self.code = code


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="PostgreSQL URL (default: the service's configured database)"
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the log-reading sub-commands (replay, rebuild, verify, report, export, import)."""
    replay = sub.add_parser("replay", help="what happened on a call, or the state at a point")
    which = replay.add_subparsers(dest="what", required=True)
    call = which.add_parser("call", help="a call's whole story, step by step")
    call.add_argument("call_id")
    call.add_argument("--json", action="store_true", help="one JSON document")
    _db_option(call)
    call.set_defaults(func=_run(_replay_call, needs_schema=True))
    state = which.add_parser("state", help="the live state as it was at a seq or time")
    state.add_argument("--at", required=True, help="a seq, or an ISO time (UTC if no zone)")
    state.add_argument("--json", action="store_true", help="compact JSON")
    _db_option(state)
    state.set_defaults(func=_run(_replay_state, needs_schema=False))

    rebuild = sub.add_parser("rebuild", help="rebuild projections from the log")
    rebuild.add_argument("projections", nargs="*", help=f"default: all ({', '.join(PROJECTIONS)})")
    _db_option(rebuild)
    rebuild.set_defaults(func=_run(_rebuild, needs_schema=True))

    verify = sub.add_parser("verify", help="rebuild everything in a scratch schema and diff")
    verify.add_argument("--limit", type=int, default=20, help="differences listed per table")
    _db_option(verify)
    verify.set_defaults(func=_run(_verify, needs_schema=True))

    report = sub.add_parser("report", help="contact-centre reports from the projections")
    report.add_argument("name", help=f"one of: {', '.join(reporting.REPORTS)}")
    report.add_argument("--from", dest="start", help="from this ISO date/time (inclusive)")
    report.add_argument("--to", dest="end", help="to this ISO date/time (exclusive)")
    report.add_argument("--csv", action="store_true", help="CSV instead of a table")
    report.add_argument("--limit", type=int, help="at most this many rows")
    report.add_argument(
        "--sla-secs",
        type=float,
        default=reporting.OPTION_DEFAULTS["sla_secs"],
        help="queue_summary: the service level counts calls answered within this wait",
    )
    _db_option(report)
    report.set_defaults(func=_run(_report, needs_schema=True))

    export = sub.add_parser("export", help="write a call's events as a self-contained bundle")
    export_what = export.add_subparsers(dest="what", required=True)
    export_call_ = export_what.add_parser("call", help="one call's story and its context")
    export_call_.add_argument("call_id")
    export_call_.add_argument("-o", "--output", required=True, help="bundle file (- = stdout)")
    export_call_.add_argument("--force", action="store_true", help="overwrite the file")
    _db_option(export_call_)
    export_call_.set_defaults(func=_run(_export_call, needs_schema=True))

    load = sub.add_parser("import", help="load a bundle into a new, empty database")
    load.add_argument("bundle")
    load.add_argument(
        "--database-url", required=True, help="the scratch database (created if missing)"
    )
    load.set_defaults(func=_import)


# --- plumbing ----------------------------------------------------------------------------


def _database_url(args: argparse.Namespace) -> tuple[str, Callable[[], None]]:
    """The URL to use and how to release it (the embedded server may be started)."""
    from rwi.config import load_config
    from rwi.runtime import Runtime

    if args.database_url:
        return args.database_url, lambda: None
    config = load_config(args.config)
    runtime = Runtime(config)
    url = runtime.start_database()

    def release() -> None:
        if runtime.embedded is not None:
            runtime.embedded.stop()

    return url, release


async def _connect(url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(asyncpg_dsn(url))
    except (OSError, asyncpg.PostgresError, ValueError) as exc:
        raise ToolError(f"cannot connect to {redact(url)}: {exc}", FAILED) from None


async def _check_schema(conn: asyncpg.Connection, url: str) -> None:
    from rwi.store.database import _head_revision

    try:
        current = await conn.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        current = None
    head = await asyncio.to_thread(_head_revision, url)
    if current != head:
        raise ToolError(
            f"the database {redact(url)} is at schema revision {current or 'none'}, this "
            f"tool needs {head}: run `rwi migrate` first"
        )


def _run(tool: Tool, *, needs_schema: bool) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        # These tools fold history: what the domain warns about while it runs (an odd
        # transition) was logged when it happened, and would repeat on every read.
        logging.getLogger("rwi.domain").setLevel(logging.ERROR)

        async def main(url: str) -> int:
            conn = await _connect(url)
            try:
                if needs_schema:
                    await _check_schema(conn, url)
                return await tool(conn, args, url)
            finally:
                await conn.close()

        return _guarded(args, main)

    return command


def _guarded(args: argparse.Namespace, main: Callable[[str], Coroutine[Any, Any, int]]) -> int:
    release: Callable[[], None] = lambda: None  # noqa: E731
    try:
        url, release = _database_url(args)
        return asyncio.run(main(url))
    except ToolError as exc:
        sys.stderr.write(f"rwi: {exc}\n")
        return exc.code
    except ReplayError as exc:
        sys.stderr.write(f"rwi: {exc}\n")
        return FAILED
    except reporting.ReportError as exc:
        sys.stderr.write(f"rwi: {exc}\n")
        return BAD_REQUEST
    except ConfigError:
        raise
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        sys.stderr.write(f"rwi: {type(exc).__name__}: {exc}\n")
        return FAILED
    except KeyboardInterrupt:
        sys.stderr.write("rwi: interrupted\n")
        return 130
    finally:
        release()


# --- replay ------------------------------------------------------------------------------


def _call_state(call: dict[str, Any] | None) -> str:
    if call is None:
        return "-"
    parts = [call["state"]]
    for key in ("owner", "bridged_with", "playback_id", "orphaned_at"):
        if call.get(key):
            parts.append(f"{key}={call[key]}")
    if call.get("attached"):
        parts.append("attached=" + ",".join(f"{k}:{v}" for k, v in call["attached"].items()))
    return " ".join(parts)


def story_text(story: Story) -> str:
    own = [s for s in story.steps if not s.context]
    lines = [
        f"call {story.call_id}: {len(own)} events (seq {own[0].event.seq}..{own[-1].event.seq})"
        f", {len(story.steps) - len(own)} of context (marked ~)",
        f"{'seq':>10}  {'ts':24}  {'kind':11}  {'call after':28}  what",
    ]
    for step in story.steps:
        what = step.describe()
        if len(what) > 400:
            what = what[:399] + "…"
        mark = "~" if step.context else " "
        state = "" if step.context else _call_state(step.call)
        lines.append(
            f"{step.event.seq:>10}{mark} {step.event.meta.get('ts', ''):24}  {step.kind:11}  "
            f"{state:28}  {what}"
        )
    return "\n".join(lines)


async def _replay_call(conn: asyncpg.Connection, args: argparse.Namespace, url: str) -> int:
    story = await replay_call(conn, args.call_id)
    if args.json:
        _say(json.dumps(story.as_json(), ensure_ascii=False, default=str))
    else:
        _say(story_text(story))
    return 0


async def _replay_state(conn: asyncpg.Connection, args: argparse.Namespace, url: str) -> int:
    at = await resolve_at(conn, args.at)
    state, count = await state_at(conn, at)
    ts = await conn.fetchval("SELECT meta->>'ts' FROM events WHERE seq = $1", at)
    document = {"at_seq": at, "ts": ts, "events": count, "state": state.snapshot()}
    if args.json:
        _say(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
    else:
        _say(json.dumps(document, ensure_ascii=False, indent=2))
    return 0


# --- projections -------------------------------------------------------------------------


def _chosen(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in PROJECTIONS]
    if unknown:
        raise ToolError(
            f"unknown projection {', '.join(unknown)}; projections: {', '.join(PROJECTIONS)}"
        )
    return names or list(PROJECTIONS)


async def _rebuild(conn: asyncpg.Connection, args: argparse.Namespace, url: str) -> int:
    names = _chosen(args.projections)
    head = await engine.head(conn)
    extra = [await _connect(url) for _ in names[1:]]

    async def connect() -> asyncpg.Connection:
        return await _connect(url)

    try:
        results = await asyncio.gather(
            *(
                engine.rebuild(c, PROJECTIONS[n], connect=connect)
                for c, n in zip([conn, *extra], names, strict=True)
            )
        )
    finally:
        for c in extra:
            await c.close()
    for r in results:
        rate = f", {head / r.seconds:,.0f} events/s" if r.seconds > 0 else ""
        _say(
            f"rwi: {r.name} rebuilt up to seq {r.position}: {r.rows} rows in {r.seconds:.2f}s{rate}"
        )
    return 0


async def _verify(conn: asyncpg.Connection, args: argparse.Namespace, url: str) -> int:
    problems: list[str] = []
    positions = {}
    for projection in PROJECTIONS.values():
        check = await check_projection(conn, projection, args.limit)
        positions[projection.name] = check.position
        problems += describe(check)
    state, count = await state_at(conn, positions["calls"])
    problems += [f"live state: {p}" for p in await check_state(conn, state, args.limit)]
    if problems:
        for line in problems:
            _say(line)
        sys.stderr.write(f"rwi: verify found {len(problems)} difference(s)\n")
        return FAILED
    done = ", ".join(f"{n} (seq {p})" for n, p in positions.items())
    _say(f"rwi: verify: {done} and the live state ({count} events) agree with the log")
    return 0


# --- reports -----------------------------------------------------------------------------


async def _report(conn: asyncpg.Connection, args: argparse.Namespace, url: str) -> int:
    start = reporting.parse_time(args.start, "--from") if args.start else None
    end = reporting.parse_time(args.end, "--to") if args.end else None
    if args.limit is not None and args.limit < 1:
        raise ToolError("--limit must be at least 1")
    options = {"sla_secs": args.sla_secs}
    columns, rows = await reporting.run(conn, args.name, start, end, args.limit, options)
    out = reporting.as_csv(columns, rows) if args.csv else reporting.as_table(columns, rows)
    sys.stdout.write(out)
    return 0


# --- bundles -----------------------------------------------------------------------------


async def _export_call(conn: asyncpg.Connection, args: argparse.Namespace, url: str) -> int:
    lines = await export_call(conn, args.call_id)
    text = "\n".join(lines) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    await asyncio.to_thread(write_bundle, Path(args.output), text, args.force)
    sys.stderr.write(
        f"rwi: wrote {len(lines) - 1} events of call {args.call_id} to {args.output}\n"
    )
    return 0


def write_bundle(path: Path, text: str, force: bool) -> None:
    """Write atomically (a temporary file renamed into place); refuse to overwrite."""
    if path.is_dir():
        raise ToolError(f"{path} is a directory")
    if path.exists() and not force:
        raise ToolError(f"{path} exists; use --force to overwrite it")
    directory = path.parent
    if not directory.is_dir():
        raise ToolError(f"directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise


def _import(args: argparse.Namespace) -> int:
    path = Path(args.bundle)
    try:
        with path.open(encoding="utf-8") as source:
            bundle = parse_bundle(source, str(path))
    except FileNotFoundError:
        sys.stderr.write(f"rwi: {path}: no such file\n")
        return BAD_REQUEST
    except (OSError, UnicodeDecodeError) as exc:
        sys.stderr.write(f"rwi: cannot read {path}: {exc}\n")
        return BAD_REQUEST
    except ReplayError as exc:
        sys.stderr.write(f"rwi: {exc}\n")
        return BAD_REQUEST

    async def main(url: str) -> int:
        await _ensure_database(url)
        await migrate(url)
        conn = await _connect(url)
        try:
            count = await import_bundle(conn, bundle)
            for projection in PROJECTIONS.values():
                await engine.rebuild(conn, projection)
        finally:
            await conn.close()
        call_id = bundle.header.get("call_id")
        _say(
            f"rwi: imported {count} events (call {call_id}) into {redact(url)}; projections "
            f"rebuilt. Next: rwi replay call {call_id} --database-url {redact(url)}"
        )
        return 0

    return _guarded(args, main)


async def _ensure_database(url: str) -> None:
    """Create the scratch database when the server does not have it yet."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        conn = await asyncpg.connect(asyncpg_dsn(url))
    except asyncpg.InvalidCatalogNameError:
        parts = urlsplit(asyncpg_dsn(url))
        name = parts.path.lstrip("/")
        admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
        try:
            server = await asyncpg.connect(admin)
        except (OSError, asyncpg.PostgresError) as exc:
            raise ToolError(f"cannot create database {name!r}: {exc}", FAILED) from None
        try:
            await server.execute(f'CREATE DATABASE "{name.replace(chr(34), chr(34) * 2)}"')
        finally:
            await server.close()
        return
    except (OSError, asyncpg.PostgresError, ValueError) as exc:
        raise ToolError(f"cannot connect to {redact(url)}: {exc}", FAILED) from None
    await conn.close()
