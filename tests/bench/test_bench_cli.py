"""``oddswire bench`` plumbing on a tiny fake benchmark suite (never the real ones): name
selection, the ``--quick`` knob, the JSON document, the table, the chart, and the errors
for a missing or torn matplotlib and a missing benchmarks folder."""

from __future__ import annotations

import io
import json
import pathlib
import sys
import types
from typing import Any

import pytest

from oddswire.__main__ import main as oddswire_main
from oddswire.bench import cli
from oddswire.bench.results import Latency, Results, Throughput, format_table

ROOT = pathlib.Path(__file__).resolve().parents[2]

FAST = '''
import pytest
from conftest import record_latency, scale

N = scale(1000)
DATA = list(range(N))


def ours():
    return sum(DATA)


def twin():
    total = 0
    for x in DATA:
        total += x
    return total


def peer():
    return sum(map(int, DATA))


@pytest.mark.parametrize(("library", "kind", "fn"), [
    ("fake oddswire sum", "oddswire", ours), ("fake twin loop", "twin", twin),
    ("fake peer map", "peer", peer)])
def test_sum(bench, library, kind, fn):
    bench(f"fake sum ({N} ints)", library, kind, fn, nbytes=8 * N, units=N, unit="ints",
          result=lambda got: got, expected=N * (N - 1) // 2, rounds=3)


def test_latency():
    record_latency("fake latency", "fake oddswire sum", [1000 * i for i in range(1, 101)])
'''

WRONG = '''
def test_wrong(bench):
    bench("fake wrong", "fake peer off by one", "peer", lambda: 1, nbytes=1, units=1,
          unit="ints", result=lambda got: got + 1, expected=1, rounds=2)
'''


@pytest.fixture
def suite(tmp_path: pathlib.Path) -> pathlib.Path:
    """A benchmarks folder with the real conftest and two tiny benchmark files."""
    d = tmp_path / "benchmarks"
    d.mkdir()
    (d / "conftest.py").write_text((ROOT / "benchmarks" / "conftest.py").read_text())
    (d / "test_bench_fast.py").write_text(FAST)
    (d / "test_bench_wrong.py").write_text(WRONG)
    return d


def _run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_feed_names_map_to_files_and_single_tests(tmp_path: pathlib.Path) -> None:
    for name in ("odds", "framing", "databet_e2e", "broker", "compact", "tech55"):
        (tmp_path / f"test_bench_{name}.py").touch()
    names = cli.names(tmp_path)
    assert names["databet"] == ["test_bench_databet_e2e.py", "test_bench_odds.py",
                                "test_bench_framing.py::test_chunked_ndjson"]
    assert names["broker"] == ["test_bench_broker.py", "test_bench_compact.py"]
    assert names["odds"] == ["test_bench_odds.py"]
    assert "satoriex" not in names  # no file for it here
    assert cli.select(tmp_path, []) == [str(tmp_path)]
    # A whole file selected too covers its single test; repeats are dropped.
    got = cli.select(tmp_path, ["databet", "framing", "odds"])
    assert got == [str(tmp_path / f) for f in
                   ("test_bench_databet_e2e.py", "test_bench_odds.py", "test_bench_framing.py")]
    with pytest.raises(cli.BenchError,
                       match=r"unknown benchmark 'nope'; choose from: databet, broker"):
        cli.select(tmp_path, ["nope"])


def test_quick_run_writes_every_round_and_machine_facts(suite: pathlib.Path,
                                                        tmp_path: pathlib.Path) -> None:
    out_json = tmp_path / "out.json"
    status, out = _run("--benchmarks", str(suite), "--quick", "--json", str(out_json), "fast")
    assert status == 0, out
    assert "[  3/4] passed" in out  # plain progress lines: this is not a TTY
    doc = json.loads(out_json.read_text())
    assert doc["schema"] == "oddswire-bench/1"
    assert doc["quick"] is True and doc["scale"] == 0.1 and doc["selection"] == ["fast"]
    assert doc["targets"] == ["benchmarks/test_bench_fast.py"]
    assert doc["exitstatus"] == 0 and doc["agreed"] is True
    assert {"cpu", "cores", "python", "loadavg", "loadavg_after"} <= doc["machine"].keys()
    assert doc["versions"]["oddswire"] and "httptools" in doc["versions"]
    assert {t["outcome"] for t in doc["tests"]} == {"passed"} and len(doc["tests"]) == 4
    rows = {t["library"]: t for t in doc["throughput"]}
    assert set(rows) == {"fake oddswire sum", "fake twin loop", "fake peer map"}
    for t in rows.values():
        assert t["units"] == 100  # scale(1000) under --quick
        assert len(t["rounds_s"]) == 3 and t["min_s"] <= t["median_s"]
        assert t["file"] == "test_bench_fast.py" and t["agreed"] is True
    assert rows["fake twin loop"]["x_twin"] == 1.0
    assert rows["fake peer map"]["x_best_peer"] == 1.0
    (lat,) = doc["latency"]
    assert lat["samples_ns"][:2] == [1000, 2000] and lat["p50_us"] == 51.0
    # The printed table: the group, each library, latency on the oddswire row, agreement.
    assert "fake sum (100 ints)" in out and "every library agreed: yes" in out
    ours = next(line for line in out.splitlines() if line.startswith("  fake oddswire sum"))
    assert ours.split()[-4:] == ["51.0", "100.0", "100.0", "yes"]


