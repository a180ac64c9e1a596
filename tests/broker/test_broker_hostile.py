"""BrokerClient against hostile or broken servers (127.0.0.1 only, both event loops): a stop
from every state, CLOSE 1000 on stop, backoff after an accepted-then-dropped session,
redirects, secrets in logs and messages, a PING flood from a peer that never reads, quotes
for symbols never subscribed, an endless fragmented message, off-layout account arrays,
auth and connect timeouts, HTTP 401 at the upgrade.

The hostile servers are the `websockets` library (``process_request`` for HTTP answers) or
raw ``asyncio.start_server`` peers doing the WebSocket upgrade by hand (``RawServer``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import logging
import random
import resource
import socket
import string
import struct
import warnings
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from http import HTTPStatus
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from netutil import LOOPS, run, wait_until
from oddswire.broker import BrokerClient
from oddswire.client import ReconnectPolicy
from oddswire.errors import AuthError, ConnectError, DecodeError, ProtocolError
from oddswire.sim.broker import BrokerSimulator

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)
AUTH_OK = '{"event":"authorization","success":true}'
#: The websockets peers log the request (path and query) at debug: that is the server's log,
#: not the client's, so it goes to its own logger, which the secret checks leave out.
PEER_LOG = logging.getLogger("hostile.peer")

TEXT, CONT, CLOSE, PING = 0x1, 0x0, 0x8, 0x9


# --- a raw WebSocket peer ------------------------------------------------------------------

def ws_frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """A server frame (unmasked)."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[bool, int, bytes]:
    """One client frame (fin, opcode, unmasked payload); IncompleteReadError at EOF."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    key = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(n)
    payload = bytes(c ^ key[i % 4] for i, c in enumerate(data))
    return bool(b0 & 0x80), b0 & 0x0F, payload


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def upgrade_response(request: bytes) -> bytes:
    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(
        key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """``asyncio.start_server`` on 127.0.0.1, port 0; ``handler`` per connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.port = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for w in self._writers:
            w.transport.abort()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"


def refusing_port() -> int:
    """A 127.0.0.1 port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- helpers -------------------------------------------------------------------------------

def recorder(client: BrokerClient) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = defaultdict(list)
    for name in client.EVENTS - {"quote"}:
        client.on(name, lambda *a, name=name: seen[name].append(a[0] if len(a) == 1 else a))
    client.on("quote", lambda *a: seen["quote"].append(a))
    return seen


class _Records(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured_logs(level: int = logging.DEBUG) -> Iterator[list[logging.LogRecord]]:
    """Every record at ``level`` or above from every logger (a root handler)."""
    root = logging.getLogger()
    handler = _Records(level)
    old = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def client_side(records: list[logging.LogRecord]) -> list[str]:
    """The messages of every record but the test peers' own."""
    return [r.getMessage() for r in records if not r.name.startswith(PEER_LOG.name)]


async def ended_within(task: asyncio.Task[Any], seconds: float, what: str) -> None:
    done, _ = await asyncio.wait([task], timeout=seconds)
    assert done, f"run() still running {seconds}s after {what}"


async def stop_and_end(client: BrokerClient, task: asyncio.Task[Any], seconds: float = 2) -> None:
    await asyncio.wait_for(client.stop(), seconds)
    await ended_within(task, seconds, "stop()")
    task.result()


