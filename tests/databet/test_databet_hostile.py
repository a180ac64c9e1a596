"""DatabetClient against hostile servers on 127.0.0.1: HTTP/1.1 written by hand on
``asyncio.start_server`` (and the simulator where a well-behaved feed is what the test
needs). Each test pins one failure the client used to have: a catch-up backlog treated as a
dead stream, ``stop()`` that could not interrupt a wait, backoff that reset on every
accepted connection, a certificate error retried for ever, non-chunked or stalled
snapshots, unbounded error bodies and lines. Every test runs on asyncio and on uvloop and is
bounded in time."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import itertools
import socket
import ssl
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from netutil import LOOPS, make_certs, run, wait_until
from oddswire.client import ReconnectPolicy
from oddswire.databet import DatabetClient
from oddswire.errors import (
    CertificateError,
    ConnectError,
    HTTPStatusError,
    ProtocolError,
    StaleFeedError,
)
from oddswire.sim.databet import DatabetSimulator
from oddswire.sim.databet_world import DatabetWorld

MINUTE_NS = 60 * 10**9

# --- a hand-written HTTP/1.1 server ------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    at: float  # loop time it arrived


Handler = Callable[[Any, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """One request per connection on 127.0.0.1: ``handler(request, reader, writer)`` writes
    whatever bytes it likes; the connection is closed when it returns. With ``http=False``
    the handler gets the bare connection (``request`` is None) as soon as it is accepted.
    ``connections`` counts accepted connections, ``requests`` the parsed requests."""

    def __init__(self, handler: Handler, *, http: bool = True, port: int = 0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.http = http
        self.port = port
        self.ssl_context = ssl_context
        self.connections = 0
        self.requests: list[Request] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", self.port,
                                                  ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def paths(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            req = None
            if self.http:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                method, target, _ = line.split(" ", 2)
                path, _, query = target.partition("?")
                headers = {k.strip().lower(): v.strip()
                           for k, _, v in (h.partition(":") for h in lines if h)}
                req = Request(method, path, query, headers, asyncio.get_running_loop().time())
                self.requests.append(req)
            await self.handler(req, reader, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ssl.SSLError, asyncio.CancelledError):
            pass  # the top of the connection's task: the client went away, or we closed
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()


def http_head(status: int, reason: str, headers: dict[str, str]) -> bytes:
    return (f"HTTP/1.1 {status} {reason}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def ndjson(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


CHUNKED = {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"}


async def until_closed(reader: asyncio.StreamReader) -> None:
    """Keep the connection open, sending nothing, until the client closes it."""
    await reader.read()


async def write_in_pieces(writer: asyncio.StreamWriter, data: bytes) -> None:
    """``data`` in irregular pieces (lines split anywhere), each flushed on its own."""
    sizes, i, k = (1, 13, 700, 4096, 3, 257), 0, 0
    while i < len(data):
        writer.write(data[i:i + sizes[k % len(sizes)]])
        i += sizes[k % len(sizes)]
        k += 1
        await writer.drain()
        await asyncio.sleep(0)


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Feed:
    """A small DATA.BET world: its ``/all`` snapshot and Last-Version, then ``logs`` after
    it. ``serve`` answers ``/all`` and ``/log`` the well-behaved way (chunked; /log sends
    the logs after the requested version, then heartbeats until the client closes)."""

    def __init__(self, seed: int, events: int = 8, logs: int = 20,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.world = DatabetWorld(seed=seed, events=events, clock=clock)
        self.snapshot = self.world.snapshot_lines()
        self.base = self.world.version
        self.logs = [(self.world.next_line(), self.world.version) for _ in range(logs)]
        self.versions = [v for _, v in self.logs]
        payloads = [orjson.loads(line)["payload"] for line in self.snapshot]
        self.odds = sum(len(m["odds"]) for p in payloads for m in p["markets"])

    @property
    def events(self) -> int:
        return len(self.snapshot)

    def after(self, version: str) -> list[bytes] | None:
        if version == self.base:
            return [line for line, _ in self.logs]
        if version not in self.versions:
            return None
        return [line for line, _ in self.logs[self.versions.index(version) + 1:]]

    async def serve_all(self, writer: asyncio.StreamWriter) -> None:
        writer.write(http_head(200, "OK", {**CHUNKED, "Last-Version": self.base}))
        writer.write(chunk(ndjson(self.snapshot)) + b"0\r\n\r\n")
        await writer.drain()

    async def serve_log(self, req: Request, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter, every: float = 0.2) -> None:
        lines = self.after(req.headers.get("last-version", ""))
        if lines is None:
            writer.write(http_head(409, "Conflict", {"Content-Length": "0"}))
            return
        writer.write(http_head(200, "OK", CHUNKED))
        if lines:
            writer.write(chunk(ndjson(lines)))
        await writer.drain()
        while not reader.at_eof() and not writer.is_closing():
            await asyncio.sleep(every)
            writer.write(chunk(self.world.heartbeat() + b"\n"))
            await writer.drain()

    async def serve(self, req: Request, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        if req.path == "/all":
            await self.serve_all(writer)
        elif req.path == "/log":
            await self.serve_log(req, reader, writer)
        else:
            writer.write(http_head(404, "Not Found", {"Content-Length": "0"}))


# --- client helpers ----------------------------------------------------------------------


def record(client: DatabetClient) -> dict[str, list[Any]]:
    """Every event worth asserting on; errors also as (loop time, error, events held)."""
    now = asyncio.get_running_loop().time
    seen: dict[str, list[Any]] = {k: [] for k in (
        "log", "stale", "healthy", "snapshot", "resync", "connected", "disconnected",
        "error", "error_at")}
    client.on("log", lambda a: seen["log"].append(a.version))
    client.on("stale", seen["stale"].append)
    client.on("healthy", lambda: seen["healthy"].append(now()))
    client.on("snapshot", seen["snapshot"].append)
    client.on("resync", seen["resync"].append)
    client.on("connected", lambda: seen["connected"].append(now()))
    client.on("disconnected", seen["disconnected"].append)

    def on_error(e: BaseException) -> None:
        seen["error"].append(e)
        seen["error_at"].append((now(), e, client.table.event_count))
    client.on("error", on_error)
    return seen


async def within(aw: Awaitable[Any], seconds: float, what: str) -> Any:
    """``aw``, or an AssertionError saying ``what`` did not happen within ``seconds``."""
    try:
        return await asyncio.wait_for(aw, seconds)
    except TimeoutError:
        raise AssertionError(f"{what} within {seconds:g}s") from None


@contextlib.asynccontextmanager
async def running(client: DatabetClient) -> AsyncIterator[asyncio.Future[None]]:
    """``client.run()`` as a task for the body; stopped (boundedly) afterwards."""
    task = asyncio.ensure_future(client.run())
    try:
        yield task
    finally:
        await within(client.stop(), 5, "await client.stop() did not return")
        await within(task, 5, "run() did not end after stop()")


# --- 1. catch-up after an outage ---------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_catch_up_backlog_is_one_log_request_applied_once_under_a_bet_stop(loop, tmp_path):
    """A restart from ``state_file`` after an outage gets a backlog of minute-old
    ``markets_updated``: the lag is a bet stop while it is applied, never a reconnect (which
    would ask for the same backlog again, for ever)."""
    state = tmp_path / "databet.version"
    shift = [0]

    def clock() -> int:
        return time.time_ns() + shift[0]

    def next_kind(sim: DatabetSimulator) -> str:
        return str(orjson.loads(copy.deepcopy(sim.world).next_line())["event_type"])

    async def main():
        world = DatabetWorld(seed=17, events=10, clock=clock)
        async with DatabetSimulator(world, rate=0) as sim:
            a = DatabetClient(sim.url, state_file=state)
            async with running(a):
                await wait_until(lambda: any(p == "/log" for _, p, _ in sim.requests),
                                 timeout=10, what="a on /log")
                sim.push(10)
                await wait_until(lambda: a.version == sim.version and a.healthy, timeout=10)
                # so that the backlog opens with a markets_updated (the lag is seen at once)
                while next_kind(sim) != "markets_updated":
                    sim.push(1)
                    await wait_until(lambda: a.version == sim.version, timeout=10)
            resume = a.version
            assert state.read_text().strip() == resume == sim.version

            shift[0] = -MINUTE_NS  # the outage: everything the feed made is a minute old
            sim.push(300)
            shift[0] = 0
            start = sim.versions.index(resume) + 1
            backlog = sim.versions[start:]
            assert orjson.loads(sim.lines[start])["event_type"] == "markets_updated"

            first_request = len(sim.requests)
            b = DatabetClient(sim.url, state_file=state)
            seen = record(b)
            applied: list[tuple[str, bool, bool]] = []
            b.on("log", lambda x: applied.append((x.version, b.healthy, b.table.healthy)))
            async with running(b):
                await wait_until(lambda: b.version is not None and b.version >= backlog[-1],
                                 timeout=10, what="the backlog applied")
                assert not b.healthy and not b.table.healthy  # nothing fresh yet
                sim.push(20)  # fresh logs: caught up
                await wait_until(lambda: b.healthy, timeout=10, what="healthy after fresh logs")
                assert b.table.healthy
                await wait_until(lambda: b.version == sim.version, timeout=10)
                await asyncio.sleep(0.2)  # a refetch answer may still be in flight
                await wait_until(lambda: b.version == sim.version, timeout=10)

            requests = [path for _, path, _ in sim.requests[first_request:]]
            assert requests.count("/log") == 1, requests
            assert "/all" not in requests
            # every log after the resume point exactly once, in order (refetches included)
            assert [v for v, _, _ in applied] == sim.versions[start:]
            in_backlog = set(backlog)
            during = [(h, th) for v, h, th in applied if v in in_backlog]
            assert len(during) == len(backlog) == 300
            assert not any(h or th for h, th in during), "bettable while applying a backlog"
            assert any("lag" in reason for reason in seen["stale"]), seen["stale"]
            assert seen["healthy"] and b.stats()["lagging"] is False
            assert not any(isinstance(e, StaleFeedError) for e in seen["error"])
            assert state.read_text().strip() == b.version
    run(loop, main, timeout=40)


# --- 2. stop() from every state ----------------------------------------------------------

STOP_STATES = ["response_head", "tls_handshake", "snapshot_body", "log_stream",
               "backoff_sleep"]


@pytest.mark.parametrize("state", STOP_STATES)
@pytest.mark.parametrize("loop", LOOPS)
def test_stop_ends_run_promptly_from_every_state(loop, state, tmp_path):
    feed = Feed(seed=31)
    version_file = tmp_path / "databet.version"

    async def silent(req: Any, reader: asyncio.StreamReader, _: Any) -> None:
        await until_closed(reader)  # accept (and read), never answer

    async def snapshot_then_stall(req: Request, reader: asyncio.StreamReader,
                                  writer: asyncio.StreamWriter) -> None:
        writer.write(http_head(200, "OK", {**CHUNKED, "Last-Version": feed.base}))
        writer.write(chunk(ndjson(feed.snapshot[:3])))
        await writer.drain()
        await until_closed(reader)

    async def main():
        async with contextlib.AsyncExitStack() as stack:
            kw: dict[str, Any] = {"state_file": version_file}
            if state == "response_head":
                srv = await stack.enter_async_context(RawServer(silent))
                url = srv.url()
            elif state == "tls_handshake":
                certs = make_certs(tmp_path)
                srv = await stack.enter_async_context(RawServer(silent, http=False))
                url = srv.url("https")
                kw["ssl_context"] = ssl.create_default_context(cafile=str(certs["ca"]))
            elif state == "snapshot_body":
                srv = await stack.enter_async_context(RawServer(snapshot_then_stall))
                url = srv.url()
            elif state == "log_stream":
                sim = await stack.enter_async_context(
                    DatabetSimulator(seed=32, events=6, rate=300))
                url = sim.url
            else:
                url = f"http://127.0.0.1:{free_port()}"
                kw["reconnect"] = ReconnectPolicy(initial=20, maximum=20, jitter=0)
            client = DatabetClient(url, **kw)
            seen = record(client)
            task = asyncio.ensure_future(client.run())
            if state == "response_head":
                await wait_until(lambda: len(srv.requests) == 1, timeout=5)
            elif state == "tls_handshake":
                await wait_until(lambda: srv.connections == 1, timeout=5)
            elif state == "snapshot_body":
                await wait_until(lambda: client.table.event_count == 3, timeout=5)
            elif state == "log_stream":
                await wait_until(lambda: client.healthy and len(seen["log"]) > 20, timeout=10)
            else:
                await wait_until(lambda: client.stats()["reconnects"] >= 1, timeout=5)
                assert isinstance(seen["error"][0], ConnectError)
            await asyncio.sleep(0.1)  # settle into the wait
            assert not task.done()
            errors_before = len(seen["error"])

            t0 = asyncio.get_running_loop().time()
            # the test body awaits stop() itself
            await within(client.stop(), 5, f"await client.stop() did not return ({state})")
            await within(task, 5, f"run() did not end after stop() ({state})")
            took = asyncio.get_running_loop().time() - t0
            assert took < 2.0, f"run() ended {took:.1f}s after stop() ({state})"
            assert not client.running and not client.healthy
            assert len(seen["error"]) == errors_before, seen["error"][errors_before:]
            if seen["connected"]:
                assert seen["disconnected"][-1] == "stopped"
            if state == "log_stream":
                assert version_file.read_text().strip() == client.version == seen["log"][-1]
            else:  # no version was ever complete: nothing recorded (a partial /all is not one)
                assert client.version is None and not version_file.exists()
            if state == "tls_handshake":
                assert srv.requests == []  # never got past the handshake
    run(loop, main, timeout=30)


@pytest.mark.parametrize("how", ["sync_snapshot", "sync_healthy", "async_log"])
@pytest.mark.parametrize("loop", LOOPS)
def test_stop_from_inside_a_callback_ends_run_promptly(loop, how, tmp_path):
    """``client.stop()`` from a sync callback (not awaited) or ``await client.stop()`` from
    a coroutine callback: ``run()`` returns by itself, promptly, with the version saved.
    A stop from the ``snapshot`` callback lands while the attempt moves on to ``/log``."""
    version_file = tmp_path / "databet.version"

    async def main():
        now = asyncio.get_running_loop().time
        async with DatabetSimulator(seed=41, events=6, rate=300) as sim:
            client = DatabetClient(sim.url, state_file=version_file, heartbeat_interval=1)
            seen = record(client)
            asked: list[float] = []
            returned: list[float] = []
            if how == "sync_snapshot":
                @client.on("snapshot")
                def _(version: str) -> None:
                    asked.append(now())
                    client.stop()  # not awaited: a sync callback cannot
            elif how == "sync_healthy":
                @client.on("healthy")
                def _() -> None:
                    asked.append(now())
                    client.stop()
            else:
                @client.on("log")
                async def _(applied: Any) -> None:
                    asked.append(now())
                    await client.stop()  # waits for run() to end, from inside a callback
                    returned.append(now())
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                await within(client.run(), 5,  # ends by itself
                             f"run() did not end after stop() from the {how} callback")
                ended = now()
                gc.collect()
            assert asked, f"the {how} callback never ran"
            assert ended - asked[0] < 2.0, f"run() ended {ended - asked[0]:.1f}s after stop()"
            assert not [w for w in caught if "never awaited" in str(w.message)]
            if how == "async_log":
                # every callback that awaited stop() got past it
                assert len(returned) == len(asked) == len(seen["log"])
                assert max(returned) - asked[0] < 2.0
            if how == "sync_snapshot":
                assert len(seen["snapshot"]) == 1
            last = seen["log"][-1] if seen["log"] else seen["snapshot"][-1]
            assert version_file.read_text().strip() == client.version == last
            assert seen["error"] == []
            # stopped, not failed: no reconnect happened
            assert client.stats()["reconnects"] == 0
    run(loop, main, timeout=30)


# --- 3. backoff grows when nothing works -------------------------------------------------

WINDOW = 3.0


@pytest.mark.parametrize("loop", LOOPS)
def test_backoff_grows_when_nothing_works(loop):
    """Three ways of failing, watched side by side for ``WINDOW`` seconds each: none of them
    may turn the client into a request storm."""

    async def log_answers_503() -> None:
        feed = Feed(seed=51)

        async def handler(req: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
            if req.path == "/all":
                await feed.serve_all(writer)
            else:
                writer.write(http_head(503, "Service Unavailable", {"Content-Length": "0"}))

        async with RawServer(handler) as srv:
            client = DatabetClient(srv.url())  # the default ReconnectPolicy()
            seen = record(client)
            async with running(client):
                await asyncio.sleep(WINDOW)
            n = len(srv.paths("/log"))
            assert 2 <= n < 40, f"/log answering 503: {n} requests in {WINDOW}s"
            assert len(srv.paths("/all")) == 1  # the version is kept across the 503s
            assert any(isinstance(e, HTTPStatusError) and e.status == 503
                       for e in seen["error"])

    async def feed_goes_away() -> None:
        sim = await DatabetSimulator(seed=52, events=5, rate=200).start()
        client = DatabetClient(sim.url, heartbeat_interval=1)
        try:
            async with running(client):
                await wait_until(lambda: client.healthy, timeout=10)
                await asyncio.sleep(1.2)  # a good session: data, and up past reset_after
                port = sim.port
                await sim.stop()

                async def close_at_once(_: Any, __: Any, writer: asyncio.StreamWriter) -> None:
                    writer.transport.abort()

                async with RawServer(close_at_once, http=False, port=port) as srv:
                    before = client.stats()["reconnects"]
                    await asyncio.sleep(WINDOW)
                    reconnects = client.stats()["reconnects"] - before
                    accepted = srv.connections
            assert accepted >= 2, "the client stopped trying"
            assert accepted < 40, f"feed gone: {accepted} connections in {WINDOW}s"
            assert reconnects < 40, f"feed gone: {reconnects} reconnects in {WINDOW}s"
        finally:
            await sim.stop()

    async def head_then_close() -> None:
        feed = Feed(seed=53)

        async def handler(req: Request, reader: Any, writer: asyncio.StreamWriter) -> None:
            if req.path == "/all":
                await feed.serve_all(writer)
            else:  # a 200 head, then the connection closes: "connected", but no data
                writer.write(http_head(200, "OK", CHUNKED))

        async with RawServer(handler) as srv:
            # no jitter, so the growth itself is visible: 0, 0.1, 0.2, 0.4, 0.8, 1.6 s
            client = DatabetClient(srv.url(), reconnect=ReconnectPolicy(jitter=0))
            seen = record(client)
            async with running(client):
                await asyncio.sleep(WINDOW)
            at = [r.at for r in srv.paths("/log")]
            gaps = [b - a for a, b in itertools.pairwise(at)]
            assert 4 <= len(at) < 12, f"head-then-close: {len(at)} /log requests in {WINDOW}s"
            assert gaps[-1] >= 2 * gaps[1] and max(gaps) >= 0.6, gaps
            assert len(seen["connected"]) == len(at)  # a head arrived on every attempt
            assert len(srv.paths("/all")) == 1

    async def main():
        await asyncio.gather(log_answers_503(), feed_goes_away(), head_then_close())
    run(loop, main, timeout=30)


# --- 4. an untrusted certificate is fatal ------------------------------------------------


@pytest.mark.parametrize("trust", ["system_cas", "another_ca"])
@pytest.mark.parametrize("loop", LOOPS)
def test_untrusted_server_certificate_raises_certificate_error_without_retrying(
        loop, trust, tmp_path):
    certs = make_certs(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(certs["server"]), str(certs["server_key"]))
    feed = Feed(seed=61)
    if trust == "system_cas":
        kw: dict[str, Any] = {"ssl_context": ssl.create_default_context()}
    else:
        (tmp_path / "other").mkdir()
        kw = {"ca": str(make_certs(tmp_path / "other")["ca"])}

    async def main():
        async with RawServer(feed.serve, ssl_context=server_ctx) as srv:
            client = DatabetClient(srv.url("https"), **kw)  # the default (endless) policy
            seen = record(client)
            with pytest.raises(CertificateError, match="verif"):
                await asyncio.wait_for(client.run(), 5)
            assert client.stats()["reconnects"] == 0
            assert not client.running and srv.requests == []
            assert len(seen["error"]) <= 1
    run(loop, main, timeout=20)


# --- 5. /all without chunking ------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content_length", "close_delimited"])
@pytest.mark.parametrize("loop", LOOPS)
def test_snapshot_without_chunked_encoding(loop, framing):
    """A proxy that de-chunks: ``/all`` with a ``Content-Length`` (and the connection left
    open after it), or ended by the close (and the last line without its newline)."""
    feed = Feed(seed=71, events=15, logs=30)

    async def handler(req: Request, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if req.path != "/all":
            await feed.serve(req, reader, writer)
        elif framing == "content_length":
            body = ndjson(feed.snapshot)
            writer.write(http_head(200, "OK", {"Content-Type": "application/x-ndjson",
                                               "Content-Length": str(len(body)),
                                               "Last-Version": feed.base}))
            await write_in_pieces(writer, body)
            await until_closed(reader)  # the length ends the body, not the close
        else:
            writer.write(http_head(200, "OK", {"Content-Type": "application/x-ndjson",
                                               "Connection": "close",
                                               "Last-Version": feed.base}))
            await write_in_pieces(writer, ndjson(feed.snapshot).rstrip(b"\n"))

    async def main():
        async with RawServer(handler) as srv:
            client = DatabetClient(srv.url(), heartbeat_interval=1)
            seen = record(client)
            held: list[tuple[str, int, int]] = []
            client.on("snapshot", lambda v: held.append(
                (v, client.table.event_count, len(client.table))))
            async with running(client):
                await wait_until(lambda: client.version == feed.versions[-1] and client.healthy,
                                 timeout=10, what="snapshot, then the logs")
                await wait_until(lambda: client.stats()["messages"] > feed.events + 31,
                                 timeout=5, what="heartbeats over /log")
            assert held == [(feed.base, feed.events, feed.odds)]
            assert seen["log"] == feed.versions
            assert len(srv.paths("/all")) == 1
            assert [r.headers["last-version"] for r in srv.paths("/log")] == [feed.base]
            assert seen["error"] == []
    run(loop, main, timeout=30)


# --- 5/6. a snapshot that stops making progress ------------------------------------------

PARTIAL = 5


@pytest.mark.parametrize("mode", ["stall_after_head", "trickle", "huge_length_then_stall"])
@pytest.mark.parametrize("loop", LOOPS)
def test_snapshot_that_stops_making_progress_fails_over(loop, mode):
    """The first ``/all`` sends its head and then nothing, or one byte per 0.2 s, or some
    lines under ``Content-Length: 1000000000000`` and then nothing: with ``read_timeout=0.5``
    the client gives up on it, says why, and the next attempt (served properly) fills the
    table. Lines that did arrive were applied as they came."""
    feed = Feed(seed=81, events=12)

    async def bad_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if mode == "huge_length_then_stall":
            writer.write(http_head(200, "OK", {"Content-Length": "1000000000000",
                                               "Last-Version": feed.base}))
            writer.write(ndjson(feed.snapshot[:PARTIAL]))
            await writer.drain()
            await until_closed(reader)
            return
        writer.write(http_head(200, "OK", {**CHUNKED, "Last-Version": feed.base}))
        await writer.drain()
        if mode == "stall_after_head":
            await until_closed(reader)
            return
        for byte in chunk(ndjson(feed.snapshot)):
            if reader.at_eof() or writer.is_closing():
                return
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.2)

    async def handler(req: Request, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if req.path == "/all" and len(srv.paths("/all")) == 1:
            await bad_all(reader, writer)
        else:
            await feed.serve(req, reader, writer)

    async def main():
        async with srv:
            client = DatabetClient(srv.url(), heartbeat_interval=1, read_timeout=0.5)
            seen = record(client)
            held: list[tuple[int, int]] = []
            client.on("snapshot", lambda v: held.append((client.table.event_count,
                                                         len(client.table))))
            async with running(client):
                await wait_until(lambda: client.version == feed.versions[-1] and client.healthy,
                                 timeout=10, what="the second /all, then the logs")
            alls = srv.paths("/all")
            assert len(alls) == 2
            assert alls[1].at - alls[0].at < 3.0, "no new attempt within a few seconds"
            at, err, events_held = seen["error_at"][0]
            assert isinstance(err, ConnectError), seen["error"]
            assert "no line" in str(err) or "progress" in str(err), str(err)
            assert at <= alls[1].at
            # the lines that came before the stall were in the table when it failed
            assert events_held == (PARTIAL if mode == "huge_length_then_stall" else 0)
            assert held == [(feed.events, feed.odds)]
            assert seen["snapshot"] == [feed.base]
            assert seen["log"] == feed.versions

    srv = RawServer(handler)
    run(loop, main, timeout=30)


# --- 7. error statuses: the body is never read -------------------------------------------


@pytest.mark.parametrize("path", ["/log", "/all"])
@pytest.mark.parametrize("loop", LOOPS)
def test_error_status_with_a_huge_trickling_body_is_reported_at_once(loop, path):
    """``503`` with ``Content-Length: 10000000000`` and a body that trickles: the status is
    the answer. Reading the body first would hold the client for ``connect_timeout`` (10 s)
    and end in a misleading "no response head"."""
    feed = Feed(seed=91)
    hung_up: list[tuple[int, float]] = []  # bytes of body sent, seconds until the client left

    async def handler(req: Request, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if req.path != path or len(srv.paths(path)) > 1:
            await feed.serve(req, reader, writer)
            return
        now = asyncio.get_running_loop().time
        writer.write(http_head(503, "Service Unavailable", {"Content-Type": "text/plain",
                                                            "Content-Length": "10000000000"}))
        await writer.drain()
        t0, sent = now(), 0
        closed = asyncio.ensure_future(reader.read())
        try:
            while not closed.done() and sent < 100:
                writer.write(b"x")
                sent += 1
                await writer.drain()
                await asyncio.wait({closed}, timeout=0.1)
        except ConnectionError:
            pass
        finally:
            hung_up.append((sent, now() - t0))
            closed.cancel()

    async def main():
        async with srv:
            client = DatabetClient(srv.url(), heartbeat_interval=1)
            seen = record(client)
            async with running(client):
                await wait_until(lambda: client.version == feed.versions[-1] and client.healthy,
                                 timeout=10, what="recovery after the 503")
            first = srv.paths(path)[0]
            at, err, _ = seen["error_at"][0]
            assert isinstance(err, HTTPStatusError) and err.status == 503, seen["error"]
            assert path in str(err)
            assert at - first.at < 2.0, f"the 503 was reported {at - first.at:.1f}s late"
            assert not [e for e in seen["error"] if "no response head" in str(e)]
            assert not [e for e in seen["error"] if isinstance(e, ConnectError)]
            await wait_until(lambda: bool(hung_up), timeout=3)
            sent, after = hung_up[0]
            assert after < 2.0 and sent < 20, f"the client read the body ({sent} B, {after:.1f}s)"
            assert len(srv.paths(path)) == 2
            assert seen["log"] == feed.versions

    srv = RawServer(handler)
    run(loop, main, timeout=30)


# --- 8. a line over max_line_bytes -------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_line_over_max_line_bytes_is_a_protocol_error_then_the_stream_goes_on(loop):
    feed = Feed(seed=101, logs=40)
    good = [line for line, _ in feed.logs[:10]]
    huge = (b'{"sport_event_id":"x","version":"zzzzzzzzzzzzzzzzzzzzzz","event_type":'
            b'"markets_updated","payload":"' + b"x" * 200_000 + b'"}\n')

    async def handler(req: Request, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if req.path == "/log" and len(srv.paths("/log")) == 1:
            writer.write(http_head(200, "OK", CHUNKED))
            writer.write(chunk(ndjson(good)))
            for i in range(0, len(huge), 4096):
                writer.write(chunk(huge[i:i + 4096]))
                await writer.drain()
            writer.write(chunk(ndjson([line for line, _ in feed.logs[10:]])))
            await writer.drain()
            await until_closed(reader)
        else:
            await feed.serve(req, reader, writer)

    async def main():
        async with srv:
            client = DatabetClient(srv.url(), heartbeat_interval=1, max_line_bytes=65536)
            seen = record(client)
            async with running(client):
                await wait_until(lambda: client.version == feed.versions[-1] and client.healthy,
                                 timeout=10, what="the stream after the long line")
            errs = [e for e in seen["error"] if isinstance(e, ProtocolError)]
            assert errs and "max_line_bytes" in str(errs[0]), seen["error"]
            logs = srv.paths("/log")
            assert [r.headers["last-version"] for r in logs] == [feed.base, feed.versions[9]]
            assert len(srv.paths("/all")) == 1
            assert seen["log"] == feed.versions  # nothing lost, nothing twice
            # one drop, for the long line; then the stop
            assert seen["disconnected"] == [f"ProtocolError: {errs[0]}", "stopped"]

    srv = RawServer(handler)
    run(loop, main, timeout=30)


# --- 9. lag is a bet stop, never a reconnect ---------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
def test_lag_never_reconnects_a_live_stream_only_silence_does(loop):
    """``markets_updated`` a minute old, flowing for longer than the silence limit (two
    heartbeat intervals): a bet stop on one connection. Fresh ones lift it. Then the
    server falls silent: that, and only that, makes the client reconnect."""
    shift = [-MINUTE_NS]
    feed = Feed(seed=111, logs=0, clock=lambda: time.time_ns() + shift[0])
    phase = ["lag"]

    async def handler(req: Request, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if req.path != "/log":
            await feed.serve(req, reader, writer)
            return
        writer.write(http_head(200, "OK", CHUNKED))
        await writer.drain()
        if len(srv.paths("/log")) > 1:  # after the reconnect: heartbeats only
            shift[0] = 0
            while not reader.at_eof() and not writer.is_closing():
                writer.write(chunk(feed.world.heartbeat() + b"\n"))
                await writer.drain()
                await asyncio.sleep(0.2)
            return
        while phase[0] != "silent" and not reader.at_eof():
            shift[0] = -MINUTE_NS if phase[0] == "lag" else 0
            writer.write(chunk(feed.world.next_line() + b"\n"))  # no heartbeats: logs flow
            await writer.drain()
            await asyncio.sleep(0.05)
        await until_closed(reader)

    async def main():
        now = asyncio.get_running_loop().time
        async with srv:
            client = DatabetClient(srv.url(), heartbeat_interval=1)  # silence limit: 2 s
            seen = record(client)
            async with running(client):
                await wait_until(lambda: client.stats()["lagging"], timeout=5)
                samples = []
                t0 = now()
                while now() - t0 < 2.6:
                    samples.append(client.healthy or client.table.healthy)
                    await asyncio.sleep(0.05)
                assert not any(samples), "bettable while markets_updated lag"
                assert len(srv.paths("/log")) == 1 and seen["disconnected"] == []
                assert any("lag" in r for r in seen["stale"]), seen["stale"]
                assert not any(isinstance(e, StaleFeedError) for e in seen["error"])
                n_logs = len(seen["log"])
                assert n_logs > 20  # the stream kept flowing (and being applied)

                phase[0] = "fresh"
                await wait_until(lambda: client.healthy, timeout=5, what="healthy when fresh")
                assert client.table.healthy and len(srv.paths("/log")) == 1

                phase[0] = "silent"
                await wait_until(lambda: len(srv.paths("/log")) == 2, timeout=6,
                                 what="a reconnect after two silent heartbeat intervals")
                assert any(isinstance(e, StaleFeedError) for e in seen["error"])
                assert len(seen["disconnected"]) == 1
                await wait_until(lambda: client.healthy, timeout=5)
            assert srv.paths("/log")[1].headers["last-version"] == seen["log"][-1]
            assert len(srv.paths("/all")) == 1

    srv = RawServer(handler)
    run(loop, main, timeout=30)

