"""``oddswire demo``: every feed briefly as a subprocess with no terminal (plain lines, the
summary, the exit status), the rich live view on a forced terminal, and failing checks."""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import re
import subprocess
import sys

import pytest
from rich.console import Console

from netutil import LOOPS, run
from oddswire import demo
from oddswire.__main__ import main

FEEDS = list(demo.FEEDS)
ANSI = re.compile(r"\x1b\[")


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("FORCE_COLOR", None)  # rich would draw the live view even into a pipe
    return subprocess.run([sys.executable, "-m", "oddswire", "demo", *args],
                          capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def check_plain_run(proc: subprocess.CompletedProcess[str], feeds: list[str]) -> None:
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert not ANSI.search(out), "plain lines expected without a terminal"
    assert proc.stderr == ""  # client warnings go to the view, not stderr
    summary = out.split("\nsummary (", 1)[1].splitlines()
    for f in feeds:  # a head line, faults, counters, the check
        i = next(i for i, line in enumerate(summary) if line.startswith(demo.DEMOS[f].title))
        assert re.match(r".+: [\d,]+ messages \([\d.,]+ MB\) in [\d.]+ s; receive->callback "
                        r"p50 [\d.,]+ us", summary[i]), summary[i]
        assert summary[i + 1].startswith("  faults ")
        assert summary[i + 3].startswith("  check ok: replica vs simulator: "), summary[i + 3]
    assert out.count("check ok:") == len(feeds)
    assert "FAILED" not in out and "NOT RECOVERED" not in out
    assert out.rstrip().endswith("match their simulators")
    for f in feeds:  # periodic lines, and a fault injected and recovered from
        assert re.search(rf"^\[ *[\d.]+s\] {f} +(healthy|STALE) +[\d,]+ msg/s", out, re.M), f
        assert re.search(rf"^\[ *[\d.]+s\] {f} +fault: ", out, re.M), f
        assert re.search(rf"^\[ *[\d.]+s\] {f} +recovered from .* in [\d.]+ s$", out, re.M), f


@pytest.mark.parametrize(("feed", "loop"),
                         [(f, LOOPS[i % 2]) for i, f in enumerate(FEEDS)])
def test_each_feed_runs_plain_without_a_terminal(feed: str, loop: str) -> None:
    check_plain_run(run_cli(feed, "--seconds", "2.5", "--loop", loop), [feed])


@pytest.mark.parametrize("loop", LOOPS)
def test_all_feeds_run_plain_without_a_terminal(loop: str) -> None:
    proc = run_cli("all", "--seconds", "4", "--loop", loop)
    check_plain_run(proc, FEEDS)
    assert "DATA.BET, broker, BETCORE, 55-tech, SatoriEx: simulators on 127.0.0.1" in proc.stdout


def test_live_view_on_a_forced_terminal() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=160)
    rc = run("uvloop", lambda: demo.run_demo(["databet", "tech55"], seconds=3,
                                             console=console), timeout=90)
    out = buf.getvalue()
    assert rc == 0, out
    assert "\x1b[2K" in out and "\x1b[1A" in out  # redrawn in place, not scrolled
    assert out.count("oddswire demo: running") >= 4
    for text in ("msgs/s", "p99 µs", "reconn", "faults and recovery", "DATA.BET", "55-tech",
                 "recovered from", "oddswire demo: done"):
        assert text in out, text
    summary = out.rsplit("summary (", 1)[1]
    assert summary.count("check ok:") == 2 and "demo ok" in summary


class CorruptBroker(demo.BrokerDemo):
    """Once the book has caught up with the last quotes, one of its prices goes wrong."""

    corrupted = False

    def compare(self) -> str | None:
        if not self.corrupted and super().compare() is None:
            book = self.client.book
            book.bid[book.row("eurusd")] += 1.0
            self.corrupted = True
        return super().compare()


class UnseenFault(demo.BrokerDemo):
    """A fault whose effect never shows."""

    def faults(self) -> list[demo.Fault]:
        return [demo.Fault("nothing happens", lambda: None, "gaps")]


@pytest.mark.parametrize(("variant", "faults", "says"), [
    (CorruptBroker, False, "check FAILED: replica vs simulator: eurusd: "),
    (UnseenFault, True, "nothing happens NOT RECOVERED"),
])
def test_a_failed_check_or_an_unrecovered_fault_fails_the_demo(
        variant: type[demo.FeedDemo], faults: bool, says: str) -> None:
    lines: list[str] = []
    rc = run("asyncio", lambda: demo.run_demo(
        ["broker"], seconds=2, faults=faults, write=lines.append, verify_timeout=1,
        demos=[variant()]), timeout=60)
    out = "\n".join(lines)
    assert rc == 1, out
    assert says in out
    assert out.endswith("demo FAILED: broker")


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert re.match(r"oddswire [\d.]+ \(oddswire-native [\d.]+, \w+ build\)",
                    capsys.readouterr().out)
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out
    assert main(["demo", "broker", "--seconds", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["demo", "nosuchfeed"])


def test_readme_quick_start_runs_the_demo_and_documents_its_options() -> None:
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    first = quick.splitlines()[0]
    assert first.startswith("pip install ./rust . && ") and first.endswith(" oddswire demo all")
    section = readme.split("## Live demo", 1)[1].split("\n## ", 1)[0]
    parser = argparse.ArgumentParser()
    demo.add_parser(parser.add_subparsers())
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = {o for a in sub.choices["demo"]._actions for o in a.option_strings} - {"-h",
                                                                                  "--help"}
    assert options == {"--seconds", "--speed", "--no-faults", "--plain", "--loop"}
    for option in options:
        assert f"`{option}" in section, option
    for feed in FEEDS:
        assert feed in section.strip().splitlines()[0]
