"""The SatoriEx exchange WebSocket on loopback: a picows server speaking
``shared/specs/satoriex-ws.md`` with the assumed market-data forms of ``oddswire.satoriex``.

- ``?token=JWT`` (HS256 from ``sim.signer``, claim ``sub`` the user): a missing, bad or
  expired token is answered ``401`` at the upgrade.
- The user channel is bound on connect: every ``interval`` seconds each connected user
  gets one of the 17 user event types in turn (``wallet_changed``, ``deposit_confirmed``,
  the six ``withdraw_*``, ``kyc_*``, ``proposal_*``, ``referral_bonus``, ``dispute_filed``,
  ``mention``, ``market_resolved``, ``order_filled``), each with a unique ``id``.
- ``{"type":"subscribe","market_id":M}``: ``trade``, ``order``, ``order_update``,
  ``settlement`` and ``comment`` events of that market; ``{"type":"subscribe_marketdata",
  "market_id":M}``: an ``orderbook`` snapshot at once (also when already subscribed), then
  an ``orderbook`` delta (``seq`` + 1, 1-3 levels changed, size 0 deletes) and a
  ``price_update`` per tick. ``unsubscribe`` / ``unsubscribe_marketdata`` end them.
- Everything generated is also kept (``sim.ledger[user]``, ``sim.market_log[market]``): the
  REST state a bot's fallback poll would read, including events sent while it was away.

Faults: ``drop(mid_frame=)``, ``outage(seconds)`` (drop, then refuse upgrades with 503: the
events of the gap are lost to the socket), ``stall(s)``, ``inject_malformed()``,
``inject_unknown()``, ``skip_seq(market)`` (the next delta jumps a seq; the sim's own book
still applies it), ``cross(market)`` (one bogus delta that crosses the book, not applied by
the sim), ``send_user(user, type, **fields)``.

Blast mode (``interval=0``, ``python -m oddswire.sim.satoriex --interval 0``): for load. A
``subscribe_marketdata`` session gets the pre-encoded stream of :func:`blast_frames` (the
same for every session: a snapshot per market, then deltas and price updates) written as
fast as the socket drains, ``--blast-frames`` of it, then nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from picows import WSMsgType, WSTransport

from oddswire.satoriex import MARKET_EVENTS, USER_EVENTS
from oddswire.sim._base import Session, WSSimulator, serve_main
from oddswire.sim.jwt import TokenError, TokenSigner

__all__ = ["MarketWorld", "SatoriexSimulator", "XSession", "blast_frames"]

DEFAULT_MARKETS = ("mkt_abc123", "mkt_btc_100k", "mkt_fed_cut", "mkt_rain_nyc")


class MarketWorld:
    """One market's true state: a book in integer ticks (cents of a 0..1 price) kept
    uncrossed around a drifting mid, and the seq of its last book message."""

    def __init__(self, market_id: str, rng: random.Random, levels: int = 10) -> None:
        self.id = market_id
        self.rng = rng
        self.seq = rng.randrange(1, 1000)
        self.mid = rng.randrange(30, 70)  # ticks; bids < mid < asks
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        for k in range(1, levels + 1):
            if self.mid - k > 0:
                self.bids[self.mid - k] = rng.randrange(1, 500)
            if self.mid + k < 100:
                self.asks[self.mid + k] = rng.randrange(1, 500)
        self.trade_no = 0

    def snapshot(self) -> dict[str, Any]:
        return {"type": "orderbook", "market_id": self.id, "seq": self.seq, "snapshot": True,
                "bids": [[p / 100, float(s)] for p, s in sorted(self.bids.items(), reverse=True)],
                "asks": [[p / 100, float(s)] for p, s in sorted(self.asks.items())]}

    def delta(self, skip: int = 0) -> dict[str, Any]:
        """Change 1-3 levels (sometimes move the mid, deleting what it crosses)."""
        rng = self.rng
        bids: list[list[float]] = []
        asks: list[list[float]] = []
        if rng.random() < 0.2:
            self.mid = min(90, max(10, self.mid + rng.choice((-1, 1))))
            for p in [p for p in self.bids if p >= self.mid]:
                del self.bids[p]
                bids.append([p / 100, 0.0])
            for p in [p for p in self.asks if p <= self.mid]:
                del self.asks[p]
                asks.append([p / 100, 0.0])
        for _ in range(rng.randrange(1, 4)):
            side, out = (self.bids, bids) if rng.random() < 0.5 else (self.asks, asks)
            lo, hi = (max(1, self.mid - 12), self.mid - 1) if side is self.bids else (
                self.mid + 1, min(99, self.mid + 12))
            if lo > hi:
                continue
            p = rng.randint(lo, hi)
            if p in side and rng.random() < 0.3:
                del side[p]
                out.append([p / 100, 0.0])
            else:
                side[p] = rng.randrange(1, 500)
                out.append([p / 100, float(side[p])])
        self.seq += 1 + skip
        return {"type": "orderbook", "market_id": self.id, "seq": self.seq, "snapshot": False,
                "bids": bids, "asks": asks}

    def price(self, ts: int) -> dict[str, Any]:
        bb = max(self.bids) / 100 if self.bids else None
        ba = min(self.asks) / 100 if self.asks else None
        return {"type": "price_update", "market_id": self.id, "mid": self.mid / 100,
                "best_bid": bb, "best_ask": ba, "ts": ts}

    def crossing(self) -> dict[str, Any]:
        """A bogus delta: a bid above the best ask (consumes a seq, not applied here)."""
        top = min(self.asks) if self.asks else self.mid + 1
        self.seq += 1
        return {"type": "orderbook", "market_id": self.id, "seq": self.seq, "snapshot": False,
                "bids": [[(top + 1) / 100, 7.0]], "asks": []}

    def levels(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The true book as the client's arrays: (bids, asks), best first."""
        b = [[p / 100, float(s)] for p, s in sorted(self.bids.items(), reverse=True)]
        a = [[p / 100, float(s)] for p, s in sorted(self.asks.items())]
        return (np.array(b, dtype=np.float64).reshape(-1, 2),
                np.array(a, dtype=np.float64).reshape(-1, 2))

    def market_event(self, kind: str, ts: int) -> dict[str, Any]:
        rng = self.rng
        self.trade_no += 1
        n = self.trade_no
        price = self.mid / 100
        if kind == "trade":
            return {"type": kind, "market_id": self.id, "trade_id": f"t_{self.id}_{n}",
                    "price": price, "size": rng.randrange(1, 200),
                    "side": rng.choice(("buy", "sell")), "ts": ts}
        if kind in ("order", "order_update"):
            return {"type": kind, "market_id": self.id, "order_id": f"o_{self.id}_{n}",
                    "status": rng.choice(("open", "partially_filled", "filled", "cancelled")),
                    "side": rng.choice(("buy", "sell")), "price": price,
                    "size": rng.randrange(1, 200), "ts": ts}
        if kind == "settlement":
            return {"type": kind, "market_id": self.id, "outcome": rng.choice(("yes", "no")),
                    "payout": f"{rng.randrange(1, 10000) / 100:.2f}", "ts": ts}
        return {"type": kind, "market_id": self.id, "comment_id": f"c_{self.id}_{n}",
                "author": f"user_{rng.randrange(100)}", "body": "nice market", "ts": ts}


