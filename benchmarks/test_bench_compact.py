"""Broker compact-array quotes in process: frames/s for oddswire vs the peers, same frames.

The stream is 200k quote frames over 600 symbols (a few hot, a long tail), written the way
different servers write them: prices with a fixed number of decimals (trailing zeros
kept), shortest float reprs, integer prices, full 17-digit doubles and exponents for tiny
prices; timestamps in s, ms or ns; 3% of frames with spaces after the commas. All but the
17-digit, exponent and spaced frames are exact frames (the decoders' fast path); those take
the general reader. The pure-Python twin runs the first 20k frames (it is ~40x slower);
ratios are per frame. Every library must end with the same book, or the same tuples.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
import orjson
import pytest

from conftest import scale
from oddswire import reference
from oddswire.broker import QuoteBook
from oddswire.codec import CompactDecoder

N = scale(200_000)
TWIN_N = scale(20_000)


def _symbols(rng: random.Random) -> list[str]:
    ccy = ["EUR", "USD", "GBP", "JPY", "CHF", "AUD", "NZD", "CAD", "SEK", "NOK", "MXN", "ZAR",
           "TRY", "PLN", "HUF", "CZK", "SGD", "HKD", "CNH", "DKK"]
    fx = [a + b for a in ccy for b in ccy if a != b]
    rng.shuffle(fx)
    names = fx[:220] + [s + sfx for s in fx[220:300] for sfx in (".r", ".pro", "m")][:160]
    names += [f"US{n}" for n in (30, 100, 500, 2000)] + ["DE40", "UK100", "JP225", "#NQ100_Z25"]
    names += [c + q for c in ("BTC", "ETH", "SOL", "XRP", "DOGE", "SHIB", "PEPE", "ADA")
              for q in ("USD", "USDT", "EUR")]
    names += [f"{t}.US" for t in ("AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "META", "GOOGL")]
    while len(names) < 600:
        names.append("".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=rng.randint(3, 5)))
                     + rng.choice([".US", ".DE", ".L", "", "-2025.ecn"]))
    return names[:600]


def _frames() -> list[bytes]:
    rng = random.Random(14)
    symbols = _symbols(rng)
    # Per symbol: a price level, decimals, and how its server writes numbers.
    style = {}
    for s in symbols:
        level = 10 ** rng.uniform(-5.5, 5)
        digits = max(0, min(7, 5 - round(__import__("math").log10(level)) + rng.randint(-1, 1)))
        shape = rng.choices(["fixed", "repr", "int", "double"], [60, 27, 5, 8])[0]
        stamp = rng.choices(["ms", "ns", "s"], [80, 15, 5])[0]
        style[s] = (level, digits, shape, stamp)
    weights = [1 / (i + 1) ** 1.1 for i in range(len(symbols))]
    out = []
    ts0 = 1_763_700_000_000_000_000
    for i, s in enumerate(rng.choices(symbols, weights, k=N)):
        level, digits, shape, stamp = style[s]
        bid = level * rng.uniform(0.98, 1.02)
        ask = bid + level * rng.uniform(0.00001, 0.001)
        if shape == "fixed":
            b, a = f"{bid:.{digits}f}", f"{ask:.{digits}f}"
        elif shape == "repr":
            b, a = repr(round(bid, digits)), repr(round(ask, digits))
        elif shape == "int":
            b, a = str(round(bid)), str(round(ask) + 1)
        else:
            b, a = repr(bid), repr(ask)
        ns = ts0 + i * 1_000_003
        t = {"ns": ns, "ms": ns // 1_000_000, "s": ns // 1_000_000_000}[stamp]
        sep = ", " if rng.random() < 0.03 else ","
        out.append(sep.join(['["t"', f'"{s}"', b, a, f"{t}]"]).encode())
    return out


FRAMES = _frames()
NBYTES = sum(map(len, FRAMES))
TWIN_FRAMES = FRAMES[:TWIN_N]
TWIN_NBYTES = sum(map(len, TWIN_FRAMES))


def _expected_book(frames: list[bytes]) -> dict[str, tuple[float, float, int]]:
    return {v[1]: (float(v[2]), float(v[3]), v[4]) for v in map(orjson.loads, frames)}


EXPECTED_BOOK = _expected_book(FRAMES)
TWIN_EXPECTED_BOOK = _expected_book(TWIN_FRAMES)
EXPECTED = [(v[0], v[1], float(v[2]), float(v[3]), v[4]) for v in map(orjson.loads, FRAMES)]


def _same_tuples(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> bool:
    """Equal values and types (an integer price must come back a float)."""
    return got == want and all(type(g[2]) is float and type(g[3]) is float
                               and type(g[4]) is int for g in got)


def _loop(fn: Any, frames: list[bytes] = FRAMES) -> Any:
    def run() -> list[Any]:
        return [fn(f) for f in frames]
    return run


_ms_tuple = msgspec.json.Decoder(tuple[str, str, float, float, int])


class Quote(msgspec.Struct, array_like=True, gc=False):
    marker: str
    symbol: str
    bid: float
    ask: float
    ts: int


_ms_struct = msgspec.json.Decoder(Quote)
_decoder = CompactDecoder()
DECODE = [
    ("oddswire CompactDecoder.decode", "oddswire", _loop(_decoder.decode), FRAMES),
    ("reference twin", "twin", _loop(reference.CompactDecoder().decode, TWIN_FRAMES),
     TWIN_FRAMES),
    ("msgspec typed tuple decode", "peer", _loop(_ms_tuple.decode), FRAMES),
    ("msgspec array_like Struct + tuple", "peer",
     _loop(lambda f: (q := _ms_struct.decode(f), (q.marker, q.symbol, q.bid, q.ask, q.ts))[1]),
     FRAMES),
    ("orjson.loads + typed tuple", "peer",
     _loop(lambda f: (v := orjson.loads(f), (v[0], v[1], float(v[2]), float(v[3]), v[4]))[1]),
     FRAMES),
]


@pytest.mark.parametrize(("library", "kind", "fn", "frames"), DECODE, ids=[c[0] for c in DECODE])
def test_decode_quotes(bench: Any, library: str, kind: str, fn: Any,
                       frames: list[bytes]) -> None:
    n = len(frames)
    bench(f"compact quote -> tuple ({N // 1000}k varied frames, 600 symbols)", library, kind, fn,
          nbytes=sum(map(len, frames)), units=n, unit="frames",
          result=lambda got: _same_tuples(got, EXPECTED[:n]), expected=True)


def _book(cls: Any, frames: list[bytes] = FRAMES) -> Any:
    def run() -> Any:
        book = cls()
        apply = book.apply
        for f in frames:
            apply(f)
        return book
    return run


def _book_state(book: Any) -> dict[str, tuple[float, float, int]]:
    bid, ask, ts = book.bid.tolist(), book.ask.tolist(), book.ts.tolist()
    return {s: (bid[r], ask[r], ts[r]) for r, s in enumerate(book.symbols)}


def _dict_book() -> dict[str, tuple[float, float, int]]:
    book: dict[str, tuple[float, float, int]] = {}
    loads = orjson.loads
    for f in FRAMES:
        _, s, b, a, t = loads(f)
        book[s] = (b, a, t)
    return book


def _orjson_lists() -> dict[str, list[Any]]:
    """The least a bot can do with orjson: keep each symbol's last parsed list."""
    book: dict[str, list[Any]] = {}
    loads = orjson.loads
    for f in FRAMES:
        v = loads(f)
        book[v[1]] = v
    return book


