"""Direct unit tests of the machinery every feed client shares (oddswire.client): the
reconnect policy, the staleness gate, the sequence tracker, the latency histogram, the
callback registry and the FeedClient life cycle, the last one through a fake client whose
``_attempt`` is scripted. No sockets; a hand-advanced clock wherever time matters; both
event loops wherever a loop is needed, each run bounded by a timeout."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
import types
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import oddswire.client as client_module
from netutil import LOOPS, run
from oddswire.client import (
    CallbackRegistry,
    FeedClient,
    LatencyHistogram,
    ReconnectPolicy,
    SequenceTracker,
    StalenessGate,
    describe,
)
from oddswire.errors import (
    AuthError,
    CallbackError,
    CertificateError,
    ConfigError,
    ConnectError,
    ProtocolError,
    RepeatedError,
)
from oddswire.sim.databet_world import encode_version


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def bounded(loop: str, main: Callable[[], Awaitable[Any]], timeout: float = 10) -> Any:
    return run(loop, main, timeout)


# --- ReconnectPolicy ----------------------------------------------------------------------


def test_policy_first_delay_is_zero() -> None:
    for jitter in (0.0, 0.5, 1.0):
        assert next(ReconnectPolicy(jitter=jitter).delays()) == 0.0


def test_policy_capped_exponential_growth_without_jitter() -> None:
    p = ReconnectPolicy(initial=0.5, maximum=5.0, factor=2.0, jitter=0)
    got = list(itertools.islice(p.delays(), 9))
    assert got == pytest.approx([0.0, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0])
    p3 = ReconnectPolicy(initial=0.1, maximum=30.0, factor=3.0, jitter=0)
    got = list(itertools.islice(p3.delays(), 8))
    assert got == pytest.approx([0.0, 0.1, 0.3, 0.9, 2.7, 8.1, 24.3, 30.0])
    # factor 1: a constant delay after the immediate retry
    flat = ReconnectPolicy(initial=2.0, maximum=2.0, factor=1.0, jitter=0)
    assert list(itertools.islice(flat.delays(), 4)) == [0.0, 2.0, 2.0, 2.0]


def test_policy_defaults_cap_at_thirty_seconds() -> None:
    got = list(itertools.islice(ReconnectPolicy(jitter=0).delays(), 40))
    assert got[:3] == pytest.approx([0.0, 0.1, 0.2])
    assert max(got) == 30.0 and got[-1] == 30.0
    assert got == sorted(got)


@pytest.mark.parametrize("jitter", [0.25, 0.5, 1.0])
def test_policy_jitter_stays_within_bounds(jitter: float) -> None:
    p = ReconnectPolicy(initial=0.1, maximum=10.0, factor=2.0, jitter=jitter,
                        rng=random.Random(1234))
    got = list(itertools.islice(p.delays(), 400))
    assert got[0] == 0.0
    below = 0
    for attempt, d in enumerate(got[1:], start=1):
        base = min(10.0, 0.1 * 2.0 ** (attempt - 1))
        assert base * (1 - jitter) <= d <= base, (attempt, d)
        below += d < base
    assert below > 300  # the jitter is applied, not just allowed


def test_policy_jitter_is_reproducible_with_a_seeded_rng() -> None:
    def take(seed: int) -> list[float]:
        p = ReconnectPolicy(jitter=1.0, rng=random.Random(seed))
        return list(itertools.islice(p.delays(), 30))
    assert take(7) == take(7)
    assert take(7) != take(8)


def test_policy_max_attempts_ends_the_sequence() -> None:
    p = ReconnectPolicy(initial=1.0, maximum=8.0, jitter=0, max_attempts=4)
    assert list(p.delays()) == [0.0, 1.0, 2.0, 4.0]
    assert list(ReconnectPolicy(max_attempts=1).delays()) == [0.0]
    assert list(ReconnectPolicy(max_attempts=0).delays()) == []
    # each delays() is a fresh sequence (an outage of its own)
    assert list(p.delays()) == [0.0, 1.0, 2.0, 4.0]
    # None: forever
    assert len(list(itertools.islice(ReconnectPolicy().delays(), 1000))) == 1000


@pytest.mark.parametrize("kwargs", [
    {"initial": -0.1},
    {"initial": 5.0, "maximum": 1.0},
    {"maximum": -1.0},
    {"factor": 0.5},
    {"factor": 0.0},
    {"jitter": -0.01},
    {"jitter": 1.01},
    {"reset_after": -1.0},
    {"reset_after": -1e-9},
])
def test_policy_bad_arguments_raise_config_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        ReconnectPolicy(**kwargs)
    with pytest.raises(ValueError):  # ConfigError is a ValueError too
        ReconnectPolicy(**kwargs)


def test_policy_edge_arguments_are_accepted() -> None:
    ReconnectPolicy(initial=0.0, maximum=0.0)
    ReconnectPolicy(jitter=0.0)
    ReconnectPolicy(jitter=1.0)
    ReconnectPolicy(factor=1.0)
    p = ReconnectPolicy(reset_after=0.0)
    assert p.reset_after == 0.0
    assert ReconnectPolicy().reset_after == 1.0


# --- StalenessGate ------------------------------------------------------------------------


class Gate:
    """A gate on a fake clock that records every on_change."""

    def __init__(self, limit: float = 5.0) -> None:
        self.clock = FakeClock()
        self.changes: list[tuple[bool, str]] = []
        self.gate = StalenessGate(limit, lambda up, why: self.changes.append((up, why)),
                                  clock=self.clock)

    def healthy(self) -> Gate:
        self.gate.release()
        self.gate.touch()
        assert self.gate.healthy
        self.changes.clear()
        return self


def test_gate_starts_unhealthy_and_held() -> None:
    g = Gate()
    assert not g.gate.healthy
    assert g.gate.held
    assert g.gate.holds == {}
    g.gate.touch()  # data before release() does not raise it
    assert not g.gate.healthy
    assert g.changes == []


def test_gate_release_then_touch_raises_it_once() -> None:
    g = Gate()
    g.gate.release()
    assert not g.gate.held
    assert not g.gate.healthy and g.changes == []  # release alone is not data
    g.gate.touch()
    assert g.gate.healthy
    assert g.changes == [(True, "fresh data")]
    g.gate.touch()
    g.clock.advance(1)
    g.gate.touch()
    assert g.changes == [(True, "fresh data")]


def test_gate_check_trips_past_the_limit_not_before() -> None:
    g = Gate(limit=5.0).healthy()
    g.clock.advance(5.0)
    assert g.gate.silent_for() == 5.0
    assert g.gate.check() is True  # at the limit: not yet
    assert g.gate.healthy and g.changes == []
    g.clock.advance(0.001)
    assert g.gate.check() is False
    assert not g.gate.healthy
    assert len(g.changes) == 1
    up, reason = g.changes[0]
    assert up is False and "no data for 5.0s" in reason and "limit 5.0s" in reason
    assert g.gate.check() is False  # still silent: no second announcement
    assert len(g.changes) == 1


def test_gate_touch_resets_the_silence() -> None:
    g = Gate(limit=5.0).healthy()
    for _ in range(10):
        g.clock.advance(4.0)
        g.gate.touch()
        assert g.gate.check() is True
    assert g.gate.healthy and g.changes == []


def test_gate_trip_fires_only_while_healthy() -> None:
    g = Gate()
    g.gate.trip("disconnected")  # already unhealthy: nothing to announce
    assert g.changes == []
    g.healthy()
    g.gate.trip("disconnected")
    assert not g.gate.healthy
    assert g.changes == [(False, "disconnected")]
    g.gate.trip("again")
    g.gate.check()
    assert g.changes == [(False, "disconnected")]


def test_gate_held_semantics() -> None:
    g = Gate(limit=5.0).healthy()
    assert not g.gate.held
    g.gate.trip("reconnecting")
    assert g.gate.held
    g.gate.touch()  # held: data does not raise it until release()
    assert not g.gate.healthy
    g.gate.release()
    assert not g.gate.held
    g.gate.touch()
    assert g.gate.healthy
    # a stale check holds it too: the next touch needs a release first
    g.clock.advance(6)
    assert g.gate.check() is False
    assert g.gate.held
    g.gate.touch()
    assert not g.gate.healthy
    g.gate.release()
    g.gate.touch()
    assert g.gate.healthy
    assert [up for up, _ in g.changes] == [False, True, False, True]


def test_gate_release_restarts_the_silence_clock() -> None:
    g = Gate(limit=5.0)
    g.clock.advance(100)
    g.gate.release()
    assert g.gate.silent_for() == 0.0
    assert g.gate.check() is True


def test_gate_holds() -> None:
    g = Gate().healthy()
    g.gate.hold("lag", "lag: 5.0s behind")
    assert not g.gate.healthy
    assert g.changes == [(False, "lag: 5.0s behind")]
    assert g.gate.holds == {"lag": "lag: 5.0s behind"}
    g.gate.touch()  # data keeps flowing; the flag stays down
    assert not g.gate.healthy
    # the same key again: not announced again, the reason is updated
    g.gate.hold("lag", "lag: 6.0s behind")
    assert g.changes == [(False, "lag: 5.0s behind")]
    assert g.gate.holds == {"lag": "lag: 6.0s behind"}
    # a new condition while already unhealthy is announced, so the bot sees why
    g.gate.hold("maintenance", "maintenance")
    assert g.changes[-1] == (False, "maintenance") and len(g.changes) == 2
    assert g.gate.holds == {"lag": "lag: 6.0s behind", "maintenance": "maintenance"}
    g.gate.clear("lag")
    g.gate.touch()  # one hold remains
    assert not g.gate.healthy
    assert g.gate.holds == {"maintenance": "maintenance"}
    g.gate.clear("maintenance")
    assert not g.gate.healthy and len(g.changes) == 2  # clear alone is not data
    assert g.gate.holds == {}
    g.gate.touch()
    assert g.gate.healthy
    assert g.changes[-1] == (True, "fresh data") and len(g.changes) == 3


def test_gate_hold_while_held_and_clear_of_an_unknown_key() -> None:
    g = Gate()
    g.gate.hold("resync", "resync in progress")  # unhealthy and held: still announced
    assert g.changes == [(False, "resync in progress")]
    g.gate.release()
    g.gate.touch()
    assert not g.gate.healthy
    g.gate.clear("nothing")  # no-op
    assert g.gate.holds == {"resync": "resync in progress"}
    g.gate.clear("resync")
    g.gate.clear("resync")
    g.gate.touch()
    assert g.gate.healthy


def test_gate_holds_is_a_copy() -> None:
    g = Gate()
    g.gate.hold("lag", "lag")
    g.gate.holds.clear()
    assert g.gate.holds == {"lag": "lag"}


# --- SequenceTracker ----------------------------------------------------------------------


def test_tracker_contiguous_verdicts_and_counters() -> None:
    t = SequenceTracker(contiguous=True)
    got = [t.observe(m) for m in (1, 2, 3, 3, 2, 5, 6, 6, 10)]
    assert got == ["ok", "ok", "ok", "duplicate", "regress", "gap", "ok", "duplicate", "gap"]
    assert (t.duplicates, t.regressions, t.gaps) == (2, 1, 2)
    assert t.last == 10


def test_tracker_non_contiguous_never_reports_a_gap() -> None:
    t = SequenceTracker()
    assert not t.contiguous
    got = [t.observe(m) for m in (10, 11, 50, 50, 20, 1000)]
    assert got == ["ok", "ok", "ok", "duplicate", "regress", "ok"]
    assert (t.duplicates, t.regressions, t.gaps) == (1, 1, 0)


@pytest.mark.parametrize("contiguous", [True, False])
def test_tracker_keeps_the_high_water_mark(contiguous: bool) -> None:
    t = SequenceTracker(contiguous=contiguous)
    assert [t.observe(m) for m in (1, 2, 3, 4, 5)] == ["ok"] * 5
    assert [t.observe(m) for m in (3, 4, 5)] == ["regress", "regress", "duplicate"]
    assert t.last == 5
    assert t.observe(6) == "ok"  # not a gap: the mark stayed at 5
    assert t.observe(7) == "ok"
    assert (t.duplicates, t.regressions, t.gaps) == (1, 2, 0)


def test_tracker_string_markers() -> None:
    """DATA.BET versions: fixed-width strings that compare as they are."""
    v = [encode_version(n) for n in (1, 61, 62, 3843, 3844, 10**12)]
    assert v == sorted(v) and len({len(x) for x in v}) == 1
    t = SequenceTracker()
    assert [t.observe(x) for x in v] == ["ok"] * len(v)
    assert t.observe(v[-1]) == "duplicate"
    assert t.observe(v[2]) == "regress"
    assert t.observe(encode_version(10**12 + 1)) == "ok"
    assert t.last == encode_version(10**12 + 1)
    # and hand-written ones
    t = SequenceTracker()
    assert [t.observe(x) for x in ("0009", "0010", "0010", "0002", "0100")] == \
        ["ok", "ok", "duplicate", "regress", "ok"]


def test_tracker_reset() -> None:
    t = SequenceTracker(contiguous=True)
    for m in (1, 2, 3):
        t.observe(m)
    t.reset()
    assert t.last is None
    assert t.observe(1) == "ok"  # a new sequence: anything is first
    assert t.observe(2) == "ok"
    t.reset(100)  # a resync at a known position
    assert t.last == 100
    assert t.observe(100) == "duplicate"
    assert t.observe(99) == "regress"
    assert t.observe(101) == "ok"
    assert t.observe(103) == "gap"
    s = SequenceTracker()
    s.reset(encode_version(500))
    assert s.observe(encode_version(499)) == "regress"
    assert s.observe(encode_version(501)) == "ok"


# --- LatencyHistogram ---------------------------------------------------------------------

RESOLUTION = 0.04  # one log-spaced bucket is ~3.7% wide


def oracle(samples: list[int], q: float) -> float:
    """The sample of rank ceil(q/100 * n): what the histogram approximates from above."""
    return float(sorted(samples)[max(math.ceil(q / 100 * len(samples)), 1) - 1])


@pytest.mark.parametrize("name", ["uniform", "exponential", "lognormal", "bimodal"])
def test_histogram_percentiles_within_the_bucket_resolution(name: str) -> None:
    rng = random.Random(name)
    n = 20_000
    if name == "uniform":
        samples = [rng.randint(1_000, 1_000_000) for _ in range(n)]
    elif name == "exponential":
        samples = [max(1, int(rng.expovariate(1 / 50_000))) for _ in range(n)]
    elif name == "lognormal":
        samples = [max(1, int(rng.lognormvariate(10, 2))) for _ in range(n)]
    else:
        samples = [rng.choice((rng.randint(900, 1_100), rng.randint(9_000_000, 11_000_000)))
                   for _ in range(n)]
    h = LatencyHistogram()
    for s in samples:
        h.record(s)
    assert h.n == n
    assert h.max == max(samples)  # exact, not bucketed
    for q in (1, 10, 25, 50, 75, 90, 99, 99.9):
        want = oracle(samples, q)
        got = h.percentile(q)
        assert got == pytest.approx(want, rel=RESOLUTION), (q, got, want)
    assert h.percentile(100) == pytest.approx(max(samples), rel=RESOLUTION)
    assert h.percentile(100) <= h.max


def test_histogram_known_values() -> None:
    h = LatencyHistogram()
    for ns in range(1, 100_001):  # 1..100000 ns, once each
        h.record(ns)
    assert h.percentile(50) == pytest.approx(50_000, rel=RESOLUTION)
    assert h.percentile(99) == pytest.approx(99_000, rel=RESOLUTION)
    assert h.percentile(90) == pytest.approx(90_000, rel=RESOLUTION)
    assert h.max == 100_000
    # one value: every percentile is that value, exactly (the max caps the bucket edge)
    one = LatencyHistogram()
    for _ in range(100):
        one.record(12_345)
    assert one.percentile(1) == one.percentile(50) == one.percentile(100) == 12_345
    assert one.max == 12_345


def test_histogram_extremes() -> None:
    h = LatencyHistogram()
    h.record(0)
    h.record(1)
    assert h.n == 2 and h.max == 1
    assert h.percentile(50) <= 1
    big = 500 * 10**9  # beyond the 100 s range: counted, max still exact
    h.record(big)
    assert h.n == 3 and h.max == big
    assert h.percentile(100) <= big


def test_histogram_empty_and_reset() -> None:
    h = LatencyHistogram()
    assert math.isnan(h.percentile(50))
    s = h.summary()
    assert s["count"] == 0 and s["max_us"] == 0
    assert math.isnan(s["p50_us"]) and math.isnan(s["p99_us"])
    for ns in (1_000, 2_000, 3_000):
        h.record(ns)
    h.reset()
    assert h.n == 0 and h.max == 0
    assert math.isnan(h.percentile(99))
    h.record(7_000)
    assert h.n == 1 and h.percentile(50) == 7_000


def test_histogram_summary() -> None:
    h = LatencyHistogram()
    for ns in range(1_000, 101_000, 1_000):  # 1 us .. 100 us
        h.record(ns)
    s = h.summary()
    assert set(s) == {"count", "p50_us", "p99_us", "p999_us", "max_us"}
    assert s["count"] == 100
    assert s["max_us"] == 100.0
    assert s["p50_us"] == pytest.approx(50.0, rel=RESOLUTION)
    assert s["p99_us"] == pytest.approx(99.0, rel=RESOLUTION)


# --- CallbackRegistry ---------------------------------------------------------------------


def test_registry_unknown_event_is_a_config_error() -> None:
    r = CallbackRegistry(frozenset({"tick", "error"}))
    with pytest.raises(ConfigError, match="unknown event 'tock'"):
        r.on("tock", print)
    with pytest.raises(ConfigError):
        r.on("tock")
    CallbackRegistry().on("anything", print)  # no names: anything goes


def test_registry_sync_callbacks_run_inline_in_order() -> None:
    r = CallbackRegistry(frozenset({"tick", "error"}))
    seen: list[Any] = []
    assert r.on("tick", lambda *a: seen.append(("first", a))) is not None

    @r.on("tick")
    def second(*a: Any) -> None:
        seen.append(("second", a))

    assert callable(second)  # the decorator returns the function
    r.emit("tick", 1, "x")
    assert seen == [("first", (1, "x")), ("second", (1, "x"))]
    r.emit("error", None)  # nothing listens: nothing happens
    assert r.callback_ns.n == 2


def test_registry_sync_exception_goes_to_error_with_its_cause() -> None:
    r = CallbackRegistry(frozenset({"tick", "error"}))
    boom = KeyError("boom")
    errors: list[BaseException] = []
    after: list[int] = []

    def bad(x: int) -> None:
        raise boom
    r.on("tick", bad)
    r.on("tick", after.append)
    r.on("error", errors.append)
    r.emit("tick", 5)  # does not raise
    assert after == [5]  # the next callback still ran
    assert len(errors) == 1
    assert isinstance(errors[0], CallbackError)
    assert errors[0].__cause__ is boom
    assert "'tick'" in str(errors[0]) and "KeyError" in str(errors[0])
    assert r.failures == 1
    # report(): the same path for a compiled caller
    other = RuntimeError("from C")
    r.report("tick", other)
    assert errors[-1].__cause__ is other and r.failures == 2


def test_registry_a_failing_error_handler_does_not_recurse() -> None:
    r = CallbackRegistry(frozenset({"tick", "error"}))
    calls: list[BaseException] = []

    def bad_handler(e: BaseException) -> None:
        calls.append(e)
        raise ValueError("the handler is broken too")
    r.on("error", bad_handler)
    r.on("tick", lambda: 1 / 0)
    r.emit("tick")
    assert len(calls) == 1
    assert r.failures == 2  # the callback and the handler; no loop
    r.emit("error", RuntimeError("direct"))
    assert len(calls) == 2 and r.failures == 3


@pytest.mark.parametrize("loop", LOOPS)
def test_registry_coroutine_callbacks_run_as_tasks(loop: str) -> None:
    async def main() -> None:
        r = CallbackRegistry(frozenset({"tick", "error"}))
        seen: list[Any] = []
        errors: list[BaseException] = []
        boom = LookupError("async boom")

        async def good(x: int) -> None:
            seen.append(("start", x))
            await asyncio.sleep(0)
            seen.append(("end", x))

        async def bad(x: int) -> None:
            raise boom
        r.on("tick", good)
        r.on("tick", bad)
        r.on("error", errors.append)
        r.emit("tick", 1)
        assert seen == []  # scheduled, not run inline
        await r.drain(5)
        assert seen == [("start", 1), ("end", 1)]
        assert len(errors) == 1 and isinstance(errors[0], CallbackError)
        assert errors[0].__cause__ is boom
        assert r.failures == 1
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_registry_a_failing_coroutine_error_handler_does_not_recurse(loop: str) -> None:
    async def main() -> None:
        r = CallbackRegistry(frozenset({"tick", "error"}))
        calls: list[BaseException] = []

        async def bad_handler(e: BaseException) -> None:
            calls.append(e)
            raise ValueError("broken handler")

        async def bad(*_: Any) -> None:
            raise KeyError("k")
        r.on("error", bad_handler)
        r.on("tick", bad)
        r.emit("tick")
        for _ in range(20):
            await asyncio.sleep(0)
        await r.drain(5)
        assert len(calls) == 1 and isinstance(calls[0], CallbackError)
        assert r.failures == 2
    bounded(loop, main)


def test_registry_direct() -> None:
    r = CallbackRegistry()
    assert r.direct("tick") is None
    seen: list[Any] = []

    def one(x: int) -> None:
        seen.append(("one", x))
    r.on("tick", one)
    assert r.direct("tick") is one  # no dispatch in between
    r.on("tick", lambda x: seen.append(("two", x)))
    fan = r.direct("tick")
    assert fan is not None and fan is not one
    fan(3)
    assert seen == [("one", 3), ("two", 3)]


@pytest.mark.parametrize("loop", LOOPS)
def test_registry_direct_with_a_coroutine_function_fans_out(loop: str) -> None:
    async def main() -> None:
        r = CallbackRegistry()
        seen: list[int] = []

        async def coro(x: int) -> None:
            seen.append(x)
        r.on("tick", coro)
        fn = r.direct("tick")
        assert fn is not None and fn is not coro
        fn(9)
        await r.drain(5)
        assert seen == [9]
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_registry_drain_cancels_what_outlives_the_timeout(loop: str) -> None:
    async def main() -> None:
        r = CallbackRegistry()
        state: dict[str, Any] = {"cancelled": False, "quick": False}

        async def forever() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                state["cancelled"] = True
                raise

        async def quick() -> None:
            await asyncio.sleep(0)
            state["quick"] = True
        r.on("tick", forever)
        r.on("tick", quick)
        r.emit("tick")
        t0 = asyncio.get_running_loop().time()
        await r.drain(0.05)
        elapsed = asyncio.get_running_loop().time() - t0
        assert state == {"cancelled": True, "quick": True}
        assert elapsed < 2
        assert r.failures == 0  # a cancel is not a callback failure
        await r.drain(0.05)  # nothing left: returns at once
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_registry_drain_does_not_wait_for_the_calling_task(loop: str) -> None:
    async def main() -> None:
        r = CallbackRegistry()
        done: list[str] = []
        release = asyncio.Event()

        async def other() -> None:
            await release.wait()
            done.append("other")

        async def drainer() -> None:
            release.set()
            await r.drain(None)  # would wait for itself forever
            done.append("drainer")
        r.on("tick", other)
        r.on("tick", drainer)
        r.emit("tick")
        await r.drain(None)
        assert sorted(done) == ["drainer", "other"]
    bounded(loop, main, timeout=5)


# --- FeedClient life cycle ----------------------------------------------------------------

FAST = ReconnectPolicy(initial=1e-4, maximum=1e-3, factor=2.0, jitter=0)
Step = Callable[["Fake"], Awaitable[None]]


class Fake(FeedClient):
    """A feed client whose connection attempts are scripted coroutines."""

    EVENTS = frozenset({"connected", "disconnected", "error", "stale", "healthy"})
    FEED = "fake"

    def __init__(self, *steps: Step, policy: ReconnectPolicy | None = None,
                 default: Step | None = None) -> None:
        super().__init__(reconnect=policy or FAST, stale_after=30.0)
        self.steps = list(steps)
        self.default = default or hang
        self.attempts = 0
        self.aborts = 0
        self.events: list[tuple[Any, ...]] = []
        for name in sorted(self.EVENTS):
            self.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Callable[..., None]:
        return lambda *args: self.events.append((name, *args))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [e[1:] for e in self.events if e[0] == name]

    async def _attempt(self) -> None:
        self.attempts += 1
        step = self.steps.pop(0) if self.steps else self.default
        await step(self)

    def _abort(self) -> None:
        self.aborts += 1


async def hang(c: Fake) -> None:
    c._link_up()
    await asyncio.Event().wait()


def fail(exc: BaseException, *, up: bool = True) -> Step:
    async def step(c: Fake) -> None:
        if up:
            c._link_up()
        raise exc
    return step


async def stop_here(c: Fake) -> None:
    c.stop()
    await asyncio.Event().wait()


async def start(c: Fake) -> asyncio.Future[None]:
    task = asyncio.ensure_future(c.run())
    await asyncio.sleep(0)
    return task


@pytest.mark.parametrize("loop", LOOPS)
def test_stop_during_an_attempt(loop: str) -> None:
    async def main() -> None:
        inside = asyncio.Event()
        state = {"cancelled": False}

        async def step(c: Fake) -> None:
            c._link_up()
            inside.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                state["cancelled"] = True
                raise
        c = Fake(step)
        task = await start(c)
        await inside.wait()
        assert c.running
        t0 = asyncio.get_running_loop().time()
        await c.stop()
        assert asyncio.get_running_loop().time() - t0 < 1
        assert task.done() and task.exception() is None
        assert not c.running
        assert state["cancelled"] and c.aborts == 1 and c.attempts == 1
        assert c.named("connected") == [()]
        assert c.named("disconnected") == [("stopped",)]
        assert c.named("error") == []
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_stop_cancels_an_attempt_that_swallows_the_first_cancel(loop: str) -> None:
    async def main() -> None:
        inside = asyncio.Event()
        state = {"cancels": 0}

        async def stubborn(c: Fake) -> None:
            c._link_up()
            inside.set()
            while True:
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    state["cancels"] += 1
                    if state["cancels"] > 1:
                        raise
        c = Fake(stubborn)
        task = await start(c)
        await inside.wait()
        await c.stop()
        await asyncio.wait_for(task, 2)
        assert state["cancels"] == 2 and c.attempts == 1
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_stop_during_the_backoff_sleep(loop: str) -> None:
    async def main() -> None:
        c = Fake(fail(ConnectError("refused"), up=False),
                 fail(ConnectError("refused"), up=False),
                 policy=ReconnectPolicy(initial=1000.0, maximum=1000.0, jitter=0))
        second = asyncio.Event()
        c.on("error", lambda e: second.set() if c.attempts == 2 else None)
        task = await start(c)
        await second.wait()  # attempt 2 failed: the client now sleeps 1000 s
        await asyncio.sleep(0)
        assert not task.done()
        t0 = asyncio.get_running_loop().time()
        await c.stop()
        assert asyncio.get_running_loop().time() - t0 < 1
        await asyncio.wait_for(task, 1)
        assert c.attempts == 2
        assert [str(e[0]) for e in c.named("error")] == ["refused", "refused"]
        assert c.stats_counters.reconnects == 2
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("event", ["connected", "error", "disconnected"])
def test_stop_from_a_sync_callback(loop: str, event: str) -> None:
    async def main() -> None:
        steps = {"connected": (hang,),
                 "error": (fail(ProtocolError("bad"), up=False),),
                 "disconnected": (fail(ConnectError("reset")),)}[event]
        c = Fake(*steps)
        c.on(event, lambda *_: c.stop())
        await asyncio.wait_for(c.run(), 2)
        assert c.attempts == 1 and not c.running
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_stop_from_inside_the_attempt(loop: str) -> None:
    async def main() -> None:
        c = Fake(stop_here)
        await asyncio.wait_for(c.run(), 2)
        assert c.attempts == 1
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_await_stop_from_a_coroutine_callback_returns(loop: str) -> None:
    async def main() -> None:
        c = Fake(hang)
        state = {"returned": False, "cancelled": False}

        async def on_connected() -> None:
            try:
                await c.stop()
            except asyncio.CancelledError:
                state["cancelled"] = True
                raise
            state["returned"] = True
            state["running"] = c.running
        c.on("connected", on_connected)
        t0 = asyncio.get_running_loop().time()
        await asyncio.wait_for(c.run(), 5)
        # it returned by itself, well before the drain timeout would have cancelled it
        assert state == {"returned": True, "cancelled": False, "running": False}
        assert asyncio.get_running_loop().time() - t0 < c.DRAIN_TIMEOUT
    bounded(loop, main)


def test_stop_before_run_and_await_of_a_stop_without_run() -> None:
    async def main() -> None:
        c = Fake(stop_here)
        await c.stop()  # never ran: nothing to wait for
    asyncio.run(asyncio.wait_for(main(), 5))


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("exc", [AuthError("refused", code="INVALID_TOKEN"),
                                 ConfigError("bad option"),
                                 CertificateError("untrusted")])
@pytest.mark.parametrize("up", [False, True])
def test_a_fatal_error_ends_run(loop: str, exc: Exception, up: bool) -> None:
    async def main() -> None:
        c = Fake(fail(ConnectError("first, retried"), up=False), fail(exc, up=up))
        with pytest.raises(type(exc)) as info:
            await asyncio.wait_for(c.run(), 5)
        assert info.value is exc
        assert c.attempts == 2 and not c.running
        errors = [e[0] for e in c.named("error")]
        assert [str(e) for e in errors] == ["first, retried"]  # the fatal one is raised
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_fatal_error_after_connected_is_the_disconnect_reason(loop: str) -> None:
    """The link was up when a fatal error ended the attempt: ``disconnected`` should say
    why, as it does for every other failure, not "connection lost"."""
    exc = AuthError("broker: authorization refused: INVALID_TOKEN", code="INVALID_TOKEN")

    async def main() -> None:
        c = Fake(fail(exc))
        with pytest.raises(AuthError):
            await asyncio.wait_for(c.run(), 5)
        assert c.named("disconnected") == [(describe(exc),)]
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_run_twice_at_once_is_a_config_error_and_run_again_after_stop_works(loop: str) -> None:
    async def main() -> None:
        c = Fake(stop_here, default=hang)
        inside = asyncio.Event()
        c.on("connected", inside.set)
        task = await start(c)
        await asyncio.wait_for(task, 2)  # stop_here stopped it
        task = await start(c)  # again
        await inside.wait()
        with pytest.raises(ConfigError, match="already running"):
            await c.run()
        await c.stop()
        assert task.done() and c.attempts == 2
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_repeated_error_is_reported_once_then_summarised(loop: str) -> None:
    first = ProtocolError("bad frame", offset=10)
    other = ProtocolError("another kind of problem")

    during: list[BaseException] = []

    async def flood(c: Fake) -> None:
        c._link_up()
        c._error(first)
        for i in range(1, 7):  # the same error; its numbers differ
            c._error(ProtocolError("bad frame", offset=10 + 37 * i))
        c._error(other)
        c._error(ProtocolError("another kind of problem"))
        during.extend(e[0] for e in c.named("error"))
        raise ConnectError("connection reset")

    async def main() -> None:
        c = Fake(flood, stop_here)
        await asyncio.wait_for(c.run(), 5)
        assert during == [first, other]  # reported as they happened, once each
        errors = [e[0] for e in c.named("error")]
        assert errors[:2] == [first, other]
        summaries = [e for e in errors if isinstance(e, RepeatedError)]
        assert len(summaries) == 2
        by_first = {id(s.first): s for s in summaries}
        assert by_first[id(first)].count == 6 and by_first[id(other)].count == 1
        assert "6 more like: ProtocolError: bad frame" in str(by_first[id(first)])
        # at the attempt's end: after the disconnect, before the failure that ended it
        names = [e[0] if e[0] != "error" else type(e[1]).__name__ for e in c.events]
        assert names == ["connected", "ProtocolError", "ProtocolError",
                         "disconnected", "RepeatedError", "RepeatedError", "ConnectError"]
        assert c.stats_counters.errors == 10
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_the_same_failure_on_every_attempt_is_reported_every_time(loop: str) -> None:
    async def main() -> None:
        c = Fake(*[fail(ConnectError("refused"), up=False)] * 3, stop_here)
        await asyncio.wait_for(c.run(), 5)
        errors = [e[0] for e in c.named("error")]
        assert [type(e) for e in errors] == [ConnectError] * 3
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_repeats_are_counted_per_connection(loop: str) -> None:
    """The error that ended one connection does not swallow the same error on the next:
    the next connection reports it as it happens (it is a new connection), and nothing from
    the first one is summarised as a repeat on the second."""
    ended = ProtocolError("bad frame", offset=5)
    again = ProtocolError("bad frame", offset=7)

    during: list[BaseException] = []

    async def second(c: Fake) -> None:
        c._link_up()
        c._error(again)
        during.extend(e[0] for e in c.named("error"))
        raise ConnectError("reset")

    async def main() -> None:
        c = Fake(fail(ended), second, stop_here)
        await asyncio.wait_for(c.run(), 5)
        errors = [e[0] for e in c.named("error")]
        assert not any(isinstance(e, RepeatedError) for e in errors), errors
        assert during == [ended, again]  # reported on the new connection as it happened
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_connected_and_disconnected_with_the_reason(loop: str) -> None:
    async def clean_end(c: Fake) -> None:
        c._link_up()
        c._link_up()  # once per attempt

    async def explained(c: Fake) -> None:
        c._link_up()
        c._disconnect_reason = "closed by server (1001 going away)"
        raise ConnectError("socket closed")

    async def healthy_then_hang(c: Fake) -> None:
        c._link_up()
        c.gate.release()
        c.gate.touch()
        await asyncio.Event().wait()

    async def main() -> None:
        c = Fake(fail(ConnectError("reset by peer")), clean_end, fail(TimeoutError()),
                 explained, fail(ConnectError("refused"), up=False), healthy_then_hang)
        up = asyncio.Event()
        c.on("healthy", up.set)
        task = await start(c)
        await up.wait()
        await c.stop()
        await asyncio.wait_for(task, 2)
        assert c.named("connected") == [()] * 5
        assert c.named("disconnected") == [
            ("ConnectError: reset by peer",), ("connection lost",), ("timed out",),
            ("closed by server (1001 going away)",), ("stopped",)]
        assert c.named("healthy") == [()]
        assert c.named("stale") == [("stopped",)]
        assert not c.healthy
        kinds = [e[0] for e in c.events if e[0] != "error"]
        assert kinds == ["connected", "disconnected"] * 4 + [
            "connected", "healthy", "disconnected", "stale"]
        assert c.stats_counters.reconnects == 5
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_reconnect_drops_the_health_flag_with_the_stale_reason(loop: str) -> None:
    async def healthy_then_drop(c: Fake) -> None:
        c._link_up()
        c.gate.release()
        c.gate.touch()
        c._stale_reason = "heartbeat timeout"
        raise ConnectError("gone")

    async def main() -> None:
        c = Fake(healthy_then_drop, stop_here)
        await asyncio.wait_for(c.run(), 5)
        assert c.named("stale") == [("heartbeat timeout",)]
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("max_attempts", [0, 1, 3])
def test_max_attempts_exhausted_is_a_connect_error(loop: str, max_attempts: int) -> None:
    async def main() -> None:
        policy = ReconnectPolicy(initial=1e-4, maximum=1e-3, jitter=0,
                                 max_attempts=max_attempts)
        c = Fake(policy=policy, default=fail(ConnectError("refused")))
        with pytest.raises(ConnectError, match="reconnect attempts exhausted"):
            await asyncio.wait_for(c.run(), 5)
        assert c.attempts == max_attempts + 1  # the first connection, then the retries
        assert len(c.named("error")) == max_attempts + 1
        assert not c.running
    bounded(loop, main)


class RecordingPolicy(ReconnectPolicy):
    """A policy that records the delays it hands out and how many sequences it started."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.handed: list[float] = []
        self.sequences = 0

    def delays(self) -> Iterator[float]:
        self.sequences += 1
        for d in super().delays():
            self.handed.append(d)
            yield d