def blast_frames(n: int, markets: tuple[str, ...] = DEFAULT_MARKETS, *, seed: int = 1,
                 price_every: int = 2) -> tuple[list[bytes], dict[str, MarketWorld]]:
    """The blast stream: a snapshot per market, then ``n`` - len(markets) messages, deltas
    round-robin over the markets with a ``price_update`` after every ``price_every``-th;
    and the worlds after it (the books a client must end with)."""
    rng = random.Random(seed)
    worlds = {m: MarketWorld(m, rng) for m in markets}
    frames = [orjson.dumps(w.snapshot()) for w in worlds.values()]
    cycle = itertools.cycle(worlds.values())
    ts = 1_750_000_000_000
    k = 0
    while len(frames) < n:
        w = next(cycle)
        frames.append(orjson.dumps(w.delta()))
        k += 1
        if k % price_every == 0 and len(frames) < n:
            ts += 1
            frames.append(orjson.dumps(w.price(ts)))
    return frames, worlds


@dataclass
class XSession(Session):
    user: str = ""
    markets: set[str] = field(default_factory=set)
    marketdata: set[str] = field(default_factory=set)
    blasting: bool = False


class SatoriexSimulator(WSSimulator):
    """See the module docstring."""

    PATH = "/ws"
    MALFORMED = b'{"type":"trade","market_id":'

    def __init__(self, *, markets: tuple[str, ...] = DEFAULT_MARKETS, interval: float = 0.05,
                 seed: int = 1, secret: bytes = b"oddswire-satoriex-secret",
                 user_events: bool = True, market_events: bool = True,
                 blast_count: int = 200_000, host: str = "127.0.0.1", port: int = 0,
                 ssl_context: Any = None) -> None:
        super().__init__(ssl_context=ssl_context, host=host, port=port)
        self.signer = TokenSigner(secret)
        self.rng = random.Random(seed)
        self.worlds = {m: MarketWorld(m, self.rng) for m in markets}
        self.interval = interval
        self.user_events = user_events
        self.market_events = market_events
        self.ledger: dict[str, list[dict[str, Any]]] = {}
        self.market_log: dict[str, list[dict[str, Any]]] = {m: [] for m in markets}
        self.received: list[dict[str, Any]] = []
        self.event_id = 0
        self.sent = 0
        self._skip: dict[str, int] = {}
        self._refuse_until = 0.0
        self._user_cycle = itertools.cycle(USER_EVENTS)
        self._market_cycle = itertools.cycle(MARKET_EVENTS)
        self.blast_count = blast_count
        self._blast: list[bytes] | None = None
        #: False pauses the generators (the worlds stand still; pushes still work).
        self.generating = True

    # --- tokens --------------------------------------------------------------------------

    def token(self, user: str = "u_1", ttl: float | None = 3600, **claims: Any) -> str:
        if ttl is not None:
            claims["exp"] = int(time.time() + ttl)
        return self.signer.sign({"sub": user, **claims})

    def expired_token(self, user: str = "u_1") -> str:
        return self.signer.sign({"sub": user, "exp": int(time.time()) - 60})

    def _refuse(self, query: dict[str, str]) -> int | None:
        if time.monotonic() < self._refuse_until:
            return 503
        try:
            claims = self.signer.verify(query.get("token"))
        except TokenError:
            return 401
        return None if isinstance(claims.get("sub"), str) else 401

    def _new_session(self, sid: int, transport: WSTransport, query: dict[str, str]) -> Session:
        claims = self.signer.verify(query.get("token"))
        return XSession(sid, transport, query, user=claims["sub"])

    @property
    def sessions(self) -> list[XSession]:  # type: ignore[override]
        return list(self._sessions.values())  # type: ignore[arg-type]

    # --- faults and pushes ---------------------------------------------------------------

    def outage(self, seconds: float) -> int:
        """Drop every connection and refuse upgrades (503) for ``seconds``."""
        self._refuse_until = time.monotonic() + seconds
        return self.drop()

    def inject_unknown(self, kind: str = "brand_new_event") -> None:
        self.send_raw(orjson.dumps({"type": kind, "id": self._next_id(), "note": "new"}))

    def skip_seq(self, market: str, n: int = 1) -> None:
        """The next delta of ``market`` jumps ``n`` seqs."""
        self._skip[market] = self._skip.get(market, 0) + n

    def cross(self, market: str) -> None:
        """Send a delta that crosses ``market``'s book (not applied to the true book)."""
        self._to_marketdata(market, orjson.dumps(self.worlds[market].crossing()))

    def send_user(self, user: str, kind: str, **fields: Any) -> dict[str, Any]:
        """One user-channel event (kept in the ledger, sent to ``user``'s sessions)."""
        ev = {"type": kind, "id": self._next_id(), "ts": int(time.time() * 1000), **fields}
        self.ledger.setdefault(user, []).append(ev)
        data = orjson.dumps(ev)
        for s in self.sessions:
            if s.user == user:
                self._out(s, data)
        return ev

    def book(self, market: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The true book of ``market``: (bids, asks) as ``(n, 2)`` arrays, best first."""
        return self.worlds[market].levels()

    def tick(self) -> None:
        """One step of every generator (the update loop calls it every ``interval``)."""
        ts = int(time.time() * 1000)
        users = {s.user for s in self.sessions} | set(self.ledger)
        if self.user_events:
            kind = next(self._user_cycle)
            for user in sorted(users):
                self.send_user(user, kind, **self._user_fields(kind))
        for m, w in self.worlds.items():
            if self.market_events:
                ev = w.market_event(next(self._market_cycle), ts)
                ev["id"] = self._next_id()
                self.market_log[m].append(ev)
                data = orjson.dumps(ev)
                for s in self.sessions:
                    if m in s.markets:
                        self._out(s, data)
            self._to_marketdata(m, orjson.dumps(w.delta(self._skip.pop(m, 0))))
            self._to_marketdata(m, orjson.dumps(w.price(ts)))

    # --- plumbing ------------------------------------------------------------------------

    def _next_id(self) -> int:
        self.event_id += 1
        return self.event_id

    def _user_fields(self, kind: str) -> dict[str, Any]:
        rng = self.rng
        if kind == "wallet_changed":
            return {"balance": f"{rng.randrange(0, 10**6) / 100:.2f}", "currency": "USDC"}
        if kind.startswith(("deposit", "withdraw", "referral")):
            return {"amount": f"{rng.randrange(1, 10**5) / 100:.2f}", "currency": "USDC",
                    "request_id": f"r_{rng.randrange(10**6)}"}
        if kind in ("order_filled", "market_resolved", "dispute_filed"):
            return {"market_id": rng.choice(list(self.worlds)),
                    "order_id": f"o_{rng.randrange(10**6)}"}
        if kind == "mention":
            return {"comment_id": f"c_{rng.randrange(10**6)}", "by": "user_42"}
        return {"reason": "reviewed"}

    def _out(self, s: XSession, data: bytes) -> None:
        if self._live():
            self._send(s, data)
            self.sent += 1

    def _to_marketdata(self, market: str, data: bytes) -> None:
        for s in self.sessions:
            if market in s.marketdata and not s.blasting:
                self._out(s, data)

    def _message(self, s: Session, payload: bytes) -> None:
        assert isinstance(s, XSession)
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        self.received.append(msg)
        if not isinstance(msg, dict) or not isinstance(msg.get("market_id"), str):
            return
        kind, m = msg.get("type"), msg["market_id"]
        if m not in self.worlds:
            return
        if kind == "subscribe":
            s.markets.add(m)
        elif kind == "unsubscribe":
            s.markets.discard(m)
        elif kind == "subscribe_marketdata":
            s.marketdata.add(m)
            if self.interval == 0:
                self._start_blast(s)
            else:
                self._out(s, orjson.dumps(self.worlds[m].snapshot()))
        elif kind == "unsubscribe_marketdata":
            s.marketdata.discard(m)

    def _started(self) -> None:
        if self.interval > 0:
            self._spawn(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.generating:
                self.tick()

    # --- blast ---------------------------------------------------------------------------

    def _start_blast(self, s: XSession) -> None:
        if s.blasting:
            return
        if self._blast is None:
            self._blast = blast_frames(self.blast_count, tuple(self.worlds))[0]
        s.blasting = True
        self._spawn(self._blast_to(s))

    async def _blast_to(self, s: XSession) -> None:
        assert self._blast is not None
        frames, i, t = self._blast, 0, s.transport
        while i < len(frames) and not t.is_disconnected:
            end = min(i + 256, len(frames))
            for f in frames[i:end]:
                t.send(WSMsgType.TEXT, f)
            i = end
            while s.paused and not t.is_disconnected:
                self._drained.clear()
                await self._drained.wait()
            await asyncio.sleep(0)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interval", type=float, default=0.05,
                   help="seconds per tick; 0: blast the pre-encoded market-data stream")
    p.add_argument("--blast-frames", type=int, default=200_000)


def _make(args: argparse.Namespace) -> SatoriexSimulator:
    sim = SatoriexSimulator(interval=args.interval, port=args.port,
                            blast_count=args.blast_frames)
    print(f"TOKEN {sim.token()}", flush=True)
    return sim


def main() -> None:
    """``python -m oddswire.sim.satoriex [--interval S]``."""
    serve_main("python -m oddswire.sim.satoriex", _make, _configure)


if __name__ == "__main__":
    main()