class BrokerPeer:
    """A `websockets` handler answering authorization and account.switch (success), with
    hooks for what to send after the switch and the subscribe."""

    def __init__(self) -> None:
        self.connections = 0
        self.paths: list[str] = []
        self.close_codes: list[int | None] = []
        self.after_switch: list[str] = []
        self.after_subscribe: Callable[[ServerConnection], Awaitable[None]] | None = None

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.paths.append(ws.request.path if ws.request is not None else "")
        try:
            async for msg in ws:
                if msg == "ping":
                    await ws.send("pong")
                    continue
                obj = orjson.loads(msg)
                if "authorization" in obj:
                    await ws.send(AUTH_OK)
                elif obj.get("event") == "account.switch":
                    login = obj.get("active_login", 2000009)
                    await ws.send(orjson.dumps({"event": "account.switch", "success": True,
                                                "active_login": login}).decode())
                    for frame in self.after_switch:
                        await ws.send(frame)
                elif obj.get("event") == "subscribe":
                    if self.after_subscribe is not None:
                        await self.after_subscribe(ws)
                    else:
                        await ws.send('["t","eurusd",1.0851,1.0853,1763700000001]')
        except ConnectionClosed:
            pass
        self.close_codes.append(ws.close_code)


def serve_peer(handler: Callable[[ServerConnection], Awaitable[None]], **kw: Any) -> Any:
    return serve(handler, "127.0.0.1", 0, logger=PEER_LOG, **kw)


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


# --- 1. stop() from every state ------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_stop_during_the_handshake_and_a_late_101(loop: str) -> None:
    """The server reads the upgrade request and does not answer: stop() ends run() at once
    (connect_timeout is 10 s). Its 101, sent after the stop, finds a client that closes the
    connection promptly and never sends the token."""
    async def main() -> None:
        got_request, send_101, ended = asyncio.Event(), asyncio.Event(), asyncio.Event()
        frames: list[tuple[int, bytes]] = []
        how: list[str] = []

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await read_request(reader)
            got_request.set()
            await send_101.wait()
            writer.write(upgrade_response(request))
            try:
                while True:
                    _fin, op, payload = await read_frame(reader)
                    frames.append((op, payload))
                    if op == CLOSE:
                        how.append("close")
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                how.append("eof")
            ended.set()

        async with RawServer(handler) as server:
            client = BrokerClient(server.url, token="SECRET_HANDSHAKE", symbols=["eurusd"],
                                  reconnect=FAST)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await asyncio.wait_for(got_request.wait(), 5)
            await stop_and_end(client, task)
            await asyncio.sleep(0.3)
            send_101.set()
            await asyncio.wait_for(ended.wait(), 2)
            assert how and server.connections == 1
            assert not any(b"authorization" in p or b"SECRET" in p for _op, p in frames)
            assert seen["authorized"] == [] and seen["error"] == []
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_stop_during_the_backoff_sleep(loop: str) -> None:
    async def main() -> None:
        client = BrokerClient(f"ws://127.0.0.1:{refusing_port()}/", token="t",
                              reconnect=ReconnectPolicy(initial=20, maximum=20, jitter=0))
        seen = recorder(client)
        task = asyncio.ensure_future(client.run())
        # The first retry is immediate; after the second failure a 20 s sleep.
        await wait_until(lambda: len(seen["error"]) >= 2, timeout=5, what="two refusals")
        await asyncio.sleep(0.1)
        assert not task.done()
        assert all(isinstance(e, ConnectError) for e in seen["error"])
        await stop_and_end(client, task)
        assert len(seen["error"]) == 2
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_stop_from_a_sync_callback_without_awaiting(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=100) as sim:
            client = BrokerClient(sim.url, token=sim.signer.user(5), symbols=["eurusd"],
                                  reconnect=FAST)
            seen = recorder(client)
            stopped_at: list[float] = []

            @client.on("authorized")
            def on_authorized() -> None:
                stopped_at.append(asyncio.get_running_loop().time())
                client.stop()  # not awaited: a sync callback cannot

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                task = asyncio.ensure_future(client.run())
                await wait_until(lambda: bool(stopped_at), timeout=5, what="authorized")
                await ended_within(task, 2, "stop() in the authorized callback")
                task.result()
                gc.collect()
            assert not [w for w in caught if "never awaited" in str(w.message)]
            assert len(stopped_at) == 1 and sim.connections == 1
            assert seen["disconnected"] == ["stopped"] and not client.running
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_await_stop_from_an_async_quote_callback(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=200) as sim:
            client = BrokerClient(sim.url, token=sim.signer.user(5), symbols=["eurusd"],
                                  reconnect=FAST)
            errors: list[BaseException] = []
            client.on("error", errors.append)
            returned: list[bool] = []

            @client.on("quote")
            async def on_quote(symbol: str, bid: float, ask: float, ts: int) -> None:
                await client.stop()
                returned.append(client.running)

            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: task.done(), timeout=5, what="run() ended")
            task.result()
            await wait_until(lambda: bool(returned), timeout=2, what="await stop() returned")
            assert returned[0] is False
            assert errors == [] and sim.connections == 1
    run(loop, main, timeout=20)


