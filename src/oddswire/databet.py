"""DATA.BET sportsbook replication feed (``shared/specs/databet-feed.md``).

``OddsTable`` (Rust) holds the replicated state: one row per live odd in numpy columns
(``table.odds["value"]``, ``probability`` (NaN when absent), ``status``, ``is_active``, and
the ``event`` / ``market`` slot of each row; free rows hold NaN / -1). ``apply(line)`` takes a
log line as bytes off the wire and returns an ``Applied`` describing it; strings and the
payload on ``Applied`` are decoded only when read, so the hot path builds no dicts.

Rules (the spec's): a snapshot or ``sport_event_added`` replaces the whole sport event; a
market in ``markets_updated`` replaces that market with all its odds; ``bets_rollback``
changes no odds and is returned for the client to deliver; a log for a sport event the
table does not hold changes nothing and is reported with ``Applied.known_event == False``
(refetch that event). An odd is bettable when its fixture status is 0 or 1, its market
status is 0, its own status is 0 and ``is_active``, the event has no bet stop, and
``table.healthy`` is True.

``apply`` is atomic per line: a malformed line raises ``DecodeError`` (with ``field``,
``sport_event_id`` and ``version`` when known) and leaves the table unchanged.
``apply_many(lines)`` returns the ``Applied`` of each line; ``apply_many(lines,
results=False)`` builds none and returns how many lines it applied (for batch callers that
do not read them). Either way the lines before a bad one stay applied; the error carries
``.index`` and ``.applied`` (their results, or with ``results=False`` their count).

Bounded memory: events whose fixture ends (status 3-6) are evicted ``retention_s`` after the
log that ended them (``OddsTable(retention_s=...)``, or ``evict_ended(before_ns)`` by hand);
freed rows are reused. The columns grow by doubling; a growth reallocates them, so take
``table.odds`` views after applying (or use ``table.row(...)``).
"""


from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from oddswire._databet import LogSink
from oddswire._http import Endpoint, LineStream, open_stream, request
from oddswire.client import FeedClient, ReconnectPolicy, RecordPath, SequenceTracker
from oddswire.errors import (
    ConfigError,
    ConnectError,
    DecodeError,
    HTTPStatusError,
    OddswireError,
    ProtocolError,
    ResyncRequired,
    StaleFeedError,
)
from oddswire_native import Applied, OddsTable, SportEvent

__all__ = ["EVENTS", "Applied", "DatabetClient", "OddsTable", "SportEvent", "VersionFile"]

#: Events a DatabetClient emits, and what the callback receives.
EVENTS = frozenset({
    "log",          # (applied) every applied log line (not heartbeats)
    "batch",        # (applied_list) the applied logs of one socket read, after their events
    "markets",      # (applied) markets_updated
    "bet_stop",     # (applied) bet_stop_updated
    "fixture",      # (applied) fixture_updated
    "scores",       # (applied) competitor_scores_updated
    "game_state",   # (applied) game_state_updated
    "extensions",   # (applied) extensions_updated
    "sport_event",  # (applied) sport_event_snapshot / sport_event_added: the event was replaced
    "rollback",     # (applied) bets_rollback: void the bets it names (payload on applied)
    "unknown_event",  # (applied) a log for an event the table does not hold (refetched)
    "heartbeat",    # (timestamp_ns)
    "connected",    # () a response head arrived (/all or /log)
    "disconnected",  # (reason) the stream ended; the client reconnects
    "snapshot",     # (version) GET /all finished loading
    "resync",       # (reason) a full resync from /all started (409, first start)
    "stale",        # (reason) healthy went False: bets must stop
    "healthy",      # () healthy went True again
    "error",        # (exception) decode errors, HTTP errors, callback errors, disconnects
    "slow_consumer",  # (backlog, lag) callbacks cannot keep up (see FeedClient)
})
_KIND_EVENT = {
    "markets_updated": "markets", "bet_stop_updated": "bet_stop", "fixture_updated": "fixture",
    "competitor_scores_updated": "scores", "game_state_updated": "game_state",
    "extensions_updated": "extensions", "sport_event_snapshot": "sport_event",
    "sport_event_added": "sport_event", "bets_rollback": "rollback",
}


