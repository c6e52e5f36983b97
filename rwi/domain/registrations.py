"""The registrations feature: SIP registrations as the registrar reported them, kept in
the log so a restart can give the registrar back its bindings."""

from __future__ import annotations

from rwi.domain.feature import Feature
from rwi.domain.model import Emit, EventLike, Observation, State


def _registration(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """A phone (un)registered."""
    data = {"aor": obs.data["aor"], "bindings": obs.data["bindings"]}
    return (Emit(f"registration:{data['aor']}", "sip.registration.changed", data),)


def _changed(state: State, event: EventLike) -> None:
    if event.data["bindings"]:
        state.registrations[event.data["aor"]] = event.data["bindings"]
    else:
        state.registrations.pop(event.data["aor"], None)


FEATURE = Feature(
    name="registrations",
    observations={"sip.registration": _registration},
    evolvers={"sip.registration.changed": _changed},
)
