"""GamesTable (Rust) against its pure-Python twin, plus the BETCORE rules one by one."""

from __future__ import annotations

import copy
import datetime as dt
import gc
import json
import os

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import oddswire_native
from oddswire import reference
from oddswire.codec import RecordSplitter
from oddswire.errors import ConfigError, DecodeError

GamesTable = oddswire_native.GamesTable
Twin = reference.betcore.GamesTable
BOTH = pytest.mark.parametrize("impl", [GamesTable, Twin], ids=["rust", "twin"])
TARGET = "WholeGamesInfoSubscribe"

# The spec's example (betcore-signalr.md, SubOnWholeGamesInfo response), verbatim.
SPEC_EXAMPLE = b"""{
  "type": 1,
  "target": "WholeGamesInfoSubscribe",
  "arguments": [
    {
      "wgi": [
        {
          "i": 30000603282,
          "t": 3,
          "ge": "PB650351",
          "s": 2,
          "ps": 1,
          "cr": 1,
          "sdt": "2025-06-19T15:56:50.529Z",
          "fdt": "2025-06-19T15:59:50.529Z",
          "r": [
            { "v": "3c", "hi": 1, "ra": null, "ri": 1, "s": 1, "sn": 1, "vi": null, "h": false },
            { "v": "9c", "hi": 2, "ra": null, "ri": 1, "s": 1, "sn": 2, "vi": null, "h": false },
            { "v": "4d", "hi": 3, "ra": null, "ri": 1, "s": 1, "sn": 3, "vi": null, "h": false },
            { "v": "2c", "hi": 4, "ra": null, "ri": 1, "s": 1, "sn": 4, "vi": null, "h": false },
            { "v": "7d", "hi": 5, "ra": null, "ri": 1, "s": 1, "sn": 5, "vi": null, "h": false },
            { "v": "5h", "hi": 6, "ra": null, "ri": 1, "s": 1, "sn": 6, "vi": null, "h": false },
            { "v": "kh", "hi": 1, "ra": null, "ri": 1, "s": 1, "sn": 7, "vi": null, "h": false },
            { "v": "8c", "hi": 2, "ra": null, "ri": 1, "s": 1, "sn": 8, "vi": null, "h": false },
            { "v": "2s", "hi": 3, "ra": null, "ri": 1, "s": 1, "sn": 9, "vi": null, "h": false },
            { "v": "qh", "hi": 4, "ra": null, "ri": 1, "s": 1, "sn": 10, "vi": null, "h": false },
            { "v": "7c", "hi": 5, "ra": null, "ri": 1, "s": 1, "sn": 11, "vi": null, "h": false },
            { "v": "jd", "hi": 6, "ra": null, "ri": 1, "s": 1, "sn": 12, "vi": null, "h": false },
            { "v": "as", "hi": 0, "ra": null, "ri": 2, "s": 1, "sn": 13, "vi": null, "h": false },
            { "v": "9h", "hi": 0, "ra": null, "ri": 2, "s": 1, "sn": 14, "vi": null, "h": false },
            { "v": "6c", "hi": 0, "ra": null, "ri": 2, "s": 1, "sn": 15, "vi": null, "h": false },
            { "v": "3s", "hi": 0, "ra": null, "ri": 3, "s": 1, "sn": 16, "vi": null, "h": false }
          ],
          "h": [
            { "i": 1, "r": [], "s": 0, "p": 0 },
            { "i": 2, "r": [], "s": 0, "p": 0 },
            { "i": 3, "r": [], "s": 0, "p": 0 },
            { "i": 4, "r": [], "s": 0, "p": 0 },
            { "i": 5, "r": [], "s": 0, "p": 0 },
            { "i": 6, "r": [], "s": 0, "p": 0 }
          ],
          "e": [
            { "t": 196, "p": [], "c": 5.50, "b": false, "sn": "03196" },
            { "t": 197, "p": [], "c": 5.50, "b": false, "sn": "03197" },
            { "t": 198, "p": [], "c": 5.50, "b": false, "sn": "03198" },
            { "t": 199, "p": [], "c": 5.50, "b": false, "sn": "03199" },
            { "t": 200, "p": [], "c": 5.50, "b": false, "sn": "03200" },
            { "t": 201, "p": [], "c": 5.50, "b": false, "sn": "03201" },
            { "t": 202, "p": [], "c": 1000.0, "b": false, "sn": "03202" },
            { "t": 203, "p": [], "c": 6.20, "b": false, "sn": "03203" },
            { "t": 204, "p": [], "c": 3.25, "b": false, "sn": "03204" },
            { "t": 205, "p": [], "c": 7.10, "b": false, "sn": "03205" },
            { "t": 206, "p": [], "c": 6.00, "b": false, "sn": "03206" },
            { "t": 207, "p": [], "c": 9.20, "b": false, "sn": "03207" },
            { "t": 208, "p": [], "c": 9.10, "b": false, "sn": "03208" },
            { "t": 209, "p": [], "c": 110.00, "b": false, "sn": "03209" },
            { "t": 210, "p": [], "c": 600.00, "b": false, "sn": "03210" },
            { "t": 211, "p": [], "c": 1000.0, "b": false, "sn": "03211" }
          ],
          "vs": 2,
          "lrId": 30000603281,
          "di": {
            "id": 2312,
            "n": "PetreQA-manual",
            "c": "Poland",
            "a": 31
          }
        }
      ],
      "tst": "2025-06-19T15:57:18.6120782Z",
      "bt": 1,
      "im": false,
      "sId": 8975
    }
  ]
}"""
SPEC_GAME = 30000603282


