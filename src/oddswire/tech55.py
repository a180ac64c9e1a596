"""55-tech v2 order/bet stream (``shared/specs/tech55-ws.md``): WebSocket JSON with an
``apiKey`` login, channels, a per-subscription ``seq``, optional reliable delivery with
acknowledgments, and JSON ``ping``/``pong`` keep-alive.

:class:`Tech55Client` logs in, dispatches every data message to the callbacks of its
channel as ``fn(event, payload, seq, ts)``, runs ``seq`` through the shared gap engine
(duplicates dropped before any callback, gaps reported), acks reliable messages after
their callbacks returned, follows ``emergency`` (``client.halted``) and keeps betslip odds
in :class:`BetslipTable` (numpy columns).

Hot path (``oddswire._tech55``): the compiled listener scans each frame once, in C,
straight from picows' read buffer: the envelope (type, channel, event, seq, ts,
requireAck) is read there and an ``orders`` / ``bets`` / ``settlements`` payload is
matched key by key against its schema, each value checked against its field's JSON kind
and its position recorded. The payload (:class:`Order`, :class:`Bet`) owns a copy of its
bytes and decodes a field on first access, then caches it, so a bot that reads three of
27 fields pays for three. Attributes are the wire names in snake_case, absent optional
fields None; the values equal those of the eager msgspec twin
(``oddswire.reference.tech55``), floats bit for bit. Then ``seq == last + 1`` and the one
plain callback of the channel run in C. :class:`Balance`, :class:`Emergency` and
:class:`Betslip` are msgspec Structs, decoded from the payload's bytes. Anything the scan
does not take (another message type, an unknown channel, a payload with fields its
schema does not know or off its schema, unusual number or string forms) goes to the
Python path: one msgspec decode of the frame into the twin's eager Structs, else plain
JSON values, delivered, never dropped; unknown fields are kept in ``extra``.

Assumptions where the spec is silent (all configurable):

- Ack form: ``{"type":"ack","seq":N}`` once per message; when ``login_ok`` announces
  ``features.batchAck``, ``{"type":"ack","seqs":[...]}`` flushed every ``ack_interval``
  (5 ms) or when ``ack_batch_max`` (50) are pending (``batch_ack=True/False`` forces a form;
  ``ack_encoder`` / ``batch_ack_encoder`` write other forms).
- Refused login: the spec documents none. An ``{"type":"error", ...}`` message before
  ``login_ok``, or a WebSocket close frame before it (any code but the transient 1001,
  1011, 1012, 1013, 1014), raises :class:`~oddswire.errors.AuthError` from ``run()``
  without retrying; a connection lost without a close frame is retried.
- Keep-alive: the server's ``{"type":"ping"}`` is answered ``{"type":"pong"}`` at once; we
  send ``{"type":"ping"}`` when nothing was sent for ``client_ping_interval`` (15 s). The
  server promises a ping every ``server_ping_interval`` (30 s), data or not: no ping for two
  intervals (60 s) drops the connection (``stale``) and reconnects, even while data flows
  or our pings are answered.
- Sequence: ``seq`` belongs to ``subscriptionId``: a ``login_ok`` with the same id (a
  resumed subscription) keeps the count, another id starts a new sequence. A ``seq`` at or
  below the high-water mark is a duplicate, unless it fills a gap reported earlier (a late
  redelivery), which is delivered once.
- Betslip rows are keyed by (``futureId`` if present, else ``fixtureId``; ``outcomeId``;
  ``playerId``; ``participantId`` (0 when absent); bookmaker; line key).
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import inspect
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple, Union

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from oddswire._tech55 import Bet, Order, Tech55Listener, bet_from_struct, order_from_struct
from oddswire._wire import FeedListener
from oddswire._ws import WSFeedClient
from oddswire.client import ReconnectPolicy, RecordPath, SequenceTracker
from oddswire.errors import (
    AuthError,
    ConfigError,
    ConnectError,
    DecodeError,
    ProtocolError,
    StaleFeedError,
)
from oddswire.reference import tech55 as _twin

__all__ = [
    "CHANNELS",
    "CLIENT_FILTERED",
    "EVENTS",
    "GLOBAL",
    "MAX_CONNECTIONS_PER_KEY",
    "Balance",
    "Bet",
    "Betslip",
    "BetslipOdds",
    "BetslipQuote",
    "BetslipTable",
    "Emergency",
    "Order",
    "Payload",
    "Session",
    "Tech55Client",
    "ack_batch",
    "ack_single",
]

CLIENT_FILTERED = ("orders", "bets", "settlements", "accounts", "balance", "betslip")
GLOBAL = ("fixtures", "currencies", "status", "emergency")
CHANNELS = CLIENT_FILTERED + GLOBAL
#: The spec's limit; ``Tech55Client`` never opens more per API key in one process.
MAX_CONNECTIONS_PER_KEY = 5

#: Events a Tech55Client emits, and what the callback receives.
EVENTS = frozenset({
    *CHANNELS,         # (event, payload, seq, ts) one data message of that channel
    "unknown",         # (message: dict) a data message of another channel, or another type
    "gap",             # (expected, got) seq skipped ahead
    "halt",            # (payload: Emergency) emergency mode on: client.halted is True
    "resume",          # (payload: Emergency) emergency mode off: client.halted is False
    "login",           # (session: Session) login_ok
    "slow_consumer",   # (backlog, lag) unacked messages fill the reliable buffer; lag None
    "connected",       # () WebSocket open (before the login)
    "disconnected",    # (reason) the connection ended
    "stale",           # (reason) healthy went False
    "healthy",         # () healthy went True again
    "error",           # (exception) bad messages, off-schema payloads, callback errors
})


# --- typed payloads ------------------------------------------------------------------------

class Payload(abc.ABC):  # noqa: B024  (a marker: the payload types share no code)
    """Base of the typed payloads (``isinstance(p, Payload)``): attributes are the wire
    names in snake_case (``orderId`` -> ``order_id``); optional fields missing on the wire
    are None; ``extra`` holds the fields the schema does not know, ``raw`` the payload's
    JSON.

    :class:`Order` and :class:`Bet` (the hot ones) are compiled and decoded lazily: the
    frame is scanned once, each field is decoded on first access and cached. They are
    read-only; ``raw`` is always the bytes off the wire; ``==`` compares every field;
    ``to_dict()`` gives the fields by wire name; they pickle, and ``Order.decode(raw)``
    builds one. Like a dict of strings and numbers, a payload is not tracked by the
    garbage collector until it caches a container (``meta``, a list field, ``extra``);
    from then on it is, so a cycle through one (``order.meta["self"] = order``) is
    collected. :class:`Balance`, :class:`Emergency` and :class:`Betslip` are msgspec
    Structs (``raw`` is the bytes off the wire when the payload had unknown fields, else
    encoded again)."""


Payload.register(Order)
Payload.register(Bet)


class _StructPayload(msgspec.Struct, rename="camel", kw_only=True, dict=True,
                     repr_omit_defaults=True, forbid_unknown_fields=True):
    """msgspec base of the payloads off the hot path. The types refuse unknown fields
    (``forbid_unknown_fields``): that is how the client knows, at no cost, that a payload
    has none; ``Tech55Client`` decodes such a payload on its slow path and keeps them in
    ``extra``."""

    @property
    def raw(self) -> bytes:
        frame = self.__dict__.get("_frame")
        if frame is None:
            return msgspec.json.encode(self)
        return bytes(_ENVELOPE.decode(frame).payload)

    @property
    def extra(self) -> dict[str, Any]:
        cached: dict[str, Any] | None = self.__dict__.get("_extra")
        if cached is None:
            if "_frame" not in self.__dict__:
                return {}  # decoded by a type that refuses unknown fields: there are none
            known = set(self.__struct_encode_fields__)
            values = msgspec.json.decode(self.raw)
            cached = ({k: v for k, v in values.items() if k not in known}
                      if isinstance(values, dict) else {})
            self.__dict__["_extra"] = cached
        return cached


Payload.register(_StructPayload)


class Balance(_StructPayload):
    """``balance`` payload."""

    balance: float
    client_name: str | None = None
    bookmaker: str | None = None
    username: str | None = None
    currency: str | None = None
    ts: int | None = None


class Emergency(_StructPayload):
    """``emergency`` payload: ``active`` turns emergency mode on or off."""

    active: bool
    reason: str | None = None
    ts: int | None = None


class BetslipOdds(_StructPayload):
    """One bookmaker line of a betslip update."""

    price: float | None = None
    limit: float | None = None
    limit_min: float | None = None
    limit_currency: str | None = None
    limit_usd: float | None = None
    limit_min_usd: float | None = None
    active: bool | None = None
    account: str | None = None


class Betslip(_StructPayload):
    """``betslip`` payload: odds per bookmaker per line key, for a fixture (``fixture_id``)
    or a future (``future_id`` + ``participant_id``)."""

    outcome_id: int
    odds: dict[str, dict[str, BetslipOdds]]
    fixture_id: str | None = None
    future_id: str | None = None
    player_id: int | None = None
    participant_id: int | None = None
    client: str | None = None
    user_ref: str | None = None


#: Documented schemas: channel -> payload type.
SCHEMAS: dict[str, type[Any]] = {
    "orders": Order, "bets": Bet, "settlements": Bet, "balance": Balance,
    "emergency": Emergency, "betslip": Betslip,
}


class _Envelope(msgspec.Struct):
    """Any message: only to locate a payload's bytes (``Payload.raw``, the slow path)."""

    type: Any = None
    payload: msgspec.Raw = msgspec.Raw(b"null")


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def _message_type(channel: str, payload: Any) -> Any:
    # ``type`` is a Literal: another message type fails the fast decode (the slow path
    # takes it) and "data" is not a new string per message. gc=False: a message holds
    # strings, numbers and its payload, never a cycle, and lives for one callback.
    return msgspec.defstruct(
        f"_{channel.capitalize()}Message",
        [("type", Literal["data"]), ("event", str | None, None), ("payload", payload, None),
         ("ts", int | None, None), ("seq", int | None, None),
         ("requireAck", bool, False)],
        tag_field="channel", tag=channel, gc=False)


