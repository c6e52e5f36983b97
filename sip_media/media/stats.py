"""What the media engine counts, as one plain snapshot a metrics exporter can read.

Where it sits: beside the engine. :meth:`MediaEngine.snapshot` builds a
:class:`MediaStats` from its tick counters and its legs' RTP counters (the legs still
open plus the totals of closed ones); worker processes send theirs over the pipe and
:meth:`MediaStats.merged` adds them up. Counters only grow; ``legs`` and ``jitter_ms``
are the state at the moment of the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: upper bounds (seconds) of the tick duration buckets; the last bucket is unbounded
TICK_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


@dataclass(frozen=True)
class MediaStats:
    ticks: int = 0
    #: ticks run behind their deadline (catch-up), and ticks skipped altogether
    late_ticks: int = 0
    skipped_ticks: int = 0
    tick_seconds: float = 0.0
    #: ticks per duration bucket (``TICK_BUCKETS``, then one more above the last bound)
    tick_buckets: tuple[int, ...] = field(default=(0,) * (len(TICK_BUCKETS) + 1))
    rtp_packets_in: int = 0
    rtp_packets_out: int = 0
    #: packets the senders sent that never arrived (RFC 3550 expected - received)
    rtp_packets_lost: int = 0
    legs: int = 0
    #: mean interarrival jitter of the legs receiving RTP now, in milliseconds
    jitter_ms: float = 0.0

    def merged(self, other: MediaStats) -> MediaStats:
        legs = self.legs + other.legs
        jitter = (self.jitter_ms * self.legs + other.jitter_ms * other.legs) / legs if legs else 0.0
        return MediaStats(
            ticks=self.ticks + other.ticks,
            late_ticks=self.late_ticks + other.late_ticks,
            skipped_ticks=self.skipped_ticks + other.skipped_ticks,
            tick_seconds=self.tick_seconds + other.tick_seconds,
            tick_buckets=tuple(
                a + b for a, b in zip(self.tick_buckets, other.tick_buckets, strict=True)
            ),
            rtp_packets_in=self.rtp_packets_in + other.rtp_packets_in,
            rtp_packets_out=self.rtp_packets_out + other.rtp_packets_out,
            rtp_packets_lost=self.rtp_packets_lost + other.rtp_packets_lost,
            legs=legs,
            jitter_ms=jitter,
        )
