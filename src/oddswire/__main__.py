"""The ``oddswire`` command: ``oddswire demo`` (every feed's simulator and client with a
live dashboard, :mod:`oddswire.demo`), ``oddswire bench`` (:mod:`oddswire.bench`),
``oddswire replay FILE`` (a recording through its client, :mod:`oddswire.replay`) and
``oddswire --version``. Each subcommand lives in its own module; this one only dispatches
(a subparser's ``run`` is its entry point)."""

from __future__ import annotations

import argparse
import sys

from oddswire import demo
from oddswire.sim._base import LOOPS, run_loop


def _replay(args: argparse.Namespace) -> int:
    from oddswire.replay import replay_cli

    return run_loop(args.loop, replay_cli(args.file, args.speed))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own parser: oddswire.bench.cli
        from oddswire.bench import main as bench_main

        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="oddswire", description="oddswire's command line: the live demo of every feed, "
        "the benchmarks against peer libraries and the replay of recordings.")
    parser.add_argument("--version", action="store_true", help="print versions and build info")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("bench", help="benchmarks against peer libraries (oddswire bench --help)")
    demo.add_parser(sub)
    r = sub.add_parser("replay", help="replay a recording (record=PATH) through its client")
    r.add_argument("file")
    r.add_argument("--speed", type=float, help="1.0: recorded pace (default: at once)")
    r.add_argument("--loop", choices=LOOPS, default="uvloop")
    r.set_defaults(run=_replay)
    args = parser.parse_args(argv)
    if args.version:
        print(demo.version_line())
        return 0
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
