"""Replies that wait for a request effect's result: the REFER's result observation
(``sip.refer.result``, what the executor reports for a ``Refer`` effect) completes the
reply that waits for it; none in time completes it with the timeout data."""

from __future__ import annotations

import asyncio
from typing import Any

from rwi.domain.model import AwaitResult, Observation
from rwi.pending_replies import PendingReplies

REFER_RESULT = AwaitResult(
    observation="sip.refer.result",
    match=(("call_id", "a"),),
    fields=("status",),
    timeout_secs=30.0,
    timeout_data={"status": 408},
)


async def test_the_matching_result_completes_the_reply_once() -> None:
    replies = PendingReplies()
    sent: list[dict[str, Any]] = []
    replies.expect(REFER_RESULT, {"call_id": "a"}, sent.append)
    replies.observed(Observation("sip.refer.result", {"call_id": "b", "status": 202}))
    replies.observed(Observation("sip.refer.notify", {"call_id": "a", "status": 200}))
    assert sent == [] and len(replies) == 1
    replies.observed(Observation("sip.refer.result", {"call_id": "a", "status": 202}))
    replies.observed(Observation("sip.refer.result", {"call_id": "a", "status": 500}))
    assert sent == [{"call_id": "a", "status": 202}]
    assert len(replies) == 0


async def test_two_waiting_replies_are_completed_in_order() -> None:
    replies = PendingReplies()
    sent: list[tuple[str, dict[str, Any]]] = []
    replies.expect(REFER_RESULT, {"n": 1}, lambda data: sent.append(("first", data)))
    replies.expect(REFER_RESULT, {"n": 2}, lambda data: sent.append(("second", data)))
    replies.observed(Observation("sip.refer.result", {"call_id": "a", "status": 202}))
    assert sent == [("first", {"n": 1, "status": 202})]
    replies.close()
    assert sent[1] == ("second", {"n": 2, "status": 408})


async def test_no_result_in_time_completes_with_the_timeout_data() -> None:
    replies = PendingReplies()
    done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    quick = AwaitResult("sip.refer.result", (("call_id", "a"),), ("status",), 0.01, {"status": 408})
    replies.expect(quick, None, done.set_result)
    assert await asyncio.wait_for(done, 5) == {"status": 408}
    # a late result finds nobody waiting
    replies.observed(Observation("sip.refer.result", {"call_id": "a", "status": 202}))
    assert len(replies) == 0