# --- building records -----------------------------------------------------------------------

class Raw(str):
    """JSON text written as is (numbers json.dumps cannot write, broken values)."""


class Obj(list):
    """An object as (key, value) pairs: order and repeated keys as generated."""


def enc(v, sp=False):
    if isinstance(v, Raw):
        return str(v)
    if v is None:
        return "null"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    sep, colon = (", ", ": ") if sp else (",", ":")
    if isinstance(v, Obj):
        return "{" + sep.join(json.dumps(k) + colon + enc(x, sp) for k, x in v) + "}"
    return "[" + sep.join(enc(x, sp) for x in v) + "]"


def event(t, c=1.5, b=False, sn=None, p=()):
    return Obj([("t", t), ("p", list(p)), ("c", c), ("b", b), ("sn", sn or f"0{t}")])


def game(gid, events=(), **kw):
    """A wgi entry; keywords replace fields by their wire name or add new ones."""
    pairs = [("i", gid), ("t", 3), ("ge", "PB1"), ("s", 2), ("ps", 1), ("cr", 1),
             ("sdt", "2025-06-19T15:56:50.529Z"), ("fdt", 1750348790.5),
             ("r", [Obj([("v", "3c"), ("hi", 1)])]), ("h", []), ("e", list(events)),
             ("lrId", gid - 1), ("di", None)]
    pairs = [(k, kw.pop(k, v)) for k, v in pairs]
    return Obj(pairs + list(kw.items()))


def update(games, sid=1, tst=1_750_000_000, bt=1, im=False, sp=False):
    payload = Obj([("wgi", list(games)), ("tst", tst), ("bt", bt), ("im", im), ("sId", sid)])
    msg = Obj([("type", 1), ("target", TARGET), ("arguments", [payload])])
    return enc(msg, sp).encode()


# --- the hypothesis model: random update streams over a small key space ---------------------

GAME_IDS = [1, 2, 3, SPEC_GAME]
EVENT_TYPES = [196, 197, 198, 199, 200]
KEYS = [(g, e) for g in GAME_IDS for e in EVENT_TYPES]
EPOCH = dt.datetime(1970, 1, 1)
# Numbers orjson reads back exactly (kept) and ones it cannot (refused where kept).
KEPT_NUMBERS = ["18446744073709551615", "-9223372036854775808", "1e308", "-0", "1e-400",
                "18446744073709551616", "-9223372036854775809", "1" * 400]


@st.composite
def dates(draw):
    ns = draw(st.integers(1_500_000_000 * 10**9, 2_000_000_000 * 10**9))
    secs, frac = divmod(ns, 10**9)
    form = draw(st.sampled_from(["iso", "iso", "int", "decimal", "exponent"]))
    if form == "int":
        return secs
    if form == "decimal":
        return Raw(f"{secs}.{frac:09d}"[: 11 + draw(st.integers(1, 9))])
    if form == "exponent":
        return Raw(f"{secs}{frac:09d}e-{draw(st.sampled_from([9, 10, 12]))}")
    offset = draw(st.sampled_from([None, 0, 60, -90, 330, -(23 * 60 + 59)]))
    local = EPOCH + dt.timedelta(seconds=secs + (offset or 0) * 60)
    digits = draw(st.integers(0, 9))
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac:09d}"[: digits + 1] if digits else "")
    if offset is None:
        return text + "Z"
    sign = "-" if offset < 0 else "+"
    return text + f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


coefficients = st.one_of(
    st.floats(1.01, 1000, allow_nan=False).map(lambda x: round(x, 2)),
    st.integers(1, 1000),
    st.sampled_from([Raw("5.50"), Raw("1000.0"), Raw("1.5e2"), Raw("-0.0"), Raw("0")]))
extras = st.sampled_from([2, "x", None, [1, Obj([("a", [2**64 - 1])])], Obj([("q", [])]), 1.25,
                          True, Raw("123456789012345678901234567890")]).map(copy.deepcopy)


def shuffled(draw, pairs):
    """Members in a random order, sometimes with an unknown one or a repeated one."""
    pairs = draw(st.permutations(pairs))
    if draw(st.integers(0, 3)) == 0:
        pairs = [*pairs, (draw(st.sampled_from(["zz", "vs", "extra"])), draw(extras))]
    if pairs and draw(st.integers(0, 7)) == 0:
        pairs.append(copy.deepcopy(pairs[draw(st.integers(0, len(pairs) - 1))]))
    return Obj(pairs)