# --- 2. CLOSE 1000 on stop -----------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_stop_sends_close_1000(loop: str) -> None:
    async def main() -> None:
        peer = BrokerPeer()
        async with serve_peer(peer.handler) as server:
            client = BrokerClient(f"ws://127.0.0.1:{port_of(server)}/", token="t",
                                  account=2000009, symbols=["eurusd"], reconnect=FAST)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: bool(seen["quote"]), timeout=5, what="a quote")
            await stop_and_end(client, task)
            await wait_until(lambda: bool(peer.close_codes), timeout=2, what="server closed")
            assert peer.close_codes == [1000]
            assert peer.connections == 1 and seen["error"] == []
    run(loop, main, timeout=20)


# --- 3. backoff after an accepted session --------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_backoff_grows_when_the_server_drops_after_auth(loop: str) -> None:
    """Authorization succeeds, then the server closes at once, every time: the default
    policy must not reconnect in a tight loop (it did ~70 times per 3 s)."""
    async def main() -> None:
        connections: list[float] = []

        async def handler(ws: ServerConnection) -> None:
            connections.append(asyncio.get_running_loop().time())
            with contextlib.suppress(ConnectionClosed):
                await ws.recv()
                await ws.send(AUTH_OK)

        async with serve_peer(handler) as server:
            client = BrokerClient(f"ws://127.0.0.1:{port_of(server)}/", token="t",
                                  symbols=["eurusd"])
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await asyncio.sleep(3)
            n = len(connections)
            await stop_and_end(client, task)
            assert len(seen["authorized"]) >= 2
            assert 2 <= n < 40, f"{n} connections in 3 s"
    run(loop, main, timeout=20)


# --- 4. redirects --------------------------------------------------------------------------

def redirect_to(location: Callable[[str], str | None]) -> Any:
    """A process_request answering 302 with ``location(path)`` (None: go on)."""
    def process_request(conn: ServerConnection, request: Request) -> Response | None:
        target = location(request.path)
        if target is None:
            return None
        response = conn.respond(HTTPStatus.FOUND, "moved\n")
        response.headers["Location"] = target
        return response
    return process_request


async def _counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("follow", [False, True])
def test_cross_origin_redirect_is_not_followed(loop: str, follow: bool) -> None:
    token = "SECRET_REDIRECT_TOKEN"

    async def main() -> None:
        peer = BrokerPeer()
        with captured_logs() as records:
            async with RawServer(_counting) as other:
                process = redirect_to(lambda path: f"ws://127.0.0.1:{other.port}/")
                async with serve_peer(peer.handler, process_request=process) as server:
                    client = BrokerClient(f"ws://127.0.0.1:{port_of(server)}/", token=token,
                                          follow_redirects=follow, reconnect=FAST)
                    seen = recorder(client)
                    task = asyncio.ensure_future(client.run())
                    await wait_until(lambda: len(seen["error"]) >= 2, timeout=5,
                                     what="redirect errors")
                    await stop_and_end(client, task)
                    await asyncio.sleep(0.1)
                assert other.connections == 0
        assert peer.connections == 0
        for e in seen["error"]:
            assert isinstance(e, ConnectError) and "redirect" in str(e), repr(e)
            assert token not in str(e)
        assert not [m for m in client_side(records) if token in m]
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("location", ["/feed", "ws://127.0.0.1:{port}/feed"])
def test_same_origin_redirect_followed_when_allowed(loop: str, location: str) -> None:
    async def main() -> None:
        peer = BrokerPeer()
        port: list[int] = []
        process = redirect_to(lambda path: (
            location.format(port=port[0]) if path == "/" else None))
        async with serve_peer(peer.handler, process_request=process) as server:
            port.append(port_of(server))
            client = BrokerClient(f"ws://127.0.0.1:{port[0]}/", token="t",
                                  symbols=["eurusd"], follow_redirects=True, reconnect=FAST)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: bool(seen["quote"]), timeout=5, what="a quote")
            await stop_and_end(client, task)
        assert seen["quote"][0] == ("eurusd", 1.0851, 1.0853, 1763700000001)
        assert seen["error"] == [] and len(seen["authorized"]) == 1
        assert peer.paths == ["/feed"]
    run(loop, main, timeout=20)


