"""docs/asyncapi.yaml: generated from the specs, committed, and valid for the official
AsyncAPI parser (npm @asyncapi/parser, installed by scripts/setup-system)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rwi import asyncapi
from rwi.errors import ERROR_CODES
from rwi.event_specs import EVENTS
from rwi.protocol import SPECS

ROOT = Path(__file__).resolve().parents[3]
VALIDATOR = ROOT / "tools" / "asyncapi" / "validate.mjs"


def test_committed_document_is_what_the_specs_generate() -> None:
    assert asyncapi.DOCUMENT == ROOT / "docs" / "asyncapi.yaml"
    assert asyncapi.DOCUMENT.read_text() == asyncapi.render(), (
        "docs/asyncapi.yaml is stale: run python -m rwi.asyncapi"
    )


def test_every_action_event_and_error_code_is_described() -> None:
    doc = asyncapi.document()
    messages = doc["components"]["messages"]
    for name, spec in SPECS.items():
        params = messages[name]["payload"]["properties"]["params"]
        assert set(params["properties"]) == set(spec.schema)
        assert set(params.get("required", [])) == spec.required
        assert doc["operations"][name]["action"] == "receive"
    originate = messages["call.originate"]["payload"]["properties"]
    assert originate["action"]["enum"] == ["call.originate", "CallOriginate", "Originate"]
    params = originate["params"]["properties"]
    assert params["timeout_secs"] == {"type": "number", "minimum": 1, "maximum": 3600}
    assert params["ringback"] == {"type": "string", "enum": ["local", "passthrough", "none"]}
    for name, spec in EVENTS.items():
        data = messages[f"event.{name}"]["payload"]["properties"]["data"]
        assert set(data["properties"]) == set(spec.fields)
        assert doc["operations"][f"event.{name}"]["action"] == "send"
    error = messages["error"]["payload"]["properties"]["error"]["properties"]["code"]
    assert error["enum"] == list(ERROR_CODES)


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: run scripts/setup-system")
    if not (VALIDATOR.parent / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail("@asyncapi/parser is not installed: run scripts/setup-system")
    return subprocess.run(
        [node, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120
    )


def test_the_official_parser_accepts_the_document() -> None:
    result = _validate(asyncapi.DOCUMENT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid AsyncAPI 3.1.0" in result.stdout


def test_the_validator_rejects_a_broken_document(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(asyncapi.render().replace('action: "receive"', 'action: "take"', 1))
    result = _validate(broken)
    assert result.returncode == 1
    assert '"action" property must be equal to one of the allowed values' in result.stdout