@st.composite
def events_st(draw):
    t = draw(st.sampled_from(EVENT_TYPES))
    pairs = [("t", t), ("c", draw(coefficients)), ("b", draw(st.booleans())),
             ("sn", draw(st.text(max_size=4)))]
    p = draw(st.sampled_from(["absent", [], [1, "x"], None]).map(copy.deepcopy))
    if p != "absent":
        pairs.append(("p", p))
    return shuffled(draw, pairs)


results_st = st.lists(st.builds(
    lambda v, hi, sn, h: Obj([("v", v), ("hi", hi), ("ra", None), ("ri", 1), ("s", 1),
                              ("sn", sn), ("vi", None), ("h", h)]),
    st.sampled_from(["3c", "kh", "as"]), st.integers(0, 6), st.integers(1, 20), st.booleans()),
    max_size=3)


@st.composite
def games_st(draw):
    gid = draw(st.sampled_from(GAME_IDS))
    pairs = [("i", gid), ("t", draw(st.integers(1, 5))),
             ("ge", draw(st.one_of(st.text(max_size=8), st.integers(0, 10**6)))),
             ("s", draw(st.sampled_from([1, 2, 2, 2, 3, 4, 5]))),
             ("ps", draw(st.sampled_from([1, 1, 2]))), ("cr", draw(st.integers(0, 5))),
             ("lrId", gid - 1), ("sdt", draw(dates())), ("fdt", draw(dates())),
             ("e", draw(st.lists(events_st(), max_size=6))),
             ("di", draw(st.sampled_from([None, Obj([("id", 2312), ("n", "Petre"), ("c", "PL"),
                                                      ("a", 31)])]).map(copy.deepcopy)))]
    for key in ("r", "h"):
        how = draw(st.sampled_from(["absent", "null", "list"]))
        if how != "absent":
            pairs.append((key, None if how == "null" else draw(results_st)))
    return shuffled(draw, pairs)


@st.composite
def updates_st(draw):
    payload = shuffled(draw, [
        ("wgi", draw(st.lists(games_st(), max_size=3))), ("tst", draw(dates())),
        ("bt", draw(st.sampled_from([1, 0, -1, 0.5, 12.25, 30]))), ("im", draw(st.booleans())),
        ("sId", draw(st.integers(0, 2**40)))])
    args = [payload, *draw(st.lists(extras, max_size=1))]
    top = [("type", 1), ("target", TARGET), ("arguments", args)]
    if draw(st.booleans()):
        top.append(("invocationId", "7"))
    return Obj(draw(st.permutations(top)))


def nodes(v, out):
    """Every (container, index) in a record tree, for mutations."""
    if isinstance(v, Obj):
        for i, (_, x) in enumerate(v):
            out.append((v, i))
            nodes(x, out)
    elif isinstance(v, list) and not isinstance(v, Raw):
        for i, x in enumerate(v):
            out.append((v, i))
            nodes(x, out)
    return out


WRONG = [Raw('"x"'), 1.5, True, None, Obj(), [], 2**70, -1, 300, Raw("1e400"), Raw("NaN"),
         Raw('"\\ud800"'), Raw('"2025-13-01T00:00:00Z"'), Raw("1e30"), Raw("[" * 520 + "]" * 520)]


@st.composite
def mutated(draw):
    """A games update with one node deleted or replaced (valid or not: the twin decides)."""
    msg = draw(updates_st())
    found = nodes(msg, [])
    container, i = draw(st.sampled_from(found))
    how = draw(st.sampled_from(["delete", "wrong", "wrong", "number"]))
    if how == "delete":
        del container[i]
    else:
        value = (draw(st.sampled_from(WRONG)) if how == "wrong"
                 else Raw(draw(st.sampled_from(KEPT_NUMBERS))))
        if isinstance(container, Obj):
            container[i] = (container[i][0], value)
        else:
            container[i] = value
    return enc(msg).encode()


OTHERS = [b'{"type":6}', b'{"type":7,"error":"bye","allowReconnect":true}', b'{"type":7}',
          b'{"type":3,"invocationId":"1","result":{"a":[1,2]}}',
          b'{"type":1,"target":"Other","arguments":[{"wgi":5}]}',
          b'{"type":2,"target":"WholeGamesInfoSubscribe","arguments":[{}]}',
          b'{"type":1,"target":"WholeGamesInfoSubscribe","arguments":[{}],"target":"x"}',
          b'{"type":99999999999999999999999,"arguments":[]}', b'{"target":5,"type":1}',
          b' {"type" : 6 } \n']
