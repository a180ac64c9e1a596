"""OddsTable (Rust) against its pure-Python twin, plus the spec's rules one by one."""

from __future__ import annotations

import gc
import math
import os
import weakref

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddswire import reference
from oddswire.databet import OddsTable
from oddswire.errors import ConfigError, DecodeError
from oddswire.sim.databet_world import DatabetWorld

EVENTS = [f"e{i}" for i in range(4)]
MARKETS = [f"m{i}" for i in range(5)]
ODDS = [f"o{i}" for i in range(4)]
KEYS = [(e, m, o) for e in EVENTS for m in MARKETS for o in ODDS]


def line(event_type, payload, sid="e0", version="v", ts=1, **extra):
    obj = {"sport_event_id": sid, "sport_id": "football", "version": version,
           "timestamp_ns": ts, "event_type": event_type, "payload": payload, **extra}
    return orjson.dumps(obj)


def market(mid="m0", status=0, odds=(("o0", "2.5", 0, True),), probability="0.4"):
    return {"id": mid, "status": status, "type_id": 1, "specifiers": "",
            "odds": [{"id": o, "value": v, "probability": probability, "status": s,
                      "is_active": a, "template": "Over"} for o, v, s, a in odds]}


def snapshot(sid="e0", markets=(), status=1, bet_stop=False, version="v", ts=1):
    return line("sport_event_snapshot", {
        "fixture": {"status": status, "type": 0, "competitors": []},
        "markets": list(markets), "bet_stop": bet_stop, "game_state": {"time": "1"},
        "competitors_score": [], "extensions": {}}, sid=sid, version=version, ts=ts)


# --- the hypothesis model: random log streams over a small key space --------------------

decimals = st.sampled_from(["1", "1.01", "2.27", "12.5", "100", "0.5", "3.3333", "1e2"])
statuses = st.integers(0, 6)
# Numbers orjson reads back exactly (kept) and ones it cannot (refused): integers outside
# [-2**63, 2**64-1] become floats or fail in orjson, floats past 1.8e308 overflow.
NUMBERS = ["18446744073709551615", "-9223372036854775808", "1e308", "-0", "1e-400",
           "18446744073709551616", "-9223372036854775809", "1" * 400, "1e400", "-1E309",
           "123456789012345678901234567890"]
HOLE = "\x00hole"


def with_number(raw: bytes, number: str) -> bytes:
    """``raw`` with the string ``HOLE`` replaced by a number orjson.dumps cannot write."""
    return raw.replace(orjson.dumps(HOLE), number.encode())


@st.composite
def markets_st(draw):
    odds = draw(st.lists(
        st.tuples(st.sampled_from(ODDS), decimals, st.integers(0, 2), st.booleans()),
        max_size=4))
    m = market(draw(st.sampled_from(MARKETS)), draw(st.integers(0, 2)), odds,
               draw(st.sampled_from(["0.4", None, "0.123"])))
    if draw(st.booleans()):
        for o in m["odds"]:
            o.pop("probability", None)
    return m


