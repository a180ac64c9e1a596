"""Command line: ``oddswire demo`` (the DATA.BET client against the embedded simulator),
``oddswire bench`` (:mod:`oddswire.bench`), ``oddswire replay FILE`` (a recording through its
client) and ``oddswire --version``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable

from oddswire import __version__
from oddswire.sim._base import LOOPS, run_loop


def _version() -> str:
    import oddswire_native as native

    return (f"oddswire {__version__} (oddswire-native {native.__version__}, "
            f"{native.BUILD_PROFILE} build)")


async def demo(seconds: float, rate: float | None, events: int,
               write: Callable[[str], object] = print) -> int:
    """Simulator on 127.0.0.1 -> DatabetClient -> OddsTable, with live progress."""
    from oddswire.databet import DatabetClient
    from oddswire.sim.databet import DatabetSimulator

    async with DatabetSimulator(seed=1, events=events, rate=rate, chunk=(512, 16384)) as sim:
        client = DatabetClient(sim.url, heartbeat_interval=1)
        counts = {"rollback": 0, "error": 0}
        client.on("rollback", lambda a: counts.__setitem__("rollback", counts["rollback"] + 1))
        client.on("error", lambda e: counts.__setitem__("error", counts["error"] + 1))
        task = asyncio.ensure_future(client.run())
        write(f"{_version()}\nDATA.BET simulator at {sim.url}: {events} sport events, "
              f"{'max' if rate is None else int(rate)} logs/s, {seconds:g}s")
        t0 = time.monotonic()
        last_n, last_b, last_t = 0, 0, t0
        while (left := seconds - (time.monotonic() - t0)) > 0.05:
            await asyncio.sleep(min(1.0, left))
            s = client.stats()
            now = time.monotonic()
            lat = s["receive_to_callback"]
            write(f"[{now - t0:5.1f}s] {(s['messages'] - last_n) / (now - last_t):>9,.0f} logs/s "
                  f"{(s['bytes'] - last_b) / (now - last_t) / 1e6:6.1f} MB/s | "
                  f"events {s['events']:>4} odds {s['odds']:>6} "
                  f"bettable {int(client.table.bettable_mask().sum()):>6} | "
                  f"recv->callback p50 {lat['p50_us']:7.1f} us p99 {lat['p99_us']:8.1f} us | "
                  f"healthy {client.healthy}")
            last_n, last_b, last_t = s["messages"], s["bytes"], now
        sim.pause()
        deadline = time.monotonic() + 10
        while client.version != sim.version and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await client.stop()
        await task
        s = client.stats()
        world_odds = sum(len(m["odds"]) for ev in sim.world.events.values()
                         for m in ev.markets.values())
        ok = client.version == sim.version and len(client.table) == world_odds
        lat = s["receive_to_callback"]
        write(f"summary: {s['messages']:,} lines ({s['bytes'] / 1e6:,.1f} MB) in "
              f"{time.monotonic() - t0:.1f}s; receive->callback p50 {lat['p50_us']:.1f} us, "
              f"p99 {lat['p99_us']:.1f} us, max {lat['max_us']:.1f} us; rollbacks "
              f"{counts['rollback']}, errors {counts['error']}, reconnects {s['reconnects']}")
        write(f"replica matches the simulator ({len(client.table):,} odds at version "
              f"{client.version}): {'yes' if ok else 'NO'}")
        return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # its own parser: oddswire.bench.cli
        from oddswire.bench import main as bench_main

        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="oddswire", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print versions and build info")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("bench", help="benchmarks against peer libraries (oddswire bench --help)")
    d = sub.add_parser("demo", help="run the DATA.BET client against the embedded simulator")
    d.add_argument("--seconds", type=float, default=10.0, help="how long to run (default 10)")
    d.add_argument("--rate", type=float, default=10_000,
                   help="simulated logs per second; 0 for as fast as possible (default 10000)")
    d.add_argument("--events", type=int, default=200, help="sport events (default 200)")
    d.add_argument("--loop", choices=LOOPS, default="uvloop")
    r = sub.add_parser("replay", help="replay a recording (record=PATH) through its client")
    r.add_argument("file")
    r.add_argument("--speed", type=float, help="1.0: recorded pace (default: at once)")
    r.add_argument("--loop", choices=LOOPS, default="uvloop")
    args = parser.parse_args(argv)
    if args.version:
        print(_version())
        return 0
    if args.command == "demo":
        return run_loop(args.loop, demo(args.seconds, args.rate or None, args.events))
    if args.command == "replay":
        from oddswire.replay import replay_cli
        return run_loop(args.loop, replay_cli(args.file, args.speed))
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
