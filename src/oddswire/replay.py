"""Play a recording back through the live client's own code: backtests, regression tests.

Record with any client's ``record=PATH`` (``oddswire.record``; ``.zst`` for zstd), then::

    client = BrokerClient(url, token=..., symbols=[...])   # configured like the live one
    client.on("quote", on_quote)
    report = await Replayer("feed.owrec", client=client).run()

``Replayer`` runs the client's ``run()`` with the socket taken away: each recorded
connection is handed to the client when it connects, and the recorded payloads go into the
very entry points the network uses. A WebSocket frame enters ``FeedListener.on_ws_frame``
(``replay_frame``: the same Cython and Rust decoders, tables, conflation and callbacks, with
the frame's recorded FIN and last-in-buffer flags), a DATA.BET read enters the HTTP
stream's ``data_received`` (the same splitter, ``OddsTable`` and callbacks), and the
recorded close ends the connection as picows or asyncio would. The same events come out in
the same order, and the tables end in the same state.

Order between the client and the feed: a recording notes (without content) each message
the connection's session sent, and the replay waits for the client to send it before it
plays what the feed sent next (a login answer after the login), up to ``sync_timeout``
seconds (``desyncs`` counts the waits that ran out: the client behaved differently).

Replay never sends anything: logins, subscriptions, acks, pongs, pings and refetches go
nowhere (``request()`` answers ``204 not sent (replay)``); ``unsent_bytes`` tells how much
the client tried to write. Time-driven behaviour follows the replay's clock: with
``speed=None`` (as fast as possible) a silence in the recording passes in no time, so
staleness and keep-alive timers do not fire where they fired live; ``speed=1.0`` plays at
recorded pace (``2.0`` twice as fast), which reproduces them.

``Replayer(path)`` without a client builds one from the recording's header (the feed and
its address, placeholder credentials; broker quotes for any symbol are admitted): enough to
look at tables and events. A client configured like the live one reproduces its behaviour
exactly. A torn tail (the recorder died mid-write) ends the replay cleanly at the last whole
record and is reported (``ReplayReport.torn_tail``, a warning in the log).

Command line: ``oddswire replay FILE [--speed X]`` prints the events counted per name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from oddswire._wire import FeedListener, replay_disconnected, replay_transport, replay_wait_done
from oddswire.client import FeedClient
from oddswire.errors import ConfigError, RecordingError
from oddswire.record import (
    CONNECT,
    DISCONNECT,
    FRAME,
    FRAME_LAST,
    HTTP_CLOSE,
    HTTP_DATA,
    HTTP_OPEN,
    SEND,
    SEND_SESSION,
    STOP,
    Header,
    Reader,
    Record,
)

__all__ = ["ReplayReport", "Replayer", "build_client"]

log = logging.getLogger("oddswire.replay")


@dataclass
class ReplayReport:
    """What a replay did. ``skipped``: payloads the client had already hung up on;
    ``desyncs``: waits for the client's session that ran out; ``torn``: bytes of a torn
    last record left unread (``torn_tail``: the recording ended mid-write)."""

    feed: str
    records: int = 0
    connections: int = 0
    frames: int = 0
    http_reads: int = 0
    bytes: int = 0
    skipped: int = 0
    desyncs: int = 0
    unsent_bytes: int = 0
    torn: int = 0
    torn_tail: bool = False
    elapsed: float = 0.0


class _NoSocket:
    def fileno(self) -> int:
        return -1


class _NullTransport(asyncio.Transport):
    """The transport under a replayed connection: writes go nowhere (counted), a close by
    the client ends the connection the way the event loop would, on the next iteration."""

    def __init__(self, report: ReplayReport, on_close: Callable[[], None]) -> None:
        super().__init__()
        self._report = report
        self._on_close = on_close
        self._closing = False

    def write(self, data: Any) -> None:
        self._report.unsent_bytes += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return _NoSocket() if name == "socket" else default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().call_soon(self._on_close)

    def abort(self) -> None:
        self.close()


class _Link:
    """One replayed connection: a WebSocket (``listener``) or an HTTP stream (``proto``)."""

    def __init__(self) -> None:
        self.down = False
        self.listener: FeedListener | None = None
        self.transport: Any = None
        self.proto: asyncio.Protocol | None = None


class Replayer:
    """Play the recording at ``path`` through ``client`` (see the module docstring).

    ``speed``: None for as fast as possible, else the pace relative to the recording
    (1.0 recorded speed). ``sync_timeout``: how long to wait for the client's session to
    send what it sent live before going on. The header is checked here: a file that is not
    a recording raises ``RecordingError``, another format version
    ``RecordingVersionError``, a client of another feed ``ConfigError``."""

    def __init__(self, path: str | os.PathLike[str], *, client: FeedClient | None = None,
                 speed: float | None = None, sync_timeout: float = 2.0) -> None:
        if speed is not None and not speed > 0:
            raise ConfigError("speed must be positive (None: as fast as possible)")
        self.path = os.fspath(path)
        self._reader = Reader(self.path)
        self.header: Header = self._reader.header
        try:
            if client is None:
                client = build_client(self.header)
            elif self.header.feed != client.FEED:
                raise ConfigError(f"{self.path} records the {self.header.feed} feed, not "
                                  f"{client.FEED}")
        except BaseException:
            self._reader.close()
            raise
        self.client: FeedClient = client
        self.speed = speed
        self.sync_timeout = sync_timeout
        self.report = ReplayReport(self.header.feed)
        self._asked: asyncio.Future[tuple[str, Any, asyncio.Future[Any]]] | None = None
        self._link: _Link | None = None
        self._sends_due = 0
        self._sends_seen = 0
        self._send_waiter: asyncio.Future[None] | None = None

    async def run(self) -> ReplayReport:
        """Replay the whole recording; returns when the client's ``run()`` has ended (a
        fatal error it raises is raised here)."""
        client = self.client
        if client.running:
            raise ConfigError("the client is already running")
        if client.tap.replay is not None:
            raise ConfigError("the client is already being replayed into")
        t0 = time.monotonic()
        client.tap.replay = self
        self._asked = asyncio.get_running_loop().create_future()
        run = asyncio.ensure_future(client.run())
        feed = asyncio.ensure_future(self._feed())
        try:
            await asyncio.wait((run, feed), return_when=asyncio.FIRST_COMPLETED)
            if feed.done():
                feed.result()
                await run
            else:
                feed.cancel()
                await asyncio.gather(feed, return_exceptions=True)
                run.result()
        finally:
            for t in (feed, run):
                if not t.done():
                    t.cancel()
                    await asyncio.gather(t, return_exceptions=True)
            client.tap.replay = None
            self._reader.close()
            self.report.records = self._reader.records
            self.report.torn = self._reader.torn
            self.report.torn_tail = self._reader.torn_tail
            self.report.elapsed = time.monotonic() - t0
        if self.report.torn_tail:
            log.warning("%s: the recording ends with a torn record (%d bytes): the recorder "
                        "stopped mid-write; replayed up to the last whole record",
                        self.path, self.report.torn)
        return self.report

    # --- what the client's transports call (WireTap.replay) ---------------------------------

    async def ws_connect(self, listener: FeedListener) -> Any:
        """The client opens a WebSocket: it gets the next recorded one."""
        return await self._ask("ws", listener)

    async def http_connect(self, proto: asyncio.Protocol, method: str, path: str) -> None:
        """The client opens an HTTP stream: it gets the next recorded one."""
        await self._ask("http", proto)

    def session_sent(self) -> None:
        self._sends_seen += 1
        w = self._send_waiter
        if w is not None and not w.done() and self._sends_seen >= self._sends_due:
            w.set_result(None)

    async def _ask(self, kind: str, endpoint: Any) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        assert self._asked is not None
        if self._asked.done():  # an earlier ask abandoned (a cancel): replace it
            self._asked = asyncio.get_running_loop().create_future()
        self._asked.set_result((kind, endpoint, fut))
        return await fut

    # --- the feeder ---------------------------------------------------------------------

    async def _feed(self) -> None:
        loop = asyncio.get_running_loop()
        first: int | None = None
        start = loop.time()
        report = self.report
        for rec in self._reader:
            if self.speed is not None:
                if first is None:
                    first = rec.ts_ns
                delay = start + (rec.ts_ns - first) / 1e9 / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            kind = rec.kind
            if kind == SEND:
                if rec.flags & SEND_SESSION:
                    self._sends_due += 1
                continue
            if kind == STOP:
                break
            if self._sends_seen < self._sends_due:
                await self._sync()
            link = self._link
            if kind == FRAME:
                if link is None or link.down or link.listener is None:
                    report.skipped += 1
                    continue
                link.listener.replay_frame(rec.payload, rec.flags)
                report.frames += 1
                report.bytes += len(rec.payload)
                if rec.flags & FRAME_LAST:
                    await asyncio.sleep(0)  # one socket read per loop iteration, as live
            elif kind == HTTP_DATA:
                if link is None or link.down or link.proto is None:
                    report.skipped += 1
                    continue
                link.proto.data_received(rec.payload)
                report.http_reads += 1
                report.bytes += len(rec.payload)
                await asyncio.sleep(0)
            elif kind in (CONNECT, HTTP_OPEN):
                await self._connect(rec)
            elif kind in (DISCONNECT, HTTP_CLOSE):
                if link is not None and not link.down:
                    self._lost(link, rec)
            else:
                report.skipped += 1  # a record kind of a later format revision
        self.client.stop()

    async def _sync(self) -> None:
        """Wait until the client's session sent what it had sent live at this point."""
        self._send_waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._send_waiter), self.sync_timeout)
        except TimeoutError:
            self.report.desyncs += 1
            self._sends_seen = self._sends_due
        finally:
            self._send_waiter = None

    async def _connect(self, rec: Record) -> None:
        assert self._asked is not None
        while True:
            kind, endpoint, fut = await self._asked
            self._asked = asyncio.get_running_loop().create_future()
            if not fut.done():  # else the client gave up on that attempt: wait for the next
                break
        want = "ws" if rec.kind == CONNECT else "http"
        if kind != want:
            exc = RecordingError(f"the client opened {kind}, the recording has {want}",
                                 path=self.path)
            fut.set_exception(exc)
            raise exc
        if self._link is not None and not self._link.down:  # never closed: drop it
            self._lost(self._link, None)
        link = self._link = _Link()
        self.report.connections += 1
        if kind == "ws":
            link.listener = endpoint
            link.transport = replay_transport(
                _NullTransport(self.report, lambda: self._lost(link, None)), log,
                asyncio.get_running_loop())
            endpoint.on_ws_connected(link.transport)
            # The client takes the connection up on a later iteration, after the frames
            # that came in the handshake's read (played next), as picows does.
            fut.set_result(link.transport)
        else:
            link.proto = endpoint
            endpoint.connection_made(_NullTransport(self.report, lambda: self._lost(link, None)))
            fut.set_result(None)

    def _lost(self, link: _Link, rec: Record | None) -> None:
        """The connection ends: as recorded (``rec``), or because the client closed it."""
        if link.down:
            return
        link.down = True
        if link.listener is not None:
            info = orjson.loads(rec.payload) if rec is not None and rec.payload else {}
            replay_disconnected(link.transport, info.get("recv"), info.get("sent"),
                                bool(info.get("recv_then_sent")),
                                bool(info.get("pong_timed_out")))
            try:
                link.listener.on_ws_disconnected(link.transport)
            finally:
                replay_wait_done(link.transport)
        elif link.proto is not None:
            text = rec.payload.decode(errors="replace") if rec is not None else ""
            link.proto.connection_lost(ConnectionError(text) if text else None)


