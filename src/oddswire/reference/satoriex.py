"""Pure-Python twin of the Rust ``MarketData`` (SatoriEx prices and order books): same API,
same rules, lists and dicts instead of Rust vectors. The oracle of the property tests and
the baseline of the benchmarks.

A message is read as the compiled reader reads it: when its first member is the ``type``
and names neither market-data type, nothing else is read (None); otherwise strict RFC 8259
JSON first (invalid JSON is a ``DecodeError`` with ``field`` None), then the assumed layout
member by member in document order (the first problem of the message's type names its
field; a missing field is noticed at the end, in the order ``market_id``, ``mid``,
``best_bid``, ``best_ask``, ``ts`` or ``market_id``, ``seq``).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from oddswire.errors import ConfigError, DecodeError
from oddswire.reference.compact import strict_loads

__all__ = ["BOOK", "CROSSED", "DEFAULT_LAYOUT", "GAP", "PRICE", "UNSYNCED", "MarketData"]

PRICE, BOOK, GAP, CROSSED, UNSYNCED = 1, 2, 3, 4, 5
DEFAULT_LAYOUT: dict[str, str] = {
    "type": "type", "price_type": "price_update", "book_type": "orderbook",
    "market_id": "market_id", "mid": "mid", "best_bid": "best_bid", "best_ask": "best_ask",
    "ts": "ts", "seq": "seq", "snapshot": "snapshot", "bids": "bids", "asks": "asks",
}
_I64 = (-(2**63), 2**63 - 1)
_WS = r"[ \t\n\r]*"
_STR = r'("(?:[^"\\]|\\.)*")'
_FIRST = re.compile((_WS + r"\{" + _WS + _STR + _WS + ":" + _WS + _STR).encode(), re.DOTALL)
_PRICE_FIELDS = ("mid", "best_bid", "best_ask", "ts")
_BOOK_FIELDS = ("seq", "snapshot", "bids", "asks")
_BAD = object()


class _Object(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs in document order (never a ``list``)."""


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    return _Object(pairs)


def _wrap(v: int) -> int:
    return (v + 2**63) % 2**64 - 2**63


def _price(v: Any) -> Any:
    if v is None:
        return math.nan
    if type(v) is int:
        try:
            f = float(v)
        except OverflowError:
            return _BAD
        return f if math.isfinite(f) else _BAD
    return v if type(v) is float else _BAD


def _finite(v: Any) -> Any:
    return _BAD if v is None else _price(v)


def _int(v: Any) -> Any:
    if type(v) is int:
        return v if _I64[0] <= v <= _I64[1] else _BAD
    return _BAD


def _levels(v: Any) -> Any:
    if type(v) is not list:
        return _BAD
    out = []
    for level in v:
        if type(level) is not list or len(level) != 2:
            return _BAD
        price, size = _finite(level[0]), _finite(level[1])
        if price is _BAD or size is _BAD or size < 0:
            return _BAD
        out.append((price, size))
    return out


class _Book:
    __slots__ = ("asks", "bids", "seq", "synced")

    def __init__(self) -> None:
        self.bids: list[list[float]] = []
        self.asks: list[list[float]] = []
        self.seq: int | None = None
        self.synced = False

    def crossed(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0][0] >= self.asks[0][0])


def _set(side: list[list[float]], price: float, size: float, desc: bool) -> None:
    key = (lambda lv: -lv[0]) if desc else (lambda lv: lv[0])
    k = -price if desc else price
    i = bisect.bisect_left(side, k, key=key)
    if i < len(side) and side[i][0] == price:
        if size == 0:
            del side[i]
        else:
            side[i][1] = size
    elif size != 0:
        side.insert(i, [price, size])


