"""SatoriexClient against the picows simulator (every event type, books through gaps,
crossings and reconnects, the fallback poll across an outage, the hydration gate, refused
tokens, off-layout and malformed messages, subscriptions replayed) and against a server
written with ``websockets``. Both event loops, 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import numpy as np
import orjson
import pytest
import websockets
from websockets.asyncio.server import serve

from netutil import LOOPS, run, wait_until
from oddswire.client import ReconnectPolicy
from oddswire.errors import AuthError, ConfigError, DecodeError, ProtocolError
from oddswire.satoriex import MARKET_EVENTS, USER_EVENTS, SatoriexClient
from oddswire.sim.satoriex import SatoriexSimulator

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)
M1, M2 = "mkt_abc123", "mkt_btc_100k"


def recorder(client: SatoriexClient) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = defaultdict(list)
    for name in client.EVENTS:
        client.on(name, lambda *a, name=name: seen[name].append(a[0] if len(a) == 1 else a))
    return seen


async def stop(client: SatoriexClient, task: asyncio.Task[None]) -> None:
    await client.stop()
    await asyncio.wait_for(task, 5)


def books_equal(client: SatoriexClient, sim: SatoriexSimulator, market: str) -> bool:
    bids, asks = sim.book(market)
    b = client.book(market)
    return (b.synced and b.bids.shape == bids.shape and b.asks.shape == asks.shape
            and bool(np.array_equal(b.bids, bids)) and bool(np.array_equal(b.asks, asks)))


@pytest.mark.parametrize("loop", LOOPS)
def test_every_event_type_is_dispatched(loop: str) -> None:
    async def main() -> None:
        async with SatoriexSimulator(interval=0.002) as sim:
            client = SatoriexClient(sim.url, token=sim.token(), markets=[M1], marketdata=[M1],
                                    reconnect=FAST)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            want = [*USER_EVENTS, *MARKET_EVENTS, "price_update", "orderbook", "price", "book"]
            await wait_until(lambda: all(seen[n] for n in want), what="every event type")
            assert all(m["type"] == n for n in (*USER_EVENTS, *MARKET_EVENTS) for m in seen[n])
            assert {m["market_id"] for n in MARKET_EVENTS for m in seen[n]} == {M1}
            market, _, bid, ask, _ = seen["price"][-1]
            assert market == M1 and client.prices.get(M1) is not None and bid < ask
            sim.inject_unknown("brand_new_event")
            sim.send_raw(b'{"no_type":1}')
            await wait_until(lambda: len(seen["unknown"]) >= 2, what="unknown")
            assert seen["unknown"][0]["type"] == "brand_new_event"
            assert any(isinstance(e, ProtocolError) for e in seen["error"])
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_books_equal_the_simulator_after_gaps_crossings_and_reconnects(loop: str) -> None:
    async def main() -> None:
        async with SatoriexSimulator(interval=0.005) as sim:
            markets = sorted(sim.worlds)
            client = SatoriexClient(sim.url, token=sim.token(), marketdata=markets,
                                    reconnect=FAST, resync_interval=0.05)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["book"]) > 40, what="book updates")
            sim.skip_seq(M1)
            sim.cross(M2)
            await wait_until(lambda: seen["gap"] and len(seen["resync"]) >= 2, what="resyncs")
            assert seen["gap"][0][0] == M1 and seen["gap"][0][2] == seen["gap"][0][1] + 1
            assert any("crossed" in str(e) for e in seen["error"])
            sim.drop()
            await wait_until(lambda: len(seen["connected"]) == 2, what="reconnect")
            await asyncio.sleep(0.1)
            sim.generating = False
            await asyncio.sleep(0.05)
            await wait_until(lambda: all(books_equal(client, sim, m) for m in markets),
                             what="books equal to the simulator's")
            for m in markets:
                assert client.book(m).seq == sim.worlds[m].seq
            stats = client.stats()
            assert stats["gaps"] >= 1 and stats["crossed"] >= 1 and stats["resyncs"] >= 2
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_fallback_poll_recovers_the_events_lost_in_an_outage(loop: str) -> None:
    async def main() -> None:
        async with SatoriexSimulator(interval=0.01, market_events=False) as sim:
            client = SatoriexClient(sim.url, token=sim.token("u_7"), reconnect=FAST)
            live: set[int] = set()
            known: set[int] = set()
            for kind in USER_EVENTS:
                client.on(kind, lambda m: (live.add(m["id"]), known.add(m["id"])))

            def rest_poll() -> None:  # the REST stand-in: what /me/... would return
                known.update(e["id"] for e in sim.ledger.get("u_7", []))
            poll = client.poll(rest_poll, every=30.0)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(live) > 5, what="user events")
            assert poll.runs == 0  # not on the first connection, not before `every`
            sim.outage(0.3)
            await wait_until(lambda: poll.runs >= 1, what="the poll after the reconnect")
            await asyncio.sleep(0.1)
            sim.generating = False
            await asyncio.sleep(0.05)
            rest_poll()  # one more, as the 60 s timer would
            everything = {e["id"] for e in sim.ledger["u_7"]}
            assert everything - live, "the outage lost nothing: no test"
            assert known == everything
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_hydration_gate_queues_then_delivers_in_order(loop: str) -> None:
    async def main() -> None:
        async with SatoriexSimulator(interval=0.005, market_events=False) as sim:
            client = SatoriexClient(sim.url, token=sim.token(), marketdata=[M1],
                                    reconnect=FAST)
            got: list[int] = []
            prices: list[Any] = []
            for kind in USER_EVENTS:
                client.on(kind, lambda m: got.append(m["id"]))
            client.on("price", lambda *a: prices.append(a))
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(got) > 2, what="user events")
            async with client.hydrating(covered=lambda name, a: bool(a) and isinstance(
                    a[0], dict) and a[0].get("id", 1 << 60) <= snapshot_id):
                before = len(got), len(prices)
                await asyncio.sleep(0.2)  # the REST snapshot loading
                snapshot_id = max(e["id"] for e in sim.ledger["u_1"]) - 3
                assert (len(got), len(prices)) == before, "a callback ran inside the block"
                assert client.prices.get(M1) is not None  # state is kept current meanwhile
            delivered = got[before[0]:]
            assert delivered and delivered == sorted(delivered)
            assert min(delivered) == snapshot_id + 1  # covered ones dropped, none lost
            assert len(prices) > before[1]
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_refused_tokens_are_fatal(loop: str) -> None:
    async def main() -> None:
        async with SatoriexSimulator(interval=0.05) as sim:
            for token in (sim.expired_token(), "not.a.jwt", sim.token()[:-4] + "AAAA"):
                client = SatoriexClient(sim.url, token=token, reconnect=FAST)
                with pytest.raises(AuthError) as e:
                    await asyncio.wait_for(client.run(), 5)
                assert token not in str(e.value) and "401" in str(e.value)
            assert sim.refused == 3 and sim.connections == 0
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_token_function_subscriptions_and_secrets(loop: str, caplog: Any) -> None:
    caplog.set_level(1)

    async def main() -> None:
        async with SatoriexSimulator(interval=0.01) as sim:
            tokens: list[str] = []

            def fresh() -> str:
                tokens.append(sim.token("u_1", nonce=len(tokens)))
                return tokens[-1]
            client = SatoriexClient(sim.url, token=fresh, markets=[M1], reconnect=FAST)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: seen["trade"], what="trades")
            client.subscribe_marketdata(M2)
            client.subscribe(M2)
            client.unsubscribe(M1)
            await wait_until(lambda: client.prices.get(M2) is not None, what="M2 prices")
            sim.drop()
            await wait_until(lambda: len(sim.sessions) == 1 and len(tokens) == 2
                             and sim.sessions[0].markets == {M2}
                             and sim.sessions[0].marketdata == {M2}, what="replayed")
            assert client.markets == {M2} and client.marketdata_markets == {M2}
            client.unsubscribe_marketdata(M2)
            await wait_until(lambda: not sim.sessions[0].marketdata, what="unsubscribed")
            text = " ".join([repr(client), str(client.stats()), *map(str, seen["error"]),
                             *map(str, seen["disconnected"]),
                             *(r.getMessage() for r in caplog.records
                               if not r.name.startswith("picows.server"))])  # the sim's own
            for t in tokens:
                assert t not in text and t.split(".")[2] not in text
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_off_layout_is_delivered_and_reported_once_malformed_is_reported(loop: str) -> None:
    async def main() -> None:
        async with SatoriexSimulator(interval=0.05) as sim:
            client = SatoriexClient(sim.url, token=sim.token(), reconnect=FAST)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: sim.sessions, what="session")
            bad = {"type": "price_update", "market_id": M1, "mid": 0.5, "best_bid": 0.4,
                   "best_ask": 0.6}  # no ts
            sim.send_raw(orjson.dumps(bad))
            sim.send_raw(orjson.dumps(bad))
            sim.inject_malformed()
            sim.send_raw(b'{"type":"orderbook","market_id":"x","seq":"7"}')
            await wait_until(lambda: len(seen["orderbook"]) == 1, what="orderbook")
            assert seen["price_update"] == [bad, bad]
            layout = [e for e in seen["error"] if isinstance(e, DecodeError) and e.field]
            assert [e.field for e in layout] == ["ts", "seq"]
            assert any(isinstance(e, DecodeError) and e.field is None for e in seen["error"])
            assert len(seen["connected"]) == 1 and not seen["disconnected"]
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_against_a_websockets_server(loop: str) -> None:
    async def main() -> None:
        received: list[bytes] = []
        paths: list[str] = []

        async def handler(ws: Any) -> None:
            paths.append(ws.request.path)
            async for msg in ws:
                received.append(msg.encode() if isinstance(msg, str) else msg)
                sub = orjson.loads(msg)
                if sub["type"] == "subscribe_marketdata":
                    m = sub["market_id"]
                    await ws.send(orjson.dumps({"type": "orderbook", "market_id": m, "seq": 1,
                                                "snapshot": True, "bids": [[0.4, 10]],
                                                "asks": [[0.6, 5]]}).decode())
                    await ws.send(f'{{"type":"orderbook","market_id":"{m}","seq":2,'
                                  '"bids":[[0.45,3],[0.4,0]],"asks":[]}')
                    await ws.send(f'{{"type":"price_update","market_id":"{m}","mid":0.525,'
                                  '"best_bid":0.45,"best_ask":0.6,"ts":1750000000000}')
                    await ws.send(f'{{"type":"trade","market_id":"{m}","price":0.5}}')
                    await ws.send('{"type":"wallet_changed","balance":"12.50"}')

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = SatoriexClient(f"ws://127.0.0.1:{port}/ws", token="abc.def.ghi",
                                    markets=["mkt_abc123"], marketdata=["mkt_abc123"])
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: seen["wallet_changed"], what="events")
            assert paths == ["/ws?token=abc.def.ghi"]
            assert received == [b'{"type":"subscribe","market_id":"mkt_abc123"}',
                                b'{"type":"subscribe_marketdata","market_id":"mkt_abc123"}']
            book = client.book("mkt_abc123")
            assert book.bids.tolist() == [[0.45, 3]] and book.asks.tolist() == [[0.6, 5]]
            assert client.prices.get("mkt_abc123") == (0.525, 0.45, 0.6, 1750000000000)
            assert seen["trade"][0]["price"] == 0.5
            await stop(client, task)
    assert websockets.__version__
    run(loop, main)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        SatoriexClient("http://x", token="t")
    with pytest.raises(ConfigError):
        SatoriexClient("ws://x", token="")
    client = SatoriexClient("ws://127.0.0.1:1/ws", token="secret.token.value")
    with pytest.raises(ConfigError):
        client.subscribe("")
    with pytest.raises(ConfigError):
        client.on("no_such_event", print)
    assert "secret" not in repr(client)
    logging.getLogger(__name__).debug("%r", client)
