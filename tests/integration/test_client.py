"""``rwi.client`` against the real service without SIP: session commands, typed errors,
and a reconnect that restores the subscription and retries a command in flight."""

from __future__ import annotations

import asyncio

import pytest

from rwi.client import (
    ClientClosed,
    CommandError,
    ConnectionFailed,
    Forbidden,
    InvalidParams,
    UnknownAction,
    connect,
)
from rwi.client.session import Client
from tests.support.service import make_config, running_service

pytestmark = pytest.mark.integration


async def test_session_commands_return_the_reply_data(db_url: str) -> None:
    async with (
        running_service(make_config(db_url)) as svc,
        connect(svc.url, "app-token") as rwi,
    ):
        assert await rwi.session.subscribe(contexts=["sales", "support"]) == {
            "contexts": ["sales", "support"]
        }
        assert await rwi.session.unsubscribe(contexts=["sales"]) == {"contexts": ["support"]}
        assert await rwi.session.list_calls() == {"calls": []}
        assert rwi.contexts == {"support"}


async def test_error_replies_raise_one_class_per_code(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        async with connect(svc.url, "app-token") as rwi:
            with pytest.raises(InvalidParams) as invalid:
                await rwi.session.subscribe(contexts=["no spaces allowed"])
            assert invalid.value.code == "invalid_params"
            assert "params.contexts[0]" in invalid.value.message
            assert isinstance(invalid.value, CommandError)
            # no [sip] in this config: call commands are unknown_action, naming why
            with pytest.raises(UnknownAction, match=r"\[sip\]"):
                await rwi.call.answer(call_id="leg_a")
        async with connect(svc.url, "none-token") as nobody:
            with pytest.raises(Forbidden):
                await nobody.session.list_calls()


async def test_a_wrong_token_or_address_fails_at_connect(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        with pytest.raises(ConnectionFailed, match="401"):
            async with connect(svc.url, "wrong-token"):
                pass
    with pytest.raises(ConnectionFailed):
        async with connect(svc.url, "app-token"):
            pass


async def test_reconnect_restores_subscription_and_retries_the_command_in_flight(
    db_url: str,
) -> None:
    async with running_service(make_config(db_url)) as svc:
        client = Client(svc.url, "app-token")
        await client.start()
        try:
            await client.session.subscribe(contexts=["sales"])
            first = set(svc.service.connections)
            client.drop_connection()
            # sent while the socket is gone: delivered once the client is back
            listed = await asyncio.wait_for(client.session.list_calls(), 10)
            assert listed == {"calls": []}
            assert client.reconnects == 1
            (now,) = set(svc.service.connections) - first
            assert svc.service.state.sessions[now].contexts == {"sales"}
        finally:
            await client.close()
        with pytest.raises(ClientClosed):
            await client.session.list_calls()
