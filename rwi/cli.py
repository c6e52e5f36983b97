"""``rwi``: the command line. ``serve`` runs the service, ``migrate`` only the schema.

Tooling commands that read the log (replay, rebuild, report, ...) are added here as
their modules land; each is a thin shell over a module that tests call directly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from rwi import logs
from rwi.config import Config, load_config
from rwi.errors import ConfigError
from rwi.store.database import migrate, redact

CONFIG_HELP = "TOML config file (default: $RWI_CONFIG or ./rwi.toml)"


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    if getattr(args, "database_url", None):
        config = replace(config, database=replace(config.database, url=args.database_url))
    if getattr(args, "listen", None):
        host, _, port = args.listen.rpartition(":")
        config = replace(
            config, rwi=replace(config.rwi, listen_host=host or "127.0.0.1", listen_port=int(port))
        )
    return config


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from rwi import gc_tuning
    from rwi.app import create_app
    from rwi.gateway.endpoint import WS_MAX_SIZE
    from rwi.runtime import Runtime

    config = _config(args)
    runtime = Runtime(config)
    for directory in (config.storage.sounds_dir, config.storage.recordings_dir):
        Path(directory).mkdir(parents=True, exist_ok=True)
    url = runtime.start_database()
    where = (
        f"embedded PostgreSQL in {config.storage.data_dir / 'pg'}"
        if runtime.embedded is not None
        else redact(url)
    )
    _say(f"rwi: database: {where}")
    app = create_app(runtime)

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises the signal after its graceful shutdown, so a clean stop
            # would exit with -15; a service stopped on purpose should exit 0.
            previous = {
                sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
            }
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            gc_tuning.tune()  # after the app's start-up: what it built is long-lived
            for server in self.servers:
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    _say(f"rwi: listening on ws://{host}:{port}/rwi/v1 (health: /healthz, /readyz)")

    server = Server(
        uvicorn.Config(
            app,
            host=config.rwi.listen_host,
            port=config.rwi.listen_port,
            ws="websockets-sansio",
            ws_max_size=WS_MAX_SIZE,
            ws_per_message_deflate=False,
            lifespan="on",
            log_level=config.log.level.lower(),
            # JSON lines: uvicorn's own loggers go through the root handler too
            log_config=None if config.log.format == "json" else LOGGING_CONFIG,
            access_log=False,
        )
    )

    try:
        with asyncio.Runner(loop_factory=_fast_loop()) as runner:
            runner.run(server.serve())
    finally:
        if runtime.embedded is not None:
            runtime.embedded.stop()
    return 0


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it exists (not on Windows): its sockets, timers and task switches
    cost a fraction of the standard loop's, which is most of a call's CPU time."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def cmd_migrate(args: argparse.Namespace) -> int:
    from rwi.runtime import Runtime

    config = _config(args)
    runtime = Runtime(config)
    url = runtime.start_database()
    try:
        revision = asyncio.run(migrate(url))
    finally:
        if runtime.embedded is not None:
            runtime.embedded.stop()
    _say(f"rwi: database {redact(url)} is at revision {revision}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rwi", description=__doc__)
    parser.add_argument("--config", help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--database-url", help="PostgreSQL URL (default: embedded PostgreSQL)")
    serve.add_argument("--listen", help="host:port for the RWI WebSocket")
    serve.set_defaults(func=cmd_serve)
    mig = sub.add_parser("migrate", help="apply database migrations and exit")
    mig.add_argument("--database-url", help="PostgreSQL URL (default: embedded PostgreSQL)")
    mig.set_defaults(func=cmd_migrate)
    from rwi import cli_client, cli_tools

    cli_tools.register(sub)
    cli_client.register(sub)
    _config_after_subcommand(parser)
    return parser


def _config_after_subcommand(parser: argparse.ArgumentParser) -> None:
    """``--config`` goes before or after the sub-command (``rwi serve --config F`` as the
    README writes it, or ``rwi --config F serve``). SUPPRESS keeps a sub-command that is
    not given the option from resetting what the top level parsed."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
                _config_after_subcommand(child)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"rwi: configuration error: {exc}\n")
        return 2
    logs.configure(config.log.level, config.log.format)
    # Third-party chatter a user cannot act on: every pg_ctl call of the embedded
    # database, and platformdirs' note that XDG_RUNTIME_DIR is unset.
    for noisy in ("alembic", "pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        result: int = args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"rwi: configuration error: {exc}\n")
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
