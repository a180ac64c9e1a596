"""Pure-Python twin of ``oddswire._metrics``: the same log-linear buckets and percentiles."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["LatencyHistogram", "StampLatency", "bucket_index", "bucket_upper"]

SUB_BITS = 5
SUB = 1 << SUB_BITS
TOP_BIT = 44
NBUCKETS = (TOP_BIT - SUB_BITS + 1) * SUB
_NONE = 2**63 - 1


def bucket_index(ns: int) -> int:
    if ns < SUB:
        return max(ns, 0)
    if ns >= 1 << TOP_BIT:
        return NBUCKETS - 1
    e = ns.bit_length() - 1
    return (e - SUB_BITS + 1) * SUB + (ns >> (e - SUB_BITS)) - SUB


def bucket_upper(i: int) -> int:
    if not 0 <= i < NBUCKETS:
        raise IndexError(i)
    if i < SUB:
        return i
    return ((SUB + i % SUB + 1) << (i // SUB - 1)) - 1


class LatencyHistogram:
    def __init__(self) -> None:
        self._counts = [0] * NBUCKETS
        self.n = 0
        self.max = 0

    def record(self, ns: int) -> None:
        self._counts[bucket_index(ns)] += 1
        self.n += 1
        self.max = max(self.max, ns)

    @property
    def counts(self) -> dict[int, int]:
        return {bucket_upper(i): c for i, c in enumerate(self._counts) if c}

    def percentile(self, q: float) -> float:
        if self.n == 0:
            return math.nan
        rank = min(max(math.ceil(q / 100.0 * self.n), 1), self.n)
        seen = 0
        for i, c in enumerate(self._counts):
            seen += c
            if seen >= rank:
                return float(min(bucket_upper(i), self.max))
        return float(self.max)

    def summary(self) -> dict[str, Any]:
        return {"count": self.n, "p50_us": self.percentile(50) / 1e3,
                "p99_us": self.percentile(99) / 1e3, "p999_us": self.percentile(99.9) / 1e3,
                "max_us": self.max / 1e3}

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def merge(self, other: LatencyHistogram) -> None:
        self._counts = [a + b for a, b in zip(self._counts, other._counts, strict=True)]
        self.n += other.n
        self.max = max(self.max, other.max)


class StampLatency(LatencyHistogram):
    def __init__(self, window_s: float = 60.0) -> None:
        if not window_s > 0:
            raise ValueError("window_s must be positive")
        super().__init__()
        self.window_ns = int(window_s * 1e9)
        self._window_start = 0
        self._min_now = self._min_prev = _NONE

    def record_stamp(self, receive_ns: int, stamp_ns: int) -> None:
        d = receive_ns - stamp_ns
        if receive_ns - self._window_start >= self.window_ns:
            self._min_prev, self._min_now = self._min_now, _NONE
            self._window_start = receive_ns
        self._min_now = min(self._min_now, d)
        self.record(d)

    @property
    def offset_ns(self) -> int | None:
        m = min(self._min_now, self._min_prev)
        return None if m == _NONE else m

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        off = self.offset_ns
        out["offset_us"] = math.nan if off is None else off / 1e3
        return out

    def reset(self) -> None:
        self.__init__(self.window_ns / 1e9)  # type: ignore[misc]
