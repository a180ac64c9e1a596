"""SatoriexClient against hostile peers: stop() from every state on both loops ends run()
promptly (a server that never answers the upgrade, the backoff after refusals, streaming,
inside a callback), a message over max_message_bytes, a hydration queue past its limit
(reported, and the fallback polls run), secrets in errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from netutil import LOOPS, run, wait_until
from oddswire.client import ReconnectPolicy
from oddswire.satoriex import SatoriexClient
from oddswire.sim.satoriex import SatoriexSimulator

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)
TOKEN = "hdr.payload.s3cr3tsignature"


async def ends_promptly(client: SatoriexClient, task: asyncio.Task[None]) -> None:
    await asyncio.wait_for(client.stop(), 3)
    await asyncio.wait_for(task, 3)
    assert not client.running


@pytest.mark.parametrize("loop", LOOPS)
def test_stop_while_the_server_never_answers_the_upgrade(loop: str) -> None:
    async def main() -> None:
        accepted: list[Any] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)
            await reader.read(65536)  # reads the upgrade request, answers nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = SatoriexClient(f"ws://127.0.0.1:{port}/ws", token=TOKEN, connect_timeout=30)
        errors: list[Any] = []
        client.on("error", errors.append)
        task = asyncio.ensure_future(client.run())
        await wait_until(lambda: accepted, what="TCP accept")
        await asyncio.sleep(0.05)
        await ends_promptly(client, task)
        assert all(TOKEN not in str(e) for e in errors)
        for w in accepted:
            w.close()
        server.close()
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_stop_during_backoff_streaming_and_from_callbacks(loop: str) -> None:
    async def main() -> None:
        async with SatoriexSimulator(interval=0.005) as sim:
            # backoff: the server answers 503 for a while
            client = SatoriexClient(sim.url, token=sim.token(), reconnect=ReconnectPolicy(
                initial=5, maximum=5))
            errors: list[Any] = []
            client.on("error", errors.append)
            sim.outage(10)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(errors) >= 1 and sim.refused >= 2, what="503s")
            await ends_promptly(client, task)
            sim.outage(0)
            # streaming
            client = SatoriexClient(sim.url, token=sim.token(), marketdata=["mkt_abc123"],
                                    reconnect=FAST)
            books: list[Any] = []
            client.on("book", lambda *a: books.append(a))
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(books) > 5, what="books")
            await ends_promptly(client, task)
            # a sync callback and a coroutine callback
            for kind in ("sync", "async"):
                client = SatoriexClient(sim.url, token=sim.token(), reconnect=FAST)
                if kind == "sync":
                    client.on("wallet_changed", lambda m, c=client: c.stop())
                else:
                    async def halt(m: Any, c: SatoriexClient = client) -> None:
                        await c.stop()
                    client.on("wallet_changed", halt)
                await asyncio.wait_for(client.run(), 5)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_oversized_message_and_hydration_limit(loop: str) -> None:
    async def main() -> None:
        async with SatoriexSimulator(interval=0.002, market_events=False) as sim:
            client = SatoriexClient(sim.url, token=sim.token(), reconnect=FAST,
                                    max_message_bytes=4096, marketdata=["mkt_abc123"])
            errors: list[Any] = []
            connected: list[Any] = []
            client.on("error", errors.append)
            client.on("connected", lambda: connected.append(1))
            client.on("wallet_changed", lambda m: None)
            client.on("price", lambda *a: None)
            polls: list[int] = []
            client.poll(lambda: polls.append(1), every=60)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: sim.sessions, what="session")
            sim.send_raw(b'{"type":"comment","body":"' + b"x" * 10_000 + b'"}')
            await wait_until(lambda: len(connected) >= 2, what="reconnect after the big one")
            async with client.hydrating(limit=5):
                await asyncio.sleep(0.2)
            await wait_until(lambda: polls, what="the poll after an overflow")
            assert any("dropped while hydrating" in str(e) for e in errors)
            await ends_promptly(client, task)
    run(loop, main)
