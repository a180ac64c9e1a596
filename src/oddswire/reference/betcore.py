"""Pure-Python twin of the Rust ``GamesTable`` (BETCORE ``WholeGamesInfoSubscribe`` state):
same API, same rules, dicts instead of hash maps. The oracle of the property tests and the
baseline of the benchmarks.

A record is read the way a JSON-first reader reads it: strict RFC 8259 JSON first (no NaN,
BOM, lone surrogates, overflowing floats, nesting past 512 levels), so invalid JSON is a
``DecodeError`` with ``field`` None wherever the first schema problem was; then the schema,
member by member in document order (a missing required field is noticed at the end of its
object, a repeated key is checked each time and the last one wins), so the first problem
names its JSON path, e.g. ``arguments[0].wgi[2].e[5].c``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from oddswire.errors import ConfigError, DecodeError
from oddswire.reference.compact import strict_loads

__all__ = ["TARGET", "Game", "GamesTable", "GamesUpdate", "is_terminal", "parse_iso8601",
           "seconds_to_ns"]

TARGET = "WholeGamesInfoSubscribe"
MAX_DEPTH = 512
_I64 = (-(2**63), 2**63 - 1)
_U64_MAX = 2**64 - 1
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ISO = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
                  r"(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})")
_NUMBER = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?)([0-9]+))?")
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_MISSING: Any = object()
_PAYLOAD_FIELDS = ("sId", "tst", "im", "bt", "wgi")
_GAME_FIELDS = ("i", "t", "ge", "lrId", "s", "ps", "cr", "sdt", "fdt", "e", "di")
_EVENT_FIELDS = ("t", "c", "b", "sn")


def is_terminal(state: int) -> bool:
    """Finished, review or cancelled."""
    return 3 <= state <= 5


# --- dates ---------------------------------------------------------------------------------

def _in_i64(v: int) -> int | None:
    return v if _I64[0] <= v <= _I64[1] else None


def parse_iso8601(s: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`` as ns since the epoch, or None."""
    m = _ISO.fullmatch(s)
    if m is None:
        return None
    y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
    frac, off = m.group(7) or "", m.group(8)
    offset = 0
    if off != "Z":
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        offset = (oh * 3600 + om * 60) * (-1 if off[0] == "-" else 1)
    if h > 23 or mi > 59 or sec > 59:
        return None
    try:
        days = _dt.date(y, mo, d).toordinal() - _EPOCH_ORDINAL
    except ValueError:  # not a calendar date (year 0 included: out of the ns range anyway)
        return None
    secs = days * 86400 + h * 3600 + mi * 60 + sec - offset
    return _in_i64(secs * 10**9 + int(frac.ljust(9, "0") or "0"))


def seconds_to_ns(text: str) -> int | None:
    """A JSON number of Unix seconds as ns, exactly floor(x * 1e9), or None past i64."""
    m = _NUMBER.fullmatch(text)
    assert m is not None, text
    neg, ip, fp, esign, ex = m.group(1), m.group(2), m.group(3) or "", m.group(4), m.group(5)
    digits = (ip + fp).lstrip("0")
    if not digits:
        return 0
    exp = min(int(ex[:16]), 10**15) if ex else 0
    scale = 9 + (-exp if esign == "-" else exp) - len(fp)
    if scale >= 0:
        if len(digits) + scale > 20:
            return None
        n = int(digits) * 10**scale
        return _in_i64(-n if neg else n)
    if -scale >= len(digits):  # |x * 1e9| < 1
        return -1 if neg else 0
    head = digits[: len(digits) + scale]
    if len(head) > 20:
        return None
    # floor(+-D / 10**k) from the kept head and whether any dropped digit is nonzero.
    n = int(head)
    inexact = digits[len(head):].strip("0") != ""
    return _in_i64(-(n + inexact) if neg else n)


# --- reading a record ---------------------------------------------------------------------

class _Obj(list[tuple[str, Any]]):
    """An object's members in document order, repeated keys included."""


