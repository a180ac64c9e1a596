"""oddswire._metrics (compiled latency histograms) against its pure-Python twin."""

from __future__ import annotations

import itertools
import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddswire import _metrics
from oddswire.reference import metrics as twin

values = st.one_of(st.integers(-10**6, 10**6), st.integers(0, 2**46),
                   st.integers(-2**63, 2**63 - 1))
QUANTILES = (0.1, 1, 25, 50, 90, 99, 99.9, 100)


@given(values)
def test_bucket_index_and_edges_equal_the_twin(v: int) -> None:
    i = _metrics.bucket_index(v)
    assert i == twin.bucket_index(v)
    assert _metrics.bucket_upper(i) == twin.bucket_upper(i)
    if 0 <= v < 2**44:  # inside the range: the bucket holds v, and is at most 1/32 wide
        assert twin.bucket_upper(i) >= v
        assert i == 0 or twin.bucket_upper(i - 1) < v
        assert twin.bucket_upper(i) - v <= v / 32


def test_bucket_edges_are_contiguous_and_increasing() -> None:
    tops = [_metrics.bucket_upper(i) for i in range(twin.NBUCKETS)]
    assert tops == [twin.bucket_upper(i) for i in range(twin.NBUCKETS)]
    assert all(b > a for a, b in itertools.pairwise(tops))
    for i in range(1, twin.NBUCKETS):
        assert _metrics.bucket_index(tops[i - 1] + 1) == i
    with pytest.raises(IndexError):
        _metrics.bucket_upper(twin.NBUCKETS)


@given(st.lists(values, max_size=300))
def test_histogram_equals_the_twin(samples: list[int]) -> None:
    c, p = _metrics.LatencyHistogram(), twin.LatencyHistogram()
    for v in samples:
        c.record(v)
        p.record(v)
    assert (c.n, c.max, c.counts) == (p.n, p.max, p.counts)
    for q in QUANTILES:
        a, b = c.percentile(q), p.percentile(q)
        assert a == b or (math.isnan(a) and math.isnan(b))
    assert repr(c.summary()) == repr(p.summary())  # NaN-tolerant equality
    other, other_twin = _metrics.LatencyHistogram(), twin.LatencyHistogram()
    for v in samples[::3]:
        other.record(v)
        other_twin.record(v)
    c.merge(other)
    p.merge(other_twin)
    assert (c.n, c.max, c.counts) == (p.n, p.max, p.counts)
    c.reset()
    p.reset()
    assert (c.n, c.max, c.counts) == (p.n, p.max, p.counts) == (0, 0, {})


@given(st.floats(0.001, 10), st.lists(st.tuples(st.integers(0, 10**10),
                                                 st.integers(-10**9, 10**9)), max_size=200))
def test_stamp_latency_equals_the_twin(window_s: float, steps: list[tuple[int, int]]) -> None:
    c, p = _metrics.StampLatency(window_s), twin.StampLatency(window_s)
    now = 1_700_000_000 * 10**9
    for advance, delay in steps:
        now += advance
        c.record_stamp(now, now - delay)
        p.record_stamp(now, now - delay)
        assert c.offset_ns == p.offset_ns
    assert (c.n, c.max, c.counts, c.window_ns) == (p.n, p.max, p.counts, p.window_ns)
    assert repr(c.summary()) == repr(p.summary())
    c.reset()
    p.reset()
    assert c.offset_ns is p.offset_ns is None


def test_stamp_latency_offset_is_the_window_minimum() -> None:
    h = _metrics.StampLatency(1.0)
    t = 10**18
    h.record_stamp(t, t - 5_000_000)  # 5 ms: the least delayed so far
    h.record_stamp(t + 10, t - 9_000_000)
    assert h.offset_ns == 5_000_000
    h.record_stamp(t + 1_500_000_000, t + 1_500_000_000 - 7_000_000)  # a new window
    assert h.offset_ns == 5_000_000  # the previous window still counts
    h.record_stamp(t + 2_600_000_000, t + 2_600_000_000 - 8_000_000)  # two windows on
    assert h.offset_ns == 7_000_000
    assert h.summary()["offset_us"] == 7_000.0
    with pytest.raises(ValueError):
        _metrics.StampLatency(0)


def test_stats_use_the_compiled_histograms() -> None:
    from oddswire.client import LatencyHistogram, Stats
    assert LatencyHistogram is _metrics.LatencyHistogram
    s = Stats()
    assert isinstance(s.server_to_receive, _metrics.StampLatency)
    snap = s.snapshot()
    for key in ("receive_to_decoded", "receive_to_callback", "server_to_receive"):
        assert {"count", "p50_us", "p99_us", "p999_us", "max_us"} <= set(snap[key])


def _bracketed_elapsed(clock: _metrics.ReadClockProbe, sleep_s: float) -> tuple[int, int, int]:
    """(CLOCK_MONOTONIC before start, the probe's elapsed, CLOCK_MONOTONIC after it)."""
    t0 = time.perf_counter_ns()
    start = clock.start()
    time.sleep(sleep_s)
    elapsed = clock.elapsed()
    t1 = time.perf_counter_ns()
    assert t0 <= start <= t1
    return start - t0, elapsed, t1 - start


def test_read_clock_elapsed_lies_within_the_monotonic_clock() -> None:
    """Stamps within a read (the time-stamp counter once calibrated, else clock_gettime) are
    bracketed by CLOCK_MONOTONIC read around them: a wrong rate or a counter that runs
    away would land outside. Bounds are from the clock itself, not from a duration, so
    load cannot break them; the 0.1% slack covers the measured rate's error."""
    clock = _metrics.ReadClockProbe()
    assert clock.ns_per_tick == 0.0
    for sleep_s in (0.0, 0.001, 0.12, 0.002, 0.12, 0.0, 0.005):
        _, elapsed, outer = _bracketed_elapsed(clock, sleep_s)
        assert sleep_s * 1e9 * 0.999 <= elapsed <= outer * 1.001 + 1_000
    if _metrics.ticks_in_use():  # two starts 120 ms apart: calibrated
        assert 0.01 < clock.ns_per_tick < 100
    else:
        assert clock.ns_per_tick == 0.0
