"""The call-history fold: the events that mention a call, in ``seq`` order -> its rows.

Pure (no I/O). One ``CallHistory`` per call id holds that call's legs; ``apply`` takes
one input row (see ``rwi.projections.fields``) as seen from that call, and ``rows``
gives what the ``calls``, ``call_segments``, ``recordings`` and ``queue_entries`` tables
hold for it. A call's rows depend only on the events that mention it, so the live runner
recomputes a touched call from its events and a rebuild folds all calls in one pass:
both run this same code on the same events and write the same rows.

States mirror ``rwi.domain.evolve`` (offered, ringing, dialing, early, answered,
bridged, held) plus ``ended``. A call id that is used again after its leg ended (a
client may re-use its own ids) starts a new leg: one ``calls`` row per leg, keyed by
``(call_id, leg_seq)``, ``leg_seq`` being the seq of the event that began the leg.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rwi.projections.fields import CROSS, MAX_REF

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


class QueueEntry:
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
        self.entries: list[QueueEntry] = []

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

    def open_entry(self) -> QueueEntry | None:
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


Handler = Callable[["CallHistory", str, InputRow], None]


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

    def apply(self, row: InputRow) -> None:
        handler = HANDLERS.get(row[1])
        if handler is not None:
            handler(self, row[1], row)

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
    )


# --- handlers: (history, type, row); row = seq, type, ts, own, s0 .. s6 -------------


def _touch(h: CallHistory, row: InputRow) -> Leg | None:
    """The current leg, with its last_seq moved to this event."""
    leg = h.leg
    if leg is not None:
        leg.last_seq = row[0]
    return leg


def _own(h: CallHistory, row: InputRow) -> Leg | None:
    """The current leg for an event of the call's own stream; one is started for an
    event of a call whose beginning is not in the log (an imported fragment)."""
    leg = h.leg
    if leg is not None:
        leg.last_seq = row[0]
        return leg
    if row[3] == h.call_id:
        return h.add(Leg(h.call_id, row[0], row[2], None, "offered"))
    return None


def _incoming(h: CallHistory, t: str, row: InputRow) -> None:
    leg = h.leg
    if leg is not None and leg.state != "ended":
        leg.last_seq = row[0]
        return  # the same offer twice: the first one stands
    leg = h.begin(row, row[8] or "inbound", "offered")
    leg.caller, leg.callee, leg.context, leg.trunk = row[4], row[5], row[6], row[7]


def _originated(h: CallHistory, t: str, row: InputRow) -> None:
    leg = h.begin(row, "outbound", "dialing")
    leg.last_seq = row[0]
    leg.direction = "outbound"
    leg.callee, leg.caller, leg.context = row[4], row[5], row[6]
    leg.owner_token = row[7] or h.tokens.get(row[8] or "", leg.owner_token)
    leg.trunk = row[9]


def _command(h: CallHistory, t: str, row: InputRow) -> None:
    action, connection, token, response = row[5], row[6], row[7], row[8]
    if response != "success":
        return
    if connection is not None and token is not None:
        h.tokens[connection] = token
    if action == "call.originate":
        if h.call_id == row[4]:
            created = h.begin(row, "outbound", "dialing")
            created.owner_token = created.owner_token or token
        return
    leg = _touch(h, row)
    if leg is None or leg.state == "ended":
        return
    if action == "call.transfer.attended":
        if row[9] is not None:
            leg.transfers.append(row[9])
        leg.start("consultation", row[10], row[9], row[0], row[2])
    elif action in ("call.transfer.complete", "call.transfer.cancel"):
        leg.stop("consultation", row[0], row[2])


def _claimed(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is not None:
        leg.owner_token = h.tokens.get(row[4] or "", leg.owner_token)


def _attached(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is not None and row[5] == "control":
        leg.owner_token = h.tokens.get(row[4] or "", leg.owner_token)


def _ringing(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is not None and leg.state != "ended":
        leg.state = "ringing" if leg.direction == "inbound" else "early"


def _early_media(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is not None and leg.state != "ended":
        leg.state = "early"


def _answered(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is not None and leg.state != "ended":
        leg.state = "answered"
        if leg.answered is None:
            leg.answered = row[2]


def _busy(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is not None:
        leg.sip_status = integer(row[4])


def _no_answer(h: CallHistory, t: str, row: InputRow) -> None:
    _own(h, row)


def _hangup(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is None or leg.state == "ended":
        return
    leg.reason, leg.hangup_by = row[4], row[6]
    status = integer(row[5])
    if status is not None or leg.sip_status is None:
        leg.sip_status = status
    leg.end(row[0], row[2])


def _peer(h: CallHistory, row: InputRow) -> str | None:
    """The other leg of a bridged/unbridged event, from this call's side."""
    leg_a, leg_b = row[4], row[5]
    if leg_a == leg_b:
        return None
    if h.call_id == leg_a:
        return str(leg_b) if leg_b is not None else None
    if h.call_id == leg_b:
        return str(leg_a) if leg_a is not None else None
    return None