BROKEN = [b"", b"[]", b"1", b'"x"', b"{}", b'{"type":"1"}', b'{"type":1.0}', b'{"type":true}',
          b'{"type":6', b'{"type":6}}', b'\xef\xbb\xbf{"type":6}', b'{"type":6,"x":NaN}',
          b'{"type":6,"x":"\\ud800"}', b'{"type":6,"x":"\xed\xa0\x80"}',
          b'{"type":6,"x":"\xff"}', b'{"type":6}\x1e', b'{"type":1,"target":"WholeGamesInfo'
          b'Subscribe"}', b'{"type":1,"target":"WholeGamesInfoSubscribe","arguments":[]}',
          b'{"type":1,"target":"WholeGamesInfoSubscribe","arguments":{}}']


@st.composite
def records(draw):
    kind = draw(st.sampled_from(["update"] * 6 + ["other", "broken", "mutated", "mutated",
                                                    "truncated", "spaced"]))
    if kind == "other":
        return draw(st.sampled_from(OTHERS))
    if kind == "broken":
        return draw(st.sampled_from(BROKEN))
    if kind == "mutated":
        return draw(mutated())
    raw = enc(draw(updates_st()), sp=kind == "spaced").encode()
    if kind == "truncated":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    return raw


ops = st.one_of(
    records(), records(), records(), records(),
    st.tuples(st.just("healthy"), st.booleans()),
    st.tuples(st.just("evict"), st.integers(1_500_000_000 * 10**9, 2_000_000_000 * 10**9)),
    st.tuples(st.just("remove"), st.sampled_from(GAME_IDS)),
    st.tuples(st.just("clear")))


# --- comparing the two tables ---------------------------------------------------------------

def bettable_keys(t):
    mask = t.bettable_mask()
    assert mask.dtype == np.bool_ and len(mask) == t.event_rows
    return {t.event_key(int(r)) for r in np.flatnonzero(mask)}


def game_state(g):
    if g is None:
        return None
    return (g.id, g.type, g.edition, g.state, g.play_status, g.round, g.last_round_id, g.start,
            g.finish, g.betting_time, g.maintenance, g.ended_at_ns, g.results, g.hands, g.dealer,
            g.events)


def state(t):
    """Everything observable, with the columns checked against the lookups."""
    g, e = t.games, t.events
    assert len(g["id"]) == t.rows and len(e["game"]) == t.event_rows
    assert int(g["live"].sum()) == len(t) and int((e["game"] >= 0).sum()) == t.event_count
    for gid in t.game_ids():
        r = t.row(gid)
        assert g["id"][r] == gid and g["live"][r]
        game = t.game(gid)
        assert (g["state"][r], g["play_status"][r], g["start"][r]) == (
            game.state, game.play_status, game.start)
        for et, coefficient, blocked, _ in game.events:
            er = t.event_row(gid, et)
            assert (e["game"][er], e["type"][er]) == (r, et) and t.event_key(er) == (gid, et)
            assert (e["coefficient"][er], e["blocked"][er]) == (coefficient, blocked)
    return {
        "len": len(t), "ids": t.game_ids(), "sid": t.sid, "tst": t.tst, "bt": t.betting_time,
        "im": t.maintenance, "events": t.event_count, "healthy": t.healthy,
        "games": {gid: game_state(t.game(gid)) for gid in GAME_IDS},
        "get": {k: t.get(*k) for k in KEYS}, "bettable": {k: t.is_bettable(*k) for k in KEYS},
        "mask": bettable_keys(t), "contains": [gid in t for gid in GAME_IDS],
    }


def apply_both(fast, twin, raw):
    before = state(fast)
    try:
        want = twin.apply(raw)
    except DecodeError as e:
        with pytest.raises(DecodeError) as got:
            fast.apply(raw)
        assert got.value.field == e.field, (raw, str(got.value), str(e))
        assert state(fast) == before, "a bad record changed the table"
        return None
    got = fast.apply(raw)
    if want is None:
        assert got is None, raw
        assert state(fast) == before
    else:
        assert (got.sid, got.tst, got.bt, got.im, got.game_ids) == (
            want.sid, want.tst, want.bt, want.im, want.game_ids), raw
    return got


@given(st.lists(ops, max_size=30), st.sampled_from([None, 0.0, 1.0, 3600.0]))
def test_random_update_streams_agree_with_the_twin(stream, retention):
    fast = GamesTable(capacity=1, retention_s=retention)
    twin = Twin(capacity=1, retention_s=retention)
    for op in stream:
        if isinstance(op, bytes):
            apply_both(fast, twin, op)
        elif op[0] == "healthy":
            fast.healthy = twin.healthy = op[1]
        elif op[0] == "evict":
            assert fast.evict_finished(op[1]) == twin.evict_finished(op[1])
        elif op[0] == "remove":
            assert fast.remove(op[1]) == twin.remove(op[1])
        else:
            fast.clear()
            twin.clear()
        assert state(fast) == state(twin), op


@given(st.lists(mutated(), min_size=1, max_size=10))
def test_mutated_updates_agree_and_a_bad_one_changes_nothing(raws):
    fast, twin = GamesTable(), Twin()
    fast.apply(SPEC_EXAMPLE)
    twin.apply(SPEC_EXAMPLE)
    for raw in raws:
        apply_both(fast, twin, raw)
        assert state(fast) == state(twin)