#: The message Structs of the Python path: the twin's eager Structs for orders and bets.
_TWIN_OF: dict[type, tuple[type, Callable[[Any, bytes], Any]]] = {
    _twin.Order: (Order, order_from_struct), _twin.Bet: (Bet, bet_from_struct)}
_EAGER = {Order: _twin.Order, Bet: _twin.Bet}
_MESSAGE_TYPES = [_message_type(c, _EAGER.get(SCHEMAS.get(c), SCHEMAS.get(c, Any)))  # type: ignore[arg-type]
                  for c in CHANNELS]
#: One pass over the frame: the channel picks the message Struct, the payload its schema.
_DATA = msgspec.json.Decoder(Union[tuple(_MESSAGE_TYPES)])  # noqa: UP007
_DECODE_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)
_CHANNEL_OF: dict[type, str] = {t: c for t, c in zip(_MESSAGE_TYPES, CHANNELS, strict=True)}


class _LenientBalance(Balance, forbid_unknown_fields=False):
    pass


class _LenientEmergency(Emergency, forbid_unknown_fields=False):
    pass


class _LenientBetslipOdds(BetslipOdds, forbid_unknown_fields=False):
    pass


class _LenientBetslip(Betslip, forbid_unknown_fields=False):
    odds: dict[str, dict[str, _LenientBetslipOdds]]  # type: ignore[assignment]  # nested too


