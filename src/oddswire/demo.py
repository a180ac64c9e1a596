"""``oddswire demo [databet|broker|betcore|tech55|satoriex|all]``: each feed's loopback
simulator (``oddswire.sim``, 127.0.0.1, port 0) and client in one process, with a live
dashboard per feed: message and byte rates, receive -> callback p50/p99 from
``client.stats()``, health, gaps, reconnects, errors and a line of the feed's own state.

Now and then a simulator injects a fault (a stream cut mid-chunk, a 409, a stall, a sequence
gap, malformed data, an emergency stop, a crossed book, ...) and the dashboard shows the client
notice it and recover. After ``seconds`` the traffic stops, every replica (odds table, quote
book, games table, betslip, order books) is compared with its simulator's own state, and a
summary is printed. The exit status is 1 when a check failed, a fault was not recovered from
or a client stopped with an error.

On a terminal the dashboard is a ``rich`` live view; otherwise (a pipe, CI) plain lines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from oddswire import __version__
from oddswire._aio import cancel_and_wait
from oddswire.betcore import BetcoreClient
from oddswire.broker import BrokerClient
from oddswire.databet import DatabetClient
from oddswire.satoriex import SatoriexClient
from oddswire.sim._base import LOOPS, run_loop
from oddswire.sim.betcore import GAME_KINDS, BetcoreSimulator
from oddswire.sim.broker import BrokerSimulator
from oddswire.sim.databet import DatabetSimulator
from oddswire.sim.satoriex import SatoriexSimulator
from oddswire.sim.tech55 import Tech55Simulator
from oddswire.tech55 import Tech55Client

__all__ = ["FEEDS", "add_parser", "run_demo", "version_line"]

FEEDS = ("databet", "broker", "betcore", "tech55", "satoriex")
#: how often the dashboard is redrawn, and faults are tracked while one is open
_REDRAW, _TICK = 0.25, 0.02


def version_line() -> str:
    import oddswire_native as native

    return (f"oddswire {__version__} (oddswire-native {native.__version__}, "
            f"{native.BUILD_PROFILE} build)")


# --- faults --------------------------------------------------------------------------------

def _always() -> bool:
    return True


@dataclass
class Fault:
    """A fault a simulator injects, and how its client shows it: ``counter`` (a
    ``client.stats()`` key, or one of ``FeedDemo.counts``) grows. It is recovered from once
    that happened, ``undo`` (if any) ran ``undo_after`` seconds after the injection, the
    client is healthy, messages flow again and ``done()`` holds."""

    label: str
    inject: Callable[[], object]
    counter: str
    undo: Callable[[], object] | None = None
    undo_after: float = 1.5
    done: Callable[[], bool] = _always


@dataclass
class FaultRun:
    """One injection of a fault, timed in seconds since the demo started."""

    fault: Fault
    at: float
    before: int
    undone: bool = True
    seen_at: float | None = None
    messages: int = 0  # when it was seen: recovery needs more
    recovered_at: float | None = None

    @property
    def recovery(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.at


# --- one feed -----------------------------------------------------------------------------

class FeedDemo:
    """One feed: its simulator, its client, its faults and its replica check. Subclasses
    build the simulator and the client and say what to compare."""

    key: ClassVar[str]
    title: ClassVar[str]

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self.sim: Any = None
        self.client: Any = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        #: event counts the faults are seen by, next to ``client.stats()``
        self.counts = {"stale": 0}

    async def start(self) -> None:
        self.sim = await self.make_sim().start()
        self.client = self.make_client()
        self.client.on("stale", self._stale)
        self.started()
        self.task = asyncio.ensure_future(self.client.run())

    def _stale(self, reason: str) -> None:
        self.counts["stale"] += 1

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            if not self.task.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.client.stop(), 5)
            await cancel_and_wait([self.task])
        if self.sim is not None:
            await self.sim.stop()

    @property
    def failure(self) -> str | None:
        """Why ``run()`` ended, if it did before ``stop()``."""
        t = self.task
        if t is None or not t.done() or self.stopping:
            return None
        exc = None if t.cancelled() else t.exception()
        return f"client stopped: {exc!r}" if exc is not None else "client stopped"

    def stats(self) -> dict[str, Any]:
        return {**self.client.stats(), **self.counts}

    # --- for feeds ---------------------------------------------------------------------

    def make_sim(self) -> Any:
        raise NotImplementedError

    def make_client(self) -> Any:
        raise NotImplementedError

    def started(self) -> None:
        """The client exists (callbacks can be registered), ``run()`` not yet called."""

    def faults(self) -> list[Fault]:
        raise NotImplementedError

    def detail(self, stats: dict[str, Any]) -> str:
        """One line of the feed's own state."""
        raise NotImplementedError

    def quiesce(self) -> None:
        """Stop the simulator's traffic where the replica check needs a still state."""

    def compare(self) -> str | None:
        """None when the replica equals the simulator's state, else what differs (or why
        it cannot be compared yet)."""
        raise NotImplementedError

    def matched(self) -> str:
        """What was compared, once ``compare()`` found no difference."""
        raise NotImplementedError

    def tick(self) -> None:
        """Called at every redraw."""


