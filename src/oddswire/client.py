"""Machinery every feed client shares (DESIGN §5a), written once: the reconnect policy, the
callback registry, the staleness gate, the sequence tracker and the latency/stats counters.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from oddswire.errors import AuthError, CallbackError, ConfigError, ConnectError, OddswireError

__all__ = [
    "CallbackRegistry",
    "FeedClient",
    "LatencyHistogram",
    "ReconnectPolicy",
    "SequenceTracker",
    "StalenessGate",
    "Stats",
]

log = logging.getLogger("oddswire")
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class ReconnectPolicy:
    """Capped exponential backoff with full jitter; the first retry is immediate.

    ``max_attempts=None`` retries forever. ``delays()`` yields the wait before each attempt
    of one outage; a successful connection starts a fresh sequence.
    """

    initial: float = 0.1
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 1.0
    max_attempts: int | None = None
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial or self.factor < 1:
            raise ConfigError("ReconnectPolicy needs 0 <= initial <= maximum and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ConfigError("ReconnectPolicy jitter must be within [0, 1]")

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
        self._tasks: set[asyncio.Task[Any]] = set()
        self.callback_ns = LatencyHistogram()
        self.failures = 0

    def on(self, name: str, fn: F | None = None) -> Any:
        if self._names is not None and name not in self._names:
            raise ConfigError(f"unknown event {name!r}; known: {', '.join(sorted(self._names))}")

        def register(f: F) -> F:
            self._callbacks.setdefault(name, []).append(f)
            return f
        return register if fn is None else register(fn)

    def has(self, name: str) -> bool:
        return name in self._callbacks

    def handlers(self, name: str) -> list[Callable[..., Any]]:
        return list(self._callbacks.get(name, ()))

    def direct(self, name: str) -> Callable[..., Any] | None:
        """What a compiled hot path should call for ``name``: the one plain function when
        exactly one is registered (no per-event dispatch), a fan-out through ``emit``
        otherwise, None when nothing listens. Its exceptions go to ``report``."""
        fns = self._callbacks.get(name)
        if not fns:
            return None
        if len(fns) == 1 and not inspect.iscoroutinefunction(fns[0]):
            return fns[0]
        return lambda *args: self.emit(name, *args)

    def report(self, name: str, exc: BaseException) -> None:
        """A callback for ``name`` raised ``exc`` outside ``emit`` (a compiled caller)."""
        self._failed(name, exc)

    def emit(self, name: str, *args: Any) -> None:
        fns = self._callbacks.get(name)
        if not fns:
            return
        for fn in fns:
            t0 = time.perf_counter_ns()
            try:
                r = fn(*args)
                if inspect.isawaitable(r):
                    self._spawn(name, r)
            except Exception as e:  # a bot's bug must not kill the feed
                self._failed(name, e)
            self.callback_ns.record(time.perf_counter_ns() - t0)

    def _spawn(self, name: str, aw: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                assert exc is not None
                self._failed(name, exc)
        task.add_done_callback(done)

    def _failed(self, name: str, exc: BaseException) -> None:
        self.failures += 1
        err = CallbackError(f"callback for {name!r} raised {type(exc).__name__}: {exc}")
        err.__cause__ = exc
        log.error("%s", err, exc_info=exc)
        if name != "error":
            self.emit("error", err)

    async def drain(self) -> None:
        """Wait for the coroutine callbacks still running."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class StalenessGate:
    """The feed's ``healthy`` flag. ``touch()`` on every message; ``check()`` (from a timer)
    drops the flag when nothing arrived for ``limit`` seconds. ``hold()`` drops it for a
    reconnect or resync; only ``touch()`` after ``release()`` raises it again."""

    def __init__(self, limit: float, on_change: Callable[[bool, str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.healthy = False
        self.last = clock()
        self._clock = clock
        self._held = True
        self._on_change = on_change

    def touch(self) -> None:
        self.last = self._clock()
        if not self.healthy and not self._held:
            self.healthy = True
            self._on_change(True, "fresh data")

    @property
    def held(self) -> bool:
        """Down on purpose (reconnect or resync): silence is expected, not stale."""
        return self._held

    def silent_for(self) -> float:
        return self._clock() - self.last

    def check(self) -> bool:
        """False (and the flag down) when the feed has been silent past its limit."""
        if self.silent_for() > self.limit:
            self.trip(f"no data for {self.silent_for():.1f}s (limit {self.limit:.1f}s)")
            return False
        return True

    def trip(self, reason: str) -> None:
        self._held = True
        if self.healthy:
            self.healthy = False
            self._on_change(False, reason)

    def release(self) -> None:
        """The connection is back: the next ``touch()`` raises the flag."""
        self._held = False
        self.last = self._clock()


class SequenceTracker:
    """The gap engine for one sequence marker. ``key`` maps a marker to something ordered
    (an int for 55-tech ``seq``; DATA.BET versions are fixed-width strings and compare as
    they are). ``observe`` returns "ok", "duplicate", "regress" or "gap"."""

    def __init__(self, contiguous: bool = False) -> None:
        self.contiguous = contiguous
        self.last: Any = None
        self.duplicates = self.regressions = self.gaps = 0

    def observe(self, marker: Any) -> str:
        last, self.last = self.last, marker
        if last is None:
            return "ok"
        if marker == last:
            self.duplicates += 1
            return "duplicate"
        if marker < last:
            self.regressions += 1
            return "regress"
        if self.contiguous and marker != last + 1:
            self.gaps += 1
            return "gap"
        return "ok"

    def reset(self, marker: Any = None) -> None:
        self.last = marker


class LatencyHistogram:
    """Nanosecond latencies in log-spaced buckets (HDR-style, ~3.7% resolution, 1 ns..100 s)."""

    _BUCKETS = 700
    _STEP = math.log(1e11) / (_BUCKETS - 1)
    _EDGES: npt.NDArray[np.float64] = np.exp(np.arange(_BUCKETS) * _STEP)

    def __init__(self) -> None:
        self.counts = [0] * (self._BUCKETS + 1)
        self.max = 0
        self.n = 0

    def record(self, ns: int) -> None:
        i = math.ceil(math.log(ns) / self._STEP) if ns > 1 else 0
        self.counts[min(i, self._BUCKETS)] += 1
        self.n += 1
        if ns > self.max:
            self.max = ns

    def percentile(self, q: float) -> float:
        if self.n == 0:
            return math.nan
        rank = math.ceil(q / 100 * self.n)
        i = int(np.searchsorted(np.cumsum(self.counts), max(rank, 1)))
        return min(float(self._EDGES[min(i, self._BUCKETS - 1)]), float(self.max))

    def summary(self) -> dict[str, float]:
        return {"count": self.n, "p50_us": self.percentile(50) / 1e3,
                "p99_us": self.percentile(99) / 1e3, "max_us": self.max / 1e3}

    def reset(self) -> None:
        self.counts = [0] * (self._BUCKETS + 1)
        self.max = self.n = 0


@dataclass
class Stats:
    """Per-client counters; ``client.stats()`` returns ``snapshot()``."""

    messages: int = 0
    bytes: int = 0
    reconnects: int = 0
    gaps: int = 0
    errors: int = 0
    resyncs: int = 0
    started: float = field(default_factory=time.monotonic)
    receive_to_decoded: LatencyHistogram = field(default_factory=LatencyHistogram)
    receive_to_callback: LatencyHistogram = field(default_factory=LatencyHistogram)
    server_to_receive: LatencyHistogram = field(default_factory=LatencyHistogram)

    def snapshot(self, callbacks: CallbackRegistry | None = None) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        out: dict[str, Any] = {
            "messages": self.messages, "bytes": self.bytes, "reconnects": self.reconnects,
            "gaps": self.gaps, "errors": self.errors, "resyncs": self.resyncs,
            "messages_per_s": self.messages / elapsed, "mb_per_s": self.bytes / elapsed / 1e6,
            "receive_to_decoded": self.receive_to_decoded.summary(),
            "receive_to_callback": self.receive_to_callback.summary(),
            "server_to_receive": self.server_to_receive.summary(),
        }
        if callbacks is not None:
            out["callback"] = callbacks.callback_ns.summary()
            out["callback_errors"] = callbacks.failures
        return out


class FeedClient:
    """The shape every feed client shares (DESIGN §5): callbacks, stats, the staleness gate
    and ``run()``: connect, and reconnect with the policy's backoff until ``stop()``.

    A subclass implements ``_attempt()``: one connection, returning (or raising) when it
    ends. It sets ``_established`` once the connection got far enough (authenticated,
    streaming) that the next outage starts a fresh backoff sequence. Errors it raises are
    reported and retried, except the fatal ones (``_is_fatal``), which end ``run()``.
    """

    EVENTS: frozenset[str] = frozenset()
    FEED = "feed"

    def __init__(self, *, reconnect: ReconnectPolicy | None, stale_after: float) -> None:
        self.callbacks = CallbackRegistry(self.EVENTS)
        self.stats_counters = Stats()
        self.policy = reconnect or ReconnectPolicy()
        self.gate = StalenessGate(stale_after, self._health_changed)
        self._stopping = False
        self._running = False
        self._stale_reason: str | None = None
        self._established = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, name: str, fn: Any = None) -> Any:
        """Register a callback: ``client.on(name, fn)`` or ``@client.on(name)``."""
        return self.callbacks.on(name, fn)

    @property
    def healthy(self) -> bool:
        return self.gate.healthy

    async def run(self) -> None:
        """Connect, and reconnect with backoff, until ``stop()`` (or a fatal error)."""
        if self._running:
            raise ConfigError(f"{type(self).__name__}.run() is already running")
        self._running, self._stopping = True, False
        helpers = [asyncio.ensure_future(c) for c in self._background()]
        delays = self.policy.delays()
        try:
            while not self._stopping:
                self._established = False
                try:
                    await self._attempt()
                except Exception as e:
                    if self._is_fatal(e):
                        raise
                    if not isinstance(e, OddswireError | OSError | TimeoutError):
                        log.exception("%s: unexpected error, reconnecting", self.FEED)
                    if self._stopping:
                        break
                    self._error(e)
                if self._stopping:
                    break
                self.gate.trip(self._stale_reason or "disconnected")
                self._stale_reason = None
                self.stats_counters.reconnects += 1
                if self._established:
                    delays = self.policy.delays()
                delay = next(delays, None)
                if delay is None:
                    raise ConnectError(f"{self.FEED}: reconnect attempts exhausted")
                if delay:
                    await asyncio.sleep(delay)
        finally:
            self._running = False
            for h in helpers:
                h.cancel()
            self._finished()
            await self.callbacks.drain()
            for t in list(self._tasks):
                t.cancel()

    # --- for subclasses ------------------------------------------------------------------

    async def _attempt(self) -> None:
        raise NotImplementedError

    def _background(self) -> list[Awaitable[None]]:
        """Coroutines that run alongside ``run()`` (watchdogs, persisters)."""
        return []

    def _finished(self) -> None:
        """``run()`` is ending: flush what must be flushed."""

    def _is_fatal(self, exc: BaseException) -> bool:
        return isinstance(exc, AuthError | ConfigError)

    def _health_changed(self, healthy: bool, reason: str) -> None:
        if healthy:
            self.callbacks.emit("healthy")
        else:
            log.warning("%s feed stale: %s", self.FEED, reason)
            self.callbacks.emit("stale", reason)

    def _spawn(self, aw: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(aw)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _error(self, exc: BaseException) -> None:
        self.stats_counters.errors += 1
        log.debug("%s: %s", self.FEED, exc)
        self.callbacks.emit("error", exc)