# --- 5. secrets ----------------------------------------------------------------------------

def _secret_checks(client: BrokerClient, records: list[logging.LogRecord],
                   errors: list[BaseException], *secrets: str) -> None:
    texts = client_side(records)
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [repr(client), str(client.stats()), str(client)]
    for secret in secrets:
        leaks = [t for t in texts if secret in t]
        assert not leaks, f"{secret} leaked: {leaks[:3]}"


def _secrets_sessions(loop: str, level: int) -> None:
    async def main() -> None:
        errors: list[BaseException] = []
        with captured_logs(level) as records:
            async def refuse(ws: ServerConnection) -> None:
                with contextlib.suppress(ConnectionClosed):
                    await ws.recv()
                    await ws.send('{"event":"authorization","success":false,'
                                  '"error":"INVALID_TOKEN"}')
                    await ws.close()

            async with serve_peer(refuse) as server:
                url = f"ws://127.0.0.1:{port_of(server)}/?token=SECRET_Q"
                client = BrokerClient(url, token="SECRET_JWT", reconnect=FAST)
                client.on("error", errors.append)
                with pytest.raises(AuthError) as raised:
                    await asyncio.wait_for(client.run(), 5)
                errors.append(raised.value)
                _secret_checks(client, records, errors, "SECRET_Q", "SECRET_JWT")

            async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await asyncio.sleep(30)

            async with RawServer(silent) as raw:
                client = BrokerClient(raw.url + "?token=SECRET_Q", token="SECRET_JWT",
                                      connect_timeout=0.3, reconnect=FAST)
                errors.clear()
                client.on("error", errors.append)
                task = asyncio.ensure_future(client.run())
                await wait_until(lambda: len(errors) >= 2, timeout=5, what="two timeouts")
                await stop_and_end(client, task)
                assert all(isinstance(e, ConnectError) for e in errors)
                _secret_checks(client, records, errors, "SECRET_Q", "SECRET_JWT")
            assert client_side(records), "nothing was logged at all: the capture is broken"
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_secrets_never_logged_or_reported(loop: str) -> None:
    _secrets_sessions(loop, logging.DEBUG)


@pytest.mark.parametrize("loop", LOOPS)
def test_secrets_never_logged_at_picows_debug_level(loop: str) -> None:
    """picows logs the upgrade request (with the URL's query) at its own debug level, 9,
    on a per-connection child of the logger it is given: the redaction must cover it."""
    from picows.common import PICOWS_DEBUG_LL
    _secrets_sessions(loop, PICOWS_DEBUG_LL)


