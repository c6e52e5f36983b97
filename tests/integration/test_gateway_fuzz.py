"""Property: whatever frames a client sends, each gets one well-formed reply, the
connection survives and the service keeps serving (hypothesis against the real gateway)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rwi.errors import ERROR_CODES
from rwi.protocol import SPECS
from tests.support.client import RwiClient
from tests.support.databases import fresh_database, server_url
from tests.support.service import make_config, running_service

pytestmark = pytest.mark.integration

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
actions = (
    st.sampled_from(sorted(SPECS))
    | st.text(max_size=30)
    | st.sampled_from(["Subscribe", "Originate", "Answer", "MediaPlay", "session.resume"])
)
requests = st.fixed_dictionaries(
    {"action": actions},
    optional={
        "action_id": st.text(min_size=1, max_size=20) | st.integers(),
        "params": st.dictionaries(
            st.sampled_from(["contexts", "call_id", "since_seq", "x", "destination"]),
            json_values,
            max_size=4,
        )
        | json_values,
        "meta": st.dictionaries(st.sampled_from(["idempotency_key", "z"]), json_values, max_size=2),
        "rwi": json_values,
    },
)
frames = (
    requests.map(json.dumps)
    | st.text(max_size=200)
    | st.binary(max_size=200)
    | json_values.map(json.dumps)
)


class Harness:
    """One service and one connection for the whole property run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def harness() -> Any:
    h = Harness()
    with fresh_database(server_url()) as url:
        context = running_service(make_config(url))
        svc = h.run(context.__aenter__())
        client = h.run(RwiClient.connect(svc.url, token="admin-token"))
        h.svc, h.client = svc, client
        yield h
        h.run(client.close())
        h.run(context.__aexit__(None, None, None))
    h.loop.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(frames, min_size=1, max_size=5))
def test_arbitrary_frames_get_well_formed_replies(harness: Harness, batch: list[Any]) -> None:
    client = harness.client

    async def exchange() -> list[dict[str, Any]]:
        before = len(client.frames)
        for frame in batch:
            await client.send_raw(frame)
        await client.wait_for(
            lambda _: sum(1 for f in client.frames[before:] if "response" in f) >= len(batch)
        )
        return [f for f in client.frames[before:] if "response" in f]

    replies = harness.run(exchange())
    assert len(replies) == len(batch)
    for reply in replies:
        assert reply["rwi"] == "1.0"
        assert isinstance(reply["action_id"], str) and reply["action_id"]
        if reply["response"] == "error":
            assert reply["error"]["code"] in ERROR_CODES
            assert reply["error"]["code"] != "internal_error", reply
            assert reply["error"]["message"]
        else:
            assert reply["response"] == "success"
    assert not client._reader.done(), "connection closed"


def test_service_still_serves_after_the_fuzzing(harness: Harness) -> None:
    reply = harness.run(harness.client.request("session.list_calls"))
    assert reply["response"] == "success"
