"""The shared hydration gate and fallback poll (FeedClient.hydrating / FeedClient.poll) on a
scripted client without a network: queueing, order, covered events, nesting, the limit,
direct() while held, errors in the block, polls on a timer and after reconnects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from netutil import LOOPS, run, wait_until
from oddswire.client import FeedClient, ReconnectPolicy
from oddswire.errors import ConfigError


class Scripted(FeedClient):
    EVENTS = frozenset({"tick", "connected", "disconnected", "stale", "healthy", "error"})

    def __init__(self) -> None:
        super().__init__(reconnect=ReconnectPolicy(initial=0.01, maximum=0.01), stale_after=5)
        self.drop = asyncio.Event()

    async def _attempt(self) -> None:
        self._link_up()
        self._mark_established()
        await self.drop.wait()
        self.drop.clear()


@pytest.mark.parametrize("loop", LOOPS)
def test_hydration_queues_in_order_drops_covered_and_nests(loop: str) -> None:
    async def main() -> None:
        c = Scripted()
        got: list[int] = []
        c.on("tick", got.append)
        async with c.hydrating(covered=lambda name, args: args[0] < 3):
            for i in range(6):
                c.callbacks.emit("tick", i)
            async with c.hydrating():
                c.callbacks.emit("tick", 6)
                direct = c.callbacks.direct("tick")
                assert direct is not None
                direct(7)
            assert got == []
        assert got == [3, 4, 5, 6, 7]
        assert c.callbacks.direct("tick") == got.append  # plain again after the gate
        with pytest.raises(RuntimeError):
            async with c.hydrating():
                c.callbacks.emit("tick", 8)
                raise RuntimeError("snapshot failed")
        assert got[-1] == 8  # delivered anyway
        with pytest.raises(ConfigError):
            c.hydrating(limit=0)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_hydration_limit_reports_and_triggers_polls(loop: str) -> None:
    async def main() -> None:
        c = Scripted()
        got: list[int] = []
        errors: list[Any] = []
        polls: list[int] = []
        c.on("tick", got.append)
        c.on("error", errors.append)
        c.poll(lambda: polls.append(1), every=60)
        task = asyncio.ensure_future(c.run())
        await asyncio.sleep(0.02)
        async with c.hydrating(limit=3):
            for i in range(10):
                c.callbacks.emit("tick", i)
        assert got == [0, 1, 2] and "7 events dropped" in str(errors[-1])
        await wait_until(lambda: polls, what="poll after overflow")
        await c.stop()
        await task
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_poll_on_a_timer_and_after_every_reconnect(loop: str) -> None:
    async def main() -> None:
        c = Scripted()
        calls: list[str] = []

        async def refresh() -> None:
            calls.append("async")
            await asyncio.sleep(0)
        p = c.poll(refresh, every=0.05)
        broken = c.poll(lambda: 1 / 0, every=0.05)
        errors: list[Any] = []
        c.on("error", errors.append)
        task = asyncio.ensure_future(c.run())
        await wait_until(lambda: len(calls) >= 2, what="timer polls")
        assert any("ZeroDivisionError" in str(e) for e in errors)
        broken.cancel()
        p.every = 60.0  # now only reconnects trigger it
        await asyncio.sleep(0.1)
        n = p.runs
        c.drop.set()
        await wait_until(lambda: p.runs == n + 1, what="poll after reconnect")
        await c.stop()
        await task
        assert p._task is None
        with pytest.raises(ConfigError):
            c.poll(print, every=0)
    run(loop, main)
