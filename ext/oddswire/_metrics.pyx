"""Latency histograms recorded in C: log-linear buckets (HDR style), every message, no Python
object and no logarithm per record. The pure-Python twin is ``oddswire.reference.metrics``.

A value ``v`` below 32 has its own bucket; above, ``v`` falls in one of 32 buckets per power
of two, found with a count of leading zeros. Percentiles report the inclusive upper edge of
the bucket holding the sample of rank ``ceil(q/100 * n)``, capped by the exact maximum, so
they overstate by at most 1/32 (3.1%).
"""

from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memset
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec

import math


cdef int64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef int64_t realtime_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef bint _ticks_usable = False


def _kernel_keeps_time_with_tsc() -> bool:
    try:
        with open("/sys/devices/system/clocksource/clocksource0/current_clocksource") as f:
            return f.read().strip() == "tsc"
    except OSError:
        return False


_ticks_usable = HAVE_TICKS and _kernel_keeps_time_with_tsc()


def ticks_in_use() -> bool:
    """Whether messages are stamped with the CPU's time-stamp counter within a read (see
    ``ReadClock`` in ``_metrics.pxd``); False: every stamp is ``clock_gettime``."""
    return _ticks_usable


cdef void read_clock_init(ReadClock* c) noexcept nogil:
    c.start_ns = 0
    c.start_ticks = 0
    c.ns_per_tick = 0.0
    c.cal_ns = 0
    c.cal_ticks = 0
    c.use_ticks = _ticks_usable


cdef int64_t read_clock_start(ReadClock* c) noexcept nogil:
    """Stamp a new read (CLOCK_MONOTONIC, returned) and, every ``CALIBRATE_NS`` or more,
    re-measure the counter's rate against it."""
    cdef int64_t now = monotonic_ns()
    cdef uint64_t t = 0
    cdef double rate
    if c.use_ticks:
        t = cpu_ticks()
        if c.cal_ticks == 0 or t <= c.cal_ticks or now <= c.cal_ns:
            c.cal_ns, c.cal_ticks = now, t
        elif now - c.cal_ns >= CALIBRATE_NS:
            rate = <double>(now - c.cal_ns) / <double>(t - c.cal_ticks)
            # 0.01-100 ns a tick: any real counter (10 MHz to 100 GHz); else stop using it
            if 0.01 < rate < 100.0:
                c.ns_per_tick = rate
            else:
                c.use_ticks = False
                c.ns_per_tick = 0.0
            c.cal_ns, c.cal_ticks = now, t
    c.start_ns = now
    c.start_ticks = t
    return now


cdef class ReadClockProbe:
    """A ``ReadClock`` driven from Python, for tests: ``start()`` stamps a read and returns
    CLOCK_MONOTONIC; ``elapsed()`` is the nanoseconds since, as a listener records them."""

    cdef ReadClock _clock

    def __cinit__(self):
        read_clock_init(&self._clock)

    def start(self) -> int:
        return read_clock_start(&self._clock)

    def elapsed(self) -> int:
        return read_clock_elapsed(&self._clock)

    @property
    def ns_per_tick(self) -> float:
        """The counter's measured rate; 0.0 before the first calibration or without one."""
        return self._clock.ns_per_tick


cdef inline int64_t bucket_top(Py_ssize_t i) noexcept nogil:
    """The largest value bucket ``i`` holds."""
    cdef int shift
    if i < SUB:
        return i
    shift = <int>(i // SUB) - 1
    return ((<int64_t>(SUB + i % SUB) + 1) << shift) - 1


def bucket_index(int64_t ns) -> int:
    """The bucket a value falls in (for the twin's tests)."""
    return bucket_of(ns)


def bucket_upper(Py_ssize_t i) -> int:
    """The largest value bucket ``i`` holds."""
    if not 0 <= i < NBUCKETS:
        raise IndexError(i)
    return bucket_top(i)


cdef class LatencyHistogram:
    """Nanosecond latencies. ``record(ns)`` from Python; Cython callers cimport the class
    and call the C ``record`` (no Python call). Negative values count as 0."""

    def __cinit__(self):
        memset(self._counts, 0, sizeof(self._counts))
        self.n = 0
        self.max = 0

    cpdef void record(self, int64_t ns) noexcept:
        """Record one latency (ns)."""
        hist_add(self, ns)

    @property
    def counts(self):
        """The non-empty buckets as ``{upper edge (ns): count}``."""
        cdef Py_ssize_t i
        return {bucket_top(i): self._counts[i] for i in range(NBUCKETS) if self._counts[i]}

    def percentile(self, double q) -> float:
        """The ``q``-th percentile (0 < q <= 100) in ns; NaN when empty."""
        cdef uint64_t rank, seen = 0
        cdef Py_ssize_t i
        if self.n == 0:
            return math.nan
        rank = <uint64_t>math.ceil(q / 100.0 * self.n)
        if rank < 1:
            rank = 1
        if rank > self.n:
            rank = self.n
        for i in range(NBUCKETS):
            seen += self._counts[i]
            if seen >= rank:
                return <double>min(bucket_top(i), self.max)
        return <double>self.max

    def summary(self) -> dict:
        """``count``, ``p50_us``, ``p99_us``, ``p999_us``, ``max_us``."""
        return {"count": self.n, "p50_us": self.percentile(50) / 1e3,
                "p99_us": self.percentile(99) / 1e3, "p999_us": self.percentile(99.9) / 1e3,
                "max_us": self.max / 1e3}

    def reset(self) -> None:
        memset(self._counts, 0, sizeof(self._counts))
        self.n = 0
        self.max = 0

    def merge(self, LatencyHistogram other) -> None:
        """Add ``other``'s samples to this one."""
        cdef Py_ssize_t i
        for i in range(NBUCKETS):
            self._counts[i] += other._counts[i]
        self.n += other.n
        if other.max > self.max:
            self.max = other.max


cdef class StampLatency(LatencyHistogram):
    """Server stamp -> receive: records ``receive - stamp`` (both on the wall clock) and
    estimates the clock offset between the hosts as the minimum of ``receive - stamp`` over
    the last one to two ``window_s``: the least delayed message bounds the offset from above
    (network and queueing only add), so ``p50 - offset`` is the typical queueing delay even
    when the clocks disagree."""

    def __cinit__(self, double window_s=60.0):
        if not window_s > 0:
            raise ValueError("window_s must be positive")
        self.window_ns = <int64_t>(window_s * 1e9)
        self._window_start = 0
        self._min_now = self._min_prev = 0x7FFFFFFFFFFFFFFF

    cpdef void record_stamp(self, int64_t receive_ns, int64_t stamp_ns) noexcept:
        """Record one message received at ``receive_ns`` that the server stamped
        ``stamp_ns`` (both ns since the epoch)."""
        stamp_add(self, receive_ns, stamp_ns)

    @property
    def offset_ns(self):
        """min(receive - stamp) over the last one to two windows; None before any."""
        cdef int64_t m = min(self._min_now, self._min_prev)
        return None if m == 0x7FFFFFFFFFFFFFFF else m

    def summary(self) -> dict:
        out = LatencyHistogram.summary(self)
        off = self.offset_ns
        out["offset_us"] = math.nan if off is None else off / 1e3
        return out

    def reset(self) -> None:
        LatencyHistogram.reset(self)
        self._window_start = 0
        self._min_now = self._min_prev = 0x7FFFFFFFFFFFFFFF
