"""``Client.last_reply_seq`` against a scripted loopback WebSocket peer: it marks where
on the wire a command's reply arrived among the events, whichever comes first."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import websockets

from rwi.client import connect


def _event(seq: int) -> str:
    ts = datetime.now(UTC).isoformat(timespec="milliseconds")[:23] + "Z"
    frame = {"rwi": "1.0", "event": "call.bridged", "call_id": "a", "seq": seq, "ts": ts}
    return json.dumps({**frame, "data": {"n": seq}})


async def _peer(ws: Any) -> None:
    """Answers the first command reply-then-event, the second event-then-reply."""
    seq = 0
    async for text in ws:
        frame = json.loads(text)
        reply = json.dumps(
            {"rwi": "1.0", "action_id": frame["action_id"], "response": "success", "data": {}}
        )
        seq += 1
        first, second = (reply, _event(seq)) if seq == 1 else (_event(seq), reply)
        await ws.send(first)
        await ws.send(second)


async def test_last_reply_seq_marks_the_replys_place_among_the_events() -> None:
    async with websockets.serve(_peer, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/rwi/v1", "t") as rwi:
            await rwi.session.list_calls()
            mark = rwi.last_reply_seq
            caused = await rwi.events.wait("call.bridged", n=1, within=5)
            assert (mark, caused.seq) == (0, 1)  # the event came after the reply
            await rwi.session.list_calls()
            mark = rwi.last_reply_seq
            early = await rwi.events.wait("call.bridged", n=2, within=5)
            assert (mark, early.seq) == (2, 2)  # this one came before it
