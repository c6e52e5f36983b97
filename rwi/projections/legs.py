"""The rows of the call-history projection in the making: legs and their intervals.

Plain values built by the fold (``rwi.projections.fold``) and turned into table rows by
``CallHistory.rows``; no I/O. Timestamps stay the wire's text until a row is written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

#: One fold input row: seq, type, ts, own call, then the slots (``rwi.projections.fields``).
InputRow = Sequence[Any]

_INT = re.compile(r"^-?[0-9]{1,9}$")
_NUM = re.compile(r"^-?[0-9]{1,12}(\.[0-9]{1,9})?$")


def timestamp(ts: str | None) -> datetime | None:
    """The wire's ``...T...Z`` timestamp, None when malformed (the rule of SQL ``rwi_ts``)."""
    if ts is None or ts[10:11] != "T" or ts[-1:] != "Z":
        return None
    try:
        return datetime.fromisoformat(ts)
    except ValueError:  # e.g. February 30th
        return None


def integer(text: str | None) -> int | None:
    return int(text) if text is not None and _INT.match(text) else None


def number(text: str | None) -> str | None:
    """A JSON number's text, kept as text (exact in a numeric column)."""
    return text if text is not None and _NUM.match(text) else None


def seconds(start: str | None, end: str | None) -> float | None:
    a, b = timestamp(start), timestamp(end)
    if a is None or b is None:
        return None
    return (b - a).total_seconds()


class Segment:
    """One interval of a leg: a bridge, a hold, a queue wait, a transfer, a supervision."""

    __slots__ = ("detail", "ended", "ended_seq", "kind", "other", "started", "started_seq")

    def __init__(self, kind: str, other: str | None, detail: str | None, seq: int, ts: str) -> None:
        self.kind = kind
        self.other = other
        self.detail = detail
        self.started = ts
        self.started_seq = seq
        self.ended: str | None = None
        self.ended_seq: int | None = None


class Recording:
    __slots__ = (
        "duration",
        "error",
        "mode",
        "path",
        "paused",
        "reason",
        "recording_id",
        "started",
        "started_seq",
        "state",
        "stopped",
        "stopped_seq",
    )

    def __init__(self, recording_id: str, mode: str | None, path: str | None, seq: int, ts: str):
        self.recording_id = recording_id
        self.mode = mode
        self.path = path
        self.state = "recording"
        self.started = ts
        self.started_seq = seq
        self.stopped: str | None = None
        self.stopped_seq: int | None = None
        self.duration: str | None = None
        self.paused: list[list[str | None]] = []
        self.error: str | None = None
        #: why it stopped (``record.stopped``): rwi, hangup, max_duration, system
        self.reason: str | None = None


class QueueEntryRow:
    __slots__ = (
        "agent_call_id",
        "agent_id",
        "connected",
        "joined",
        "joined_seq",
        "left",
        "left_seq",
        "position",
        "priority",
        "queue_id",
        "reason",
    )

    def __init__(self, queue_id: str | None, position: int | None, priority: int | None,
                 seq: int, ts: str) -> None:  # fmt: skip
        self.queue_id = queue_id
        self.position = position
        self.priority = priority
        self.joined = ts
        self.joined_seq = seq
        self.connected: str | None = None
        self.left: str | None = None
        self.left_seq: int | None = None
        self.reason: str | None = None
        self.agent_id: str | None = None
        self.agent_call_id: str | None = None


