"""55-tech order/bet stream end to end on loopback: messages/s delivered to a Python callback
with the payload decoded, and server-stamp -> callback latency, for Tech55Client against
peers in the same run.

The simulator runs in its own process (``python -m oddswire.sim.tech55``), so server and
client each have a core. Throughput: it writes a pre-encoded cycle of orders / bets /
settlements data messages (~600-900 B, the spec's full rows, ``seq`` counting up) as fast
as the socket drains; every library logs in and hands N messages to the same callback,
which keeps the last (seq, id, price) per channel; they must agree after exactly N.
Latency: a paced server stamps ``time.perf_counter_ns()`` into ``ts``.

Libraries: oddswire ``Tech55Client`` (typed payloads, seq gap engine, stats; the compiled
``Tech55Listener`` frame path: one C scan per frame, ``Order`` / ``Bet`` decoded lazily,
field by field as the callback reads them; and as the twin the same client on its
pure-Python frame path, ``compiled = False``: one msgspec decode per frame into the eager
Structs of ``oddswire.reference.tech55``); picows + ``orjson.loads`` dicts + Python
dispatch (the best peer); the spec's own loop, ``websockets`` + ``json.loads``; picows
counting frames without decoding (the ceiling).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from picows import WSListener, WSMsgType, WSTransport, ws_connect
from websockets.asyncio.client import connect

from conftest import record_latency, scale
from oddswire.tech55 import Tech55Client
from simproc import drive, simulator_process

N = scale(300_000)
LATENCY_N = scale(10_000, 2_000)
KEY = "bench-key"
CHANNELS = ["orders", "bets", "settlements"]
LOGIN = orjson.dumps({"type": "login", "apiKey": KEY, "channels": CHANNELS})
ID_FIELD = {"orders": ("orderId", "orderPrice"), "bets": ("betId", "placedPrice"),
            "settlements": ("betId", "placedPrice")}


@pytest.fixture(scope="module")
def blast_url() -> Iterator[str]:
    yield from _server("--rate", "-1")


@pytest.fixture(scope="module")
def paced_url() -> Iterator[str]:
    yield from _server("--rate", "3000", "--clock", "monotonic_ns")


def _server(*args: str) -> Iterator[str]:
    yield from simulator_process(["-m", "oddswire.sim.tech55", "--api-key", KEY, *args])


class Counter:
    """The same callback for every library: count, keep the last (seq, id, price) per
    channel, finish after ``n`` messages (optionally sampling stamp -> callback)."""

    def __init__(self, n: int, latency: bool = False) -> None:
        self.n, self.count = n, 0
        self.last: dict[str, tuple[int, int, float]] = {}
        self.samples: list[int] = []
        self.done = asyncio.get_running_loop().create_future()
        last, samples, now = self.last, self.samples, time.perf_counter_ns

        def on_message(channel: str, seq: int, ident: int, price: float, ts: int) -> None:
            if self.count == n:
                return
            if latency:
                samples.append(now() - ts)
            last[channel] = (seq, ident, price)
            self.count += 1
            if self.count == n:
                self.done.set_result(None)
        self.on_message = on_message


async def oddswire_client(url: str, cb: Counter, compiled: bool = True) -> None:
    client = Tech55Client(url, api_key=KEY, channels=CHANNELS)
    client.compiled = compiled
    on = cb.on_message

    def on_order(event: str, p: Any, seq: int, ts: int) -> None:
        on("orders", seq, p.order_id, p.order_price, ts)

    def on_bet(event: str, p: Any, seq: int, ts: int) -> None:
        on("bets", seq, p.bet_id, p.placed_price, ts)

    def on_settlement(event: str, p: Any, seq: int, ts: int) -> None:
        on("settlements", seq, p.bet_id, p.placed_price, ts)
    client.on("orders", on_order)
    client.on("bets", on_bet)
    client.on("settlements", on_settlement)
    task = asyncio.ensure_future(client.run())
    await cb.done
    stats = client.stats()
    await client.stop()
    await task
    assert stats["gaps"] == 0 and stats["duplicates"] == 0


async def oddswire_python_path(url: str, cb: Counter) -> None:
    await oddswire_client(url, cb, compiled=False)


def _dispatch(cb: Counter) -> Any:
    """Dict messages -> the callback, as a bot on a plain JSON library would write it."""
    on = cb.on_message

    def handle(msg: Any) -> None:
        kind = msg.get("type")
        if kind == "data":
            channel = msg["channel"]
            fields = ID_FIELD.get(channel)
            if fields is not None:
                p = msg["payload"]
                on(channel, msg["seq"], p[fields[0]], p[fields[1]], msg["ts"])
    return handle


class _PicowsSession(WSListener):
    def __init__(self, handle: Any) -> None:
        super().__init__()
        self.handle = handle

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, LOGIN)

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        self.handle(frame)


async def _picows(url: str, cb: Counter, handle: Any) -> None:
    transport, _ = await ws_connect(lambda: _PicowsSession(handle), url)
    await cb.done
    transport.disconnect()
    await transport.wait_disconnected()


async def picows_orjson(url: str, cb: Counter) -> None:
    dispatch = _dispatch(cb)
    await _picows(url, cb, lambda frame: dispatch(orjson.loads(frame.get_payload_as_bytes())))


async def picows_count_only(url: str, cb: Counter) -> None:
    def handle(frame: Any) -> None:
        if cb.count < cb.n:
            cb.count += 1
            if cb.count == cb.n:
                cb.done.set_result(None)
    await _picows(url, cb, handle)


async def websockets_json(url: str, cb: Counter) -> None:
    """The spec's example loop (json, ping -> pong), feeding the same callback."""
    dispatch = _dispatch(cb)
    async with connect(url, max_size=2**20, compression=None) as ws:
        await ws.send(LOGIN.decode())
        json.loads(await ws.recv())
        async for message in ws:
            data = json.loads(message)
            if data["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif data["type"] == "data":
                dispatch(data)
                if cb.done.done():
                    ws.transport.abort()
                    break


LIBRARIES = [
    ("oddswire Tech55Client (typed payloads)", "oddswire", oddswire_client),
    ("picows + orjson.loads dicts", "peer", picows_orjson),
    ("websockets + json.loads (the spec's loop)", "peer", websockets_json),
    ("picows, frames counted, not decoded", "ceiling", picows_count_only),
    ("oddswire Tech55Client, Python frame path (twin)", "twin", oddswire_python_path),
]


def _run(client: Any, url: str, n: int, latency: bool = False) -> Counter:
    return drive(client, url, lambda: Counter(n, latency))


def _shape(cb: Counter) -> dict[str, tuple[int, float]]:
    """What must agree: the last (id, price) per channel (seq differs per connection)."""
    return {ch: (ident, price) for ch, (_seq, ident, price) in cb.last.items()}


@pytest.mark.parametrize(("library", "kind", "client"), LIBRARIES, ids=[x[0] for x in LIBRARIES])
def test_messages_per_second(bench: Any, blast_url: str, library: str, kind: str,
                             client: Any) -> None:
    n = N // 4 if "websockets" in library else N
    expected = _shape(_run(oddswire_client, blast_url, n))
    bench(f"55-tech orders/bets/settlements, loopback end to end ({N:,} messages, ~750 B)",
          library, kind, lambda: _run(client, blast_url, n), nbytes=n * 750, units=n,
          unit="messages", result=lambda cb: _shape(cb) if kind != "ceiling" else expected,
          expected=expected, rounds=3)


@pytest.mark.parametrize(("library", "kind", "client"), LIBRARIES[:3],
                         ids=[x[0] for x in LIBRARIES[:3]])
def test_stamp_to_callback_latency(paced_url: str, library: str, kind: str,
                                   client: Any) -> None:
    cb = _run(client, paced_url, LATENCY_N, latency=True)
    record_latency("55-tech server stamp -> callback latency (3k messages/s paced)", library,
                   cb.samples[500:])
    assert len(cb.samples) >= LATENCY_N
