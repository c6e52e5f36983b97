"""Mixing matrix maths: every feature is a set of weighted edges."""

from __future__ import annotations

import numpy as np

from sip_media.media.mixer import (
    EdgeSet,
    Topology,
    apply_edges,
    build_edges,
    compile_plan,
    decode_rows,
    encode_rows,
    mix,
)


def hears(
    topo: Topology, legs: list[str], sources: tuple[str, ...] = ()
) -> dict[str, dict[str, float]]:
    """Run the compiled plan on unit impulses: who hears whom with which gain."""
    leg_rows = {leg: i for i, leg in enumerate(legs)}
    src_rows = {s: i for i, s in enumerate(sources)}
    plan = compile_plan(build_edges(topo), leg_rows, src_rows)
    names = legs + list(sources)
    result: dict[str, dict[str, float]] = {}
    for dst in legs:
        result[dst] = {}
    for k, name in enumerate(names):
        inputs = np.zeros((len(names), 1), dtype=np.float32)
        inputs[k] = 1.0
        out = mix(plan, inputs[: len(legs)], inputs[len(legs) :])
        for dst, i in leg_rows.items():
            if abs(out[i, 0]) > 1e-6:
                result[dst][name] = float(out[i, 0])
    return result


def test_bridge() -> None:
    t = Topology(bridges={frozenset(("a", "b"))})
    assert hears(t, ["a", "b", "c"]) == {"a": {"b": 1.0}, "b": {"a": 1.0}, "c": {}}


def test_hold_replaces_peer_with_music() -> None:
    t = Topology(bridges={frozenset(("a", "b"))}, held={"b": "moh"}, sources={"moh": "b"})
    assert hears(t, ["a", "b"], ("moh",)) == {"a": {}, "b": {"moh": 1.0}}


def test_early_media_is_one_way() -> None:
    t = Topology(early={("callee", "caller")})
    assert hears(t, ["caller", "callee"]) == {"caller": {"callee": 1.0}, "callee": {}}


def test_supervisor_modes() -> None:
    base = {frozenset(("agent", "cust"))}
    legs = ["sup", "agent", "cust"]
    listen = Topology(bridges=set(base), supervisions={"sup": ("agent", "listen")})
    assert hears(listen, legs) == {
        "sup": {"agent": 1.0, "cust": 1.0},
        "agent": {"cust": 1.0},
        "cust": {"agent": 1.0},
    }
    whisper = Topology(
        bridges=set(base), supervisions={"sup": ("agent", "whisper")}, whisper_gain=0.5
    )
    assert hears(whisper, legs) == {
        "sup": {"agent": 1.0, "cust": 1.0},
        "agent": {"cust": 1.0, "sup": 0.5},
        "cust": {"agent": 1.0},
    }
    barge = Topology(bridges=set(base), supervisions={"sup": ("agent", "barge")})
    assert hears(barge, legs) == {
        "sup": {"agent": 1.0, "cust": 1.0},
        "agent": {"cust": 1.0, "sup": 1.0},
        "cust": {"agent": 1.0, "sup": 1.0},
    }


def test_supervision_follows_the_agent_leg() -> None:
    legs = ["sup", "agent", "cust", "other"]
    # unbridged: the supervisor still hears the agent; barge reaches nobody else
    alone = Topology(supervisions={"sup": ("agent", "barge")})
    assert hears(alone, legs) == {"sup": {"agent": 1.0}, "agent": {"sup": 1.0}, "cust": {},
                                  "other": {}}  # fmt: skip
    # re-bridged to another leg: the rule follows the agent without a new SuperviseLeg
    moved = Topology(
        bridges={frozenset(("agent", "other"))}, supervisions={"sup": ("agent", "barge")}
    )
    assert hears(moved, legs)["sup"] == {"agent": 1.0, "other": 1.0}
    assert hears(moved, legs)["other"] == {"agent": 1.0, "sup": 1.0}
    assert hears(moved, legs)["cust"] == {}
    # the agent held: it hears music, the supervisor hears the agent and the music
    held = Topology(
        bridges={frozenset(("agent", "cust"))},
        held={"agent": "moh"},
        sources={"moh": "agent"},
        supervisions={"sup": ("agent", "whisper")},
    )
    assert hears(held, legs, ("moh",)) == {
        "sup": {"agent": 1.0, "moh": 1.0},
        "agent": {"moh": 1.0, "sup": 1.0},
        "cust": {},
        "other": {},
    }