def build_client(header: Header) -> FeedClient:
    """A client for a recording's feed, from its header: the recorded address and
    placeholder credentials (nothing is ever sent in a replay)."""
    where = str(header.meta.get("where") or "")
    feed = header.feed
    if feed == "DATA.BET":
        from oddswire.databet import DatabetClient
        return DatabetClient(where if where.startswith("http") else "http://replay.invalid")
    url = where if where.startswith("ws") else "ws://replay.invalid/"
    if feed == "broker":
        from oddswire.broker import BrokerClient
        return BrokerClient(url, token="replay", admit_unsubscribed=True)
    if feed == "BETCORE":
        from oddswire.betcore import BetcoreClient
        return BetcoreClient(url, access_token="replay", partner_client_id=0)
    if feed == "55-tech":
        from oddswire.tech55 import Tech55Client
        return Tech55Client(url, api_key="replay")
    if feed == "SatoriEx":
        from oddswire.satoriex import SatoriexClient
        return SatoriexClient(url, token="replay")
    raise RecordingError(f"a recording of an unknown feed {feed!r}")


async def replay_cli(path: str, speed: float | None, write: Callable[[str], object] = print,
                     ) -> int:
    """``oddswire replay FILE``: replay into a client built from the header, count events."""
    replayer = Replayer(path, speed=speed)
    client = replayer.client
    counts: dict[str, int] = {}
    for name in sorted(client.EVENTS):
        client.on(name, lambda *_, _n=name: counts.__setitem__(_n, counts.get(_n, 0) + 1))
    r = await replayer.run()
    write(f"{path}: {r.feed}, {r.records:,} records, {r.connections} connection(s), "
          f"{r.frames + r.http_reads:,} payloads ({r.bytes / 1e6:,.1f} MB) in {r.elapsed:.2f}s"
          f"{f'; torn tail ({r.torn} bytes)' if r.torn_tail else ''}")
    for name, n in sorted(counts.items()):
        write(f"  {name:<20} {n:>10,}")
    return 0
