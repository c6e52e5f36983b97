"""JSON text for the hot paths: event data into the log, events out of it, frames to
clients. orjson where it can (several times faster than the standard library), the
standard library where orjson refuses a value (integers beyond 64 bits, lone
surrogates, odd key types), so the result never depends on which one ran.

Incoming frames are still parsed by the standard library (``rwi.protocol``): its
acceptance rules are part of the contract.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

#: types orjson would write its own way: left to ``default=str``, as the stdlib does
_AS_STR = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
#: orjson reads integers beyond 64 bits as floats, silently: such text goes to the stdlib
_LONG_NUMBER = re.compile(r"\d{19,}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{19,}")


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is; unknown types as ``str(value)``.
    Raises ``TypeError``/``ValueError`` for what cannot be JSON text at all."""
    try:
        return orjson.dumps(value, default=str, option=_AS_STR).decode()
    except (TypeError, orjson.JSONEncodeError):
        # orjson refuses integers past 64 bits; the standard library writes them, but
        # would also write NaN/Infinity, which is not JSON: those become null, as orjson
        # writes them.
        return json.dumps(_finite(value), separators=(",", ":"), ensure_ascii=False, default=str)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def loads(text: str | bytes) -> Any:
    long_number = (
        _LONG_NUMBER.search(text) if isinstance(text, str) else _LONG_NUMBER_BYTES.search(text)
    )
    if long_number:
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
