"""Pure-Python twin of the Rust ``OddsTable``: same API, same rules, dicts instead of hash
maps. The oracle of the property tests and the baseline of the benchmarks."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from oddswire.errors import ConfigError, DecodeError
from oddswire.reference.compact import strict_loads

__all__ = ["Applied", "OddsTable", "SportEvent", "is_terminal"]

KINDS = frozenset({
    "sport_event_snapshot", "sport_event_added", "markets_updated", "bet_stop_updated",
    "fixture_updated", "competitor_scores_updated", "game_state_updated", "extensions_updated",
    "bets_rollback", "heartbeat",
})
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_I64 = (-(2**63), 2**63 - 1)
_U64_MAX = 2**64 - 1


def is_terminal(status: int) -> bool:
    """Ended, closed, cancelled or abandoned."""
    return 3 <= status <= 6


class _Bad(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# --- numbers orjson cannot read back ------------------------------------------------------
# Side objects and payloads are decoded with orjson when read, so a line is refused when one
# of its numbers would not come back: an integer outside [-2**63, 2**64-1] (orjson turns it
# into a float, or fails once it overflows) or a float that overflows to infinity.


class _Unreadable(ValueError):
    pass


class _Num(str):
    """Where an unreadable number was (second pass): the error message for it."""


class _Members(list[tuple[str, Any]]):
    """An object's members in document order, repeated keys included (second pass)."""


def _int_text(text: str) -> str:
    # 20 characters hold every integer of the range ("-9223372036854775808"); JSON has no
    # leading zeros, so a longer one is out of range without converting it.
    if len(text) > 20 or not _I64[0] <= int(text) <= _U64_MAX:
        return f"integer of {len(text.lstrip('-'))} digits outside [-2**63, 2**64-1]"
    return ""


def _exact_int(text: str) -> int:
    if _int_text(text):
        raise _Unreadable(text)
    return int(text)


def _exact_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Unreadable(text)
    return value


def _marked_int(text: str) -> Any:
    problem = _int_text(text)
    return _Num(problem) if problem else 0


def _marked_float(text: str) -> Any:
    return _Num("number out of range") if math.isinf(float(text)) else 0.0


def _first_unreadable(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, _Num):
        return path, value
    if isinstance(value, _Members):
        items: Iterable[tuple[str, Any]] = ((f"{path}.{k}", v) for k, v in value)
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for p, v in items:
        found = _first_unreadable(v, p)
        if found is not None:
            return found
    return None


def _loads(line: bytes | str) -> Any:
    """The line as JSON; a number orjson cannot read back is a ``_Bad`` at its path."""
    try:
        return strict_loads(line, parse_int=_exact_int, parse_float=_exact_float)
    except _Unreadable:
        pass
    except (ValueError, UnicodeDecodeError) as e:
        raise _Bad("", f"invalid JSON: {e}") from None
    # Find the first such number in document order, repeated keys included.
    try:
        marked = strict_loads(line, parse_int=_marked_int, parse_float=_marked_float,
                              object_pairs_hook=_Members)
    except (ValueError, UnicodeDecodeError) as e:  # the JSON is broken after that number
        raise _Bad("", f"invalid JSON: {e}") from None
    found = _first_unreadable(marked, "")
    assert found is not None
    raise _Bad(*found)


def _describe(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, (int, float)):
        return "a number"
    if v is None:
        return "null"
    return "an array" if isinstance(v, list) else "an object"