class _Float(float):
    """A JSON number with a fraction or an exponent, with its text (for exact seconds)."""

    text: str


class _Huge(str):
    """An integer too long for Python's int conversion (over 4300 digits): its text."""


def _parse_float(text: str) -> _Float:
    v = _Float(text)
    if v in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    v.text = text
    return v


def _parse_int(text: str) -> int | _Huge:
    return int(text) if len(text) <= 4000 else _Huge(text)


def _check(value: Any, level: int) -> None:
    """Strings without lone surrogates, and no value deeper than MAX_DEPTH levels."""
    if level > MAX_DEPTH:
        raise ValueError("nesting too deep")
    if type(value) is _Obj:
        for k, v in value:
            if _LONE_SURROGATE.search(k):
                raise ValueError("lone surrogate in string")
            _check(v, level + 1)
    elif type(value) is list:
        for v in value:
            _check(v, level + 1)
    elif type(value) is str and _LONE_SURROGATE.search(value):
        raise ValueError("lone surrogate in string")


def _load(record: Any) -> Any:
    if isinstance(record, (bytearray, memoryview)):
        record = bytes(record)
    elif not isinstance(record, (bytes, str)):
        raise TypeError("record must be bytes, bytearray, memoryview or str")
    try:
        value = strict_loads(record, parse_float=_parse_float, parse_int=_parse_int,
                             object_pairs_hook=_Obj)
        _check(value, 0)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise DecodeError(f"invalid JSON: {e}", field=None) from None
    return value


class _Bad(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str) and not isinstance(v, _Huge):
        return "a string"
    if type(v) is _Obj:
        return "an object"
    if type(v) is list:
        return "an array"
    return "a number"


def _int(v: Any, path: str) -> int:
    if type(v) is int:
        if _I64[0] <= v <= _I64[1]:
            return v
        raise _Bad(path, "integer outside i64")
    if isinstance(v, _Huge):
        raise _Bad(path, "integer outside i64")
    raise _Bad(path, f"expected an integer, got {_describe(v)}")


def _small(v: Any, path: str) -> int:
    n = _int(v, path)
    if not 0 <= n <= 127:
        raise _Bad(path, f"{n} out of range 0..127")
    return n


def _float(v: Any, path: str) -> float:
    if isinstance(v, _Float):
        return float(v)
    if type(v) is int:
        try:
            return float(v)
        except OverflowError:
            raise _Bad(path, "number out of range") from None
    if isinstance(v, _Huge):
        raise _Bad(path, "number out of range")
    raise _Bad(path, f"expected a number, got {_describe(v)}")


def _bool(v: Any, path: str) -> bool:
    if type(v) is not bool:
        raise _Bad(path, f"expected a boolean, got {_describe(v)}")
    return v


def _str(v: Any, path: str) -> str:
    if type(v) is not str:
        raise _Bad(path, f"expected a string, got {_describe(v)}")
    return v


def _edition(v: Any, path: str) -> str:
    if type(v) is str:
        return v
    if type(v) is int:
        return str(v)
    if isinstance(v, _Huge):
        return str.__str__(v)
    raise _Bad(path, f"expected a string or an integer, got {_describe(v)}")


def _datetime(v: Any, path: str) -> int:
    if type(v) is str:
        ns = parse_iso8601(v)
        if ns is None:
            raise _Bad(path, f"expected an ISO-8601 datetime within 1677..2262, got {v!r}")
        return ns
    if type(v) is int or isinstance(v, _Huge):
        ns = _in_i64(v * 10**9) if type(v) is int else None
    elif isinstance(v, _Float):
        ns = seconds_to_ns(v.text)
    else:
        raise _Bad(path, f"expected an ISO-8601 string or Unix seconds, got {_describe(v)}")
    if ns is None:
        raise _Bad(path, "Unix seconds outside the ns range of i64 (1677..2262)")
    return ns


