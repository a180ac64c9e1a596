"""What one benchmark run measured, and the one table it prints.

The pytest side (:mod:`oddswire.bench.pytest_plugin`) fills these records; ``oddswire bench``
reads them back from the JSON the benchmark process writes. Rates and ratios use the median
round (robust to a noisy shared machine); every round is kept for ``--json``.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["Latency", "Results", "Throughput", "format_table"]

KINDS = ("oddswire", "twin", "peer", "ceiling")


@dataclasses.dataclass
class Throughput:
    """One library's timed rounds on one benchmark group. ``rounds_s``: seconds per call."""

    file: str
    group: str
    library: str
    kind: str
    unit: str
    nbytes: int
    units: int
    agreed: bool
    rounds_s: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.rounds_s)

    @property
    def min_s(self) -> float:
        return min(self.rounds_s)

    @property
    def units_per_s(self) -> float:
        return self.units / self.median_s

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.median_s / 1e6


@dataclasses.dataclass
class Latency:
    """One library's latency samples (ns) on one latency group."""

    file: str
    group: str
    library: str
    samples_ns: list[int]

    def percentile_us(self, q: float) -> float:
        xs = sorted(self.samples_ns)
        return xs[min(len(xs) - 1, int(q * len(xs)))] / 1e3

    @property
    def p50_us(self) -> float:
        return self.percentile_us(0.5)

    @property
    def p99_us(self) -> float:
        return self.percentile_us(0.99)

    @property
    def p999_us(self) -> float:
        return self.percentile_us(0.999)


@dataclasses.dataclass
class Results:
    throughput: list[Throughput] = dataclasses.field(default_factory=list)
    latency: list[Latency] = dataclasses.field(default_factory=list)

    def groups(self) -> list[str]:
        """Throughput groups in the order they were first measured."""
        return list(dict.fromkeys(t.group for t in self.throughput))

    def ratios(self, group: str) -> dict[str, tuple[float | None, float | None]]:
        """library -> (x pure-Python twin, x best peer), by units/s in the same run."""
        rows = [t for t in self.throughput if t.group == group]
        twin = next((t.units_per_s for t in rows if t.kind == "twin"), None)
        best_peer = max((t.units_per_s for t in rows if t.kind == "peer"), default=None)
        return {t.library: (t.units_per_s / twin if twin else None,
                            t.units_per_s / best_peer if best_peer else None) for t in rows}

    def agreed(self) -> bool:
        return all(t.agreed for t in self.throughput)

    def to_json(self) -> dict[str, Any]:
        throughput = []
        for group in self.groups():
            ratios = self.ratios(group)
            for t in self.throughput:
                if t.group == group:
                    x_twin, x_peer = ratios[t.library]
                    throughput.append({
                        **dataclasses.asdict(t), "min_s": t.min_s, "median_s": t.median_s,
                        "mean_s": statistics.fmean(t.rounds_s), "mb_per_s": t.mb_per_s,
                        "units_per_s": t.units_per_s, "x_twin": x_twin, "x_best_peer": x_peer})
        latency = [{**dataclasses.asdict(lat), "n": len(lat.samples_ns), "p50_us": lat.p50_us,
                    "p99_us": lat.p99_us, "p999_us": lat.p999_us,
                    "max_us": max(lat.samples_ns) / 1e3} for lat in self.latency]
        return {"throughput": throughput, "latency": latency}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        fields_t = {f.name for f in dataclasses.fields(Throughput)}
        fields_l = {f.name for f in dataclasses.fields(Latency)}
        return cls([Throughput(**{k: v for k, v in t.items() if k in fields_t})
                    for t in data.get("throughput", ())],
                   [Latency(**{k: v for k, v in lat.items() if k in fields_l})
                    for lat in data.get("latency", ())])


HEADER = ("library", "kind", "MB/s", "rate", "x twin", "x peer", "p50 µs", "p99 µs",
          "p99.9 µs", "agreed")
RIGHT = {2, 3, 4, 5, 6, 7, 8}


def _cells(results: Results) -> list[tuple[str, list[list[str]]]]:
    """(group title, rows of cells) blocks: each throughput group with the latency measured
    in the same benchmark file for the same library, then latency groups left unmatched."""
    blocks: list[tuple[str, list[list[str]]]] = []
    used: set[int] = set()

    def latency_cells(lat: Latency | None) -> list[str]:
        if lat is None:
            return ["-", "-", "-"]
        return [f"{lat.p50_us:,.1f}", f"{lat.p99_us:,.1f}", f"{lat.p999_us:,.1f}"]

    for group in results.groups():
        rows = sorted((t for t in results.throughput if t.group == group),
                      key=lambda t: -t.units_per_s)
        ratios = results.ratios(group)
        cells = []
        for t in rows:
            lat_i = next((i for i, lat in enumerate(results.latency)
                          if lat.file == t.file and lat.library == t.library and i not in used),
                         None)
            if lat_i is not None:
                used.add(lat_i)
            x_twin, x_peer = ratios[t.library]
            cells.append([t.library, t.kind, f"{t.mb_per_s:,.1f}",
                          f"{t.units_per_s:,.0f} {t.unit}/s",
                          "-" if x_twin is None else f"{x_twin:.2f}",
                          "-" if x_peer is None else f"{x_peer:.2f}",
                          *latency_cells(None if lat_i is None else results.latency[lat_i]),
                          "yes" if t.agreed else "NO"])
        blocks.append((group, cells))
    left = [lat for i, lat in enumerate(results.latency) if i not in used]
    blocks.extend((group, [[lat.library, "", "-", "-", "-", "-", *latency_cells(lat), "-"]
                           for lat in sorted((x for x in left if x.group == group),
                                             key=lambda x: x.p99_us)])
                  for group in dict.fromkeys(lat.group for lat in left))
    return blocks


def format_table(results: Results, *, markdown: bool = False) -> str:
    """One table: per group, each library's MB/s, rate, ratios to the pure-Python twin and
    the best peer, p50/p99/p99.9 latency where measured, and whether it agreed."""
    blocks = _cells(results)
    if not blocks:
        return "no benchmark recorded a result"
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |",
                 "|" + "|".join("---:" if i in RIGHT else "---" for i in range(len(HEADER)))
                 + "|"]
        for group, rows in blocks:
            lines.append(f"| **{group}** |" + " |" * (len(HEADER) - 1))
            lines.extend("| " + " | ".join(r) + " |" for r in rows)
        return "\n".join(lines)
    rows_all: list[Sequence[str]] = [HEADER, *(r for _, rows in blocks for r in rows)]
    indent = 2
    widths = [max(len(r[i]) + (indent if i == 0 else 0) for r in rows_all)
              for i in range(len(HEADER))]

    def line(cells: Sequence[str], first_indent: int) -> str:
        out = []
        for i, c in enumerate(cells):
            c = " " * first_indent + c if i == 0 else c
            out.append(c.rjust(widths[i]) if i in RIGHT else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = [line(HEADER, 0), "-" * (sum(widths) + 2 * (len(widths) - 1))]
    for group, rows in blocks:
        lines.append(group)
        lines.extend(line(r, indent) for r in rows)
    return "\n".join(lines)
