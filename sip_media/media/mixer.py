"""The mixing matrix: who hears whom, compiled into numpy index arrays once per change.

Where it sits: the engine keeps a :class:`Topology` (bridges, early media, holds,
playbacks, supervisions, conferences) and, whenever it changes, calls
:func:`build_edges` to turn it into weighted edges ``(destination, source, gain)``.
Bridges, hold, listen/whisper/barge and conferences are all just edge sets:

* bridge a-b: a->b, b->a;  early media a=>b: a->b;
* hold: the held leg leaves every leg/bus edge and hears its hold source;
* supervision follows the agent leg: listen: sup hears the agent and whatever the agent
  hears (but other supervisors' whispers); whisper adds sup->agent; barge adds sup->agent
  and sup->whoever hears the agent
  (so it keeps its meaning through hold, re-bridges and transfers of the agent leg);
* conference: member->bus (unmuted), bus->member and member->member with gain -1
  (N-1 mixes from one sum per conference).

Every tick, :func:`mix` applies the compiled edges to all frames at once
(``np.add.reduceat`` over edges sorted by destination): buses first, then outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from . import g711

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Node = tuple[str, str]  # ("leg", id) | ("src", playback_id) | ("bus", conference_id)

ULAW_F32 = g711.ULAW_DECODE.astype(np.float32)
ALAW_F32 = g711.ALAW_DECODE.astype(np.float32)


@dataclass
class Topology:
    """Who is attached to whom (mutable; owned by the engine)."""

    bridges: set[frozenset[str]] = field(default_factory=set)
    early: set[tuple[str, str]] = field(default_factory=set)  # (from_leg, to_leg)
    held: dict[str, str] = field(default_factory=dict)  # leg -> hold playback id
    sources: dict[str, str] = field(default_factory=dict)  # playback id -> leg
    supervisions: dict[str, tuple[str, str]] = field(default_factory=dict)  # sup -> agent, mode
    conferences: dict[str, dict[str, bool]] = field(default_factory=dict)  # id -> muted
    listen_gain: float = 1.0
    whisper_gain: float = 1.0
    barge_gain: float = 1.0

    def forget_leg(self, leg: str) -> None:
        """Remove every attachment of a leg (sources are removed by the engine)."""
        self.bridges = {b for b in self.bridges if leg not in b}
        self.early = {e for e in self.early if leg not in e}
        self.held.pop(leg, None)
        self.supervisions = {s: v for s, v in self.supervisions.items() if leg not in (s, v[0])}
        for conf in list(self.conferences):
            self.conferences[conf].pop(leg, None)
            if not self.conferences[conf]:
                del self.conferences[conf]


def build_edges(topo: Topology) -> list[tuple[Node, Node, float]]:
    """All weighted edges (destination, source, gain) of a topology."""
    edges: list[tuple[Node, Node, float]] = []
    held = topo.held

    def link(dst: str, src: str, gain: float) -> None:
        if dst not in held and src not in held:
            edges.append((("leg", dst), ("leg", src), gain))

    for pair in topo.bridges:
        a, b = sorted(pair)
        link(a, b, 1.0)
        link(b, a, 1.0)
    for src, dst in topo.early:
        if frozenset((src, dst)) not in topo.bridges:
            link(dst, src, 1.0)
    for conf, members in topo.conferences.items():
        bus: Node = ("bus", conf)
        for leg, muted in members.items():
            if leg in held:
                continue
            edges.append((("leg", leg), bus, 1.0))
            if not muted:
                edges.append((bus, ("leg", leg), 1.0))
                edges.append((("leg", leg), ("leg", leg), -1.0))
    for pid, leg in topo.sources.items():
        edges.append((("leg", leg), ("src", pid), 1.0))
    if topo.supervisions:
        edges += _supervision_edges(topo, edges)
    return edges


def _supervision_edges(
    topo: Topology, base: list[tuple[Node, Node, float]]
) -> list[tuple[Node, Node, float]]:
    """Edges of the supervisions, derived from the agent legs' edges in ``base``: a
    supervisor talks to the agent (whisper) and to whoever hears the agent (barge), and
    hears the agent and everything the agent hears but another supervisor's whisper (only
    the agent hears a whisper; a barge is part of the call, so other supervisors hear
    it). A held supervisor hears only its hold music."""
    talk: list[tuple[Node, Node, float]] = []
    whispers: list[tuple[Node, Node, float]] = []
    for sup, (agent, mode) in topo.supervisions.items():
        if sup in topo.held or mode == "listen":
            continue
        me: Node = ("leg", sup)
        gain = topo.whisper_gain if mode == "whisper" else topo.barge_gain
        reach = [("leg", agent)]
        if mode == "barge":
            reach += [dst for dst, src, _ in base if src == ("leg", agent) and dst != src]
        if any(dst[0] == "bus" for dst in reach):
            # into the agent's conference: its members (the agent too) hear it from
            # there, and it does not hear itself back
            reach = [dst for dst in reach if dst[0] == "bus"] + [me]
            talk += [(dst, me, -gain if dst == me else gain) for dst in reach]
        else:
            talk += [(dst, me, gain) for dst in reach]
        if mode == "whisper":
            whispers += talk[len(talk) - len(reach) :]
    heard = base + [edge for edge in talk if edge not in whispers]
    out = list(talk)
    for sup, (agent, _mode) in topo.supervisions.items():
        if sup in topo.held:
            continue
        me = ("leg", sup)
        out.append((me, ("leg", agent), topo.listen_gain))
        for dst, src, gain in heard:
            if dst == ("leg", agent) and src != me:
                out.append((me, src, gain * topo.listen_gain))
    return out


@dataclass(frozen=True)
class EdgeSet:
    """Edges of one mixing stage.

    Destinations fed by exactly one source at gain 1 (every plain bridge) are a single
    gather-copy (``copy_dst``/``copy_src``); the others are summed with
    ``np.add.reduceat`` over edges sorted by destination (``dst``/``src``/``gain``).
    """

    copy_dst: I64
    copy_src: I64
    dst: I64
    src: I64
    gain: F32
    starts: I64

    @property
    def empty(self) -> bool:
        """True when no destination receives anything."""
        return not (self.copy_dst.size or self.dst.size)

    @classmethod
    def from_lists(cls, dst: list[int], src: list[int], gain: list[float]) -> EdgeSet:
        """Split off the single unit-gain edges, sort the rest, find segment starts."""
        d = np.asarray(dst, dtype=np.int64)
        s = np.asarray(src, dtype=np.int64)
        g = np.asarray(gain, dtype=np.float32)
        counts = np.bincount(d) if d.size else np.zeros(0, dtype=np.int64)
        single = (counts[d] == 1) & (g == 1.0) if d.size else np.zeros(0, dtype=bool)
        rest_d, rest_s, rest_g = d[~single], s[~single], g[~single]
        order = np.argsort(rest_d, kind="stable")
        rest_d, rest_s, rest_g = rest_d[order], rest_s[order], rest_g[order]
        starts = (
            np.flatnonzero(np.concatenate([[True], rest_d[1:] != rest_d[:-1]]))
            if rest_d.size
            else np.zeros(0, dtype=np.int64)
        )
        return cls(d[single], s[single], rest_d, rest_s, rest_g, starts.astype(np.int64))


def apply_edges(nodes: F32, edges: EdgeSet, n_out: int) -> F32:
    """``out[d] = sum(gain * nodes[s])`` over the edges, vectorised."""
    out = np.zeros((n_out, nodes.shape[1]), dtype=np.float32)
    if edges.copy_dst.size:
        out[edges.copy_dst] = nodes[edges.copy_src]
    if edges.dst.size:
        weighted = nodes[edges.src] * edges.gain[:, None]
        out[edges.dst[edges.starts]] = np.add.reduceat(weighted, edges.starts, axis=0)
    return out


@dataclass(frozen=True)
class MixPlan:
    """Index form of a topology for the current set of mixed legs and sources.

    Node rows for the output stage: ``[legs (n_legs) | sources (n_src) | buses]``.
    """

    n_legs: int
    n_sources: int
    n_buses: int
    bus_edges: EdgeSet
    out_edges: EdgeSet


def compile_plan(
    edges: list[tuple[Node, Node, float]],
    leg_rows: dict[str, int],
    source_rows: dict[str, int],
) -> MixPlan:
    """Map node names to rows; edges touching unknown legs/sources are ignored."""
    buses = sorted({n[1] for e in edges for n in e[:2] if n[0] == "bus"})
    n_legs, n_src = len(leg_rows), len(source_rows)
    bus_rows = {b: n_legs + n_src + i for i, b in enumerate(buses)}

    def row(node: Node) -> int | None:
        kind, name = node
        if kind == "leg":
            return leg_rows.get(name)
        if kind == "src":
            r = source_rows.get(name)
            return None if r is None else n_legs + r
        return bus_rows[name]

    bd: list[int] = []
    bs: list[int] = []
    bg: list[float] = []
    od: list[int] = []
    os_: list[int] = []
    og: list[float] = []
    for dst, src, gain in edges:
        s = row(src)
        if s is None:
            continue
        if dst[0] == "bus":
            bd.append(bus_rows[dst[1]] - n_legs - n_src)
            bs.append(s)
            bg.append(gain)
        else:
            d = leg_rows.get(dst[1])
            if d is not None:
                od.append(d)
                os_.append(s)
                og.append(gain)
    return MixPlan(
        n_legs,
        n_src,
        len(buses),
        EdgeSet.from_lists(bd, bs, bg),
        EdgeSet.from_lists(od, os_, og),
    )


def mix(plan: MixPlan, legs: F32, sources: F32) -> F32:
    """Compute every mixed leg's outbound frame from inbound frames and sources."""
    nodes = np.concatenate([legs, sources]) if plan.n_sources else legs
    if plan.n_buses:
        buses = apply_edges(nodes, plan.bus_edges, plan.n_buses)
        nodes = np.concatenate([nodes, buses])
    return apply_edges(nodes, plan.out_edges, plan.n_legs)


def decode_rows(codes: npt.NDArray[np.uint8], alaw_rows: I64) -> F32:
    """Decode a ``(n, 160)`` block of G.711 codes; ``alaw_rows`` are the A-law rows."""
    out: F32 = ULAW_F32.take(codes)
    if alaw_rows.size:
        out[alaw_rows] = ALAW_F32.take(codes[alaw_rows])
    return out


def encode_rows(pcm: F32, alaw_rows: I64) -> npt.NDArray[np.uint8]:
    """Clip and encode a ``(n, 160)`` block; ``alaw_rows`` are the A-law rows."""
    lin = np.clip(pcm, -32768, 32767).astype(np.int16).view(np.uint16)
    out: npt.NDArray[np.uint8] = g711.ULAW_ENCODE.take(lin)
    if alaw_rows.size:
        out[alaw_rows] = g711.ALAW_ENCODE.take(lin[alaw_rows])
    return out
