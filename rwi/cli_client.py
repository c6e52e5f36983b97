"""``rwi call ...`` and ``rwi events``: the command line on top of ``rwi.client``.

Registered into the parser by ``rwi.cli``. Each command opens one RWI connection: the
URL and token come from ``--url``/``--token``, else ``RWI_URL``/``RWI_TOKEN``, else the
config (``[rwi] listen`` and the first ``[[rwi.tokens]]`` entry). A command on an
existing call first attaches it (control), because the call's earlier controller (an
earlier ``rwi`` command) has gone. Human output by default, ``--json`` for scripts;
failures are one ``rwi: ...`` line on stderr: exit 1 for an error reply, 2 for a bad
request or an unreachable service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from rwi.client import Client, CommandError, Event, RwiClientError
from rwi.config import load_config
from rwi.errors import ConfigError

FAILED, BAD_REQUEST = 1, 2

Action = Callable[[Client, argparse.Namespace], Awaitable[dict[str, Any]]]


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def endpoint(args: argparse.Namespace, env: dict[str, str] | None = None) -> tuple[str, str]:
    """The service URL and token: flags, then environment, then the config."""
    env = dict(os.environ) if env is None else env
    url = getattr(args, "url", None) or env.get("RWI_URL")
    token = getattr(args, "token", None) or env.get("RWI_TOKEN")
    if url is None or token is None:
        config = load_config(getattr(args, "config", None), env)
        if url is None:
            host = config.rwi.listen_host
            host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
            host = f"[{host}]" if ":" in host else host
            url = f"ws://{host}:{config.rwi.listen_port}/rwi/v1"
        if token is None:
            if not config.rwi.tokens:
                raise ConfigError(
                    f"{config.source}: no [[rwi.tokens]] entry; give --token or RWI_TOKEN"
                )
            token = config.rwi.tokens[0].token
    return url, token


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="RWI WebSocket URL (default: $RWI_URL or the config)")
    parser.add_argument("--token", help="bearer token (default: $RWI_TOKEN or the config)")
    parser.add_argument("--json", action="store_true", help="JSON output for scripts")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rwi call <verb>`` and ``rwi events``."""
    call = sub.add_parser("call", help="call commands over RWI (originate, hangup, ...)")
    verbs = call.add_subparsers(dest="verb", required=True)

    originate = verbs.add_parser("originate", help="dial a new outbound leg")
    originate.add_argument("call_id")
    originate.add_argument("destination", help="sip:user@local, sip:number@trunk, tel:...")
    originate.add_argument("--caller-id")
    originate.add_argument("--timeout-secs", type=float)
    originate.add_argument(
        "--wait", choices=["answered", "hangup"], help="also wait for this event of the call"
    )
    originate.set_defaults(func=_command(_originate))

    answer = verbs.add_parser("answer", help="answer (claim) an offered inbound call")
    answer.add_argument("call_id")
    answer.add_argument(
        "--context", action="append", default=[], help="subscribe first (needed to claim)"
    )
    answer.set_defaults(func=_command(_answer))

    hangup = verbs.add_parser("hangup", help="hang a call up")
    hangup.add_argument("call_id")
    hangup.add_argument("--reason")
    hangup.add_argument("--code", type=int, help="SIP status for an unanswered inbound call")
    hangup.set_defaults(func=_command(_hangup))

    bridge = verbs.add_parser("bridge", help="bridge two answered legs")
    bridge.add_argument("leg_a")
    bridge.add_argument("leg_b")
    bridge.set_defaults(func=_command(_bridge))

    transfer = verbs.add_parser("transfer", help="blind (or --attended) transfer")
    transfer.add_argument("call_id")
    transfer.add_argument("target", help="sip:, sips: or tel: URI")
    transfer.add_argument("--attended", action="store_true", help="consult first")
    transfer.set_defaults(func=_command(_transfer))

    hold = verbs.add_parser("hold", help="hold a call (it hears music)")
    hold.add_argument("call_id")
    hold.add_argument("--music", help="a file in the sounds directory")
    hold.add_argument("--off", action="store_true", help="unhold instead")
    hold.set_defaults(func=_command(_hold))

    listing = verbs.add_parser("list", help="the calls this connection controls")
    listing.add_argument(
        "--attach", action="append", default=[], metavar="CALL_ID", help="attach it first"
    )
    listing.set_defaults(func=_command(_list))
    for parser in verbs.choices.values():
        _connection_options(parser)

    events = sub.add_parser("events", help="print RWI events (of --call, --context)")
    events.add_argument("--follow", action="store_true", help="keep printing live events")
    events.add_argument(
        "--call", action="append", default=[], metavar="CALL_ID", help="attach this call"
    )
    events.add_argument(
        "--mode",
        choices=["control", "listen", "whisper", "barge"],
        default="control",
        help="how --call is attached (default control: it keeps the call up)",
    )
    events.add_argument("--context", action="append", default=[], help="subscribe to this context")
    events.add_argument("--since", type=int, metavar="SEQ", help="first replay from the log")
    events.add_argument(
        "--idle",
        type=float,
        default=1.0,
        help="without --follow: stop after this many seconds without an event",
    )
    _connection_options(events)
    events.set_defaults(func=_events)


