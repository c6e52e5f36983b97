"""rwi.jsontext: orjson's output where it can, the standard library's where it refuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from rwi import jsontext


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [True, None, 1.5], "ü": "日本"},
        {"big": 2**70},  # orjson refuses integers beyond 64 bits
        {"lone": "\udc80"},  # and lone surrogates
        {1: "int key"},  # and non-string keys
        {"when": datetime(2026, 1, 2, tzinfo=UTC)},
    ],
)
def test_dumps_reads_back_as_the_standard_library_would(value: dict[str, Any]) -> None:
    text = jsontext.dumps(value)
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    assert json.loads(text) == json.loads(expected)
    assert text == expected


def test_loads_falls_back_for_what_orjson_refuses() -> None:
    assert jsontext.loads('{"big": 123456789012345678901234567890}') == {
        "big": 123456789012345678901234567890
    }
    assert jsontext.loads(b'{"x": [1, "\\u00fc"], "n": -12345678901234567890}') == {
        "x": [1, "ü"],
        "n": -12345678901234567890,
    }
    with pytest.raises(ValueError):
        jsontext.loads("{not json")


def test_the_fallback_for_long_integers_writes_no_nan_or_infinity() -> None:
    # orjson refuses the long integer, so the standard library writes this one
    text = jsontext.dumps({"n": -9223372036854775809, "inf": float("inf"), "nan": [float("nan")]})
    assert text == '{"n":-9223372036854775809,"inf":null,"nan":[null]}'
