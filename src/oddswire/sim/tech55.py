"""The 55-tech v2 order/bet stream on loopback: a picows WebSocket server speaking
``shared/specs/tech55-ws.md``.

- Login: ``{"type":"login","apiKey":...,"channels":[...],"reliableDelivery":bool}`` within
  ``auth_timeout`` (30 s) of connecting, else the connection is closed (1008). A bad key is
  answered ``{"type":"error","code":"INVALID_API_KEY",...}`` and a close (1008), or, with
  ``refuse="close"``, a bare close (4001). At most ``max_connections`` (5) logged-in
  connections per key: the sixth gets ``TOO_MANY_CONNECTIONS`` and a close.
- ``login_ok`` as in the spec (``features.batchAck`` from ``batch_ack``). An empty channel
  list subscribes to every channel. Client-filtered channels carry only rows whose
  ``clientName`` (betslip: ``client``) is the key's client; global channels go to all.
- Data: ``{"type":"data","channel","event","payload","ts","seq"}``, ``seq`` per
  subscription from 1. Reliable delivery adds ``"requireAck":true``, keeps at most
  ``buffer`` (100) unacked messages (more wait in an output queue of ``queue_limit``
  (2000), past which the connection is dropped as a slow consumer), and a reconnect with the
  same key, channels and reliable flag resumes the subscription (same ``subscriptionId``)
  and redelivers every unacked message first. Acks: ``{"type":"ack","seq":N}`` or
  ``{"type":"ack","seqs":[...]}`` (the assumed forms).
- Traffic (``rate`` messages/s; ``None``: as fast as the socket drains, a pre-encoded cycle
  of orders and bets): order lifecycles (orders INSERT -> bets INSERT -> bets UPDATE
  CONFIRMED + orders UPDATE FILLED -> balance UPDATE -> settlements SETTLED -> balance
  UPDATE), fixtures, currencies and status updates; betslip odds for every window opened by
  ``poll_betslip`` (the GET /betslip stand-in: a 60 s sliding window, reset by each poll);
  ``emergency(active, reason)``.
- Keep-alive: ``{"type":"ping"}`` every ``ping_interval`` (30 s); no pong within
  ``pong_timeout`` (120 s) closes the connection; a client ping is answered with a pong.

Faults: ``drop(mid_frame=)``, ``stall(s)``, ``inject_malformed()``, ``skip_seq(n)``,
``duplicate()`` (the last message again, same seq), ``ack_delay`` (slow acks: applied that
many seconds late), ``send_unknown_channel()``, ``silent_login`` (never answer a login),
``pings=False``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from picows import WSCloseCode, WSMsgType, WSTransport

from oddswire.sim._base import Session, WSSimulator, serve_main, ws_frame_bytes

__all__ = ["CHANNELS", "GLOBAL", "Subscription", "Tech55Session", "Tech55Simulator",
           "Tech55World"]

CLIENT_FILTERED = ("orders", "bets", "settlements", "accounts", "balance", "betslip")
GLOBAL = ("fixtures", "currencies", "status", "emergency")
CHANNELS = CLIENT_FILTERED + GLOBAL
BOOKMAKERS = ("pinnacle", "bet365", "betfair", "sbobet")


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))


@dataclass
class Subscription:
    id: int
    api_key: str
    client_name: str
    channels: frozenset[str]
    reliable: bool
    seq: int = 0
    buffer: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    queue: deque[tuple[int, bytes]] = field(default_factory=deque)
    session: Tech55Session | None = None
    last_frame: bytes | None = None
    skip: int = 0

    def wants(self, channel: str, client: str | None) -> bool:
        if self.channels and channel not in self.channels:
            return False
        return channel not in CLIENT_FILTERED or client == self.client_name


@dataclass
class Tech55Session(Session):
    api_key: str | None = None
    sub: Subscription | None = None
    last_pong: float = field(default_factory=time.monotonic)
    auth_timer: asyncio.TimerHandle | None = None
    acks: list[int] = field(default_factory=list)
    pings: int = 0


class Tech55World:
    """Seeded order/bet lifecycles and global updates, per client name."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.next_order = 300
        self.next_bet = 70
        self.balances: dict[tuple[str, str], float] = {}
        self.active: list[dict[str, Any]] = []
        self.rates = {"EUR": 0.92, "GBP": 0.79, "BRL": 5.1}
        self.fixture_scores: dict[str, list[int]] = {}

    def order(self, client: str) -> dict[str, Any]:
        self.next_order += 1
        now = time.time()
        stake = float(self.rng.choice((5, 10, 20, 50, 100)))
        return {
            "orderId": self.next_order, "requestUuid": str(uuid.UUID(int=self.rng.getrandbits(
                128))), "client": client, "clientName": client,
            "fixtureId": f"id10000044615{self.rng.randint(10000, 99999)}",
            "outcomeId": self.rng.choice((101, 102, 103)), "playerId": 0,
            "orderPrice": round(self.rng.uniform(1.3, 4.0), 2), "orderStake": stake,
            "filledStake": 0.0, "remainingStake": stake, "orderStatus": "PENDING",
            "statusReason": None, "userRef": f"bettor{self.rng.randint(1000, 9999)}",
            "testOrder": False, "acceptBetterOdds": True, "acceptPartialStake": True,
            "orderCurrency": "USD", "back": True, "allowedBookmakers": "*", "oddsInfo": None,
            "meta": {}, "expiresAt": _iso(now + 5), "filledAt": None, "createdAt": _iso(now),
            "updatedAt": _iso(now)}

    def bet(self, order: dict[str, Any]) -> dict[str, Any]:
        self.next_bet += 1
        now = time.time()
        book = self.rng.choice(BOOKMAKERS)
        price = round(order["orderPrice"] * self.rng.uniform(1.0, 1.03), 2)
        return {
            "betId": self.next_bet, "orderId": order["orderId"], "bookmaker": book,
            "bookmakerBetId": str(self.rng.randint(10**9, 10**10)), "betStatus": "PENDING",
            "settlementStatus": "UNSETTLED", "placedStake": order["orderStake"],
            "placedPrice": price, "placedCurrency": "USD", "account": f"{book}_main",
            "requestUuid": order["requestUuid"], "userRef": order["userRef"], "testBet": False,
            "client": order["client"], "clientName": order["clientName"],
            "sentData": {"stake": order["orderStake"], "price": order["orderPrice"]},
            "receivedData": None, "settlementAmount": None, "settlementReason": None,
            "settledAt": None, "declineReason": None, "betRequestId": None, "oddsInfo": None,
            "meta": {}, "placedAt": _iso(now), "createdAt": _iso(now), "updatedAt": _iso(now)}

    def balance(self, client: str, book: str, delta: float) -> dict[str, Any]:
        key = (client, book)
        self.balances[key] = round(self.balances.get(key, 5000.0) + delta, 2)
        return {"clientName": client, "bookmaker": book, "username": f"{book}_main",
                "balance": self.balances[key], "currency": "USD",
                "ts": int(time.time() * 1000)}

    def step(self, clients: list[str]) -> list[tuple[str, str, dict[str, Any], str | None]]:
        """The next message(s): (channel, event, payload, client or None for global)."""
        r = self.rng.random()
        if r < 0.03:
            fid = f"id10000044615{self.rng.randint(10000, 99999)}"
            score = self.fixture_scores.setdefault(fid, [0, 0])
            score[self.rng.randint(0, 1)] += 1
            return [("fixtures", "UPDATE", {"fixtureId": fid, "status": "LIVE",
                                            "score": list(score)}, None)]
        if r < 0.04:
            cur = self.rng.choice(list(self.rates))
            self.rates[cur] = round(self.rates[cur] * self.rng.uniform(0.99, 1.01), 4)
            return [("currencies", "UPDATE", {"currency": cur, "rateUsd": self.rates[cur]},
                     None)]
        if r < 0.045:
            return [("status", "STATUS", {"status": "OK", "ts": int(time.time() * 1000)},
                     None)]
        if not clients:
            return []
        if len(self.active) < 8 or r < 0.3:
            order = self.order(self.rng.choice(clients))
            self.active.append({"order": order, "stage": 0, "bet": None})
            return [("orders", "INSERT", dict(order), order["clientName"])]
        life = self.rng.choice(self.active)
        order, stage = life["order"], life["stage"]
        client = order["clientName"]
        life["stage"] += 1
        now = _iso(time.time())
        if stage == 0:
            life["bet"] = self.bet(order)
            return [("bets", "INSERT", dict(life["bet"]), client)]
        bet = life["bet"]
        if stage == 1:
            bet.update(betStatus="CONFIRMED", updatedAt=now, receivedData={
                "betId": bet["bookmakerBetId"], "status": "accepted",
                "price": bet["placedPrice"]})
            order.update(orderStatus="FILLED", filledStake=order["orderStake"],
                         remainingStake=0.0, filledAt=now, updatedAt=now)
            return [("bets", "UPDATE", dict(bet), client),
                    ("orders", "UPDATE", dict(order), client)]
        if stage == 2:
            return [("balance", "UPDATE",
                     self.balance(client, bet["bookmaker"], -bet["placedStake"]), client)]
        self.active.remove(life)
        won = self.rng.random() < 0.45
        amount = round(bet["placedStake"] * bet["placedPrice"], 2) if won else 0.0
        bet.update(settlementStatus="WON" if won else "LOST", settlementAmount=amount,
                   settlementReason="result", settledAt=now, updatedAt=now)
        return [("settlements", "SETTLED", dict(bet), client),
                ("balance", "UPDATE", self.balance(client, bet["bookmaker"], amount), client)]


