"""Broker platform stream (``shared/specs/broker-ws.md``): compact-array quotes over
WebSocket, JWT auth, ``account.switch``, symbol channels, text ``ping`` / ``pong``.

Wire assumptions (the spec leaves array field orders open; each is configurable with
``schemas=``): a quote is ``["t", symbol, bid, ask, ts]``, prices JSON numbers (ints
accepted), ``ts`` an integer in [0, 2**63-1]. Account-scoped arrays default to::

    ["b", login, balance, equity, margin, free_margin, currency, ts]        -> "balance"
    ["o", login, order_id, symbol, side, volume, price, state, ts]          -> "trade"
    ["a", login, alert_id, symbol, price, ts]                               -> "alert"
    ["n", login, id, kind, data, ts]                                        -> "notification"

and reach callbacks as a dict keyed by those names (values past the schema under
``"extra"``). An array of those markers that does not fit its layout (a server with
another field order) is still delivered, as ``{"values": [...], "layout_error": "..."}``
with the values as they came, and the mismatch is reported once through ``error``. Any
other marker is an ``unknown`` event ``(marker, values)``.

``QuoteBook`` keeps the last quote per symbol in numpy columns (``bid``, ``ask``, ``ts``
and any extra schema field) that grow by doubling: a growth reallocates the columns, so
take views after it, or look rows up with ``.row(symbol)`` and read ``.column(name)`` anew.

``BrokerClient`` runs on picows: its Cython listener (``oddswire._wire.BrokerListener``)
decodes each quote straight from the socket's read buffer into the book (Rust, through a C
entry point) and calls the ``quote`` callback with scalars. Three cheaper deliveries a bot
can choose: ``quote_rows=True`` (the ``quote`` callback gets the row only),
``conflate=True`` (one ``quote`` call per symbol per socket read, with the latest values)
and the ``quotes`` event (one call per socket read with a numpy array of the rows that
quotes updated in it, each once, in order of first update; read the values from the book).
See ``BrokerClient``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import orjson

from oddswire._wire import BrokerListener
from oddswire._ws import TokenSource, WSFeedClient
from oddswire.client import ReconnectPolicy, RecordPath
from oddswire.errors import (
    AccountSwitchError,
    AuthError,
    ConfigError,
    ConnectError,
    DecodeError,
    OddswireError,
)
from oddswire_native import CompactDecoder, QuoteBook

__all__ = [
    "ACCOUNT_SCHEMAS",
    "EVENTS",
    "BrokerClient",
    "BrokerListener",
    "CompactDecoder",
    "QuoteBook",
]

#: Events a BrokerClient emits, and what the callback receives.
EVENTS = frozenset({
    "quote",         # (symbol, bid, ask, ts), or (row,) with quote_rows=True
    "quotes",        # (rows) int64 numpy array: book rows updated during one socket read
    "balance",       # (dict) "b" frames for the active account
    "trade",         # (dict) "o"
    "alert",         # (dict) "a" price alert triggered
    "notification",  # (dict) "n" (the back-office workflow sends one after account.switch)
    "unknown",       # (marker, values) a compact array with a marker this client does not know
    "message",       # (dict) a JSON object event the session logic does not handle
    "authorized",    # () the token was accepted
    "account",       # (login) every successful account.switch, also to the same account
    "account_error",  # (code, login) INVALID_LOGIN, UNAUTHORIZED, PERMISSION_DENIED, ...
    "connected",     # () WebSocket open (before authorization)
    "disconnected",  # (reason) the connection ended; the client reconnects
    "stale",         # (reason) healthy went False
    "healthy",       # () healthy went True again
    "error",         # (exception) bad frames, callback errors, timeouts
})

_MARKER_EVENTS = {"b": "balance", "o": "trade", "a": "alert", "n": "notification"}

#: Default field layouts of the account-scoped arrays (``CompactDecoder`` schemas).
ACCOUNT_SCHEMAS: dict[str, list[tuple[str, str]]] = {
    "b": [("login", "i64"), ("balance", "f64"), ("equity", "f64"), ("margin", "f64"),
          ("free_margin", "f64"), ("currency", "str"), ("ts", "ts")],
    "o": [("login", "i64"), ("order_id", "i64"), ("symbol", "str"), ("side", "str"),
          ("volume", "f64"), ("price", "f64"), ("state", "str"), ("ts", "ts")],
    "a": [("login", "i64"), ("alert_id", "i64"), ("symbol", "str"), ("price", "f64"),
          ("ts", "ts")],
    "n": [("login", "i64"), ("id", "i64"), ("kind", "str"), ("data", "json"), ("ts", "ts")],
}

AccountForm = Literal["active_login", "login", "data"]


class BrokerClient(WSFeedClient):
    """The broker stream: authenticate, select the account, subscribe, stream quotes into
    ``book``; reconnect with backoff and replay the session (token, account, symbols).

    ``token``: the JWT, or a function (sync or async) returning a fresh one for every
    connection. An ``INVALID_TOKEN`` or ``UNSUPPORTED_SESSION`` answer raises ``AuthError``
    from ``run()``: such a token will not get better by retrying.

    ``account``: the login to select after authorization (``account_form`` picks the
    ``active_login`` field, its ``login`` alias or the ``data`` object form); ``None`` sends
    the bare switch, which SESSION_USER tokens accept (the server uses the token's login);
    ``switch_on_connect=False`` selects no account (quotes only). ``switch_account()``
    changes it at run time; the last one requested is replayed after a reconnect.

    Liveness: a text ``ping`` after ``ping_interval`` seconds without data, and a reconnect
    when no ``pong`` follows within ``pong_timeout`` (picows' auto-ping, so nothing is
    checked per frame). ``healthy`` drops when no quote arrived for ``stale_after`` seconds
    while subscribed (a quiet market is not a dead connection: this does not reconnect),
    and while disconnected; it rises on the next quote.

    Hot path: quotes are decoded from picows' read buffer into ``book`` (Rust) by the
    Cython listener, which calls the one registered ``quote`` callback directly with
    ``(symbol, bid, ask, ts)`` (or ``(row,)`` with ``quote_rows=True``); ``conflate=True``
    delivers only the latest quote per symbol of each socket read. The cheapest delivery is
    the batch: ``on("quotes", fn)`` calls ``fn(rows)`` once per socket read with an int64
    numpy array of the ``book`` rows quotes updated during it, each once, in order of first
    update (``book.bid[rows]`` are their latest values); register it without a ``quote``
    callback to pay no per-quote Python call at all. With neither, quotes only update the
    book.

    Bounds: quotes for symbols the client did not subscribe are dropped and counted
    (``stats()["rejected"]``, the first reported through ``error``) unless
    ``admit_unsubscribed=True``, so a server cannot grow the book without limit; an account
    array that does not fit its assumed layout is still delivered (see ``ACCOUNT_SCHEMAS``).
    """

    EVENTS = EVENTS
    FEED = "broker"
    LISTENER_COUNTERS = ("frames", "bytes", "messages", "quotes", "delivered", "batches",
                         "rejected", "pings", "pongs")

    def __init__(self, url: str, *, token: TokenSource, account: int | None = None,
                 account_form: AccountForm = "active_login", switch_on_connect: bool = True,
                 symbols: Iterable[str] = (), book: QuoteBook | None = None,
                 schemas: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                 quote_rows: bool = False, conflate: bool = False,
                 admit_unsubscribed: bool = False,
                 ping_interval: float = 5.0, pong_timeout: float = 5.0,
                 stale_after: float = 10.0, reconnect: ReconnectPolicy | None = None,
                 ssl_context: ssl.SSLContext | None = None, connect_timeout: float = 10.0,
                 auth_timeout: float = 10.0, max_message_bytes: int = 1 << 20,
                 max_write_buffer: int = 1 << 20, follow_redirects: bool = False,
                 record: RecordPath = None) -> None:
        if account_form not in ("active_login", "login", "data"):
            raise ConfigError("account_form must be 'active_login', 'login' or 'data'")
        super().__init__(url, reconnect=reconnect, stale_after=stale_after,
                         ssl_context=ssl_context, connect_timeout=connect_timeout,
                         ping_interval=ping_interval, pong_timeout=pong_timeout,
                         max_message_bytes=max_message_bytes,
                         max_write_buffer=max_write_buffer, follow_redirects=follow_redirects,
                         record=record)
        self._token = token
        self.account = account
        self.account_form = account_form
        self.switch_on_connect = switch_on_connect
        self.book = book if book is not None else QuoteBook()
        self.book.admit_new = admit_unsubscribed
        self.decoder = CompactDecoder({**ACCOUNT_SCHEMAS, **(schemas or {})})
        self._field_names = {m: [f[0] for f in fields]
                             for m, fields in self.decoder.schemas.items() if m != "t"}
        self.quote_rows = quote_rows
        self.conflate = conflate
        self.auth_timeout = auth_timeout
        self.active_login: int | None = None
        self._symbols: set[str] = set()
        self._add_symbols(symbols)
        self._authorized = False
        self._auth: asyncio.Future[None] | None = None
        self._layout_reported: set[str] = set()
        # account.switch requests in flight on this connection (answers come in order), and
        # those asked for while disconnected, answered by the switch after the next login.
        self._switches: deque[tuple[asyncio.Future[int], int | None]] = deque()
        self._waiting: list[asyncio.Future[int]] = []
        self._quotes_seen = 0

    # --- public API ----------------------------------------------------------------------

    @property
    def symbols(self) -> frozenset[str]:
        """The subscription set, replayed after every reconnect."""
        return frozenset(self._symbols)

    @property
    def connected(self) -> bool:
        return self._authorized and self._transport is not None

    def on(self, name: str, fn: Any = None) -> Any:
        registered = super().on(name, fn)
        if name == "quote" and isinstance(self._listener, BrokerListener):
            self._listener.set_on_quote(self.callbacks.direct("quote"))
        if name == "quotes" and isinstance(self._listener, BrokerListener):
            self._listener.set_on_quotes(self.callbacks.direct("quotes"))
        return registered

    def subscribe(self, symbols: Iterable[str]) -> None:
        """Add symbols to the subscription set (sent now if connected)."""
        new = self._add_symbols(symbols)
        if new and self.connected:
            self._send({"event": "subscribe", "data": sorted(new)})

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = {s for s in _symbol_list(symbols) if s in self._symbols}
        self._symbols -= gone
        if gone and self.connected:
            self._send({"event": "unsubscribe", "data": sorted(gone)})

    def switch_account(self, login: int | None) -> asyncio.Future[int]:
        """Select the account for account-scoped events (``None``: the token's own login,
        SESSION_USER only). Returns a future for the active login; it fails with
        ``AccountSwitchError`` when the server refuses (also reported as
        ``account_error``). Not connected: it is sent after the next authorization."""
        if login is not None and (not isinstance(login, int) or isinstance(login, bool)):
            raise ConfigError("login must be an int (or None for the token's own login)")
        if self.connected:
            return self._send_switch(login)
        self.account = login
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        return fut

    def _extra_stats(self) -> dict[str, Any]:
        return {**super()._extra_stats(), "symbols": len(self.book),
                "active_login": self.active_login, "subscribed": len(self._symbols)}

    # --- one connection ------------------------------------------------------------------

    async def _attempt(self) -> None:
        self._auth = asyncio.get_running_loop().create_future()
        self._auth.add_done_callback(_consume)
        listener = BrokerListener(
            self.book, on_quote=self.callbacks.direct("quote"),
            on_quotes=self.callbacks.direct("quotes"), on_report=self.callbacks.report,
            on_array=self._on_array, on_object=self._on_object, quote_rows=self.quote_rows,
            conflate=self.conflate, **self._listener_options())
        listener.on_fresh = self.gate.touch
        transport = None
        try:
            transport = await self._ws_connect(listener, self.url)
            self._quotes_seen = 0
            self._send({"authorization": await self._resolve_token(self._token)})
            try:
                await asyncio.wait_for(asyncio.shield(self._auth), self.auth_timeout)
            except TimeoutError:
                raise ConnectError(
                    f"broker: no authorization answer within {self.auth_timeout}s") from None
            self._mark_established()
            self._after_auth()
            await self._ws_wait(transport)
        finally:
            self._authorized = False
            self._ws_release(listener, transport)

    def _after_auth(self) -> None:
        self._authorized = True
        self.callbacks.emit("authorized")
        if self.switch_on_connect or self._waiting:
            fut, waiting = self._send_switch(self.account), self._waiting
            self._waiting = []
            fut.add_done_callback(lambda f: _copy_result(f, waiting))
        if self._symbols:
            self._send({"event": "subscribe", "data": sorted(self._symbols)})
            assert isinstance(self._listener, BrokerListener)
            self._listener.notify_fresh = True
            self.gate.release()
        else:
            self.gate.release()
            self.gate.touch()

    def _send_switch(self, login: int | None) -> asyncio.Future[int]:
        msg: dict[str, Any] = {"event": "account.switch"}
        if login is not None:
            if self.account_form == "data":
                msg["data"] = {"active_login": login}
            else:
                msg[self.account_form] = login
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_consume)
        self._switches.append((fut, login))
        self._send(msg)
        return fut

    # --- frames from the listener --------------------------------------------------------

    def _on_array(self, payload: bytes) -> None:
        try:
            values = self.decoder.decode(payload)
        except DecodeError as e:
            self._off_layout(payload, e)
            return
        marker, rest = values[0], values[1:]
        name = _MARKER_EVENTS.get(marker)
        if name is None:
            self.callbacks.emit("unknown", marker, rest)
            return
        names = self._field_names[marker]
        event = dict(zip(names, rest, strict=False))
        if len(rest) > len(names):
            event["extra"] = list(rest[len(names):])
        self.callbacks.emit(name, event)

    def _off_layout(self, payload: bytes, exc: DecodeError) -> None:
        """An account array that does not fit its assumed layout is still an event: it is
        delivered with its values as they came (``event["values"]``), and the mismatch is
        reported once per marker. Only what is not a JSON array at all is dropped."""
        try:
            values = orjson.loads(payload)
        except orjson.JSONDecodeError:
            values = None
        name = (_MARKER_EVENTS.get(values[0]) if isinstance(values, list) and values
                and isinstance(values[0], str) else None)
        if name is None:
            self._error(exc)
            return
        marker = values[0]
        if marker not in self._layout_reported:
            self._layout_reported.add(marker)
            self._error(DecodeError(
                f"{marker!r} arrays do not fit the assumed layout ({exc}); delivering them "
                f"with their values as they came, in event['values'] (see schemas=)"))
        self.callbacks.emit(name, {"values": values[1:], "layout_error": str(exc)})

    def _on_object(self, payload: bytes) -> None:
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError as e:
            self._error(DecodeError(f"invalid JSON object frame: {e}"))
            return
        event = msg.get("event") if isinstance(msg, dict) else None
        if event == "authorization":
            self._on_authorization(msg)
        elif event == "account.switch":
            self._on_switch(msg)
        else:
            self.callbacks.emit("message", msg)

    def _on_authorization(self, msg: dict[str, Any]) -> None:
        assert self._auth is not None
        if msg.get("success") is True:
            if not self._auth.done():
                self._auth.set_result(None)
            return
        code = msg.get("error")
        code = code if isinstance(code, str) else None
        err = AuthError(f"broker: authorization refused: {code or '?'}", code=code)
        self._error(err)
        if not self._auth.done():
            self._auth.set_exception(err)
        else:  # refused after it was accepted (a re-auth): end this connection
            self._stale_reason = "authorization refused"
            if self._transport is not None:
                self._transport.disconnect()

    def _on_switch(self, msg: dict[str, Any]) -> None:
        login: Any = msg.get("active_login")
        fut, requested = self._switches.popleft() if self._switches else (None, None)
        if msg.get("success") is True:
            self.active_login = login
            if fut is not None:
                self.account = requested  # what a reconnect replays
                if not fut.done():
                    fut.set_result(login)
            self.callbacks.emit("account", login)
            return
        code = msg.get("error")
        code = code if isinstance(code, str) else "UNKNOWN"
        self.callbacks.emit("account_error", code, login)
        if fut is not None and not fut.done():
            fut.set_exception(AccountSwitchError(code, login))

    def _on_listener_error(self, exc: BaseException) -> None:
        if isinstance(exc, OddswireError):
            self._error(exc)
        else:  # the quote callback raised
            self.callbacks.report("quote", exc)

    def _on_link_lost(self, reason: str) -> None:
        if self._auth is not None and not self._auth.done():
            self._auth.set_exception(ConnectError(f"broker: {reason} before authorization"))
        self._waiting.extend(f for f, _ in self._switches if not f.done())
        self._switches.clear()
        if self._stopping:
            for fut in self._waiting:
                fut.cancel()
            self._waiting.clear()
        self.active_login = None

    # --- health --------------------------------------------------------------------------

    def _check_liveness(self) -> None:
        listener = self._listener
        if not isinstance(listener, BrokerListener) or not self._authorized or not self._symbols:
            return
        if listener.quotes != self._quotes_seen:
            self._quotes_seen = listener.quotes
            self.gate.touch()
        elif not self.gate.held and not self.gate.check():
            # A quiet market is not a dead link (pings cover that): stay connected,
            # and let the next quote raise the flag again.
            self.gate.release()
            listener.notify_fresh = True

    def _add_symbols(self, symbols: Iterable[str]) -> set[str]:
        new = set(_symbol_list(symbols)) - self._symbols
        self._symbols |= new
        if new:
            self.book.reserve(sorted(new))
        return new


def _consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve a switch future's exception, so an unawaited one is not logged as lost
    (the failure was reported as ``account_error`` already)."""
    if not fut.cancelled():
        fut.exception()


def _copy_result(src: asyncio.Future[int], dsts: list[asyncio.Future[int]]) -> None:
    for dst in dsts:
        if dst.done():
            continue
        exc = None if src.cancelled() else src.exception()
        if src.cancelled():
            dst.cancel()
        elif exc is not None:
            dst.set_exception(exc)
        else:
            dst.set_result(src.result())


def _symbol_list(symbols: Iterable[str]) -> list[str]:
    if isinstance(symbols, str):
        raise ConfigError("symbols must be a list of names, not one string")
    out = list(symbols)
    for s in out:
        if not isinstance(s, str) or not s:
            raise ConfigError(f"symbol names must be non-empty strings, got {s!r}")
    return out
