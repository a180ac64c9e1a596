"""The compiled /log loop (oddswire._databet.LogSink) through DatabetClient on 127.0.0.1:
events only for registered callbacks, the ``batch`` event, registrations made inside a
callback, callback failures, stats, and slow-consumer detection. Both loops."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from netutil import LOOPS, run, wait_until
from oddswire.client import ReconnectPolicy
from oddswire.databet import DatabetClient
from oddswire.errors import CallbackError
from oddswire.sim.databet import DatabetSimulator

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)


@pytest.mark.parametrize("loop", LOOPS)
def test_batches_carry_every_log_once_after_its_events_and_late_registrations_count(loop):
    async def main() -> None:
        async with DatabetSimulator(seed=5, events=20, rate=3000, chunk=(1, 4000)) as sim:
            client = DatabetClient(sim.url, heartbeat_interval=1, reconnect=FAST)
            order: list[tuple[str, Any]] = []
            batches: list[list[Any]] = []
            markets: list[str] = []
            errors: list[BaseException] = []
            client.on("log", lambda a: order.append(("log", a.version)))
            client.on("batch", lambda b: (batches.append(b), order.append(("batch", len(b)))))
            client.on("error", errors.append)

            def boom(a: Any) -> None:
                raise RuntimeError("a bot's bug")

            def first_fixture(a: Any) -> None:
                # registered from inside a callback: must apply from the next line on
                if not markets:
                    client.on("markets", lambda m: markets.append(m.version))
                    client.on("bet_stop", boom)
                    markets.append("registered")
            client.on("fixture", first_fixture)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(order) > 1500 and len(markets) > 20, what="logs")
            await wait_until(lambda: any(isinstance(e, CallbackError) for e in errors),
                             what="the failing callback reported")
            await client.stop()
            await task
            logs = [v for k, v in order if k == "log"]
            assert [a.version for b in batches for a in b] == logs[:sum(map(len, batches))]
            # a batch comes after the logs it holds
            seen = 0
            for kind, x in order:
                if kind == "log":
                    seen += 1
                else:
                    assert seen >= x
            assert logs == sorted(logs) and len(set(logs)) == len(logs)
            later = markets[1:]
            assert later and set(later) <= set(logs)
            assert client.version == logs[-1]
            stats = client.stats()
            assert stats["callback_errors"] >= 1
            assert stats["messages"] >= len(logs)
            for key in ("receive_to_decoded", "receive_to_callback", "server_to_receive"):
                assert stats[key]["count"] > 0, key
            assert stats["receive_to_decoded"]["p50_us"] <= stats["receive_to_callback"][
                "max_us"]
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_slow_callback_is_reported_as_a_slow_consumer(loop):
    async def main() -> None:
        async with DatabetSimulator(seed=6, events=20, rate=None) as sim:
            client = DatabetClient(sim.url, heartbeat_interval=1, reconnect=FAST)
            client.slow_after_s = 0.3
            client.slow_backlog_bytes = 32 * 1024
            slow: list[tuple[int, float | None]] = []
            client.on("slow_consumer", lambda backlog, lag: slow.append((backlog, lag)))
            client.on("log", lambda a: time.sleep(0.0005))  # ~2k logs/s: behind the server
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: bool(slow), what="slow_consumer")
            await client.stop()
            await task
            backlog, lag = slow[0]
            assert backlog >= 32 * 1024
            assert lag is not None and lag > 0
            assert client.stats()["slow_consumers"] == len(slow) >= 1
    run(loop, main)


def test_slow_consumer_is_a_known_event_for_every_feed() -> None:
    client = DatabetClient("http://127.0.0.1:9")
    client.on("slow_consumer", lambda backlog, lag: None)
    client.on("batch", lambda applied: None)
    assert client.stats()["slow_consumers"] == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_stamp_latency_off_leaves_the_histograms_empty(loop):
    async def main() -> None:
        async with DatabetSimulator(seed=5, events=20, rate=2000) as sim:
            client = DatabetClient(sim.url, heartbeat_interval=1, reconnect=FAST)
            client.stamp_latency = False
            logs: list[Any] = []
            client.on("log", logs.append)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(logs) > 200, what="logs")
            await client.stop()
            await task
            stats = client.stats()
            assert stats["messages"] >= len(logs)
            for key in ("receive_to_decoded", "receive_to_callback", "server_to_receive"):
                assert stats[key]["count"] == 0, key
            assert stats["callback"]["count"] > 0  # the callbacks' own time is still kept
    run(loop, main)