def _need(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _Bad(f"{path}.{key}", "missing")
    return obj[key]


def _str(v: Any, path: str) -> str:
    if not isinstance(v, str):
        raise _Bad(path, f"expected a string, got {_describe(v)}")
    return v


def _int(v: Any, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not _I64[0] <= v <= _I64[1]:
        raise _Bad(path, f"expected an integer, got {_describe(v)}")
    return int(v)


def _status(v: Any, path: str) -> int:
    n = _int(v, path)
    if not 0 <= n <= 127:
        raise _Bad(path, f"status {n} out of range 0..127")
    return n


def _bool(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise _Bad(path, f"expected a boolean, got {_describe(v)}")
    return v


def _decimal(v: Any, path: str) -> float:
    s = _str(v, path)
    if _DECIMAL.match(s):
        x = float(s)
        if x not in (float("inf"), float("-inf")):
            return x
    raise _Bad(path, f"expected a decimal string, got {s!r}")


def _obj(v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _Bad(path, f"expected an object, got {_describe(v)}")
    return v


def _arr(v: Any, path: str) -> list[Any]:
    if not isinstance(v, list):
        raise _Bad(path, f"expected an array, got {_describe(v)}")
    return v


@dataclass
class _Odd:
    id: str
    value: float
    probability: float
    status: int
    is_active: bool


@dataclass
class _Market:
    id: str
    status: int
    type_id: int
    specifiers: str
    odds: list[_Odd]


def _parse_market(m: Any, path: str) -> _Market:
    m = _obj(m, path)
    odds = []
    for i, o in enumerate(_arr(_need(m, "odds", path), f"{path}.odds")):
        p = f"{path}.odds[{i}]"
        o = _obj(o, p)
        prob = o.get("probability")
        odds.append(_Odd(
            _str(_need(o, "id", p), f"{p}.id"),
            _decimal(_need(o, "value", p), f"{p}.value"),
            float("nan") if prob is None else _decimal(prob, f"{p}.probability"),
            _status(_need(o, "status", p), f"{p}.status"),
            _bool(_need(o, "is_active", p), f"{p}.is_active"),
        ))
    return _Market(
        _str(_need(m, "id", path), f"{path}.id"),
        _status(_need(m, "status", path), f"{path}.status"),
        _int(m.get("type_id", 0), f"{path}.type_id"),
        _str(m.get("specifiers", ""), f"{path}.specifiers"),
        odds,
    )


@dataclass
class _Parsed:
    kind: str
    event_type: str
    sport_event_id: str | None
    sport_id: str | None
    version: str | None
    timestamp_ns: int | None
    payload: Any
    markets: list[_Market] = field(default_factory=list)
    fixture_status: int | None = None


def _parse(line: bytes | str) -> _Parsed:
    top = _obj(_loads(line), "")
    et = _str(_need(top, "event_type", ""), ".event_type")
    kind = et if et in KINDS else "unknown"
    sid = top.get("sport_event_id")
    ver = top.get("version")
    sid = None if "sport_event_id" not in top else _str(sid, ".sport_event_id")
    ver = None if "version" not in top else _str(ver, ".version")
    sport_id = None if "sport_id" not in top else _str(top["sport_id"], ".sport_id")
    ts = None if "timestamp_ns" not in top else _int(top["timestamp_ns"], ".timestamp_ns")
    payload = top.get("payload")
    out = _Parsed(kind, et, sid, sport_id, ver, ts, payload)
    if kind != "heartbeat":
        _need(top, "sport_event_id", "")
        _need(top, "version", "")
        if kind != "unknown":
            _need(top, "payload", "")
    if "payload" not in top or kind in ("heartbeat", "unknown"):
        return out
    P = ".payload"
    if kind in ("sport_event_snapshot", "sport_event_added"):
        p = _obj(payload, P)
        fx = _obj(_need(p, "fixture", P), f"{P}.fixture")
        out.fixture_status = _status(_need(fx, "status", f"{P}.fixture"), f"{P}.fixture.status")
        out.markets = [_parse_market(m, f"{P}.markets[{i}]")
                       for i, m in enumerate(_arr(p.get("markets", []), f"{P}.markets"))]
        if "bet_stop" in p:
            _bool(p["bet_stop"], f"{P}.bet_stop")
        for key, check in (("game_state", _obj), ("competitors_score", _arr), ("extensions", _obj)):
            if key in p:
                check(p[key], f"{P}.{key}")
    elif kind == "markets_updated":
        out.markets = [_parse_market(m, f"{P}[{i}]") for i, m in enumerate(_arr(payload, P))]
    elif kind == "bet_stop_updated":
        _bool(_need(_obj(payload, P), "bet_stop", P), f"{P}.bet_stop")
    elif kind == "fixture_updated":
        out.fixture_status = _status(_need(_obj(payload, P), "status", P), f"{P}.status")
    elif kind == "competitor_scores_updated":
        _arr(payload, P)
    elif kind in ("game_state_updated", "extensions_updated"):
        _obj(payload, P)
    elif kind == "bets_rollback":
        _arr(_need(_obj(payload, P), "markets", P), f"{P}.markets")
    return out


def _identity(line: bytes | str) -> tuple[str | None, str | None]:
    # Any JSON line names its event, whatever its numbers.
    try:
        top = strict_loads(line, parse_int=_marked_int, parse_float=_marked_float)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(top, dict):
        return None, None
    sid, ver = top.get("sport_event_id"), top.get("version")
    return (sid if isinstance(sid, str) else None, ver if isinstance(ver, str) else None)


@dataclass(frozen=True)
class Applied:
    event_type: str
    known_type: bool
    sport_event_id: str | None
    version: str | None
    timestamp_ns: int | None
    known_event: bool
    rows_written: int
    rows_removed: int
    markets_changed: int
    payload: Any
    line: bytes | str


@dataclass
class SportEvent:
    sport_event_id: str
    sport_id: str = ""
    status: int = 0
    bet_stop: bool = False
    version: str = ""
    ended_at_ns: int | None = None
    fixture: Any = None
    scores: Any = None
    game_state: Any = None
    extensions: Any = None
    markets: dict[str, _MarketState] = field(default_factory=dict)
    index: int = 0

    @property
    def market_ids(self) -> list[str]:
        return sorted(self.markets)


@dataclass
class _MarketState:
    status: int
    type_id: int
    specifiers: str
    rows: dict[str, int]
    index: int = 0


class OddsTable:
    """The DATA.BET odds table in plain Python (see ``oddswire.databet.OddsTable``)."""

    def __init__(self, capacity: int = 1024, retention_s: float | None = None) -> None:
        if retention_s is not None and not (retention_s >= 0 and retention_s != float("inf")):
            raise ConfigError("retention_s must be a finite number >= 0")
        self.retention_ns = None if retention_s is None else int(retention_s * 1e9)
        self._cap = max(64, capacity)
        self._cols: dict[str, npt.NDArray[Any]] = {}
        self._alloc_cols(self._cap, 0)
        self._events: dict[str, SportEvent] = {}
        self._free: list[int] = []
        self._keys: dict[int, tuple[str, str, str]] = {}
        self._high = 0
        self._serial = 0  # event and market numbers in the index columns (not slots, as in Rust)
        self.version = ""
        self.healthy = True

    def _alloc_cols(self, n: int, keep: int) -> None:
        spec = (("value", np.float64, np.nan), ("probability", np.float64, np.nan),
                ("status", np.int8, -1), ("is_active", np.bool_, False),
                ("event", np.int32, -1), ("market", np.int32, -1))
        new = {}
        for name, dtype, fill in spec:
            a = np.full(n, fill, dtype=dtype)
            if keep:
                a[:keep] = self._cols[name][:keep]
            new[name] = a
        self._cols = new

    # --- rows ----------------------------------------------------------------------------

    def _alloc_row(self) -> int:
        if self._free:
            return self._free.pop()
        if self._high == self._cap:
            self._alloc_cols(self._cap * 2, self._high)
            self._cap *= 2
        self._high += 1
        return self._high - 1

    def _free_row(self, r: int) -> None:
        c = self._cols
        c["value"][r] = c["probability"][r] = np.nan
        c["status"][r] = -1
        c["is_active"][r] = False
        c["event"][r] = c["market"][r] = -1
        del self._keys[r]
        self._free.append(r)

    def _put_market(self, ev: SportEvent, pm: _Market, counts: list[int]) -> None:
        m = ev.markets.get(pm.id)
        if m is None:
            self._serial += 1
            m = ev.markets[pm.id] = _MarketState(0, 0, "", {}, self._serial)
        m.status, m.type_id, m.specifiers = pm.status, pm.type_id, pm.specifiers
        seen = set()
        for o in pm.odds:
            r = m.rows.get(o.id)
            if r is None:
                r = m.rows[o.id] = self._alloc_row()
                self._keys[r] = (ev.sport_event_id, pm.id, o.id)
            c = self._cols  # after a growth
            c["event"][r], c["market"][r] = ev.index, m.index
            c["value"][r], c["probability"][r] = o.value, o.probability
            c["status"][r], c["is_active"][r] = o.status, o.is_active
            seen.add(o.id)
            counts[0] += 1
        for oid in [k for k in m.rows if k not in seen]:
            self._free_row(m.rows.pop(oid))
            counts[1] += 1
        counts[2] += 1

    def _drop_market(self, ev: SportEvent, mid: str) -> int:
        m = ev.markets.pop(mid)
        for r in m.rows.values():
            self._free_row(r)
        return len(m.rows)

    # --- apply ---------------------------------------------------------------------------

    def apply(self, line: bytes | str, _index: int | None = None) -> Applied:
        try:
            p = _parse(line)
        except _Bad as e:
            sid, ver = _identity(line)
            path = e.path
            raise DecodeError(f"{path}: {e.message}" if path else e.message,
                              field=path[1:] if path.startswith(".") else None,
                              sport_event_id=sid, version=ver, index=_index) from None
        counts = [0, 0, 0]
        known = True
        if p.kind != "heartbeat":
            assert p.sport_event_id is not None and p.version is not None
            sid = p.sport_event_id
            self.version = p.version
            ev = self._events.get(sid)
            if ev is None and p.kind in ("sport_event_snapshot", "sport_event_added"):
                self._serial += 1
                ev = self._events[sid] = SportEvent(sid, index=self._serial)
            if ev is None:
                known = False
            else:
                self._apply_event(ev, p, counts)
                ev.version = p.version
                if self.retention_ns is not None and p.timestamp_ns is not None:
                    self.evict_ended(p.timestamp_ns - self.retention_ns)
        return Applied(p.event_type if p.kind == "unknown" else p.kind, p.kind != "unknown",
                       p.sport_event_id, p.version, p.timestamp_ns, known, counts[0], counts[1],
                       counts[2], p.payload, line)

    def _apply_event(self, ev: SportEvent, p: _Parsed, counts: list[int]) -> None:
        kind, pl = p.kind, p.payload
        if kind in ("sport_event_snapshot", "sport_event_added"):
            written = set()
            for pm in p.markets:
                self._put_market(ev, pm, counts)
                written.add(pm.id)
            for mid in [k for k in ev.markets if k not in written]:
                counts[1] += self._drop_market(ev, mid)
            ev.fixture, ev.scores = pl["fixture"], pl.get("competitors_score")
            ev.game_state, ev.extensions = pl.get("game_state"), pl.get("extensions")
            ev.bet_stop = pl.get("bet_stop", False)
            if p.sport_id is not None:
                ev.sport_id = p.sport_id
            self._set_status(ev, p.fixture_status or 0, p.timestamp_ns)
        elif kind == "markets_updated":
            for pm in p.markets:
                self._put_market(ev, pm, counts)
        elif kind == "bet_stop_updated":
            ev.bet_stop = pl["bet_stop"]
        elif kind == "fixture_updated":
            ev.fixture = pl
            assert p.fixture_status is not None
            self._set_status(ev, p.fixture_status, p.timestamp_ns)
        elif kind == "competitor_scores_updated":
            ev.scores = pl
        elif kind == "game_state_updated":
            ev.game_state = pl
        elif kind == "extensions_updated":
            ev.extensions = pl

    @staticmethod
    def _set_status(ev: SportEvent, status: int, ts: int | None) -> None:
        was = is_terminal(ev.status) and ev.ended_at_ns is not None
        ev.status = status
        if is_terminal(status):
            if not was:
                ev.ended_at_ns = ts or 0
        else:
            ev.ended_at_ns = None

    @overload
    def apply_many(self, lines: Iterable[bytes | str]) -> list[Applied]: ...
    @overload
    def apply_many(self, lines: Iterable[bytes | str], *,
                   results: Literal[True]) -> list[Applied]: ...
    @overload
    def apply_many(self, lines: Iterable[bytes | str], *, results: Literal[False]) -> int: ...
    @overload
    def apply_many(self, lines: Iterable[bytes | str], *,
                   results: bool) -> list[Applied] | int: ...
    def apply_many(self, lines: Iterable[bytes | str], *,
                   results: bool = True) -> list[Applied] | int:
        out: list[Applied] = []
        for i, line in enumerate(lines):
            try:
                out.append(self.apply(line, i))
            except DecodeError as e:
                e.applied = out if results else i  # type: ignore[attr-defined]
                raise
        return out if results else len(out)

    # --- reads ---------------------------------------------------------------------------

    def row(self, sport_event_id: str, market_id: str, odd_id: str) -> int:
        ev = self._events.get(sport_event_id)
        m = ev.markets.get(market_id) if ev else None
        return -1 if m is None else m.rows.get(odd_id, -1)

    def get(self, sport_event_id: str, market_id: str,
            odd_id: str) -> tuple[float, float, int, bool] | None:
        r = self.row(sport_event_id, market_id, odd_id)
        if r < 0:
            return None
        c = self._cols
        return (float(c["value"][r]), float(c["probability"][r]), int(c["status"][r]),
                bool(c["is_active"][r]))

    def key(self, row: int) -> tuple[str, str, str] | None:
        return self._keys.get(row)

    @staticmethod
    def _open(ev: SportEvent) -> bool:
        return ev.status in (0, 1) and not ev.bet_stop

    def is_bettable(self, sport_event_id: str, market_id: str, odd_id: str) -> bool:
        ev = self._events.get(sport_event_id)
        if not self.healthy or ev is None or not self._open(ev):
            return False
        m = ev.markets.get(market_id)
        got = self.get(sport_event_id, market_id, odd_id)
        return m is not None and m.status == 0 and got is not None and got[2] == 0 and got[3]

    def bettable_mask(self) -> npt.NDArray[np.bool_]:
        mask = np.zeros(self._high, dtype=bool)
        if not self.healthy:
            return mask
        c = self._cols
        for ev in self._events.values():
            if not self._open(ev):
                continue
            for m in ev.markets.values():
                if m.status == 0:
                    for r in m.rows.values():
                        mask[r] = c["status"][r] == 0 and c["is_active"][r]
        return mask

    @property
    def odds(self) -> dict[str, npt.NDArray[Any]]:
        return {k: v[: self._high] for k, v in self._cols.items()}

    @property
    def rows(self) -> int:
        return self._high

    @property
    def capacity(self) -> int:
        return self._cap

    @property
    def event_count(self) -> int:
        return len(self._events)

    def sport_event_ids(self) -> list[str]:
        return list(self._events)

    def __contains__(self, sport_event_id: str) -> bool:
        return sport_event_id in self._events

    def event(self, sport_event_id: str) -> SportEvent | None:
        return self._events.get(sport_event_id)

    def market(self, sport_event_id: str,
               market_id: str) -> tuple[int, int, str, dict[str, int]] | None:
        ev = self._events.get(sport_event_id)
        m = ev.markets.get(market_id) if ev else None
        return None if m is None else (m.status, m.type_id, m.specifiers, dict(m.rows))

    def evict_ended(self, before_ns: int) -> int:
        gone = [k for k, ev in self._events.items()
                if ev.ended_at_ns is not None and ev.ended_at_ns <= before_ns]
        for k in gone:
            self.remove_event(k)
        return len(gone)

    def remove_event(self, sport_event_id: str) -> bool:
        ev = self._events.pop(sport_event_id, None)
        if ev is None:
            return False
        for mid in list(ev.markets):
            self._drop_market(ev, mid)
        return True

    def clear(self) -> None:
        for k in list(self._events):
            self.remove_event(k)
        self._free.clear()
        self._high = 0
        self.version = ""

    def __len__(self) -> int:
        return len(self._keys)
