"""A DATA.BET feed on loopback: a real asyncio HTTP/1.1 server with chunked streams,
optional TLS with required client certificates, and fault injection.

Routes (as the spec's "Usage of HTTP stream API"): ``GET /all`` streams one snapshot line
per sport event with ``Last-Version`` / ``Last-Version-Hex`` headers; ``GET /log`` needs a
``Last-Version`` header (400 without it, 409 when that version is unknown or expired) and
streams every later log, then live ones, with heartbeats every ``?heartbeat_interval=N``
seconds of silence; ``POST /refetch/sport-event/{id}`` appends a ``sport_event_added`` log.

Faults: ``cut_streams()`` cuts every open stream in the middle of a chunk, ``stall(s)``
sends nothing (not even heartbeats) for ``s`` seconds, ``answer_409_next()`` answers the
next ``/log`` with 409, ``inject_malformed()`` puts a line that does not decode into the log.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import random
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from oddswire._aio import cancel_and_wait
from oddswire.sim.databet_world import DatabetWorld

__all__ = ["DatabetSimulator"]


class DatabetSimulator:
    """``async with DatabetSimulator(seed=1, rate=200) as sim: ... sim.url ...``

    ``rate`` is live logs per second (0: none, ``None``: as fast as the server can make
    them); ``limit`` stops generation after that many live logs. ``chunk`` bounds the random
    chunk sizes of every response body.
    """

    def __init__(self, world: DatabetWorld | None = None, *, seed: int = 1, events: int = 50,
                 rate: float | None = 100.0, limit: int | None = None,
                 retained: int = 200_000, chunk: tuple[int, int] = (1, 8192),
                 ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1",
                 port: int = 0, clock: Callable[[], int] = time.time_ns) -> None:
        self.world = world or DatabetWorld(seed=seed, events=events, clock=clock)
        self.rate = rate
        self.limit = limit
        self.retained = retained
        self.chunk = chunk
        self.ssl_context = ssl_context
        self.host, self.port = host, port
        self.rng = random.Random(seed ^ 0x5EED)
        self.versions: list[str] = []
        self.lines: list[bytes] = []
        self._base = self.world.version  # the oldest version /log still resumes from
        self.generated = 0
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._new = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._stall_until = 0.0
        self._answer_409 = 0
        self._cut = 0
        self._paused = False

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> DatabetSimulator:
        self._server = await asyncio.start_server(self._handle, self.host, self.port,
                                                  ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        self._spawn(self._generate())
        return self

    async def stop(self) -> None:
        await cancel_and_wait(list(self._tasks))
        for w in list(self._writers):
            w.transport.abort()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> DatabetSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def version(self) -> str:
        return self.versions[-1] if self.versions else self.world.version

    # --- faults and control --------------------------------------------------------------

    def cut_streams(self) -> None:
        """Cut every open response in the middle of its next chunk."""
        self._cut = len(self._writers) or 1

    def stall(self, seconds: float) -> None:
        self._stall_until = time.monotonic() + seconds

    def answer_409_next(self, times: int = 1) -> None:
        self._answer_409 += times

    def inject_malformed(self) -> bytes:
        ev = next(iter(self.world.events.values()))
        version = self.world._next_version()
        line = (b'{"sport_event_id":"' + ev.sport_event_id.encode() + b'","version":"'
                + version.encode() + b'","event_type":"markets_updated","payload":[{"id":5}]}')
        self._append(line, version)
        return line

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def push(self, n: int = 1) -> None:
        """Generate ``n`` logs now, whatever the rate."""
        for _ in range(n):
            self._append(self.world.next_line(), self.world.version)

    # --- the log -------------------------------------------------------------------------

    def _append(self, line: bytes, version: str) -> None:
        self.lines.append(line)
        self.versions.append(version)
        self.generated += 1
        if len(self.lines) > self.retained * 2:
            # Expire the oldest logs: a /log from before the new base answers 409.
            self._base = self.versions[-self.retained - 1]
            del self.lines[: -self.retained]
            del self.versions[: -self.retained]
        self._new.set()

    async def _generate(self) -> None:
        started, made = time.monotonic(), 0
        while True:
            await asyncio.sleep(0.002 if self.rate is not None else 0)
            if self._paused or self.rate == 0 or (
                    self.limit is not None and self.generated >= self.limit):
                started, made = time.monotonic(), 0
                continue
            due = 64 if self.rate is None else int((time.monotonic() - started) * self.rate) - made
            if self.limit is not None:
                due = min(due, self.limit - self.generated)
            if due > 0:
                self.push(due)
                made += due

    # --- HTTP ----------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {}
            for h in header_lines:
                if h:
                    k, _, v = h.partition(":")
                    headers[k.strip().lower()] = v.strip()
            url = urlsplit(target)
            self.requests.append((method, url.path, headers))
            if method == "GET" and url.path == "/all":
                await self._all(writer)
            elif method == "GET" and url.path == "/log":
                await self._log(writer, headers, parse_qs(url.query))
            elif method == "POST" and url.path.startswith("/refetch/sport-event/"):
                await self._refetch(writer, url.path.rsplit("/", 1)[1])
            else:
                await self._simple(writer, 404, "Not Found", b'{"error":"not found"}')
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, ssl.SSLError,
                asyncio.CancelledError):
            pass  # the handler is the top of its task: a cancel ends it quietly
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.transport.abort()

    async def _simple(self, w: asyncio.StreamWriter, status: int, reason: str,
                      body: bytes) -> None:
        w.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        await w.drain()

    def _head(self, w: asyncio.StreamWriter, extra: str = "") -> None:
        w.write(("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                 f"Transfer-Encoding: chunked\r\nX-Api-Version: 2\r\n{extra}\r\n").encode())

    async def _send(self, w: asyncio.StreamWriter, data: bytes) -> None:
        """``data`` as chunks of random sizes; a pending cut stops in mid-chunk."""
        lo, hi = self.chunk
        i = 0
        while i < len(data):
            n = self.rng.randint(lo, hi)
            part = data[i:i + n]
            if self._cut:
                self._cut -= 1
                w.write(b"%x\r\n" % (len(part) + 10) + part[: len(part) // 2])
                await w.drain()
                raise ConnectionResetError("fault: cut mid-chunk")
            w.write(b"%x\r\n%s\r\n" % (len(part), part))
            i += n
        await w.drain()

    async def _all(self, w: asyncio.StreamWriter) -> None:
        lines = self.world.snapshot_lines()
        version = self.version
        self._head(w, f"Last-Version: {version}\r\n"
                      f"Last-Version-Hex: {version.encode().hex()[:32]}\r\n")
        await self._send(w, b"".join(line + b"\n" for line in lines))
        w.write(b"0\r\n\r\n")
        await w.drain()

    async def _log(self, w: asyncio.StreamWriter, headers: dict[str, str],
                   query: dict[str, list[str]]) -> None:
        version = headers.get("last-version")
        if not version:
            await self._simple(w, 400, "Bad Request", b'{"error":"Last-Version is required"}')
            return
        i = bisect.bisect_left(self.versions, version)
        known = version == self._base or (i < len(self.versions) and self.versions[i] == version)
        if self._answer_409 or not known:
            self._answer_409 = max(0, self._answer_409 - 1)
            await self._simple(w, 409, "Conflict", b'{"error":"version is unavailable"}')
            return
        interval = float(query.get("heartbeat_interval", ["0"])[0] or 0)
        self._head(w)
        await w.drain()
        last_sent = time.monotonic()
        while True:
            if time.monotonic() < self._stall_until:
                await asyncio.sleep(0.01)
                continue
            start = bisect.bisect_right(self.versions, version)
            if start < len(self.lines):
                batch = self.lines[start:start + 512]
                version = self.versions[start + len(batch) - 1]
                await self._send(w, b"".join(line + b"\n" for line in batch))
                last_sent = time.monotonic()
                continue
            if self._cut:
                await self._send(w, self.world.heartbeat() + b"\n")
            if interval and time.monotonic() - last_sent >= interval:
                await self._send(w, self.world.heartbeat() + b"\n")
                last_sent = time.monotonic()
            self._new.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._new.wait(), 0.02)

    async def _refetch(self, w: asyncio.StreamWriter, sport_event_id: str) -> None:
        ev = self.world.events.get(sport_event_id)
        if ev is None:
            await self._simple(w, 404, "Not Found", b'{"error":"unknown sport event"}')
            return
        line = self.world._log(ev, "sport_event_added", self.world.snapshot_payload(ev))
        self._append(line, self.world.version)
        await self._simple(w, 200, "OK", b"{}")
