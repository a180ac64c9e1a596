"""SatoriEx market data end to end on loopback: messages/s into prices and order books,
delivered to the same Python callbacks, and server-stamp -> callback latency, for
SatoriexClient against peers in the same run.

The simulator runs in its own process (this file run as a script: a ``SatoriexSimulator``
whose blast stream also carries user events, and whose paced ticks stamp
``time.perf_counter_ns()``, CLOCK_MONOTONIC shared by both processes, into the price
updates' ``ts``), so server and client each have a core. Throughput: each session that
subscribes to market data gets the same pre-encoded stream as fast as the socket drains:
a snapshot per market (4 markets, 10 levels a side), then ``orderbook`` deltas (1-3 levels,
size 0 deletes, ~130 B) round-robin with a ``price_update`` (~120 B) after every third
one, and a user event (``order_filled``, ``wallet_changed``, ... ~110 B) after every
``USER_EVERY`` market-data messages. Every library subscribes the markets' market data and
calls the same callbacks: ``on_price(market, mid, best_bid, best_ask, ts)`` after the
price changed, ``on_book(market, seq)`` after the book changed, ``on_user(message)``; after
exactly N messages its prices (per market) and books (every level) must equal what the
stream's first N messages say (the books from the simulator's own worlds,
:func:`oddswire.sim.satoriex.blast_frames`), and the last user event id must match.
Latency: a paced server (a delta and a price update per market every 2 ms) stamps ``ts``;
``on_price`` samples ``perf_counter_ns() - ts``.

Libraries: oddswire ``SatoriexClient`` (picows + Cython listener + Rust ``MarketData``,
``price`` / ``book`` / user events as callbacks); picows + ``orjson.loads`` dicts + dict
prices + the bisect books of ``test_bench_satoriex.py`` in a hand-written ``WSListener``
(the best peer); ``websockets`` + ``json.loads`` + the same (the spec's loop); and picows
counting frames without decoding (the ceiling, bounded by the simulator too).

Run: ``python -m pytest benchmarks/test_bench_satoriex_e2e.py --benchmark-disable-gc``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from picows import WSListener, WSMsgType, WSTransport, ws_connect
from websockets.asyncio.client import connect

from conftest import scale
from oddswire.satoriex import USER_EVENTS, SatoriexClient
from oddswire.sim._base import serve_main, ws_frame_bytes
from oddswire.sim.satoriex import DEFAULT_MARKETS, SatoriexSimulator, XSession, blast_frames
from simproc import drive, simulator_process

N = scale(300_000)
LATENCY_N = scale(6_000, 2_000)  # price samples: ~3 s at 4 markets every 2 ms
LATENCY_SKIP = scale(500)  # connection warm-up, not sampled
USER_EVERY = 20  # a user event after every 20 market-data messages
PRICE_EVERY = 3  # a price update after every third delta (every market gets some)
MARKETS = tuple(DEFAULT_MARKETS)
SECRET = b"oddswire-satoriex-secret"

Prices = dict[str, tuple[Any, ...]]
Books = dict[str, tuple[list[list[float]], list[list[float]]]]
State = tuple[Prices, Books, int]


# --- the stream ----------------------------------------------------------------------------

def market_messages(n: int) -> int:
    """How many of the stream's first ``n`` messages are market data."""
    return n - n // (USER_EVERY + 1)


def user_event(k: int) -> bytes:
    kind = USER_EVENTS[k % len(USER_EVENTS)]
    ev: dict[str, Any] = {"type": kind, "id": k + 1, "ts": 1_750_000_000_000 + k}
    if kind in ("order_filled", "market_resolved", "dispute_filed"):
        ev.update(market_id=MARKETS[k % len(MARKETS)], order_id=f"o_{k}", price=0.55, size=12)
    else:
        ev.update(amount=f"{k % 9973 / 100:.2f}", currency="USDC", request_id=f"r_{k}")
    return orjson.dumps(ev)


