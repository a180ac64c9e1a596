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
                 units: int, unit: str, result: Any, expected: Any) -> None:
        """Run fn under pytest-benchmark; kind is 'oddswire', 'twin' or 'peer'."""
        self.benchmark.group = group
        self.benchmark.extra_info["library"] = library
        got = self.benchmark(fn)
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


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for group, rows in _RESULTS.items():
        twin = [r for r in rows.values() if r["kind"] == "twin"]
        peers = [r for r in rows.values() if r["kind"] == "peer"]
        best_peer = min((r["mean"] for r in peers), default=None)
        tw = twin[0]["mean"] if twin else None
        terminalreporter.write_line("")
        terminalreporter.write_line(f"### {group}")
        unit = next(iter(rows.values()))["unit"]
        terminalreporter.write_line(
            f"| library | MB/s | {unit}/s | x twin | x best peer | agreed |")
        terminalreporter.write_line("|---|---:|---:|---:|---:|:---:|")
        for name, r in sorted(rows.items(), key=lambda kv: kv[1]["mean"]):
            x_twin = f"{tw / r['mean']:.1f}" if tw else "-"
            x_peer = f"{best_peer / r['mean']:.2f}" if best_peer else "-"
            terminalreporter.write_line(
                f"| {name} | {r['nbytes'] / r['mean'] / 1e6:,.0f} | "
                f"{r['units'] / r['mean']:,.0f} | {x_twin} | {x_peer} | "
                f"{'yes' if r['agreed'] else 'NO'} |")