@given(records())
def test_records_as_bytearray_memoryview_and_str_agree(raw):
    for form in (bytearray, memoryview, lambda b: b.decode("utf-8", "surrogatepass")):
        try:
            value = form(raw)
        except UnicodeDecodeError:
            continue
        fast, twin = GamesTable(), Twin()
        apply_both(fast, twin, value)
        assert state(fast) == state(twin)


# --- the spec's example ----------------------------------------------------------------------

@BOTH
def test_the_spec_example_applied_verbatim(impl):
    t = impl()
    u = t.apply(SPEC_EXAMPLE)
    assert (u.sid, u.tst, u.bt, u.im, u.game_ids) == (
        8975, 1750348638612078200, 1.0, False, (SPEC_GAME,))
    assert (t.sid, t.tst, t.betting_time, t.maintenance, len(t)) == (
        8975, 1750348638612078200, 1.0, False, 1)
    g = t.game(SPEC_GAME)
    assert (g.id, g.type, g.edition, g.state, g.play_status, g.round, g.last_round_id) == (
        SPEC_GAME, 3, "PB650351", 2, 1, 1, 30000603281)
    assert g.start == 1750348610529000000 and g.finish == 1750348790529000000
    assert (g.betting_time, g.maintenance, g.ended_at_ns) == (1.0, False, None)
    wgi = orjson.loads(SPEC_EXAMPLE)["arguments"][0]["wgi"][0]
    assert g.results == wgi["r"] and len(g.results) == 16
    assert g.results[0] == {"v": "3c", "hi": 1, "ra": None, "ri": 1, "s": 1, "sn": 1, "vi": None,
                            "h": False}
    assert g.hands == wgi["h"] and g.hands[5] == {"i": 6, "r": [], "s": 0, "p": 0}
    assert g.dealer == {"id": 2312, "n": "PetreQA-manual", "c": "Poland", "a": 31}
    assert g.events == [(e["t"], e["c"], e["b"], e["sn"]) for e in wgi["e"]]
    assert [e[0] for e in g.events] == list(range(196, 212))
    assert t.get(SPEC_GAME, 202) == (1000.0, False) and t.get(SPEC_GAME, 204) == (3.25, False)
    assert t.get(SPEC_GAME, 212) is None and t.get(1, 202) is None
    assert all(t.is_bettable(SPEC_GAME, et) for et in range(196, 212))
    assert t.bettable_mask().sum() == 16 and t.event_count == 16
    assert bettable_keys(t) == {(SPEC_GAME, et) for et in range(196, 212)}
    cols = t.games
    r = t.row(SPEC_GAME)
    assert (cols["id"][r], cols["type"][r], cols["round"][r], cols["last_round_id"][r]) == (
        SPEC_GAME, 3, 1, 30000603281)
    assert t.game_ids() == [SPEC_GAME] and SPEC_GAME in t and 1 not in t


def test_the_spec_example_through_the_record_splitter():
    splitter, t = RecordSplitter(), GamesTable()
    stream = b'{}\x1e' + SPEC_EXAMPLE + b'\x1e{"type":6}\x1e'
    out = []
    for k in range(0, len(stream), 100):
        out += splitter.feed(stream[k:k + 100])
    assert len(out) == 3
    with pytest.raises(DecodeError) as e:
        t.apply(out[0])  # the handshake response is the client's to read: it has no type
    assert e.value.field == "type"
    assert t.apply(out[1]).sid == 8975 and t.apply(out[2]) is None
    with pytest.raises(DecodeError) as e:
        t.apply(SPEC_EXAMPLE + b"\x1e")  # the separator is not part of a record
    assert e.value.field is None


# --- the rules, one by one -----------------------------------------------------------------

@BOTH
def test_bettable_rule(impl):
    t = impl()
    evs = [event(196), event(197, b=True)]
    t.apply(update([game(1, evs)]))
    assert t.is_bettable(1, 196) and not t.is_bettable(1, 197) and not t.is_bettable(1, 198)
    assert not t.is_bettable(2, 196)
    for kw, ok in [({"s": 1}, False), ({"s": 3}, False), ({"ps": 2}, False), ({}, True)]:
        t.apply(update([game(1, evs, **kw)]))
        assert t.is_bettable(1, 196) is ok and bettable_keys(t) == ({(1, 196)} if ok else set())
    for bt, ok in [(0, False), (-1, False), (0.25, True)]:
        t.apply(update([game(1, evs)], bt=bt))
        assert t.is_bettable(1, 196) is ok and t.betting_time == bt
    t.apply(update([game(1, evs)], im=True))
    assert not t.is_bettable(1, 196) and t.maintenance and not t.bettable_mask().any()
    t.apply(update([game(1, evs)]))
    t.healthy = False
    assert not t.is_bettable(1, 196) and not t.bettable_mask().any()
    t.healthy = True
    assert t.is_bettable(1, 196)