def _nop(*args: Any) -> None:
    pass


class DatabetDemo(FeedDemo):
    key, title = "databet", "DATA.BET"

    def make_sim(self) -> DatabetSimulator:
        return DatabetSimulator(seed=1, events=200, rate=5000 * self.speed, chunk=(512, 16384))

    def make_client(self) -> DatabetClient:
        return DatabetClient(self.sim.url, heartbeat_interval=1)

    def started(self) -> None:
        self.client.on("markets", _nop)

    def faults(self) -> list[Fault]:
        sim = self.sim

        def resync() -> None:
            sim.answer_409_next()
            sim.cut_streams()
        return [Fault("stream cut mid-chunk", sim.cut_streams, "reconnects"),
                Fault("409 on resume: resync from /all", resync, "resyncs"),
                Fault("malformed log line (refetched)", sim.inject_malformed, "errors"),
                Fault("stall 2.5 s (no heartbeat)", lambda: sim.stall(2.5), "stale")]

    def detail(self, stats: dict[str, Any]) -> str:
        table = self.client.table
        return (f"{stats['events']} events, {stats['odds']:,} odds, "
                f"{int(table.bettable_mask().sum()):,} bettable, version ..."
                f"{(stats['version'] or '')[-6:]}")

    def quiesce(self) -> None:
        self.sim.pause()

    def compare(self) -> str | None:
        client, sim = self.client, self.sim
        if client.version != sim.version:
            return f"version {client.version} behind the simulator's {sim.version}"
        table, n = client.table, 0
        for ev in sim.world.events.values():
            for mid, market in ev.markets.items():
                for odd in market["odds"]:
                    n += 1
                    got = table.get(ev.sport_event_id, mid, odd["id"])
                    want = (float(odd["value"]), bool(odd["is_active"]))
                    if got is None or (got[0], got[3]) != want:
                        return (f"odd {ev.sport_event_id}/{mid}/{odd['id']}: {got} in the "
                                f"table, (value, is_active) {want} in the simulator")
        if len(table) != n:
            return f"{len(table):,} odds in the table, {n:,} in the simulator"
        return None

    def matched(self) -> str:
        return f"every odd equal ({len(self.client.table):,} at version {self.client.version})"


class BrokerDemo(FeedDemo):
    key, title = "broker", "broker"

    def make_sim(self) -> BrokerSimulator:
        return BrokerSimulator(rate=100 * self.speed, account_rate=2 * self.speed,
                               customers={7: [2000009]})

    def make_client(self) -> BrokerClient:
        return BrokerClient(self.sim.url, token=self.sim.signer.customer(7), account=2000009,
                            symbols=self.sim.symbols, stale_after=1.0, ping_interval=1.0,
                            pong_timeout=1.0, auth_timeout=2.0)

    def started(self) -> None:
        self.client.on("quote", _nop)

    def faults(self) -> list[Fault]:
        sim = self.sim
        return [Fault("drop mid-frame", lambda: sim.drop(mid_frame=True), "reconnects"),
                Fault("malformed frame", sim.inject_malformed, "errors"),
                Fault("stall 1.5 s (pongs too)", lambda: sim.stall(1.5), "stale")]

    def detail(self, stats: dict[str, Any]) -> str:
        book = self.client.book
        row = book.row("eurusd")
        top = f", eurusd {book.bid[row]:.5f}/{book.ask[row]:.5f}" if row >= 0 else ""
        return (f"{stats['symbols']} symbols, {stats['quotes']:,} quotes, "
                f"account {stats['active_login']}{top}")

    def quiesce(self) -> None:
        self.sim.rate = 0

    def compare(self) -> str | None:
        book = self.client.book
        for sym, (bid, ask, ts) in self.sim.last_quotes.items():
            row = book.row(sym)
            got = None if row < 0 else (float(book.bid[row]), float(book.ask[row]),
                                        int(book.ts[row]))
            if got != (bid, ask, ts):
                return f"{sym}: {got} in the book, (bid, ask, ts) {(bid, ask, ts)} last sent"
        return None

    def matched(self) -> str:
        return f"last quote of all {len(self.sim.last_quotes)} symbols equal"