@pytest.mark.parametrize("loop", LOOPS)
def test_backoff_restarts_only_after_an_established_stable_connection(
        loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(client_module, "time", types.SimpleNamespace(
        monotonic=clock, perf_counter_ns=time.perf_counter_ns))

    def attempt(*, established: bool, lasts: float) -> Step:
        async def step(c: Fake) -> None:
            c._link_up()
            if established:
                c._mark_established()
                c._mark_established()  # the first data counts, not the latest
            clock.advance(lasts)
            raise ConnectError("dropped")
        return step

    async def main() -> None:
        policy = RecordingPolicy(initial=1e-4, maximum=1.0, factor=2.0, jitter=0,
                                 reset_after=10.0)
        c = Fake(attempt(established=False, lasts=0),
                 attempt(established=False, lasts=0),
                 attempt(established=False, lasts=0),
                 attempt(established=True, lasts=10.0),    # stable: a fresh sequence
                 attempt(established=False, lasts=0),
                 attempt(established=True, lasts=9.99),    # data, but too short
                 attempt(established=False, lasts=100.0),  # long, but no data
                 attempt(established=True, lasts=25.0),    # stable again
                 stop_here, policy=policy)
        await asyncio.wait_for(c.run(), 5)
        assert policy.handed == pytest.approx(
            [0.0, 1e-4, 2e-4, 0.0, 1e-4, 2e-4, 4e-4, 0.0])
        assert policy.sequences == 3
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_backoff_with_reset_after_zero_restarts_after_any_established_connection(
        loop: str) -> None:
    async def established(c: Fake) -> None:
        c._link_up()
        c._mark_established()
        raise ConnectError("dropped")

    async def accepted_and_dropped(c: Fake) -> None:
        c._link_up()
        raise ConnectError("dropped")

    async def main() -> None:
        policy = RecordingPolicy(initial=1e-4, maximum=1.0, jitter=0, reset_after=0.0)
        c = Fake(accepted_and_dropped, accepted_and_dropped, established,
                 accepted_and_dropped, stop_here, policy=policy)
        await asyncio.wait_for(c.run(), 5)
        assert policy.handed == pytest.approx([0.0, 1e-4, 0.0, 1e-4])
    bounded(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_await_stop_from_outside_waits_for_running_coroutine_callbacks(loop: str) -> None:
    """``await client.stop()`` returns once ``run()`` has ended, and ``run()`` gives the
    coroutine callbacks still running their grace period first."""
    async def main() -> None:
        c = Fake(hang)
        finished: list[bool] = []
        started = asyncio.Event()

        async def slow_on_connected() -> None:
            started.set()
            await asyncio.sleep(0.2)
            finished.append(True)
        c.on("connected", slow_on_connected)
        task = await start(c)
        await started.wait()
        await c.stop()
        assert finished == [True] and not c.running
        await asyncio.wait_for(task, 1)
    bounded(loop, main)
