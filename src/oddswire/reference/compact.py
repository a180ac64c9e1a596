"""Pure-Python twins of ``oddswire_native.CompactDecoder`` and ``QuoteBook``.

Strict RFC 8259 via ``json`` with every trap the stdlib leaves open closed by hand:
NaN/Infinity, overflow to inf, a BOM, lone surrogates (escaped or encoded), and bool being
an int. Errors are the same ``DecodeError`` naming the same field index.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from oddswire.errors import ConfigError, DecodeError

__all__ = ["CompactDecoder", "QuoteBook"]

FIELD_TYPES = {"str": "str", "f64": "f64", "float": "f64", "i64": "i64", "int": "i64",
               "ts": "ts", "bool": "bool", "json": "json"}
QUOTE_SCHEMA = [("symbol", "str"), ("bid", "f64"), ("ask", "f64"), ("ts", "ts")]
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_I64 = (-(2**63), 2**63 - 1)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def _check_strings(value: Any, depth: int = 0) -> None:
    if isinstance(value, str):
        if _LONE_SURROGATE.search(value):
            raise ValueError("lone surrogate in string")
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, depth + 1)
            _check_strings(item, depth + 1)


def strict_loads(frame: bytes | str, *, parse_int: Callable[[str], Any] | None = None,
                 parse_float: Callable[[str], Any] = _float,
                 object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """json.loads with RFC 8259's rules, not Python's (the hooks are json.loads')."""
    text = frame.decode("utf-8", errors="strict") if isinstance(frame, bytes) else frame
    if text.startswith("\ufeff"):
        raise ValueError("BOM")
    value = json.loads(text, parse_constant=_reject_constant, parse_float=parse_float,
                       parse_int=parse_int, object_pairs_hook=object_pairs_hook)
    _check_strings(value)
    return value


def _normalise(
    schemas: Mapping[str, Iterable[Sequence[str]]] | None,
) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {"t": list(QUOTE_SCHEMA)}
    for marker, fields in (schemas or {}).items():
        parsed = []
        for name, ty in fields:
            if ty not in FIELD_TYPES:
                raise ConfigError(f"schema {marker!r}: unknown field type {ty!r} "
                                  "(use str, f64, i64, ts, bool, json)")
            parsed.append((name, FIELD_TYPES[ty]))
        out[marker] = parsed
    return out


def _typed(value: Any, ty: str, field: int) -> Any:
    if ty == "str":
        if type(value) is not str:
            raise DecodeError("expected a string", field=field)
    elif ty == "f64":
        if type(value) is int:
            value = float(value)
        elif type(value) is not float:
            raise DecodeError("expected a number", field=field)
    elif ty in ("i64", "ts"):
        if type(value) is not int:
            raise DecodeError("expected an integer", field=field)
        low = 0 if ty == "ts" else _I64[0]
        if not low <= value <= _I64[1]:
            raise DecodeError(f"integer {value} out of range", field=field)
    elif ty == "bool" and type(value) is not bool:
        raise DecodeError("expected a boolean", field=field)
    return value


class CompactDecoder:
    def __init__(self, schemas: Mapping[str, Iterable[Sequence[str]]] | None = None) -> None:
        self._schemas = _normalise(schemas)

    @property
    def schemas(self) -> dict[str, list[tuple[str, str]]]:
        return {k: list(v) for k, v in self._schemas.items()}

    def decode(self, frame: bytes | str) -> tuple[Any, ...]:
        return self.decode_value(parse_frame(frame))

    def decode_value(self, value: Any) -> tuple[Any, ...]:
        """Check an already parsed frame against the schemas (see ``parse_frame``)."""
        marker = check_marker(value)
        schema = self._schemas.get(marker, [])
        out = [marker]
        # Field by field, as the wire is read: a wrong type before the end is reported first.
        for i, (name, ty) in enumerate(schema, start=1):
            if i >= len(value):
                raise DecodeError(f"too few fields: {name} missing", field=i)
            out.append(value[i] if ty == "json" else _typed(value[i], ty, i))
        out += value[len(schema) + 1:]
        return tuple(out)


def parse_frame(frame: bytes | str) -> Any:
    """Strict JSON of one frame, as DecodeError."""
    if not isinstance(frame, (bytes, str)):
        raise TypeError("frame must be bytes or str")
    try:
        return strict_loads(frame)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"invalid JSON: {exc}", field=None) from None