# --- 6. a PING flood from a peer that never reads --------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_ping_flood_from_a_peer_that_never_reads(loop: str) -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    async def main() -> None:
        async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(upgrade_response(await read_request(reader)))
            pings = ws_frame(PING, b"p" * 125) * 64
            while not writer.is_closing():  # and never read the socket again
                writer.write(pings)
                await writer.drain()
                await asyncio.sleep(0)  # drain() may return at once on a dying transport

        async with RawServer(flood) as server:
            client = BrokerClient(server.url, token="t", max_write_buffer=65536,
                                  auth_timeout=60, reconnect=ReconnectPolicy(
                                      initial=30, maximum=30, jitter=0))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: bool(seen["disconnected"]), timeout=10,
                             what="the connection dropped")
            await stop_and_end(client, task)
        protocol = [e for e in seen["error"] if isinstance(e, ProtocolError)]
        assert protocol and "does not read" in str(protocol[0]), seen["error"]
        assert len(seen["error"]) <= 3, seen["error"]
    run(loop, main, timeout=30)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert grown_mb < 100, f"peak RSS grew {grown_mb:.0f} MB"


# --- 7. quotes for symbols never subscribed ------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("admit", [False, True])
def test_quotes_for_unsubscribed_symbols(loop: str, admit: bool) -> None:
    rng = random.Random(7)
    junk: set[str] = set()
    while len(junk) < 5000:
        name = "".join(rng.choices(string.ascii_lowercase, k=8))
        if name != "eurusd":
            junk.add(name)

    async def main() -> None:
        peer = BrokerPeer()

        async def after_subscribe(ws: ServerConnection) -> None:
            for i, sym in enumerate(sorted(junk)):
                await ws.send(f'["t","{sym}",1.5,1.6,{1763700000000 + i}]')
            for i in range(3):
                await ws.send(f'["t","eurusd",1.085{i},1.086{i},{1763700009990 + i}]')
        peer.after_subscribe = after_subscribe

        async with serve_peer(peer.handler) as server:
            client = BrokerClient(f"ws://127.0.0.1:{port_of(server)}/", token="t",
                                  symbols=["eurusd"], admit_unsubscribed=admit,
                                  reconnect=FAST)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: any(q[3] == 1763700009992 for q in seen["quote"]),
                             timeout=10, what="the last eurusd quote")
            stats = client.stats()
            await stop_and_end(client, task)
        eurusd = [q for q in seen["quote"] if q[0] == "eurusd"]
        assert [q[3] for q in eurusd] == [1763700009990, 1763700009991, 1763700009992]
        if admit:
            assert len(client.book) == 5001 and stats["rejected"] == 0
            assert len(seen["quote"]) == 5003 and seen["error"] == []
        else:
            assert len(client.book) == 1 and stats["rejected"] == 5000
            assert len(seen["quote"]) == 3
            assert len(seen["error"]) == 1 and isinstance(seen["error"][0], ProtocolError)
            assert "did not subscribe" in str(seen["error"][0])
        assert peer.connections == 1
    run(loop, main, timeout=30)


# --- 8. a fragmented message that never ends -----------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_endless_fragmented_message(loop: str) -> None:
    async def main() -> None:
        outcomes: list[Any] = []
        errors_by_conn: dict[int, list[BaseException]] = defaultdict(list)

        async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(upgrade_response(await read_request(reader)))
            _fin, _op, payload = await read_frame(reader)
            assert b"authorization" in payload
            writer.write(ws_frame(TEXT, AUTH_OK.encode()))

            async def reader_side() -> None:
                try:
                    while True:
                        _fin, op, payload = await read_frame(reader)
                        if op == CLOSE:
                            outcomes.append(struct.unpack("!H", payload[:2])[0])
                            return
                except (asyncio.IncompleteReadError, ConnectionError):
                    outcomes.append("eof")

            watcher = asyncio.ensure_future(reader_side())
            writer.write(ws_frame(TEXT, b'["t","eurusd",', fin=False))
            chunk = ws_frame(CONT, b"1" * 1024, fin=False) * 16
            try:
                while not watcher.done():
                    writer.write(chunk)
                    await writer.drain()
            finally:
                await asyncio.wait([watcher], timeout=2)
                watcher.cancel()

        async with RawServer(endless) as server:
            client = BrokerClient(server.url, token="t", symbols=["eurusd"],
                                  max_message_bytes=65536)
            client.on("error", lambda e: errors_by_conn[server.connections].append(e))
            task = asyncio.ensure_future(client.run())
            await asyncio.sleep(3)
            n = server.connections
            await stop_and_end(client, task)
        assert 2 <= n < 40, f"{n} connections in 3 s"
        assert outcomes and all(o in (1009, "eof") for o in outcomes), outcomes
        for conn, errs in errors_by_conn.items():
            assert len(errs) <= 3, (conn, errs)
            too_big = [e for e in errs if "max_message_bytes" in str(e)]
            assert len(too_big) == 1 and isinstance(too_big[0], ProtocolError), (conn, errs)
    run(loop, main, timeout=30)


