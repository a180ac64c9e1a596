"""Machinery every feed client shares (DESIGN §5a), written once: the reconnect policy, the
callback registry, the staleness gate, the sequence tracker and the latency/stats counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import inspect
import logging
import math
import os
import random
import re
import socket
import struct
import termios
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

from oddswire._aio import cancel_and_wait
from oddswire._metrics import LatencyHistogram, StampLatency
from oddswire.errors import (
    AuthError,
    CallbackError,
    ConfigError,
    ConnectError,
    OddswireError,
    ProtocolError,
    RepeatedError,
)

__all__ = [
    "CallbackRegistry",
    "FeedClient",
    "Hydration",
    "LatencyHistogram",
    "Poll",
    "ReconnectPolicy",
    "RecordPath",
    "SequenceTracker",
    "StalenessGate",
    "Stats",
    "StopWaiter",
    "WireTap",
    "describe",
]

log = logging.getLogger("oddswire")
#: ``record=``: the recording to write (``oddswire.record``), or None.
RecordPath = str | os.PathLike[str] | None
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class ReconnectPolicy:
    """Capped exponential backoff with full jitter; the first retry is immediate.

    ``max_attempts=None`` retries forever. ``delays()`` yields the wait before each attempt
    of one outage; a connection that delivered data and stayed up ``reset_after`` seconds
    starts a fresh sequence (one that did not keeps the delays growing).
    """

    initial: float = 0.1
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 1.0
    max_attempts: int | None = None
    reset_after: float = 1.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.factor < 1:
            raise ConfigError("ReconnectPolicy needs 0 <= initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigError("ReconnectPolicy jitter must be within [0, 1]")
        if self.reset_after < 0:
            raise ConfigError("ReconnectPolicy reset_after must be >= 0")

    def delays(self) -> Iterator[float]:
        attempt = 0
        while self.max_attempts is None or attempt < self.max_attempts:
            if attempt == 0:
                yield 0.0
            else:
                base = min(self.maximum, self.initial * self.factor ** (attempt - 1))
                yield base * (1 - self.jitter * self.rng.random())
            attempt += 1


class CallbackRegistry:
    """``on(name, fn)`` / ``@on(name)``; ``emit`` runs sync callbacks inline and coroutine
    functions as tasks. A callback's exception goes to the ``error`` callbacks (and the log),
    never up into the connection."""

    def __init__(self, names: frozenset[str] | None = None) -> None:
        self._names = names
        self._callbacks: dict[str, list[Callable[..., Any]]] = {}
        self._direct: dict[str, Callable[..., Any] | None] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.callback_ns = LatencyHistogram()
        self.failures = 0
        self._held: deque[tuple[str, tuple[Any, ...]]] | None = None
        self._held_limit = 0
        self.held_dropped = 0
        #: Bumped whenever what ``direct()`` returns may change (``on``, ``hold``,
        #: ``release``): a compiled caller that caches ``direct()`` re-reads it then.
        self.generation = 0

    def on(self, name: str, fn: F | None = None) -> Any:
        if self._names is not None and name not in self._names:
            raise ConfigError(f"unknown event {name!r}; known: {', '.join(sorted(self._names))}")

        def register(f: F) -> F:
            self._callbacks.setdefault(name, []).append(f)
            self._direct.pop(name, None)
            self.generation += 1
            return f
        return register if fn is None else register(fn)

    def direct(self, name: str) -> Callable[..., Any] | None:
        """What a hot path should call for ``name``: the one plain function when exactly one
        is registered (no per-event dispatch), a fan-out through ``emit`` otherwise, None
        when nothing listens (cached until the next ``on``). Its exceptions go to
        ``report``."""
        try:
            return self._direct[name]
        except KeyError:
            pass
        fns = self._callbacks.get(name)
        target: Callable[..., Any] | None
        if not fns:
            target = None
        elif self._held is None and len(fns) == 1 and not inspect.iscoroutinefunction(fns[0]):
            target = fns[0]
        else:
            target = lambda *args: self.emit(name, *args)  # noqa: E731
        self._direct[name] = target
        return target

    def report(self, name: str, exc: BaseException) -> None:
        """A callback for ``name`` raised ``exc`` outside ``emit`` (a compiled caller)."""
        self._failed(name, exc)

    def has(self, name: str) -> bool:
        """True when a callback is registered for ``name`` (a hot path can skip building
        the arguments of an event nobody listens to)."""
        return bool(self._callbacks.get(name))

    def listeners(self, name: str) -> tuple[Callable[..., Any], ...]:
        """The callbacks registered for ``name``, in registration order."""
        return tuple(self._callbacks.get(name, ()))

    def emit(self, name: str, *args: Any) -> list[asyncio.Task[Any]] | None:
        """Run the callbacks for ``name``; returns the tasks of the coroutine callbacks it
        started (None when it started none), for a caller that must know when they end.
        While ``hold()`` is in force the event is queued instead (and None returned)."""
        fns = self._callbacks.get(name)
        if not fns:
            return None
        held = self._held
        if held is not None:
            if len(held) < self._held_limit:
                held.append((name, args))
            else:
                self.held_dropped += 1
            return None
        tasks: list[asyncio.Task[Any]] | None = None
        for fn in fns:
            t0 = time.perf_counter_ns()
            try:
                r = fn(*args)
                if inspect.isawaitable(r):
                    task = self.spawn(name, r)
                    if tasks is None:
                        tasks = [task]
                    else:
                        tasks.append(task)
            except Exception as e:  # a bot's bug must not kill the feed
                self._failed(name, e)
            self.callback_ns.record(time.perf_counter_ns() - t0)
        return tasks

    @property
    def holding(self) -> bool:
        return self._held is not None

    def hold(self, limit: int) -> None:
        """Queue every event (with a listener) instead of running callbacks, at most
        ``limit`` of them (later ones are dropped and counted in ``held_dropped``), until
        ``release()``. ``direct()`` returns queueing functions meanwhile (a caller that
        keeps what ``direct()`` returned across a hold is not held)."""
        if self._held is None:
            self._held = deque()
            self._held_limit = limit
            self.held_dropped = 0
            self._direct.clear()
            self.generation += 1

    def release(self) -> tuple[list[tuple[str, tuple[Any, ...]]], int]:
        """End the hold: the queued ``(name, args)`` in order and how many were dropped.
        The caller delivers them (``emit``)."""
        held, self._held = self._held, None
        dropped, self.held_dropped = self.held_dropped, 0
        self._direct.clear()
        self.generation += 1
        return (list(held) if held else []), dropped

    def spawn(self, name: str, aw: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run a callback's awaitable as a task whose failure is reported for ``name``."""
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                assert exc is not None
                self._failed(name, exc)
        task.add_done_callback(done)
        return task

    def _failed(self, name: str, exc: BaseException) -> None:
        self.failures += 1
        err = CallbackError(f"callback for {name!r} raised {type(exc).__name__}: {exc}")
        err.__cause__ = exc
        log.error("%s", err, exc_info=exc)
        if name != "error":
            self.emit("error", err)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the coroutine callbacks still running (at most ``timeout`` seconds,
        then cancel the rest), except the task calling this."""
        me = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not me]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        await cancel_and_wait(late)


class StalenessGate:
    """The feed's ``healthy`` flag.

    ``touch()`` on every message; ``check()`` (from a timer) drops the flag when nothing
    arrived for ``limit`` seconds. ``trip()`` drops it for a reconnect (the link is down, so
    silence is expected: ``held``); only ``touch()`` after ``release()`` raises it again.
    ``hold(key, reason)`` drops it for a condition that is not silence (lag, a resync, a
    maintenance flag) while data keeps flowing; the flag rises with the next ``touch()`` once
    every such condition is cleared with ``clear(key)``.
    """

    def __init__(self, limit: float, on_change: Callable[[bool, str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.healthy = False
        self.last = clock()
        self._clock = clock
        self._down = True
        self._holds: dict[str, str] = {}
        self._on_change = on_change

    def touch(self) -> None:
        self.last = self._clock()
        if not self.healthy and not self._down and not self._holds:
            self.healthy = True
            self._on_change(True, "fresh data")

    @property
    def held(self) -> bool:
        """The link is down on purpose (reconnect): silence is expected, not stale."""
        return self._down

    @property
    def holds(self) -> dict[str, str]:
        """The conditions holding the flag down while data flows (key -> reason)."""
        return dict(self._holds)

    def silent_for(self) -> float:
        return self._clock() - self.last

    def check(self) -> bool:
        """False (and the flag down) when the feed has been silent past its limit."""
        if self.silent_for() > self.limit:
            self.trip(f"no data for {self.silent_for():.1f}s (limit {self.limit:.1f}s)")
            return False
        return True

    def trip(self, reason: str) -> None:
        self._down = True
        self._drop(reason, announce=False)

    def release(self) -> None:
        """The connection is back: the next ``touch()`` raises the flag."""
        self._down = False
        self.last = self._clock()

    def hold(self, key: str, reason: str) -> None:
        """Hold the flag down for ``key`` until ``clear(key)``; a new condition is announced
        through ``on_change`` even when the flag was already down, so the bot sees why."""
        new = key not in self._holds
        self._holds[key] = reason
        if new:
            self._drop(reason, announce=True)

    def clear(self, key: str) -> None:
        self._holds.pop(key, None)

    def _drop(self, reason: str, *, announce: bool) -> None:
        if self.healthy or announce:
            self.healthy = False
            self._on_change(False, reason)


class SequenceTracker:
    """The gap engine for one sequence marker. ``key`` maps a marker to something ordered
    (an int for 55-tech ``seq``; DATA.BET versions are fixed-width strings and compare as
    they are). ``observe`` returns "ok", "duplicate", "regress" or "gap".

    The tracker keeps the high-water mark: a marker at or below it is a duplicate (equal to
    one already seen, as far as the tracker can tell: the mark itself) or a regress, and
    never lowers the mark, so a redelivery of older markers does not make the next ones
    look new. ``reset()`` starts a new sequence (a new subscription, a resync).
    """

    def __init__(self, contiguous: bool = False) -> None:
        self.contiguous = contiguous
        self.last: Any = None
        self.duplicates = self.regressions = self.gaps = 0

    def observe(self, marker: Any) -> str:
        last = self.last
        if last is None:
            self.last = marker
            return "ok"
        if marker == last:
            self.duplicates += 1
            return "duplicate"
        if marker < last:
            self.regressions += 1
            return "regress"
        self.last = marker
        if self.contiguous and marker != last + 1:
            self.gaps += 1
            return "gap"
        return "ok"

    def reset(self, marker: Any = None) -> None:
        self.last = marker


@dataclass
class Stats:
    """Per-client counters; ``client.stats()`` returns ``snapshot()``."""

    messages: int = 0
    bytes: int = 0
    reconnects: int = 0
    gaps: int = 0
    errors: int = 0
    resyncs: int = 0
    slow_consumers: int = 0
    started: float = field(default_factory=time.monotonic)
    receive_to_decoded: LatencyHistogram = field(default_factory=LatencyHistogram)
    receive_to_callback: LatencyHistogram = field(default_factory=LatencyHistogram)
    server_to_receive: StampLatency = field(default_factory=StampLatency)

    def snapshot(self, callbacks: CallbackRegistry | None = None, *,
                 messages: int | None = None, nbytes: int | None = None) -> dict[str, Any]:
        """The counters as a dict; ``messages`` / ``nbytes`` when they are counted
        elsewhere (a compiled listener's C counters)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        messages = self.messages if messages is None else messages
        nbytes = self.bytes if nbytes is None else nbytes
        out: dict[str, Any] = {
            "messages": messages, "bytes": nbytes, "reconnects": self.reconnects,
            "gaps": self.gaps, "errors": self.errors, "resyncs": self.resyncs,
            "slow_consumers": self.slow_consumers,
            "messages_per_s": messages / elapsed, "mb_per_s": nbytes / elapsed / 1e6,
            "receive_to_decoded": self.receive_to_decoded.summary(),
            "receive_to_callback": self.receive_to_callback.summary(),
            "server_to_receive": self.server_to_receive.summary(),
        }
        if callbacks is not None:
            out["callback"] = callbacks.callback_ns.summary()
            out["callback_errors"] = callbacks.failures
        return out


class Hydration:
    """What ``FeedClient.hydrating()`` returns: ``async with`` it around the load of a REST
    snapshot. Every event that arrives meanwhile is queued (the client's own state, such
    as tables and books, keeps being updated); when the outermost block ends they are
    delivered in order, minus those ``covered(name, args)`` says the snapshot already
    holds. No callback runs inside the block. At most ``limit`` events are queued: past it
    events are dropped, an ``error`` reports how many, and the client's fallback polls
    (``poll()``) run at once, as after a reconnect, since something was lost. The events
    are delivered also when the block raises (they happened; the exception goes on)."""

    __slots__ = ("_client", "_covered", "_limit")

    def __init__(self, client: FeedClient, covered: Callable[[str, tuple[Any, ...]], bool] | None,
                 limit: int) -> None:
        self._client = client
        self._covered = covered
        self._limit = limit

    async def __aenter__(self) -> Hydration:
        self._client._hydrate_enter(self._limit)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self._client._hydrate_exit(self._covered)


class Poll:
    """A fallback poll registered with ``FeedClient.poll()``: ``fn`` runs every ``every``
    seconds while ``run()`` runs and right after every reconnect. ``runs`` counts the
    calls, ``cancel()`` ends it. Calls never overlap: a trigger while ``fn`` still runs
    waits for it, then runs it once."""

    def __init__(self, client: FeedClient, fn: Callable[[], Any], every: float) -> None:
        self.fn = fn
        self.every = every
        self.runs = 0
        self.cancelled = False
        self._client = client
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def cancel(self) -> None:
        self.cancelled = True
        self._client._polls.discard(self)
        if self._task is not None:
            self._task.cancel()

    def trigger(self) -> None:
        """Run ``fn`` as soon as possible (when ``run()`` is running)."""
        if self._kick is not None:
            self._kick.set()

    async def _loop(self) -> None:
        self._kick = kick = asyncio.Event()
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(kick.wait(), self.every)
                kick.clear()
                await self._once()
        finally:
            self._kick = None

    async def _once(self) -> None:
        self.runs += 1
        try:
            r = self.fn()
            if inspect.isawaitable(r):
                await r
        except Exception as e:  # a bot's bug must not kill the poll
            self._client.callbacks.report("poll", e)


class _Stopped(Exception):
    """Internal: stop() interrupted an attempt."""


class StopWaiter:
    """What ``FeedClient.stop()`` returns: await it to wait until ``run()`` has ended;
    leaving it unawaited (a sync callback asking for a stop) is fine. Awaited from one of
    the client's own coroutine callbacks, it waits until the connection is closed and the
    state flushed, not for the end of ``run()``: that waits for the callbacks themselves."""

    __slots__ = ("_closed", "_ended", "_own")

    def __init__(self, closed: asyncio.Future[None] | None, ended: asyncio.Future[None] | None,
                 own: set[asyncio.Task[Any]]) -> None:
        self._closed = closed
        self._ended = ended
        self._own = own

    def __await__(self) -> Generator[Any, None, None]:
        fut = self._closed if asyncio.current_task() in self._own else self._ended
        if fut is not None and not fut.done():
            yield from asyncio.shield(fut).__await__()


def describe(exc: BaseException) -> str:
    """An exception as one line with a reason, also for the ones whose ``str`` is empty
    (``TimeoutError()``)."""
    text = str(exc)
    if isinstance(exc, TimeoutError) and not text:
        return "timed out"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_DIGITS = re.compile(r"\d+")


class WireTap:
    """Where a client's transports report what crosses the wire: the recording
    (``record=PATH``, see ``oddswire.record``) and the replay feeding them instead of a
    socket (``oddswire.replay``). The WebSocket layer and the HTTP streams hold one."""

    def __init__(self) -> None:
        self.recording: Any = None  # oddswire.record.Recording
        self.replay: Any = None  # oddswire.replay's source of connections
        self.attempt: asyncio.Task[Any] | None = None  # the running connection's session

    def sent(self) -> None:
        """A message left (in a replay: would have left). Recorded as a ``SEND`` marker
        (no payload: logins carry secrets), flagged when the connection's session sent it,
        which is what a replay waits for before playing the answer."""
        if self.recording is None and self.replay is None:
            return
        session = asyncio.current_task() is self.attempt
        if self.recording is not None:
            from oddswire.record import SEND, SEND_SESSION
            self.recording.write(SEND, b"", SEND_SESSION if session else 0)
        if self.replay is not None and session:
            self.replay.session_sent()

    def write(self, kind: int, payload: bytes = b"", flags: int = 0) -> None:
        """One record, when recording."""
        if self.recording is not None:
            self.recording.write(kind, payload, flags)


def _unread_bytes(sock: socket.socket) -> int:
    """Bytes received by the kernel that the socket's reader has not read yet (FIONREAD)."""
    try:
        buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (OSError, ValueError):  # closed meanwhile
        return 0
    return int(struct.unpack("i", buf)[0])


class FeedClient:
    """The shape every feed client shares (DESIGN §5): callbacks, stats, the staleness gate
    and ``run()``: connect, and reconnect with the policy's backoff until ``stop()``.

    A subclass implements ``_attempt()``: one connection, returning (or raising) when it
    ends; it calls ``_link_up()`` when the transport is open (the ``connected`` event) and
    ``_mark_established()`` once the connection delivered data. The backoff starts afresh
    only after a connection that delivered data and stayed up ``policy.reset_after``
    seconds, so a server that accepts and drops, or answers 503, meets growing delays.
    Errors it raises are reported and retried, except the fatal ones (``_is_fatal``), which
    end ``run()``. ``stop()`` cancels the attempt wherever it is (connecting, handshake,
    streaming, backoff sleep), after ``_abort()`` had a chance to close the link politely.

    The same error repeated on one connection (a flood of bad frames) is reported through
    ``error`` once; when the connection ends, one ``RepeatedError`` carries the count.

    ``record=PATH`` records what the client receives (``oddswire.record``; a path ending
    in ``.zst`` is zstd-compressed) for ``oddswire.replay``; ``where`` (no secrets) names
    the feed's address in the recording's header.

    Slow consumer: ``slow_consumer(backlog, lag)`` fires (once per episode, counted in
    ``stats()["slow_consumers"]``, logged as a warning) when the callbacks cannot keep up:
    for a stream, at least ``slow_backlog_bytes`` waited unread in the socket for
    ``slow_after_s`` seconds in a row (the callbacks take longer than the arrival interval,
    so the kernel's receive queue grows until TCP makes the server wait); ``backlog`` is
    then those bytes and ``lag`` (seconds) how long the callbacks need to get through them
    at the rate they kept meanwhile. (55-tech reliable delivery fires it too: ``backlog``
    is the messages waiting for their ack, ``lag`` None.) What a bot should do: conflate
    (keep the latest update per key and act on it once per read: DATA.BET's ``batch``
    event), move slow work off the loop (``loop.run_in_executor``, a queue drained by a
    task), or never await inside a callback on the hot path; the tables are updated
    before any callback, so skipping work never loses state. The episode ends when the
    backlog falls below ``slow_backlog_bytes``.
    """

    EVENTS: frozenset[str] = frozenset()
    FEED = "feed"
    #: Coroutine callbacks still running when ``run()`` ends get this long, then a cancel.
    DRAIN_TIMEOUT = 1.0
    #: Slow-consumer detection (see the class docstring); settable per instance.
    slow_backlog_bytes = 256 * 1024
    slow_after_s = 1.0
    #: Stamp every message for ``stats()``'s ``receive_to_decoded``, ``receive_to_callback``
    #: and ``server_to_receive`` histograms (two counter reads and three histogram adds per
    #: message, ~10% of the broker's per-quote path). False: those histograms stay empty;
    #: takes effect at the next connection.
    stamp_latency = True

    def __init__(self, *, reconnect: ReconnectPolicy | None, stale_after: float,
                 record: RecordPath = None, where: str = "") -> None:
        self.tap = WireTap()
        if record is not None:
            from oddswire.record import Recording
            self.tap.recording = Recording(record, self.FEED, where=where,
                                           compress=os.fspath(record).endswith(".zst"))
        self.log = logging.getLogger(type(self).__module__)
        self.callbacks = CallbackRegistry(
            self.EVENTS | {"slow_consumer"} if self.EVENTS else self.EVENTS)
        self.stats_counters = Stats()
        self.policy = reconnect or ReconnectPolicy()
        self.gate = StalenessGate(stale_after, self._health_changed)
        self._stopping = False
        self._running = False
        self._stop_event: asyncio.Event | None = None
        self._closed: asyncio.Future[None] | None = None  # link closed, state flushed
        self._stopped: asyncio.Future[None] | None = None  # run() has ended
        self._stale_reason: str | None = None
        self._disconnect_reason: str | None = None
        self._established_at: float | None = None
        self._up = False
        self._repeats: dict[tuple[type[BaseException], str], list[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._polls: set[Poll] = set()
        self._links = 0  # connections opened by this run()
        self._hydrating = 0
        self._slow_since: float | None = None  # the backlog is up since (monotonic)
        self._slow_bytes = 0  # bytes consumed when it rose
        self._slow_fired = False

    def on(self, name: str, fn: Any = None) -> Any:
        """Register a callback: ``client.on(name, fn)`` or ``@client.on(name)``."""
        return self.callbacks.on(name, fn)

    @property
    def healthy(self) -> bool:
        return self.gate.healthy

    def hydrating(self, *, covered: Callable[[str, tuple[Any, ...]], bool] | None = None,
                  limit: int = 100_000) -> Hydration:
        """The hydration gate (DESIGN §5a): ``async with client.hydrating(): await
        load_snapshot()`` queues every event until the block ends, then delivers them in
        order, dropping those ``covered(name, args)`` returns True for (already in the
        snapshot). See ``Hydration``."""
        if limit < 1:
            raise ConfigError("hydrating(limit=...) must be >= 1")
        return Hydration(self, covered, limit)

    def poll(self, fn: Callable[[], Any], every: float = 60.0) -> Poll:
        """The fallback poll: call ``fn`` (sync or async) every ``every`` seconds while
        ``run()`` runs, and right after every reconnect, since events fired while the link
        was down are lost. Its exceptions are reported through ``error``."""
        if not every > 0 or not math.isfinite(every):
            raise ConfigError("poll(every=...) must be a positive number of seconds")
        p = Poll(self, fn, every)
        self._polls.add(p)
        if self._running:
            p._task = asyncio.ensure_future(p._loop())
        return p

    def _hydrate_enter(self, limit: int) -> None:
        self._hydrating += 1
        if self._hydrating == 1:
            self.callbacks.hold(limit)

    def _hydrate_exit(self, covered: Callable[[str, tuple[Any, ...]], bool] | None) -> None:
        self._hydrating -= 1
        if self._hydrating:
            return
        events, dropped = self.callbacks.release()
        for name, args in events:
            if covered is not None:
                try:
                    if covered(name, args):
                        continue
                except Exception as e:
                    self.callbacks.report("hydrating", e)
            self.callbacks.emit(name, *args)
        if dropped:
            self._report(ProtocolError(
                f"{self.FEED}: {dropped} events dropped while hydrating (over the limit of "
                "queued events); running the fallback polls"))
            for p in list(self._polls):
                p.trigger()

    @property
    def running(self) -> bool:
        return self._running

    @property
    def recording(self) -> Any:
        """The ``oddswire.record.Recording`` being written (``record=PATH``), or None."""
        return self.tap.recording

    def stats(self) -> dict[str, Any]:
        """Counters, rates, latency histograms (receive -> decoded -> callback, server stamp
        -> receive), callback time and errors, health; each feed adds its own."""
        self._flush_metrics()
        out = self.stats_counters.snapshot(self.callbacks, **self._volume())
        out["healthy"] = self.healthy
        out.update(self._extra_stats())
        return out

    async def run(self) -> None:
        """Connect, and reconnect with backoff, until ``stop()`` (or a fatal error)."""
        if self._running:
            raise ConfigError(f"{type(self).__name__}.run() is already running")
        loop = asyncio.get_running_loop()
        self._running, self._stopping = True, False
        self._stop_event = asyncio.Event()
        self._closed = loop.create_future()
        self._stopped = loop.create_future()
        if self.tap.recording is not None:
            self.tap.recording.reopen()
            self.tap.recording.on_error = self._error
        helpers = [asyncio.ensure_future(c) for c in (self._watchdog(), *self._background())]
        self._links = 0
        for p in self._polls:
            p._task = asyncio.ensure_future(p._loop())
        delays = self.policy.delays()
        try:
            while not self._stopping:
                self._established_at = None
                self._disconnect_reason = None
                failure: Exception | None = None
                try:
                    await self._until_stopped(self._attempt())
                except _Stopped:
                    break
                except Exception as e:
                    failure = e
                    if self._is_fatal(e):
                        raise
                    if not isinstance(e, OddswireError | OSError | TimeoutError):
                        self.log.exception("%s: unexpected error, reconnecting", self.FEED)
                finally:
                    self._link_down(failure)
                if self._stopping:
                    break
                if failure is not None:  # once per attempt: never folded into repeats
                    self._report(failure)
                self.gate.trip(self._stale_reason or "disconnected")
                self._stale_reason = None
                self.stats_counters.reconnects += 1
                if self._stable():
                    delays = self.policy.delays()
                delay = next(delays, None)
                if delay is None:
                    raise ConnectError(f"{self.FEED}: reconnect attempts exhausted")
                if delay and await self._stop_within(delay):
                    break
        finally:
            self._running = False
            polls = [p._task for p in self._polls if p._task is not None]
            await cancel_and_wait([*helpers, *polls])
            for p in self._polls:
                p._task = None
            self.gate.trip("stopped")
            self._finished()
            if self.tap.recording is not None:
                self.tap.recording.close()
            self._closed.set_result(None)
            await self.callbacks.drain(self.DRAIN_TIMEOUT)
            for t in list(self._tasks):
                t.cancel()
            self._stopped.set_result(None)

    def stop(self) -> StopWaiter:
        """End ``run()`` promptly, from any state and from inside a callback. Await the
        result to wait until ``run()`` has returned (``await client.stop()``)."""
        if self._running and not self._stopping:
            from oddswire.record import STOP
            self.tap.write(STOP)
        self._stopping = True
        if self._stop_event is not None:
            self._stop_event.set()
        self._abort()
        return StopWaiter(self._closed, self._stopped, self.callbacks._tasks)

    # --- for subclasses ------------------------------------------------------------------

    async def _attempt(self) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        """``stop()`` was called: close the link now (politely, if it can)."""

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        """Coroutines that run alongside ``run()`` (persisters, pollers)."""
        return []

    def _check_liveness(self) -> None:
        """Called a few times per ``gate.limit`` seconds: apply the feed's liveness rule."""

    def _read_socket(self) -> socket.socket | None:
        """The socket the feed reads from (for the slow-consumer check), None when down."""
        return None

    def _flush_metrics(self) -> None:
        """Add what compiled code staged to the latency histograms (before they are read)."""

    def _volume(self) -> dict[str, int]:
        """``messages`` / ``nbytes`` for ``stats()`` when counted outside ``Stats``."""
        return {}

    def _extra_stats(self) -> dict[str, Any]:
        """The feed's own entries in ``stats()``."""
        return {}

    def _finished(self) -> None:
        """``run()`` is ending: flush what must be flushed."""

    def _is_fatal(self, exc: BaseException) -> bool:
        return isinstance(exc, AuthError | ConfigError)

    def _link_up(self) -> None:
        """The transport is open: the ``connected`` event (once per attempt)."""
        if not self._up:
            self._up = True
            self._links += 1
            if self._links > 1:  # a reconnect: events fired meanwhile are lost
                for p in list(self._polls):
                    p.trigger()
            self.callbacks.emit("connected")

    def _mark_established(self) -> None:
        """The connection delivered data (see the class docstring on backoff)."""
        if self._established_at is None:
            self._established_at = time.monotonic()

    def _health_changed(self, healthy: bool, reason: str) -> None:
        if healthy:
            self.callbacks.emit("healthy")
        else:  # a stop is not news worth a warning
            self.log.log(logging.INFO if self._stopping else logging.WARNING,
                         "%s feed stale: %s", self.FEED, reason)
            self.callbacks.emit("stale", reason)

    def _spawn(self, aw: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _error(self, exc: BaseException) -> None:
        """Report ``exc`` through ``error``; the same error again on this connection is
        counted, and summarised once when the connection ends."""
        key = (type(exc), _DIGITS.sub("#", str(exc))[:200])
        seen = self._repeats.get(key)
        if seen is not None:
            self.stats_counters.errors += 1
            seen[1] += 1
            return
        self._repeats[key] = [exc, 0]
        self._report(exc)

    def _report(self, exc: BaseException) -> None:
        self.stats_counters.errors += 1
        self.log.debug("%s: %s", self.FEED, describe(exc))
        self.callbacks.emit("error", exc)

    # --- the life cycle ------------------------------------------------------------------

    async def _until_stopped(self, aw: Coroutine[Any, Any, None]) -> None:
        """Run one attempt as a task that ``stop()`` cancels (raising ``_Stopped``)."""
        assert self._stop_event is not None
        task = asyncio.ensure_future(aw)
        self.tap.attempt = task
        stop = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # run() itself was cancelled: take the attempt along
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        finally:
            stop.cancel()
        if task.done():
            return task.result()
        await cancel_and_wait((task,))
        raise _Stopped

    async def _stop_within(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; True when ``stop()`` came first."""
        assert self._stop_event is not None
        try:
            await asyncio.wait_for(self._stop_event.wait(), delay)
        except TimeoutError:
            return False
        return True

    def _stable(self) -> bool:
        return (self._established_at is not None
                and time.monotonic() - self._established_at >= self.policy.reset_after)

    def _link_down(self, failure: BaseException | None) -> None:
        if self._up:
            self._up = False
            if self._stopping:
                reason = "stopped"
            elif self._disconnect_reason:
                reason = self._disconnect_reason
            else:
                reason = describe(failure) if failure is not None else "connection lost"
            self.callbacks.emit("disconnected", reason)
        repeats, self._repeats = self._repeats, {}
        for first, more in repeats.values():
            if more:
                self.callbacks.emit("error", RepeatedError(first, more))

    async def _watchdog(self) -> None:
        step = min(0.25, self.gate.limit / 4, self.slow_after_s / 4)
        while True:
            await asyncio.sleep(step)
            self._check_liveness()
            if self.tap.recording is not None:
                self.tap.recording.writer.tick()
            self._check_backlog()

    def _check_backlog(self) -> None:
        """The slow-consumer rule for streams (see the class docstring)."""
        sock = self._read_socket()
        backlog = _unread_bytes(sock) if sock is not None else 0
        if backlog < self.slow_backlog_bytes:
            self._slow_since, self._slow_fired = None, False
            return
        now = time.monotonic()
        consumed = self._volume().get("nbytes", self.stats_counters.bytes)
        if self._slow_since is None:
            self._slow_since, self._slow_bytes = now, consumed
        elif not self._slow_fired and now - self._slow_since >= self.slow_after_s:
            self._slow_fired = True
            rate = (consumed - self._slow_bytes) / (now - self._slow_since)
            self._slow_consumer(backlog, backlog / rate if rate > 0 else math.inf)

    def _slow_consumer(self, backlog: int, lag: float | None) -> None:
        """Report a slow consumer: counted, logged, ``slow_consumer(backlog, lag)``."""
        self.stats_counters.slow_consumers += 1
        self.log.warning("%s: slow consumer: %d waiting%s; callbacks are slower than the "
                         "feed", self.FEED, backlog,
                         "" if lag is None else f", {lag:.2f}s behind")
        self.callbacks.emit("slow_consumer", backlog, lag)
