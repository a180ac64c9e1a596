"""CompactDecoder and QuoteBook (Rust) against their pure-Python twins."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddswire import reference
from oddswire.broker import QuoteBook
from oddswire.codec import CompactDecoder
from oddswire.errors import ConfigError, DecodeError

json_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda inner: (st.lists(inner, max_size=3)
                   | st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8,
)
symbols = st.text(min_size=1, max_size=8)
prices = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6)
stamps = st.integers(0, 2**63 - 1)


@st.composite
def frames(draw):
    if draw(st.booleans()):
        items = ["t", draw(symbols), draw(prices), draw(prices), draw(stamps),
                 *draw(st.lists(json_values, max_size=2))]
    else:
        items = draw(st.lists(json_values, max_size=6))
        if items and draw(st.booleans()):
            items[0] = draw(st.sampled_from(["b", "o", "a", "n", "t"]))
    text = json.dumps(items, ensure_ascii=draw(st.booleans()),
                      separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    return text.encode() if draw(st.booleans()) else text


def outcome(impl, frame):
    try:
        return ("ok", impl.decode(frame))
    except DecodeError as exc:
        return ("error", exc.field)


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(frames())
def test_decode_matches_twin(frame):
    got, want = outcome(CompactDecoder(), frame), outcome(reference.CompactDecoder(), frame)
    assert got[0] == want[0]
    assert same(got[1], want[1])


@given(frames(), st.integers(0, 200), st.sampled_from(b'[]{},:"\\-.0eE \x00\xff'))
def test_mutated_frames_fail_alike(frame, pos, byte):
    data = bytearray(frame.encode() if isinstance(frame, str) else frame)
    data.insert(pos % (len(data) + 1), byte)
    got = outcome(CompactDecoder(), bytes(data))
    want = outcome(reference.CompactDecoder(), bytes(data))
    assert got[0] == want[0]
    if got[0] == "ok":
        assert same(got[1], want[1])


@pytest.mark.parametrize("impl", [CompactDecoder, reference.CompactDecoder], ids=["rust", "twin"])
@pytest.mark.parametrize(("frame", "field"), [
    (b'{"t":1}', 0), (b"[]", 0), (b'[1,"x"]', 0), (b'["t","X",1.0]', 3),
    (b'["t","X",null,1,2]', 2), (b'["t","X",true,1,2]', 2), (b'["t","X",1,"1",2]', 3),
    (b'["t",1,1,1,2]', 1), (b'["t",null]', 1), (b'["t","X",1]', 3),
 (b'["t","X",1,1,-1]', 4), (b'["t","X",1,1,1.7e12]', 4),
    (b'["t","X",1,1,1700000000000.0]', 4), (b'["t","X",1,1,9223372036854775808]', 4),
])
def test_malformed_frames_name_the_field(impl, frame, field):
    with pytest.raises(DecodeError) as info:
        impl().decode(frame)
    assert info.value.field == field


@pytest.mark.parametrize("impl", [CompactDecoder, reference.CompactDecoder], ids=["rust", "twin"])
@pytest.mark.parametrize("frame", [
    b'["t","X",NaN,1,2]', b'["t","X",Infinity,1,2]', b'["t","X",1e400,1,2]',
    b'\xef\xbb\xbf["t","X",1,1,2]', b'["t","\\ud800",1,1,2]', b'["t","\xed\xa0\x80",1,1,2]',
    b'["t","X",01,1,2]', b'["t","X",1,1,2]]', b'["t","X",1,1,2,]', b"\x00",
])
def test_not_strict_json_is_rejected(impl, frame):
    with pytest.raises(DecodeError):
        impl().decode(frame)


@pytest.mark.parametrize("impl", [CompactDecoder, reference.CompactDecoder], ids=["rust", "twin"])
def test_schemas_extras_and_passthrough(impl):
    dec = impl({"b": [("currency", "str"), ("balance", "f64"), ("login", "i64"),
                      ("demo", "bool"), ("meta", "json")]})
    assert dec.decode('["t","EURUSD",1,2.5,7,{"x":[1]}]') == (
        "t", "EURUSD", 1.0, 2.5, 7, {"x": [1]})
    assert dec.decode(b'["b","USD",10,2000009,false,null,"more"]') == (
        "b", "USD", 10.0, 2000009, False, None, "more")
    assert dec.decode(b'["o",1,"two",[3]]') == ("o", 1, "two", [3])
    with pytest.raises(ConfigError):
        impl({"x": [("a", "decimal")]})


def test_repeated_symbols_are_interned():
    dec = CompactDecoder()
    a = dec.decode(b'["t","EURUSD",1,2,3]')[1]
    b = dec.decode(b'["t","EURUSD",1,2,4]')[1]
    assert a is b


@given(st.lists(st.tuples(st.sampled_from(["EURUSD", "GBPUSD", "XAUUSD", "BTCUSD", "é"]),
                          prices, prices, stamps), max_size=40), st.integers(1, 4))
def test_quote_book_matches_twin(quotes, capacity):
    books = [QuoteBook(capacity=capacity), reference.QuoteBook(capacity=capacity)]
    for symbol, bid, ask, ts in quotes:
        frame = json.dumps(["t", symbol, bid, ask, ts]).encode()
        rows = [book.apply(frame) for book in books]
        assert rows[0] == rows[1] == books[0].row(symbol)
    assert books[0].symbols == books[1].symbols
    for name in ("bid", "ask", "ts"):
        np.testing.assert_array_equal(books[0].column(name), books[1].column(name))
    assert len(books[0]) == len(books[1]) == len({q[0] for q in quotes})


@pytest.mark.parametrize("impl", [QuoteBook, reference.QuoteBook], ids=["rust", "twin"])
def test_quote_book_basics(impl):
    book = impl([("symbol", "str"), ("bid", "f64"), ("ask", "f64"), ("ts", "ts"), ("vol", "i64")],
                capacity=1)
    assert book.apply(b'["t","EURUSD",1.1,1.2,5,100]') == 0
    assert book.apply('["t","GBPUSD",1.3,1.4,6,200,"extra"]') == 1
    assert book.apply(b'["b","USD",1]') == -1
    assert book.capacity == 2
    with pytest.raises(DecodeError):
        book.apply(b'["t","EURUSD",null,1.2,5,100]')
    assert book.bid.tolist() == [1.1, 1.3]  # a failed apply wrote nothing
    assert book.columns["vol"].tolist() == [100, 200]
    assert book.row("XAUUSD") == -1
    with pytest.raises(ConfigError):
        impl([("bid", "f64")])


book_ops = st.lists(st.one_of(
    st.tuples(st.just("quote"), st.sampled_from(["EURUSD", "GBPUSD", "XAUUSD", "BTCUSD", "é"]),
              prices, prices, stamps),
    st.tuples(st.just("admit"), st.booleans()),
    st.tuples(st.just("reserve"), st.lists(st.sampled_from(["EURUSD", "GBPUSD", "ETHUSD"]),
                                           max_size=3)),
), max_size=40)


@given(book_ops, st.integers(1, 4), st.booleans())
def test_quote_book_admission_matches_twin(ops, capacity, admit_new):
    books = [QuoteBook(capacity=capacity, admit_new=admit_new),
             reference.QuoteBook(capacity=capacity, admit_new=admit_new)]
    for op in ops:
        if op[0] == "quote":
            frame = json.dumps(["t", *op[1:]]).encode()
            rows = [book.apply(frame) for book in books]
            assert rows[0] == rows[1] == (books[0].row(op[1]) if rows[0] != -2 else -2)
        elif op[0] == "admit":
            for book in books:
                book.admit_new = op[1]
        else:
            for book in books:
                book.reserve(op[1])
        assert books[0].rejected == books[1].rejected
        assert books[0].admit_new is books[1].admit_new
    assert books[0].symbols == books[1].symbols
    assert books[0].capacity == books[1].capacity
    for name in ("bid", "ask", "ts"):
        np.testing.assert_array_equal(books[0].column(name), books[1].column(name))


@pytest.mark.parametrize("impl", [QuoteBook, reference.QuoteBook], ids=["rust", "twin"])
def test_quote_book_admits_only_reserved_symbols(impl):
    book = impl(capacity=2, admit_new=False)
    assert book.admit_new is False and book.rejected == 0
    assert book.apply(b'["t","EURUSD",1.1,1.2,5]') == -2
    assert len(book) == 0 and book.row("EURUSD") == -1 and book.rejected == 1
    book.reserve(iter(["EURUSD", "GBPUSD", "EURUSD"]))
    assert book.symbols == ["EURUSD", "GBPUSD"]
    assert np.isnan(book.bid).all() and np.isnan(book.ask).all() and book.ts.tolist() == [0, 0]
    assert book.apply(b'["t","GBPUSD",1.3,1.4,6]') == 1
    assert book.apply(b'["t","XAUUSD",1.5,1.6,7]') == -2
    assert book.apply(b'["b","USD",1]') == -1  # another marker: not a rejection
    with pytest.raises(DecodeError):  # a bad frame is an error before admission
        book.apply(b'["t","XAUUSD",null,1.6,7]')
    assert book.rejected == 2 and book.bid[1] == 1.3
    book.admit_new = True
    assert book.apply(b'["t","XAUUSD",1.5,1.6,7]') == 2 and book.capacity == 4
    with pytest.raises(ConfigError):
        book.reserve("EURUSD")
    with pytest.raises(TypeError):
        book.admit_new = 1


def test_a_flood_of_unknown_symbols_allocates_nothing():
    """A hostile server sending many symbols costs a counter, not a row each."""
    book = QuoteBook(admit_new=False)
    book.reserve(["EURUSD"])
    for i in range(200_000):
        assert book.apply(b'["t","S%d",1,2,3]' % i) == -2
    assert (len(book), book.capacity, book.rejected) == (1, 64, 200_000)


@pytest.mark.parametrize("impl", [CompactDecoder, reference.CompactDecoder], ids=["rust", "twin"])
def test_an_integer_python_cannot_convert_is_a_decode_error(impl):
    assert impl().decode(b'["x",' + b"9" * 4000 + b"]") == ("x", int("9" * 4000))
    with pytest.raises(DecodeError, match="invalid JSON"):  # over sys.get_int_max_str_digits
        impl().decode(b'["x",' + b"9" * 5000 + b"]")


# Exact quote frames (no whitespace, plain ASCII symbol, nothing after the ts) take the
# decoders' fast path; everything else takes the general reader. Both must match the twin
# bit for bit, whatever the number looks like on the wire.
digit_runs = st.text("0123456789", min_size=1, max_size=20)
number_texts = st.builds(
    lambda sign, lead, digits, frac, exp: (
        sign + (lead + digits if lead != "0" else "0") + ("." + frac if frac else "") + exp),
    st.sampled_from(["", "", "-"]),
    st.sampled_from(["0", "1", "2", "9"]),
    st.text("0123456789", max_size=18),
    st.none() | digit_runs,
    st.sampled_from(["", "", "", "e5", "E-3", "e+300", "e400", "e-400"]),
)
plain_symbols = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E,
                                      exclude_characters='"\\'), max_size=24)
stamp_texts = st.integers(0, 2**63 + 10).map(str) | st.sampled_from(["01", "-1", "1.0", "1e3"])


@st.composite
def exact_frames(draw):
    symbol = draw(plain_symbols | st.sampled_from(["é", 'a"b', "a\\b"]).map(
        lambda s: json.dumps(s)[1:-1]))
    bid, ask, ts = draw(number_texts), draw(number_texts), draw(stamp_texts)
    frame = f'["t","{symbol}",{bid},{ask},{ts}]'
    if draw(st.integers(0, 9)) == 0:  # near misses: whitespace, extras, trailing bytes
        frame = draw(st.sampled_from([" " + frame, frame + " ", frame.replace(",", ", "),
                                      frame[:-1] + ',"x"]', frame[:-1] + "]]", frame[:-1]]))
    return frame.encode()


@given(exact_frames())
def test_exact_and_near_exact_frames_decode_like_the_twin(frame):
    got, want = outcome(CompactDecoder(), frame), outcome(reference.CompactDecoder(), frame)
    assert got[0] == want[0], frame
    if got[0] == "ok":  # error fields differ where the twin's json reports no field
        assert same(got[1], want[1]), frame


def book_outcome(book, frame):
    try:
        row = book.apply(frame)
    except DecodeError:
        return ("error", None)
    if row < 0:
        return ("row", row)
    return ("row", row, book.bid[row], book.ask[row], int(book.ts[row]))


@given(st.lists(exact_frames(), min_size=1, max_size=8), st.booleans())
def test_exact_and_near_exact_frames_apply_like_the_twin(frames, admit_new):
    books = [QuoteBook(capacity=1, admit_new=admit_new),
             reference.QuoteBook(capacity=1, admit_new=admit_new)]
    books[0].reserve(["EURUSD"]), books[1].reserve(["EURUSD"])
    for frame in frames:
        got, want = (book_outcome(b, frame) for b in books)
        assert got[:2] == want[:2], frame
        for g, w in zip(got[2:], want[2:], strict=True):
            assert same(float(g), float(w)) or (math.isnan(g) and math.isnan(w)), frame
    assert books[0].symbols == books[1].symbols
    assert books[0].rejected == books[1].rejected


def test_exact_frames_keep_what_the_general_reader_gives():
    dec = CompactDecoder()
    assert dec.decode(b'["t","EURUSD",-0,-0.0,0]') == ("t", "EURUSD", 0.0, -0.0, 0)
    assert math.copysign(1, dec.decode(b'["t","EURUSD",-0,-0.0,0]')[2]) == 1.0
    assert math.copysign(1, dec.decode(b'["t","EURUSD",-0,-0.0,0]')[3]) == -1.0
    assert dec.decode(b'["t","X",1.10000,65000,9223372036854775807]') == (
        "t", "X", 1.1, 65000.0, 2**63 - 1)
    assert dec.decode(b'["t","X",1,2,3]')[0] is dec.decode(b'["t"  ,"X",1,2,3]')[0]
    with pytest.raises(DecodeError) as info:
        dec.decode(b'["t","X",1,2,9223372036854775808]')
    assert info.value.field == 4
    book = QuoteBook()
    assert book.apply(b'["t","X",1.5,2,3]') == 0
    with pytest.raises(DecodeError):
        book.apply(b'["t","X",1e400,2,3]')
    assert book.bid.tolist() == [1.5]