class Leg:
    """One ``calls`` row in the making."""

    __slots__ = (
        "agent_id",
        "answered",
        "bridged_with",
        "call_id",
        "callee",
        "caller",
        "context",
        "created",
        "direction",
        "ended",
        "entries",
        "hangup_by",
        "held_from",
        "hold_count",
        "last_seq",
        "leg_seq",
        "open",
        "owner_token",
        "queue_id",
        "reason",
        "recordings",
        "segments",
        "sip_status",
        "state",
        "transfers",
        "trunk",
    )

    def __init__(self, call_id: str, seq: int, ts: str, direction: str | None, state: str) -> None:
        self.call_id = call_id
        self.leg_seq = seq
        self.created = ts
        self.direction = direction
        self.state = state
        self.caller: str | None = None
        self.callee: str | None = None
        self.context: str | None = None
        self.trunk: str | None = None
        self.owner_token: str | None = None
        self.held_from: str | None = None
        self.answered: str | None = None
        self.ended: str | None = None
        self.reason: str | None = None
        self.sip_status: int | None = None
        self.hangup_by: str | None = None
        self.bridged_with: str | None = None
        self.transfers: list[str] = []
        self.queue_id: str | None = None
        self.agent_id: str | None = None
        self.hold_count = 0
        self.last_seq = seq
        self.segments: list[Segment] = []
        self.open: dict[str, Segment] = {}
        self.recordings: list[Recording] = []
        self.entries: list[QueueEntryRow] = []

    # --- intervals -----------------------------------------------------------------------

    def start(self, kind: str, other: str | None, detail: str | None, seq: int, ts: str) -> None:
        self.stop(kind, seq, ts)
        segment = Segment(kind, other, detail, seq, ts)
        self.segments.append(segment)
        self.open[kind] = segment

    def stop(self, kind: str, seq: int, ts: str) -> None:
        segment = self.open.pop(kind, None)
        if segment is not None:
            segment.ended = ts
            segment.ended_seq = seq

    def recording(self, recording_id: str | None) -> Recording | None:
        """The recording an event names, else the last one still going."""
        for rec in reversed(self.recordings):
            if recording_id is not None and rec.recording_id == recording_id:
                return rec
        if recording_id is None:
            for rec in reversed(self.recordings):
                if rec.state in ("recording", "paused"):
                    return rec
        return None

    def open_entry(self) -> QueueEntryRow | None:
        entry = self.entries[-1] if self.entries else None
        return entry if entry is not None and entry.left is None else None

    def end(self, seq: int, ts: str) -> None:
        """The leg hung up: every interval still open ends with it."""
        self.state = "ended"
        self.ended = ts
        self.held_from = None
        for kind in list(self.open):
            self.stop(kind, seq, ts)
        entry = self.open_entry()
        if entry is not None:
            entry.left, entry.left_seq, entry.reason = ts, seq, "hangup"
        for rec in self.recordings:
            if rec.state in ("recording", "paused"):
                if rec.paused and rec.paused[-1][1] is None:
                    rec.paused[-1][1] = ts
                rec.state, rec.stopped, rec.stopped_seq = "stopped", ts, seq


class CallHistory:
    """Everything one call id has been through: its legs, in order."""

    __slots__ = ("call_id", "leg", "legs", "tokens")

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.legs: list[Leg] = []
        #: the current (last) leg
        self.leg: Leg | None = None
        #: connection id -> token name, from this call's successful command records
        self.tokens: dict[str, str] = {}

    def add(self, leg: Leg) -> Leg:
        self.legs.append(leg)
        self.leg = leg
        return leg

    def begin(self, row: InputRow, direction: str, state: str) -> Leg:
        """A creating event: a new leg, unless the current one is still going."""
        leg = self.leg
        if leg is None or leg.state == "ended":
            leg = self.add(Leg(self.call_id, row[0], row[2], direction, state))
        return leg

    def rows(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(table, row) for every row this call contributes."""
        cid = self.call_id
        for leg in self.legs:
            yield (
                "calls",
                (
                    cid,
                    leg.leg_seq,
                    leg.direction,
                    leg.caller,
                    leg.callee,
                    leg.context,
                    leg.trunk,
                    leg.owner_token,
                    leg.state,
                    timestamp(leg.created),
                    timestamp(leg.answered),
                    timestamp(leg.ended),
                    leg.reason,
                    leg.sip_status,
                    leg.hangup_by,
                    leg.bridged_with,
                    leg.transfers,
                    leg.queue_id,
                    leg.agent_id,
                    [r.recording_id for r in leg.recordings],
                    leg.hold_count,
                    leg.last_seq,
                ),
            )
            for s in leg.segments:
                yield (
                    "call_segments",
                    (
                        cid,
                        leg.leg_seq,
                        s.kind,
                        s.other,
                        s.detail,
                        timestamp(s.started),
                        timestamp(s.ended),
                        s.started_seq,
                        s.ended_seq,
                    ),
                )
            for r in leg.recordings:
                yield "recordings", _recording_row(cid, leg.leg_seq, r)
            for q in leg.entries:
                yield (
                    "queue_entries",
                    (
                        cid,
                        leg.leg_seq,
                        q.queue_id,
                        q.priority,
                        q.position,
                        timestamp(q.joined),
                        timestamp(q.connected),
                        timestamp(q.left),
                        q.reason,
                        q.agent_id,
                        q.agent_call_id,
                        q.joined_seq,
                        q.left_seq,
                    ),
                )


def _recording_row(cid: str, leg_seq: int, r: Recording) -> tuple[Any, ...]:
    paused = 0.0
    intervals = []
    for start, end in r.paused:
        intervals.append({"from": start, "to": end})
        span = seconds(start, end if end is not None else r.stopped)
        paused += span if span is not None and span > 0 else 0.0
    duration = r.duration
    if duration is None and r.stopped is not None:
        total = seconds(r.started, r.stopped)
        if total is not None:
            duration = f"{max(total - paused, 0.0):.3f}"
    return (
        r.recording_id,
        cid,
        leg_seq,
        r.mode,
        r.path,
        r.state,
        timestamp(r.started),
        timestamp(r.stopped),
        duration,
        f"{paused:.3f}",
        json.dumps(intervals, separators=(",", ":"), ensure_ascii=False),
        r.error,
        r.started_seq,
        r.stopped_seq,
        r.reason,
    )