def stream(n: int) -> list[bytes]:
    """The blast stream: ``blast_frames`` with a user event after every ``USER_EVERY``."""
    md, _ = blast_frames(market_messages(n), MARKETS, price_every=PRICE_EVERY)
    out: list[bytes] = []
    users = itertools.count()
    for i, f in enumerate(md, 1):
        out.append(f)
        if i % USER_EVERY == 0 and len(out) < n:
            out.append(user_event(next(users)))
    return out[:n]


def _nan_none(x: Any) -> Any:
    return None if isinstance(x, float) and math.isnan(x) else x


def expected(frames: list[bytes], n: int) -> State:
    """Prices, books and the last user event id after the first ``n`` messages; the books
    come from the simulator's own worlds (``blast_frames``), not from a decoder here."""
    _, worlds = blast_frames(market_messages(n), MARKETS, price_every=PRICE_EVERY)
    books = {m: (w.levels()[0].tolist(), w.levels()[1].tolist()) for m, w in worlds.items()}
    prices: Prices = {}
    last_user = 0
    for f in reversed(frames[:n]):
        msg = orjson.loads(f)
        if msg["type"] == "price_update" and msg["market_id"] not in prices:
            prices[msg["market_id"]] = (msg["mid"], msg["best_bid"], msg["best_ask"], msg["ts"])
        elif msg["type"] in USER_EVENTS and not last_user:
            last_user = msg["id"]
        if last_user and len(prices) == len(MARKETS):
            break
    return prices, books, last_user


# --- the simulator process -----------------------------------------------------------------

class BenchSimulator(SatoriexSimulator):
    """Blast: the pre-encoded ``stream`` (user events included). Paced: every tick a delta
    and a price update stamped with ``perf_counter_ns`` per subscribed market."""

    PER_WRITE = 512  # frames per socket write (~60 KB)

    def __init__(self, *, frames: list[bytes] | None, **kwargs: Any) -> None:
        super().__init__(user_events=False, market_events=False, **kwargs)
        self._blast = frames
        self._blobs = [] if frames is None else [
            b"".join(map(ws_frame_bytes, frames[i:i + self.PER_WRITE]))
            for i in range(0, len(frames), self.PER_WRITE)]

    async def _blast_to(self, s: XSession) -> None:
        """The stream pre-framed, written in ~60 KB pieces while the socket drains (one
        write per frame would make the simulator the bottleneck)."""
        t, i = s.transport, 0
        while i < len(self._blobs) and not t.is_disconnected:
            sent = not s.paused
            if sent:
                t.underlying_transport.write(self._blobs[i])
                i += 1
            await self._blast_pause(sent)

    def tick(self) -> None:
        for m, w in self.worlds.items():
            self._to_marketdata(m, orjson.dumps(w.delta()))
            self._to_marketdata(m, orjson.dumps(w.price(time.perf_counter_ns())))


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interval", type=float, default=0.0)
    p.add_argument("--frames", type=int, default=N)


def _make(args: argparse.Namespace) -> SatoriexSimulator:
    frames = stream(args.frames) if args.interval == 0 else None
    sim = BenchSimulator(frames=frames, interval=args.interval, port=args.port, secret=SECRET)
    print(f"TOKEN {sim.token()}", flush=True)
    return sim


@pytest.fixture(scope="module")
def blast_url() -> Iterator[str]:
    yield from _server("--interval", "0", "--frames", str(N))


@pytest.fixture(scope="module")
def paced_url() -> Iterator[str]:
    yield from _server("--interval", "0.002")


def _server(*args: str) -> Iterator[str]:
    yield from simulator_process([__file__, *args], token_param="token")


# --- the same callbacks for every library --------------------------------------------------