#: The slow path's decoders: the same schemas, unknown fields ignored; the result is
#: converted to the public type (``msgspec.convert(..., from_attributes=True)``).
_LENIENT_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "balance": msgspec.json.Decoder(_LenientBalance),
    "emergency": msgspec.json.Decoder(_LenientEmergency),
    "betslip": msgspec.json.Decoder(_LenientBetslip),
}
assert _LENIENT_DECODERS.keys() | {"orders", "bets", "settlements"} == SCHEMAS.keys()
#: What the compiled listener makes of each channel's payload bytes: the lazy types, or a
#: strict decoder (an error sends the frame to the Python path).
_LISTENER_PAYLOADS = [SCHEMAS[c] if SCHEMAS.get(c) in (Order, Bet)
                      else msgspec.json.Decoder(SCHEMAS.get(c, Any)).decode for c in CHANNELS]

#: How the compiled listener calls a channel's callbacks (``Tech55Listener`` route modes).
_ROUTE_PYTHON, _ROUTE_DIRECT, _ROUTE_NONE = 0, 1, 2
#: Channels whose payloads update client state first: always the Python path.
_STATE_CHANNELS = frozenset({"betslip", "emergency"})


def ack_single(seq: int) -> bytes:
    """The assumed per-message ack: ``{"type":"ack","seq":N}``."""
    return b'{"type":"ack","seq":%d}' % seq


def ack_batch(seqs: Sequence[int]) -> bytes:
    """The assumed batch ack: ``{"type":"ack","seqs":[...]}``."""
    try:  # orjson writes a list of ints ~10x faster than joining "%d"s
        return b'{"type":"ack","seqs":%s}' % orjson.dumps(seqs)
    except (orjson.JSONEncodeError, TypeError):  # past 64 bits, or not a list / tuple
        return b'{"type":"ack","seqs":[%s]}' % b",".join(b"%d" % s for s in seqs)


PING = b'{"type":"ping"}'
PONG = b'{"type":"pong"}'
#: Close codes that say "not now", not "not you": a close with one before login_ok is retried.
TRANSIENT_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})


class Session(msgspec.Struct, rename="camel", kw_only=True, dict=True):
    """The ``login_ok`` fields (``client.session``); ``extra`` has any others."""

    client_name: str | None = None
    channels: list[str] = msgspec.field(default_factory=list)
    subscription_id: Any = None
    access: dict[str, list[str]] = msgspec.field(default_factory=dict)
    reliable_delivery: bool = False
    features: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def extra(self) -> dict[str, Any]:
        """The ``login_ok`` fields not listed above."""
        extra: dict[str, Any] = self.__dict__.get("_extra", {})
        return extra

    @property
    def batch_ack(self) -> bool:
        return self.features.get("batchAck") is True


# --- the betslip table ---------------------------------------------------------------------

class BetslipQuote(NamedTuple):
    price: float
    limit: float
    limit_min: float
    limit_usd: float
    limit_min_usd: float
    active: bool
    limit_currency: str | None
    account: str | None
    ts: int


BetslipKey = tuple[str, int, int, int, str, str]
_Group = tuple[str, int, int, int]


