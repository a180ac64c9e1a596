"""Every WebSocket feed records every message (not a sample) in its listener: on loopback,
on asyncio and uvloop, ``receive_to_callback`` counts exactly the messages the listener
delivered, ``receive_to_decoded`` the messages decoded, and ``server_to_receive`` (with
its clock-offset estimate) the messages that carry a server stamp."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from netutil import LOOPS, run, wait_until
from oddswire._wire import BrokerListener, FeedListener
from oddswire.betcore import BetcoreClient
from oddswire.broker import BrokerClient, QuoteBook
from oddswire.client import ReconnectPolicy, Stats
from oddswire.satoriex import SatoriexClient
from oddswire.sim.betcore import BetcoreSimulator
from oddswire.sim.broker import BrokerSimulator
from oddswire.sim.satoriex import SatoriexSimulator
from oddswire.sim.tech55 import Tech55Simulator
from oddswire.tech55 import Tech55Client

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)


async def run_until(client: Any, enough: Any) -> dict[str, Any]:
    """Run ``client`` until ``enough()``, stop it, and return its stats."""
    task = asyncio.ensure_future(client.run())
    await wait_until(lambda: enough() or task.done(), what="messages")
    await client.stop()
    await asyncio.wait_for(task, 10)
    stats: dict[str, Any] = client.stats()
    return stats


def check_every_message(stats: dict[str, Any]) -> None:
    assert stats["messages"] > 0
    assert stats["receive_to_callback"]["count"] == stats["messages"]
    assert 0 < stats["receive_to_decoded"]["count"] <= stats["messages"] * 64
    for key in ("receive_to_decoded", "receive_to_callback"):
        s = stats[key]
        assert 0 <= s["p50_us"] <= s["p99_us"] <= s["p999_us"] <= s["max_us"]


@pytest.mark.parametrize("loop", LOOPS)
def test_broker_records_every_quote(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=300, customers={7: [2000009]}) as sim:
            client = BrokerClient(sim.url, token=sim.signer.customer(7), account=2000009,
                                  symbols=["eurusd", "xauusd"], reconnect=FAST)
            quotes: list[Any] = []
            client.on("quote", lambda *q: quotes.append(q))
            stats = await run_until(client, lambda: len(quotes) >= 200)
        check_every_message(stats)
        assert stats["receive_to_decoded"]["count"] == stats["quotes"] == len(quotes)
        server = stats["server_to_receive"]
        assert server["count"] == len(quotes) and not math.isnan(server["offset_us"])
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_tech55_records_every_message_and_its_stamp(loop: str) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=400) as sim:
            client = Tech55Client(sim.url, api_key=sim.api_key, reconnect=FAST)
            data: list[Any] = []
            for channel in ("orders", "bets", "settlements"):
                client.on(channel, lambda e, p, seq, ts: data.append(seq))
            stats = await run_until(client, lambda: len(data) >= 100)
        check_every_message(stats)
        decoded = stats["receive_to_decoded"]["count"]
        assert len(data) <= decoded < stats["messages"]  # not the login / pings
        server = stats["server_to_receive"]
        assert server["count"] == decoded and not math.isnan(server["offset_us"])
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_satoriex_records_every_message(loop: str) -> None:
    async def main() -> None:
        async with SatoriexSimulator(interval=0.002) as sim:
            client = SatoriexClient(sim.url, token=sim.token(), markets=["mkt_abc123"],
                                    marketdata=["mkt_abc123"], reconnect=FAST)
            prices: list[Any] = []
            client.on("price", lambda *a: prices.append(a))
            stats = await run_until(client, lambda: len(prices) >= 50)
        check_every_message(stats)
        assert stats["server_to_receive"]["count"] >= len(prices)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_betcore_records_every_frame_and_update_stamp(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.02) as sim:
            client = BetcoreClient(sim.url, access_token=sim.token, partner_client_id=7,
                                   game_types=(3,), reconnect=FAST)
            updates: list[Any] = []
            client.on("games", lambda u: updates.append(u))
            stats = await run_until(client, lambda: len(updates) >= 10)
        check_every_message(stats)
        assert stats["server_to_receive"]["count"] == stats["updates"] == client.updates
    run(loop, main)


def test_one_receive_stamp_per_read_and_the_clock_offset() -> None:
    stats = Stats()
    book, seen = QuoteBook(), []
    listener = BrokerListener(book, on_quote=lambda *q: seen.append(q), metrics=stats)
    assert listener.to_callback is stats.receive_to_callback
    skew_ms = 5_000  # the server's clock 5 s behind ours
    now_ms = time.time_ns() // 1_000_000 - skew_ms
    for i in range(10):  # one read of 10 frames
        listener.feed(f'["t","eurusd",1.{i},2.0,{now_ms}]'.encode(), last_in_buffer=i == 9)
    listener.feed(b'{"kind":"object"}')
    listener.feed(b'["t","eurusd",1.5,2.0,99999999999999999]')  # out of range: not recorded
    assert len(seen) == 11
    assert stats.receive_to_callback.n == listener.messages == 12
    assert stats.receive_to_decoded.n == 11 and stats.server_to_receive.n == 10
    offset = stats.server_to_receive.offset_ns
    assert offset is not None and skew_ms * 1e6 <= offset < (skew_ms + 60_000) * 1e6


def test_no_metrics_no_recording() -> None:
    listener = FeedListener(on_message=lambda b: None)
    listener.feed(b"x")
    listener.mark_decoded()
    listener.stamp(1)
    assert listener.to_callback is None and listener.messages == 1
    stats = Stats()
    listener = FeedListener(on_message=lambda b: None, metrics=stats)
    for bad in (None, "1", 2**70, 1.5):
        listener.stamp(bad)
    assert stats.server_to_receive.n == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_stamp_latency_off_leaves_the_histograms_empty(loop: str) -> None:
    """``client.stamp_latency = False``: quotes flow and are counted, nothing is stamped."""
    async def main() -> None:
        async with BrokerSimulator(rate=300, customers={7: [2000009]}) as sim:
            client = BrokerClient(sim.url, token=sim.signer.customer(7), account=2000009,
                                  symbols=["eurusd", "xauusd"], reconnect=FAST)
            client.stamp_latency = False
            quotes: list[Any] = []
            client.on("quote", lambda *q: quotes.append(q))
            stats = await run_until(client, lambda: len(quotes) >= 50)
        assert stats["messages"] > 0 and stats["quotes"] == len(quotes)
        for key in ("receive_to_decoded", "receive_to_callback", "server_to_receive"):
            assert stats[key]["count"] == 0, key
    run(loop, main)


def test_latencies_are_staged_within_a_read_and_flushed_at_its_end() -> None:
    """Adds are staged in the listener (512 at a time) and reach the histograms when the
    read ends, when a stage fills, or on ``flush_metrics()`` (what ``stats()`` calls); the
    window minimum of ``server_to_receive`` is the same as adding them one by one."""
    stats = Stats()
    listener = BrokerListener(QuoteBook(), on_quote=lambda *q: None, metrics=stats)
    now_ms = time.time_ns() // 1_000_000
    frames = [f'["t","eurusd",1.0,2.0,{now_ms - i % 3}]'.encode() for i in range(1500)]
    for f in frames[:1300]:  # one read, not ended: two stages of 512 flushed when full
        listener.feed(f, last_in_buffer=False)
    assert stats.receive_to_callback.n == stats.receive_to_decoded.n == 1024
    assert stats.server_to_receive.n == 1024
    listener.flush_metrics()
    assert stats.receive_to_callback.n == stats.server_to_receive.n == 1300
    for i, f in enumerate(frames[1300:]):
        listener.feed(f, last_in_buffer=i == 199)
    assert stats.receive_to_callback.n == stats.receive_to_decoded.n == 1500
    assert sum(stats.receive_to_callback.counts.values()) == 1500
    server = stats.server_to_receive
    assert server.n == sum(server.counts.values()) == 1500
    # the least delayed message (the newest stamp) bounds the offset; a stamp 10 s old is
    # too large to stage and goes in directly, in order
    assert server.offset_ns is not None and server.offset_ns < 3_000_000_000
    listener.feed(f'["t","eurusd",1.0,2.0,{now_ms - 10_000}]'.encode(), last_in_buffer=False)
    assert server.n == 1501 and server.max >= 10_000_000_000
    listener.flush_metrics()
    assert stats.receive_to_callback.n == 1501


@pytest.mark.parametrize("loop", LOOPS)
def test_stats_inside_a_callback_include_the_current_read(loop: str) -> None:
    """``stats()`` from a callback flushes the listener's stages first."""
    async def main() -> None:
        async with BrokerSimulator(rate=None, customers={7: [2000009]}) as sim:
            client = BrokerClient(sim.url, token=sim.signer.customer(7), account=2000009,
                                  symbols=["eurusd", "xauusd"], reconnect=FAST)
            seen: list[tuple[int, int]] = []

            def on_quote(*q: Any) -> None:
                if len(seen) < 2000:
                    s = client.stats()
                    seen.append((s["quotes"], s["receive_to_decoded"]["count"]))
            client.on("quote", on_quote)
            await run_until(client, lambda: len(seen) >= 2000)
        # each call sees every quote decoded so far, its own included
        assert all(decoded == quotes for quotes, decoded in seen), seen[:5]
    run(loop, main)
