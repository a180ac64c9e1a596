"""Tech55Client against servers that are not our simulator: a scripted 55-tech server
written with the `websockets` library, and hostile raw peers (a stop from every state, a
server that never answers, PING / JSON ping floods from a peer that never reads, refusals,
secrets). Both event loops, 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import resource
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from netutil import LOOPS, run, wait_until
from oddswire.client import ReconnectPolicy
from oddswire.errors import AuthError, ConnectError, DecodeError, ProtocolError
from oddswire.sim._base import ws_frame_bytes
from oddswire.tech55 import CHANNELS, Bet, Emergency, Order, Tech55Client

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)
SECRET = "K3Y-S3CR3T-0123456789"
PEER_LOG = logging.getLogger("hostile.peer")
LOGIN_OK = {"type": "login_ok", "clientName": "demo", "channels": ["orders", "bets"],
            "subscriptionId": 7, "access": {"clientFiltered": ["orders", "bets"],
                                            "global": ["emergency"]},
            "reliableDelivery": True,
            "features": {"messageOrdering": True, "acknowledgments": True, "batchAck": False},
            "region": "eu"}
ORDER = {"orderId": 327, "requestUuid": "eb45b192-317b-42d5-9f65-af497b9fa8c1",
         "client": "demo", "clientName": "demo", "fixtureId": "id1000004461512432",
         "outcomeId": 103, "playerId": 0, "orderPrice": 1.95, "orderStake": 10.0,
         "filledStake": 10.0, "remainingStake": 0.0, "orderStatus": "FILLED",
         "statusReason": None, "userRef": "bettor1234", "testOrder": False,
         "acceptBetterOdds": True, "acceptPartialStake": True, "orderCurrency": "USD",
         "back": True, "allowedBookmakers": "*", "oddsInfo": None, "meta": {},
         "expiresAt": "2026-02-07T17:29:37+00:00", "filledAt": "2026-02-07T17:29:32+00:00",
         "createdAt": "2026-02-07T17:29:32+00:00", "updatedAt": "2026-02-07T17:29:32+00:00"}
BET = {"betId": 73, "orderId": 327, "bookmaker": "pinnacle", "bookmakerBetId": "3332684214",
       "betStatus": "CONFIRMED", "settlementStatus": "UNSETTLED", "placedStake": 10.0,
       "placedPrice": 1.98, "placedCurrency": "USD", "account": "pinnacle_main",
       "sentData": {"stake": 10.0, "price": 1.95}, "settlementAmount": None}


def data(channel: str, payload: Any, seq: int, *, ack: bool = True,
         event: str = "INSERT") -> str:
    msg = {"type": "data", "channel": channel, "event": event, "payload": payload,
           "ts": 1771183909789 + seq, "seq": seq}
    if ack:
        msg["requireAck"] = True
    return json.dumps(msg)


def serve_peer(handler: Callable[[ServerConnection], Awaitable[None]]) -> Any:
    return serve(handler, "127.0.0.1", 0, logger=PEER_LOG)


def url_of(server: Any) -> str:
    return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"


def recorder(client: Tech55Client, timeline: list[tuple[str, Any]]) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = defaultdict(list)
    for name in client.EVENTS - set(CHANNELS):
        client.on(name, lambda *a, name=name: seen[name].append(a[0] if len(a) == 1 else a))
    for ch in CHANNELS:
        def on_data(event: str, payload: Any, seq: int, ts: int, ch: str = ch) -> None:
            timeline.append(("cb", seq))
            seen[ch].append((event, payload, seq, ts))
        client.on(ch, on_data)
    return seen


async def stop_and_end(client: Tech55Client, task: asyncio.Task[Any]) -> None:
    await asyncio.wait_for(client.stop(), 2)
    done, _ = await asyncio.wait([task], timeout=2)
    assert done, "run() still running 2 s after stop()"
    task.result()


# --- a scripted 55-tech server in `websockets` ---------------------------------------------

class Peer:
    def __init__(self, script: list[str], *, batch: bool = False) -> None:
        self.script = script
        self.batch = batch
        self.logins: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self.timeline: list[tuple[str, Any]] = []
        self.connections = 0

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        try:
            self.logins.append(json.loads(await ws.recv()))
            ok = dict(LOGIN_OK, features=dict(LOGIN_OK["features"], batchAck=self.batch))
            await ws.send(json.dumps(ok))
            for frame in self.script:
                await ws.send(frame)
            async for raw in ws:
                msg = json.loads(raw)
                self.received.append(msg)
                if msg.get("type") == "ack":
                    for seq in msg.get("seqs", [msg.get("seq")]):
                        self.timeline.append(("ack", seq))
        except ConnectionClosed:
            pass


SCRIPT = [
    data("orders", {**ORDER, "newColumn": [1, 2]}, 1),
    data("bets", BET, 2),
    data("bets", BET, 2),                                   # redelivered: a duplicate
    '{"type":"ping"}',
    data("orders", {**ORDER, "orderId": "not-an-int"}, 3),   # off its schema
    data("orders", {**ORDER, "orderStake": "x"}, 4),         # reported once only
    data("orders", ORDER, 8),                                # a gap: 5..7
    data("emergency", {"active": True, "reason": "upstream", "ts": 1}, 9),
    data("promotions", {"x": 1}, 10),                        # an unknown channel
    '{"type":"notice","text":"hello"}',                      # an unknown message type
    data("emergency", {"active": False, "reason": "ok", "ts": 2}, 11),
    data("orders", ORDER, 6),                                # a late fill of the gap
    data("orders", ORDER, 6),                                # ... delivered once
    data("orders", ORDER, 12, ack=False),
]


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("batch", [False, True], ids=["ack", "batch-ack"])
def test_client_against_a_websockets_server(loop: str, batch: bool) -> None:
    async def main() -> None:
        peer = Peer(SCRIPT, batch=batch)
        async with serve_peer(peer.handler) as server:
            client = Tech55Client(url_of(server), api_key=SECRET, channels=["orders", "bets"],
                                  reliable=True, reconnect=FAST)
            seen = recorder(client, peer.timeline)
            halted: list[bool] = []
            client.on("halt", lambda p: halted.append(client.halted))
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["orders"]) == 6 and len(
                [t for t in peer.timeline if t[0] == "ack"]) >= 11, timeout=5, what="script")
            assert peer.logins == [{"type": "login", "apiKey": SECRET,
                                    "channels": ["orders", "bets"], "reliableDelivery": True}]
            assert client.session is not None and client.session.subscription_id == 7
            assert client.session.extra == {"region": "eu"}
            # Typed payloads; unknown fields reachable; off-schema payloads as plain values.
            _, order, seq, ts = seen["orders"][0]
            assert isinstance(order, Order) and order.order_id == 327 and seq == 1
            assert order.extra == {"newColumn": [1, 2]} and ts == 1771183909790
            assert order.odds_info is None and order.meta == {}
            assert isinstance(seen["bets"][0][1], Bet) and len(seen["bets"]) == 1
            assert seen["bets"][0][1].sent_data == {"stake": 10.0, "price": 1.95}
            assert seen["bets"][0][1].user_ref is None  # missing optional
            assert seen["orders"][1][1]["orderId"] == "not-an-int"
            assert seen["orders"][2][1]["orderStake"] == "x"
            schema_errors = [e for e in seen["error"] if isinstance(e, DecodeError)]
            assert len(schema_errors) == 1 and "orders" in str(schema_errors[0])
            assert [s for _, _, s, _ in seen["orders"]] == [1, 3, 4, 8, 6, 12]
            assert seen["gap"] == [(5, 8)]
            assert halted == [True] and isinstance(seen["halt"][0], Emergency)
            assert len(seen["resume"]) == 1 and not client.halted
            assert [m["channel"] for m in seen["unknown"] if "channel" in m] == ["promotions"]
            assert {"type": "notice", "text": "hello"} in seen["unknown"]
            await wait_until(lambda: {"type": "pong"} in peer.received, what="pong")
            stats = client.stats()
            assert stats["duplicates"] == 2 and stats["late"] == 1
            # Every ack after its callbacks; duplicates acked again; seq 12 not acked.
            acks = [s for kind, s in peer.timeline if kind == "ack"]
            assert sorted(acks) == [1, 2, 2, 3, 4, 6, 6, 8, 9, 10, 11], acks
            for i, (kind, seq) in enumerate(peer.timeline):
                if kind == "ack" and seq != 10:  # 10 went to `unknown`, not a data callback
                    assert ("cb", seq) in peer.timeline[:i], (seq, peer.timeline)
            forms = [m for m in peer.received if m.get("type") == "ack"]
            if batch:
                assert all(set(m) == {"type", "seqs"} for m in forms)
            else:
                assert all(set(m) == {"type", "seq"} for m in forms)
            await stop_and_end(client, task)
            assert SECRET not in repr(client) + str(client.stats())
    run(loop, main, timeout=30)


# --- refusals ------------------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(("how", "fatal"), [("error", True), ("close-1008", True),
                                            ("close-4003", True), ("close-1012", False),
                                            ("drop", False)])
def test_refused_logins_are_fatal_and_transient_closes_retried(loop: str, how: str,
                                                              fatal: bool) -> None:
    async def main() -> None:
        connections = [0]

        async def handler(ws: ServerConnection) -> None:
            connections[0] += 1
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
                if how == "error":
                    await ws.send(json.dumps({"type": "error", "code": "INVALID_API_KEY",
                                              "message": f"bad key {SECRET}"}))
                    await ws.close(1008)
                elif how.startswith("close"):
                    await ws.close(int(how[-4:]), "no")
                else:
                    ws.transport.abort()

        async with serve_peer(handler) as server:
            client = Tech55Client(url_of(server), api_key=SECRET, reconnect=FAST)
            errors: list[BaseException] = []
            client.on("error", errors.append)
            task = asyncio.ensure_future(client.run())
            if fatal:
                with pytest.raises(AuthError) as info:
                    await asyncio.wait_for(task, 5)
                assert connections[0] == 1 and SECRET not in str(info.value)
                assert ("INVALID_API_KEY" in str(info.value)) == (how == "error")
            else:
                await wait_until(lambda: connections[0] >= 3, timeout=5, what="retries")
                assert all(isinstance(e, ConnectError) for e in errors)
                await stop_and_end(client, task)
    run(loop, main, timeout=20)


# --- a stop from every state ---------------------------------------------------------------

def upgrade_response(request: bytes) -> bytes:
    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                              .digest())
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def frame(opcode: int, payload: bytes) -> bytes:
    return ws_frame_bytes(payload, opcode=opcode)


@contextlib.asynccontextmanager
async def raw_server(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                       Awaitable[None]]) -> Any:
    writers: list[asyncio.StreamWriter] = []

    async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError,
                                 asyncio.CancelledError):
            await handler(reader, writer)

    server = await asyncio.start_server(serve_one, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"
    finally:
        server.close()
        for w in writers:
            w.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("state", ["connecting", "before-login-ok", "streaming", "backoff",
                                   "sync-callback", "async-callback"])
def test_stop_from_every_state(loop: str, state: str) -> None:
    async def main() -> None:
        reached = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await reader.readuntil(b"\r\n\r\n")
            if state == "connecting":
                reached.set()
                await asyncio.sleep(3600)
            writer.write(upgrade_response(request))
            await reader.read(1024)  # the login
            if state == "before-login-ok":
                reached.set()
                await asyncio.sleep(3600)
            writer.write(frame(0x1, json.dumps({**LOGIN_OK, "features": {}}).encode()))
            seq = 0
            while True:
                seq += 1
                writer.write(frame(0x1, json.dumps({"type": "data", "channel": "status",
                                                    "event": "STATUS", "payload": {},
                                                    "seq": seq}).encode()))
                await writer.drain()
                await asyncio.sleep(0.005)

        if state == "backoff":
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                url = f"ws://127.0.0.1:{s.getsockname()[1]}/ws"
            client = Tech55Client(url, api_key=SECRET,
                                  reconnect=ReconnectPolicy(initial=30, maximum=30, jitter=0))
            errors: list[BaseException] = []
            client.on("error", errors.append)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(errors) >= 2, timeout=5, what="in backoff")
            await stop_and_end(client, task)
            return
        async with raw_server(handler) as url:
            client = Tech55Client(url, api_key=SECRET, reconnect=FAST)
            if state == "sync-callback":
                client.on("status", lambda *a: (reached.set(), client.stop()))
            elif state == "async-callback":
                async def on_status(*a: Any) -> None:
                    reached.set()
                    await client.stop()
                client.on("status", on_status)
            elif state == "streaming":
                client.on("status", lambda *a: reached.set())
            task = asyncio.ensure_future(client.run())
            await asyncio.wait_for(reached.wait(), 5)
            if state in ("sync-callback", "async-callback"):
                done, _ = await asyncio.wait([task], timeout=2)
                assert done, "run() still running 2 s after a stop() in a callback"
                task.result()
            else:
                await stop_and_end(client, task)
    run(loop, main, timeout=20)


# --- floods from a peer that never reads ---------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("kind", ["PING", "ping"])
def test_ping_floods_from_a_peer_that_never_reads(loop: str, kind: str) -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    async def main() -> None:
        async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(upgrade_response(await reader.readuntil(b"\r\n\r\n")))
            writer.write(frame(0x1, json.dumps({**LOGIN_OK, "features": {}}).encode()))
            one = frame(0x9, b"p" * 125) if kind == "PING" else frame(0x1, b'{"type":"ping"}')
            burst = one * 256
            while not writer.is_closing():  # never read again
                writer.write(burst)
                await writer.drain()
                # drain() may return at once on a dying transport: never starve the loop
                await asyncio.sleep(0)

        async with raw_server(flood) as url:
            client = Tech55Client(url, api_key=SECRET, max_write_buffer=65536,
                                  reconnect=ReconnectPolicy(initial=30, maximum=30, jitter=0))
            seen: dict[str, list[Any]] = defaultdict(list)
            for name in ("error", "disconnected"):
                client.on(name, lambda x, name=name: seen[name].append(x))
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: bool(seen["disconnected"]), timeout=15,
                             what="the connection dropped")
            await stop_and_end(client, task)
        protocol = [e for e in seen["error"] if isinstance(e, ProtocolError)]
        assert protocol and "not read" in str(protocol[0]), seen["error"]
    run(loop, main, timeout=40)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 100, f"peak RSS grew {grown_mb:.0f} MB"


# --- secrets -------------------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_the_api_key_never_reaches_logs_errors_repr_or_stats(loop: str, caplog: Any) -> None:
    async def main() -> None:
        peer = Peer([data("orders", ORDER, 1), "{bad json", data("orders", ORDER, 3)])
        async with serve_peer(peer.handler) as server:
            client = Tech55Client(url_of(server), api_key=SECRET, reliable=True,
                                  reconnect=FAST)
            timeline: list[tuple[str, Any]] = []
            seen = recorder(client, timeline)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["orders"]) == 2, timeout=5)
            await stop_and_end(client, task)
            texts = [r.getMessage() for r in caplog.records if not r.name.startswith(
                PEER_LOG.name)]
            texts += [repr(client), str(client.stats()), repr(client.session)]
            texts += [str(e) for e in seen["error"]]
            assert seen["error"] and not [t for t in texts if SECRET in t]
    with caplog.at_level(logging.DEBUG):
        run(loop, main, timeout=20)