class Counter:
    """Count every message (price, book, user event) through plain functions, sample stamp
    -> callback latency when asked (done after ``n`` price samples then), and after exactly
    ``n`` messages snapshot the library's prices and books (``snapshot``)."""

    def __init__(self, n: int, latency: bool = False) -> None:
        self.n, self.count, self.prices_seen = n, 0, 0
        self.last_user = 0
        self.samples: list[int] = []
        self.state: State | None = None
        self.snapshot: Callable[[], tuple[Prices, Books]] = lambda: ({}, {})
        self.done = asyncio.get_running_loop().create_future()
        samples, now = self.samples, time.perf_counter_ns

        def finish() -> None:
            prices, books = self.snapshot()
            self.state = prices, books, self.last_user
            self.done.set_result(None)

        def on_price(market: str, mid: float, bid: float, ask: float, ts: int) -> None:
            if self.count == n:  # the rest of the last socket read: not counted
                return
            if latency:
                samples.append(now() - ts)
                if len(samples) == n:
                    self.count = n
                    self.done.set_result(None)
                return
            self.count += 1
            if self.count == n:
                finish()

        def on_book(market: str, seq: int) -> None:
            if self.count == n or latency:
                return
            self.count += 1
            if self.count == n:
                finish()

        def on_user(msg: dict[str, Any]) -> None:
            if self.count == n or latency:
                return
            self.last_user = msg["id"]
            self.count += 1
            if self.count == n:
                finish()
        self.on_price, self.on_book, self.on_user = on_price, on_book, on_user


def _clean(prices: Prices) -> Prices:
    return {m: tuple(map(_nan_none, p)) for m, p in prices.items()}


async def oddswire_client(url: str, cb: Counter) -> None:
    base, _, token = url.partition("?token=")  # the client adds it to the query
    client = SatoriexClient(base, token=token, marketdata=MARKETS)
    md = client.market_data

    def snapshot() -> tuple[Prices, Books]:
        return (_clean({m: md.get(m) for m in MARKETS if md.get(m) is not None}),
                {m: (md.bids(m).tolist(), md.asks(m).tolist()) for m in MARKETS})
    cb.snapshot = snapshot
    client.on("price", cb.on_price)
    client.on("book", cb.on_book)
    for kind in USER_EVENTS:
        client.on(kind, cb.on_user)
    task = asyncio.ensure_future(client.run())
    await cb.done
    await client.stop()
    await task


class DictBooks:
    """What a hand-written client keeps: prices in a dict, books as sorted lists of
    ``[price, size]`` (bisect), seq checked; the ``test_bench_satoriex.py`` logic."""

    def __init__(self, cb: Counter) -> None:
        self.books: Books = {}
        self.prices: Prices = {}
        self.seqs: dict[str, int] = {}
        cb.snapshot = lambda: (_clean(dict(self.prices)),
                               {m: ([list(x) for x in b], [list(x) for x in a])
                                for m, (b, a) in self.books.items()})
        on_price, on_book, on_user = cb.on_price, cb.on_book, cb.on_user
        books, prices, seqs = self.books, self.prices, self.seqs
        user = frozenset(USER_EVENTS)

        def handle(msg: Any) -> None:
            kind = msg["type"]
            if kind == "price_update":
                m = msg["market_id"]
                p = prices[m] = (msg["mid"], msg["best_bid"], msg["best_ask"], msg["ts"])
                on_price(m, *p)
                return
            if kind == "orderbook":
                m, seq = msg["market_id"], msg["seq"]
                if msg.get("snapshot"):
                    books[m] = ([], [])
                elif seqs.get(m, seq - 1) + 1 != seq:
                    raise AssertionError("gap")
                seqs[m] = seq
                for side, levels, sign in ((books[m][0], msg.get("bids", ()), -1),
                                           (books[m][1], msg.get("asks", ()), 1)):
                    for price, size in levels:
                        i = bisect.bisect_left(side, sign * price,
                                               key=lambda lv, s=sign: s * lv[0])
                        if i < len(side) and side[i][0] == price:
                            if size == 0:
                                del side[i]
                            else:
                                side[i][1] = size
                        elif size:
                            side.insert(i, [price, size])
                on_book(m, seq)
                return
            if kind in user:
                on_user(msg)
        self.handle = handle


