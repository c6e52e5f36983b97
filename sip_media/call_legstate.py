"""The live state of one call leg (SIP dialog + media leg) inside the call-leg layer.

Where it sits: private bookkeeping of :mod:`sip_media.calls`. A :class:`LiveLeg` holds
the leg's state machine (:class:`LegState`, one ``transition`` that logs ``old -> new``),
its SDP (the stored inbound offer, our last local SDP) and what the media leg was last
told, plus a lock so effects and observations on one leg apply one at a time.
:class:`LegInfo` is the read-only snapshot handed out for inspection.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field

from sip_media.call_sdp import MediaParams
from sip_media.sip.sdp import LocalMedia, SessionDescription

log = logging.getLogger(__name__)

# SIP stack end causes -> LegEnded/LegFailed reasons (others: "-" becomes "_").
_REASONS = {"normal": "bye", "cancelled": "cancel"}


def cause_reason(cause: str) -> str:
    """The observation reason for a SIP stack end cause (``normal`` -> ``bye``...)."""
    return _REASONS.get(cause, cause.replace("-", "_"))


class LegState(enum.Enum):
    """``offered -> ringing -> answering -> answered`` (inbound),
    ``dialing -> ringing -> answered`` (outbound), then ``ending -> ended``."""

    OFFERED = "offered"
    DIALING = "dialing"
    RINGING = "ringing"
    ANSWERING = "answering"
    ANSWERED = "answered"
    ENDING = "ending"
    ENDED = "ended"

    @classmethod
    def over(cls) -> tuple[LegState, ...]:
        """States in which the leg is going or gone."""
        return (cls.ENDING, cls.ENDED)


@dataclass(frozen=True, slots=True)
class LegInfo:
    """Snapshot of a live leg."""

    leg_id: str
    state: str
    outbound: bool
    local_rtp: tuple[str, int] | None
    remote_rtp: tuple[str, int] | None
    payload_type: int | None
    telephone_event_pt: int | None
    direction: str | None


@dataclass(eq=False)
class LiveLeg:
    """Mutable state of one leg; see the module docstring."""

    leg_id: str
    outbound: bool
    state: LegState
    offer: bytes | None = None  # inbound: the INVITE's SDP, answered on ring/answer
    local: LocalMedia | None = None  # our RTP address, once the media leg exists
    local_sdp: SessionDescription | None = None  # the last SDP we sent
    applied: MediaParams | None = None  # what the media leg was last told
    answered: bool = False
    hangup_requested: bool = False
    media_closed: bool = False
    end_reason: str | None = None
    playbacks: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def transition(self, new: LegState) -> None:
        """Change state (logged)."""
        old = self.state
        if old is new:
            return
        self.state = new
        log.debug("leg %s: %s -> %s", self.leg_id, old.value, new.value)

    def snapshot(self) -> LegInfo:
        """The read-only view of this leg."""
        applied = self.applied
        return LegInfo(
            leg_id=self.leg_id,
            state=self.state.value,
            outbound=self.outbound,
            local_rtp=(self.local.address, self.local.port) if self.local else None,
            remote_rtp=applied.remote if applied else None,
            payload_type=applied.payload_type if applied else None,
            telephone_event_pt=applied.telephone_event_pt if applied else None,
            direction=applied.direction if applied else None,
        )
