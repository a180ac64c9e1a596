"""Broker stream end to end on loopback: quotes/s delivered to a Python callback, and
server-stamp -> callback latency, for BrokerClient against peers in the same run.

The simulator runs in its own process (``python -m oddswire.sim.broker``), so server and
client each have a core. Throughput: it writes a pre-encoded cycle of 4,096 quote frames
(~55 B payloads, 12 symbols) as fast as the socket drains; every library authenticates,
subscribes, and counts N quotes through the same callback, which keeps the last quote per
symbol; the libraries must agree on those after exactly N quotes. Latency: a paced server
stamps ``time.perf_counter_ns()`` (CLOCK_MONOTONIC, shared by both processes) into ``ts``.

The ``stamp_latency=False`` row is the same client without the per-message latency stamps
of ``stats()`` (two time-stamp counter reads and three histogram adds a quote).

The batch row is ``BrokerClient`` with ``on("quotes", fn)`` only: ``fn`` gets the rows each
socket read updated, reads their latest values from the book (numpy), keeps them per symbol
and counts the quotes the client applied. It sees whole reads, so it ends a few quotes past
N: it is checked against the book at that point (its view must be the book's), not
against the N-quote answer the others share.

Libraries: oddswire ``BrokerClient`` (picows + Cython listener + Rust decoder); the
pure-Python twin listener on picows; picows + ``orjson.loads`` + Python dispatch in a
Python listener (the best peer); ``websockets`` + ``orjson.loads``; and picows counting
frames without decoding (the ceiling).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from picows import WSListener, WSMsgType, WSTransport, ws_connect
from websockets.asyncio.client import connect

from conftest import record_latency, scale
from oddswire import reference
from oddswire.broker import BrokerClient, QuoteBook
from oddswire.sim.broker import DEFAULT_SYMBOLS, TokenSigner
from simproc import drive, simulator_process

N = scale(4096 * 256)
LATENCY_N = scale(20_000, 2_000)
TOKEN = TokenSigner(b"oddswire-sim-secret").user(2000009)
SYMBOLS = sorted(DEFAULT_SYMBOLS)
AUTH = orjson.dumps({"authorization": TOKEN})
SUBSCRIBE = orjson.dumps({"event": "subscribe", "data": SYMBOLS})


@pytest.fixture(scope="module")
def blast_url() -> Iterator[str]:
    yield from _server("--rate", "-1")


@pytest.fixture(scope="module")
def paced_url() -> Iterator[str]:
    yield from _server("--rate", "250", "--clock", "monotonic_ns")


def _server(*args: str) -> Iterator[str]:
    yield from simulator_process(["-m", "oddswire.sim.broker", *args])


class Counter:
    """The same callback for every library: count, keep the last quote per symbol, and
    finish after ``n`` quotes (optionally sampling stamp -> callback latency). The callback
    is a plain function, as a bot's would be."""

    def __init__(self, n: int, latency: bool = False) -> None:
        self.n, self.count = n, 0
        self.last: dict[str, tuple[float, float, int]] = {}
        self.samples: list[int] = []
        self.book_view: dict[str, tuple[float, float, int]] = {}
        self.done = asyncio.get_running_loop().create_future()
        last, samples, now = self.last, self.samples, time.perf_counter_ns

        def on_quote(symbol: str, bid: float, ask: float, ts: int) -> None:
            if self.count == n:  # the rest of the last socket read: not counted
                return
            if latency:
                samples.append(now() - ts)
            last[symbol] = (bid, ask, ts)
            self.count += 1
            if self.count == n:
                self.done.set_result(None)
        self.on_quote = on_quote


async def oddswire_client(url: str, cb: Counter, stamp_latency: bool = True) -> None:
    client = BrokerClient(url, token=TOKEN, symbols=SYMBOLS, switch_on_connect=False,
                          book=QuoteBook(capacity=16))
    client.stamp_latency = stamp_latency
    client.on("quote", cb.on_quote)
    task = asyncio.ensure_future(client.run())
    await cb.done
    await client.stop()
    await task


async def oddswire_unstamped(url: str, cb: Counter) -> None:
    await oddswire_client(url, cb, stamp_latency=False)


async def oddswire_batches(url: str, cb: Counter) -> None:
    book = QuoteBook(capacity=16)
    client = BrokerClient(url, token=TOKEN, symbols=SYMBOLS, switch_on_connect=False,
                          book=book)
    last, symbols = cb.last, book.symbols

    def on_quotes(rows: Any) -> None:
        nonlocal symbols
        if cb.done.done():
            return
        if len(symbols) < len(book):
            symbols = book.symbols
        bids, asks, stamps = book.bid[rows], book.ask[rows], book.ts[rows]
        for row, bid, ask, ts in zip(rows.tolist(), bids.tolist(), asks.tolist(),
                                     stamps.tolist(), strict=True):
            last[symbols[row]] = (bid, ask, ts)
        # How many quotes the client applied so far (a benchmark may peek at its listener).
        cb.count = client._listener.quotes if client._listener is not None else cb.count
        if cb.count >= cb.n:
            cb.book_view = {s: (float(book.bid[r]), float(book.ask[r]), int(book.ts[r]))
                            for r, s in enumerate(book.symbols)}
            cb.done.set_result(None)
    client.on("quotes", on_quotes)
    task = asyncio.ensure_future(client.run())
    await cb.done
    await client.stop()
    await task


