"""Calls that end while their token's connection is away are replayed on resume."""

from __future__ import annotations

from rwi.domain.delivery import ResumeFilter
from rwi.domain.model import Emit, Policy
from tests.unit.rwi.world import World, outbound_answered


def reconnect(w: World, cid: str, token: str) -> None:
    w.apply([Emit(f"session:{cid}", "session.opened", {"connection_id": cid, "token": token})])


def close(w: World, cid: str) -> None:
    w.apply([Emit(f"session:{cid}", "session.closed", {"connection_id": cid, "reason": "gone"})])


def entitled(w: World, cid: str) -> list[tuple[str, str | None]]:
    wanted = ResumeFilter(w.state, cid)
    return [(e.type, e.data.get("call_id")) for e in w.log if wanted(e)]


def test_a_call_ending_while_its_owner_is_away_is_replayed_to_the_token() -> None:
    w = World(Policy(orphan_hold_secs=30))
    w.open("app")
    outbound_answered(w, "app", "leg")
    close(w, "app")
    w.later(5)
    assert w.see("sip.call.ended", call_id="leg") == ["call.hangup"]
    reconnect(w, "app.2", "app")
    got = entitled(w, "app.2")
    assert ("call.answered", "leg") in got
    assert got[-1] == ("call.hangup", "leg")
    # another token is owed nothing of it
    reconnect(w, "other", "other")
    assert entitled(w, "other") == []
    assert w.replayed() == w.state.snapshot()


def test_what_ended_is_forgotten_after_the_orphan_window() -> None:
    w = World(Policy(orphan_hold_secs=30))
    w.open("app")
    outbound_answered(w, "app", "leg")
    close(w, "app")
    w.see("sip.call.ended", call_id="leg")
    w.later(31)
    reconnect(w, "app.2", "app")
    assert entitled(w, "app.2") == []
    assert w.state.missed == {}
    assert w.replayed() == w.state.snapshot()


def test_a_call_taken_over_by_another_connection_is_not_owed_to_the_old_token() -> None:
    w = World(Policy(orphan_hold_secs=30))
    w.open("app")
    outbound_answered(w, "app", "leg")
    close(w, "app")
    w.open("rescuer")
    w.do("rescuer", "session.attach_call", call_id="leg")
    w.see("sip.call.ended", call_id="leg")
    reconnect(w, "app.2", "app")
    assert entitled(w, "app.2") == []
