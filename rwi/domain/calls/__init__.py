"""The calls feature: inbound and outbound legs, claims and ownership, bridges, hold,
prompts, early media, no-answer and orphan handling (contract §4 to §7).

Its parts: ``legs`` (what call decisions share), ``commands`` (RWI commands),
``observations`` (SIP, media and timer happenings), ``no_answer`` (a context's no-answer
action), ``fold`` (evolvers), ``plans`` (effects on SIP and media).
"""

from __future__ import annotations

from rwi.domain.calls import fold, plans
from rwi.domain.calls.commands import HANDLERS
from rwi.domain.calls.delivery import CallResume, audience
from rwi.domain.calls.legs import restart_events
from rwi.domain.calls.observations import RULES, TIMER
from rwi.domain.feature import Feature

__all__ = ["FEATURE", "HANDLERS"]

FEATURE = Feature(
    name="calls",
    commands=HANDLERS,
    needs_media=True,
    observations=RULES,
    timers={"call": TIMER},
    evolvers=fold.EVOLVERS,
    plans=dict.fromkeys(plans.PLANNED, plans.plan),
    pushed=frozenset(
        {
            "call.incoming",
            "call.ringing",
            "call.early_media",
            "call.answered",
            "call.busy",
            "call.no_answer",
            "call.hangup",
            "call.bridged",
            "call.unbridged",
            "call.dtmf",
            "media.play.started",
            "media.play.finished",
            "media.hold.started",
            "media.hold.stopped",
            "media.ringback.passthrough.started",
            "media.ringback.passthrough.stopped",
        }
    ),
    audience=audience,
    resume=CallResume,
    restart=restart_events,
)
