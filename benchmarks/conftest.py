"""Benchmark bookkeeping: every benchmark records its throughput and whether it agreed
with oddswire's result; the session ends with one markdown table per group, with ratios
against the pure-Python twin and the best peer library measured in the same run.

Run: ``make bench`` (``python -m pytest benchmarks``). Not part of the default test run.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

_RESULTS: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)


class Recorder:
    def __init__(self, benchmark: Any) -> None:
        self.benchmark = benchmark

    def __call__(self, group: str, library: str, kind: str, fn: Any, *, nbytes: int,
                 units: int, unit: str, result: Any, expected: Any,
                 rounds: int | None = None) -> None:
        """Run fn under pytest-benchmark; kind is 'oddswire', 'twin', 'peer' or 'ceiling'
        (a bound, such as counting frames without decoding: in the table, not a ratio
        base). ``rounds``: run fn exactly that many times (end-to-end runs)."""
        self.benchmark.group = group
        self.benchmark.extra_info["library"] = library
        if rounds is None:
            got = self.benchmark(fn)
        else:
            got = self.benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
        agreed = result(got) == expected
        mean = self.benchmark.stats.stats.mean
        self.benchmark.extra_info.update(
            agreed=agreed, mb_per_s=nbytes / mean / 1e6, units_per_s=units / mean)
        _RESULTS[group][library] = dict(kind=kind, mean=mean, nbytes=nbytes, units=units,
                                        unit=unit, agreed=agreed)
        assert agreed, f"{library} disagreed with oddswire on {group}"


@pytest.fixture
def bench(benchmark: Any) -> Recorder:
    return Recorder(benchmark)


_LATENCY: dict[str, dict[str, tuple[float, float, float, int]]] = defaultdict(dict)


def record_latency(group: str, library: str, samples_ns: list[int]) -> None:
    """One library's latency samples (ns) for the end-of-run percentile table."""
    xs = sorted(samples_ns)
    pick = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] / 1e3  # noqa: E731
    _LATENCY[group][library] = (pick(0.5), pick(0.99), pick(0.999), len(xs))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for group, lat in _LATENCY.items():
        terminalreporter.write_line("")
        terminalreporter.write_line(f"### {group}")
        terminalreporter.write_line("| library | p50 µs | p99 µs | p99.9 µs | samples |")
        terminalreporter.write_line("|---|---:|---:|---:|---:|")
        for name, (p50, p99, p999, n) in sorted(lat.items(), key=lambda kv: kv[1][1]):
            terminalreporter.write_line(f"| {name} | {p50:.1f} | {p99:.1f} | {p999:.1f} | {n} |")
    for group, rows in _RESULTS.items():
        # Ratios of throughput (units/s), so runs of different lengths compare fairly.
        rate = {name: r["units"] / r["mean"] for name, r in rows.items()}
        twin = [rate[n] for n, r in rows.items() if r["kind"] == "twin"]
        best_peer = max((rate[n] for n, r in rows.items() if r["kind"] == "peer"), default=None)
        tw = twin[0] if twin else None
        terminalreporter.write_line("")
        terminalreporter.write_line(f"### {group}")
        unit = next(iter(rows.values()))["unit"]
        terminalreporter.write_line(
            f"| library | MB/s | {unit}/s | x twin | x best peer | agreed |")
        terminalreporter.write_line("|---|---:|---:|---:|---:|:---:|")
        for name, r in sorted(rows.items(), key=lambda kv: -rate[kv[0]]):
            x_twin = f"{rate[name] / tw:.1f}" if tw else "-"
            x_peer = f"{rate[name] / best_peer:.2f}" if best_peer else "-"
            terminalreporter.write_line(
                f"| {name} | {r['nbytes'] / r['mean'] / 1e6:,.0f} | "
                f"{r['units'] / r['mean']:,.0f} | {x_twin} | {x_peer} | "
                f"{'yes' if r['agreed'] else 'NO'} |")
