"""The compiled SatoriexListener (Cython + Rust MarketData through the C API) against the
client's pure-Python path (``compiled = False``: FeedListener + ``_on_frame``): hypothesis
sequences of frames (price updates, snapshots, deltas with gaps and crossings, user and
market events, unknown types, off-layout and broken messages, fragments) interleaved with
callback changes, hydration holds and desyncs must give the same events in the same order,
the same errors, the same messages sent, the same prices and books and the same stats."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddswire._wire import FeedListener, SatoriexListener
from oddswire.satoriex import EVENTS, SatoriexClient

MARKETS = ["mkt_a", "mkt_b", "mkt_\u00e9"]
SUBSCRIBED = MARKETS[:2]  # mkt_é's market data arrives unasked: resyncs do not send
prices = st.one_of(st.integers(1, 99).map(lambda c: c / 100), st.integers(1, 99),
                   st.floats(allow_nan=False, allow_infinity=False, width=64))
sizes = st.one_of(st.just(0), st.integers(0, 1000), st.floats(0, 1e6, allow_nan=False))
levels = st.lists(st.tuples(prices, sizes).map(list), max_size=5)
odd = st.one_of(st.none(), st.text(max_size=3), st.booleans(), st.integers(-(2**70), 2**70),
                st.lists(st.integers(), max_size=2))


@st.composite
def messages(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["price", "price", "book", "book", "book", "snapshot", "user",
                                 "market", "unknown", "raw"]))
    m = draw(st.sampled_from(MARKETS))
    msg: dict[str, Any]
    if kind == "price":
        msg = {"type": "price_update", "market_id": m,
               "mid": draw(st.one_of(prices, st.none())),
               "best_bid": draw(st.one_of(prices, st.none())),
               "best_ask": draw(st.one_of(prices, st.none())),
               "ts": draw(st.one_of(st.integers(0, 2**53), st.just(-(2**63))))}
    elif kind in ("book", "snapshot"):
        msg = {"type": "orderbook", "market_id": m, "seq": draw(st.integers(0, 8)),
               "snapshot": kind == "snapshot" or draw(st.integers(0, 9)) == 0}
        if draw(st.booleans()):
            msg["bids"] = draw(levels)
        if draw(st.booleans()):
            msg["asks"] = draw(levels)
    elif kind == "user":
        msg = {"type": draw(st.sampled_from(["order_filled", "wallet_changed", "mention"])),
               "id": draw(st.integers(0, 100)), "amount": "1.00"}
    elif kind == "market":
        msg = {"type": draw(st.sampled_from(["trade", "comment"])), "market_id": m,
               "price": draw(prices)}
    elif kind == "unknown":
        msg = {"type": draw(st.sampled_from(["mystery", "brand_new", 7, None])), "x": 1}
    else:
        return draw(st.sampled_from([b"", b"{", b"[]", b"{}", b'"x"', b"nul", b"\xff",
                                     b'{"type":"trade",', b'{"type":"orderbook",',
                                     b'{"a":1,"type":"price_update"} x',
                                     b'{"type":"price_update","market_id":"m","mid":1e999}']))
    if draw(st.integers(0, 6)) == 0:  # off the assumed layout
        key = draw(st.sampled_from(sorted(msg)))
        if draw(st.booleans()):
            del msg[key]
        else:
            msg[key] = draw(odd)
    items = list(msg.items())
    if draw(st.booleans()):
        items = [items[i] for i in draw(st.permutations(range(len(items))))]
    text = ("{" + ",".join(json.dumps(k) + ":" + json.dumps(v) for k, v in items) + "}").encode()
    if draw(st.integers(0, 15)) == 0:
        text = text[: draw(st.integers(0, len(text)))]
    return text


@st.composite
def frames(draw: Any) -> tuple[str, Any]:
    """One whole message, or the same in fragments (TEXT fin=False + CONTINUATIONs)."""
    payload = draw(messages())
    if len(payload) < 2 or draw(st.integers(0, 4)):
        return "frame", payload
    cuts = sorted(draw(st.sets(st.integers(1, len(payload) - 1), min_size=1, max_size=3)))
    parts = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
    return "fragments", parts


ops = st.one_of(
    frames(), frames(), frames(), frames(), frames(), frames(), frames(), frames(),
    st.just(("hold", None)), st.just(("release", None)), st.just(("stray", None)),
    st.tuples(st.just("desync"), st.sampled_from(MARKETS)),
    st.tuples(st.just("on"), st.sampled_from(["price", "book", "price_update", "orderbook",
                                               "order_filled"])),
)


def _norm(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, BaseException):
        return type(x).__name__, str(x), _norm(getattr(x, "__cause__", None))
    if isinstance(x, tuple | list):
        return [_norm(v) for v in x]
    if isinstance(x, dict):
        return {k: _norm(v) for k, v in x.items()}
    return x


class FakeTransport:
    is_disconnected = False

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.underlying_transport = self

    def get_write_buffer_size(self) -> int:
        return 0

    def send(self, msg_type: Any, payload: bytes) -> None:
        self.sent.append(bytes(payload))


class Side:
    """One client, its listener (compiled or not) and everything it did."""

    def __init__(self, compiled: bool, resync_interval: float, raising: bool,
                 dict_listeners: bool) -> None:
        self.client = SatoriexClient("ws://127.0.0.1:1/ws", token="t.t.t",
                                     marketdata=SUBSCRIBED, resync_interval=resync_interval)
        self.client.compiled = compiled
        self.seen: list[Any] = []
        self.calls = 0
        self.raising = raising
        for name in sorted(EVENTS):
            if name in ("price_update", "orderbook") and not dict_listeners:
                continue
            self.client.on(name, self.recorder(name))
        self.listener = self.client._make_listener()
        self.transport = FakeTransport()
        self.client._listener = self.listener
        self.client._transport = self.transport  # type: ignore[assignment]
        assert isinstance(self.listener, SatoriexListener) == compiled
        assert type(self.listener) is (SatoriexListener if compiled else FeedListener)

    def recorder(self, name: str, tag: str = "") -> Callable[..., None]:
        def fn(*args: Any) -> None:
            self.seen.append((tag + name, _norm(args)))
            if name in ("price", "book") and self.raising:
                self.calls += 1
                if self.calls % 3 == 0:
                    raise ValueError(f"callback {self.calls} fails")
        return fn

    def do(self, op: str, arg: Any) -> None:
        c, feed = self.client, self.listener.feed
        if op == "frame":
            feed(arg)
        elif op == "fragments":
            for i, part in enumerate(arg):
                feed(part, msg_type=1 if i == 0 else 0, fin=i == len(arg) - 1)
        elif op == "stray":  # a continuation without a message: reported by both
            feed(b"x", msg_type=0)
        elif op == "hold":
            c._hydrate_enter(1000)
        elif op == "release":
            if c._hydrating:
                c._hydrate_exit(None)
        elif op == "desync":
            c.market_data.desync(arg)
        elif op == "on":
            c.on(arg, self.recorder(arg, tag="2:"))

    def state(self) -> Any:
        md = self.client.market_data
        books = {m: (_norm(md.get(m)), md.bids(m).tolist(), md.asks(m).tolist(), md.seq(m),
                     md.synced(m)) for m in MARKETS}
        stats = self.client._extra_stats()
        keep = ("prices", "books", "gaps", "crossed", "resyncs", "off_layout", "unknown",
                "markets", "ignored_deltas")
        counters = {k: getattr(self.listener, k) for k in ("frames", "bytes", "messages",
                                                           "errors")}
        return (self.seen, self.transport.sent, books, {k: stats[k] for k in keep}, counters,
                sorted(self.client._resyncing), self.client.callbacks.failures)


@given(st.lists(ops, max_size=60), st.sampled_from([0.0, 1e9]), st.booleans(),
       st.booleans())
def test_compiled_listener_equals_the_python_path(sequence: list[tuple[str, Any]],
                                                  resync_interval: float, raising: bool,
                                                  dict_listeners: bool) -> None:
    logging.disable(logging.CRITICAL)  # raising callbacks log at ERROR: not this test's news
    try:
        ours = Side(True, resync_interval, raising, dict_listeners)
        ref = Side(False, resync_interval, raising, dict_listeners)
        for op, arg in sequence:
            ours.do(op, arg)
            ref.do(op, arg)
        for side in (ours, ref):
            side.do("release", None)
        assert ours.state() == ref.state()
    finally:
        logging.disable(logging.NOTSET)


def test_the_common_cases_stay_in_c() -> None:
    side = Side(True, 1.0, False, False)
    for m in SUBSCRIBED:
        side.do("frame", json.dumps({"type": "orderbook", "market_id": m, "seq": 1,
                                     "snapshot": True, "bids": [[0.4, 1]],
                                     "asks": [[0.6, 1]]}).encode())
        side.do("frame", json.dumps({"type": "orderbook", "market_id": m, "seq": 2,
                                     "bids": [[0.45, 2]]}).encode())
        side.do("frame", json.dumps({"type": "price_update", "market_id": m, "mid": 0.5,
                                     "best_bid": 0.45, "best_ask": 0.6, "ts": 7}).encode())
    side.do("frame", b'{"type":"order_filled","id":1}')
    listener = side.listener
    assert isinstance(listener, SatoriexListener)
    assert (listener.prices, listener.books, listener.slow) == (2, 4, 1)
    assert side.seen == [("book", ["mkt_a", 1]), ("book", ["mkt_a", 2]),
                         ("price", ["mkt_a", 0.5, 0.45, 0.6, 7]),
                         ("book", ["mkt_b", 1]), ("book", ["mkt_b", 2]),
                         ("price", ["mkt_b", 0.5, 0.45, 0.6, 7]),
                         ("order_filled", [{"type": "order_filled", "id": 1}])]
    stats = side.client._extra_stats()
    assert (stats["prices"], stats["books"]) == (2, 4)
    # Someone wants the decoded messages: the Python path delivers them.
    side.client.on("price_update", side.recorder("price_update"))
    side.do("frame", b'{"type":"price_update","market_id":"mkt_a","mid":1,"best_bid":1,'
                     b'"best_ask":1,"ts":8}')
    assert listener.prices == 2 and side.seen[-1][0] == "price_update"
    assert side.client._extra_stats()["prices"] == 3


def test_listener_refuses_another_market_data() -> None:
    with pytest.raises(TypeError):
        SatoriexListener(object(), on_other=print, on_applied=print, on_refused=print,
                         on_report=print, on_established=print, resyncing={})
