"""The scrape-time media collector of ``rwi.metrics``: a ``MediaStats`` with loss,
jitter, late and skipped ticks becomes the RTP and tick families with those values
(a real call on loopback loses nothing and runs on time, so the e2e test cannot see
them move)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from rwi.metrics import Metrics
from sip_media.media.stats import TICK_BUCKETS, MediaStats


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def test_media_stats_with_loss_jitter_and_late_ticks_are_exported() -> None:
    # 10 ticks: 6 under 0.5 ms, 3 of 15 ms, 1 over the last bound (a stall)
    buckets = (6, 0, 0, 0, 0, 3, 0, 1)
    assert len(buckets) == len(TICK_BUCKETS) + 1
    stats = MediaStats(
        ticks=10, late_ticks=4, skipped_ticks=2, tick_seconds=0.125, tick_buckets=buckets,
        rtp_packets_in=900, rtp_packets_out=1000, rtp_packets_lost=37, legs=3, jitter_ms=12.5,
    )  # fmt: skip
    metrics = Metrics()
    metrics.sources.media = lambda: stats
    got = samples(metrics)

    assert got[("rwi_rtp_packets_lost_total", ())] == 37
    assert got[("rwi_rtp_jitter_ms", ())] == 12.5
    assert got[("rwi_media_late_ticks_total", ())] == 4
    assert got[("rwi_media_skipped_ticks_total", ())] == 2
    assert got[("rwi_media_legs", ())] == 3
    assert got[("rwi_rtp_packets_total", (("direction", "in"),))] == 900
    assert got[("rwi_rtp_packets_total", (("direction", "out"),))] == 1000
    # the tick histogram is cumulative, its +Inf bucket the count
    cumulative = {
        labels[0][1]: value
        for (name, labels), value in got.items()
        if name == "rwi_media_tick_seconds_bucket"
    }
    assert cumulative["0.0005"] == 6 and cumulative["0.01"] == 6
    assert cumulative["0.02"] == 9 and cumulative["0.05"] == 9
    assert cumulative["+Inf"] == 10 == got[("rwi_media_tick_seconds_count", ())]
    assert got[("rwi_media_tick_seconds_sum", ())] == 0.125


def test_the_counts_follow_the_stats_from_one_scrape_to_the_next() -> None:
    current = [MediaStats(rtp_packets_lost=1, late_ticks=1, jitter_ms=3.0, legs=1)]
    metrics = Metrics()
    metrics.sources.media = lambda: current[0]
    first = samples(metrics)
    current[0] = MediaStats(rtp_packets_lost=5, late_ticks=3, jitter_ms=0.0, legs=0)
    second = samples(metrics)
    assert first[("rwi_rtp_packets_lost_total", ())] == 1
    assert second[("rwi_rtp_packets_lost_total", ())] == 5
    assert (
        first[("rwi_media_late_ticks_total", ())],
        second[("rwi_media_late_ticks_total", ())],
    ) == (1, 3)
    assert (first[("rwi_rtp_jitter_ms", ())], second[("rwi_rtp_jitter_ms", ())]) == (3.0, 0.0)
