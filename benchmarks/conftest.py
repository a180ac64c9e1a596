"""Benchmark bookkeeping: every benchmark records its throughput (the ``bench`` fixture) and
latency samples (``record_latency``) and whether it agreed with oddswire's result; sizes go
through ``scale()`` (``ODDSWIRE_BENCH_SCALE``, 0.1 under ``oddswire bench --quick``). The
session ends with one table: per group, ratios against the pure-Python twin and the best
peer library measured in the same run, and p50/p99/p99.9 latency where measured.

Run: ``oddswire bench`` (progress bar, ``--json``, ``--plot``) or ``make bench``
(``python -m pytest benchmarks``). Not part of the default test run. The machinery lives
in :mod:`oddswire.bench.pytest_plugin`, shared with ``oddswire bench``.
"""

from __future__ import annotations

from oddswire.bench.pytest_plugin import (
    Recorder,
    bench,
    pytest_collection_finish,
    pytest_runtest_logreport,
    pytest_runtest_setup,
    pytest_sessionfinish,
    pytest_terminal_summary,
    record_latency,
    scale,
)

__all__ = ["Recorder", "bench", "pytest_collection_finish", "pytest_runtest_logreport",
           "pytest_runtest_setup", "pytest_sessionfinish", "pytest_terminal_summary",
           "record_latency", "scale"]