def _unreadable(v: Any, path: str) -> None:
    """A number orjson cannot read back (outside [-2**63, 2**64-1]), in document order."""
    if isinstance(v, _Huge) or (type(v) is int and not _I64[0] <= v <= _U64_MAX):
        raise _Bad(path, "integer outside [-2**63, 2**64-1]")
    if type(v) is _Obj:
        for k, x in v:
            _unreadable(x, f"{path}.{k}")
    elif type(v) is list:
        for i, x in enumerate(v):
            _unreadable(x, f"{path}[{i}]")


def _plain(v: Any) -> Any:
    """As orjson reads it back: objects as dicts (the last of a repeated key wins)."""
    if type(v) is _Obj:
        return {k: _plain(x) for k, x in v}
    if type(v) is list:
        return [_plain(x) for x in v]
    if isinstance(v, _Float):
        return float(v)
    return v


def _kept(v: Any, path: str, *, array: bool) -> Any:
    if v is None:
        return None
    if type(v) is not (list if array else _Obj):
        raise _Bad(path, f"expected {'an array' if array else 'an object'} or null, "
                         f"got {_describe(v)}")
    _unreadable(v, path)
    return _plain(v)


def _missing(seen: dict[str, Any], names: tuple[str, ...], path: str) -> None:
    for name in names:
        if name not in seen:
            raise _Bad(f"{path}.{name}", "missing")


def _obj(v: Any, path: str) -> _Obj:
    if type(v) is not _Obj:
        raise _Bad(path, f"expected an object, got {_describe(v)}")
    return v


def _arr(v: Any, path: str) -> list[Any]:
    if type(v) is not list:
        raise _Bad(path, f"expected an array, got {_describe(v)}")
    return v


@dataclass
class _PEvent:
    type: int
    coefficient: float
    blocked: bool
    sn: str


@dataclass
class _PGame:
    id: int
    type: int
    edition: str
    state: int
    play_status: int
    round: int
    last_round_id: int
    start: int
    finish: int
    results: Any
    hands: Any
    dealer: Any
    events: list[_PEvent]


def _event(v: Any, path: str) -> _PEvent:
    seen: dict[str, Any] = {}
    for k, x in _obj(v, path):
        p = f"{path}.{k}"
        if k == "t":
            seen[k] = _int(x, p)
        elif k == "c":
            seen[k] = _float(x, p)
        elif k == "b":
            seen[k] = _bool(x, p)
        elif k == "sn":
            seen[k] = _str(x, p)
        elif k == "p" and x is not None and type(x) is not list:
            raise _Bad(p, f"expected an array or null, got {_describe(x)}")
    _missing(seen, _EVENT_FIELDS, path)
    return _PEvent(seen["t"], seen["c"], seen["b"], seen["sn"])


def _game(v: Any, path: str) -> _PGame:
    seen: dict[str, Any] = {"r": None, "h": None}
    for k, x in _obj(v, path):
        p = f"{path}.{k}"
        if k in ("i", "t", "lrId", "cr"):
            seen[k] = _int(x, p)
        elif k == "ge":
            seen[k] = _edition(x, p)
        elif k in ("s", "ps"):
            seen[k] = _small(x, p)
        elif k in ("sdt", "fdt"):
            seen[k] = _datetime(x, p)
        elif k == "e":
            seen[k] = [_event(e, f"{p}[{i}]") for i, e in enumerate(_arr(x, p))]
        elif k == "di":
            seen[k] = _kept(x, p, array=False)
        elif k in ("r", "h"):
            seen[k] = _kept(x, p, array=True)
    _missing(seen, _GAME_FIELDS, path)
    return _PGame(seen["i"], seen["t"], seen["ge"], seen["s"], seen["ps"], seen["cr"],
                  seen["lrId"], seen["sdt"], seen["fdt"], seen["r"], seen["h"], seen["di"],
                  seen["e"])


@dataclass
class _Parsed:
    sid: int
    tst: int
    bt: float
    im: bool
    games: list[_PGame]