class BetslipTable:
    """Betslip odds in numpy columns, one row per (event, outcome, player, participant,
    bookmaker, line key); ``event`` is the ``futureId`` when present, else the
    ``fixtureId``. Columns: ``price``, ``limit``, ``limit_min``, ``limit_usd``,
    ``limit_min_usd`` (float64, NaN when absent), ``active`` (bool), ``ts`` (int64, ms of
    the message). Growth reallocates them: read them afresh after ``apply``."""

    _FLOATS = ("price", "limit", "limit_min", "limit_usd", "limit_min_usd")

    def __init__(self, capacity: int = 64) -> None:
        capacity = max(1, capacity)
        self.price: npt.NDArray[np.float64] = np.full(capacity, np.nan)
        self.limit: npt.NDArray[np.float64] = np.full(capacity, np.nan)
        self.limit_min: npt.NDArray[np.float64] = np.full(capacity, np.nan)
        self.limit_usd: npt.NDArray[np.float64] = np.full(capacity, np.nan)
        self.limit_min_usd: npt.NDArray[np.float64] = np.full(capacity, np.nan)
        self.active: npt.NDArray[np.bool_] = np.zeros(capacity, dtype=bool)
        self.ts: npt.NDArray[np.int64] = np.zeros(capacity, dtype=np.int64)
        self._rows: dict[BetslipKey, int] = {}
        self._groups: dict[_Group, list[int]] = {}
        self._keys: list[BetslipKey | None] = [None] * capacity
        self._text: list[tuple[str | None, str | None]] = [(None, None)] * capacity
        self._free: list[int] = list(range(capacity - 1, -1, -1))

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def capacity(self) -> int:
        return len(self.price)

    def apply(self, payload: Betslip, ts: int = 0) -> int:
        """Write one betslip update; returns the number of rows written."""
        event = payload.future_id if payload.future_id is not None else payload.fixture_id
        if event is None:
            raise DecodeError("betslip payload has neither fixtureId nor futureId",
                              field="fixtureId")
        group = (event, payload.outcome_id, payload.player_id or 0, payload.participant_id or 0)
        n = 0
        for bookmaker, lines in payload.odds.items():
            for line, odds in lines.items():
                row = self._row((*group, bookmaker, line), group)
                self.price[row] = _num(odds.price)
                self.limit[row] = _num(odds.limit)
                self.limit_min[row] = _num(odds.limit_min)
                self.limit_usd[row] = _num(odds.limit_usd)
                self.limit_min_usd[row] = _num(odds.limit_min_usd)
                self.active[row] = odds.active is True
                self.ts[row] = ts
                self._text[row] = (odds.limit_currency, odds.account)
                n += 1
        return n

    def get(self, event_id: str, outcome_id: int, bookmaker: str, line: str | None = None, *,
            player_id: int = 0, participant_id: int = 0) -> BetslipQuote | None:
        """The quote of one line (``line=None``: the bookmaker's only line, or its best
        active price when it has several)."""
        if line is not None:
            row = self._rows.get((event_id, outcome_id, player_id, participant_id, bookmaker,
                                  line))
            return None if row is None else self._quote(row)
        rows = [r for r in self._groups.get((event_id, outcome_id, player_id, participant_id),
                                            ()) if self._keys[r][4] == bookmaker]  # type: ignore[index]
        if not rows:
            return None
        return self._quote(self._best(rows, active_only=False))

    def quotes(self, event_id: str, outcome_id: int, *, player_id: int = 0,
               participant_id: int = 0) -> list[tuple[str, str, BetslipQuote]]:
        """Every (bookmaker, line, quote) of an outcome."""
        out = []
        for r in self._groups.get((event_id, outcome_id, player_id, participant_id), ()):
            key = self._keys[r]
            assert key is not None
            out.append((key[4], key[5], self._quote(r)))
        return out

    def best_price(self, event_id: str, outcome_id: int, *, player_id: int = 0,
                   participant_id: int = 0, active_only: bool = True,
                   min_limit: float | None = None) -> tuple[float, str, str] | None:
        """The highest price across bookmakers and lines as (price, bookmaker, line); only
        active lines (``active_only``) and, with ``min_limit``, lines taking that stake."""
        rows = self._groups.get((event_id, outcome_id, player_id, participant_id))
        if not rows:
            return None
        idx = np.fromiter(rows, dtype=np.intp, count=len(rows))
        ok = ~np.isnan(self.price[idx])
        if active_only:
            ok &= self.active[idx]
        if min_limit is not None:
            ok &= self.limit[idx] >= min_limit
        if not ok.any():
            return None
        prices = np.where(ok, self.price[idx], -np.inf)
        row = int(idx[int(np.argmax(prices))])
        key = self._keys[row]
        assert key is not None
        return float(self.price[row]), key[4], key[5]

    def expire(self, before_ts: int) -> int:
        """Evict rows last written before ``before_ts`` (ms); returns how many."""
        live = np.fromiter(self._rows.values(), dtype=np.intp, count=len(self._rows))
        old = live[self.ts[live] < before_ts] if len(live) else live
        for row in old.tolist():
            key = self._keys[row]
            assert key is not None
            del self._rows[key]
            group = self._groups[key[:4]]
            group.remove(row)
            if not group:
                del self._groups[key[:4]]
            self._keys[row] = None
            self._text[row] = (None, None)
            for name in self._FLOATS:
                getattr(self, name)[row] = np.nan
            self.active[row] = False
            self._free.append(row)
        return len(old)

    def clear(self) -> None:
        self.__init__(self.capacity)  # type: ignore[misc]

    def _row(self, key: BetslipKey, group: _Group) -> int:
        row = self._rows.get(key)
        if row is not None:
            return row
        if not self._free:
            self._grow()
        row = self._free.pop()
        self._rows[key] = row
        self._keys[row] = key
        self._groups.setdefault(group, []).append(row)
        return row

    def _grow(self) -> None:
        old = self.capacity
        new = old * 2
        for name in self._FLOATS:
            col = np.full(new, np.nan)
            col[:old] = getattr(self, name)
            setattr(self, name, col)
        active = np.zeros(new, dtype=bool)
        active[:old] = self.active
        self.active = active
        ts = np.zeros(new, dtype=np.int64)
        ts[:old] = self.ts
        self.ts = ts
        self._keys.extend([None] * old)
        self._text.extend([(None, None)] * old)
        self._free.extend(range(new - 1, old - 1, -1))

    def _best(self, rows: list[int], active_only: bool) -> int:
        idx = np.asarray(rows, dtype=np.intp)
        prices = np.where(np.isnan(self.price[idx]), -np.inf, self.price[idx])
        if active_only:
            prices = np.where(self.active[idx], prices, -np.inf)
        order = np.lexsort((-prices, ~self.active[idx]))  # active first, then price
        return int(idx[order[0]])

    def _quote(self, row: int) -> BetslipQuote:
        currency, account = self._text[row]
        return BetslipQuote(float(self.price[row]), float(self.limit[row]),
                            float(self.limit_min[row]), float(self.limit_usd[row]),
                            float(self.limit_min_usd[row]), bool(self.active[row]), currency,
                            account, int(self.ts[row]))


def _num(v: float | None) -> float:
    return np.nan if v is None else v


# --- the per-API-key connection limit ------------------------------------------------------

