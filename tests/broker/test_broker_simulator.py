"""BrokerSimulator's ``last_quotes`` (what a replica must hold once quotes stop, as the demo
checks) and its ``rate`` changed while running."""

from __future__ import annotations

import asyncio

import pytest

from netutil import LOOPS, run, wait_until
from oddswire.broker import BrokerClient
from oddswire.sim.broker import BrokerSimulator


@pytest.mark.parametrize("loop", LOOPS)
def test_last_quotes_are_what_a_subscriber_got_last(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=200, customers={7: [2000009]}) as sim:
            assert sim.last_quotes == {}
            client = BrokerClient(sim.url, token=sim.signer.customer(7), account=2000009,
                                  symbols=["eurusd", "btcusd"])
            got: dict[str, tuple[float, float, int]] = {}
            client.on("quote", lambda sym, bid, ask, ts: got.__setitem__(sym, (bid, ask, ts)))
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(got) == 2, what="quotes of both symbols")
            sim.rate = 0  # no quote after this one
            await asyncio.sleep(0.05)
            sent = sim.quotes_sent
            await wait_until(lambda: got == sim.last_quotes, what="the last quotes")
            await asyncio.sleep(0.1)
            assert sim.quotes_sent == sent
            assert set(sim.last_quotes) == {"eurusd", "btcusd"}  # only what was sent
            await client.stop()
            await task
    run(loop, main)