class MarketData:
    """Twin of ``oddswire_native.MarketData`` (see ``oddswire.satoriex``)."""

    def __init__(self, *, max_levels: int = 1000, layout: Mapping[str, str] | None = None,
                 capacity: int = 16) -> None:
        lay = dict(DEFAULT_LAYOUT)
        for k, v in (layout or {}).items():
            if k not in lay:
                raise ConfigError(f"unknown layout key {k!r}; known: {', '.join(DEFAULT_LAYOUT)}")
            lay[k] = v
        names = [lay[k] for k in DEFAULT_LAYOUT if k not in ("price_type", "book_type")]
        for i, n in enumerate(names):
            if n in names[i + 1:]:
                raise ConfigError(f"field name {n!r} is used twice in the layout")
        if lay["price_type"] == lay["book_type"]:
            raise ConfigError("price_type and book_type must differ")
        if max_levels < 1:
            raise ConfigError("max_levels must be >= 1")
        self._layout = lay
        self._names = {lay[k]: k for k in DEFAULT_LAYOUT if k not in ("price_type", "book_type")}
        self.max_levels = max_levels
        self.ignored = 0
        self.last_row = -1
        self.gap = (0, 0)
        self._rows: dict[str, int] = {}
        self._ids: list[str] = []
        self._books: list[_Book] = []
        self._mid: list[float] = []
        self._bid: list[float] = []
        self._ask: list[float] = []
        self._ts: list[int] = []

    # --- applying ------------------------------------------------------------------------

    def apply(self, frame: bytes | str) -> int | None:
        if isinstance(frame, bytes | bytearray | memoryview):
            frame = bytes(frame)
        elif not isinstance(frame, str):
            raise TypeError("frame must be bytes or str")
        lay = self._layout
        data = frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame
        m = _FIRST.match(data)
        if m is not None:
            try:
                key = strict_loads(m.group(1).decode("utf-8"))
                value = strict_loads(m.group(2).decode("utf-8"))
            except ValueError:  # UnicodeDecodeError included: the full parse reports it
                key = value = None
            if (key == lay["type"] and type(value) is str
                    and value not in (lay["price_type"], lay["book_type"])):
                return None
        try:
            msg = strict_loads(frame, object_pairs_hook=_pairs)
        except (ValueError, RecursionError) as e:
            raise DecodeError(f"invalid JSON: {e}") from None
        if type(msg) is not _Object:
            return None  # not an object
        kind: str | None = None
        typed = False
        market: str | None = None
        vals: dict[str, Any] = {}
        bad: dict[str, tuple[int, str, str]] = {}  # slot -> (index, field, message)
        for index, (k, v) in enumerate(msg):
            name = self._names.get(k)
            if name is None:
                continue
            if name == "type":
                typed = type(v) is str
                kind = None
                if typed:
                    kind = ("price" if v == lay["price_type"]
                            else "book" if v == lay["book_type"] else None)
                continue
            if name == "market_id":
                if type(v) is str:
                    market = v
                else:
                    bad.setdefault("common", (index, k, "expected a string"))
                continue
            if name in ("mid", "best_bid", "best_ask"):
                got = _price(v)
            elif name in ("ts", "seq"):
                got = _int(v)
            elif name == "snapshot":
                got = v if type(v) is bool else _BAD
            else:
                got = _levels(v)
            slot = "price" if name in _PRICE_FIELDS else "book"
            if got is _BAD:
                bad.setdefault(slot, (index, k, "does not fit the assumed layout"))
            else:
                vals[name] = got
        if not typed or kind is None:
            return None
        found = [b for b in (bad.get("common"), bad.get(kind)) if b is not None]
        if found:
            _, field, message = min(found)
            raise DecodeError(f"{field}: {message}", field=field)
        if market is None:
            raise DecodeError(f"{lay['market_id']}: missing", field=lay["market_id"])
        for name in (_PRICE_FIELDS if kind == "price" else ("seq",)):
            if name not in vals:
                raise DecodeError(f"{lay[name]}: missing", field=lay[name])
        row = self._intern(market)
        self.last_row = row
        if kind == "price":
            self._mid[row], self._bid[row], self._ask[row] = (
                vals["mid"], vals["best_bid"], vals["best_ask"])
            self._ts[row] = vals["ts"]
            return PRICE
        return self._book_apply(self._books[row], vals)

    def _book_apply(self, book: _Book, vals: dict[str, Any]) -> int:
        seq = vals["seq"]
        bids, asks = vals.get("bids", []), vals.get("asks", [])
        if vals.get("snapshot", False):
            book.bids, book.asks = [], []
            status = self._levels(book, bids, asks)
            book.seq, book.synced = seq, True
        elif not book.synced:
            self.ignored += 1
            return UNSYNCED
        else:
            expected = seq if book.seq is None else _wrap(book.seq + 1)
            if seq != expected:
                book.synced = False
                self.gap = (expected, seq)
                return GAP
            status = self._levels(book, bids, asks)
            book.seq = seq
        if book.crossed():
            book.synced = False
            return CROSSED
        return status

    def _levels(self, book: _Book, bids: list[tuple[float, float]],
                asks: list[tuple[float, float]]) -> int:
        for p, s in bids:
            _set(book.bids, p, s, True)
        for p, s in asks:
            _set(book.asks, p, s, False)
        del book.bids[self.max_levels:]
        del book.asks[self.max_levels:]
        return BOOK

    def _intern(self, market: str) -> int:
        row = self._rows.get(market)
        if row is None:
            row = self._rows[market] = len(self._ids)
            self._ids.append(market)
            self._books.append(_Book())
            self._mid.append(math.nan)
            self._bid.append(math.nan)
            self._ask.append(math.nan)
            self._ts.append(_I64[0])
        return row

    # --- reading -------------------------------------------------------------------------

    @property
    def last_market(self) -> str | None:
        return self._ids[self.last_row] if self.last_row >= 0 else None

    @property
    def layout(self) -> dict[str, str]:
        return dict(self._layout)

    def get(self, market_id: str) -> tuple[float, float, float, int] | None:
        row = self._rows.get(market_id)
        if row is None or self._ts[row] == _I64[0]:
            return None
        return self._mid[row], self._bid[row], self._ask[row], self._ts[row]

    def row(self, market_id: str) -> int:
        return self._rows.get(market_id, -1)

    def market_ids(self) -> list[str]:
        return list(self._ids)

    def __contains__(self, market_id: str) -> bool:
        return market_id in self._rows

    def __len__(self) -> int:
        return len(self._ids)

    def _book(self, market_id: str) -> _Book | None:
        row = self._rows.get(market_id)
        return None if row is None else self._books[row]

    def bids(self, market_id: str) -> npt.NDArray[np.float64]:
        b = self._book(market_id)
        return np.array(b.bids if b else [], dtype=np.float64).reshape(-1, 2)

    def asks(self, market_id: str) -> npt.NDArray[np.float64]:
        b = self._book(market_id)
        return np.array(b.asks if b else [], dtype=np.float64).reshape(-1, 2)

    def seq(self, market_id: str) -> int | None:
        b = self._book(market_id)
        return None if b is None else b.seq

    def synced(self, market_id: str) -> bool:
        b = self._book(market_id)
        return b is not None and b.synced

    def desync(self, market_id: str) -> None:
        b = self._book(market_id)
        if b is not None:
            b.synced = False

    def desync_all(self) -> None:
        for b in self._books:
            b.synced = False

    def reset(self, market_id: str) -> bool:
        row = self._rows.get(market_id)
        if row is None:
            return False
        self._books[row] = _Book()
        self._mid[row] = self._bid[row] = self._ask[row] = math.nan
        self._ts[row] = _I64[0]
        return True

    @property
    def mid(self) -> npt.NDArray[np.float64]:
        return np.array(self._mid, dtype=np.float64)

    @property
    def best_bid(self) -> npt.NDArray[np.float64]:
        return np.array(self._bid, dtype=np.float64)

    @property
    def best_ask(self) -> npt.NDArray[np.float64]:
        return np.array(self._ask, dtype=np.float64)

    @property
    def ts(self) -> npt.NDArray[np.int64]:
        return np.array(self._ts, dtype=np.int64)

    def __repr__(self) -> str:
        synced = sum(b.synced for b in self._books)
        return f"MarketData(markets={len(self._ids)}, books_synced={synced})"
