"""The durable event log: group-commit appends, gap-free followers, the database.

Everything that happens in the service passes through here before anything reacts to it:
``append`` returns only once the events are committed, with their global ``seq``.
"""

from rwi.store.errors import (
    ConcurrencyError,
    DuplicateEventError,
    StoreClosedError,
    StoreError,
    UnstorableEventError,
)
from rwi.store.events import ANY, NO_STREAM, NewEvent, StoredEvent
from rwi.store.reader import EventReader
from rwi.store.writer import AppendPart, GroupCommitWriter

__all__ = [
    "ANY",
    "NO_STREAM",
    "AppendPart",
    "ConcurrencyError",
    "DuplicateEventError",
    "EventReader",
    "GroupCommitWriter",
    "NewEvent",
    "StoreClosedError",
    "StoreError",
    "StoredEvent",
    "UnstorableEventError",
]
