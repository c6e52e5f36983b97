"""Errors of the event store; each append request fails alone, never its batch-mates."""

from __future__ import annotations


class StoreError(Exception):
    """Base of every event-store error."""


class ConcurrencyError(StoreError):
    """Optimistic concurrency: the stream is not at the version the appender expected."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id!r} is at version {actual}, append expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class DuplicateEventError(StoreError):
    """Some but not all event ids of one append already exist: not a clean retry."""


class StoreClosedError(StoreError):
    """The writer was closed before the append could be committed."""


class UnstorableEventError(StoreError):
    """Event data PostgreSQL's jsonb cannot hold (NUL characters, lone surrogates)."""