class BetcoreDemo(FeedDemo):
    key, title = "betcore", "BETCORE"
    GAME_TYPES = (1, 3, 6)
    PARTNER = 1

    def make_sim(self) -> BetcoreSimulator:
        return BetcoreSimulator(interval=0.05 / self.speed)

    def make_client(self) -> BetcoreClient:
        return BetcoreClient(self.sim.url, access_token=self.sim.token(),
                             partner_client_id=self.PARTNER, game_types=self.GAME_TYPES,
                             stale_after=max(0.5, 0.25 / self.speed))

    def started(self) -> None:
        self.client.on("games", _nop)

    def faults(self) -> list[Fault]:
        sim = self.sim
        return [Fault("sId skips 3", lambda: sim.skip_sid(3), "gaps"),
                Fault("drop mid-frame", lambda: sim.drop(mid_frame=True), "reconnects"),
                Fault("maintenance 1.5 s", lambda: sim.maintenance(True), "stale",
                      undo=lambda: sim.maintenance(False)),
                Fault("malformed record", sim.inject_malformed, "errors")]

    def detail(self, stats: dict[str, Any]) -> str:
        table = self.client.table
        return (f"{stats['games']} games, {int(table.bettable_mask().sum())} bettable "
                f"coefficients, sId {stats['sid']}"
                + (", MAINTENANCE" if table.maintenance else ""))

    def compare(self) -> str | None:
        # The world moves at every tick and sends it at once: compare when the client has
        # applied the last update sent (a whole state of every game type).
        table, sim = self.client.table, self.sim
        last = sim.sids.get(self.PARTNER, 0) - 1
        if table.sid != last:
            return f"sId {table.sid} applied, {last} sent"
        for gtype in self.GAME_TYPES:
            g = sim.world.current(gtype)[-1]
            got = table.game(g.id)
            if got is None:
                return f"game {g.id} (type {gtype}) missing"
            mine = (got.state, got.play_status, got.round, got.edition)
            theirs = (g.state, g.play_status, g.round, g.edition)
            if mine != theirs:
                return f"game {g.id} (state, play, round, edition) {mine} != {theirs}"
            first = GAME_KINDS[gtype][3]
            for k, want in enumerate(zip(g.coefficients, g.blocked, strict=True)):
                if table.get(g.id, first + k) != want:
                    return (f"game {g.id} event {first + k}: {table.get(g.id, first + k)} "
                            f"!= (coefficient, blocked) {want}")
        return None

    def matched(self) -> str:
        return (f"current game of types {', '.join(map(str, self.GAME_TYPES))} equal (state, "
                f"round, edition, 16 coefficients each) at sId {self.client.table.sid}")