# --- one-shot call commands --------------------------------------------------------------


def _command(action: Action) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def main(client: Client) -> int:
            data = await action(client, args)
            if args.json:
                _say(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
            else:
                _say(_human_reply(args, data))
            return 0

        return _guarded(args, main)

    return command


async def _attach(client: Client, *call_ids: str) -> None:
    for call_id in call_ids:
        await client.session.attach_call(call_id=call_id)


async def _originate(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    data = await client.call.originate(
        call_id=args.call_id,
        destination=args.destination,
        caller_id=args.caller_id,
        timeout_secs=args.timeout_secs,
    )
    if args.wait:
        name = "call.answered" if args.wait == "answered" else "call.hangup"
        ended = asyncio.create_task(client.events.wait("call.hangup", call_id=args.call_id))
        wanted = asyncio.create_task(client.events.wait(name, call_id=args.call_id))
        done, _ = await asyncio.wait(
            [ended, wanted], timeout=(args.timeout_secs or 60) + 10, return_when="FIRST_COMPLETED"
        )
        for task in (ended, wanted):
            if task not in done:
                task.cancel()
        if not done:
            raise RwiClientError(f"no {name} for {args.call_id} in time")
        event = done.pop().result()
        data = {**data, "event": event.frame()}
    return data


async def _answer(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    if args.context:
        await client.session.subscribe(contexts=args.context)
    return await client.call.answer(call_id=args.call_id)


async def _hangup(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    await _attach(client, args.call_id)
    return await client.call.hangup(call_id=args.call_id, reason=args.reason, code=args.code)


async def _bridge(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    await _attach(client, args.leg_a, args.leg_b)
    return await client.call.bridge(leg_a=args.leg_a, leg_b=args.leg_b)


async def _transfer(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    await _attach(client, args.call_id)
    if args.attended:
        return await client.call.transfer_attended(call_id=args.call_id, target=args.target)
    return await client.call.transfer(call_id=args.call_id, target=args.target)


async def _hold(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    await _attach(client, args.call_id)
    if args.off:
        return await client.call.unhold(call_id=args.call_id)
    return await client.call.hold(call_id=args.call_id, music=args.music)


async def _list(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    await _attach(client, *args.attach)
    return await client.session.list_calls()


def _human_reply(args: argparse.Namespace, data: dict[str, Any]) -> str:
    verb = str(args.verb)
    if verb == "list":
        calls = data.get("calls", [])
        if not calls:
            return "no calls"
        rows = [("CALL", "STATE", "DIRECTION", "CREATED")]
        rows += [
            (str(c.get("call_id")), str(c.get("state")), str(c.get("direction")),
             str(c.get("created_at")))
            for c in calls
        ]  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                         for r in rows)  # fmt: skip
    subject = str(getattr(args, "call_id", None) or f"{args.leg_a} + {args.leg_b}")
    done = {"originate": "originated", "answer": "answered", "hangup": "hung up",
            "bridge": "bridged", "transfer": "transfer started",
            "hold": "unheld" if getattr(args, "off", False) else "held"}[verb]  # fmt: skip
    extra = {k: v for k, v in data.items() if k not in ("call_id", "leg_a", "leg_b", "event")}
    line = f"{subject}: {done}" + "".join(f" {k}={v}" for k, v in extra.items())
    if "event" in data:
        line += "\n" + human_event(Event.from_frame(data["event"]))
    return line


# --- events ------------------------------------------------------------------------------


def human_event(event: Event) -> str:
    data = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in event.data.items())
    where = event.call_id or "-"
    if event.context:
        where += f" ({event.context})"
    return f"{event.seq:>8}  {event.ts}  {event.name:<26} {where}  {data}".rstrip()


def _events(args: argparse.Namespace) -> int:
    async def main(client: Client) -> int:
        stream = client.events.stream().__aiter__()
        while True:
            try:
                if args.follow:
                    event = await anext(stream)
                else:
                    event = await asyncio.wait_for(anext(stream), args.idle)
            except (StopAsyncIteration, TimeoutError):
                return 0
            if args.json:
                _say(json.dumps(event.frame(), ensure_ascii=False, separators=(",", ":")))
            else:
                _say(human_event(event))

    attach = {call_id: args.mode for call_id in args.call}
    return _guarded(args, main, since_seq=args.since, subscribe=args.context, attach=attach)


def _guarded(
    args: argparse.Namespace, main: Callable[[Client], Awaitable[int]], **options: Any
) -> int:
    async def run() -> int:
        url, token = endpoint(args)
        client = Client(url, token, reattach_for=5.0, **options)
        await client.start()
        try:
            missing = set(options.get("attach") or {}) - client.calls
            if missing:
                raise RwiClientError(f"could not attach {', '.join(sorted(missing))}")
            return await main(client)
        finally:
            await client.close()

    try:
        return asyncio.run(run())
    except CommandError as exc:
        sys.stderr.write(f"rwi: {exc.code}: {exc.message}\n")
        return FAILED
    except (RwiClientError, ConfigError) as exc:
        sys.stderr.write(f"rwi: {exc}\n")
        return BAD_REQUEST
    except KeyboardInterrupt:
        return 0