class _KeyLimiter:
    """Live clients per API key in this process (keyed by a digest: no secret kept)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[bytes, int] = {}

    def acquire(self, api_key: str, limit: int) -> bytes:
        digest = hashlib.sha256(api_key.encode()).digest()
        with self._lock:
            n = self._live.get(digest, 0)
            if n >= limit:
                raise ConfigError(
                    f"55-tech allows {limit} connections per API key, and this process "
                    f"already runs {n} clients with this key: a further one would get the "
                    "key throttled (stop one, or use another key)")
            self._live[digest] = n + 1
        return digest

    def release(self, digest: bytes) -> None:
        with self._lock:
            n = self._live.get(digest, 0) - 1
            if n > 0:
                self._live[digest] = n
            else:
                self._live.pop(digest, None)

    def live(self, api_key: str) -> int:
        return self._live.get(hashlib.sha256(api_key.encode()).digest(), 0)


LIMITER = _KeyLimiter()


# --- the client ----------------------------------------------------------------------------

class Tech55Client(WSFeedClient):
    """The 55-tech order/bet stream (see the module docstring for the wire assumptions).

    ``Tech55Client(url, api_key=..., channels=("orders", "bets"), reliable=True)``: connect,
    send ``{"type":"login","apiKey":...,"channels":[...]}`` at once (the server allows 30 s),
    keep ``login_ok`` on ``session`` and fire ``login(session)``; a refused login raises
    ``AuthError`` from ``run()`` without retrying. At most ``MAX_CONNECTIONS_PER_KEY`` (5)
    clients per API key run at once in one process: the next ``run()`` raises
    ``ConfigError``.

    Data: ``on(channel, fn)`` with ``fn(event, payload, seq, ts)``; ``payload`` is a typed
    object for the documented schemas (lazily decoded ``Order``, ``Bet`` for bets and
    settlements; ``Balance``, ``Emergency``, ``Betslip`` Structs), plain JSON values for
    the others, and for a payload off its schema (reported once per channel through
    ``error``). Another channel or message type goes to ``unknown(message)``.

    ``seq``: a skip fires ``gap(expected, got)``; a duplicate never reaches a callback
    (``stats()["duplicates"]``) but is acked again when it asks for one; a new
    ``subscriptionId`` starts a new sequence. ``reliable=True`` asks for reliable delivery:
    each message with ``requireAck`` is acked after its callbacks returned (a coroutine
    callback's ack waits for it). ``slow_consumer(backlog, lag)`` (``FeedClient``'s event)
    fires when ``backlog`` >= ``reliable_buffer`` (100, the server's buffer) messages wait
    for their ack; ``lag`` is None.

    ``emergency`` with ``active: true`` sets ``halted`` (check it before placing an order)
    and fires ``halt(payload)``; ``active: false`` clears it and fires ``resume(payload)``.
    Betslip updates are written to ``betslip`` (a ``BetslipTable``) before the callbacks.
    """

    EVENTS = EVENTS
    FEED = "55-tech"

    def __init__(self, url: str, *, api_key: str, channels: Iterable[str] = (),
                 reliable: bool = False, batch_ack: bool | None = None,
                 ack_interval: float = 0.005, ack_batch_max: int = 50,
                 ack_encoder: Callable[[int], bytes] = ack_single,
                 batch_ack_encoder: Callable[[Sequence[int]], bytes] = ack_batch,
                 reliable_buffer: int = 100, server_ping_interval: float = 30.0,
                 client_ping_interval: float = 15.0, login_timeout: float = 30.0,
                 betslip: BetslipTable | None = None,
                 max_connections_per_key: int = MAX_CONNECTIONS_PER_KEY,
                 reconnect: ReconnectPolicy | None = None,
                 ssl_context: ssl.SSLContext | None = None, connect_timeout: float = 10.0,
                 max_message_bytes: int = 1 << 20, max_write_buffer: int = 1 << 20,
                 follow_redirects: bool = False,
                 record: RecordPath = None) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise ConfigError("api_key must be a non-empty string")
        if isinstance(channels, str):
            raise ConfigError("channels is a list of channel names, not one string")
        chans = list(dict.fromkeys(channels))
        if any(not isinstance(c, str) or not c for c in chans):
            raise ConfigError("channel names are non-empty strings")
        if server_ping_interval <= 0 or client_ping_interval <= 0 or login_timeout <= 0:
            raise ConfigError("ping intervals and login_timeout must be positive")
        if ack_interval < 0 or ack_batch_max < 1 or reliable_buffer < 1:
            raise ConfigError("need ack_interval >= 0, ack_batch_max >= 1, reliable_buffer >= 1")
        if not 1 <= max_connections_per_key <= MAX_CONNECTIONS_PER_KEY:
            raise ConfigError("max_connections_per_key must be within "
                              f"1..{MAX_CONNECTIONS_PER_KEY}")
        super().__init__(url, reconnect=reconnect, stale_after=2 * server_ping_interval,
                         ssl_context=ssl_context, connect_timeout=connect_timeout,
                         ping_interval=client_ping_interval, pong_timeout=client_ping_interval,
                         max_message_bytes=max_message_bytes,
                         max_write_buffer=max_write_buffer, follow_redirects=follow_redirects,
                         auto_ping=False, record=record)
        self._api_key = api_key
        self._add_secret(api_key)
        self.channels = tuple(chans)
        self.reliable = reliable
        self.batch_ack = batch_ack
        self.ack_interval = ack_interval
        self.ack_batch_max = ack_batch_max
        self.ack_encoder = ack_encoder
        self.batch_ack_encoder = batch_ack_encoder
        self.reliable_buffer = reliable_buffer
        self.server_ping_interval = server_ping_interval
        self.client_ping_interval = client_ping_interval
        self.login_timeout = login_timeout
        self.max_connections_per_key = max_connections_per_key
        self.betslip = betslip if betslip is not None else BetslipTable()
        self.session: Session | None = None
        self.halted = False
        self.emergency: Emergency | None = None
        self.sequence = SequenceTracker(contiguous=True)
        self.acks_sent = 0
        self.server_pings = 0
        self.pongs = 0
        self.late = 0
        self._missing: list[list[int]] = []  # [lo, hi) ranges reported as gaps
        # channel -> (route mode, the one plain callback or None); see _route_of.
        self._routes: dict[str, tuple[int, Callable[..., Any] | None]] = {}
        self._delivered = 0
        self._login: asyncio.Future[Session] | None = None
        self._logged_in = False
        self._epoch = 0
        self._batch: list[int] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._inflight: dict[int, int] = {}  # seq -> coroutine callbacks still running
        self._unacked = 0
        self._slow = False
        self._last_alive = 0.0
        self._off_schema: set[str] = set()
        self._limit_slot: bytes | None = None

    # --- public API ----------------------------------------------------------------------

    def __repr__(self) -> str:
        return (f"<Tech55Client {self.where} channels={list(self.channels)} "
                f"healthy={self.healthy} halted={self.halted}>")

    #: False: frames go through the pure-Python path (``FeedListener`` + ``_on_frame``),
    #: the reference the compiled ``Tech55Listener`` is held equal to.
    compiled: bool = True

    def on(self, name: str, fn: Any = None) -> Any:
        registered = super().on(name, fn)
        self._invalidate_routes()
        return registered

    def _hydrate_enter(self, limit: int) -> None:
        super()._hydrate_enter(limit)
        self._invalidate_routes()  # direct() queues while hydrating

    def _hydrate_exit(self, covered: Callable[[str, tuple[Any, ...]], bool] | None) -> None:
        super()._hydrate_exit(covered)
        self._invalidate_routes()

    @property
    def logged_in(self) -> bool:
        return self._logged_in and self._transport is not None

    async def run(self) -> None:
        """Connect, log in and stream until ``stop()``; see the class docstring."""
        if self.running:
            raise ConfigError("Tech55Client.run() is already running")
        self._limit_slot = LIMITER.acquire(self._api_key, self.max_connections_per_key)
        try:
            await super().run()
        finally:
            LIMITER.release(self._limit_slot)
            self._limit_slot = None

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(seq=self.sequence.last, duplicates=self.sequence.duplicates
                   + self.sequence.regressions - self.late, late=self.late,
                   acks_sent=self.acks_sent, server_pings=self.server_pings,
                   json_pongs=self.pongs, unacked=self._unacked, halted=self.halted,
                   subscription_id=None if self.session is None else
                   self.session.subscription_id, betslip_rows=len(self.betslip))
        return out

    # --- one connection ------------------------------------------------------------------

    async def _attempt(self) -> None:
        loop = asyncio.get_running_loop()
        self._login = loop.create_future()
        self._login.add_done_callback(_retrieve)
        self._logged_in = False
        self._epoch += 1
        self._batch.clear()
        self._unacked = len(self._inflight)
        listener = self._make_listener()
        transport = None
        try:
            transport = await self._ws_connect(listener, self.url)
            login: dict[str, Any] = {"type": "login", "apiKey": self._api_key,
                                     "channels": list(self.channels)}
            if self.reliable:
                login["reliableDelivery"] = True
            self._send_bytes(orjson.dumps(login))
            try:
                await asyncio.wait_for(asyncio.shield(self._login), self.login_timeout)
            except TimeoutError:
                raise ConnectError(
                    f"55-tech: no login answer within {self.login_timeout:g}s") from None
            await self._ws_wait(transport)
        finally:
            self._set_logged_in(False, listener)
            self._cancel_flush()
            self._ws_release(listener, transport)

    def _make_listener(self) -> FeedListener:
        """This connection's listener: the compiled ``Tech55Listener``, or with
        ``compiled = False`` a plain ``FeedListener`` calling ``_on_frame``."""
        options = self._listener_options()
        if not self.compiled:
            return FeedListener(on_message=self._on_frame, **options)
        return Tech55Listener(
            channels=CHANNELS, payloads=_LISTENER_PAYLOADS, decode_errors=_DECODE_ERRORS,
            route=self._route_of_channel, on_data=self._deliver, on_slow=self._on_frame,
            on_returned=self._returned,
            on_ack=self._ack, on_report=self.callbacks.report,
            on_established=self._mark_established, sequence=self.sequence, gate=self.gate,
            reliable=self.reliable, **options)

    def _set_logged_in(self, value: bool, listener: Any = None) -> None:
        self._logged_in = value
        listener = self._listener if listener is None else listener
        if isinstance(listener, Tech55Listener):
            listener.logged_in = value

    def _on_link_lost(self, reason: str) -> None:
        fut = self._login
        if fut is None or fut.done():
            return
        transport = self._transport
        hs = transport.close_handshake if transport is not None else None
        code = None if hs is None or hs.recv is None else _code(hs.recv.code)
        if code is not None and code not in TRANSIENT_CLOSE_CODES and not self._stopping:
            fut.set_exception(AuthError(
                f"55-tech: the server closed the connection before login_ok "
                f"({self._scrub(reason)}): login refused", code=str(code)))
        else:
            fut.set_exception(ConnectError(f"55-tech: {reason} before login_ok"))

    # --- frames --------------------------------------------------------------------------

    def _on_frame(self, frame: bytes) -> None:
        """One whole message in Python: the whole path with ``compiled = False``, and what
        the compiled listener does with every frame its scan refuses. One msgspec decode
        into the twin's eager Structs (an order / bet then becomes its lazy type, holding
        the values), else ``_slow_path``."""
        if not self._logged_in:
            self._slow_path(frame)
            return
        try:
            msg = _DATA.decode(frame)
        except _DECODE_ERRORS:
            self._slow_path(frame)
            return
        listener = self._listener
        if listener is not None:
            listener.mark_decoded()
            listener.stamp(msg.ts, ms=True)
        payload = msg.payload
        twin = _TWIN_OF.get(type(payload))
        if twin is not None:
            payload = twin[1](payload, bytes(_ENVELOPE.decode(frame).payload))
        self._deliver(_CHANNEL_OF[type(msg)], msg.event, payload, msg.seq, msg.ts,
                      msg.requireAck)

    def _deliver(self, channel: str, event: Any, payload: Any, seq: Any, ts: Any,
                 require_ack: bool) -> None:
        """One data message of a known channel: seq, state, callbacks, ack."""
        if self._established_at is None:
            self._mark_established()
        if seq is not None:
            last = self.sequence.last
            verdict = self.sequence.observe(seq)
            if verdict != "ok":
                if verdict == "gap":
                    self._gap(last + 1, seq)
                elif not self._fills_gap(seq):
                    # Acked again (its first ack may have been lost), unless its
                    # callbacks are still running: their end acks it.
                    if require_ack and self.reliable and seq not in self._inflight:
                        self._ack(seq)
                    return
                else:
                    self.late += 1
        self._delivered += 1
        if channel == "betslip":
            if isinstance(payload, Betslip):
                self._apply_betslip(payload, ts)
        elif channel == "emergency" and isinstance(payload, Emergency):
            self._apply_emergency(payload)
        if not self.gate.healthy:  # only the first message after a drop raises it
            self.gate.touch()
        mode, fn = self._route_of(channel)
        tasks = None
        if mode == _ROUTE_DIRECT:
            assert fn is not None
            try:
                r = fn(event, payload, seq, ts)
                if r is not None and inspect.isawaitable(r):
                    tasks = [self.callbacks.spawn(channel, r)]
            except Exception as e:
                self.callbacks.report(channel, e)
        elif mode == _ROUTE_PYTHON:
            tasks = self.callbacks.emit(channel, event, payload, seq, ts)
        if require_ack and self.reliable and seq is not None:
            if tasks:
                self._ack_after(seq, tasks)
            else:
                self._ack(seq)

    def _returned(self, channel: str, value: Any, seq: int | None) -> None:
        """The compiled listener's direct callback returned ``value`` (not None): run it
        as a task when awaitable; ack ``seq`` (None: no ack owed) after it."""
        tasks = None
        if inspect.isawaitable(value):
            tasks = [self.callbacks.spawn(channel, value)]
        if seq is not None:
            if tasks:
                self._ack_after(seq, tasks)
            else:
                self._ack(seq)

    def _route_of(self, channel: str) -> tuple[int, Callable[..., Any] | None]:
        """How to call ``channel``'s callbacks: (``_ROUTE_DIRECT``, fn) for one plain
        function, (``_ROUTE_NONE``, None) when nobody listens, else (``_ROUTE_PYTHON``,
        None): ``emit`` (fan-out, coroutine functions, a hydration hold). Cached until the
        callbacks change (``on``, a hydration starts or ends)."""
        route = self._routes.get(channel)
        if route is None:
            target = self.callbacks.direct(channel)
            fns = self.callbacks.listeners(channel)
            if target is None:
                route = (_ROUTE_NONE, None)
            elif len(fns) == 1 and target is fns[0]:
                route = (_ROUTE_DIRECT, target)
            else:
                route = (_ROUTE_PYTHON, None)
            self._routes[channel] = route
        return route

    def _route_of_channel(self, channel: str) -> tuple[str, int, Callable[..., Any] | None]:
        """The compiled listener's route for a channel: (channel, mode, fn); the state
        channels (betslip, emergency) always take the Python path."""
        if channel in _STATE_CHANNELS:
            return channel, _ROUTE_PYTHON, None
        return (channel, *self._route_of(channel))

    def _invalidate_routes(self) -> None:
        self._routes.clear()
        if isinstance(self._listener, Tech55Listener):
            self._listener.invalidate()

    def _gap(self, expected: int, got: int) -> None:
        """``seq`` skipped ``expected..got-1``: counted, reported, and remembered for a late
        fill (the latest 64 gaps)."""
        self.stats_counters.gaps += 1
        self._missing.append([expected, got])
        if len(self._missing) > 64:
            del self._missing[0]
        self.callbacks.emit("gap", expected, got)

    def _fills_gap(self, seq: int) -> bool:
        for i, r in enumerate(self._missing):
            lo, hi = r
            if lo <= seq < hi:
                if seq == lo:
                    r[0] = lo + 1
                elif seq == hi - 1:
                    r[1] = hi - 1
                else:
                    self._missing.insert(i + 1, [seq + 1, hi])
                    r[1] = seq
                if r[0] >= r[1]:
                    self._missing.remove(r)
                return True
        return False

    def _slow_path(self, frame: bytes) -> None:
        """Everything the one-pass decoder did not take: control messages, unknown
        channels, payloads off their schema, malformed JSON."""
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as e:
            self._error(DecodeError(f"55-tech: a frame is not valid JSON ({e})"))
            return
        if not isinstance(msg, dict):
            self._error(DecodeError(f"55-tech: a frame is a JSON {type(msg).__name__}, "
                                    "expected an object"))
            return
        kind = msg.get("type")
        if kind == "ping":
            self.server_pings += 1
            self._last_alive = time.monotonic()
            self._send_bytes(PONG)
            return
        if kind == "pong":
            self.pongs += 1
            return
        if kind == "login_ok":
            self._on_login_ok(frame)
            return
        if kind == "error":
            self._on_server_error(msg)
            return
        if kind != "data" or not self._logged_in:
            if kind == "data":
                self._error(ProtocolError("55-tech: a data message before login_ok: ignored"))
                return
            self.callbacks.emit("unknown", msg)
            return
        self._slow_data(msg, frame)

    def _slow_data(self, msg: dict[str, Any], frame: bytes) -> None:
        seq, ts, channel = msg.get("seq"), msg.get("ts"), msg.get("channel")
        if seq is not None and (type(seq) is not int):
            self._error(DecodeError(f"55-tech: seq {seq!r} is not an integer", field="seq"))
            seq = None
        require_ack = msg.get("requireAck") is True
        if channel not in CHANNELS:
            self._deliver_unknown(msg, seq, require_ack)
            return
        payload = msg.get("payload")
        cls = SCHEMAS.get(channel)
        if cls is not None:
            # Off the fast path: fields the schema does not know (kept in ``extra``), or
            # off the schema (delivered as plain values, reported once per channel).
            try:
                raw = _ENVELOPE.decode(frame).payload
                if cls is Order or cls is Bet:
                    payload = cls.decode(bytes(raw))
                else:
                    lenient = _LENIENT_DECODERS[channel].decode(raw)
                    payload = msgspec.convert(lenient, cls, from_attributes=True)
                    payload.__dict__["_frame"] = frame
            except msgspec.DecodeError as e:  # ValidationError included
                if channel not in self._off_schema:
                    self._off_schema.add(channel)
                    self._error(DecodeError(
                        f"55-tech: a {channel} payload does not fit its schema ({e}); "
                        "delivering such payloads as plain values", field="payload"))
        self._deliver(channel, msg.get("event"), payload, seq, ts, require_ack)

    def _deliver_unknown(self, msg: dict[str, Any], seq: Any, require_ack: bool) -> None:
        if seq is not None:
            last = self.sequence.last
            verdict = self.sequence.observe(seq)
            if verdict == "gap":
                self._gap(last + 1, seq)
            elif verdict != "ok" and not self._fills_gap(seq):
                if require_ack and self.reliable and seq not in self._inflight:
                    self._ack(seq)
                return
        tasks = self.callbacks.emit("unknown", msg)
        if require_ack and self.reliable and seq is not None:
            if tasks:
                self._ack_after(seq, tasks)
            else:
                self._ack(seq)

    def _on_login_ok(self, frame: bytes) -> None:
        raw = orjson.loads(frame)  # the slow path has parsed it: valid JSON, an object
        try:
            session = msgspec.json.decode(frame, type=Session)
            off: list[str] = []
        except (msgspec.ValidationError, msgspec.DecodeError):
            # A login_ok is a successful login whatever its informative fields look like:
            # a null is an absent field, one off its type is left out (kept in ``extra``).
            session, off = _lenient_session(raw)
            self._error(ProtocolError(
                f"55-tech: login_ok fields off their schema, left out: {', '.join(off)}"
                if off else "55-tech: login_ok has null fields, read as absent"))
        known = {"type", *Session.__struct_encode_fields__} - set(off)
        session.__dict__["_extra"] = {k: v for k, v in raw.items() if k not in known}
        previous = self.session
        if previous is None or previous.subscription_id != session.subscription_id:
            # A new subscription: a new sequence; acks owed to the old one are void.
            self.sequence.reset()
            self._missing.clear()
            self._inflight.clear()
            self._unacked = 0
        self.session = session
        self._set_logged_in(True)
        self._last_alive = time.monotonic()
        self.gate.release()
        self.gate.touch()
        self.callbacks.emit("login", session)
        if self._login is not None and not self._login.done():
            self._login.set_result(session)

    def _on_server_error(self, msg: dict[str, Any]) -> None:
        code = msg.get("code")
        code = code if isinstance(code, str | int) else None
        text = msg.get("message") or msg.get("error") or msg.get("reason") or ""
        detail = self._scrub(str(text))[:300]
        fut = self._login
        if fut is not None and not fut.done():
            err: Exception = AuthError(f"55-tech: login refused: {code or '?'}"
                                       + (f": {detail}" if detail else ""),
                                       code=None if code is None else str(code))
            fut.set_exception(err)
            if self._transport is not None:
                self._transport.disconnect()
            return
        self._error(ProtocolError(f"55-tech: server error {code or '?'}"
                                  + (f": {detail}" if detail else "")))

    # --- state ---------------------------------------------------------------------------

    def _apply_betslip(self, payload: Betslip, ts: Any) -> None:
        try:
            self.betslip.apply(payload, ts if isinstance(ts, int) else 0)
        except DecodeError as e:
            self._error(e)

    def _apply_emergency(self, payload: Emergency) -> None:
        self.emergency = payload
        if payload.active and not self.halted:
            self.halted = True
            self.log.warning("55-tech emergency mode on: %s", payload.reason)
            self.callbacks.emit("halt", payload)
        elif not payload.active and self.halted:
            self.halted = False
            self.log.warning("55-tech emergency mode off: %s", payload.reason)
            self.callbacks.emit("resume", payload)

    # --- acks ----------------------------------------------------------------------------

    def _ack(self, seq: int) -> None:
        # Once per reliable message: which form (batch_ack, else the session's feature)
        # and the slow-consumer check (only near or past the limit) are inlined.
        batching = self.batch_ack
        if batching is None:
            session = self.session
            batching = session is not None and session.batch_ack
        if not batching:
            self._send_bytes(self.ack_encoder(seq))
            self.acks_sent += 1
            return
        batch = self._batch
        batch.append(seq)
        self._unacked += 1
        if len(batch) >= self.ack_batch_max:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(
                self.ack_interval, self._flush)
        if self._slow or self._unacked >= self.reliable_buffer:
            self._check_slow()

    def _flush(self) -> None:
        self._cancel_flush()
        batch, self._batch = self._batch, []
        if batch:
            self._unacked -= len(batch)
            self._send_bytes(self.batch_ack_encoder(batch))
            self.acks_sent += len(batch)
            self._check_slow()

    def _cancel_flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    def _ack_after(self, seq: int, tasks: list[asyncio.Task[Any]]) -> None:
        """Ack ``seq`` once every coroutine callback of its message has ended."""
        epoch = self._epoch
        left = [len(tasks)]
        self._inflight[seq] = self._inflight.get(seq, 0) + 1
        self._unacked += 1
        self._check_slow()

        def done(_: asyncio.Task[Any]) -> None:
            left[0] -= 1
            if left[0]:
                return
            n = self._inflight.pop(seq, 1) - 1
            if n > 0:
                self._inflight[seq] = n
            self._unacked = max(0, self._unacked - 1)
            if epoch == self._epoch and self._logged_in:
                self._ack(seq)
            # else: the connection that delivered it is gone; the server redelivers it,
            # and the client acks the duplicate.
            self._check_slow()
        for t in tasks:
            t.add_done_callback(done)

    def _check_slow(self) -> None:
        if not self._slow and self._unacked >= self.reliable_buffer:
            self._slow = True
            self._slow_consumer(self._unacked, None)  # counted, logged, emitted
        elif self._slow and self._unacked < self.reliable_buffer // 2:
            self._slow = False

    # --- liveness ------------------------------------------------------------------------

    def _check_liveness(self) -> None:
        if not self._logged_in or self._transport is None:
            return
        now = time.monotonic()
        limit = 2 * self.server_ping_interval
        if now - self._last_alive > limit:
            reason = f"no ping from the server for {limit:g}s"
            self._error(StaleFeedError(f"55-tech: {reason}; reconnecting"))
            self._stale_reason = self._disconnect_reason = reason
            self.gate.trip(reason)  # stale now, with its reason
            self._transport.disconnect(graceful=False)
            return
        if now - self._last_send >= self.client_ping_interval:
            self._send_bytes(PING)

    def _finished(self) -> None:
        self._cancel_flush()


def _lenient_session(raw: dict[str, Any]) -> tuple[Session, list[str]]:
    """``login_ok`` as a ``Session`` field by field: nulls dropped, and the names of the
    fields that do not fit their type (left out)."""
    fields = {k: v for k, v in raw.items() if k != "type" and v is not None}
    good: dict[str, Any] = {}
    off: list[str] = []
    for k, v in fields.items():
        try:
            msgspec.convert({k: v}, Session)
        except msgspec.ValidationError:
            off.append(k)
        else:
            good[k] = v
    return msgspec.convert(good, Session), off


def _code(code: Any) -> int:
    try:
        return int(code.value) if hasattr(code, "value") else int(code)
    except (TypeError, ValueError):
        return 0


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


