"""``oddswire bench [--quick] [--json FILE] [--plot FILE.png] [FEED|HOTPATH ...]``.

Runs pytest on the checkout's ``benchmarks/`` in a child process (each benchmark module
builds its data at import, sized by ``ODDSWIRE_BENCH_SCALE``, and the end-to-end ones start
simulator processes that inherit it), follows its progress through an events file, reads the
results file it writes, and prints one table.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fnmatch
import importlib.metadata
import json
import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from oddswire.bench.pytest_plugin import EVENTS_ENV, RESULTS_ENV, SCALE_ENV
from oddswire.bench.results import Results, format_table

__all__ = ["BenchError", "find_benchmarks", "machine_facts", "main", "plot", "select",
           "versions"]

SCHEMA = "oddswire-bench/1"
QUICK_SCALE = 0.1
# Per feed: the files (globs) and tests that exercise it, hot paths and end to end.
FEEDS: dict[str, tuple[str, ...]] = {
    "databet": ("test_bench_databet*.py", "test_bench_odds.py",
                "test_bench_framing.py::test_chunked_ndjson"),
    "broker": ("test_bench_broker*.py", "test_bench_compact.py"),
    "betcore": ("test_bench_betcore*.py", "test_bench_framing.py::test_signalr_records"),
    "tech55": ("test_bench_tech55*.py",),
    "satoriex": ("test_bench_satoriex*.py",),
}
PEERS = ("httptools", "h11", "orjson", "msgspec", "pysignalr", "websockets", "aiohttp", "picows",
         "uvloop", "numpy", "pytest", "pytest-benchmark", "rich", "matplotlib")
ENV_DIR = "ODDSWIRE_BENCHMARKS"
PREFIX = "test_bench_"


class BenchError(Exception):
    """A problem with the command line or the environment, said plainly (exit status 2)."""


def find_benchmarks(explicit: str | None = None, cwd: pathlib.Path | None = None
                    ) -> pathlib.Path:
    """The ``benchmarks/`` folder of a source checkout (see the module docstring)."""
    def ok(d: pathlib.Path) -> bool:
        conftest = d / "conftest.py"
        return conftest.is_file() and "oddswire.bench" in conftest.read_text()

    for given in (explicit, os.environ.get(ENV_DIR)):
        if given:
            d = pathlib.Path(given).expanduser().resolve()
            if not ok(d):
                raise BenchError(f"{d} is not an oddswire benchmarks folder "
                                 "(no conftest.py using oddswire.bench)")
            return d
    here = (cwd or pathlib.Path.cwd()).resolve()
    source = pathlib.Path(__file__).resolve().parents[3]  # src/oddswire/bench/cli.py
    for d in [*(p / "benchmarks" for p in (here, *here.parents)), source / "benchmarks"]:
        if ok(d):
            return d
    raise BenchError(
        "oddswire bench runs the benchmark suite of a source checkout, which the installed "
        "package does not include: clone the oddswire repository, `pip install -e "
        "'.[bench]'` in it and run `oddswire bench` there, or pass --benchmarks DIR "
        f"(or set {ENV_DIR}).")


def names(bench_dir: pathlib.Path) -> dict[str, list[str]]:
    """Every selectable name -> pytest targets relative to ``bench_dir``: the feeds, then
    each file's hot path (``test_bench_odds.py`` -> ``odds``)."""
    files = sorted(p.name for p in bench_dir.glob(f"{PREFIX}*.py"))
    out: dict[str, list[str]] = {}
    for feed, patterns in FEEDS.items():
        targets = []
        for pattern in patterns:
            path, sep, test = pattern.partition("::")
            targets += [f + sep + test for f in fnmatch.filter(files, path)]
        if targets:
            out[feed] = targets
    for f in files:
        out.setdefault(f[len(PREFIX):-3], [f])
    return out


def select(bench_dir: pathlib.Path, wanted: Sequence[str]) -> list[str]:
    """Pytest targets (paths under ``bench_dir``) for names; none = everything."""
    if not wanted:
        return [str(bench_dir)]
    table = names(bench_dir)
    targets: list[str] = []
    for name in wanted:
        if name not in table:
            raise BenchError(f"unknown benchmark {name!r}; choose from: "
                             f"{', '.join(table)}")
        targets += [t for t in table[name] if t not in targets]
    whole = {t for t in targets if "::" not in t}  # a whole file covers its single tests
    return [str(bench_dir / t) for t in targets if "::" not in t or t.split("::")[0] not in whole]


def versions() -> dict[str, str | None]:
    """Installed versions of oddswire and every peer library (None: not installed)."""
    out: dict[str, str | None] = {}
    for dist in ("oddswire", "oddswire-native", *PEERS):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    with contextlib.suppress(ImportError):
        import oddswire_native

        out["oddswire-native build"] = oddswire_native.BUILD_PROFILE
    return out


