"""The broker platform stream on loopback: a picows WebSocket server speaking
``shared/specs/broker-ws.md``.

- ``{"authorization": JWT}``: HS256 tokens from ``TokenSigner`` (shared secret). Claims:
  ``session_type`` (``SESSION_USER`` with ``login``, or ``SESSION_CUSTOMER`` with
  ``customer_id``; any other type is ``UNSUPPORTED_SESSION``) and an optional ``exp``. A bad
  signature, a missing claim or an expired token is ``INVALID_TOKEN``.
- ``account.switch`` in every form (``active_login``, the ``login`` alias, no login for
  SESSION_USER, the ``data`` object), with the spec's ownership rules: ``customers`` maps a
  customer id to its linked logins. Errors ``INVALID_LOGIN``, ``UNAUTHORIZED``,
  ``PERMISSION_DENIED`` and (injected) ``SESSION_CHANGED``. Every successful switch, also
  to the same account, fires the back-office workflow: a ``"n"`` notification follows.
- ``subscribe`` / ``unsubscribe`` symbol channels; quotes ``["t", symbol, bid, ask, ts]``
  from a seeded random walk at ``rate`` quotes per second per symbol (``None``: as fast
  as the socket drains, from a pre-encoded cycle of frames, for benchmarks).
- Account-scoped pushes (``push_balance``, ``push_trade``, ``push_alert``,
  ``push_notification``, or ``account_rate`` per second of each) go only to sessions whose
  active login matches.
- Text ``ping`` -> ``pong``.

Faults: ``drop()`` (optionally cutting a frame in half first), ``stall(s)`` (nothing sent,
pongs included), ``ignore_pings``, ``inject_malformed()``, ``inject_unknown_marker()``,
``session_change_next()``.

Wire assumptions (the spec leaves the array field order open; ``oddswire.broker`` uses the
same defaults): ``["b", login, balance, equity, margin, free_margin, currency, ts]``,
``["o", login, order_id, symbol, side, volume, price, state, ts]``,
``["a", login, alert_id, symbol, price, ts]``, ``["n", login, id, kind, data, ts]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from picows import WSMsgType, WSTransport

from oddswire.sim._base import Session, WSSimulator, serve_main, ws_frame_bytes
from oddswire.sim.jwt import TokenError, TokenSigner

__all__ = ["DEFAULT_SYMBOLS", "BrokerSimulator", "QuoteWalk", "TokenError", "TokenSigner"]

#: symbol -> (starting mid, tick size, typical spread in ticks)
DEFAULT_SYMBOLS: dict[str, tuple[float, float, int]] = {
    "eurusd": (1.08520, 0.00001, 2), "gbpusd": (1.27140, 0.00001, 3),
    "usdjpy": (151.203, 0.001, 2), "usdchf": (0.88410, 0.00001, 3),
    "audusd": (0.65830, 0.00001, 2), "usdcad": (1.36420, 0.00001, 3),
    "xauusd": (2351.45, 0.01, 30), "xagusd": (28.215, 0.001, 25),
    "btcusd": (67250.0, 0.5, 40), "ethusd": (3512.5, 0.05, 30),
    "us500": (5231.4, 0.1, 5), "ger40": (18152.0, 0.5, 4),
}


class QuoteWalk:
    """Seeded random-walk bid/ask per symbol, rounded to each symbol's tick."""

    def __init__(self, symbols: dict[str, tuple[float, float, int]] | None = None,
                 seed: int = 1) -> None:
        self.spec = dict(symbols or DEFAULT_SYMBOLS)
        self.rng = random.Random(seed)
        self.mid = {s: m for s, (m, _, _) in self.spec.items()}
        self.digits = {s: max(0, round(-math.log10(t))) for s, (_, t, _) in self.spec.items()}

    def next(self, symbol: str) -> tuple[float, float]:
        _, tick, spread = self.spec[symbol]
        mid = self.mid[symbol] + self.rng.choice((-1, 0, 0, 1)) * tick * self.rng.randint(1, 3)
        self.mid[symbol] = mid = max(mid, tick * 100)
        half = spread * tick / 2
        d = self.digits[symbol]
        return round(mid - half, d), round(mid + half, d)


@dataclass
class BrokerSession(Session):
    claims: dict[str, Any] | None = None
    active_login: int | None = None
    symbols: set[str] = field(default_factory=set)