def test_two_supervisors_on_one_agent() -> None:
    t = Topology(
        bridges={frozenset(("agent", "cust"))},
        supervisions={"s1": ("agent", "listen"), "s2": ("agent", "whisper")},
    )
    got = hears(t, ["s1", "s2", "agent", "cust"])
    assert got["s1"] == {"agent": 1.0, "cust": 1.0}  # s2's whisper is the agent's only
    assert got["s2"] == {"agent": 1.0, "cust": 1.0}
    assert got["agent"] == {"cust": 1.0, "s2": 1.0}
    assert got["cust"] == {"agent": 1.0}
    # a barge is part of the call: the other supervisor hears it
    t.supervisions["s2"] = ("agent", "barge")
    got = hears(t, ["s1", "s2", "agent", "cust"])
    assert got["s1"] == {"agent": 1.0, "cust": 1.0, "s2": 1.0}
    assert got["cust"] == {"agent": 1.0, "s2": 1.0}


def test_barge_into_a_conference_does_not_echo() -> None:
    t = Topology(
        conferences={"k": {"agent": False, "x": False}}, supervisions={"sup": ("agent", "barge")}
    )
    got = hears(t, ["sup", "agent", "x"])
    assert got["sup"] == {"agent": 1.0, "x": 1.0}
    assert got["x"] == {"agent": 1.0, "sup": 1.0}
    assert got["agent"] == {"x": 1.0, "sup": 1.0}


def test_customer_leaving_keeps_the_supervision() -> None:
    t = Topology(bridges={frozenset(("agent", "cust"))}, supervisions={"sup": ("agent", "listen")})
    t.forget_leg("cust")
    assert t.supervisions == {"sup": ("agent", "listen")}
    t.forget_leg("agent")
    assert not t.supervisions


def test_conference_n_minus_one_and_mute() -> None:
    t = Topology(conferences={"c": {"a": False, "b": False, "c": False, "d": True}})
    got = hears(t, ["a", "b", "c", "d"])
    assert got == {
        "a": {"b": 1.0, "c": 1.0},
        "b": {"a": 1.0, "c": 1.0},
        "c": {"a": 1.0, "b": 1.0},
        "d": {"a": 1.0, "b": 1.0, "c": 1.0},
    }


def test_playback_mixes_over_bridge() -> None:
    t = Topology(bridges={frozenset(("a", "b"))}, sources={"p": "a"})
    assert hears(t, ["a", "b"], ("p",)) == {"a": {"b": 1.0, "p": 1.0}, "b": {"a": 1.0}}


def test_forget_leg_cleans_everything() -> None:
    t = Topology(
        bridges={frozenset(("a", "b"))},
        early={("a", "c")},
        held={"a": "x"},
        supervisions={"s": ("a", "listen")},
        conferences={"k": {"a": False}},
    )
    t.forget_leg("a")
    assert not t.bridges and not t.early and not t.held and not t.supervisions
    assert not t.conferences


def test_apply_edges_vectorised_sum() -> None:
    nodes = np.arange(12, dtype=np.float32).reshape(4, 3)
    edges = EdgeSet.from_lists([2, 0, 2, 3], [1, 3, 0, 2], [1.0, 2.0, -1.0, 1.0])
    assert edges.copy_dst.tolist() == [3] and edges.copy_src.tolist() == [2]
    out = apply_edges(nodes, edges, 4)
    assert np.allclose(out[0], 2 * nodes[3])
    assert np.allclose(out[1], 0)
    assert np.allclose(out[2], nodes[1] - nodes[0])
    assert np.allclose(out[3], nodes[2])
    assert EdgeSet.from_lists([], [], []).empty


def test_decode_encode_rows_mixed_laws() -> None:
    codes = np.array([[0xFF] * 4, [0xD5] * 4], dtype=np.uint8)
    pcm = decode_rows(codes, np.array([1]))
    assert np.all(np.abs(pcm) <= 8)
    enc = encode_rows(np.full((2, 4), 40000.0, dtype=np.float32), np.array([1]))
    assert enc[0, 0] == 0x80 and enc[1, 0] == 0xAA  # clipped to full scale