def _subscribes() -> list[bytes]:
    return [orjson.dumps({"type": "subscribe_marketdata", "market_id": m}) for m in MARKETS]


class _PicowsSession(WSListener):
    def __init__(self, handle: Callable[[Any], None]) -> None:
        super().__init__()
        self.handle = handle

    def on_ws_connected(self, transport: WSTransport) -> None:
        for msg in _subscribes():
            transport.send(WSMsgType.TEXT, msg)

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        self.handle(frame)


async def _picows(url: str, cb: Counter, handle: Callable[[Any], None]) -> None:
    transport, _ = await ws_connect(lambda: _PicowsSession(handle), url)
    await cb.done
    transport.disconnect()
    await transport.wait_disconnected()


async def picows_orjson(url: str, cb: Counter) -> None:
    handle, loads = DictBooks(cb).handle, orjson.loads
    await _picows(url, cb, lambda frame: handle(loads(frame.get_payload_as_bytes())))


async def picows_count_only(url: str, cb: Counter) -> None:
    def handle(frame: Any) -> None:
        if cb.count < cb.n:
            cb.count += 1
            if cb.count == cb.n:
                cb.done.set_result(None)
    await _picows(url, cb, handle)


async def websockets_json(url: str, cb: Counter) -> None:
    async with connect(url, max_size=4 << 20, compression=None) as ws:
        for msg in _subscribes():
            await ws.send(msg.decode())
        handle, loads = DictBooks(cb).handle, json.loads
        while not cb.done.done():
            handle(loads(await ws.recv()))
        ws.transport.abort()  # the server is still blasting: skip the close handshake


LIBRARIES = [
    ("oddswire SatoriexClient", "oddswire", oddswire_client, N),
    ("picows + orjson.loads dicts + bisect books", "peer", picows_orjson, N),
    ("websockets + json.loads + bisect books", "peer", websockets_json, N // 4),
    ("picows, frames counted, not decoded", "ceiling", picows_count_only, N),
]

_FRAMES: list[bytes] = []


def frames() -> list[bytes]:
    """The stream the blast server sends (built here too, for the expected state)."""
    if not _FRAMES:
        _FRAMES.extend(stream(N))
    return _FRAMES


def _run(client: Any, url: str, n: int, latency: bool = False) -> Counter:
    return drive(client, url, lambda: Counter(n, latency))


@pytest.mark.parametrize(("library", "kind", "client", "n"), LIBRARIES,
                         ids=[x[0] for x in LIBRARIES])
def test_messages_per_second(bench: Any, blast_url: str, library: str, kind: str,
                             client: Any, n: int) -> None:
    want = expected(frames(), n)
    wire = sum(map(len, frames())) / N + 4  # + the frame header
    bench(f"SatoriEx market data + user events, loopback end to end (~{wire:.0f} B "
          f"messages, {N:,} for oddswire, prices + books updated)", library, kind,
          lambda: _run(client, blast_url, n), nbytes=int(n * wire), units=n,
          unit="messages", result=lambda cb: cb.state if kind != "ceiling" else want,
          expected=want, rounds=3)


@pytest.mark.parametrize(("library", "kind", "client", "n"), LIBRARIES[:3],
                         ids=[x[0] for x in LIBRARIES[:3]])
def test_stamp_to_callback_latency(paced_url: str, library: str, kind: str, client: Any,
                                   n: int) -> None:
    from conftest import record_latency
    cb = _run(client, paced_url, LATENCY_N, latency=True)
    assert len(cb.samples) == LATENCY_N
    record_latency("SatoriEx server stamp -> price callback latency (2k prices/s paced)",
                   library, cb.samples[LATENCY_SKIP:])


if __name__ == "__main__":  # the simulator process
    serve_main("test_bench_satoriex_e2e.py", _make, _serve_args)
