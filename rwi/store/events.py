"""Value types of the event log: what an appender hands in, what a reader gets back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

#: ``expected_version`` meaning "append wherever the stream is now".
ANY: Final = None
#: ``expected_version`` meaning "the stream must not exist yet".
NO_STREAM: Final = 0


@dataclass(frozen=True)
class NewEvent:
    """An event to append. ``event_id`` makes the append idempotent."""

    type: str
    data: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class StoredEvent:
    """An event as committed: ``seq`` is its dense, gap-free position in the whole log."""

    seq: int
    event_id: uuid.UUID
    stream_id: str
    stream_version: int
    type: str
    data: dict[str, Any]
    meta: dict[str, Any]
    recorded_at: datetime
