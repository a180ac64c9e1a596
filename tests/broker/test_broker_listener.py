"""The Cython BrokerListener's frame handling against its pure-Python twin: random frame
sequences grouped into read buffers and split into WebSocket fragments, at every byte
boundary; conflation; callback failures."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddswire import reference
from oddswire._wire import BrokerListener
from oddswire.broker import QuoteBook
from oddswire.errors import DecodeError, ProtocolError

TEXT, BINARY, CONTINUATION, PONG = 1, 2, 0, 10
SYMBOLS = ["eurusd", "btcusd", "xauusd", "€uro", "us500"]


def quote(sym: str, bid: float, ask: float, ts: int) -> bytes:
    return json.dumps(["t", sym, bid, ask, ts], ensure_ascii=False).encode()


prices = st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-10**6, 10**6)
good_quotes = st.builds(quote, st.sampled_from(SYMBOLS), prices, prices, st.integers(0, 2**63 - 1))
payloads = st.one_of(
    good_quotes, good_quotes, good_quotes,
    st.builds(lambda m, v: json.dumps([m, *v]).encode(), st.sampled_from("boanz"),
              st.lists(st.integers() | st.text(max_size=4), max_size=4)),
    st.sampled_from([b'{"event":"account.switch","success":true,"active_login":5}',
                     b' {"event":"authorization","success":true}', b"pong", b"ping", b"",
                     b'["t","eurusd",1.0,"x",1]', b'["t","eurusd",1.0]', b'[', b"garbage",
                     b'["t","eurusd",1,2,-5]', b'\xff\xfe', b'  ["t","us500",1,2,3]  ',
                     b'["t","eurusd",NaN,1,2]', b'["t","eurusd",1e999,1,2]']),
    st.binary(max_size=12),
)


@st.composite
def wire(draw: Any) -> list[tuple[bytes, int, bool, bool]]:
    """(payload, msg_type, fin, last_in_buffer) frames: messages, some fragmented, in reads."""
    out: list[tuple[bytes, int, bool, bool]] = []
    for msg in draw(st.lists(payloads, max_size=25)):
        if len(msg) > 1 and draw(st.integers(0, 4)) == 0:
            cuts = sorted(draw(st.lists(st.integers(1, len(msg) - 1), min_size=1, max_size=3)))
            parts = [msg[a:b] for a, b in zip([0, *cuts], [*cuts, len(msg)], strict=True)]
            out.append((parts[0], draw(st.sampled_from([TEXT, BINARY])), False, False))
            out += [(p, CONTINUATION, False, False) for p in parts[1:-1]]
            out.append((parts[-1], CONTINUATION, True, False))
        else:
            out.append((msg, TEXT, True, False))
        if draw(st.integers(0, 9)) == 0:  # protocol noise: a pong control frame, a stray part
            out.append((b"", draw(st.sampled_from([PONG, CONTINUATION])), True, False))
    return [(p, t, f, draw(st.booleans()) or i == len(out) - 1) for i, (p, t, f, _) in
            enumerate(out)]


def transcript(cls: Any, book_cls: Any, frames: list[tuple[bytes, int, bool, bool]],
               **options: Any) -> tuple[list[Any], Any, Any]:
    events: list[Any] = []

    def err(e: BaseException) -> None:
        events.append(("error", type(e).__name__, getattr(e, "field", None)))
    def batch(rows: Any) -> None:
        assert rows.dtype == np.int64
        # The book already holds every row's latest values when the batch runs.
        events.append(("quotes", [(r, book.symbols[r], float(book.bid[r]), float(book.ask[r]),
                                   int(book.ts[r])) for r in rows.tolist()]))
    book = book_cls()
    if options.pop("batch", False):
        options["on_quotes"] = batch
    listener = cls(book, on_quote=lambda *a: events.append(("quote", *a)),
                   on_array=lambda p: events.append(("array", p)),
                   on_object=lambda p: events.append(("object", p)), on_error=err, **options)
    for payload, msg_type, fin, last in frames:
        listener.feed(payload, msg_type=msg_type, fin=fin, last_in_buffer=last)
    counters = (listener.frames, listener.bytes, listener.quotes, listener.delivered,
                listener.errors, listener.pongs, listener.batches)
    return events, counters, {s: (book.bid[book.row(s)], book.ask[book.row(s)],
                                  book.ts[book.row(s)]) for s in book.symbols}


def same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("conflate", [False, True])
@given(frames=wire())
def test_listener_agrees_with_twin(frames: list[Any], conflate: bool, batch: bool) -> None:
    got = transcript(BrokerListener, QuoteBook, frames, conflate=conflate, batch=batch)
    want = transcript(reference.BrokerListener, reference.QuoteBook, frames, conflate=conflate,
                      batch=batch)
    assert len(got[0]) == len(want[0])
    for g, w in zip(got[0], want[0], strict=True):
        # The twin parses a whole frame before reading fields, so JSON that is invalid
        # outright has no field there; the compiled scanner names where it stopped.
        assert g == w or (g[:2] == w[:2] and g[0] == "error" and w[2] is None), (g, w)
    assert got[1] == want[1]
    assert got[2].keys() == want[2].keys()
    for s in got[2]:
        assert all(same(x, y) for x, y in zip(got[2][s], want[2][s], strict=True))


@given(msgs=st.lists(payloads, min_size=1, max_size=4))
def test_every_fragment_boundary_gives_the_same_events(msgs: list[bytes]) -> None:
    whole = [(m, TEXT, True, True) for m in msgs]
    want = transcript(BrokerListener, QuoteBook, whole, batch=True)
    for i, m in enumerate(msgs):
        for cut in range(len(m) + 1):
            split = [*whole[:i], (m[:cut], TEXT, False, False), (m[cut:], CONTINUATION, True,
                                                                  True), *whole[i + 1:]]
            got = transcript(BrokerListener, QuoteBook, split, batch=True)
            assert got[0] == want[0], cut
            assert got[2].keys() == want[2].keys()


def test_quote_callback_gets_scalars_and_book_is_written_in_place() -> None:
    book, seen = QuoteBook(), []
    listener = BrokerListener(book, on_quote=lambda *a: seen.append(a))
    listener.feed(b'["t","eurusd",1.0852,1.08522,1763700000000]')
    listener.feed(b'["t","eurusd",1,2,3]')
    assert seen == [("eurusd", 1.0852, 1.08522, 1763700000000), ("eurusd", 1.0, 2.0, 3)]
    assert type(seen[1][1]) is float and type(seen[1][3]) is int
    assert seen[0][0] is seen[1][0]  # the book's interned symbol, not a new str per frame
    assert (book.bid[0], book.ask[0], book.ts[0]) == (1.0, 2.0, 3)


def test_quote_rows_mode() -> None:
    book, seen = QuoteBook(), []
    listener = BrokerListener(book, on_quote=seen.append, quote_rows=True)
    for sym in ("a", "b", "a"):
        listener.feed(quote(sym, 1, 2, 3))
    assert seen == [0, 1, 0]


def test_conflation_keeps_the_latest_per_symbol_in_first_arrival_order() -> None:
    book, seen = QuoteBook(), []
    listener = BrokerListener(book, on_quote=lambda *a: seen.append(a), conflate=True)
    listener.feed(quote("a", 1, 2, 1), last_in_buffer=False)
    listener.feed(quote("b", 5, 6, 2), last_in_buffer=False)
    listener.feed(quote("a", 3, 4, 3), last_in_buffer=False)
    assert seen == []
    listener.feed(quote("a", 7, 8, 4), last_in_buffer=True)
    assert seen == [("a", 7.0, 8.0, 4), ("b", 5.0, 6.0, 2)]
    assert (listener.quotes, listener.delivered) == (4, 2)


def test_conflation_flushes_before_other_events_to_keep_order() -> None:
    book, seen = QuoteBook(), []
    listener = BrokerListener(book, on_quote=lambda *a: seen.append(a[0]), conflate=True,
                              on_array=lambda p: seen.append(p))
    listener.feed(quote("a", 1, 2, 1), last_in_buffer=False)
    listener.feed(b'["o",1,2]', last_in_buffer=False)
    listener.feed(quote("a", 3, 4, 2), last_in_buffer=False)
    listener.flush()
    assert seen == ["a", b'["o",1,2]', "a"]


def test_a_raising_callback_is_reported_and_the_stream_goes_on() -> None:
    errors: list[BaseException] = []

    def bad(*a: Any) -> None:
        raise RuntimeError("bot bug")
    listener = BrokerListener(QuoteBook(), on_quote=bad, on_error=errors.append)
    listener.feed(quote("a", 1, 2, 3))
    listener.feed(quote("a", 1, 2, 4))
    assert [str(e) for e in errors] == ["bot bug", "bot bug"]
    assert listener.book.ts[0] == 4


def test_bad_frames_are_reported_with_their_field() -> None:
    errors: list[BaseException] = []
    listener = BrokerListener(QuoteBook(), on_error=errors.append)
    listener.feed(b'["t","eurusd",1.0,"x",1]')
    listener.feed(b"hello")
    listener.feed(b"x", msg_type=CONTINUATION)
    assert [(type(e), getattr(e, "field", None)) for e in errors] == [
        (DecodeError, 3), (DecodeError, 0), (ProtocolError, None)]
    assert len(listener.book) == 0


def test_fragmented_message_over_the_limit_is_dropped() -> None:
    errors: list[BaseException] = []
    listener = BrokerListener(QuoteBook(), on_error=errors.append, max_message_bytes=16)
    listener.feed(b'["t","eurusd",', fin=False)
    listener.feed(b'1.0,2.0,3]', msg_type=CONTINUATION)
    assert len(errors) == 1 and "max_message_bytes" in str(errors[0])
    assert len(listener.book) == 0


def test_listener_needs_a_native_quote_book() -> None:
    with pytest.raises(TypeError):
        BrokerListener(reference.QuoteBook())
    with pytest.raises(ValueError, match="quote_rows"):
        BrokerListener(QuoteBook([("symbol", "str"), ("px", "f64")]), on_quote=print)
    BrokerListener(QuoteBook([("symbol", "str"), ("px", "f64")]), on_quote=print,
                   quote_rows=True)


def test_the_quotes_batch_holds_each_updated_row_once_in_order_of_first_update() -> None:
    book, seen, order = QuoteBook(), [], []
    listener = BrokerListener(book, on_quote=lambda *a: order.append(("quote", a[0])),
                              on_quotes=lambda rows: (seen.append(rows), order.append("batch")))
    for i, sym in enumerate(["a", "b", "a", "c", "b"]):
        listener.feed(quote(sym, i, i + 1, i), last_in_buffer=False)
    assert seen == []
    listener.feed(quote("c", 9, 10, 9), last_in_buffer=True)
    (rows,) = seen
    assert rows.dtype == np.int64 and rows.tolist() == [book.row(s) for s in "abc"]
    assert (book.bid[book.row("a")], book.ts[book.row("c")]) == (2.0, 9)
    assert order[-1] == "batch" and len(order) == 7  # after the per-quote calls
    listener.feed(quote("b", 1, 2, 10), last_in_buffer=True)
    assert seen[1].tolist() == [book.row("b")]
    assert (listener.quotes, listener.delivered, listener.batches) == (7, 7, 2)


def test_the_quotes_batch_runs_without_a_quote_callback_and_with_conflation() -> None:
    book, seen = QuoteBook(), []
    listener = BrokerListener(book, on_quotes=lambda rows: seen.append(rows.tolist()))
    listener.feed(quote("a", 1, 2, 1), last_in_buffer=False)
    listener.feed(quote("a", 3, 4, 2), last_in_buffer=True)
    assert seen == [[0]]
    conflated: list[Any] = []
    listener = BrokerListener(book, on_quote=lambda *a: conflated.append(a), conflate=True,
                              on_quotes=lambda rows: conflated.append(rows.tolist()))
    listener.feed(quote("b", 1, 2, 1), last_in_buffer=False)
    listener.feed(quote("a", 5, 6, 3), last_in_buffer=False)
    listener.feed(quote("b", 3, 4, 2), last_in_buffer=True)
    assert conflated == [("b", 3.0, 4.0, 2), ("a", 5.0, 6.0, 3), [1, 0]]


def test_the_quotes_batch_is_delivered_before_other_events_and_on_flush() -> None:
    book, seen = QuoteBook(), []
    listener = BrokerListener(book, on_quotes=lambda rows: seen.append(rows.tolist()),
                              on_array=seen.append, on_object=seen.append)
    listener.feed(quote("a", 1, 2, 1), last_in_buffer=False)
    listener.feed(b'["o",1,2]', last_in_buffer=False)
    listener.feed(quote("b", 1, 2, 1), last_in_buffer=False)
    listener.feed(b'{"event":"x"}', last_in_buffer=False)
    listener.feed(quote("b", 1, 2, 2), last_in_buffer=False)
    listener.feed(b'["t","c",1,2,', last_in_buffer=True)  # bad: reported, the batch still goes
    listener.feed(quote("a", 1, 2, 3), last_in_buffer=False)
    listener.flush()
    assert seen == [[0], b'["o",1,2]', [1], b'{"event":"x"}', [1], [0]]
    listener.set_on_quotes(None)
    listener.feed(quote("a", 1, 2, 4), last_in_buffer=True)
    assert len(seen) == 6


def test_quote_and_batch_callback_errors_go_to_on_report_by_name() -> None:
    reports: list[tuple[str, str]] = []

    def bad(*a: Any) -> None:
        raise RuntimeError("bot bug")
    listener = BrokerListener(QuoteBook(), on_quote=bad, on_quotes=bad,
                              on_report=lambda name, exc: reports.append((name, str(exc))))
    listener.feed(quote("a", 1, 2, 3))
    listener.feed(quote("a", 1, 2, 4))
    assert reports == [("quote", "bot bug"), ("quotes", "bot bug")] * 2
    assert listener.book.ts[0] == 4 and listener.errors == 4


@pytest.mark.parametrize(("cls", "book_cls"), [(BrokerListener, QuoteBook),
                                               (reference.BrokerListener, reference.QuoteBook)],
                         ids=["compiled", "twin"])
def test_batch_holds_each_row_once_in_order_of_first_update(cls: Any, book_cls: Any) -> None:
    frames = [(quote(s, i, i + 1, i), TEXT, True, False)
              for i, s in enumerate(["eurusd", "btcusd", "eurusd", "us500", "btcusd"])]
    frames += [(b'{"event":"x"}', TEXT, True, False), (quote("eurusd", 9, 10, 9), TEXT, True, True)]
    events = transcript(cls, book_cls, frames, batch=True)[0]
    kinds = [e[0] for e in events]
    assert kinds == ["quote"] * 5 + ["quotes", "object", "quote", "quotes"]
    assert events[5] == ("quotes", [(0, "eurusd", 2.0, 3.0, 2), (1, "btcusd", 4.0, 5.0, 4),
                                    (2, "us500", 3.0, 4.0, 3)])
    assert events[8] == ("quotes", [(0, "eurusd", 9.0, 10.0, 9)])
