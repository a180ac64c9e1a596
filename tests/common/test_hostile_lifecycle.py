"""The BETCORE and 55-tech clients' connection life cycle against hostile peers, the same for
every WebSocket feed (DESIGN §5/§5b): peers that never finish the upgrade or never answer
the handshake or login, every close code while streaming, 401/403 at the upgrade, and
``stop()`` from every state. Each test runs for each feed of ``hostile_peers.FEEDS``
(`websockets` servers on 127.0.0.1, port 0) on asyncio and uvloop; what only one feed
does stays in ``betcore/test_betcore_hostile.py`` and ``tech55/test_tech55_hostile.py``."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from hostile_peers import (
    FEEDS,
    Feed,
    FeedPeer,
    captured_logs,
    client_lines,
    ended_within,
    errors_of,
    exception_texts,
    recorder,
    refusing_port,
    serve_peer,
    silent_tcp,
    stop_and_end,
)
from netutil import LOOPS, run, wait_until
from oddswire.client import ReconnectPolicy
from oddswire.errors import AuthError, ConnectError

pytestmark = [pytest.mark.parametrize("loop", LOOPS),
              pytest.mark.parametrize("feed", FEEDS, ids=[f.name for f in FEEDS])]


# --- peers that do not play along ----------------------------------------------------------

def test_a_peer_that_never_completes_the_upgrade(loop: str, feed: Feed) -> None:
    async def main() -> None:
        async with silent_tcp() as (port, accepted):
            client = feed.client(f"ws://127.0.0.1:{port}{feed.path}", connect_timeout=0.3)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["error"]) >= 2, 10, "two timeouts")
            await stop_and_end(client, task)
        assert all(isinstance(e, ConnectError) for e in seen["error"]), seen["error"]
        assert len(accepted) >= 2 and seen["connected"] == []
    run(loop, main, timeout=20)


def test_a_peer_that_never_answers_the_handshake_or_login(loop: str, feed: Feed) -> None:
    async def main() -> None:
        peer = FeedPeer(feed, answer=False)
        async with serve_peer(peer.handler) as server:
            client = feed.client(feed.url(server), **{feed.answer_timeout: 0.3})
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: peer.connections >= 2, 10, "a retry")
            await stop_and_end(client, task)
        assert errors_of(seen, ConnectError), seen["error"]
        assert not feed.started(peer, seen), "the session never starts before the answer"
    run(loop, main, timeout=20)


def test_every_close_code_while_streaming_reconnects(loop: str, feed: Feed) -> None:
    codes = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000,
             4000, 4401, 4999]

    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send(feed.frame(n))
            if n < len(codes):
                await ws.close(codes[n], f"reason {n}")
        peer = FeedPeer(feed, script)
        async with serve_peer(peer.handler) as server:
            client = feed.client(feed.url(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen[feed.event]) > len(codes), 20, "every code")
            await stop_and_end(client, task)
        assert peer.connections == len(codes) + 1
        for code, reason in zip(codes, seen["disconnected"], strict=False):
            assert str(code) in reason, (code, reason)
        assert seen["gap"] == [] and not errors_of(seen, AuthError)
    run(loop, main, timeout=40)


@pytest.mark.parametrize("status", [HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN])
def test_401_or_403_at_the_upgrade_is_an_auth_error_without_retries(
        loop: str, feed: Feed, status: HTTPStatus) -> None:
    async def main() -> None:
        requests: list[str] = []

        def process_request(conn: ServerConnection, request: Request) -> Response:
            requests.append(request.path)
            return conn.respond(status, f"bad token {feed.secret}\n")

        async def handler(ws: ServerConnection) -> None:
            raise AssertionError("never upgraded")

        with captured_logs() as logs:
            async with serve_peer(handler, process_request=process_request) as server:
                client = feed.client(feed.url(server))
                with pytest.raises(AuthError) as info:
                    await asyncio.wait_for(client.run(), 5)
        assert len(requests) == 1
        assert all(feed.secret not in t for t in exception_texts(info.value))
        assert all(feed.secret not in line for line in client_lines(logs))
    run(loop, main, timeout=20)


# --- stop() from every state ---------------------------------------------------------------

def test_stop_while_connecting(loop: str, feed: Feed) -> None:
    async def main() -> None:
        async with silent_tcp() as (port, accepted):
            client = feed.client(f"ws://127.0.0.1:{port}{feed.path}", connect_timeout=30)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: accepted, 5, "TCP accept")
            await asyncio.sleep(0.05)
            await stop_and_end(client, task)
    run(loop, main, timeout=20)


def test_stop_while_waiting_for_the_handshake_or_login(loop: str, feed: Feed) -> None:
    async def main() -> None:
        peer = FeedPeer(feed, answer=False)
        async with serve_peer(peer.handler) as server:
            client = feed.client(feed.url(server))  # the default answer timeout: 15-30 s
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: peer.firsts, 5, "the handshake or login")
            await stop_and_end(client, task)
        assert seen["disconnected"] == ["stopped"] and seen["error"] == []
    run(loop, main, timeout=20)


def test_stop_while_streaming_closes_politely(loop: str, feed: Feed) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            for i in range(10**6):
                await ws.send(feed.frame(i))
                await asyncio.sleep(0.005)
        peer = FeedPeer(feed, script)
        async with serve_peer(peer.handler) as server:
            client = feed.client(feed.url(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen[feed.event]) >= 5, 5, "data")
            await stop_and_end(client, task)
            await wait_until(lambda: peer.close_codes, 5, "the server sees the close")
        assert peer.close_codes == [1000] and peer.connections == 1
    run(loop, main, timeout=20)


def test_stop_during_the_backoff(loop: str, feed: Feed) -> None:
    async def main() -> None:
        client = feed.client(f"ws://127.0.0.1:{refusing_port()}{feed.path}",
                             reconnect=ReconnectPolicy(initial=30, maximum=30, jitter=0))
        seen = recorder(client)
        task = asyncio.ensure_future(client.run())
        await wait_until(lambda: len(seen["error"]) >= 2, 5, "two refusals")
        await asyncio.sleep(0.05)
        await stop_and_end(client, task)
        assert all(isinstance(e, ConnectError) for e in seen["error"])
    run(loop, main, timeout=20)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_stop_inside_a_callback(loop: str, feed: Feed, kind: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            for i in range(10**6):
                await ws.send(feed.frame(i, ack=True))
                await asyncio.sleep(0.005)
        peer = FeedPeer(feed, script)
        async with serve_peer(peer.handler) as server:
            client = feed.client(feed.url(server), **feed.acked)
            calls: list[tuple[Any, ...]] = []
            if kind == "sync":
                @client.on(feed.event)
                def on_data(*args: Any) -> None:
                    calls.append(args)
                    if len(calls) == 3:
                        client.stop()
            else:
                @client.on(feed.event)
                async def on_data_async(*args: Any) -> None:
                    calls.append(args)
                    if len(calls) == 3:
                        await client.stop()
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(calls) >= 3, 5, "three data events")
            await ended_within(task, 2, "stop() in a callback")
            task.result()
        assert len(calls) <= 4 and peer.connections == 1
    run(loop, main, timeout=20)