class BrokerSimulator(WSSimulator):
    """``async with BrokerSimulator(secret=b"k", customers={7: [2000009, 2000010]}) as sim:``

    ``sim.url`` is the ``ws://`` (or ``wss://`` with ``ssl_context``) address on 127.0.0.1.
    ``rate``: quotes per second per subscribed symbol (0: none; ``None``: as fast as the
    socket drains). ``clock``: ``"ms"`` (epoch milliseconds, the default) or
    ``"monotonic_ns"`` (``time.perf_counter_ns()``, for one-host latency measurement).
    ``rate`` may be changed while running (0 stops the quotes); ``last_quotes`` holds the
    last paced quote sent per symbol.
    """

    def __init__(self, *, secret: bytes = b"oddswire-sim-secret",
                 customers: dict[int, Iterable[int]] | None = None,
                 symbols: dict[str, tuple[float, float, int]] | None = None,
                 rate: float | None = 10.0, account_rate: float = 0.0,
                 clock: str = "ms", seed: int = 1, notify_on_switch: bool = True,
                 ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        if clock not in ("ms", "monotonic_ns"):
            raise ValueError("clock must be 'ms' or 'monotonic_ns'")
        super().__init__(ssl_context=ssl_context, host=host, port=port)
        self.signer = TokenSigner(secret)
        self.customers = {c: set(ls) for c, ls in (customers or {}).items()}
        self.walk = QuoteWalk(symbols, seed)
        self.symbols = list(self.walk.spec)
        self.rate = rate
        self.account_rate = account_rate
        self.clock: Callable[[], int] = (time.perf_counter_ns if clock == "monotonic_ns"
                                         else lambda: time.time_ns() // 1_000_000)
        self.notify_on_switch = notify_on_switch
        self.rng = random.Random(seed ^ 0xB20C)
        self.quotes_sent = 0
        #: symbol -> (bid, ask, ts) of the last paced quote a session got: what a replica of
        #: the stream must hold once quotes stop (``rate = 0``)
        self.last_quotes: dict[str, tuple[float, float, int]] = {}
        self.log: list[tuple[int, str, Any]] = []  # (session, event, detail)
        self.ignore_pings = False
        self._sessions: dict[int, BrokerSession] = {}  # type: ignore[assignment]
        self._session_change = 0
        self._seq = 0

    def _started(self) -> None:
        self._spawn(self._quote_loop() if self.rate is not None else self._blast_loop())
        if self.account_rate:
            self._spawn(self._account_loop())

    @property
    def sessions(self) -> list[BrokerSession]:  # type: ignore[override]
        return list(self._sessions.values())

    # --- pushes --------------------------------------------------------------------------

    def push(self, login: int, frame: list[Any]) -> int:
        """Send an account-scoped compact array to the sessions whose active login is
        ``login``; returns how many got it."""
        data = orjson.dumps(frame)
        n = 0
        for s in self._sessions.values():
            if s.active_login == login and self._live():
                s.transport.send(WSMsgType.TEXT, data)
                n += 1
        return n

    def push_balance(self, login: int, balance: float, equity: float | None = None,
                     margin: float = 0.0, currency: str = "USD") -> int:
        equity = balance if equity is None else equity
        return self.push(login, ["b", login, balance, equity, margin, equity - margin, currency,
                                 self.clock()])

    def push_trade(self, login: int, order_id: int, symbol: str, side: str, volume: float,
                   price: float, state: str = "filled") -> int:
        return self.push(login, ["o", login, order_id, symbol, side, volume, price, state,
                                 self.clock()])

    def push_alert(self, login: int, alert_id: int, symbol: str, price: float) -> int:
        return self.push(login, ["a", login, alert_id, symbol, price, self.clock()])

    def push_notification(self, login: int, kind: str, data: Any = None) -> int:
        self._seq += 1
        return self.push(login, ["n", login, self._seq, kind, data, self.clock()])

    MALFORMED = b'["t","eurusd",1.0852,"oops",'

    def inject_unknown_marker(self, marker: str = "z") -> None:
        self.send_raw(orjson.dumps([marker, 1, {"new": "feature"}]))

    def session_change_next(self) -> None:
        """The next account.switch answers SESSION_CHANGED."""
        self._session_change += 1

    # --- protocol ------------------------------------------------------------------------

    def _new_session(self, sid: int, transport: WSTransport,
                     query: dict[str, str]) -> BrokerSession:
        return BrokerSession(sid, transport, query)

    def _reply(self, s: BrokerSession, obj: dict[str, Any]) -> None:
        self._send(s, orjson.dumps(obj))

    def _message(self, s: BrokerSession, payload: bytes) -> None:  # type: ignore[override]
        if payload == b"ping":
            self.log.append((s.id, "ping", None))
            if not self.ignore_pings and self._live():
                s.transport.send(WSMsgType.TEXT, b"pong")
            return
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.log.append((s.id, "garbage", payload))
            return
        s.received.append(msg)
        if not isinstance(msg, dict):
            return
        if "authorization" in msg:
            self._authorize(s, msg["authorization"])
            return
        event = msg.get("event")
        if event == "account.switch":
            self._switch(s, msg)
        elif event in ("subscribe", "unsubscribe"):
            data = msg.get("data")
            if s.claims is None or not isinstance(data, list):
                self.log.append((s.id, f"{event}-ignored", data))
                return
            names = {x for x in data if isinstance(x, str)}
            if event == "subscribe":
                s.symbols |= names
            else:
                s.symbols -= names
            self.log.append((s.id, event, sorted(names)))

    def _authorize(self, s: BrokerSession, token: Any) -> None:
        try:
            claims = self.signer.verify(token)
        except TokenError as e:
            self.log.append((s.id, "auth-failed", str(e)))
            self._reply(s, {"event": "authorization", "success": False, "error": "INVALID_TOKEN"})
            return
        kind = claims.get("session_type")
        if (kind == "SESSION_USER" and _is_login(claims.get("login"))) or (
                kind == "SESSION_CUSTOMER" and _is_login(claims.get("customer_id"))):
            s.claims, s.active_login = claims, None
            self.log.append((s.id, "authorized", kind))
            self._reply(s, {"event": "authorization", "success": True})
        elif kind in ("SESSION_USER", "SESSION_CUSTOMER"):
            self._reply(s, {"event": "authorization", "success": False, "error": "INVALID_TOKEN"})
        else:
            self._reply(s, {"event": "authorization", "success": False,
                            "error": "UNSUPPORTED_SESSION"})

    def _switch(self, s: BrokerSession, msg: dict[str, Any]) -> None:
        data = msg.get("data")
        src: dict[str, Any] = data if isinstance(data, dict) else msg
        requested = src.get("active_login", src.get("login"))
        answer: dict[str, Any] = {"event": "account.switch"}
        if requested is not None:
            answer["active_login"] = requested
        claims = s.claims
        if claims is None:
            error: str | None = "UNAUTHORIZED"
        elif requested is not None and not _is_login(requested):
            error = "INVALID_LOGIN"
        elif claims["session_type"] == "SESSION_USER":
            requested = claims["login"] if requested is None else requested
            error = None if requested == claims["login"] else "PERMISSION_DENIED"
        elif requested is None:
            error = "INVALID_LOGIN"
        else:
            linked = self.customers.get(claims["customer_id"], set())
            error = None if requested in linked else "PERMISSION_DENIED"
        if error is None and self._session_change:
            self._session_change -= 1
            error = "SESSION_CHANGED"
        self.log.append((s.id, "switch", error or requested))
        if error is not None:
            self._reply(s, {**answer, "success": False, "error": error})
            return
        s.active_login = requested
        self._reply(s, {**answer, "success": True, "active_login": requested})
        if self.notify_on_switch:
            assert requested is not None
            self.push_notification(requested, "account.switch", {"login": requested})

    async def _quote_loop(self) -> None:
        """Paced quotes: every tick, each symbol earns ``rate * tick`` quotes."""
        assert self.rate is not None
        tick = 0.002
        credit = dict.fromkeys(self.symbols, 0.0)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if not self._live() or not self._sessions:
                continue
            for sym in self.symbols:
                credit[sym] += self.rate * tick
                while credit[sym] >= 1.0:
                    credit[sym] -= 1.0
                    bid, ask = self.walk.next(sym)
                    ts = self.clock()
                    data = orjson.dumps(["t", sym, bid, ask, ts])
                    for s in self._sessions.values():
                        if sym in s.symbols:
                            s.transport.send(WSMsgType.TEXT, data)
                            self.quotes_sent += 1
                            self.last_quotes[sym] = (bid, ask, ts)

    async def _blast_loop(self) -> None:
        """Full speed: a pre-encoded cycle of quote frames written straight to the socket
        while it drains (picows flow control), to every subscribed session."""
        frames = []
        for i in range(4096):
            sym = self.symbols[i % len(self.symbols)]
            bid, ask = self.walk.next(sym)
            frames.append(ws_frame_bytes(orjson.dumps(["t", sym, bid, ask, self.clock()])))
        blob, per_blob = b"".join(frames), len(frames)
        while True:
            sent = False
            for s in list(self._sessions.values()):
                if s.symbols and not s.paused and self._live():
                    s.transport.underlying_transport.write(blob)
                    self.quotes_sent += per_blob
                    sent = True
            await self._blast_pause(sent)

    async def _account_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0 / self.account_rate)
            for s in list(self._sessions.values()):
                login = s.active_login
                if login is None:
                    continue
                sym = self.rng.choice(self.symbols)
                self.push_balance(login, round(self.rng.uniform(1e3, 1e5), 2))
                self._seq += 1
                self.push_trade(login, self._seq, sym, self.rng.choice(("buy", "sell")),
                                round(self.rng.uniform(0.01, 5), 2), self.walk.next(sym)[1])


def _is_login(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=float, default=10.0, help="quotes/s per symbol; -1: max")
    p.add_argument("--clock", default="ms", choices=("ms", "monotonic_ns"))


def _make(args: argparse.Namespace) -> BrokerSimulator:
    return BrokerSimulator(rate=None if args.rate < 0 else args.rate, clock=args.clock,
                           port=args.port, customers={1: [2000009, 2000010]})


def main() -> None:
    """``python -m oddswire.sim.broker [--rate N|-1] [--clock ms|monotonic_ns]``."""
    serve_main("python -m oddswire.sim.broker", _make, _configure)


if __name__ == "__main__":
    main()