@BOTH
def test_bt_and_im_belong_to_the_update_that_carried_the_game(impl):
    """One Subscribe per game type: each update's bt and im are its games' own."""
    t = impl()
    t.apply(update([game(1, [event(196)])], bt=5))
    t.apply(update([game(2, [event(196)])], bt=0, im=True))
    assert t.is_bettable(1, 196) and not t.is_bettable(2, 196)
    assert (t.betting_time, t.maintenance) == (0, True)  # the last update's
    assert (t.game(1).betting_time, t.game(2).maintenance) == (5.0, True)
    cols = t.games
    assert cols["betting_time"][t.row(1)] == 5.0 and cols["maintenance"][t.row(2)]


@BOTH
def test_each_update_replaces_the_game_and_its_events(impl):
    t = impl(capacity=1)
    t.apply(update([game(1, [event(196), event(197), event(198)]), game(2, [event(196)])]))
    r197 = t.event_row(1, 197)
    u = t.apply(update([game(1, [event(199, c=2.5), event(197, c=3, b=True)], s=1, ge=650351)],
                       sid=2))
    assert u.game_ids == (1,) and len(t) == 2 and t.event_count == 3
    assert t.get(1, 196) is None and t.get(1, 198) is None
    assert t.get(1, 197) == (3.0, True) and t.event_row(1, 197) == r197
    g = t.game(1)
    assert g.edition == "650351" and g.state == 1 and [e[0] for e in g.events] == [199, 197]
    assert t.get(2, 196) == (1.5, False), "games not in the update are kept"
    t.apply(update([game(1, [event(196, c=1), event(200), event(196, c=2, b=True)])]))
    assert t.get(1, 196) == (2.0, True), "a repeated event type: the last one wins"
    assert [e[0] for e in t.game(1).events] == [196, 200]
    t.apply(update([game(1, [])]))
    assert t.game(1).events == [] and t.event_count == 1
    assert t.event_rows == 4, "freed rows are reused"


@BOTH
def test_optional_and_nullable_fields(impl):
    t = impl()
    g = game(1, [Obj([("c", 2), ("sn", "x"), ("b", False), ("t", 5)])], di=None)
    del g[[k for k, _ in g].index("r")]
    g[[k for k, _ in g].index("h")] = ("h", None)
    t.apply(update([g], tst="2025-06-19T17:57:18+02:00"))
    got = t.game(1)
    assert (got.results, got.hands, got.dealer) == ([], [], None)
    assert got.events == [(5, 2.0, False, "x")]
    assert t.tst == 1750348638000000000


@BOTH
@pytest.mark.parametrize("when, ns", [
    ("2025-06-19T15:56:50.529Z", 1750348610529000000),
    ("2025-06-19T15:57:18.6120782Z", 1750348638612078200),
    ("2025-06-19T15:57:18Z", 1750348638000000000),
    ("2025-06-19T15:57:18.123456789-01:30", 1750354038123456789),
    (1750348638, 1750348638000000000),
    (Raw("1750348638.6120782"), 1750348638612078200),
    (Raw("1750348638612.0782e-3"), 1750348638612078200),
    (Raw("-1.0000000001"), -1000000001),
])
def test_dates_are_iso_8601_or_unix_seconds(impl, when, ns):
    t = impl()
    t.apply(update([game(1, sdt=when, fdt=when)], tst=when))
    assert t.tst == ns and t.game(1).start == ns and t.games["finish"][t.row(1)] == ns


G = "arguments[0].wgi[0]"


def good_with(**kw):
    return update([game(1, [event(196)], **kw)])