def _payload(v: Any, path: str) -> _Parsed:
    seen: dict[str, Any] = {}
    for k, x in _obj(v, path):
        p = f"{path}.{k}"
        if k == "sId":
            seen[k] = _int(x, p)
        elif k == "tst":
            seen[k] = _datetime(x, p)
        elif k == "im":
            seen[k] = _bool(x, p)
        elif k == "bt":
            seen[k] = _float(x, p)
        elif k == "wgi":
            seen[k] = [_game(g, f"{p}[{i}]") for i, g in enumerate(_arr(x, p))]
    _missing(seen, _PAYLOAD_FIELDS, path)
    return _Parsed(seen["sId"], seen["tst"], seen["bt"], seen["im"], seen["wgi"])


def _parse(value: Any) -> _Parsed | None:
    """The games update a hub message carries, None for another message."""
    if type(value) is not _Obj:
        raise _Bad("", "expected a JSON object")
    ty, is_target, args = _MISSING, False, _MISSING
    for k, x in value:
        if k == "type":
            ty = x
        elif k == "target":
            is_target = type(x) is str and x == TARGET
        elif k == "arguments":
            args = x
    if ty is _MISSING:
        raise _Bad(".type", "missing")
    if type(ty) is not int and not isinstance(ty, _Huge):
        raise _Bad(".type", "expected an integer")
    if not (type(ty) is int and ty == 1 and is_target):
        return None
    if args is _MISSING:
        raise _Bad(".arguments", "missing")
    args = _arr(args, ".arguments")
    if not args:
        raise _Bad(".arguments[0]", "missing")
    return _payload(args[0], ".arguments[0]")


# --- the table ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GamesUpdate:
    """What one applied ``WholeGamesInfoSubscribe`` record carried."""

    sid: int
    tst: int
    bt: float
    im: bool
    game_ids: tuple[int, ...]
    #: False: a redelivery left out (``GamesTable.skip_redeliveries``).
    applied: bool = True


@dataclass(frozen=True, slots=True)
class Game:
    """A copy of one game's state."""

    id: int
    type: int
    edition: str
    state: int
    play_status: int
    round: int
    last_round_id: int
    start: int
    finish: int
    betting_time: float
    maintenance: bool
    ended_at_ns: int | None
    results: list[Any]
    hands: list[Any]
    dealer: dict[str, Any] | None
    events: list[tuple[int, float, bool, str]]


@dataclass
class _GameState:
    id: int
    row: int
    edition: str = ""
    results: Any = None
    hands: Any = None
    dealer: Any = None
    # event type -> [row, short number], in the order of the last update
    events: dict[int, list[Any]] = field(default_factory=dict)
    ended_at_ns: int | None = None


_GAME_COLS = (("id", np.int64, 0), ("type", np.int64, 0), ("state", np.int8, 0),
              ("play_status", np.int8, 0), ("round", np.int64, 0), ("last_round_id", np.int64, 0),
              ("start", np.int64, 0), ("finish", np.int64, 0), ("live", np.bool_, False),
              ("betting_time", np.float64, np.nan), ("maintenance", np.bool_, False))
_EVENT_COLS = (("game", np.int32, -1), ("type", np.int64, 0), ("coefficient", np.float64, np.nan),
               ("blocked", np.bool_, False))


class _Rows:
    """Columns over rows with a free list; grow by doubling."""

    def __init__(self, spec: tuple[tuple[str, Any, Any], ...], capacity: int) -> None:
        self.spec = spec
        self.cap = capacity
        self.cols = {name: np.full(capacity, fill, dtype=dtype) for name, dtype, fill in spec}
        self.free: list[int] = []
        self.high = 0

    def alloc(self) -> int:
        if self.free:
            return self.free.pop()
        if self.high == self.cap:
            self.cap *= 2
            for name, dtype, fill in self.spec:
                grown = np.full(self.cap, fill, dtype=dtype)
                grown[: self.high] = self.cols[name][: self.high]
                self.cols[name] = grown
        self.high += 1
        return self.high - 1

    def release(self, row: int) -> None:
        for name, _, fill in self.spec:
            self.cols[name][row] = fill
        self.free.append(row)

    def reset(self) -> None:
        self.free.clear()
        self.high = 0

    def views(self) -> dict[str, npt.NDArray[Any]]:
        out = {}
        for name, a in self.cols.items():
            v = a[: self.high]
            v.flags.writeable = False
            out[name] = v
        return out