@dataclass
class BetslipWindow:
    client: str
    outcome_id: int
    player_id: int
    fixture_id: str | None
    future_id: str | None
    participant_id: int | None
    until: float
    prices: dict[tuple[str, str], float] = field(default_factory=dict)


class Tech55Simulator(WSSimulator):
    """``async with Tech55Simulator() as sim: Tech55Client(sim.url, api_key=sim.api_key)``;
    see the module docstring."""

    PATH = "/ws"

    def __init__(self, *, api_keys: dict[str, str] | None = None, seed: int = 1,
                 rate: float | None = 50.0, ping_interval: float = 30.0,
                 pong_timeout: float = 120.0, auth_timeout: float = 30.0,
                 max_connections: int = 5, buffer: int = 100, queue_limit: int = 2000,
                 batch_ack: bool = False, betslip_window: float = 60.0,
                 betslip_interval: float = 0.05, refuse: str = "error",
                 clock: str = "ms", ssl_context: Any = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        super().__init__(ssl_context=ssl_context, host=host, port=port)
        self.api_keys = dict(api_keys) if api_keys is not None else {"key-demo": "demo"}
        self.world = Tech55World(seed)
        self.rng = random.Random(seed + 1)
        self.rate = rate
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.auth_timeout = auth_timeout
        self.max_connections = max_connections
        self.buffer = buffer
        self.queue_limit = queue_limit
        self.batch_ack = batch_ack
        self.betslip_window = betslip_window
        self.betslip_interval = betslip_interval
        self.refuse = refuse
        self.clock = clock
        self.ack_delay = 0.0
        self.silent_login = False
        self.pings = True
        self.subscriptions: dict[int, Subscription] = {}
        self.windows: dict[tuple[Any, ...], BetslipWindow] = {}
        self.sent = 0
        self.acked: list[tuple[int, int]] = []  # (subscription id, seq)
        self.on_ack: Callable[[Subscription, int], None] | None = None
        self.log: list[tuple[int, str, Any]] = []
        self._next_sub = 0
        self._sessions: dict[int, Tech55Session] = {}  # type: ignore[assignment]

    @property
    def api_key(self) -> str:
        return next(iter(self.api_keys))

    @property
    def sessions(self) -> list[Tech55Session]:  # type: ignore[override]
        return list(self._sessions.values())

    def stamp(self) -> int:
        return time.perf_counter_ns() if self.clock == "monotonic_ns" else int(
            time.time() * 1000)

    # --- what a test or the REST API would do ------------------------------------------

    def publish(self, channel: str, event: str, payload: Any, client: str | None = None) -> int:
        """Send one data message to every subscription that takes it; returns how many."""
        body = orjson.dumps(payload)
        head = b'{"type":"data","channel":"%s","event":"%s","payload":' % (
            channel.encode(), event.encode())
        n = 0
        for sub in list(self.subscriptions.values()):
            if not (sub.wants(channel, client) or channel not in CHANNELS):
                continue
            if sub.session is None and not sub.reliable:
                continue
            sub.seq += 1 + sub.skip
            sub.skip = 0
            frame = head + body + b',"ts":%d,"seq":%d%s}' % (
                self.stamp(), sub.seq, b',"requireAck":true' if sub.reliable else b"")
            self._deliver(sub, sub.seq, frame)
            n += 1
        return n

    def emergency(self, active: bool, reason: str = "Upstream provider maintenance") -> None:
        self.publish("emergency", "STATUS", {"active": active, "reason": reason,
                                             "ts": int(time.time() * 1000)})

    def poll_betslip(self, client: str = "demo", *, outcome_id: int = 103,
                     fixture_id: str | None = "id1000004461512432", player_id: int = 0,
                     future_id: str | None = None,
                     participant_id: int | None = None) -> BetslipWindow:
        """GET /betslip: opens (or slides) the 60 s window of odds updates."""
        key = (client, fixture_id, future_id, outcome_id, player_id, participant_id)
        w = self.windows.get(key)
        until = time.monotonic() + self.betslip_window
        if w is None:
            w = self.windows[key] = BetslipWindow(client, outcome_id, player_id, fixture_id,
                                                  future_id, participant_id, until)
            for book in BOOKMAKERS[:3]:
                line = (f"{future_id}:{book}:{outcome_id}:{player_id}:{participant_id}"
                        if future_id else f"odds_{self.rng.randint(10000, 99999)}")
                w.prices[(book, line)] = round(self.rng.uniform(1.8, 2.2), 2)
        w.until = until
        return w

    def betslip_payload(self, w: BetslipWindow) -> dict[str, Any]:
        odds: dict[str, dict[str, Any]] = {}
        for (book, line), price in w.prices.items():
            odds.setdefault(book, {})[line] = {
                "price": price, "limit": 500.0, "limitMin": 1.0, "limitCurrency": "USD",
                "limitUsd": 500.0, "limitMinUsd": 1.0, "active": price < 2.15,
                "account": f"{book}_main"}
        payload: dict[str, Any] = {"outcomeId": w.outcome_id, "playerId": w.player_id,
                                   "client": w.client, "userRef": None, "odds": odds}
        if w.fixture_id is not None:
            payload["fixtureId"] = w.fixture_id
        if w.future_id is not None:
            payload["futureId"] = w.future_id
            payload["participantId"] = w.participant_id
        return payload

    # --- faults --------------------------------------------------------------------------

    def skip_seq(self, n: int = 1) -> None:
        """The next message of every subscription skips ``n`` seq numbers."""
        for sub in self.subscriptions.values():
            sub.skip += n

    def duplicate(self) -> int:
        """Send every attached subscription's last message again (same seq)."""
        n = 0
        for sub in self.subscriptions.values():
            if sub.session is not None and sub.last_frame is not None:
                self._send(sub.session, sub.last_frame)
                n += 1
        return n

    def send_unknown_channel(self, channel: str = "promotions") -> int:
        return self.publish(channel, "UPDATE", {"promo": "boost", "pct": 10})

    # --- protocol ------------------------------------------------------------------------

    def _new_session(self, sid: int, transport: WSTransport,
                     query: dict[str, str]) -> Tech55Session:
        s = Tech55Session(sid, transport, query)
        s.auth_timer = asyncio.get_running_loop().call_later(
            self.auth_timeout, self._auth_expired, s)
        return s

    def _auth_expired(self, s: Tech55Session) -> None:
        if s.sub is None and s.id in self._sessions:
            self.log.append((s.id, "auth-timeout", None))
            self._close(s, WSCloseCode.POLICY_VIOLATION, b"auth timeout")

    def _close(self, s: Tech55Session, code: Any, reason: bytes) -> None:
        s.transport.send_close(code, reason)
        s.transport.disconnect()

    def _disconnected(self, s: Session) -> None:
        assert isinstance(s, Tech55Session)
        if s.auth_timer is not None:
            s.auth_timer.cancel()
        sub = s.sub
        if sub is not None and sub.session is s:
            sub.session = None
            if not sub.reliable:
                self.subscriptions.pop(sub.id, None)

    def _started(self) -> None:
        self._spawn(self._traffic_loop() if self.rate is not None else self._blast_loop())
        self._spawn(self._ping_loop())
        self._spawn(self._betslip_loop())

    def _message(self, s: Tech55Session, payload: bytes) -> None:  # type: ignore[override]
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.log.append((s.id, "garbage", payload))
            return
        if not isinstance(msg, dict):
            self.log.append((s.id, "garbage", payload))
            return
        s.received.append(msg)
        kind = msg.get("type")
        if kind == "pong":
            s.last_pong = time.monotonic()
        elif kind == "ping":
            s.pings += 1
            self._send(s, b'{"type":"pong"}')
        elif kind == "login":
            self._login(s, msg)
        elif kind == "ack" and s.sub is not None:
            seqs = msg.get("seqs") if "seqs" in msg else [msg.get("seq")]
            seqs = seqs if isinstance(seqs, list) else []
            s.acks.extend(q for q in seqs if isinstance(q, int))
            sub = s.sub
            if self.ack_delay:
                asyncio.get_running_loop().call_later(self.ack_delay, self._acked, sub, seqs)
            else:
                self._acked(sub, seqs)
        else:
            self.log.append((s.id, "unexpected", msg))

    def _login(self, s: Tech55Session, msg: dict[str, Any]) -> None:
        if s.sub is not None:
            self._send(s, b'{"type":"error","code":"ALREADY_LOGGED_IN"}')
            return
        if self.silent_login:
            self.log.append((s.id, "login-ignored", None))
            return
        key = msg.get("apiKey")
        client = self.api_keys.get(key) if isinstance(key, str) else None
        if client is None:
            self.log.append((s.id, "bad-key", None))
            if self.refuse == "error":
                self._send(s, b'{"type":"error","code":"INVALID_API_KEY",'
                              b'"message":"Invalid API key"}')
                self._close(s, WSCloseCode.POLICY_VIOLATION, b"invalid api key")
            else:
                self._close(s, 4001, b"unauthorized")
            return
        live = sum(1 for o in self._sessions.values() if o.api_key == key and o.sub)
        if live >= self.max_connections:
            self.log.append((s.id, "too-many", live))
            self._send(s, b'{"type":"error","code":"TOO_MANY_CONNECTIONS","message":'
                          b'"Max connections per API key reached"}')
            self._close(s, WSCloseCode.POLICY_VIOLATION, b"too many connections")
            return
        wanted = msg.get("channels") or []
        channels = frozenset(c for c in wanted if c in CHANNELS) if isinstance(
            wanted, list) else frozenset()
        reliable = msg.get("reliableDelivery") is True
        sub = next((x for x in self.subscriptions.values() if x.reliable and reliable
                    and x.session is None and x.api_key == key and x.channels == channels),
                   None)
        resumed = sub is not None
        if sub is None:
            self._next_sub += 1
            sub = Subscription(self._next_sub, key, client, channels, reliable)  # type: ignore[arg-type]
            self.subscriptions[sub.id] = sub
        s.api_key, s.sub, sub.session = key, sub, s
        if s.auth_timer is not None:
            s.auth_timer.cancel()
        s.last_pong = time.monotonic()
        self.log.append((s.id, "login", (sub.id, sorted(channels), reliable, resumed)))
        self._send(s, orjson.dumps({
            "type": "login_ok", "clientName": client,
            "channels": sorted(channels) if channels else list(CHANNELS),
            "subscriptionId": sub.id,
            "access": {"clientFiltered": list(CLIENT_FILTERED), "global": list(GLOBAL)},
            "reliableDelivery": reliable,
            "features": {"messageOrdering": True, "acknowledgments": reliable,
                         "batchAck": self.batch_ack}}))
        if resumed:  # redeliver what was not acked, then what waited for room
            for frame in sub.buffer.values():
                self._send(s, frame)
            self._refill(sub)

    def _deliver(self, sub: Subscription, seq: int, frame: bytes) -> None:
        sub.last_frame = frame
        if not sub.reliable:
            if sub.session is not None and not sub.session.paused:
                self._send(sub.session, frame)
                self.sent += 1
            return
        if len(sub.buffer) < self.buffer and not sub.queue:
            sub.buffer[seq] = frame
            if sub.session is not None:
                self._send(sub.session, frame)
                self.sent += 1
            return
        sub.queue.append((seq, frame))
        if len(sub.queue) > self.queue_limit and sub.session is not None:
            self.log.append((sub.session.id, "slow-consumer", len(sub.queue)))
            self._close(sub.session, WSCloseCode.POLICY_VIOLATION, b"slow consumer")

    def _acked(self, sub: Subscription, seqs: Any) -> None:
        for seq in seqs if isinstance(seqs, list) else ():
            if not isinstance(seq, int):
                continue
            self.acked.append((sub.id, seq))
            if self.on_ack is not None:
                self.on_ack(sub, seq)
            sub.buffer.pop(seq, None)
        self._refill(sub)

    def _refill(self, sub: Subscription) -> None:
        while sub.queue and len(sub.buffer) < self.buffer:
            seq, frame = sub.queue.popleft()
            sub.buffer[seq] = frame
            if sub.session is not None:
                self._send(sub.session, frame)
                self.sent += 1

    # --- generators ----------------------------------------------------------------------

    def _clients(self) -> list[str]:
        return sorted({sub.client_name for sub in self.subscriptions.values()})

    def _emit_step(self) -> None:
        for channel, event, payload, client in self.world.step(self._clients()):
            self.publish(channel, event, payload, client)

    async def _traffic_loop(self) -> None:
        assert self.rate is not None
        if self.rate <= 0:
            return
        loop = asyncio.get_running_loop()
        tick = min(0.01, 1.0 / self.rate)
        credit, next_at = 0.0, loop.time()
        while True:
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if not self._live() or not self.subscriptions:
                continue
            credit += self.rate * tick
            while credit >= 1:
                credit -= 1
                self._emit_step()

    async def _betslip_loop(self) -> None:
        while True:
            await asyncio.sleep(self.betslip_interval)
            now = time.monotonic()
            for key, w in list(self.windows.items()):
                if now > w.until:
                    del self.windows[key]
                    continue
                if not self._live():
                    continue
                for k in w.prices:
                    if self.rng.random() < 0.5:
                        w.prices[k] = round(max(1.01, w.prices[k]
                                                * self.rng.uniform(0.98, 1.02)), 2)
                self.publish("betslip", "UPDATE", self.betslip_payload(w), w.client)

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            now = time.monotonic()
            for s in list(self._sessions.values()):
                if s.sub is None:
                    continue
                if now - s.last_pong > self.pong_timeout:
                    self.log.append((s.id, "pong-timeout", None))
                    self._close(s, WSCloseCode.GOING_AWAY, b"pong timeout")
                elif self.pings:
                    self._send(s, b'{"type":"ping"}')

    async def _blast_loop(self) -> None:
        """Full speed: orders and bets payloads from the world, pre-encoded with a
        fixed-width ``seq`` (from 10**9), written straight to each logged-in, unreliable
        session's socket while it drains."""
        payloads: list[bytes] = []
        for _ in range(512):
            for channel, event, payload, _client in self.world.step(["demo"]):
                if channel in ("orders", "bets", "settlements"):
                    payloads.append(b'{"type":"data","channel":"%s","event":"%s","payload":'
                                    % (channel.encode(), event.encode())
                                    + orjson.dumps(payload).replace(b"%", b"%%")
                                    + b',"ts":%d,"seq":%%d}' % self.stamp())
        cycle = (payloads * (4096 // len(payloads) + 1))[:4096]
        # Header bytes may be 0x25 ('%'): escaped like the payloads.
        template = b"".join(ws_frame_bytes(p % 10**9)[: -len(p % 10**9)].replace(b"%", b"%%")
                            + p for p in cycle)
        while True:
            sent = False
            for s in list(self._sessions.values()):
                sub = s.sub
                if sub is None or sub.reliable or s.paused or not self._live():
                    continue
                if sub.seq < 10**9:
                    sub.seq = 10**9 - 1
                blob = template % tuple(range(sub.seq + 1, sub.seq + 1 + len(cycle)))
                sub.seq += len(cycle)
                s.transport.underlying_transport.write(blob)
                self.sent += len(cycle)
                sent = True
            await self._blast_pause(sent)

    def _send(self, s: Session, payload: bytes) -> None:
        if self._live():
            s.transport.send(WSMsgType.TEXT, payload)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=float, default=50.0, help="messages/s; -1: max")
    p.add_argument("--clock", default="ms", choices=("ms", "monotonic_ns"))
    p.add_argument("--api-key", default="key-demo")


def _make(args: argparse.Namespace) -> Tech55Simulator:
    return Tech55Simulator(rate=None if args.rate < 0 else args.rate, clock=args.clock,
                           api_keys={args.api_key: "demo"}, port=args.port)


def main() -> None:
    """``python -m oddswire.sim.tech55 [--rate N|-1] [--clock ms|monotonic_ns]``."""
    serve_main("python -m oddswire.sim.tech55", _make, _configure)


if __name__ == "__main__":
    main()