@BOTH
@pytest.mark.parametrize("raw, field", [
    (b"not json", None),
    (b"[1]", None),
    (b"", None),
    (b'{"type":6,"x":NaN}', None),
    (b'\xef\xbb\xbf{"type":6}', None),
    (b'{"type":6,"x":"\\udc00"}', None),
    (b'{"type":6,"x":1e400}', None),
    (b'{"x":1}', "type"),
    (b'{"type":"6"}', "type"),
    (b'{"type":6.5}', "type"),
    (b'{"type":1,"target":"WholeGamesInfoSubscribe"}', "arguments"),
    (b'{"type":1,"target":"WholeGamesInfoSubscribe","arguments":[7]}', "arguments[0]"),
    (b'{"arguments":[{"wgi":[],"sId":1,"tst":0,"bt":1}],"type":1,"target":"WholeGamesInfo'
     b'Subscribe"}', "arguments[0].im"),
    (good_with(i="1"), f"{G}.i"),
    (good_with(i=2**63), f"{G}.i"),
    (good_with(s=128), f"{G}.s"),
    (good_with(ps=1.0), f"{G}.ps"),
    (good_with(ge=1.5), f"{G}.ge"),
    (good_with(sdt="2025-02-29T00:00:00Z"), f"{G}.sdt"),
    (good_with(sdt="2025-06-19T15:56:50.1234567891Z"), f"{G}.sdt"),
    (good_with(fdt=Raw("1e11")), f"{G}.fdt"),
    (good_with(di=[]), f"{G}.di"),
    (good_with(r=Obj()), f"{G}.r"),
    (good_with(r=[Obj([("v", Raw("18446744073709551616"))])]), f"{G}.r[0].v"),
    (good_with(h=[1, [Raw("-9223372036854775809")]]), f"{G}.h[1][0]"),
    (good_with(di=Obj([("a", Raw("1" * 30))])), f"{G}.di.a"),
    (good_with(e=[event(196), Obj([("t", 1), ("c", "2"), ("b", True), ("sn", "")])]),
     f"{G}.e[1].c"),
    (good_with(e=[Obj([("t", 1), ("c", 2), ("b", True)])]), f"{G}.e[0].sn"),
    (good_with(e=[Obj([("t", 1), ("p", None), ("c", 2), ("b", True), ("sn", "")])]), "ok"),
    (good_with(e=[Obj([("t", 1), ("p", Obj()), ("c", 2), ("b", True), ("sn", "")])]),
     f"{G}.e[0].p"),
    (good_with(e=[event(196, c=True)]), f"{G}.e[0].c"),
    (good_with(e=[event(196, c=Raw("1" * 400))]), f"{G}.e[0].c"),
    (good_with(e=7), f"{G}.e"),
    (good_with(zz=Raw("[" * 600 + "]" * 600)), None),
])
def test_malformed_records_name_the_field_and_change_nothing(impl, raw, field):
    t = impl()
    t.apply(update([game(1, [event(196, c=2.0)])]))
    before = state(t)
    if field == "ok":
        t.apply(raw)
        return
    with pytest.raises(DecodeError) as e:
        t.apply(raw)
    assert e.value.field == field, str(e.value)
    if field is not None:
        assert str(e.value).startswith(field)
    assert state(t) == before


@BOTH
def test_a_missing_field_is_noticed_after_an_earlier_bad_type(impl):
    g = game(1, [event(196)], t="x")
    del g[0]  # "i"
    with pytest.raises(DecodeError) as e:
        impl().apply(update([g]))
    assert e.value.field == f"{G}.t"


@BOTH
def test_invalid_json_anywhere_wins_over_a_schema_error(impl):
    raw = update([game(1, [event(196, c="bad")])])
    with pytest.raises(DecodeError) as e:
        impl().apply(raw[:-1] + b',"x":NaN}')
    assert e.value.field is None


@BOTH
def test_bytes_like_records_and_wrong_types(impl):
    t = impl()
    raw = update([game(1, [event(196)])])
    assert t.apply(bytearray(raw)).sid == 1
    assert t.apply(memoryview(raw)).sid == 1
    assert t.apply(raw.decode()).sid == 1
    assert t.apply(memoryview(b'x{"type":6}x')[1:-1]) is None
    with pytest.raises(TypeError):
        t.apply(5)
    with pytest.raises(DecodeError):
        t.apply('{"type":6,"x":"\ud800"}')


# --- columns, objects, eviction ----------------------------------------------------------

def test_columns_are_read_only_numpy_views():
    t = GamesTable(capacity=1)
    t.apply(update([game(1, [event(196, c=2.5)])]))
    g, e = t.games, t.events
    assert {k: v.dtype.str for k, v in g.items()} == {
        "id": "<i8", "type": "<i8", "state": "|i1", "play_status": "|i1", "round": "<i8",
        "last_round_id": "<i8", "start": "<i8", "finish": "<i8", "live": "|b1",
        "betting_time": "<f8", "maintenance": "|b1"}
    assert {k: v.dtype.str for k, v in e.items()} == {
        "game": "<i4", "type": "<i8", "coefficient": "<f8", "blocked": "|b1"}
    with pytest.raises(ValueError):
        e["coefficient"][0] = 9.0
    # Views are valid until the next growth: after it they are stale copies.
    t.apply(update([game(k, [event(196, c=k), event(197)]) for k in range(2, 40)]))
    assert e["coefficient"][0] == 2.5 and t.events["coefficient"][t.event_row(1, 196)] == 2.5
    assert len(t.games["id"]) == t.rows == 39 and len(t.events["game"]) == t.event_rows == 77
    assert t.event_key(t.event_rows) is None and t.event_row(1, 999) == -1 and t.row(99) == -1


def test_updates_and_games_are_frozen_and_not_gc_tracked():
    t = GamesTable()
    u = t.apply(SPEC_EXAMPLE)
    g = t.game(SPEC_GAME)
    assert not gc.is_tracked(u) and not gc.is_tracked(g)
    with pytest.raises(AttributeError):
        u.sid = 1
    with pytest.raises(AttributeError):
        g.state = 1
    assert repr(u) == ("GamesUpdate(sid=8975, tst=1750348638612078200, bt=1.0, im=False, "
                       "game_ids=(30000603282,))")
    # Python-style reprs: no Rust debug forms such as Some(8975) or double-quoted strings.
    assert repr(t).startswith("GamesTable(games=1, ") and "sid=8975, healthy=" in repr(t)
    assert repr(GamesTable()).endswith("sid=None, healthy=True)")
    assert repr(g).startswith(f"Game({SPEC_GAME}, type=") and f"edition={g.edition!r}" in repr(g)
    assert isinstance(u, oddswire_native.GamesUpdate) and isinstance(g, oddswire_native.Game)