@st.composite
def log_lines(draw):
    sid = draw(st.sampled_from(EVENTS))
    ver = f"v{draw(st.integers(0, 10**6)):07d}"
    ts = draw(st.integers(0, 10**4))
    kind = draw(st.sampled_from([
        "snap", "markets", "markets", "markets", "bet_stop", "fixture", "scores", "game_state",
        "extensions", "rollback", "heartbeat", "unknown", "malformed", "number"]))
    if kind == "snap":
        return snapshot(sid, draw(st.lists(markets_st(), max_size=4)), draw(statuses),
                        draw(st.booleans()), ver, ts)
    if kind == "markets":
        return line("markets_updated", draw(st.lists(markets_st(), max_size=3)), sid, ver, ts)
    if kind == "bet_stop":
        return line("bet_stop_updated", {"bet_stop": draw(st.booleans())}, sid, ver, ts)
    if kind == "fixture":
        return line("fixture_updated", {"status": draw(statuses), "type": 0}, sid, ver, ts)
    if kind == "scores":
        return line("competitor_scores_updated", [{"side": "home", "scores": []}], sid, ver, ts)
    if kind == "game_state":
        return line("game_state_updated", {"time": str(ts)}, sid, ver, ts)
    if kind == "extensions":
        return line("extensions_updated", {"x": {"types": []}}, sid, ver, ts)
    if kind == "rollback":
        return line("bets_rollback", {"markets": [], "reason": "after_goal"}, sid, ver, ts)
    if kind == "heartbeat":
        return orjson.dumps({"event_type": "heartbeat", "timestamp_ns": ts})
    if kind == "unknown":
        return line("odds_changed_v9", {"anything": [1]}, sid, ver, ts)
    if kind == "number":  # a number orjson may not read back, somewhere it is kept
        number = draw(st.sampled_from(NUMBERS))
        where = draw(st.sampled_from([
            line("sport_event_snapshot", {"fixture": {"status": 1}, "markets": [market()],
                                          "extensions": {"x": [1, {"y": HOLE}]}}, sid, ver, ts),
            line("sport_event_snapshot", {"fixture": {"status": 1, "t": [HOLE]},
                                          "competitors_score": []}, sid, ver, ts),
            line("sport_event_snapshot", {"fixture": {"status": 1}, "competitors_score": [HOLE],
                                          "game_state": {}}, sid, ver, ts),
            line("game_state_updated", {"time": HOLE}, sid, ver, ts),
            line("extensions_updated", {"x": {"types": [HOLE]}}, sid, ver, ts),
            line("competitor_scores_updated", [{"side": "home", "n": HOLE}], sid, ver, ts),
            line("markets_updated", [{**market(), "extra": [HOLE]}], sid, ver, ts),
            line("bets_rollback", {"markets": [], "reason": HOLE}, sid, ver, ts),
            line("odds_changed_v9", HOLE, sid, ver, ts),
            line("fixture_updated", {"status": 1, "start": HOLE}, sid, ver, ts),
            line("bet_stop_updated", {"bet_stop": True, "n": HOLE}, sid, ver, ts),
            line("bet_stop_updated", {"bet_stop": True}, sid, ver, ts, other=HOLE),
            line("bet_stop_updated", {"bet_stop": True}, sid, ver, HOLE),
        ]))
        return with_number(where, number)
    good = line("markets_updated", [draw(markets_st())], sid, ver, ts)
    how = draw(st.integers(0, 7))
    if how == 0:
        return good[: draw(st.integers(0, len(good) - 1))]
    if how == 1:
        return good.replace(b'"status":', b'"status":"', 1)
    if how == 2:
        return line("markets_updated", [{"id": "m0", "status": 0, "odds": [
            {"id": "o0", "value": draw(st.sampled_from(["", "1.", "x", "NaN", "1e999"])),
             "status": 0, "is_active": True}]}], sid, ver, ts)
    if how == 3:
        return line("markets_updated", [{"id": 5, "status": 0, "odds": []}], sid, ver, ts)
    if how == 4:
        return line("fixture_updated", {"type": 0}, sid, ver, ts)
    if how == 5:
        return orjson.dumps({"sport_event_id": sid, "version": ver, "payload": []})
    if how == 6:
        return line("markets_updated", [{"id": "m0", "status": 300, "odds": []}], sid, ver, ts)
    return good + b"x"


def bettable_keys(t):
    mask = t.bettable_mask()
    assert mask.dtype == np.bool_ and len(mask) == t.rows
    return {t.key(r) for r in np.flatnonzero(mask)}


