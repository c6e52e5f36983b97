"""The call aggregate: one leg's folded state and its state machine (contract §6).

``CallStatus`` names the states; ``CallState.transition`` is the one way ``evolve``
moves a call between them (it logs ``old -> new``), and ``CallState.require`` is the
one place a command is refused because of the call's state (``invalid_state``).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import Any

from rwi.errors import RwiError

log = logging.getLogger(__name__)


class CallStatus(enum.StrEnum):
    OFFERED = "offered"  # inbound, not answered
    RINGING = "ringing"  # inbound, 180 sent
    DIALING = "dialing"  # outbound INVITE sent
    EARLY = "early"  # outbound, 180/183 received
    ANSWERED = "answered"
    BRIDGED = "bridged"
    HELD = "held"


#: The moves of contract §6 (ending is leaving the state: the call is gone).
NEXT: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.OFFERED: frozenset({CallStatus.RINGING, CallStatus.ANSWERED}),
    CallStatus.RINGING: frozenset({CallStatus.ANSWERED}),
    CallStatus.DIALING: frozenset({CallStatus.EARLY, CallStatus.ANSWERED}),
    CallStatus.EARLY: frozenset({CallStatus.ANSWERED}),
    CallStatus.ANSWERED: frozenset({CallStatus.BRIDGED, CallStatus.HELD}),
    CallStatus.BRIDGED: frozenset({CallStatus.ANSWERED, CallStatus.HELD}),
    CallStatus.HELD: frozenset({CallStatus.ANSWERED, CallStatus.BRIDGED}),
}
ANSWERABLE = (CallStatus.OFFERED, CallStatus.RINGING)
RINGING_OUT = (CallStatus.DIALING, CallStatus.EARLY)


@dataclass
class CallState:
    call_id: str
    direction: str
    state: CallStatus
    caller: str = ""
    callee: str = ""
    context: str | None = None
    owner: str | None = None
    bridged_with: str | None = None
    created_at: str = ""
    answered_at: str | None = None
    attached: dict[str, str] = field(default_factory=dict)
    #: state to return to on unhold (answered or bridged)
    held_from: CallStatus | None = None
    playback_id: str | None = None
    #: when the owner went away (orphan window), as the decision's ISO time
    orphaned_at: str | None = None
    destination: str = ""
    #: an outbound leg's ringback wish and the leg that hears it while this one rings
    ringback: str = "local"
    ringback_target: str | None = None
    #: the leg hearing hold music while this (outbound) leg is being dialled
    hold_target: str | None = None
    #: on a leg hearing another leg's early media: that leg
    passthrough_from: str | None = None
    #: the other leg of a plain B2BUA call (dialplan route to a local user, or a context's
    #: no-answer transfer; no owner)
    b2bua_peer: str | None = None
    #: an outbound leg heard early: 183 with SDP seen (``call.early_media`` sent once)
    early_media: bool = False
    #: a transfer of this leg in progress: its kind (``attended``, ``blind``, ``refer``,
    #: ``referred`` once the far end accepted), the new leg dialled for it, and the leg
    #: this one was bridged with when an attended transfer began
    transfer_kind: str | None = None
    transfer_leg: str | None = None
    transfer_peer: str | None = None
    #: on a leg dialled for a transfer: the leg being transferred
    transfer_of: str | None = None
    #: an unanswered outbound leg the service is ending (``call.ending``): the reason
    #: its ``call.hangup`` will carry once SIP reports the leg over; it rings and
    #: answers for nobody meanwhile
    ending: str | None = None
    #: derived index (not folded state): legs hearing this leg's early media
    passthrough_to: set[str] = field(default_factory=set)
    #: derived (not in the snapshot): the service instance the call began under; a call
    #: of an earlier instance has no legs in this process
    instance: str | None = None

    def transition(self, new: CallStatus) -> None:
        """Move to ``new``. Events are facts: a move outside §6 is logged, not refused
        (the log decides; ``require`` keeps commands from asking for one)."""
        old = self.state
        if old is new:
            return
        if new not in NEXT[old]:
            log.warning("call %s: unexpected %s -> %s", self.call_id, old.value, new.value)
        self.state = new
        log.debug("call %s: %s -> %s", self.call_id, old.value, new.value)

    def require(self, action: str, *allowed: CallStatus, message: str | None = None) -> None:
        """``invalid_state`` unless the call is in one of ``allowed`` (``message``: what
        the refusal says instead of naming the states)."""
        if self.state in allowed:
            return
        if message is None:
            needs = " or ".join(s.value for s in allowed)
            message = f"call {self.call_id!r} is {self.state.value}; {action} needs {needs}"
        raise RwiError("invalid_state", message)

    def summary(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "state": self.state.value,
            "direction": self.direction,
            "caller": self.caller,
            "callee": self.callee,
            "context": self.context,
            "bridged_with": self.bridged_with,
            "created_at": self.created_at,
            "answered_at": self.answered_at,
        }
