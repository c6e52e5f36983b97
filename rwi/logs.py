"""The process's log output: plain text lines, or one JSON object per line.

Where it sits: configured once by the CLI (``log.level``, ``log.format``). The service
says which command, call or log position a log line is about through ``context`` (a
context variable, so asyncio tasks started inside it keep it) or through a log call's
``extra``; the JSON form carries them as ``action_id``, ``call_id`` and ``seq``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: the fields a line is about, when they apply
FIELDS = ("action_id", "call_id", "seq")

_context: ContextVar[dict[str, Any] | None] = ContextVar("rwi_log_context", default=None)


@contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Log lines inside (and in tasks started inside) carry ``fields`` (None: left out)."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``message``, the
    ``FIELDS`` that apply, and ``exc`` with the traceback of a logged exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context.get() or {})
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str, form: str) -> None:
    """The root logger's one handler (stderr) in the configured form."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
