"""MarketData (Rust) against its pure-Python twin (oddswire.reference.satoriex): hypothesis
message streams (prices, snapshots, deltas with gaps, crossings, deletions, off-layout and
other messages, broken JSON) agree on every result, error field and lookup; then the rules
one by one."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddswire import reference
from oddswire.errors import ConfigError, DecodeError
from oddswire.satoriex import BOOK, CROSSED, GAP, PRICE, UNSYNCED, MarketData

MARKETS = ["mkt_a", "mkt_b", "mkt_\u00e9"]
prices = st.one_of(st.integers(1, 99).map(lambda c: c / 100), st.integers(1, 99),
                   st.floats(allow_nan=False, allow_infinity=False, width=64))
sizes = st.one_of(st.just(0), st.just(0.0), st.integers(0, 1000),
                  st.floats(0, 1e6, allow_nan=False))
levels = st.lists(st.tuples(prices, sizes).map(list), max_size=6)
odd = st.one_of(st.none(), st.text(max_size=3), st.booleans(), st.integers(-(2**70), 2**70),
                st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=2),
                                                                    st.integers(), max_size=2))


@st.composite
def messages(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["price", "book", "book", "book", "other", "raw"]))
    m = draw(st.sampled_from(MARKETS))
    if kind == "price":
        msg: dict[str, Any] = {"type": "price_update", "market_id": m,
                               "mid": draw(st.one_of(prices, st.none())),
                               "best_bid": draw(st.one_of(prices, st.none())),
                               "best_ask": draw(st.one_of(prices, st.none())),
                               "ts": draw(st.integers(0, 2**53))}
    elif kind == "book":
        msg = {"type": "orderbook", "market_id": m, "seq": draw(st.integers(0, 12))}
        snap = draw(st.sampled_from([True, False, False, None]))
        if snap is not None:
            msg["snapshot"] = snap
        if draw(st.booleans()):
            msg["bids"] = draw(levels)
        if draw(st.booleans()):
            msg["asks"] = draw(levels)
    elif kind == "other":
        msg = {"type": draw(st.sampled_from(["trade", "wallet_changed", "mystery", 7])),
               "market_id": m, "price": draw(prices)}
    else:
        return draw(st.sampled_from([b"", b"{", b"[]", b"{}", b'"x"', b"nul",
                                     b'{"type":"trade",', b'{"type":"orderbook",',
                                     b'{"a":1,"type":"price_update"} x',
                                     b'{"type":"price_update","market_id":"m","mid":1e999}']))
    if draw(st.integers(0, 5)) == 0:  # off the assumed layout
        key = draw(st.sampled_from(sorted(msg)))
        if draw(st.booleans()):
            del msg[key]
        else:
            msg[key] = draw(odd)
    items = list(msg.items())
    order = draw(st.permutations(range(len(items))))
    if draw(st.booleans()):
        items = [items[i] for i in order]
    extra = draw(st.sampled_from([[], [("note", "x")], [("ids", [1, {"a": None}])]]))
    at = draw(st.integers(0, len(items)))
    items[at:at] = extra
    text = ("{" + ",".join(json.dumps(k) + ":" + json.dumps(v) for k, v in items) + "}").encode()
    if draw(st.integers(0, 12)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


def outcome(md: Any, frame: bytes) -> Any:
    try:
        return ("ok", md.apply(frame), md.last_market, md.gap)
    except DecodeError as e:
        return ("error", e.field is None, e.field)


def state(md: Any) -> Any:
    out = {}
    for m in MARKETS:
        price = md.get(m)
        out[m] = (None if price is None else tuple("nan" if isinstance(x, float) and math.isnan(x)
                                                     else x for x in price),
                  md.bids(m).tolist(), md.asks(m).tolist(), md.seq(m), md.synced(m), md.row(m))
    return out, md.ignored, len(md), md.market_ids()


@given(st.lists(messages(), max_size=60), st.integers(1, 8))
def test_agrees_with_the_twin(frames: list[bytes], max_levels: int) -> None:
    ours, twin = MarketData(max_levels=max_levels), reference.MarketData(max_levels=max_levels)
    for f in frames:
        assert outcome(ours, f) == outcome(twin, f), f
        if f.startswith(b"{") and len(f) % 7 == 0:
            m = MARKETS[len(f) % 3]
            ours.desync(m)
            twin.desync(m)
    assert state(ours) == state(twin)
    for m in MARKETS:
        for side in (ours.bids(m), ours.asks(m)):
            assert side.shape[1] == 2 and side.dtype == np.float64 and len(side) <= max_levels


def book(m: str, seq: int, bids: Any = (), asks: Any = (), snapshot: bool = False) -> bytes:
    return orjson.dumps({"type": "orderbook", "market_id": m, "seq": seq, "snapshot": snapshot,
                         "bids": list(bids), "asks": list(asks)})


@pytest.mark.parametrize("cls", [MarketData, reference.MarketData])
def test_book_rules(cls: Any) -> None:
    md = cls()
    assert md.apply(book("m", 4, [[0.4, 1]])) == UNSYNCED  # no snapshot yet
    assert md.apply(book("m", 5, [[0.4, 1], [0.45, 2], [0.3, 0]], [[0.6, 1], [0.55, 3]],
                         snapshot=True)) == BOOK
    assert md.bids("m").tolist() == [[0.45, 2], [0.4, 1]]
    assert md.asks("m").tolist() == [[0.55, 3], [0.6, 1]]
    assert md.apply(book("m", 6, [[0.45, 0], [0.42, 5]], [[0.57, 1]])) == BOOK
    assert md.bids("m").tolist() == [[0.42, 5], [0.4, 1]]
    assert md.asks("m").tolist() == [[0.55, 3], [0.57, 1], [0.6, 1]]
    assert md.apply(book("m", 8)) == GAP and md.gap == (7, 8) and not md.synced("m")
    assert md.apply(book("m", 9, [[0.1, 1]])) == UNSYNCED and md.ignored == 2
    assert md.apply(book("m", 20, [[0.5, 1]], [[0.6, 1]], snapshot=True)) == BOOK
    assert md.synced("m") and md.seq("m") == 20
    assert md.apply(book("m", 21, [[0.6, 2]])) == CROSSED and not md.synced("m")
    assert md.last_market == "m" and md.row("m") == 0 and "m" in md and len(md) == 1


@pytest.mark.parametrize("cls", [MarketData, reference.MarketData])
def test_prices_and_columns(cls: Any) -> None:
    md = cls()
    assert md.get("a") is None
    msg = {"type": "price_update", "market_id": "a", "mid": 0.5, "best_bid": 0.49,
           "best_ask": None, "ts": 1_700_000_000_000}
    assert md.apply(orjson.dumps(msg)) == PRICE
    mid, bid, ask, ts = md.get("a")
    assert (mid, bid, ts) == (0.5, 0.49, 1_700_000_000_000) and math.isnan(ask)
    for i in range(40):  # the columns grow
        md.apply(orjson.dumps({**msg, "market_id": f"m{i}", "mid": i}))
    assert md.mid[md.row("m33")] == 33 and md.ts.dtype == np.int64 and len(md.mid) == 41
    assert md.reset("a") and md.get("a") is None


@pytest.mark.parametrize("cls", [MarketData, reference.MarketData])
def test_off_layout_names_the_field_and_changes_nothing(cls: Any) -> None:
    md = cls()
    base = {"type": "price_update", "market_id": "a", "mid": 1, "best_bid": 1, "best_ask": 1,
            "ts": 1}
    for key, value, field in [("mid", "x", "mid"), ("ts", 1.5, "ts"), ("market_id", 3,
                                                                         "market_id")]:
        with pytest.raises(DecodeError) as e:
            md.apply(orjson.dumps({**base, key: value}))
        assert e.value.field == field
    with pytest.raises(DecodeError) as e:
        md.apply(orjson.dumps({k: v for k, v in base.items() if k != "best_ask"}))
    assert e.value.field == "best_ask"
    with pytest.raises(DecodeError) as e:
        md.apply(b'{"type":"orderbook","market_id":"a","seq":1,"bids":[[1,2],]}')
    assert e.value.field is None
    assert len(md) == 0
    # the type decides which fields matter; other types are not read past their type
    assert md.apply(b'{"type":"orderbook","market_id":"a","seq":1,"mid":"x"}') == UNSYNCED
    assert md.apply(b'{"type":"trade","market_id":"a", broken') is None


@pytest.mark.parametrize("cls", [MarketData, reference.MarketData])
def test_configurable_layout(cls: Any) -> None:
    md = cls(layout={"book_type": "book", "market_id": "m", "bids": "b"})
    assert md.apply(b'{"type":"book","m":"x","seq":1,"snapshot":true,"b":[[1,1]]}') == BOOK
    assert md.bids("x").tolist() == [[1, 1]] and md.layout["book_type"] == "book"
    with pytest.raises(ConfigError):
        cls(layout={"mid": "ts"})
    with pytest.raises(ConfigError):
        cls(layout={"nope": "x"})