# --- 9. account arrays of another layout ---------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_account_array_of_another_layout_is_delivered(loop: str) -> None:
    async def main() -> None:
        peer = BrokerPeer()
        peer.after_switch = ['["b",2000009,1500.5,"USD",1700000000000]'] * 2
        async with serve_peer(peer.handler) as server:
            client = BrokerClient(f"ws://127.0.0.1:{port_of(server)}/", token="t",
                                  account=2000009, reconnect=FAST)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["balance"]) >= 2, timeout=5, what="balances")
            await asyncio.sleep(0.1)
            await stop_and_end(client, task)
        assert len(seen["balance"]) == 2
        for event in seen["balance"]:
            assert event["values"] == [2000009, 1500.5, "USD", 1700000000000]
        assert len(seen["error"]) == 1 and isinstance(seen["error"][0], DecodeError)
    run(loop, main, timeout=20)


# --- 10-12. timeouts and a 401 ---------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_auth_timeout(loop: str) -> None:
    async def main() -> None:
        async def mute(ws: ServerConnection) -> None:
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    pass

        async with serve_peer(mute) as server:
            client = BrokerClient(f"ws://127.0.0.1:{port_of(server)}/", token="t",
                                  auth_timeout=0.3, reconnect=FAST)
            errors: list[BaseException] = []
            client.on("error", errors.append)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(errors) >= 4, timeout=5, what="four auth timeouts")
            await stop_and_end(client, task)
        # Every attempt fails with its own timeout: the end of one connection does not
        # fail the next attempt's authorization ("connection lost before authorization").
        for e in errors:
            assert isinstance(e, ConnectError), errors
            assert "no authorization answer within 0.3s" in str(e), errors
        gc.collect()
        await asyncio.sleep(0)

    with captured_logs(logging.DEBUG) as records:
        run(loop, main, timeout=20)
        gc.collect()
    lost = [r.getMessage() for r in records if "never retrieved" in r.getMessage()]
    assert not lost, lost


@pytest.mark.parametrize("loop", LOOPS)
def test_connect_timeout_names_its_reason(loop: str) -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(30)

        async with RawServer(silent) as server:
            client = BrokerClient(server.url, token="t", connect_timeout=0.3, reconnect=FAST)
            errors: list[BaseException] = []
            client.on("error", errors.append)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: bool(errors), timeout=5, what="a connect timeout")
            await stop_and_end(client, task)
        assert isinstance(errors[0], ConnectError), errors
        assert "timed out" in str(errors[0]) and not str(errors[0]).rstrip().endswith(":")
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_http_401_at_the_upgrade_is_fatal(loop: str) -> None:
    async def main() -> None:
        requests: list[str] = []

        def process_request(conn: ServerConnection, request: Request) -> Response:
            requests.append(request.path)
            return conn.respond(HTTPStatus.UNAUTHORIZED, "bad token\n")

        async def handler(ws: ServerConnection) -> None:
            raise AssertionError("never upgraded")

        async with serve_peer(handler, process_request=process_request) as server:
            client = BrokerClient(f"ws://127.0.0.1:{port_of(server)}/", token="t",
                                  reconnect=FAST)
            with pytest.raises(AuthError):
                await asyncio.wait_for(client.run(), 5)
        assert requests == ["/"]
    run(loop, main, timeout=20)