class Tech55Demo(FeedDemo):
    key, title = "tech55", "55-tech"
    EVENT, OUTCOME = "id1000004461512432", 103

    def make_sim(self) -> Tech55Simulator:
        return Tech55Simulator(rate=300 * self.speed, ping_interval=0.5)

    def make_client(self) -> Tech55Client:
        return Tech55Client(self.sim.url, api_key=self.sim.api_key, reliable=True,
                            server_ping_interval=0.5)

    def started(self) -> None:
        self.counts["halts"] = 0
        for channel in ("orders", "bets", "settlements", "balance"):
            self.client.on(channel, _nop)
        self.client.on("halt", self._halt)
        self._polled = 0.0

    def _halt(self, payload: Any) -> None:
        self.counts["halts"] += 1

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._polled > 30:  # the betslip window lasts 60 s: poll again
            self._polled = now
            self.sim.poll_betslip(outcome_id=self.OUTCOME, fixture_id=self.EVENT)

    def faults(self) -> list[Fault]:
        sim, client = self.sim, self.client
        return [Fault("emergency on, off 1.5 s later", lambda: sim.emergency(True), "halts",
                      undo=lambda: sim.emergency(False), done=lambda: not client.halted),
                Fault("drop (resume, redeliver)", sim.drop, "reconnects"),
                Fault("seq skips 2", lambda: sim.skip_seq(2), "gaps"),
                Fault("duplicate message", sim.duplicate, "duplicates"),
                Fault("malformed frame", sim.inject_malformed, "errors")]

    def detail(self, stats: dict[str, Any]) -> str:
        best = self.client.betslip.best_price(self.EVENT, self.OUTCOME)
        price = f", best {best[0]:.2f} at {best[1]}" if best else ""
        seq = "-" if stats["seq"] is None else f"{stats['seq']:,}"  # None: no message yet
        return (f"seq {seq}, {'HALTED' if stats['halted'] else 'trading'}, "
                f"unacked {stats['unacked']}, duplicates {stats['duplicates']}, "
                f"betslip {stats['betslip_rows']} lines{price}")

    def quiesce(self) -> None:
        self.sim.rate = 0

    def compare(self) -> str | None:
        client, sim = self.client, self.sim
        subs = [s for s in sim.subscriptions.values() if s.session is not None]
        if len(subs) != 1:
            return f"{len(subs)} live subscriptions"
        seq = client.stats()["seq"]
        if seq != subs[0].seq:
            return f"seq {seq} delivered, {subs[0].seq} sent"
        if client.halted:
            return "halted after the emergency ended"
        for w in sim.windows.values():
            for (book, line), price in w.prices.items():
                q = client.betslip.get(w.fixture_id, w.outcome_id, book, line)
                if q is None or (q.price, q.active) != (price, price < 2.15):
                    return f"betslip {book} {line}: {q} != price {price}"
        return None

    def matched(self) -> str:
        return (f"every message delivered (seq {self.client.stats()['seq']:,}), not halted, "
                f"{len(self.client.betslip)} betslip lines equal")


class SatoriexDemo(FeedDemo):
    key, title = "satoriex", "SatoriEx"

    def make_sim(self) -> SatoriexSimulator:
        return SatoriexSimulator(interval=0.01 / self.speed)

    def make_client(self) -> SatoriexClient:
        markets = list(self.sim.worlds)
        return SatoriexClient(self.sim.url, token=self.sim.token(), markets=markets,
                              marketdata=markets)

    def started(self) -> None:
        for name in ("price", "book", "trade"):
            self.client.on(name, _nop)

    def _synced(self) -> bool:
        return all(self.client.book(m).synced for m in self.sim.worlds)

    def faults(self) -> list[Fault]:
        sim = self.sim
        first = next(iter(sim.worlds))
        return [Fault(f"book seq skip ({first})", lambda: sim.skip_seq(first), "gaps",
                      done=self._synced),
                Fault(f"crossed book ({first})", lambda: sim.cross(first), "crossed",
                      done=self._synced),
                Fault("outage 1 s (drop, then 503s)", lambda: sim.outage(1.0), "reconnects",
                      done=self._synced),
                Fault("malformed frame", sim.inject_malformed, "errors"),
                Fault("unknown message type", sim.inject_unknown, "unknown")]

    def detail(self, stats: dict[str, Any]) -> str:
        markets = list(self.sim.worlds)
        synced = sum(self.client.book(m).synced for m in markets)
        return (f"{synced}/{len(markets)} books synced, {stats['prices']:,} prices, "
                f"{stats['books']:,} book updates, {stats['resyncs']} resyncs")

    def quiesce(self) -> None:
        self.sim.generating = False

    def compare(self) -> str | None:
        client, sim = self.client, self.sim
        for m, world in sim.worlds.items():
            book = client.book(m)
            bids, asks = sim.book(m)
            if not book.synced:
                return f"{m}: book waiting for a snapshot"
            if not (book.bids.shape == bids.shape and book.asks.shape == asks.shape
                    and (book.bids == bids).all() and (book.asks == asks).all()):
                return f"{m}: book differs from the simulator's"
            price = client.prices.get(m)
            want = world.price(0)
            want3 = (want["mid"], want["best_bid"], want["best_ask"])  # None: an empty side
            if price is None or any(w != g and not (w is None and math.isnan(g))
                                    for w, g in zip(want3, price[:3], strict=True)):
                return f"{m}: price {price and price[:3]} != (mid, bid, ask) {want3}"
        return None

    def matched(self) -> str:
        n = len(self.sim.worlds)
        return f"all {n} order books (every level) and prices equal"


