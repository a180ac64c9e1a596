"""DATA.BET end to end on loopback: logs/s from the socket through the chunked splitter into
the odds table and a Python callback, and server stamp -> callback latency, for
DatabetClient against peers in the same run.

The server runs in its own process (this file run as a script), so server and client each
have a core. It pre-generates a ``DatabetWorld`` (seed 11, 500 events x 5-40 markets x 2-4
odds; ~70% ``markets_updated`` lines of ~900 B) and N log lines; ``GET /all`` streams the
snapshot (with ``Last-Version``), ``GET /log`` the N lines in chunks of 64 lines, each chunk
stamped with a fresh ``time.time_ns()`` (``timestamp_ns``) as it is written, as fast as the
socket drains, then a heartbeat every 0.2 s. Every library loads ``/all``, then reads
``/log`` and calls the same callback ``on_log`` for every applied log; after exactly N logs
its odds (value, probability, status, is_active, bettable) must equal what the lines say
(computed here with the dict book of ``test_bench_odds.py``). Latency: a paced server
(``--interval 0.002``, 4 logs per tick, ~2k logs/s) and ``on_log`` samples
``time.time_ns() - timestamp_ns`` (both processes read the same CLOCK_REALTIME).

Libraries: oddswire ``DatabetClient`` (uvloop transport, Cython chunked splitter into the
Rust ``OddsTable``, ``log`` callback); aiohttp + ``orjson.loads`` + the dict book (the best
peer); and a raw asyncio protocol that only counts newlines (the ceiling, bounded by the
server too).

Run: ``python -m pytest benchmarks/test_bench_databet_e2e.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import orjson
import pytest
import uvloop

from conftest import record_latency, scale
from oddswire.databet import DatabetClient
from oddswire.sim.databet_world import DatabetWorld
from simproc import drive
from test_bench_odds import DictBook, _dict_state, _table_state

N = scale(100_000)
LATENCY_N = scale(6_000, 1_000)  # ~3 s at ~2k logs/s
LATENCY_SKIP = scale(500)  # connection warm-up, not sampled
PER_CHUNK = 64  # lines per HTTP chunk (~60 KB)
STAMP = b"1111111111111111111"  # a 19-digit placeholder for time.time_ns(), patched per chunk


def world_lines(n: int) -> tuple[list[bytes], str, list[bytes]]:
    """The snapshot lines, their version, and ``n`` log lines (stamps are ``STAMP``)."""
    world = DatabetWorld(seed=11, events=500, markets=(5, 40), odds=(2, 4),
                         clock=lambda: int(STAMP))
    snapshot, version = world.snapshot_lines(), world.version
    return snapshot, version, world.lines(n)


# --- the server process --------------------------------------------------------------------

class Server(asyncio.Protocol):
    """One request: ``/all`` or ``/log`` (anything else: 404), chunked, then heartbeats."""

    def __init__(self, snapshot: list[bytes], version: str, chunks: list[bytes],
                 interval: float) -> None:
        self.snapshot, self.version, self.chunks = snapshot, version, chunks
        self.interval = interval
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None
        self.drained = asyncio.Event()
        self.drained.set()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.task is None and b"\r\n\r\n" in self.buf:
            path = self.buf.split(b" ", 2)[1].split(b"?")[0]
            self.task = asyncio.ensure_future(self.serve(path))

    def pause_writing(self) -> None:
        self.drained.clear()

    def resume_writing(self) -> None:
        self.drained.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.drained.set()
        if self.task is not None:
            self.task.cancel()

    def chunk(self, blob: bytes) -> None:
        assert self.transport is not None
        blob = blob.replace(STAMP, b"%d" % time.time_ns())
        self.transport.write(b"%x\r\n%s\r\n" % (len(blob), blob))

    async def serve(self, path: bytes) -> None:
        t = self.transport
        assert t is not None
        with contextlib.suppress(asyncio.CancelledError):
            if path not in (b"/all", b"/log"):
                t.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                t.close()
                return
            extra = (f"Last-Version: {self.version}\r\nConnection: close\r\n"
                     if path == b"/all" else "")
            t.write(("HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                     f"Transfer-Encoding: chunked\r\n{extra}\r\n").encode())
            if path == b"/all":
                for i in range(0, len(self.snapshot), PER_CHUNK):
                    self.chunk(b"".join(x + b"\n" for x in self.snapshot[i:i + PER_CHUNK]))
                t.write(b"0\r\n\r\n")
                t.close()  # one request per connection
                return
            if self.interval:
                await self.paced()
            else:
                for blob in self.chunks:
                    await self.drained.wait()
                    if t.is_closing():
                        return
                    self.chunk(blob)
            while not t.is_closing():
                self.chunk(b'{"event_type":"heartbeat","timestamp_ns":%s}\n' % STAMP)
                await asyncio.sleep(0.2)

    async def paced(self) -> None:
        lines = [line for blob in self.chunks for line in blob.splitlines(keepends=True)]
        assert self.transport is not None
        for i in range(0, len(lines), 4):
            if self.transport.is_closing():
                return
            self.chunk(b"".join(lines[i:i + 4]))
            await asyncio.sleep(self.interval)


def serve(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--interval", type=float, default=0.0)
    p.add_argument("--lines", type=int, default=N)
    args = p.parse_args(argv)
    snapshot, version, lines = world_lines(args.lines)
    chunks = [b"".join(x + b"\n" for x in lines[i:i + PER_CHUNK])
              for i in range(0, len(lines), PER_CHUNK)]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Server(snapshot, version, chunks, args.interval), "127.0.0.1", 0)
        print(f"LISTENING http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Event().wait()
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main())


def _server(*args: str) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("LISTENING http://127.0.0.1:"), line
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def blast_url() -> Iterator[str]:
    yield from _server("--lines", str(N))


@pytest.fixture(scope="module")
def paced_url() -> Iterator[str]:
    yield from _server("--interval", "0.002", "--lines", str(LATENCY_N))


# --- the same callback for every library ---------------------------------------------------

State = dict[tuple[str, str, str], tuple[Any, ...]]


class Counter:
    """Count logs through ``on_log(timestamp_ns)``; with ``latency`` sample stamp ->
    callback; after exactly ``n`` logs snapshot the library's odds (``snapshot``)."""

    def __init__(self, n: int, latency: bool = False) -> None:
        self.n, self.count = n, 0
        self.samples: list[int] = []
        self.state: State | None = None
        self.snapshot: Callable[[], State] = dict
        self.done = asyncio.get_running_loop().create_future()
        samples, now = self.samples, time.time_ns

        def on_log(ts: int) -> None:
            if latency:
                samples.append(now() - ts)
            self.count += 1
            if self.count == n:
                self.state = self.snapshot()
                self.done.set_result(None)
        self.on_log = on_log


