"""SatoriEx exchange events: WebSocket JSON, a JWT in the URL, the user channel (automatic),
``market:{id}`` and ``marketdata:{id}`` channels, one event per ``type``.

:class:`SatoriexClient` connects to ``url?token=JWT``, subscribes, and dispatches every
message on its ``type``. Market data goes to :class:`MarketData` (Rust: the message is
read straight from the frame bytes, no dict) before any callback runs: per-market prices in
numpy columns and per-market order books. Every other message is decoded once, with orjson.

Wire forms the spec leaves open (*assumed*, DESIGN §5b; names configurable through
``layout=``, see :data:`oddswire.reference.satoriex.DEFAULT_LAYOUT`):

- ``{"type":"price_update","market_id":M,"mid":x,"best_bid":b,"best_ask":a,"ts":ms}``;
  ``mid`` / ``best_bid`` / ``best_ask`` may be null (an empty side: NaN in the columns).
- ``{"type":"orderbook","market_id":M,"seq":n,"snapshot":bool,"bids":[[price,size],...],
  "asks":[[price,size],...]}``: a snapshot replaces the book; otherwise the levels are
  deltas (size 0 deletes the level) and ``seq`` must be the previous one plus 1. ``snapshot``
  absent means a delta; ``bids`` / ``asks`` absent mean no change on that side.
- Subscriptions: ``{"type":"subscribe","market_id":M}``, ``{"type":"subscribe_marketdata",
  "market_id":M}`` (from the spec), ``{"type":"unsubscribe","market_id":M}`` and
  ``{"type":"unsubscribe_marketdata","market_id":M}`` (assumed). A
  ``subscribe_marketdata`` for a market already subscribed is answered with a fresh
  snapshot (assumed): that is how a book out of sync is repaired.

Books: a delta whose ``seq`` is not the next one (``gap(market_id, expected, got)``), a book
that ends up crossed (best bid >= best ask, an ``error``), or a book message off the assumed
layout leaves the book waiting for a snapshot (``book(market_id).synced`` False, deltas
ignored) and the market is resubscribed (``resync(market_id, reason)``), at most once per
``resync_interval`` seconds. After a reconnect every book waits for its snapshot.

Assumed layouts never lose an event: a ``price_update`` / ``orderbook`` message that does
not fit them is still delivered to its event as the plain decoded message, and the mismatch
is reported once (per type and field) through ``error``.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
import orjson

from oddswire._wire import FeedListener, SatoriexListener
from oddswire._ws import TokenSource, WSFeedClient
from oddswire.client import ReconnectPolicy, RecordPath
from oddswire.errors import ConfigError, DecodeError, ProtocolError
from oddswire_native import MarketData

__all__ = [
    "BOOK",
    "CROSSED",
    "EVENTS",
    "GAP",
    "MARKETDATA_EVENTS",
    "MARKET_EVENTS",
    "PRICE",
    "UNSYNCED",
    "USER_EVENTS",
    "MarketData",
    "OrderBook",
    "SatoriexClient",
]

log = logging.getLogger(__name__)

#: ``MarketData.apply`` result codes.
PRICE, BOOK, GAP, CROSSED, UNSYNCED = 1, 2, 3, 4, 5

USER_EVENTS = (
    "wallet_changed", "deposit_confirmed", "withdraw_requested", "withdraw_submitted",
    "withdraw_approved", "withdraw_rejected", "withdraw_confirmed", "withdraw_failed",
    "kyc_approved", "kyc_rejected", "proposal_approved", "proposal_rejected",
    "referral_bonus", "dispute_filed", "mention", "market_resolved", "order_filled",
)
MARKET_EVENTS = ("trade", "order", "order_update", "settlement", "comment")
MARKETDATA_EVENTS = ("price_update", "orderbook")

#: Events a SatoriexClient emits, and what the callback receives.
EVENTS = frozenset({
    *USER_EVENTS, *MARKET_EVENTS, *MARKETDATA_EVENTS,  # (message: dict) as decoded
    "unknown",       # (message) a type the spec does not document, or no string type
    "price",         # (market_id, mid, best_bid, best_ask, ts) after client.prices changed
    "book",          # (market_id, seq) after a book changed
    "gap",           # (market_id, expected, got) a book delta skipped a seq
    "resync",        # (market_id, reason) the market was resubscribed for a fresh snapshot
    "connected",     # () WebSocket open (subscriptions follow at once)
    "disconnected",  # (reason)
    "stale",         # (reason) healthy went False
    "healthy",       # ()
    "error",         # (exception) bad messages, off-layout market data, crossed books, ...
})


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _market(market_id: Any) -> str:
    if not isinstance(market_id, str) or not market_id:
        raise ConfigError(f"market ids are non-empty strings, got {market_id!r}")
    return market_id


class OrderBook:
    """A live view of one market's book in ``client.market_data``: ``bids`` / ``asks`` are
    fresh ``(n, 2)`` float64 arrays ``[price, size]``, best first."""

    __slots__ = ("_md", "market_id")

    def __init__(self, md: Any, market_id: str) -> None:
        self._md = md
        self.market_id = market_id

    @property
    def bids(self) -> npt.NDArray[np.float64]:
        return self._md.bids(self.market_id)  # type: ignore[no-any-return]

    @property
    def asks(self) -> npt.NDArray[np.float64]:
        return self._md.asks(self.market_id)  # type: ignore[no-any-return]

    @property
    def seq(self) -> int | None:
        return self._md.seq(self.market_id)  # type: ignore[no-any-return]

    @property
    def synced(self) -> bool:
        """A snapshot plus every delta since (False while waiting for a snapshot)."""
        return self._md.synced(self.market_id)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return (f"OrderBook({self.market_id!r}, bids={len(self.bids)}, asks={len(self.asks)}, "
                f"seq={self.seq}, synced={self.synced})")


class SatoriexClient(WSFeedClient):
    """The SatoriEx WebSocket: connect to ``url?token=JWT``, subscribe, dispatch.

    ``token``: the JWT, or a function (sync or async) returning a fresh one per connection;
    it never appears in a log line, an exception, ``repr`` or ``stats()``. HTTP 401/403 at
    the upgrade (a bad or expired token) raises ``AuthError`` from ``run()`` without
    retrying. User-channel events need no subscription; ``subscribe(market_id)`` and
    ``subscribe_marketdata(market_id)`` (and their unsubscribes) keep sets that are
    replayed after every reconnect.

    Every documented ``type`` is an event of that name, ``fn(message)``; another type is
    ``unknown(message)``. Market data also updates ``market_data`` (alias ``prices``) first
    and fires ``price`` / ``book`` with scalars; ``price_update`` / ``orderbook`` get the
    decoded message, built only when someone listens. See the module docstring for the
    assumed forms, the book rules and ``resync``.

    The hydration gate (``async with client.hydrating(): ...``) and the fallback poll
    (``client.poll(fn, every=60.0)``) are the shared ``FeedClient`` ones.

    Liveness: WebSocket PINGs after ``ping_interval`` idle seconds, reconnect when no PONG
    within ``pong_timeout``. ``stale_after`` (None: off) drops ``healthy`` after that long
    without a message, without dropping the connection (the user channel can be quiet).
    """

    EVENTS = EVENTS
    FEED = "SatoriEx"

    def __init__(self, url: str, *, token: TokenSource, markets: Iterable[str] = (),
                 marketdata: Iterable[str] = (), market_data: Any = None,
                 layout: Mapping[str, str] | None = None, max_levels: int = 1000,
                 resync_interval: float = 1.0, stale_after: float | None = None,
                 ping_interval: float = 20.0, pong_timeout: float = 10.0,
                 reconnect: ReconnectPolicy | None = None,
                 ssl_context: ssl.SSLContext | None = None, connect_timeout: float = 10.0,
                 max_message_bytes: int = 4 << 20, max_write_buffer: int = 1 << 20,
                 follow_redirects: bool = False,
                 record: RecordPath = None) -> None:
        if stale_after is not None and not stale_after > 0:
            raise ConfigError("stale_after must be positive (or None)")
        if not resync_interval >= 0:
            raise ConfigError("resync_interval must be >= 0")
        super().__init__(url, reconnect=reconnect,
                         stale_after=stale_after if stale_after is not None else 1.0,
                         ssl_context=ssl_context, connect_timeout=connect_timeout,
                         ping_interval=ping_interval, pong_timeout=pong_timeout,
                         max_message_bytes=max_message_bytes,
                         max_write_buffer=max_write_buffer, follow_redirects=follow_redirects,
                         record=record)
        if not callable(token) and (not isinstance(token, str) or not token):
            raise ConfigError("token must be a non-empty string or a function returning one")
        self._token = token
        self.stale_after = stale_after
        self.resync_interval = resync_interval
        self.market_data: Any = (market_data if market_data is not None else MarketData(
            max_levels=max_levels, layout=dict(layout or {})))
        lay = self.market_data.layout
        self._type_key = lay["type"]
        self._price_type, self._book_type = lay["price_type"], lay["book_type"]
        self._market_key = lay["market_id"]
        self._known = frozenset({*USER_EVENTS, *MARKET_EVENTS}) - {
            self._price_type, self._book_type}
        self._markets: set[str] = {_market(m) for m in markets}
        self._marketdata: set[str] = {_market(m) for m in marketdata}
        # market -> when it was last resubscribed; the compiled listener watches this very
        # dict (a book message takes the Python path while it is not empty): never rebind it
        self._resyncing: dict[str, float] = {}
        self._layout_reported: set[tuple[str, Any]] = set()
        self._unknown_seen: set[str] = set()
        self._apply = self.market_data.apply
        self._seen = 0
        self._last_rx = 0.0
        self._fast: SatoriexListener | None = None
        # stats(): these plus the compiled listener's prices / books (its fast path)
        self._counts = {"prices": 0, "books": 0, "gaps": 0, "crossed": 0, "resyncs": 0,
                        "off_layout": 0, "unknown": 0}

    #: False: frames go through the pure-Python path (``FeedListener`` + ``_on_frame``), the
    #: reference the compiled ``SatoriexListener`` is held equal to. A ``market_data`` that
    #: is not the Rust ``MarketData`` (the twin) always takes it.
    compiled: bool = True

    # --- public API ----------------------------------------------------------------------

    def on(self, name: str, fn: Any = None) -> Any:
        if fn is None:  # @client.on(name)
            def register(f: Any) -> Any:
                self.on(name, f)
                return f
            return register
        super().on(name, fn)
        self._bind()
        return fn

    @property
    def prices(self) -> Any:
        """``market_data``: ``.get(market_id) -> (mid, best_bid, best_ask, ts) | None`` and
        the numpy columns ``mid``, ``best_bid``, ``best_ask``, ``ts`` by ``row(market_id)``."""
        return self.market_data

    def book(self, market_id: str) -> OrderBook:
        """The order book of ``market_id`` (empty until its first snapshot)."""
        return OrderBook(self.market_data, market_id)

    @property
    def markets(self) -> frozenset[str]:
        return frozenset(self._markets)

    @property
    def marketdata_markets(self) -> frozenset[str]:
        return frozenset(self._marketdata)

    def subscribe(self, market_id: str) -> None:
        """``market:{id}`` events (trade, order, order_update, settlement, comment)."""
        market_id = _market(market_id)
        if market_id not in self._markets:
            self._markets.add(market_id)
            self._send({"type": "subscribe", "market_id": market_id})

    def unsubscribe(self, market_id: str) -> None:
        if market_id in self._markets:
            self._markets.discard(market_id)
            self._send({"type": "unsubscribe", "market_id": market_id})

    def subscribe_marketdata(self, market_id: str) -> None:
        """``marketdata:{id}``: price updates and the order book."""
        market_id = _market(market_id)
        if market_id not in self._marketdata:
            self._marketdata.add(market_id)
            self._send({"type": "subscribe_marketdata", "market_id": market_id})

    def unsubscribe_marketdata(self, market_id: str) -> None:
        """Stop the market data; the market's price and book are forgotten."""
        if market_id in self._marketdata:
            self._marketdata.discard(market_id)
            self._resyncing.pop(market_id, None)
            self._send({"type": "unsubscribe_marketdata", "market_id": market_id})
            self.market_data.reset(market_id)

    def _extra_stats(self) -> dict[str, Any]:
        out = super()._extra_stats()
        counts = dict(self._counts)
        if self._fast is not None:
            counts["prices"] += self._fast.prices
            counts["books"] += self._fast.books
        out.update(counts, markets=len(self.market_data),
                   ignored_deltas=self.market_data.ignored)
        return out

    def _hydrate_enter(self, limit: int) -> None:
        super()._hydrate_enter(limit)
        self._bind()  # direct() queues while hydrating

    def _hydrate_exit(self, covered: Any) -> None:
        super()._hydrate_exit(covered)
        self._bind()

    # --- one connection ------------------------------------------------------------------

    async def _attempt(self) -> None:
        token = await self._resolve_token(self._token, "token")
        listener = self._make_listener()
        transport = None
        try:
            transport = await self._ws_connect(listener, _with_query(self.url, token=token))
            self.market_data.desync_all()  # deltas were missed: every book needs a snapshot
            self._resyncing.clear()
            for m in sorted(self._markets):
                self._send({"type": "subscribe", "market_id": m})
            for m in sorted(self._marketdata):
                self._send({"type": "subscribe_marketdata", "market_id": m})
            self._seen, self._last_rx = listener.messages, time.monotonic()
            self.gate.release()
            self.gate.touch()
            await self._ws_wait(transport)
        finally:
            self._drop_listener(listener)
            self._ws_release(listener, transport)

    def _make_listener(self) -> FeedListener:
        """The compiled ``SatoriexListener`` (Rust ``MarketData``, ``compiled``), else a
        ``FeedListener`` handing every message to ``_on_frame``."""
        options = self._listener_options()
        if not (self.compiled and isinstance(self.market_data, MarketData)):
            self._fast = None
            return FeedListener(on_message=self._on_frame, **options)
        listener = SatoriexListener(
            self.market_data, on_other=self._dispatch, on_applied=self._on_applied,
            on_refused=self._off_layout, on_report=self.callbacks.report,
            on_established=self._mark_established, resyncing=self._resyncing, **options)
        self._fast = listener
        self._bind()
        return listener

    def _bind(self) -> None:
        """Hand the compiled listener what ``direct()`` says now (after ``on``, and when
        the hydration gate holds or releases events)."""
        if self._fast is not None:
            cb = self.callbacks
            self._fast.bind(cb.direct("price"), cb.direct("book"), cb.has("price_update"),
                            cb.has("orderbook"))

    def _drop_listener(self, listener: FeedListener) -> None:
        if isinstance(listener, SatoriexListener):
            self._counts["prices"] += listener.prices
            self._counts["books"] += listener.books
        if self._fast is listener:
            self._fast = None

    # --- messages ------------------------------------------------------------------------

    def _on_frame(self, payload: bytes) -> None:
        """One message, all in Python (the reference path; ``SatoriexListener`` does the
        same with the common market-data cases in C)."""
        if self._established_at is None:
            self._mark_established()
        try:
            code = self._apply(payload)
        except DecodeError as e:
            self._off_layout(payload, e)
            return
        listener = self._listener
        if listener is not None:
            listener.mark_decoded()
            if code == PRICE:
                price = self.market_data.get(self.market_data.last_market)
                if price is not None and price[3] > 0:  # else the column's empty marker
                    listener.stamp(price[3], ms=True)
        if code is None:
            self._dispatch(payload)
            return
        self._on_applied(code, payload)

    def _on_applied(self, code: int, payload: bytes) -> None:
        """A market-data message ``market_data`` applied with result ``code``."""
        md = self.market_data
        market: str = md.last_market
        cb = self.callbacks
        if code == PRICE:
            self._counts["prices"] += 1
            fn = cb.direct("price")  # one plain function when one is registered
            if fn is not None:
                try:
                    fn(market, *md.get(market))
                except Exception as e:
                    cb.report("price", e)
            if cb.has("price_update"):
                cb.emit("price_update", orjson.loads(payload))
            return
        if code in (BOOK, CROSSED):
            self._counts["books"] += 1
            if self._resyncing:
                self._resyncing.pop(market, None)
            fn = cb.direct("book")
            if fn is not None:
                try:
                    fn(market, md.seq(market))
                except Exception as e:
                    cb.report("book", e)
        if cb.has("orderbook"):
            cb.emit("orderbook", orjson.loads(payload))
        if code == GAP:
            self._counts["gaps"] += 1
            self.stats_counters.gaps += 1
            expected, got = md.gap
            cb.emit("gap", market, expected, got)
            self._resync(market, f"seq gap: expected {expected}, got {got}")
        elif code == CROSSED:
            self._counts["crossed"] += 1
            book = md.bids(market)[:1], md.asks(market)[:1]
            self._error(ProtocolError(
                f"SatoriEx: the book of {market!r} is crossed (best bid "
                f"{book[0][0][0] if len(book[0]) else None} >= best ask "
                f"{book[1][0][0] if len(book[1]) else None}); resubscribing"))
            self._resync(market, "crossed book")
        elif code == UNSYNCED and market not in self._resyncing:
            self._resync(market, "delta before a snapshot")

    def _dispatch(self, payload: bytes) -> None:
        """A message that is not market data: decoded once, dispatched on its type."""
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError as e:
            self._error(DecodeError(f"SatoriEx: a message is not valid JSON: {e}"))
            return
        kind = msg.get(self._type_key) if type(msg) is dict else None
        if type(kind) is str and kind in self._known:
            self.callbacks.emit(kind, msg)
            return
        self._counts["unknown"] += 1
        if type(kind) is not str:
            self._error(ProtocolError(
                f"SatoriEx: a message without a string {self._type_key!r} (delivered to "
                "unknown)"))
        elif kind not in self._unknown_seen and len(self._unknown_seen) < 1000:
            self._unknown_seen.add(kind)
            log.warning("SatoriEx: undocumented message type %r (delivered to unknown)", kind)
        self.callbacks.emit("unknown", msg)

    def _off_layout(self, payload: bytes, exc: DecodeError) -> None:
        """A market-data message ``MarketData`` refused: delivered as decoded (when it is
        JSON), the mismatch reported once per type and field."""
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._error(DecodeError(f"SatoriEx: a message is not valid JSON: {exc}"))
            return
        self._counts["off_layout"] += 1
        kind = msg.get(self._type_key) if type(msg) is dict else None
        key = (str(kind), exc.field)
        if key not in self._layout_reported:
            self._layout_reported.add(key)
            self._report(DecodeError(
                f"SatoriEx: {kind} message does not fit the assumed layout ({exc}); delivered "
                "as decoded, reported once", field=exc.field))
        if kind == self._book_type:
            market = msg.get(self._market_key)
            if isinstance(market, str) and market in self._marketdata:
                self._resync(market, "book message off the assumed layout")
        if type(kind) is str and kind in EVENTS:
            self.callbacks.emit(kind, msg)
        else:
            self.callbacks.emit("unknown", msg)

    def _resync(self, market: str, reason: str) -> None:
        """Ask for a fresh snapshot (at most once per ``resync_interval``)."""
        self.market_data.desync(market)
        if market not in self._marketdata or self._transport is None:
            return
        now = time.monotonic()
        last = self._resyncing.get(market)
        if last is not None and now - last < self.resync_interval:
            return
        self._resyncing[market] = now
        self._counts["resyncs"] += 1
        self.stats_counters.resyncs += 1
        self._send({"type": "subscribe_marketdata", "market_id": market})
        self.callbacks.emit("resync", market, reason)

    # --- liveness ------------------------------------------------------------------------

    def _check_liveness(self) -> None:
        listener = self._listener
        if listener is None or self.stale_after is None:
            return
        if listener.messages != self._seen:
            self._seen = listener.messages
            self.gate.touch()
        elif not self.gate.held and not self.gate.check():
            self.gate.release()  # a quiet feed is not a dead link: the next message raises it