def _bridged(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _touch(h, row)
    peer = _peer(h, row)
    if leg is None or peer is None or leg.state == "ended":
        return
    current = leg.open.get("bridge")
    if current is not None and current.other == peer:
        return
    leg.bridged_with = peer
    leg.state = "bridged"
    leg.start("bridge", peer, None, row[0], row[2])


def _unbridged(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _touch(h, row)
    if leg is None or leg.state == "ended" or h.call_id not in (row[4], row[5]):
        return
    leg.bridged_with = None
    if leg.state == "bridged":
        leg.state = "answered"
    elif leg.held_from == "bridged":
        leg.held_from = "answered"
    leg.stop("bridge", row[0], row[2])


def _transferred(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is None or leg.state == "ended":
        return
    if row[4] is not None:
        leg.transfers.append(row[4])
    leg.start("transfer", None, row[4], row[0], row[2])


def _transfer_done(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is not None:
        leg.stop("transfer", row[0], row[2])


def _hold_started(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is None or leg.state == "ended" or "hold" in leg.open:
        return
    leg.held_from = leg.state
    leg.state = "held"
    leg.hold_count += 1
    leg.start("hold", None, row[4], row[0], row[2])


def _hold_stopped(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is None or leg.state == "ended":
        return
    if leg.state == "held":
        leg.state = leg.held_from or "answered"
    leg.held_from = None
    leg.stop("hold", row[0], row[2])


def _record_started(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is None:
        return
    rec = Recording(row[4] or f"{h.call_id}:{row[0]}", row[5], row[6], row[0], row[2])
    leg.recordings.append(rec)


def _record_paused(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    rec = leg.recording(row[4]) if leg is not None else None
    if rec is not None and rec.state == "recording":
        rec.state = "paused"
        rec.paused.append([row[2], None])


def _record_resumed(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    rec = leg.recording(row[4]) if leg is not None else None
    if rec is not None and rec.state == "paused":
        rec.state = "recording"
        rec.paused[-1][1] = row[2]


def _record_stopped(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    rec = leg.recording(row[4]) if leg is not None else None
    if rec is None:
        return
    if rec.paused and rec.paused[-1][1] is None:
        rec.paused[-1][1] = row[2]
    if t == "record.failed":
        rec.state, rec.error = "failed", row[5]
    else:
        rec.state = "stopped"
        rec.duration = number(row[5])
        rec.path = row[6] or rec.path
    rec.stopped, rec.stopped_seq = row[2], row[0]


def _queue_joined(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is None or leg.state == "ended":
        return
    entry = leg.open_entry()
    if entry is not None:
        entry.left, entry.left_seq, entry.reason = row[2], row[0], "requeued"
    leg.entries.append(QueueEntry(row[4], integer(row[5]), integer(row[6]), row[0], row[2]))
    leg.queue_id = row[4]
    leg.start("queue", None, row[4], row[0], row[2])


def _queue_connected(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    entry = leg.open_entry() if leg is not None else None
    if leg is None or entry is None:
        return
    entry.connected = row[2]
    entry.agent_id, entry.agent_call_id = row[5], row[6]
    leg.agent_id = row[5]
    leg.stop("queue", row[0], row[2])


def _queue_left(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    entry = leg.open_entry() if leg is not None else None
    if leg is None or entry is None:
        return
    entry.left, entry.left_seq, entry.reason = row[2], row[0], row[5]
    leg.stop("queue", row[0], row[2])


def _supervisor(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _touch(h, row)
    if leg is None:
        return
    supervisor, target = row[4] or row[6], row[5]
    if t == "supervisor.mode.stopped":
        leg.stop("supervisor" if h.call_id == supervisor else "supervised", row[0], row[2])
        return
    if leg.state == "ended" or supervisor == target:
        return
    mode = t.split(".")[1]
    if h.call_id == supervisor:
        leg.start("supervisor", target, mode, row[0], row[2])
    elif h.call_id == target:
        leg.start("supervised", supervisor, mode, row[0], row[2])


HANDLERS: dict[str, Handler] = {
    "call.incoming": _incoming,
    "call.originated": _originated,
    "rwi.command": _command,
    "call.claimed": _claimed,
    "call.attached": _attached,
    "call.ringing": _ringing,
    "call.early_media": _early_media,
    "call.answered": _answered,
    "call.busy": _busy,
    "call.no_answer": _no_answer,
    "call.hangup": _hangup,
    "call.bridged": _bridged,
    "call.unbridged": _unbridged,
    "call.transferred": _transferred,
    "call.transfer.accepted": _transfer_done,
    "call.transfer.failed": _transfer_done,
    "media.hold.started": _hold_started,
    "media.hold.stopped": _hold_stopped,
    "record.started": _record_started,
    "record.paused": _record_paused,
    "record.resumed": _record_resumed,
    "record.stopped": _record_stopped,
    "record.failed": _record_stopped,
    "queue.joined": _queue_joined,
    "queue.agent_connected": _queue_connected,
    "queue.left": _queue_left,
    "supervisor.listen.started": _supervisor,
    "supervisor.whisper.started": _supervisor,
    "supervisor.barge.started": _supervisor,
    "supervisor.mode.stopped": _supervisor,
}


#: Event type -> (handler, whether it is applied to other calls than its stream's).
DISPATCH: dict[str, tuple[Handler, bool]] = {t: (h, t in CROSS) for t, h in HANDLERS.items()}


def targets(row: InputRow) -> Iterator[str]:
    """The calls an input row is applied to: its own stream's call, then the other calls
    it names in the slots ``CROSS`` lists (each once, at most ``MAX_REF`` characters)."""
    own = row[3]
    if own is not None:
        yield own
    cross = CROSS.get(row[1])
    if cross is not None:
        seen = [own]
        for i in cross:
            ref = row[i]
            if ref and ref not in seen and len(ref) <= MAX_REF:
                seen.append(ref)
                yield ref


class Fold:
    """Many calls folded at once: a rebuild (every call), or the calls in ``only``.

    A rebuild ``retire``s calls that ended a while ago to keep memory bounded; if a
    retired call is mentioned again later (its id re-used, a late event), it is listed
    in ``late`` and must be recomputed from its whole story afterwards.
    """

    def __init__(self, only: set[str] | None = None) -> None:
        self.calls: dict[str, CallHistory] = {}
        self.only = only
        self.retired: set[str] = set()
        self.late: set[str] = set()

    def history(self, call_id: str) -> CallHistory | None:
        history = self.calls.get(call_id)
        if history is None:
            if self.only is not None and call_id not in self.only:
                return None
            if call_id in self.retired:
                self.late.add(call_id)
                return None
            history = self.calls[call_id] = CallHistory(call_id)
        return history

    def apply(self, rows: Iterable[InputRow]) -> None:
        """Fold rows in ``seq`` order (the hot loop of a rebuild: kept flat on purpose)."""
        calls = self.calls
        dispatch = DISPATCH
        history_of = self.history
        for row in rows:
            etype = row[1]
            found = dispatch.get(etype)
            if found is None:
                continue
            handler, cross = found
            if cross:
                for cid in targets(row):
                    history = history_of(cid)
                    if history is not None:
                        handler(history, etype, row)
                continue
            own = row[3]
            if own is None:
                continue
            history = calls.get(own)
            if history is None:
                history = history_of(own)
                if history is None:
                    continue
            handler(history, etype, row)

    def retire(self, before_seq: int) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """Rows of the calls whose last leg ended with no event since ``before_seq``."""
        done = [
            cid
            for cid, h in self.calls.items()
            if h.legs and h.legs[-1].state == "ended" and h.legs[-1].last_seq < before_seq
        ]
        for cid in done:
            self.retired.add(cid)
            yield from self.calls.pop(cid).rows()

    def rows(self) -> Iterator[tuple[str, tuple[Any, ...]]]:
        for history in self.calls.values():
            yield from history.rows()


@contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk fold.

    A rebuild creates millions of small objects that form no cycles; letting the
    collector rescan them over and over costs more than the fold itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