def test_a_disagreeing_library_fails_the_run(suite: pathlib.Path) -> None:
    status, out = _run("--benchmarks", str(suite), "wrong")
    assert status == 1
    assert "every library agreed: NO" in out
    assert "disagreed with oddswire on fake wrong" in out  # the pytest log's tail


def _results() -> Results:
    def t(group: str, library: str, kind: str, seconds: float, file: str = "a.py",
          agreed: bool = True) -> Throughput:
        return Throughput(file, group, library, kind, "msgs", 2_000_000, 1000, agreed,
                          [seconds, seconds / 2, seconds * 2])
    return Results(
        [t("g1", "ours", "oddswire", 0.001), t("g1", "twin", "twin", 0.01),
         t("g1", "peer A", "peer", 0.002), t("g1", "peer B", "peer", 0.004, agreed=False),
         t("g2", "ours", "oddswire", 0.5, file="b.py")],
        [Latency("a.py", "lat", "ours", [1000] * 98 + [5000, 9000]),
         Latency("c.py", "other lat", "solo", [2000, 3000])])


def test_table_formatting() -> None:
    assert format_table(_results()).splitlines() == [
        "library    kind         MB/s              rate  x twin  x peer  p50 µs  p99 µs"
        "  p99.9 µs  agreed",
        "-" * 96,
        "g1",
        "  ours     oddswire  2,000.0  1,000,000 msgs/s   10.00    2.00     1.0     9.0"
        "       9.0  yes",
        "  peer A   peer      1,000.0    500,000 msgs/s    5.00    1.00       -       -"
        "         -  yes",
        "  peer B   peer        500.0    250,000 msgs/s    2.50    0.50       -       -"
        "         -  NO",
        "  twin     twin        200.0    100,000 msgs/s    1.00    0.20       -       -"
        "         -  yes",
        "g2",
        "  ours     oddswire      4.0      2,000 msgs/s       -       -       -       -"
        "         -  yes",
        "other lat",
        "  solo                     -                 -       -       -     3.0     3.0"
        "       3.0  -"]
    md = format_table(_results(), markdown=True).splitlines()
    assert md[0] == ("| library | kind | MB/s | rate | x twin | x peer | p50 µs | p99 µs "
                     "| p99.9 µs | agreed |")
    assert md[2] == "| **g1** |" + " |" * 9
    assert md[3] == ("| ours | oddswire | 2,000.0 | 1,000,000 msgs/s | 10.00 | 2.00 | 1.0 "
                     "| 9.0 | 9.0 | yes |")
    assert format_table(Results()) == "no benchmark recorded a result"
    assert not _results().agreed()
    assert Results.from_json(json.loads(json.dumps(_results().to_json()))) == _results()


def test_plot_draws_a_png(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "chart.png"
    cli.plot(_results(), path, "title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _never_run(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("benchmarks ran although --plot could not work")


def test_missing_matplotlib_fails_before_running(suite: pathlib.Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    monkeypatch.setattr(cli, "run", _never_run)
    status, _ = _run("--benchmarks", str(suite), "--plot", "x.png")
    assert status == 2
    assert "--plot needs matplotlib: pip install 'oddswire[plot]'" in capsys.readouterr().err


def test_torn_matplotlib_says_so(suite: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    torn = types.ModuleType("matplotlib")

    def use(backend: str) -> None:
        raise AttributeError("module 'matplotlib' has no attribute 'rcParams'")
    torn.use = use  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "matplotlib", torn)
    monkeypatch.setattr(cli, "run", _never_run)
    status, _ = _run("--benchmarks", str(suite), "--plot", "x.png")
    assert status == 2
    err = capsys.readouterr().err
    assert "matplotlib is installed but failed to import" in err and "rcParams" in err


def test_finding_the_benchmarks_folder(suite: pathlib.Path, tmp_path: pathlib.Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.ENV_DIR, raising=False)
    assert cli.find_benchmarks(cwd=suite.parent / "benchmarks") == suite
    nested = suite.parent / "deep" / "er"
    nested.mkdir(parents=True)
    assert cli.find_benchmarks(cwd=nested) == suite  # a parent's benchmarks/
    monkeypatch.setenv(cli.ENV_DIR, str(suite))
    assert cli.find_benchmarks(cwd=pathlib.Path("/")) == suite
    with pytest.raises(cli.BenchError, match="not an oddswire benchmarks folder"):
        cli.find_benchmarks(str(tmp_path))
    monkeypatch.delenv(cli.ENV_DIR)
    # No checkout anywhere: say that a source checkout is needed (an editable install of
    # this repository would find its own benchmarks/, so pretend the package lives elsewhere).
    elsewhere = tmp_path / "x" / "src" / "oddswire" / "bench" / "cli.py"
    monkeypatch.setattr(cli, "__file__", str(elsewhere))
    with pytest.raises(cli.BenchError, match="source checkout"):
        cli.find_benchmarks(cwd=pathlib.Path("/"))


def test_oddswire_bench_subcommand(suite: pathlib.Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert oddswire_main(["bench", "--list", "--benchmarks", str(suite)]) == 0
    assert capsys.readouterr().out.splitlines() == ["fast             test_bench_fast.py",
                                                     "wrong            test_bench_wrong.py"]
    assert oddswire_main(["bench", "--benchmarks", str(suite), "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