def _msgspec_book() -> dict[str, tuple[float, float, int]]:
    book: dict[str, tuple[float, float, int]] = {}
    decode = _ms_tuple.decode
    for f in FRAMES:
        _, s, b, a, t = decode(f)
        book[s] = (b, a, t)
    return book


def _floats(book: dict[str, tuple[Any, Any, int]]) -> dict[str, tuple[float, float, int]]:
    return {s: (float(b), float(a), t) for s, (b, a, t) in book.items()}


BOOK = [
    ("oddswire QuoteBook.apply", "oddswire", _book(QuoteBook), _book_state, EXPECTED_BOOK),
    ("reference twin QuoteBook", "twin", _book(reference.QuoteBook, TWIN_FRAMES), _book_state,
     TWIN_EXPECTED_BOOK),
    ("orjson.loads, last list per symbol", "peer", _orjson_lists,
     lambda got: _floats({s: (v[2], v[3], v[4]) for s, v in got.items()}), EXPECTED_BOOK),
    ("orjson.loads + dict book", "peer", _dict_book, _floats, EXPECTED_BOOK),
    ("msgspec typed tuple + dict book", "peer", _msgspec_book, _floats, EXPECTED_BOOK),
]


@pytest.mark.parametrize(("library", "kind", "fn", "state", "expected"), BOOK,
                         ids=[c[0] for c in BOOK])
def test_quote_book(bench: Any, library: str, kind: str, fn: Any, state: Any,
                    expected: Any) -> None:
    n = TWIN_N if kind == "twin" else N
    bench(f"compact quote -> quote book ({N // 1000}k varied frames, 600 symbols)", library,
          kind, fn, nbytes=TWIN_NBYTES if kind == "twin" else NBYTES, units=n, unit="frames",
          result=state, expected=expected)


def test_the_stream_is_mostly_exact_frames() -> None:
    """The mix the docstring describes: most frames exact, the rest for the general reader."""
    spaced = sum(b", " in f for f in FRAMES)
    exponent = sum(b"e" in f for f in FRAMES)
    assert 0.01 < spaced / N < 0.05 and exponent > 0
    assert len(EXPECTED_BOOK) > 400