def machine_facts() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"cpu": cpu, "machine": platform.machine(), "cores": os.cpu_count(),
            "usable_cores": usable, "platform": platform.platform(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def _import_pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or a BenchError saying how to get it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise BenchError("--plot needs matplotlib: pip install 'oddswire[plot]' "
                         f"({e})") from e
    except Exception as e:  # a torn install fails in many ways; say which
        raise BenchError(f"--plot: matplotlib is installed but failed to import ({e!r}); "
                         "reinstall it: pip install --force-reinstall 'oddswire[plot]'"
                         ) from e
    return plt


def _short(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def _label(group: str, library: str) -> str:
    """A chart label: the group's title up to its details in parentheses, and the library."""
    return f"{_short(group.split(' (')[0].split(',')[0], 30)} | {_short(library, 36)}"


def _test_name(nodeid: str) -> str:
    """``benchmarks/test_x.py::test[a/b]`` -> ``test_x.py::test[a/b]``."""
    path, sep, rest = nodeid.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest


def plot(results: Results, path: pathlib.Path, title: str) -> None:
    """Throughput (x best peer, per group) and latency (p50/p99/p99.9) charts in one PNG."""
    plt = _import_pyplot()
    from matplotlib.patches import Patch

    rows = [(g, t) for g in results.groups() for t in results.throughput if t.group == g]
    lat = results.latency
    panels = [p for p in ("throughput", "latency") if (rows if p == "throughput" else lat)]
    if not panels:
        raise BenchError("--plot: nothing was measured")
    height = max(3.0, 0.28 * max(len(rows), 3 * len(lat) // 2) + 1.5)
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), height), squeeze=False)
    colors = {"oddswire": "#d62728", "twin": "#7f7f7f", "peer": "#1f77b4",
              "ceiling": "#bcbd22"}
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "throughput":
            ratios = {g: results.ratios(g) for g in results.groups()}
            values = [ratios[g][t.library][1] or ratios[g][t.library][0] or 1.0
                      for g, t in rows]
            labels = [_label(g, t.library) for g, t in rows]
            ax.barh(range(len(rows)), values, color=[colors.get(t.kind, "k") for _, t in rows])
            ax.set_yticks(range(len(rows)), labels, fontsize=6)
            ax.axvline(1.0, color="k", lw=0.6)
            ax.set_xscale("log")
            ax.set_xlabel("throughput, x best peer in the same run (log)")
            ax.legend(handles=[Patch(color=c, label=k) for k, c in colors.items()], fontsize=7)
            ax.invert_yaxis()
        else:
            for k, (q, color) in enumerate((("p50_us", "#2ca02c"), ("p99_us", "#ff7f0e"),
                                            ("p999_us", "#9467bd"))):
                ax.barh([i + (k - 1) * 0.27 for i in range(len(lat))],
                        [getattr(x, q) for x in lat], height=0.27, color=color,
                        label=q.replace("_us", "").replace("p999", "p99.9"))
            ax.set_yticks(range(len(lat)),
                          [_label(x.group, x.library) for x in lat],
                          fontsize=6)
            ax.set_xscale("log")
            ax.set_xlabel("server stamp -> callback latency, µs (log)")
            ax.legend(fontsize=7)
            ax.invert_yaxis()
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
    # A few flat colours: a 64-colour palette keeps the PNG small enough to commit.
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(64)
    small.save(path, optimize=True)


class _Progress:
    """A rich progress bar on a terminal; plain lines otherwise (CI, pipes)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.total = 0
        self.done: set[str] = set()
        self.bar: Any = None
        self.task: Any = None
        if out.isatty():
            with contextlib.suppress(ImportError):
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )

                self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                    MofNCompleteColumn(), TimeElapsedColumn(),
                                    console=Console(file=out), transient=True)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
            self.task = self.bar.add_task("collecting", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def handle(self, ev: dict[str, Any]) -> None:
        name = _test_name(ev.get("nodeid", ""))
        if ev["event"] == "collected":
            self.total = len(ev["nodeids"])
            if self.bar is not None:
                self.bar.update(self.task, total=self.total, description="")
            else:
                print(f"oddswire bench: {self.total} benchmarks", file=self.out, flush=True)
        elif ev["event"] == "start" and self.bar is not None:
            self.bar.update(self.task, description=_short(name, 60))
        elif ev["event"] == "done" and ev["nodeid"] not in self.done:
            self.done.add(ev["nodeid"])
            if self.bar is not None:
                self.bar.update(self.task, completed=len(self.done))
            else:
                print(f"[{len(self.done):>3}/{self.total}] {ev['outcome']:<7} "
                      f"{ev['seconds']:6.1f}s {name}", file=self.out, flush=True)


def run(targets: Sequence[str], *, scale: float, cwd: pathlib.Path, workdir: pathlib.Path,
        extra_args: Sequence[str] = (), on_event: Callable[[dict[str, Any]], None],
        log: TextIO) -> dict[str, Any]:
    """Run pytest on targets in a child process; return its results JSON (with the tests'
    outcomes under ``tests``)."""
    events, results = workdir / "events.jsonl", workdir / "results.json"
    events.touch()
    env = {**os.environ, SCALE_ENV: repr(scale), EVENTS_ENV: str(events),
           RESULTS_ENV: str(results)}
    cmd = [sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider",
           *extra_args]
    tests: dict[str, dict[str, Any]] = {}
    with open(events) as ev_file:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            while True:
                finished = proc.poll() is not None
                for line in ev_file.readlines():
                    ev = json.loads(line)
                    if ev["event"] == "done":
                        t = tests.setdefault(ev["nodeid"], {"nodeid": ev["nodeid"],
                                                            "outcome": "passed", "seconds": 0.0})
                        t["seconds"] += ev["seconds"]
                        if ev["outcome"] != "passed":
                            t["outcome"] = ev["outcome"]
                    on_event(ev)
                if finished:
                    break
                time.sleep(0.1)
        finally:
            if proc.poll() is None:  # interrupted: let pytest tear down its simulators
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    data: dict[str, Any] = (json.loads(results.read_text()) if results.exists()
                            else {"throughput": [], "latency": []})
    data["exitstatus"] = proc.returncode
    data["tests"] = list(tests.values())
    return data


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="oddswire bench",
        description="Run oddswire's benchmarks (the pytest-benchmark suites in a source "
        "checkout's benchmarks/) against the peer libraries and print one table: per group, "
        "each library's rate, ratio to the best peer and to the pure-Python twin, latency "
        "percentiles where measured, and whether it agreed with oddswire.")
    p.add_argument("names", nargs="*", metavar="FEED|HOTPATH",
                   help="what to run (default: everything); --list shows the names")
    p.add_argument("--quick", action="store_true",
                   help=f"every benchmark at {QUICK_SCALE:g}x its size, shorter "
                   "calibration (a minute or two on 2 cores)")
    p.add_argument("--json", type=pathlib.Path, metavar="FILE",
                   help="write machine facts, versions and every round to FILE")
    p.add_argument("--plot", type=pathlib.Path, metavar="FILE.png",
                   help="draw throughput and latency charts (needs oddswire[plot])")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    p.add_argument("--list", action="store_true", help="list the names and what they run")
    p.add_argument("--benchmarks", metavar="DIR",
                   help=f"the benchmarks folder (default: ${ENV_DIR}, or benchmarks/ in the "
                   "current directory, its parents, or the editable install's checkout)")
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    try:
        return _main(args, out, list(sys.argv[1:] if argv is None else argv))
    except BenchError as e:
        print(f"oddswire bench: {e}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace, out: TextIO, argv: list[str]) -> int:
    if args.plot is not None:
        _import_pyplot()  # fail before a long run, not after it
    bench_dir = find_benchmarks(args.benchmarks)
    if args.list:
        for name, targets in names(bench_dir).items():
            print(f"{name:<16} {' '.join(targets)}", file=out)
        return 0
    targets = select(bench_dir, args.names)
    scale = QUICK_SCALE if args.quick else 1.0
    extra = ["--benchmark-max-time=0.1", "--benchmark-min-rounds=3"] if args.quick else []
    started = datetime.datetime.now(datetime.UTC)
    facts = machine_facts()
    t0 = time.monotonic()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="oddswire-bench-"))
    log_path = workdir / "pytest.log"
    with open(log_path, "w") as log, _Progress(out) as progress:
        data = run(targets, scale=scale, cwd=bench_dir.parent, workdir=workdir,
                   extra_args=extra, on_event=progress.handle, log=log)
    wall = time.monotonic() - t0
    results = Results.from_json(data)
    status = data["exitstatus"]
    print(format_table(results, markdown=args.markdown), file=out)
    load = machine_facts()["loadavg"]
    print(f"\n{len(data['tests'])} benchmarks in {wall:.0f}s (scale {scale:g}); load average "
          f"before {_load(facts['loadavg'])}, after {_load(load)}; every library agreed: "
          f"{'yes' if results.agreed() else 'NO'}", file=out)
    if args.json is not None:
        doc = {"schema": SCHEMA, "command": ["oddswire", "bench", *argv],
               "started_utc": started.isoformat(timespec="seconds"), "wall_seconds": wall,
               "quick": args.quick, "scale": scale, "selection": list(args.names),
               "targets": [os.path.relpath(t, bench_dir.parent) for t in targets],
               "exitstatus": status, "agreed": results.agreed(),
               "machine": {**facts, "loadavg_after": load}, "versions": versions(),
               "tests": data["tests"], **results.to_json()}
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    if args.plot is not None and (results.throughput or results.latency):
        plot(results, args.plot, f"oddswire bench {' '.join(argv)} | {facts['cpu']}, "
             f"{facts['cores']} cores, Python {facts['python']} | load {_load(facts['loadavg'])}")
    if status == 0 and results.agreed():
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    if status == 5:
        raise BenchError(f"no benchmarks collected from {' '.join(targets)}")
    tail = log_path.read_text().splitlines()[-30:]
    print("\n".join(["", f"pytest exited with status {status}; last lines of {log_path}:",
                     *tail]), file=out)
    return 1


def _load(load: list[float] | None) -> str:
    return "-" if load is None else " ".join(f"{x:.2f}" for x in load)
