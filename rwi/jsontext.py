"""JSON text for the hot paths: event data into the log, events out of it, frames to
clients. orjson where it can (several times faster than the standard library), the
standard library where orjson refuses a value (integers beyond 64 bits, lone
surrogates, odd key types), so the result never depends on which one ran.

Incoming frames are still parsed by the standard library (``rwi.protocol``): its
acceptance rules are part of the contract.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is; unknown types as ``str(value)``.
    Raises ``TypeError``/``ValueError`` for what cannot be JSON text at all."""
    try:
        return orjson.dumps(value, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