def check_marker(value: Any) -> str:
    if type(value) is not list:
        raise DecodeError("expected an array", field=0)
    if not value:
        raise DecodeError("empty array", field=0)
    if type(value[0]) is not str:
        raise DecodeError("marker must be a string", field=0)
    return value[0]


class QuoteBook:
    def __init__(self, schema: Sequence[Sequence[str]] | None = None, capacity: int = 64,
                 admit_new: bool = True) -> None:
        fields = _normalise({"t": schema} if schema is not None else None)["t"]
        if not fields or fields[0][1] != "str":
            raise ConfigError("QuoteBook schema: field 1 must be the symbol (str)")
        if any(ty in ("str", "json") for _, ty in fields[1:]):
            raise ConfigError(
                "QuoteBook schema: fields after the symbol must be f64, i64, ts or bool")
        self._decoder = CompactDecoder({"t": fields})
        self._fields = fields[1:]
        self._capacity = max(1, capacity)
        self._cols = {name: self._new(ty, self._capacity) for name, ty in self._fields}
        self._rows: dict[str, int] = {}
        self.admit_new = admit_new
        self._rejected = 0

    @staticmethod
    def _new(ty: str, n: int) -> np.ndarray:
        if ty == "f64":
            return np.full(n, np.nan)
        return np.zeros(n, dtype=np.int64 if ty in ("i64", "ts") else bool)

    def apply(self, frame: bytes | str) -> int:
        """The row written, -1 for another marker, -2 for a symbol not admitted."""
        value = parse_frame(frame)
        if check_marker(value) != "t":  # as the compiled book: only the marker is checked
            return -1
        values = self._decoder.decode_value(value)
        symbol = values[1]
        row = self._rows.get(symbol)
        if row is None:
            if not self.admit_new:
                self._rejected += 1
                return -2
            row = self._new_row(symbol)
        for (name, _), value in zip(self._fields, values[2:], strict=False):
            self._cols[name][row] = value
        return row

    def _new_row(self, symbol: str) -> int:
        row = len(self._rows)
        if row == self._capacity:
            self._capacity *= 2
            for name, ty in self._fields:
                grown = self._new(ty, self._capacity)
                grown[:row] = self._cols[name][:row]
                self._cols[name] = grown
        self._rows[symbol] = row
        return row

    def reserve(self, symbols: Iterable[str]) -> None:
        """Create rows for ``symbols`` (NaN prices, ts 0) so their quotes are admitted."""
        if isinstance(symbols, str):
            raise ConfigError("reserve() takes an iterable of symbols, not one string")
        for symbol in symbols:
            if not isinstance(symbol, str):
                raise TypeError(f"symbols must be str, not {type(symbol).__name__}")
            if symbol not in self._rows:
                self._new_row(symbol)

    @property
    def admit_new(self) -> bool:
        """Whether a quote for a symbol without a row creates one (True) or is rejected."""
        return self._admit_new

    @admit_new.setter
    def admit_new(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"admit_new must be a bool, not {type(value).__name__}")
        self._admit_new = value

    @property
    def rejected(self) -> int:
        """Quotes rejected because their symbol had no row and ``admit_new`` was False."""
        return self._rejected

    def row(self, symbol: str) -> int:
        return self._rows.get(symbol, -1)

    @property
    def symbols(self) -> list[str]:
        return list(self._rows)

    def column(self, name: str) -> np.ndarray:
        return self._cols[name][: len(self._rows)]

    @property
    def columns(self) -> dict[str, np.ndarray]:
        return {name: self.column(name) for name, _ in self._fields}

    @property
    def bid(self) -> np.ndarray:
        return self.column("bid")

    @property
    def ask(self) -> np.ndarray:
        return self.column("ask")

    @property
    def ts(self) -> np.ndarray:
        return self.column("ts")

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._rows)
