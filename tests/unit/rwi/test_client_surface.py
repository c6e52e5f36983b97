"""The client's typed surface is generated from the protocol's tables and stays in sync."""

from __future__ import annotations

import inspect
from pathlib import Path

from mypy import api as mypy_api

from rwi.client import ERRORS, actions
from rwi.client.codegen import generated, split_action
from rwi.client.session import Client
from rwi.domain.delivery import PUSHED
from rwi.errors import ERROR_CODES
from rwi.event_specs import EVENTS
from rwi.protocol import SPECS


def test_committed_client_code_is_what_the_specs_generate() -> None:
    for path, text in generated().items():
        assert path.read_text() == text, f"{path} is stale: run python -m rwi.client.codegen"


def test_every_action_has_a_typed_method_with_its_params() -> None:
    client = Client("ws://127.0.0.1:1/rwi/v1", "t")
    for spec in SPECS.values():
        namespace, method = split_action(spec.name)
        bound = getattr(getattr(client, namespace), method)
        params = inspect.signature(bound).parameters
        assert set(params) == set(spec.schema), spec.name
        for name, param in params.items():
            assert param.kind is inspect.Parameter.KEYWORD_ONLY
            assert (param.default is inspect.Parameter.empty) == (name in spec.required)
    assert {n for n in dir(actions) if n.endswith("Actions") and n != "Actions"} == {
        f"{split_action(name)[0].capitalize()}Actions" for name in SPECS
    }


def test_one_exception_class_per_error_code() -> None:
    assert tuple(ERRORS) == ERROR_CODES
    assert len(set(ERRORS.values())) == len(ERROR_CODES)
    for code, cls in ERRORS.items():
        assert cls.code == code


def test_the_event_table_names_exactly_the_pushed_events() -> None:
    assert set(EVENTS) == PUSHED


def test_client_code_type_checks_under_mypy_strict(tmp_path: Path) -> None:
    user = tmp_path / "user.py"
    user.write_text(
        "from rwi.client import CallNotFound, Event, connect\n"
        "async def main() -> None:\n"
        "    async with connect('ws://127.0.0.1:8080/rwi/v1', 'token') as rwi:\n"
        "        data: dict[str, object] = await rwi.call.originate(\n"
        "            call_id='a', destination='sip:1@local', timeout_secs=5.0, ringback='none')\n"
        "        event: Event = await rwi.events.wait('call.answered', call_id='a')\n"
        "        async for e in rwi.events:\n"
        "            print(e.seq, e.name, data, event)\n"
        "        try:\n"
        "            await rwi.call.hangup(call_id='a')\n"
        "        except CallNotFound as exc:\n"
        "            print(exc.code)\n"
    )
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from rwi.client import connect\n"
        "async def main() -> None:\n"
        "    async with connect('ws://x', 't') as rwi:\n"
        "        await rwi.call.originate(call_id='a', destination='d', ringback='loud')\n"
        "        await rwi.call.answer(callid='a')\n"
    )
    out, _, status = mypy_api.run(["--strict", "--no-incremental", str(user)])
    assert status == 0, out
    out, _, status = mypy_api.run(["--strict", "--no-incremental", str(wrong)])
    assert status == 1
    assert "incompatible type \"Literal['loud']\"" in out
    assert 'Unexpected keyword argument "callid"' in out
