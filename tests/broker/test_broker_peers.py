"""Independent peers: the `websockets` library drives our simulator as a client, and serves
the broker protocol for our BrokerClient (fragmented messages, a server close with reconnect
and replay). Both event loops, 127.0.0.1 only."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from netutil import LOOPS, run, wait_until
from oddswire.broker import BrokerClient
from oddswire.client import ReconnectPolicy
from oddswire.errors import CallbackError
from oddswire.sim.broker import BrokerSimulator

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)


async def recv_json(ws: Any) -> Any:
    while True:
        msg = await asyncio.wait_for(ws.recv(), 5)
        if msg != "pong":
            return orjson.loads(msg)


@pytest.mark.parametrize("loop", LOOPS)
def test_websockets_client_drives_the_simulator(loop: str) -> None:
    async def main() -> None:
        async with (BrokerSimulator(rate=500, customers={7: [2000009, 2000010]}) as sim,
                    connect(sim.url) as ws):
            await ws.send(orjson.dumps({"event": "account.switch", "login": 2000009}).decode())
            assert await recv_json(ws) == {"event": "account.switch", "success": False,
                                           "active_login": 2000009, "error": "UNAUTHORIZED"}
            await ws.send(orjson.dumps({"authorization": "x.y.z"}).decode())
            assert (await recv_json(ws))["error"] == "INVALID_TOKEN"
            await ws.send(orjson.dumps({"authorization": sim.signer.customer(7)}).decode())
            assert await recv_json(ws) == {"event": "authorization", "success": True}
            await ws.send('{"event":"account.switch"}')
            assert (await recv_json(ws))["error"] == "INVALID_LOGIN"
            await ws.send('{"event":"account.switch","data":{"active_login":2000010}}')
            assert await recv_json(ws) == {"event": "account.switch", "success": True,
                                           "active_login": 2000010}
            note = await recv_json(ws)
            assert note[0] == "n" and note[1] == 2000010 and note[3] == "account.switch"
            await ws.send('{"event":"subscribe","data":["eurusd","btcusd"]}')
            quotes = [await recv_json(ws) for _ in range(60)]
            assert {q[1] for q in quotes} == {"eurusd", "btcusd"}
            for marker, _sym, bid, ask, ts in quotes:
                assert marker == "t" and bid < ask and isinstance(ts, int)
            await ws.send("ping")
            deadline = asyncio.get_running_loop().time() + 5
            while await asyncio.wait_for(ws.recv(), 5) != "pong":
                assert asyncio.get_running_loop().time() < deadline
            await ws.send('{"event":"unsubscribe","data":["eurusd"]}')
            await wait_until(lambda: sim.sessions[0].symbols == {"btcusd"})
            sim.push_balance(2000010, 10.0)
            while True:  # quotes drain; the balance arrives; no more eurusd after it
                frame = await recv_json(ws)
                if frame[0] == "b":
                    assert frame[1:3] == [2000010, 10.0]
                    break
            for _ in range(20):
                assert (await recv_json(ws))[1] == "btcusd"
    run(loop, main)


class WebsocketsBroker:
    """The broker protocol served by the `websockets` library: not our code on the wire."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.connections = 0
        self.subscribed: list[list[str]] = []
        self.switches: list[dict[str, Any]] = []
        self.close_first = True

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        async for msg in ws:
            if msg == "ping":
                await ws.send("pong")
                continue
            obj = orjson.loads(msg)
            if "authorization" in obj:
                ok = obj["authorization"] == self.token
                await ws.send(orjson.dumps({"event": "authorization", "success": ok,
                                            **({} if ok else {"error": "INVALID_TOKEN"})}).decode())
            elif obj.get("event") == "account.switch":
                self.switches.append(obj)
                await ws.send(orjson.dumps({"event": "account.switch", "success": True,
                                            "active_login": obj["active_login"]}).decode())
            elif obj.get("event") == "subscribe":
                self.subscribed.append(obj["data"])
                await ws.send('["t","eurusd",1.0851,1.0853,1763700000001]')
                # One quote in three fragments, a bytes (binary) frame, then a balance.
                await ws.send(iter(['["t","eur', 'usd",1.0852,1.0854,', '1763700000002]']))
                await ws.send(b'["t","btcusd",67000.5,67010.5,1763700000003]')
                await ws.send('["b",2000009,100.0,100.0,0.0,100.0,"EUR",1763700000004]')
                if self.close_first:
                    self.close_first = False
                    await ws.close(1012, "service restart")
                    return


@pytest.mark.parametrize("loop", LOOPS)
def test_client_against_a_websockets_server(loop: str) -> None:
    async def main() -> None:
        peer = WebsocketsBroker(token="t0k3n")
        async with serve(peer.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = BrokerClient(f"ws://127.0.0.1:{port}/", token="t0k3n", account=2000009,
                                  symbols=["eurusd", "btcusd"], reconnect=FAST)
            seen: dict[str, list[Any]] = defaultdict(list)
            client.on("quote", lambda *q: seen["quote"].append(q))
            client.on("balance", seen["balance"].append)
            client.on("disconnected", seen["disconnected"].append)
            client.on("error", seen["error"].append)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["balance"]) == 2, what="two sessions")
            assert seen["quote"] == 2 * [("eurusd", 1.0851, 1.0853, 1763700000001),
                                         ("eurusd", 1.0852, 1.0854, 1763700000002),
                                         ("btcusd", 67000.5, 67010.5, 1763700000003)]
            assert seen["balance"][0]["currency"] == "EUR"
            assert seen["disconnected"][0] == "closed by server (1012 service restart)"
            assert peer.connections == 2
            assert peer.subscribed == [["btcusd", "eurusd"]] * 2  # replayed after the close
            assert peer.switches == [{"event": "account.switch", "active_login": 2000009}] * 2
            assert seen["error"] == []
            await client.stop()
            await asyncio.wait_for(task, 10)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_single_quote_callback_errors_are_reported(loop: str) -> None:
    """One plain quote callback is called straight from Cython: its errors still surface."""
    async def main() -> None:
        async with BrokerSimulator(rate=300) as sim:
            client = BrokerClient(sim.url, token=sim.signer.user(5), symbols=["eurusd"],
                                  reconnect=FAST)
            errors: list[BaseException] = []
            client.on("error", errors.append)
            calls: list[float] = []

            @client.on("quote")
            def on_quote(symbol: str, bid: float, ask: float, ts: int) -> None:
                calls.append(bid)
                if len(calls) == 2:
                    raise ValueError("bot bug")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(calls) > 10)
            assert len(errors) == 1 and isinstance(errors[0], CallbackError)
            assert isinstance(errors[0].__cause__, ValueError)
            assert client.stats()["callback_errors"] == 1 and sim.connections == 1
            await client.stop()
            await asyncio.wait_for(task, 10)
    run(loop, main)