async def oddswire_client(url: str, cb: Counter) -> None:
    client = DatabetClient(url)
    on_log = cb.on_log
    cb.snapshot = lambda: _table_state(client.table)
    client.on("log", lambda applied: on_log(applied.timestamp_ns))
    task = asyncio.ensure_future(client.run())
    await cb.done
    await client.stop()
    await task


async def aiohttp_orjson(url: str, cb: Counter) -> None:
    book, loads, on_log = DictBook(), orjson.loads, cb.on_log
    cb.snapshot = lambda: _dict_state(book)
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/all") as resp:
            version = resp.headers["Last-Version"]
            async for line in resp.content:
                book.apply_log(loads(line))
        async with session.get(url + "/log", headers={"Last-Version": version}) as resp:
            async for line in resp.content:
                log = loads(line)
                if log["event_type"] == "heartbeat":
                    continue
                book.apply_log(log)
                on_log(log["timestamp_ns"])
                if cb.done.done():
                    break


class _NewlineCounter(asyncio.Protocol):
    def __init__(self, cb: Counter) -> None:
        self.cb, self.prev = cb, b""

    def connection_made(self, transport: Any) -> None:
        transport.write(b"GET /log HTTP/1.1\r\nHost: x\r\n\r\n")

    def data_received(self, data: bytes) -> None:
        cb = self.cb
        k = data.count(b"}\n") + (self.prev == b"}" and data[:1] == b"\n")
        self.prev = data[-1:]
        if cb.count < cb.n:
            cb.count = min(cb.n, cb.count + k)
            if cb.count == cb.n:
                cb.done.set_result(None)


async def newline_count(url: str, cb: Counter) -> None:
    host, port = url.removeprefix("http://").split(":")
    transport, _ = await asyncio.get_running_loop().create_connection(
        lambda: _NewlineCounter(cb), host, int(port))
    await cb.done
    transport.abort()


LIBRARIES = [
    ("oddswire DatabetClient", "oddswire", oddswire_client),
    ("aiohttp + orjson.loads + dict book", "peer", aiohttp_orjson),
    ("asyncio protocol, newlines counted, not decoded", "ceiling", newline_count),
]

_EXPECTED: list[State] = []


def expected() -> State:
    """The odds after the snapshot and the N logs (the dict book, not oddswire)."""
    if not _EXPECTED:
        snapshot, _, lines = world_lines(N)
        book = DictBook()
        book.apply_many(snapshot)
        book.apply_many(lines)
        _EXPECTED.append(_dict_state(book))
    return _EXPECTED[0]


def _run(client: Any, url: str, n: int, latency: bool = False) -> Counter:
    return drive(client, url, lambda: Counter(n, latency))


@pytest.mark.parametrize(("library", "kind", "client"), LIBRARIES, ids=[x[0] for x in LIBRARIES])
def test_logs_per_second(bench: Any, blast_url: str, library: str, kind: str,
                         client: Any) -> None:
    want = expected()
    bench(f"DATA.BET /log, loopback end to end ({N:,} logs of ~930 B into the odds table, "
          "then a callback)", library, kind, lambda: _run(client, blast_url, N),
          nbytes=N * 935, units=N, unit="logs",
          result=lambda cb: cb.state if kind != "ceiling" else want,
          expected=want, rounds=3)


@pytest.mark.parametrize(("library", "kind", "client"), LIBRARIES[:2],
                         ids=[x[0] for x in LIBRARIES[:2]])
def test_stamp_to_callback_latency(paced_url: str, library: str, kind: str,
                                   client: Any) -> None:
    cb = _run(client, paced_url, LATENCY_N, latency=True)
    assert len(cb.samples) == LATENCY_N
    record_latency("DATA.BET server stamp -> log callback latency (~2k logs/s paced)",
                   library, cb.samples[LATENCY_SKIP:])


if __name__ == "__main__":  # the server process
    serve(sys.argv[1:])