class VersionFile:
    """The last applied version on disk, replaced atomically (temp file, fsync, rename)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> str | None:
        try:
            v = self.path.read_text("ascii").strip()
        except FileNotFoundError:
            return None
        return v or None

    def save(self, version: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(version + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


class DatabetClient(FeedClient):
    """DATA.BET HTTP stream client: ``GET /all`` then ``GET /log`` for ever, into ``table``.

    Lines go from the socket through the Cython chunked splitter into ``OddsTable.apply``
    (Rust) with no per-line dict; callbacks get the ``Applied`` result. See ``EVENTS``.
    The per-line loop of ``/log`` is compiled (``oddswire._databet.LogSink``): histograms,
    staleness, the lag rule, versions and the sequence are kept in C, and Python runs only
    for the events someone registered. A bot that prefers one call per socket read (up to
    ~256 KiB, a few hundred logs at full speed) registers ``batch`` instead of ``log``: it
    gets the read's ``Applied`` list after the per-log events, so it can conflate (act on
    the last update per market) and keep the loop free.

    Global bet stop (``healthy`` and ``table.healthy`` down, a ``stale`` event):
    - no log or heartbeat for two heartbeat intervals: the stream is dead, so the client
      also reconnects; ``healthy`` rises after the stream is back and fresh data arrived;
    - a ``markets_updated`` that lags the local clock by more than ``max_lag_s``: the
      stream goes on (a backlog after an outage carries old timestamps and must be applied,
      not re-requested); ``healthy`` rises once a ``markets_updated`` within ``max_lag_s``,
      or a fresh heartbeat, shows the client caught up;
    - a resync from ``/all`` holds it down until done.

    Bad lines: a line that does not decode is reported through ``error`` (a ``DecodeError``
    with its version) and skipped; with ``auto_refetch`` (default) its sport event is
    refetched, so the feed's ``sport_event_added`` repairs it. Logs for events the table
    does not hold (after a restart from ``state_file``) are refetched the same way.

    Bounds: a line over ``max_line_bytes`` is a ``ProtocolError`` (and a reconnect); the
    snapshot fails over when no line arrived for ``read_timeout`` seconds; a table the
    client creates evicts ended events ``retention_s`` after they ended.
    """

    EVENTS = EVENTS
    FEED = "DATA.BET"

    def __init__(self, base_url: str, *, cert: str | None = None, key: str | None = None,
                 ca: str | None = None, ssl_context: ssl.SSLContext | None = None,
                 table: OddsTable | None = None, state_file: str | os.PathLike[str] | None = None,
                 heartbeat_interval: int = 5, max_lag_s: float = 10.0,
                 reconnect: ReconnectPolicy | None = None, auto_refetch: bool = True,
                 persist_interval: float = 0.05, connect_timeout: float = 10.0,
                 read_timeout: float = 30.0, max_line_bytes: int = 64 * 2**20,
                 retention_s: float = 600.0, record: RecordPath = None) -> None:
        if heartbeat_interval < 1:
            raise ConfigError("heartbeat_interval must be >= 1 second")
        if read_timeout <= 0 or max_line_bytes < 1:
            raise ConfigError("read_timeout and max_line_bytes must be positive")
        if base_url.startswith("https") and ssl_context is None:
            ssl_context = ssl.create_default_context(cafile=ca)
            if cert:
                ssl_context.load_cert_chain(cert, key)
        super().__init__(reconnect=reconnect, stale_after=2 * heartbeat_interval, record=record,
                         where=base_url.split("?", 1)[0])
        self.endpoint = Endpoint.parse(base_url, ssl_context, tap=self.tap)
        self.table = table if table is not None else OddsTable(retention_s=retention_s)
        self.heartbeat_interval = heartbeat_interval
        self.max_lag_ns = int(max_lag_s * 1e9)
        self.auto_refetch = auto_refetch
        self.persist_interval = persist_interval
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_line_bytes = max_line_bytes
        self.sequence = SequenceTracker()
        self.state = VersionFile(state_file) if state_file is not None else None
        self.version: str | None = self.state.load() if self.state else None
        self._saved = self.version
        self._stream: LineStream | None = None
        self._log_sink: LogSink | None = None
        self._lagging = False
        self._refetching: set[str] = set()
        self.table.healthy = False

    # --- public API ----------------------------------------------------------------------

    def _flush_metrics(self) -> None:
        if self._log_sink is not None:
            self._log_sink.flush_metrics()

    def _extra_stats(self) -> dict[str, Any]:
        return {"version": self.version, "events": self.table.event_count,
                "odds": len(self.table), "duplicates": self.sequence.duplicates,
                "regressions": self.sequence.regressions, "lagging": self._lagging}

    async def refetch(self, sport_event_id: str) -> int:
        """``POST /refetch/sport-event/{id}``: the feed answers with a ``sport_event_added``
        log for it. Returns the HTTP status."""
        resp = await request(self.endpoint, "POST", f"/refetch/sport-event/{sport_event_id}",
                             timeout=self.connect_timeout)
        if resp.status not in (200, 202, 204):
            raise HTTPStatusError(resp.status, resp.reason, path="/refetch/sport-event/...")
        return resp.status

    # --- FeedClient hooks ----------------------------------------------------------------

    async def _attempt(self) -> None:
        """One connection: the snapshot when there is no version, then the log stream."""
        try:
            if self.version is None:
                await self._snapshot()
            await self._stream_log()
        except ResyncRequired as e:  # back soon: /all is next
            self.stats_counters.resyncs += 1
            self.version = None
            self.callbacks.emit("resync", str(e))
        except HTTPStatusError as e:
            if e.status in (400, 401, 403):
                self._error(e)
            raise

    def _is_fatal(self, exc: BaseException) -> bool:
        return super()._is_fatal(exc) or (
            isinstance(exc, HTTPStatusError) and exc.status in (400, 401, 403))

    def _background(self) -> list[Any]:
        return [self._persist_loop()]

    def _abort(self) -> None:
        if self._stream is not None:
            self._stream.abort()

    def _finished(self) -> None:
        self._flush()

    def _read_socket(self) -> socket.socket | None:
        stream = self._stream
        if stream is None or stream.transport is None:
            return None
        sock: socket.socket | None = stream.transport.get_extra_info("socket")
        return sock

    def _check_liveness(self) -> None:
        if self._stream is not None and not self.gate.held and not self.gate.check():
            self._error(StaleFeedError(
                f"no log or heartbeat for {self.gate.silent_for():.1f}s; reconnecting"))
            self._stale_reason = "heartbeat timeout"
            self._stream.abort()

    # --- the protocol --------------------------------------------------------------------

    async def _snapshot(self) -> None:
        self.gate.trip("resync")
        self.callbacks.emit("resync", "full snapshot from /all")
        self.table.clear()
        self.sequence.reset()
        stream = await open_stream(self.endpoint, "GET", "/all", {}, self._on_snapshot_lines,
                                   self.connect_timeout, on_head=lambda _: self._link_up(),
                                   max_line_bytes=self.max_line_bytes,
                                   progress_timeout=self.read_timeout)
        await self._follow(stream)
        head = await stream.head
        version = head.headers.get("last-version") or self.table.version
        if not version:
            raise ProtocolError("/all ended without a Last-Version header or any snapshot")
        self.version = version
        self.sequence.reset(version)
        self.callbacks.emit("snapshot", version)

    def _on_snapshot_lines(self, lines: list[bytes], t_recv: int) -> None:
        for line in lines:
            try:
                self.table.apply(line)
            except DecodeError as e:
                self._error(e)
                if e.sport_event_id:
                    self._schedule_refetch(e.sport_event_id)
        self.stats_counters.messages += len(lines)
        self.stats_counters.bytes += sum(map(len, lines))

    async def _stream_log(self) -> None:
        assert self.version is not None
        headers = {"Last-Version": self.version}
        sink = self._log_sink = LogSink(self)
        try:
            stream = await open_stream(
                self.endpoint, "GET", f"/log?heartbeat_interval={self.heartbeat_interval}",
                headers, sink.lines, self.connect_timeout, on_head=self._log_head,
                max_line_bytes=self.max_line_bytes, sink=sink)
        except HTTPStatusError as e:
            if e.status == 409:
                raise ResyncRequired(f"/log answered 409 for version {self.version}") from e
            raise
        await self._follow(stream)
        raise ConnectError("/log stream ended")

    async def _follow(self, stream: LineStream) -> None:
        """Until ``stream`` ends; a cancel (``stop()``) closes it."""
        self._stream = stream
        try:
            await stream.done
        finally:
            self._stream = None
            stream.abort()

    def _log_head(self, _: object) -> None:
        self._link_up()
        self.gate.release()

    # The per-line loop of /log is LogSink (compiled); these are the rare cases it hands back.

    def _bad_line(self, e: DecodeError) -> None:
        self._error(e)
        if e.sport_event_id:
            self._schedule_refetch(e.sport_event_id)

    def _unknown_event(self, a: Applied) -> None:
        self.callbacks.emit("unknown_event", a)
        if self.auto_refetch and a.sport_event_id:
            self._schedule_refetch(a.sport_event_id)

    def _lag(self, timestamp_ns: int | None) -> None:
        """The lag rule for a stamp: see ``_lag_state``."""
        if timestamp_ns is None:
            self._lag_state(0)
            return
        now = time.time_ns()
        self.stats_counters.server_to_receive.record_stamp(now, timestamp_ns)
        self._lag_state(now - timestamp_ns)

    def _lag_state(self, lag: int) -> None:
        """Hold the gate while stamps are older than ``max_lag_s`` (a global bet stop, not a
        reconnect: a backlog must be applied, not re-requested)."""
        if lag > self.max_lag_ns:
            if not self._lagging:
                self._lagging = True
                self.gate.hold("lag", f"lag: markets_updated {lag / 1e9:.1f}s behind the "
                                      f"local clock (limit {self.max_lag_ns / 1e9:g}s)")
        elif self._lagging:
            self._lagging = False
            self.gate.clear("lag")

    # --- health, persistence, refetch -----------------------------------------------------

    def _health_changed(self, healthy: bool, reason: str) -> None:
        self.table.healthy = healthy
        super()._health_changed(healthy, reason)

    async def _persist_loop(self) -> None:
        while True:
            await asyncio.sleep(self.persist_interval)
            self._flush()

    def _flush(self) -> None:
        if self.state is not None and self.version and self.version != self._saved:
            try:
                self.state.save(self.version)
                self._saved = self.version
            except OSError as e:
                self._error(e)

    def _schedule_refetch(self, sport_event_id: str) -> None:
        if not self.auto_refetch or sport_event_id in self._refetching:
            return
        self._refetching.add(sport_event_id)

        async def go() -> None:
            try:
                await self.refetch(sport_event_id)
            except (OddswireError, OSError) as e:
                self._error(e)
            finally:
                self._refetching.discard(sport_event_id)
        self._spawn(go())