def same_value(a, b):
    if a is None or b is None:
        return a is b
    return all((x == y) or (isinstance(x, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b, strict=True))


def assert_same_state(fast, twin):
    assert fast.version == twin.version
    assert len(fast) == len(twin)
    assert fast.event_count == twin.event_count
    assert sorted(fast.sport_event_ids()) == sorted(twin.sport_event_ids())
    for k in KEYS:
        assert same_value(fast.get(*k), twin.get(*k)), k
        assert fast.is_bettable(*k) == twin.is_bettable(*k), k
    assert bettable_keys(fast) == bettable_keys(twin)
    for sid in twin.sport_event_ids():
        a, b = fast.event(sid), twin.event(sid)
        assert (a.fixture, a.scores, a.game_state, a.extensions) == (
            b.fixture, b.scores, b.game_state, b.extensions), sid
    live = [fast.key(r) for r in range(fast.rows) if fast.key(r) is not None]
    assert len(live) == len(fast) == len(set(live))


def apply_both(fast, twin, raw, index=None):
    try:
        want = twin.apply(raw)
    except DecodeError as e:
        with pytest.raises(DecodeError) as got:
            fast.apply(raw)
        if str(e).startswith("invalid JSON"):
            # Syntax: the twin knows nothing more, Rust names what it read before the error.
            assert e.sport_event_id is None and e.version is None
        else:
            assert (got.value.field, got.value.sport_event_id, got.value.version) == (
                e.field, e.sport_event_id, e.version), (raw, str(got.value), str(e))
        return None
    got = fast.apply(raw)
    for attr in ("event_type", "known_type", "sport_event_id", "version", "timestamp_ns",
                 "known_event", "rows_written", "rows_removed", "markets_changed"):
        assert getattr(got, attr) == getattr(want, attr), (attr, raw)
    assert got.payload == want.payload
    return got


@given(st.lists(log_lines(), max_size=40), st.lists(st.booleans(), max_size=40),
       st.sampled_from([None, 0.0, 5e-6]))
def test_random_log_streams_agree_with_the_twin(lines, health, retention):
    fast = OddsTable(capacity=1, retention_s=retention)
    twin = reference.OddsTable(capacity=1, retention_s=retention)
    for i, raw in enumerate(lines):
        if i < len(health):
            fast.healthy = twin.healthy = health[i]
        apply_both(fast, twin, raw)
        assert_same_state(fast, twin)


@given(st.lists(log_lines(), min_size=1, max_size=20))
def test_apply_many_keeps_the_lines_before_a_bad_one(lines):
    fast, twin = OddsTable(), reference.OddsTable()
    try:
        want = twin.apply_many(lines)
    except DecodeError as e:
        with pytest.raises(DecodeError) as got:
            fast.apply_many(lines)
        assert got.value.index == e.index
        assert len(got.value.applied) == e.index == len(e.applied)
        if e.index:
            assert got.value.applied[-1].line is lines[e.index - 1]
    else:
        assert [a.version for a in fast.apply_many(lines)] == [a.version for a in want]
    assert_same_state(fast, twin)


@given(st.lists(log_lines(), min_size=1, max_size=20))
def test_apply_many_without_results_counts_the_lines_it_applied(lines):
    fast, twin = OddsTable(), reference.OddsTable()
    try:
        want = twin.apply_many(lines, results=False)
    except DecodeError as e:
        with pytest.raises(DecodeError) as got:
            fast.apply_many(lines, results=False)
        assert got.value.index == got.value.applied == e.index == e.applied
    else:
        assert fast.apply_many(lines, results=False) == want == len(lines)
    assert_same_state(fast, twin)


@pytest.mark.parametrize("impl", [OddsTable, reference.OddsTable])
@pytest.mark.parametrize("results", [True, False])
def test_apply_many_reads_an_iterator_no_further_than_a_bad_line(impl, results):
    # A list is looked ahead into (the next line is prefetched); an iterator never is.
    good, bad, after = snapshot("e0", [market()]), b'{"event_type":', snapshot("e1")
    it = iter([good, bad, after])
    with pytest.raises(DecodeError) as e:
        impl().apply_many(it, results=results)
    assert e.value.index == 1
    assert next(it) == after
    table = impl()
    with pytest.raises(DecodeError) as e:
        table.apply_many([good, bad, after], results=results)
    assert e.value.index == 1 and "e0" in table and "e1" not in table


def test_applied_is_not_gc_tracked_and_reprs_like_python():
    t = OddsTable()
    a = t.apply(snapshot("e0", [market()]))
    assert not gc.is_tracked(a)
    assert repr(a) == ("Applied('sport_event_snapshot', sport_event_id='e0', version='v', "
                       "known_event=True, rows_written=1, rows_removed=0)")
    assert all(not gc.is_tracked(x) for x in t.apply_many([snapshot().decode(), snapshot()]))

    class Line(bytes):  # may carry a __dict__ that points back: stays tracked
        pass

    b = t.apply(Line(line("bet_stop_updated", {"bet_stop": True}, sid="it's")))
    assert gc.is_tracked(b) and "sport_event_id=\"it's\"" in repr(b)
    assert b.line in gc.get_referents(b)


def test_a_cycle_through_a_subclassed_line_is_collected():
    class Line(bytes):
        pass

    class Sentinel:
        pass

    def cycle():
        own = Line(snapshot())
        own.back = (OddsTable().apply(own), sentinel := Sentinel())  # line -> Applied -> line
        return weakref.ref(sentinel)

    gc.collect()
    alive = cycle()
    assert alive() is not None
    gc.collect()
    assert alive() is None


@given(st.lists(log_lines(), max_size=15), st.integers(0, 2**32))
def test_a_bad_line_changes_nothing(lines, seed):
    t = OddsTable()
    for raw in lines:
        before = (t.version, len(t), bettable_keys(t), [t.get(*k) for k in KEYS])
        try:
            t.apply(raw)
        except DecodeError:
            after = (t.version, len(t), bettable_keys(t), [t.get(*k) for k in KEYS])
            assert all(same_value(a, b) if isinstance(a, tuple) or a is None else a == b
                       for a, b in zip(before[3], after[3], strict=True))
            assert before[:3] == after[:3]


@pytest.mark.parametrize("churn", [False, True], ids=["stable", "churning"])
def test_the_simulated_world_replicates_exactly(churn):
    world = DatabetWorld(seed=7, events=60, churn=churn)
    fast, twin = OddsTable(), reference.OddsTable()
    lines = world.snapshot_lines() + world.lines(3000)
    fast.apply_many(lines)
    twin.apply_many(lines)
    assert fast.version == twin.version == world.version
    assert len(fast) == len(twin) == sum(
        len(m["odds"]) for ev in world.events.values() for m in ev.markets.values())
    for ev in world.events.values():
        got = fast.event(ev.sport_event_id)
        assert got.bet_stop == ev.bet_stop and got.status == ev.fixture["status"]
        assert got.fixture == ev.fixture and got.scores == ev.scores
        assert got.market_ids == sorted(ev.markets)
        for m in ev.markets.values():
            for o in m["odds"]:
                v, p, s, a = fast.get(ev.sport_event_id, m["id"], o["id"])
                assert same_value((v, p, s, a), (
                    float(o["value"]), float(o.get("probability", "nan")), o["status"],
                    o["is_active"]))
            assert fast.market(ev.sport_event_id, m["id"])[2] == m["specifiers"]
    assert bettable_keys(fast) == bettable_keys(twin)


# --- the rules, one by one --------------------------------------------------------------

def test_snapshot_replaces_the_event_and_update_replaces_the_market():
    t = OddsTable()
    t.apply(snapshot("e0", [market("m0", odds=[("o0", "2.5", 0, True), ("o1", "3", 0, True)]),
                            market("m1")]))
    assert len(t) == 3 and t.get("e0", "m0", "o1") == (3.0, 0.4, 0, True)
    a = t.apply(line("markets_updated", [market("m0", odds=[("o1", "1.9", 0, True)])],
                     version="v2"))
    assert (a.rows_written, a.rows_removed, a.markets_changed) == (1, 1, 1)
    assert t.get("e0", "m0", "o0") is None and t.get("e0", "m0", "o1")[0] == 1.9
    t.apply(snapshot("e0", [market("m1")], version="v3"))
    assert t.get("e0", "m0", "o1") is None and len(t) == 1 and t.version == "v3"
    assert t.rows == 3  # rows freed above are reused, not appended


def test_bettable_rule_follows_the_spec():
    t = OddsTable()
    t.apply(snapshot("e0", [market("m0", odds=[("o0", "2", 0, True), ("o1", "2", 1, True),
                                               ("o2", "2", 0, False)]),
                            market("m1", status=1)]))
    assert [t.is_bettable("e0", "m0", o) for o in ("o0", "o1", "o2")] == [True, False, False]
    assert not t.is_bettable("e0", "m1", "o0") and not t.is_bettable("e0", "m9", "o0")
    assert bettable_keys(t) == {("e0", "m0", "o0")}
    t.apply(line("bet_stop_updated", {"bet_stop": True}))
    assert not t.is_bettable("e0", "m0", "o0") and not t.bettable_mask().any()
    t.apply(line("bet_stop_updated", {"bet_stop": False}))
    t.healthy = False
    assert not t.is_bettable("e0", "m0", "o0") and not t.bettable_mask().any()
    t.healthy = True
    for status, ok in [(0, True), (1, True), (2, False), (3, False), (8, False)]:
        t.apply(line("fixture_updated", {"status": status}))
        assert t.is_bettable("e0", "m0", "o0") is ok


def test_columns_are_numpy_views_with_nan_probability():
    t = OddsTable()
    t.apply(snapshot("e0", [market("m0", odds=[("o0", "2.27", 0, True)], probability=None)]))
    cols = t.odds
    assert {k: v.dtype.str for k, v in cols.items()} == {
        "value": "<f8", "probability": "<f8", "status": "|i1", "is_active": "|b1",
        "event": "<i4", "market": "<i4"}
    r = t.row("e0", "m0", "o0")
    assert cols["value"][r] == 2.27 and math.isnan(cols["probability"][r])
    assert t.row("e0", "m0", "zz") == -1 and t.key(r) == ("e0", "m0", "o0")
    assert t.market("e0", "m0") == (0, 1, "", {"o0": r}) and t.market("e0", "x") is None


def test_unknown_events_and_types_are_reported_not_dropped():
    t = OddsTable()
    a = t.apply(line("markets_updated", [market()], sid="nope", version="v9"))
    assert not a.known_event and a.known_type and t.version == "v9" and len(t) == 0
    b = t.apply(line("brand_new_type", {}, version="v10"))
    assert b.event_type == "brand_new_type" and not b.known_type
    r = t.apply(line("bets_rollback", {"markets": [], "reason": "after_goal"}, sid="nope"))
    assert r.event_type == "bets_rollback" and r.payload["reason"] == "after_goal"
    h = t.apply(b'{"event_type":"heartbeat","timestamp_ns":5}')
    assert h.version is None and h.timestamp_ns == 5 and t.version == "v"


def test_side_objects_are_kept_per_event():
    t = OddsTable()
    t.apply(snapshot("e0"))
    t.apply(line("competitor_scores_updated", [{"side": "home", "points": "1"}]))
    t.apply(line("game_state_updated", {"time": "90"}))
    t.apply(line("extensions_updated", {"w": {"types": ["x"]}}))
    ev = t.event("e0")
    assert ev.scores == [{"side": "home", "points": "1"}] and ev.game_state == {"time": "90"}
    assert ev.extensions == {"w": {"types": ["x"]}} and ev.fixture["status"] == 1
    assert orjson.loads(ev.raw("fixture")) == ev.fixture and ev.sport_id == "football"
    assert t.event("zz") is None and "e0" in t and "zz" not in t


@pytest.mark.parametrize("raw, field", [
    (b"not json", None),
    (b"[]", None),
    (b'{"sport_event_id":"e0","version":"v","payload":[]}', "event_type"),
    (line("markets_updated", [{"id": "m0", "status": 0}]), "payload[0].odds"),
    (line("markets_updated", [market(odds=[("o0", "2,5", 0, True)])]), "payload[0].odds[0].value"),
    (line("markets_updated", [market(odds=[("o0", "2", 0, 1)])]), "payload[0].odds[0].is_active"),
    (line("markets_updated", {"id": "m0"}), "payload"),
    (line("fixture_updated", {"status": 999}), "payload.status"),
    (line("sport_event_snapshot", {"markets": []}), "payload.fixture"),
    (line("bet_stop_updated", {}), "payload.bet_stop"),
    (line("bets_rollback", {"markets": {}}), "payload.markets"),
    (line("markets_updated", [], version=7), "version"),
    (line("competitor_scores_updated", {}), "payload"),
    (with_number(line("sport_event_snapshot", {"fixture": {"status": 1},
                                               "extensions": {"a": [1, {"b": HOLE}]}}),
                 "1" * 400), "payload.extensions.a[1].b"),
    (with_number(line("game_state_updated", {"t": HOLE}), "1e400"), "payload.t"),
    (with_number(line("competitor_scores_updated", [HOLE]), "-9223372036854775809"),
     "payload[0]"),
    (with_number(line("brand_new_type", HOLE), "18446744073709551616"), "payload"),
    (with_number(line("heartbeat", None, other=HOLE), "1" * 400), "other"),
    (with_number(line("markets_updated", [], ts=HOLE), "1E400"), "timestamp_ns"),
])
def test_malformed_lines_name_the_field_the_event_and_the_version(raw, field):
    for t in (OddsTable(), reference.OddsTable()):
        with pytest.raises(DecodeError) as e:
            t.apply(raw)
        assert e.value.field == field, str(e.value)
        if raw.startswith(b'{"sport_event_id":"e0","sport_id"'):
            assert e.value.sport_event_id == "e0" and (e.value.version == "v" or field == "version")
            assert "e0" in str(e.value)


@pytest.mark.parametrize("impl", [OddsTable, reference.OddsTable], ids=["rust", "twin"])
def test_numbers_orjson_cannot_read_back_are_refused_and_change_nothing(impl):
    t = impl()
    t.apply(line("sport_event_snapshot", {"fixture": {"status": 1}, "markets": [market()],
                                          "extensions": {"big": 2**64 - 1}}))
    for number in ("1" * 400, "18446744073709551616", "1e400"):
        bad = with_number(line("extensions_updated", {"w": [HOLE]}, version="v2"), number)
        with pytest.raises(DecodeError) as e:
            t.apply(bad)
        assert e.value.field == "payload.w[0]" and e.value.version == "v2"
    ev = t.event("e0")
    assert ev.extensions == {"big": 2**64 - 1} and t.version == "v" and len(t) == 1
    assert ev.fixture == {"status": 1} and ev.scores is None and ev.game_state is None


def test_stored_json_orjson_refuses_is_a_decode_error(monkeypatch):
    """Second line of defence: whatever orjson refuses on read surfaces as DecodeError."""
    t = OddsTable()
    a = t.apply(snapshot("e0"))
    ev = t.event("e0")

    def refuse(data):
        raise orjson.JSONDecodeError("refused", "", 0)

    monkeypatch.setattr(orjson, "loads", refuse)
    for name in ("fixture", "scores", "game_state", "extensions"):
        with pytest.raises(DecodeError) as e:
            getattr(ev, name)
        assert e.value.field == name and e.value.sport_event_id == "e0"
        assert isinstance(e.value.__cause__, orjson.JSONDecodeError)
    with pytest.raises(DecodeError) as e:
        a.payload  # noqa: B018
    assert (e.value.field, e.value.sport_event_id, e.value.version) == ("payload", "e0", "v")
    monkeypatch.undo()
    assert ev.game_state == {"time": "1"} and a.payload["bet_stop"] is False


def test_payload_before_event_type_is_accepted():
    t = OddsTable()
    t.apply(snapshot("e0", [market()]))
    raw = orjson.dumps({"payload": [market(odds=[("o0", "9", 0, True)])],
                        "event_type": "markets_updated", "sport_event_id": "e0", "version": "w"})
    t.apply(raw)
    assert t.get("e0", "m0", "o0")[0] == 9.0


def test_eviction_frees_rows_for_reuse_and_clear_forgets_everything():
    t = OddsTable(retention_s=1.0)
    t.apply(snapshot("e0", [market("m0"), market("m1")], ts=0))
    t.apply(line("fixture_updated", {"status": 4}, ts=10**9))
    t.apply(snapshot("e1", [market("m0")], ts=19 * 10**8))
    assert t.event_count == 2 and t.event("e0").ended_at_ns == 10**9
    t.apply(line("game_state_updated", {}, sid="e1", ts=2 * 10**9))
    assert t.event_count == 1 and "e0" not in t and len(t) == 1
    t.apply(snapshot("e2", [market("m0"), market("m1")]))
    assert t.rows == 3
    t.apply(line("fixture_updated", {"status": 5}, sid="e2", ts=7))
    assert t.evict_ended(6) == 0 and t.evict_ended(7) == 1
    assert t.remove_event("e1") and not t.remove_event("e1")
    t.clear()
    assert (len(t), t.rows, t.version, t.event_count) == (0, 0, "", 0)
    with pytest.raises(ConfigError):
        OddsTable(retention_s=-1)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_million_updates_with_churn_keep_memory_bounded():
    """2,000 live events; every event ends after a while and a new one replaces it."""
    t = OddsTable(retention_s=0.0)
    tmpl = ('{"sport_event_id":"ev%d","version":"v%09d","timestamp_ns":%d,'
            '"event_type":"markets_updated","payload":[{"id":"m%d","status":0,"type_id":1,'
            '"odds":[{"id":"1","value":"%d.5","status":0,"is_active":true},'
            '{"id":"2","value":"1.%d","status":0,"is_active":true}]}]}')
    live, next_id, n, rss_half = list(range(2000)), 2000, 0, 0
    for i in live:
        t.apply(snapshot(f"ev{i}", [market(f"m{j}") for j in range(3)], ts=0))
    high_after_fill = t.rows
    while n < 1_000_000:
        batch = []
        for k in range(1000):
            ev = live[(n + k) % 2000]
            batch.append((tmpl % (ev, n + k, n + k, k % 7, k % 9 + 1, k % 10)).encode())
        n += len(batch)
        t.apply_many(batch)
        # churn: 20 events end and 20 new ones are booked per batch
        for j in range(20):
            slot = (n // 1000 * 20 + j) % 2000
            t.apply(line("fixture_updated", {"status": 3}, sid=f"ev{live[slot]}", ts=n))
            live[slot] = next_id
            t.apply(snapshot(f"ev{next_id}", [market(f"m{j % 3}")], ts=n + 1))
            next_id += 1
        if n == 500_000:
            gc.collect()
            rss_half = _rss()
    gc.collect()
    assert t.event_count <= 2000 + 20
    assert len(t) <= 2000 * 8 * 2
    assert t.rows <= 2 * max(high_after_fill, len(t))
    assert _rss() - rss_half < 16 * 2**20, "memory grew over the second half-million updates"