def test_stored_json_orjson_refuses_is_a_decode_error(monkeypatch):
    t = GamesTable()
    t.apply(SPEC_EXAMPLE)
    g = t.game(SPEC_GAME)

    def refuse(data):
        raise orjson.JSONDecodeError("refused", "", 0)

    monkeypatch.setattr(orjson, "loads", refuse)
    for name in ("results", "hands", "dealer"):
        with pytest.raises(DecodeError) as e:
            getattr(g, name)
        assert e.value.field == name and isinstance(e.value.__cause__, orjson.JSONDecodeError)
    monkeypatch.undo()
    assert g.dealer["id"] == 2312


@BOTH
def test_finished_games_are_evicted_after_retention(impl):
    t = impl(retention_s=10.0)
    evs = [event(196)]
    t.apply(update([game(1, evs), game(2, evs)], tst=100))
    t.apply(update([game(1, evs, s=3)], tst=105))
    assert t.game(1).ended_at_ns == 105 * 10**9
    t.apply(update([game(1, evs, s=4)], tst=110))
    assert t.game(1).ended_at_ns == 105 * 10**9, "ended when it first turned finished"
    t.apply(update([game(2, evs)], tst=114))
    assert 1 in t
    t.apply(update([game(2, evs)], tst=115))
    assert 1 not in t and t.get(1, 196) is None and len(t) == 1
    t.apply(update([game(3, evs, s=5)], tst=116))
    t.apply(update([game(3, evs, s=2)], tst=117))
    assert t.game(3).ended_at_ns is None, "reopened"
    assert (t.rows, t.event_rows) == (2, 2)
    t.apply(update([game(3, evs, s=5)], tst=120))
    assert t.evict_finished(119 * 10**9) == 0 and t.evict_finished(120 * 10**9) == 1
    assert t.remove(2) and not t.remove(2) and len(t) == 0 and t.event_count == 0
    t.apply(update([game(4, evs)], sid=9))
    t.clear()
    assert (len(t), t.rows, t.event_rows, t.sid, t.tst, t.betting_time, t.maintenance) == (
        0, 0, 0, None, None, None, False)
    keep = impl()
    keep.apply(update([game(1, evs, s=3)], tst=100))
    keep.apply(update([game(2, evs)], tst=10**9))
    assert 1 in keep, "retention_s=None keeps finished games"
    with pytest.raises(ConfigError):
        impl(retention_s=-1)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_long_run_with_new_rounds_keeps_memory_bounded():
    """20 game tables; each round is a new game id, updated 10 times, that ends and goes."""
    t = GamesTable(retention_s=0.0)
    evs = [event(et, c=1.5 + et % 7) for et in range(196, 212)]
    rss_half = 0
    for n in range(60_000):
        table, tick = n % 20, n // 20
        gid = tick // 10 * 100 + table
        ends = tick % 10 == 9
        t.apply(update([game(gid, evs, s=3 if ends else 2)], sid=n, tst=1_750_000_000 + n))
        assert (gid in t) is not ends
        if n == 30_000:
            gc.collect()
            rss_half = _rss()
    assert len(t) <= 20 and t.rows <= 21 and t.event_rows <= 21 * 16
    assert _rss() - rss_half < 8 * 2**20


@BOTH
def test_skip_redeliveries_keeps_newer_state(impl):
    """Off by default (every update applied); on, an update whose sId and tst are both at or
    before the last applied one's is left out (``applied`` False) and the table keeps the
    newer coefficient; a lower sId with a later tst (a counter restart) is applied."""
    t = impl()
    assert t.skip_redeliveries is False
    t.apply(update([game(1, [event(196, 2.2)])], sid=2, tst=1_750_000_002))
    assert t.apply(update([game(1, [event(196, 2.1)])], sid=1, tst=1_750_000_001)).applied
    assert t.get(1, 196) == (2.1, False)
    t = impl()
    t.skip_redeliveries = True
    steps = [(0, 0, 2.0, True), (2, 2, 2.2, True), (1, 1, 2.1, False), (2, 2, 2.3, False),
             (3, 3, 2.4, True), (0, 9, 2.5, True), (0, 9, 2.6, False)]
    for sid, dt_s, c, applied in steps:
        u = t.apply(update([game(1, [event(196, c)])], sid=sid, tst=1_750_000_000 + dt_s))
        assert u.applied is applied, (sid, dt_s)
        assert u.sid == sid and u.game_ids == (1,)
    assert t.get(1, 196) == (2.5, False) and t.sid == 0
