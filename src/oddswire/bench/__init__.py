"""``oddswire bench``: the benchmark suite of a source checkout (``benchmarks/``, the same
pytest-benchmark definitions ``make bench`` runs) against every peer library, with a progress
bar, one results table, ``--json`` and ``--plot``.

The benchmark files are not shipped in the wheel: they need the simulators' test peers and
a checkout's ``benchmarks/`` folder. ``oddswire bench`` finds that folder through
``--benchmarks DIR``, ``$ODDSWIRE_BENCHMARKS``, the current directory or its parents, or the
checkout an editable install points at.
"""

from __future__ import annotations

from oddswire.bench.cli import main

__all__ = ["main"]
