"""Broker compact-array quotes: ns per frame for oddswire vs the peers, same frames."""

from __future__ import annotations

import random

import msgspec
import orjson
import pytest

from conftest import scale
from oddswire import reference
from oddswire.broker import QuoteBook
from oddswire.codec import CompactDecoder

SYMBOLS = ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "BTCUSD", "US500", "AUDUSD", "USDCHF"]
_rng = random.Random(5)
FRAMES = [
    orjson.dumps(["t", s, round(p, 5), round(p + 0.0002, 5), 1_763_700_000_000 + i])
    for i, (s, p) in enumerate(
        (_rng.choice(SYMBOLS), _rng.uniform(0.5, 2.0)) for _ in range(scale(20_000)))
]
NBYTES = sum(map(len, FRAMES))
EXPECTED = [tuple(orjson.loads(f)) for f in FRAMES]
EXPECTED_BOOK = {f[1]: (f[2], f[3], f[4]) for f in EXPECTED}


class Quote(msgspec.Struct, array_like=True):
    marker: str
    symbol: str
    bid: float
    ask: float
    ts: int


def _loop(fn):
    def run():
        return [fn(f) for f in FRAMES]
    return run


def _book(cls):
    def run():
        book = cls()
        for f in FRAMES:
            book.apply(f)
        return book
    return run


def _book_state(book):
    return {s: (book.bid[book.row(s)], book.ask[book.row(s)], int(book.ts[book.row(s)]))
            for s in book.symbols}


_ms = msgspec.json.Decoder(Quote)
DECODE = [
    ("oddswire CompactDecoder.decode", "oddswire", _loop(CompactDecoder().decode)),
    ("reference twin", "twin", _loop(reference.CompactDecoder().decode)),
    ("orjson.loads + tuple", "peer", _loop(lambda f: tuple(orjson.loads(f)))),
    ("msgspec array_like Struct", "peer",
     _loop(lambda f: (q := _ms.decode(f)) and (q.marker, q.symbol, q.bid, q.ask, q.ts))),
]


@pytest.mark.parametrize(("library", "kind", "fn"), DECODE, ids=[c[0] for c in DECODE])
def test_decode_quotes(bench, library, kind, fn):
    bench("compact quote -> tuple (20k frames)", library, kind, fn, nbytes=NBYTES,
          units=len(FRAMES), unit="frames", result=lambda got: got, expected=EXPECTED)


def _dict_book():
    book: dict[str, tuple[float, float, int]] = {}
    for f in FRAMES:
        _, s, b, a, t = orjson.loads(f)
        book[s] = (b, a, t)
    return book


BOOK = [
    ("oddswire QuoteBook.apply", "oddswire", _book(QuoteBook), _book_state),
    ("reference twin QuoteBook", "twin", _book(reference.QuoteBook), _book_state),
    ("orjson.loads + dict book", "peer", _dict_book, lambda d: d),
]


@pytest.mark.parametrize(("library", "kind", "fn", "state"), BOOK, ids=[c[0] for c in BOOK])
def test_quote_book(bench, library, kind, fn, state):
    bench("compact quote -> quote book (20k frames)", library, kind, fn, nbytes=NBYTES,
          units=len(FRAMES), unit="frames", result=state, expected=EXPECTED_BOOK)