DEMOS: dict[str, type[FeedDemo]] = {d.key: d for d in (
    DatabetDemo, BrokerDemo, BetcoreDemo, Tech55Demo, SatoriexDemo)}


# --- what every feed shares: sampling, faults, the check --------------------------------

class FeedRun:
    """A running ``FeedDemo``: samples its stats, injects its faults one at a time and
    times the recovery from each, and runs its replica check at the end."""

    def __init__(self, demo: FeedDemo, events: Callable[[float, str, str], None]) -> None:
        self.demo = demo
        self.events = events
        self.catalogue = demo.faults()
        self.faults: list[FaultRun] = []
        self.open: FaultRun | None = None
        self.next_at = math.inf
        self.samples: deque[tuple[float, int, int]] = deque(maxlen=64)
        self.stats: dict[str, Any] = demo.stats()
        self.check: tuple[bool, str] | None = None
        self.failure: str | None = None

    def sample(self, t: float) -> None:
        s = self.stats = self.demo.stats()
        self.samples.append((t, s["messages"], s["bytes"]))
        if self.failure is None and (failure := self.demo.failure) is not None:
            self.failure = failure
            self.events(t, self.demo.key, failure)
        fr = self.open
        if fr is None:
            return
        if fr.seen_at is None and s[fr.fault.counter] > fr.before:
            fr.seen_at, fr.messages = t, s["messages"]
            self.events(t, self.demo.key,
                        f"{fr.fault.counter} +{s[fr.fault.counter] - fr.before}")
        if (fr.seen_at is not None and fr.undone and s["healthy"]
                and s["messages"] > fr.messages and fr.fault.done()):
            fr.recovered_at, self.open = t, None
            self.events(t, self.demo.key,
                        f"recovered from {fr.fault.label} in {fr.recovery:.2f} s")

    def rates(self) -> tuple[float, float]:
        """Messages/s and MB/s over the last second."""
        if len(self.samples) < 2:
            return 0.0, 0.0
        t1, m1, b1 = self.samples[-1]
        t0, m0, b0 = next(x for x in self.samples if x[0] >= t1 - 1.0 or x is self.samples[-1])
        if t0 == t1:
            t0, m0, b0 = self.samples[-2]
        dt = max(t1 - t0, 1e-9)
        return (m1 - m0) / dt, (b1 - b0) / dt / 1e6

    def ready(self) -> bool:
        return self.open is None and self.failure is None and bool(self.stats["healthy"])

    def inject(self, t: float) -> None:
        fault = self.catalogue[len(self.faults) % len(self.catalogue)]
        fr = FaultRun(fault, t, self.demo.stats()[fault.counter])
        self.faults.append(fr)
        self.open = fr
        self.events(t, self.demo.key, f"fault: {fault.label}")
        fault.inject()
        if fault.undo is not None:
            fr.undone = False
            asyncio.get_running_loop().call_later(fault.undo_after, self._undo, fr)

    def _undo(self, fr: FaultRun) -> None:
        assert fr.fault.undo is not None
        fr.fault.undo()
        fr.undone = True

    async def verify(self, timeout: float) -> None:
        """Wait for the open fault's recovery, stop the traffic, then compare until the
        replica equals the simulator or ``timeout`` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.open is not None and self.failure is None and loop.time() < deadline:
            await asyncio.sleep(_TICK)
        self.demo.quiesce()
        while True:
            if self.failure is not None:
                self.check = (False, self.failure)
                return
            diff = self.demo.compare()
            if diff is None:
                self.check = (True, self.demo.matched())
                return
            if loop.time() >= deadline:
                self.check = (False, diff)
                return
            await asyncio.sleep(_TICK)

    @property
    def ok(self) -> bool:
        return (self.check is not None and self.check[0] and self.failure is None
                and all(fr.recovered_at is not None for fr in self.faults))


def _us(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


def _health(run: FeedRun) -> tuple[str, str]:
    if run.failure is not None:
        return "FAILED", "bold red"
    if run.stats["healthy"]:
        return "healthy", "green"
    return "STALE", "bold yellow"


def _summary(run: FeedRun, seconds: float) -> list[str]:
    s = run.stats
    lat = s["receive_to_callback"]
    recoveries = ", ".join(
        f"{fr.fault.label} {fr.recovery:.2f} s" if fr.recovery is not None
        else f"{fr.fault.label} NOT RECOVERED" for fr in run.faults) or "none"
    done = sum(fr.recovered_at is not None for fr in run.faults)
    ok, text = run.check or (False, "not run")
    return [
        f"{run.demo.title}: {s['messages']:,} messages ({s['bytes'] / 1e6:,.1f} MB) in "
        f"{seconds:.1f} s; receive->callback p50 {_us(lat['p50_us'])} us, "
        f"p99 {_us(lat['p99_us'])} us, max {_us(lat['max_us'])} us",
        f"  faults {done}/{len(run.faults)} recovered: {recoveries}",
        f"  gaps {s['gaps']}, reconnects {s['reconnects']}, resyncs {s['resyncs']}, "
        f"errors {s['errors']}, stale {s['stale']} | {run.demo.detail(s)}",
        f"  check {'ok' if ok else 'FAILED'}: replica vs simulator: {text}",
    ]


class PlainView:
    """Periodic lines and events as they happen (no terminal)."""

    def __init__(self, write: Callable[[str], object], every: float) -> None:
        self.write = write
        self.every = every
        self.last = 0.0  # the first line once there is a rate to show
        self.finished = False

    def start(self, header: str) -> None:
        self.write(header)

    def event(self, t: float, feed: str, text: str) -> None:
        if not self.finished:  # what the teardown logs would follow the verdict
            self.write(f"[{t:5.1f}s] {feed:<8} {text}")

    def update(self, runs: Sequence[FeedRun], t: float, phase: str) -> None:
        if t - self.last < self.every or phase != "running":
            return
        self.last = t
        for r in runs:
            s, (rate, mb) = r.stats, r.rates()
            lat = s["receive_to_callback"]
            self.write(
                f"[{t:5.1f}s] {r.demo.key:<8} {_health(r)[0]:<7} {rate:>9,.0f} msg/s "
                f"{mb:6.2f} MB/s | p50 {_us(lat['p50_us']):>6} us p99 {_us(lat['p99_us']):>7} us"
                f" | gaps {s['gaps']} reconnects {s['reconnects']} errors {s['errors']} | "
                f"{r.demo.detail(s)}")

    def finish(self, runs: Sequence[FeedRun], seconds: float, verdict: str) -> None:
        self.finished = True
        self.write(f"summary ({seconds:.1f} s):")
        for r in runs:
            for line in _summary(r, seconds):
                self.write(line)
        self.write(verdict)


class LiveView:
    """The rich live dashboard: a table of the feeds and the latest fault events."""

    def __init__(self, console: Console, seconds: float) -> None:
        self.console = console
        self.seconds = seconds
        self.recent: deque[tuple[float, str, str]] = deque(maxlen=10)
        self.live: Live | None = None

    def start(self, header: str) -> None:
        self.console.print(header)
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.live.start()

    def event(self, t: float, feed: str, text: str) -> None:
        self.recent.append((t, feed, text))

    def render(self, runs: Sequence[FeedRun], t: float, phase: str) -> Group:
        clock = f"{t:4.1f} / {self.seconds:g} s" if phase == "running" else f"{t:.1f} s"
        table = Table(title=f"oddswire demo: {phase}, {clock}", title_justify="left")
        for name, justify in (("feed", "left"), ("health", "left"), ("msgs/s", "right"),
                              ("MB/s", "right"), ("p50 µs", "right"), ("p99 µs", "right"),
                              ("gaps", "right"), ("reconn", "right"), ("errors", "right"),
                              ("faults", "right"), ("state", "left")):
            table.add_column(name, justify=justify, no_wrap=name != "state")  # type: ignore[arg-type]
        for r in runs:
            s, (rate, mb) = r.stats, r.rates()
            lat = s["receive_to_callback"]
            health, style = _health(r)
            done = sum(fr.recovered_at is not None for fr in r.faults)
            faults = f"{done}/{len(r.faults)}" + (" …" if r.open is not None else "")
            table.add_row(r.demo.title, Text(health, style=style), f"{rate:,.0f}", f"{mb:.2f}",
                          _us(lat["p50_us"]), _us(lat["p99_us"]), str(s["gaps"]),
                          str(s["reconnects"]), str(s["errors"]), faults, r.demo.detail(s))
        log = Table.grid(padding=(0, 1))
        for t_ev, feed, text in self.recent:
            style = "green" if text.startswith("recovered") else (
                "bold red" if "stopped" in text else "yellow" if text.startswith("fault") else "")
            log.add_row(f"{t_ev:5.1f}s", feed, Text(text, style=style))
        return Group(table, Text("faults and recovery", style="bold"), log)

    def update(self, runs: Sequence[FeedRun], t: float, phase: str) -> None:
        assert self.live is not None
        self.live.update(self.render(runs, t, phase), refresh=True)

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def finish(self, runs: Sequence[FeedRun], seconds: float, verdict: str) -> None:
        self.stop()
        self.console.print(Text(f"summary ({seconds:.1f} s):", style="bold"))
        for r in runs:
            lines = _summary(r, seconds)
            self.console.print(Text(lines[0], style="bold"))
            for line in lines[1:]:
                bad = "FAILED" in line or "NOT RECOVERED" in line
                self.console.print(Text(line, style="red" if bad else ""))
        self.console.print(Text(verdict, style="bold green" if verdict.startswith("demo ok")
                                else "bold red"))


def _print(line: str) -> None:
    print(line, flush=True)


class _Clock:
    """Seconds since the demo's clock started (``t0``, on the running loop's clock)."""

    def __init__(self) -> None:
        self.t0 = asyncio.get_running_loop().time()

    def __call__(self) -> float:
        return asyncio.get_running_loop().time() - self.t0


class _LogToView(logging.Handler):
    """Warnings the clients, picows and asyncio log become events of the view (on a terminal
    they would otherwise tear through the live display)."""

    NAMES = ("oddswire", "picows", "asyncio")

    def __init__(self, event: Callable[[float, str, str], None],
                 clock: Callable[[], float]) -> None:
        super().__init__(logging.WARNING)
        self.event, self.clock = event, clock
        self.saved: list[tuple[logging.Logger, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = record.name.split(".")
        feed = parts[1] if len(parts) > 1 and parts[1] in DEMOS else parts[0]
        self.event(self.clock(), feed, f"log: {record.getMessage()}")

    def __enter__(self) -> _LogToView:
        for name in self.NAMES:
            logger = logging.getLogger(name)
            self.saved.append((logger, logger.propagate))
            logger.addHandler(self)
            logger.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        for logger, propagate in self.saved:
            logger.removeHandler(self)
            logger.propagate = propagate


async def run_demo(feeds: Sequence[str], *, seconds: float = 20.0, speed: float = 1.0,
                   faults: bool = True, console: Console | None = None,
                   write: Callable[[str], object] = _print, loop_name: str = "",
                   verify_timeout: float = 15.0,
                   demos: Sequence[FeedDemo] | None = None) -> int:
    """Run the demo of ``feeds``; 0 when every check passed and every fault was recovered
    from, else 1. The live view goes to ``console`` when it is a terminal, plain lines to
    ``write`` otherwise. ``demos`` replaces the ``FeedDemo`` of each feed (tests)."""
    unknown = set(feeds) - set(DEMOS)
    if unknown:
        raise ValueError(f"unknown feeds {sorted(unknown)}; known: {', '.join(FEEDS)}")
    view: PlainView | LiveView = (LiveView(console, seconds) if console is not None
                                  and console.is_terminal
                                  else PlainView(write, 1.0 if len(feeds) == 1 else 2.0))
    demos = list(demos) if demos is not None else [DEMOS[f](speed) for f in feeds]
    clock = _Clock()
    with _LogToView(view.event, clock):
        try:
            return await _run(demos, view, clock, seconds, faults, loop_name, verify_timeout)
        finally:
            if isinstance(view, LiveView):
                view.stop()
            for d in demos:
                await d.stop()


async def _run(demos: list[FeedDemo], view: PlainView | LiveView, clock: _Clock,
               seconds: float, faults: bool, loop_name: str, verify_timeout: float) -> int:
    loop = asyncio.get_running_loop()
    for d in demos:
        await d.start()
    runs = [FeedRun(d, view.event) for d in demos]
    on = f" on {loop_name}" if loop_name else ""
    view.start(f"{version_line()}\n{', '.join(d.title for d in demos)}: simulators on "
               f"127.0.0.1{on}, {seconds:g} s, "
               + ("a fault now and then" if faults else "no faults"))
    # Connected and healthy first (a few seconds at most), so the clock starts on live feeds.
    deadline = loop.time() + 5
    while loop.time() < deadline and not all(
            d.client.healthy or d.task is None or d.task.done() for d in demos):
        await asyncio.sleep(_TICK)
    clock.t0 = loop.time()
    period = min(3.5, max(1.0, seconds / 6))
    cutoff = seconds - min(3.0, 0.3 * seconds)
    if faults:
        for i, r in enumerate(runs):
            r.next_at = period * (1 + i / len(runs))
    redraw = -math.inf
    while (t := clock()) < seconds:
        due = t - redraw >= _REDRAW
        for r in runs:
            if due or r.open is not None:
                r.sample(t)
            if t >= r.next_at and t < cutoff and r.ready():
                r.inject(t)
                r.next_at = t + period
        if due:
            redraw = t
            for r in runs:
                r.demo.tick()
            view.update(runs, t, "running")
        await asyncio.sleep(_TICK)
    checks = [asyncio.ensure_future(r.verify(verify_timeout)) for r in runs]
    while not all(c.done() for c in checks):
        t = clock()
        for r in runs:
            r.sample(t)
        if t - redraw >= _REDRAW:
            redraw = t
            view.update(runs, t, "checking replicas")
        await asyncio.sleep(_TICK)
    for c in checks:
        c.result()
    t = clock()
    for r in runs:
        r.sample(t)
    view.update(runs, t, "done")
    failed = [r.demo.key for r in runs if not r.ok]
    verdict = (f"demo ok: {len(runs)} feed(s) recovered from every fault and match their "
               "simulators" if not failed else f"demo FAILED: {', '.join(failed)}")
    view.finish(runs, t, verdict)
    return 1 if failed else 0


# --- command line ---------------------------------------------------------------------------

def add_parser(sub: Any) -> None:
    """``oddswire demo``'s arguments, on the ``__main__`` subparsers."""
    p = sub.add_parser("demo", help="every feed's simulator and client with a live dashboard",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("feed", nargs="?", default="all", choices=(*FEEDS, "all"),
                   help="one feed, or all of them (default)")
    p.add_argument("--seconds", type=float, default=20.0, help="how long to run (default 20)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="scale every simulator's traffic rate (default 1)")
    p.add_argument("--no-faults", dest="faults", action="store_false",
                   help="inject no faults")
    p.add_argument("--plain", action="store_true",
                   help="plain lines even on a terminal (the default without one)")
    p.add_argument("--loop", choices=LOOPS, default="uvloop")
    p.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    if not args.seconds > 0 or not args.speed > 0:
        print("oddswire demo: --seconds and --speed must be positive", file=sys.stderr)
        return 2
    feeds = FEEDS if args.feed == "all" else (args.feed,)
    console = None if args.plain else Console()
    return run_loop(args.loop, run_demo(feeds, seconds=args.seconds, speed=args.speed,
                                        faults=args.faults, console=console,
                                        loop_name=args.loop))