class GamesTable:
    """The BETCORE games table in plain Python (see ``oddswire.betcore.GamesTable``)."""

    def __init__(self, capacity: int = 64, retention_s: float | None = None) -> None:
        if retention_s is not None and not (0 <= retention_s < float("inf")):
            raise ConfigError("retention_s must be a finite number >= 0")
        self.retention_ns = None if retention_s is None else int(retention_s * 1e9)
        self._games_rows = _Rows(_GAME_COLS, min(max(capacity, 8), 1 << 30))
        self._event_rows = _Rows(_EVENT_COLS, min(max(capacity, 16), 1 << 30))
        self._games: dict[int, _GameState] = {}
        self.healthy = True
        self.skip_redeliveries = False
        self.sid: int | None = None
        self.tst: int | None = None
        self.betting_time: float | None = None
        self.maintenance = False

    # --- apply ---------------------------------------------------------------------------

    def apply(self, record: bytes | bytearray | memoryview | str) -> GamesUpdate | None:
        value = _load(record)
        try:
            u = _parse(value)
        except _Bad as e:
            path = e.path[1:] if e.path.startswith(".") else e.path
            raise DecodeError(f"{path}: {e.message}" if path else e.message,
                              field=path or None) from None
        if u is None:
            return None
        ids = tuple(g.id for g in u.games)
        if (self.skip_redeliveries and self.sid is not None and self.tst is not None
                and u.sid <= self.sid and u.tst <= self.tst):
            return GamesUpdate(u.sid, u.tst, u.bt, u.im, ids, applied=False)
        for pg in u.games:
            self._put_game(pg, u)
        self.sid, self.tst, self.betting_time, self.maintenance = u.sid, u.tst, u.bt, u.im
        if self.retention_ns is not None:
            self.evict_finished(u.tst - self.retention_ns)
        return GamesUpdate(u.sid, u.tst, u.bt, u.im, ids)

    def _put_game(self, pg: _PGame, u: _Parsed) -> None:
        g = self._games.get(pg.id)
        if g is None:
            row = self._games_rows.alloc()
            g = self._games[pg.id] = _GameState(pg.id, row)
        c = self._games_rows.cols
        r = g.row
        c["id"][r], c["type"][r], c["state"][r], c["play_status"][r] = (
            pg.id, pg.type, pg.state, pg.play_status)
        c["round"][r], c["last_round_id"][r], c["start"][r], c["finish"][r] = (
            pg.round, pg.last_round_id, pg.start, pg.finish)
        c["live"][r], c["betting_time"][r], c["maintenance"][r] = True, u.bt, u.im
        g.edition, g.results, g.hands, g.dealer = pg.edition, pg.results, pg.hands, pg.dealer
        listed: dict[int, _PEvent] = {}
        for e in pg.events:  # a repeated type: the last wins, at the place of the first
            listed[e.type] = e
        old, g.events = g.events, {}
        for t in listed:
            g.events[t] = [old.pop(t)[0] if t in old else None, listed[t].sn]
        for row, _ in old.values():
            self._event_rows.release(row)
        ec = self._event_rows.cols
        for t, slot in g.events.items():
            if slot[0] is None:
                slot[0] = self._event_rows.alloc()
                ec = self._event_rows.cols  # after a growth
            e = listed[t]
            ec["game"][slot[0]], ec["type"][slot[0]] = g.row, t
            ec["coefficient"][slot[0]], ec["blocked"][slot[0]] = e.coefficient, e.blocked
        if is_terminal(pg.state):
            if g.ended_at_ns is None:
                g.ended_at_ns = u.tst
        else:
            g.ended_at_ns = None

    # --- reads ---------------------------------------------------------------------------

    def game(self, game_id: int) -> Game | None:
        g = self._games.get(game_id)
        if g is None:
            return None
        c, ec = self._games_rows.cols, self._event_rows.cols
        r = g.row
        return Game(
            g.id, int(c["type"][r]), g.edition, int(c["state"][r]), int(c["play_status"][r]),
            int(c["round"][r]), int(c["last_round_id"][r]), int(c["start"][r]),
            int(c["finish"][r]), float(c["betting_time"][r]), bool(c["maintenance"][r]),
            g.ended_at_ns, copy.deepcopy(g.results or []), copy.deepcopy(g.hands or []),
            copy.deepcopy(g.dealer),
            [(t, float(ec["coefficient"][row]), bool(ec["blocked"][row]), sn)
             for t, (row, sn) in g.events.items()])

    def get(self, game_id: int, event_type: int) -> tuple[float, bool] | None:
        r = self.event_row(game_id, event_type)
        if r < 0:
            return None
        ec = self._event_rows.cols
        return float(ec["coefficient"][r]), bool(ec["blocked"][r])

    def _open(self, row: int) -> bool:
        c = self._games_rows.cols
        return bool(c["live"][row] and c["state"][row] == 2 and c["play_status"][row] == 1
                    and not c["maintenance"][row] and c["betting_time"][row] > 0)

    def is_bettable(self, game_id: int, event_type: int) -> bool:
        g = self._games.get(game_id)
        if not self.healthy or g is None or event_type not in g.events:
            return False
        return self._open(g.row) and not self._event_rows.cols["blocked"][g.events[event_type][0]]

    def bettable_mask(self) -> npt.NDArray[np.bool_]:
        mask = np.zeros(self._event_rows.high, dtype=bool)
        if not self.healthy:
            return mask
        ec = self._event_rows.cols
        for g in self._games.values():
            if self._open(g.row):
                for row, _ in g.events.values():
                    mask[row] = not ec["blocked"][row]
        return mask

    @property
    def games(self) -> dict[str, npt.NDArray[Any]]:
        return self._games_rows.views()

    @property
    def events(self) -> dict[str, npt.NDArray[Any]]:
        return self._event_rows.views()

    def row(self, game_id: int) -> int:
        g = self._games.get(game_id)
        return -1 if g is None else g.row

    def event_row(self, game_id: int, event_type: int) -> int:
        g = self._games.get(game_id)
        slot = None if g is None else g.events.get(event_type)
        return -1 if slot is None else int(slot[0])

    def event_key(self, row: int) -> tuple[int, int] | None:
        if not 0 <= row < self._event_rows.high:
            return None
        ec = self._event_rows.cols
        g = int(ec["game"][row])
        if g < 0:
            return None
        return int(self._games_rows.cols["id"][g]), int(ec["type"][row])

    def game_ids(self) -> list[int]:
        return sorted(self._games)

    def __contains__(self, game_id: int) -> bool:
        return game_id in self._games

    @property
    def rows(self) -> int:
        return self._games_rows.high

    @property
    def event_rows(self) -> int:
        return self._event_rows.high

    @property
    def event_count(self) -> int:
        return sum(len(g.events) for g in self._games.values())

    def __len__(self) -> int:
        return len(self._games)

    # --- eviction ------------------------------------------------------------------------

    def evict_finished(self, before_ns: int) -> int:
        gone = [k for k, g in self._games.items()
                if g.ended_at_ns is not None and g.ended_at_ns <= before_ns]
        for k in gone:
            self.remove(k)
        return len(gone)

    def remove(self, game_id: int) -> bool:
        g = self._games.pop(game_id, None)
        if g is None:
            return False
        for row, _ in g.events.values():
            self._event_rows.release(row)
        self._games_rows.release(g.row)
        return True

    def clear(self) -> None:
        for k in list(self._games):
            self.remove(k)
        self._games_rows.reset()
        self._event_rows.reset()
        self.sid = self.tst = self.betting_time = None
        self.maintenance = False
