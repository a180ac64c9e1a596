"""The pytest side of the benchmarks: ``benchmarks/conftest.py`` re-exports everything here,
so ``python -m pytest benchmarks`` and ``oddswire bench`` run the same definitions.

A benchmark times each library with the ``bench`` fixture (a :class:`Recorder` over
pytest-benchmark) and adds latency samples with :func:`record_latency`; its sizes go through
:func:`scale`, the one ``--quick`` knob. Driven by ``oddswire bench``, this process reports
progress and results through files named by environment variables (below); run by hand, it
ends with the same table ``oddswire bench`` prints, in markdown.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from oddswire.bench.results import Latency, Results, Throughput, format_table

__all__ = ["SCALE", "Recorder", "bench", "pytest_collection_finish", "pytest_runtest_logreport",
           "pytest_runtest_setup", "pytest_sessionfinish", "pytest_terminal_summary",
           "record_latency", "scale"]

SCALE_ENV = "ODDSWIRE_BENCH_SCALE"  # multiplies every benchmark size (``--quick``: 0.1)
EVENTS_ENV = "ODDSWIRE_BENCH_EVENTS"  # a file: one JSON line per collected / finished test
RESULTS_ENV = "ODDSWIRE_BENCH_RESULTS"  # a file: the results JSON, written at session end

SCALE = float(os.environ.get(SCALE_ENV) or 1.0)
RESULTS = Results()
_current_file = ""


def scale(n: int, minimum: int = 1) -> int:
    """A benchmark size (messages, lines, samples) times the run's scale, at least
    ``minimum``. Every ``N``-like constant in ``benchmarks/`` goes through this."""
    return max(minimum, round(n * SCALE))


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
        agreed = bool(result(got) == expected)
        stats = self.benchmark.stats.stats
        median = stats.median
        self.benchmark.extra_info.update(
            agreed=agreed, mb_per_s=nbytes / median / 1e6, units_per_s=units / median)
        RESULTS.throughput.append(Throughput(
            file=_current_file, group=group, library=library, kind=kind, unit=unit,
            nbytes=nbytes, units=units, agreed=agreed, rounds_s=list(stats.data)))
        assert agreed, f"{library} disagreed with oddswire on {group}"


@pytest.fixture
def bench(benchmark: Any) -> Recorder:
    return Recorder(benchmark)


def record_latency(group: str, library: str, samples_ns: list[int]) -> None:
    """One library's latency samples (ns), for the p50/p99/p99.9 columns."""
    RESULTS.latency.append(Latency(_current_file, group, library, list(samples_ns)))


def _event(**fields: Any) -> None:
    path = os.environ.get(EVENTS_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(fields) + "\n")


def pytest_collection_finish(session: pytest.Session) -> None:
    _event(event="collected", nodeids=[item.nodeid for item in session.items])


def pytest_runtest_setup(item: pytest.Item) -> None:
    global _current_file
    _current_file = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    _event(event="start", nodeid=item.nodeid, t=time.time())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        _event(event="done", nodeid=report.nodeid, when=report.when, outcome=report.outcome,
               seconds=report.duration)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "w") as f:
            json.dump({**RESULTS.to_json(), "scale": SCALE, "exitstatus": int(exitstatus)}, f)


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own tables
def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RESULTS.throughput or RESULTS.latency:
        terminalreporter.write_line("")
        terminalreporter.write_line(format_table(RESULTS, markdown=True))