class _PicowsSession(WSListener):
    """Authorize, subscribe, then hand every other frame to ``handle``."""

    def __init__(self, handle: Callable[[Any], None]) -> None:
        super().__init__()
        self.handle = handle
        self.authorized = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        transport.send(WSMsgType.TEXT, AUTH)

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        if not self.authorized:
            self.authorized = True
            transport.send(WSMsgType.TEXT, SUBSCRIBE)
            return
        self.handle(frame)


async def _picows(url: str, cb: Counter, handle: Callable[[Any], None]) -> None:
    transport, _ = await ws_connect(lambda: _PicowsSession(handle), url)
    await cb.done
    transport.disconnect()
    await transport.wait_disconnected()


async def picows_orjson(url: str, cb: Counter) -> None:
    book: dict[str, tuple[float, float, int]] = {}

    def handle(frame: Any) -> None:
        msg = orjson.loads(frame.get_payload_as_bytes())
        if type(msg) is list and msg[0] == "t":
            book[msg[1]] = (msg[2], msg[3], msg[4])
            cb.on_quote(msg[1], float(msg[2]), float(msg[3]), msg[4])
    await _picows(url, cb, handle)


async def picows_twin(url: str, cb: Counter) -> None:
    twin = reference.BrokerListener(reference.QuoteBook(), on_quote=cb.on_quote)
    await _picows(url, cb, lambda frame: twin.feed(frame.get_payload_as_bytes()))


async def picows_count_only(url: str, cb: Counter) -> None:
    def handle(frame: Any) -> None:
        if cb.count < cb.n:
            cb.count += 1
            if cb.count == cb.n:
                cb.done.set_result(None)
    await _picows(url, cb, handle)
    cb.last = {"(not decoded)": (0.0, 0.0, 0)}


async def websockets_orjson(url: str, cb: Counter) -> None:
    async with connect(url, max_size=2**20, compression=None) as ws:
        await ws.send(AUTH.decode())
        await ws.recv()
        await ws.send(SUBSCRIBE.decode())
        book: dict[str, tuple[float, float, int]] = {}
        async for raw in ws:
            msg = orjson.loads(raw)
            if type(msg) is list and msg[0] == "t":
                book[msg[1]] = (msg[2], msg[3], msg[4])
                cb.on_quote(msg[1], float(msg[2]), float(msg[3]), msg[4])
                if cb.done.done():
                    # The server is still blasting: skip the close handshake's wait.
                    ws.transport.abort()
                    break


LIBRARIES = [
    ("oddswire BrokerClient", "oddswire", oddswire_client),
    ("oddswire BrokerClient, stamp_latency=False", "oddswire", oddswire_unstamped),
    ("oddswire BrokerClient, quotes batch per read", "oddswire", oddswire_batches),
    ("reference twin listener on picows", "twin", picows_twin),
    ("picows + orjson.loads", "peer", picows_orjson),
    ("websockets + orjson.loads", "peer", websockets_orjson),
    ("picows, frames counted, not decoded", "ceiling", picows_count_only),
]


def _run(client: Any, url: str, n: int, latency: bool = False) -> Counter:
    return drive(client, url, lambda: Counter(n, latency))


_expected: dict[str, Any] = {}


@pytest.mark.parametrize(("library", "kind", "client"), LIBRARIES, ids=[x[0] for x in LIBRARIES])
def test_quotes_per_second(bench: Any, blast_url: str, library: str, kind: str,
                           client: Any) -> None:
    if not _expected:
        _expected["last"] = _run(oddswire_client, blast_url, N).last
    n = N // 4 if "websockets" in library or kind == "twin" else N
    expected = _expected["last"] if n == N else _run(oddswire_client, blast_url, n).last
    bench(f"broker quotes, loopback end to end ({N:,} quotes, ~55 B)", library, kind,
          lambda: _run(client, blast_url, n), nbytes=n * 57, units=n, unit="quotes",
          result=lambda cb: (expected if kind == "ceiling"
                             or ("batch" in library and cb.last == cb.book_view) else cb.last),
          expected=expected, rounds=3)


LATENCY_LIBRARIES = [x for x in LIBRARIES[:6] if "batch" not in x[0] and "stamp" not in x[0]]


@pytest.mark.parametrize(("library", "kind", "client"), LATENCY_LIBRARIES,
                         ids=[x[0] for x in LATENCY_LIBRARIES])
def test_stamp_to_callback_latency(paced_url: str, library: str, kind: str,
                                   client: Any) -> None:
    cb = _run(client, paced_url, LATENCY_N, latency=True)
    record_latency("broker server stamp -> callback latency (3k quotes/s paced)", library,
                   cb.samples[1000:])
    assert len(cb.samples) >= LATENCY_N
