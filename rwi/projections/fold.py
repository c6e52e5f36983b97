"""The call-history fold: the events that mention a call, in ``seq`` order -> its rows.

Pure (no I/O). One ``CallHistory`` per call id holds its legs (``legs``); ``apply`` takes
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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rwi.projections.fields import CROSS, MAX_REF
from rwi.projections.legs import (
    CallHistory,
    InputRow,
    Leg,
    QueueEntryRow,
    Recording,
    integer,
    number,
)

Handler = Callable[[CallHistory, str, InputRow], None]


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
        rec.reason = row[7]
    rec.stopped, rec.stopped_seq = row[2], row[0]


def _queue_joined(h: CallHistory, t: str, row: InputRow) -> None:
    leg = _own(h, row)
    if leg is None or leg.state == "ended":
        return
    entry = leg.open_entry()
    if entry is not None:
        entry.left, entry.left_seq, entry.reason = row[2], row[0], "requeued"
    # a requeued entry keeps the time already waited: it joined when it began to wait
    joined = row[8] or row[2]
    leg.entries.append(QueueEntryRow(row[4], integer(row[5]), integer(row[6]), row[0], joined))
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
    if leg is not None and entry is None and leg.entries and leg.entries[-1].reason == "hangup":
        # the caller's hangup is logged first and closed the entry; the queue says why
        entry = leg.entries[-1]
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


def apply(history: CallHistory, row: InputRow) -> None:
    """One row, as seen from one call (tests and tooling; the fold has its own loop)."""
    handler = HANDLERS.get(row[1])
    if handler is not None:
        handler(history, row[1], row)


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
