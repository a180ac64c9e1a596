"""The BETCORE games hub on loopback: a picows WebSocket server speaking the SignalR JSON hub
protocol of ``shared/specs/betcore-signalr.md``.

- ``?access_token=JWT`` (HS256 from ``sim.signer``): a missing, bad or expired token is
  answered ``401`` at the upgrade.
- The JSON handshake ``{"protocol":"json","version":1}`` + 0x1E, answered ``{}`` (or, with
  ``fail_handshake``, ``{"error": ...}`` and a close).
- ``Subscribe`` invocations ``["SubOnWholeGamesInfo", "{GameType, PartnerClientId,
  Count}"]`` (``Unsubscribe`` with the same arguments removes one); every ``interval``
  seconds each subscription gets a ``WholeGamesInfoSubscribe`` invocation with the current
  game of its type (and up to ``Count - 1`` finished ones), from a seeded world of poker
  (cards, six hands, a dealer) and lottery (balls, no dealer) games that cycle through
  Awaiting, BettingTime, GameAction and Finished, with 16 coefficients each.
- ``sId``: one counter per ``PartnerClientId`` that starts at 0 and is not reset when the
  client reconnects. Server pings every ``ping_interval`` seconds; ``close(error,
  allow_reconnect)`` sends a Close message and disconnects.

Faults: ``drop(mid_frame=)``, ``stall(s)``, ``inject_malformed()``, ``inject_empty_record()``,
``skip_sid(n)``, ``repeat_sid()``, ``reset_sid()``, ``maintenance(on)``; ``batch=True``
sends every subscription's update of a tick in one frame (several records per frame).

Blast mode (``interval=0``, ``python -m oddswire.sim.betcore --interval 0``): for load, not
for state. Every session replays, from its start at each ``Subscribe``, a pre-encoded cycle
(:func:`blast_cycle`) of a few thousand churning records per subscribed game type, one
record per frame, runs of each subscription in turn, written as fast as its socket drains
(picows flow control). Only the per-partner ``sId`` and ``im`` are spliced in per send, so
sIds stay contiguous and the sId faults, ``maintenance``, ``stall`` and ``batch`` still
apply; ``tst`` and the games are those of the cycle (stamps in the past, 500 ms apart).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from picows import WSMsgType, WSTransport

from oddswire.sim._base import Session, WSSimulator, serve_main
from oddswire.sim.jwt import TokenError, TokenSigner

__all__ = ["GAME_KINDS", "BetcoreSimulator", "BetcoreWorld", "Game", "blast_cycle"]

RS = b"\x1e"
#: game type -> (kind, results per game, hands, first event type)
GAME_KINDS: dict[int, tuple[str, int, int, int]] = {
    1: ("lottery", 20, 0, 1),
    3: ("poker", 17, 6, 196),
    6: ("poker", 17, 6, 600),
}
_SUITS, _RANKS = "cdhs", "23456789tjqka"
_DEALERS = [{"id": 2312, "n": "Petre", "c": "Poland", "a": 31},
            {"id": 1877, "n": "Ana", "c": "Georgia", "a": 27},
            {"id": 954, "n": "Lina", "c": "Latvia", "a": 34}]


def iso(ns: int, digits: int = 7) -> str:
    """``2025-06-19T15:57:18.6120782Z`` (the feed's form) from ns since the epoch."""
    secs, frac = divmod(ns, 1_000_000_000)
    stamp = datetime.datetime.fromtimestamp(secs, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac:09d}"[: len(stamp) + 1 + digits] + "Z" if digits else stamp + "Z"


@dataclass
class Game:
    """One game (round) of a type, as the server knows it."""

    id: int
    type: int
    edition: str
    last_round_id: int
    start_ns: int
    state: int = 1
    play_status: int = 1
    round: int = 1
    ticks: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    coefficients: list[float] = field(default_factory=list)
    blocked: list[bool] = field(default_factory=list)
    dealer: dict[str, Any] | None = None

    def entry(self, hands: int, first_event: int, ticks_total: int,
              tick_s: float) -> dict[str, Any]:
        start = self.start_ns
        return {
            "i": self.id, "t": self.type, "ge": self.edition, "s": self.state,
            "ps": self.play_status, "cr": self.round,
            "sdt": iso(start, 3), "fdt": iso(start + int(ticks_total * tick_s * 1e9), 3),
            "r": self.results,
            "h": [{"i": h + 1, "r": [], "s": 0, "p": 0} for h in range(hands)],
            "e": [{"t": first_event + k, "p": [], "c": c, "b": b, "sn": f"{self.type:02d}{k:03d}"}
                  for k, (c, b) in enumerate(zip(self.coefficients, self.blocked, strict=True))],
            "vs": 2, "lrId": self.last_round_id, "di": self.dealer,
        }


class BetcoreWorld:
    """Seeded games of each type cycling Awaiting -> BettingTime -> GameAction -> Finished.

    ``betting_ticks`` ticks of betting time (``bt`` counts down in seconds), then one result
    dealt per tick, then ``finished_ticks`` ticks Finished before the next game."""

    def __init__(self, seed: int = 1, *, tick_s: float = 0.5, betting_ticks: int = 20,
                 finished_ticks: int = 2, keep: int = 4, first_id: int = 30_000_600_000,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.rng = random.Random(seed)
        self.clock = clock  # ns since the epoch: game starts and ``tst``
        self.tick_s = tick_s
        self.betting_ticks = betting_ticks
        self.finished_ticks = finished_ticks
        self.keep = keep
        self.maintenance = False
        self.games: dict[int, list[Game]] = {}  # type -> newest last
        self._next_id = first_id

    def _new_game(self, gtype: int, previous: Game | None) -> Game:
        kind, _, _, _ = GAME_KINDS[gtype]
        self._next_id += 1
        edition = f"{'PB' if kind == 'poker' else 'LT'}{self._next_id % 10**6}"
        g = Game(self._next_id, gtype, edition,
                 previous.id if previous else self._next_id - 1, self.clock())
        g.coefficients = [round(self.rng.uniform(1.2, 12.0), 2) for _ in range(16)]
        g.coefficients[6] = 1000.0
        g.blocked = [False] * 16
        g.dealer = self.rng.choice(_DEALERS) if kind == "poker" else None
        return g

    def current(self, gtype: int) -> list[Game]:
        if gtype not in GAME_KINDS:
            raise ValueError(f"unknown game type {gtype}")
        games = self.games.setdefault(gtype, [])
        if not games:
            games.append(self._new_game(gtype, None))
        return games

    def tick(self, gtype: int) -> None:
        """Advance the current game of ``gtype`` by one tick."""
        games = self.current(gtype)
        g = games[-1]
        kind, n_results, hands, _ = GAME_KINDS[gtype]
        g.ticks += 1
        if g.state == 1:
            g.state, g.play_status = 2, 1
        elif g.state == 2 and g.play_status == 1:
            for k in range(len(g.coefficients)):  # odds drift while bets are open
                if self.rng.random() < 0.3:
                    g.coefficients[k] = round(max(1.01, g.coefficients[k]
                                                  * self.rng.uniform(0.97, 1.03)), 2)
            if g.ticks > self.betting_ticks:
                g.play_status = 2
                g.blocked = [True] * len(g.blocked)
        elif g.state == 2:
            n = len(g.results) + 1
            value = (f"{self.rng.choice(_RANKS)}{self.rng.choice(_SUITS)}" if kind == "poker"
                     else str(self.rng.randint(1, 80)))
            g.results.append({"v": value, "hi": (n - 1) % hands + 1 if hands and n <= 2 * hands
                              else 0, "ra": None, "ri": 1 + n // 6, "s": 1, "sn": n,
                              "vi": None, "h": False})
            g.round = 1 + n // 6
            if n >= n_results:
                g.state, g.ticks = 3, 0
        elif g.state == 3 and g.ticks >= self.finished_ticks:
            games.append(self._new_game(gtype, g))
            del games[: -self.keep]

    def betting_seconds(self, gtype: int) -> float:
        g = self.current(gtype)[-1]
        if g.state != 2 or g.play_status != 1:
            return 0
        return max(0.0, (self.betting_ticks - g.ticks + 1) * self.tick_s)

    def payload(self, gtype: int, count: int, sid: int) -> dict[str, Any]:
        """The ``arguments[0]`` object of one WholeGamesInfoSubscribe."""
        _, _, hands, first = GAME_KINDS[gtype]
        total = self.betting_ticks + GAME_KINDS[gtype][1] + 2
        games = self.current(gtype)[-max(1, count):][::-1]
        return {"wgi": [g.entry(hands, first, total, self.tick_s) for g in games],
                "tst": iso(self.clock()), "bt": self.betting_seconds(gtype),
                "im": self.maintenance, "sId": sid}


_BLAST_TAIL = b'"im":false,"sId":0}]}'


def _text_header(n: int) -> bytes:
    """The header of a server-to-client (unmasked) TEXT frame of ``n`` payload bytes."""
    if n < 126:
        return bytes((0x81, n))
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n)
    return struct.pack("!BBQ", 0x81, 127, n)


def blast_cycle(gtype: int, count: int = 1, *, seed: int = 1, records: int = 4096,
                tick_s: float = 0.5) -> list[bytes]:
    """The blast mode's pre-encoded cycle for one game type: at least ``records``
    ``WholeGamesInfoSubscribe`` records from a fresh :class:`BetcoreWorld` (seeded from
    ``seed`` and ``gtype``; game ids from ``30_000_600_000 + gtype * 10**7``), one per tick of
    ``tick_s`` simulated seconds, ending where the next game would open, so the cycle wraps
    from a finished game to an awaiting one. Each entry is a record's bytes up to and
    including ``"im":``; the record on the wire is ``entry + b"false" (or b"true") +
    b',"sId":' + sid + b"}]}" + 0x1E``. Deterministic apart from the time stamps, which are
    in the past (the last about now)."""
    _, n_results, _, _ = GAME_KINDS[gtype]
    per_game = 20 + n_results + 4
    now = [time.time_ns() - int((records + per_game) * tick_s * 1e9)]
    world = BetcoreWorld(seed * 100 + gtype, tick_s=tick_s,
                         first_id=30_000_600_000 + gtype * 10**7, clock=lambda: now[0])
    heads: list[bytes] = []
    while True:
        g = world.current(gtype)[-1]
        if len(heads) >= records and g.state == 1 and g.ticks == 0:
            return heads
        raw = orjson.dumps({"type": 1, "target": "WholeGamesInfoSubscribe",
                            "arguments": [world.payload(gtype, count, 0)]})
        if not raw.endswith(_BLAST_TAIL):  # payload() puts "im" and "sId" last
            raise AssertionError(f"unexpected record tail: {raw[-40:]!r}")
        heads.append(raw[: -len(_BLAST_TAIL) + 5])
        world.tick(gtype)
        now[0] += int(tick_s * 1e9)


@dataclass
class HubSession(Session):
    handshaken: bool = False
    pending: bytearray = field(default_factory=bytearray)
    #: game type -> (partner client id, count)
    subs: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: blast mode: game type -> index of the next record of its cycle
    cursor: dict[int, int] = field(default_factory=dict)


class BetcoreSimulator(WSSimulator):
    """``async with BetcoreSimulator() as sim: BetcoreClient(sim.url, access_token=sim.token()
    ...)``; see the module docstring. ``interval``: seconds between updates (the spec's
    500 ms; 0: blast mode, pre-encoded records as fast as the socket drains)."""

    PATH = "/signalrhub-integration-service/hubs"
    MALFORMED = b'{"type":1,"target":"WholeGamesInfoSubscribe","arguments":[{"wgi":[{' + RS
    #: blast mode: records per socket write, and writes per session before yielding
    BLAST_RECORDS, BLAST_WRITES = 64, 16

    def __init__(self, *, secret: bytes = b"oddswire-betcore-secret", seed: int = 1,
                 interval: float = 0.5, ping_interval: float = 15.0, batch: bool = False,
                 world: BetcoreWorld | None = None, fail_handshake: str | None = None,
                 ssl_context: Any = None, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(ssl_context=ssl_context, host=host, port=port)
        self.signer = TokenSigner(secret)
        self.seed = seed
        self.world = world or BetcoreWorld(seed, tick_s=interval or 0.5)
        self.interval = interval
        self.ping_interval = ping_interval
        self.batch = batch
        self.fail_handshake = fail_handshake
        self.sids: dict[int, int] = {}  # PartnerClientId -> next sId
        self.log: list[tuple[int, str, Any]] = []
        self.updates_sent = 0
        self._sid_faults: list[tuple[str, int]] = []
        self._sessions: dict[int, HubSession] = {}  # type: ignore[assignment]
        self._cycles: dict[tuple[int, int], list[bytes]] = {}  # blast: (type, count) -> cycle
        self._heads: dict[tuple[int, int, bytes, int], list[bytes]] = {}

    def token(self, **claims: Any) -> str:
        return self.signer.sign({"sub": "partner", **claims})

    @property
    def sessions(self) -> list[HubSession]:  # type: ignore[override]
        return list(self._sessions.values())

    # --- faults --------------------------------------------------------------------------

    def inject_empty_record(self) -> None:
        """A ping, then an empty record (two separators in a row)."""
        self.send_raw(b'{"type":6}' + RS + RS)

    def skip_sid(self, n: int = 1) -> None:
        """The next update's sId jumps ``n`` ahead."""
        self._sid_faults.append(("skip", n))

    def repeat_sid(self) -> None:
        """The next update repeats the last sId."""
        self._sid_faults.append(("repeat", 0))

    def reset_sid(self) -> None:
        """The next update starts the count again at 0."""
        self._sid_faults.append(("reset", 0))

    def maintenance(self, on: bool) -> None:
        self.world.maintenance = on

    def close(self, error: str | None = None, allow_reconnect: bool | None = None) -> None:
        """Send a hub Close message to every session, then disconnect it."""
        msg: dict[str, Any] = {"type": 7}
        if error is not None:
            msg["error"] = error
        if allow_reconnect is not None:
            msg["allowReconnect"] = allow_reconnect
        for s in list(self._sessions.values()):
            s.transport.send(WSMsgType.TEXT, orjson.dumps(msg) + RS)
            s.transport.disconnect()

    # --- protocol ------------------------------------------------------------------------

    def _refuse(self, query: dict[str, str]) -> int | None:
        try:
            self.signer.verify(query.get("access_token"))
        except TokenError:
            return 401
        return None

    def _new_session(self, sid: int, transport: WSTransport,
                     query: dict[str, str]) -> HubSession:
        return HubSession(sid, transport, query)

    def _started(self) -> None:
        self._spawn(self._update_loop())
        self._spawn(self._ping_loop())

    def _message(self, s: HubSession, payload: bytes) -> None:  # type: ignore[override]
        s.pending += payload
        while (end := s.pending.find(RS)) >= 0:
            record = bytes(s.pending[:end])
            del s.pending[: end + 1]
            self._record(s, record)

    def _record(self, s: HubSession, record: bytes) -> None:
        try:
            msg = orjson.loads(record)
        except orjson.JSONDecodeError:
            self.log.append((s.id, "garbage", record))
            return
        s.received.append(msg)
        if not s.handshaken:
            if msg != {"protocol": "json", "version": 1}:
                self.log.append((s.id, "bad-handshake", msg))
                self._send(s, orjson.dumps({"error": "unsupported handshake"}) + RS)
                s.transport.disconnect()
                return
            if self.fail_handshake is not None:
                self._send(s, orjson.dumps({"error": self.fail_handshake}) + RS)
                s.transport.disconnect()
                return
            s.handshaken = True
            self._send(s, b"{}" + RS)
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == 1 and msg.get("target") in ("Subscribe", "Unsubscribe"):
            self._subscribe(s, msg)
        elif kind == 6:
            self.log.append((s.id, "ping", None))
        elif kind == 7:
            s.transport.disconnect()

    def _subscribe(self, s: HubSession, msg: dict[str, Any]) -> None:
        args = msg.get("arguments")
        try:
            assert isinstance(args, list) and args[0] == "SubOnWholeGamesInfo"
            params = orjson.loads(args[1])
            gtype, partner, count = params["GameType"], params["PartnerClientId"], params["Count"]
            self.world.current(gtype)
        except (AssertionError, IndexError, KeyError, TypeError, ValueError,
                orjson.JSONDecodeError) as e:
            self.log.append((s.id, "bad-subscribe", repr(e)))
            return
        if msg["target"] == "Subscribe":
            s.subs[gtype] = (partner, count)
            s.cursor[gtype] = 0
            if not self.interval:
                self._cycle(gtype, count)  # built once, before the first send
                self._drained.set()  # wake the blast loop
        else:
            s.subs.pop(gtype, None)
            s.cursor.pop(gtype, None)
        self.log.append((s.id, msg["target"].lower(), (gtype, partner, count)))
        if isinstance(msg.get("invocationId"), str):
            self._send(s, orjson.dumps({"type": 3, "invocationId": msg["invocationId"],
                                        "result": None}) + RS)

    def _next_sid(self, partner: int) -> int:
        sid = self.sids.get(partner, 0)
        fault, n = self._sid_faults.pop(0) if self._sid_faults else (None, 0)
        if fault == "skip":
            sid += n
        elif fault == "repeat":
            sid = max(0, sid - 1)
        elif fault == "reset":
            sid = 0
        self.sids[partner] = sid + 1
        return sid

    def _tick(self) -> None:
        types = {t for s in self._sessions.values() for t in s.subs}
        for t in sorted(types):
            self.world.tick(t)
        if not self._live():
            return
        for s in list(self._sessions.values()):
            if not s.handshaken or not s.subs or s.paused:
                continue
            frames = []
            for gtype, (partner, count) in sorted(s.subs.items()):
                msg = {"type": 1, "target": "WholeGamesInfoSubscribe",
                       "arguments": [self.world.payload(gtype, count, self._next_sid(partner))]}
                frames.append(orjson.dumps(msg) + RS)
                self.updates_sent += 1
            for frame in ([b"".join(frames)] if self.batch else frames):
                s.transport.send(WSMsgType.TEXT, frame)

    async def _update_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            if self.interval:
                next_at += self.interval
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                self._tick()
            else:  # blast: as fast as the sockets drain
                sent = False
                if self._live():
                    for s in list(self._sessions.values()):
                        if s.handshaken and s.subs and not s.paused:
                            self._blast(s)
                            sent = True
                await self._blast_pause(sent)
                next_at = loop.time()

    def _cycle(self, gtype: int, count: int) -> list[bytes]:
        cycle = self._cycles.get((gtype, count))
        if cycle is None:
            cycle = self._cycles[gtype, count] = blast_cycle(gtype, count, seed=self.seed)
        return cycle

    def _frame_heads(self, gtype: int, count: int, im: bytes, tail: int) -> list[bytes]:
        """The cycle's records as frame starts for sIds whose ``tail``
        (``sid}]}`` + 0x1E) has this length: WebSocket header, record up to ``"sId":``."""
        key = (gtype, count, im, tail)
        heads = self._heads.get(key)
        if heads is None:
            if len(self._heads) >= 8:
                self._heads.clear()
            extra = len(im) + 7 + tail
            heads = self._heads[key] = [
                _text_header(len(h) + extra) + h + im + b',"sId":'
                for h in self._cycle(gtype, count)]
        return heads

    def _blast(self, s: HubSession) -> None:
        """Write pre-encoded records to ``s`` until its transport pauses (at most
        ``BLAST_WRITES`` writes of about ``BLAST_RECORDS``), one record per frame, a run of
        each subscription's cycle in turn (with ``batch``: one record of each per frame),
        only the sId and ``im`` spliced in: per record, a cached frame start and
        ``b"%d}]}\\x1e" % sid``, so sIds stay contiguous in the order sent."""
        im = b"true" if self.world.maintenance else b"false"
        subs = sorted(s.subs.items())
        rounds = max(1, self.BLAST_RECORDS // len(subs))
        transport = s.transport.underlying_transport
        sids, cursor = self.sids, s.cursor
        for _ in range(self.BLAST_WRITES):
            parts: list[bytes] = []
            append = parts.append
            if self.batch and len(subs) > 1:
                for _ in range(rounds):
                    records = []
                    for gtype, (partner, count) in subs:
                        cycle = self._cycle(gtype, count)
                        k = cursor.get(gtype, 0)
                        cursor[gtype] = (k + 1) % len(cycle)
                        sid = self._next_sid(partner)
                        records.append(b'%s%s,"sId":%d}]}\x1e' % (cycle[k], im, sid))
                    append(_text_header(sum(map(len, records))))
                    parts.extend(records)
                sent = rounds * len(subs)
            else:
                for gtype, (partner, count) in subs:
                    k, heads, size = cursor.get(gtype, 0), None, 0
                    sid = sids.get(partner, 0)
                    for _ in range(rounds):
                        if self._sid_faults:
                            sids[partner] = sid
                            sid = self._next_sid(partner)
                        tail = b"%d}]}\x1e" % sid
                        if len(tail) != size:
                            size = len(tail)
                            heads = self._frame_heads(gtype, count, im, size)
                        append(heads[k])  # type: ignore[index]
                        append(tail)
                        k += 1
                        if k == len(heads):  # type: ignore[arg-type]
                            k = 0
                        sid += 1
                    sids[partner], cursor[gtype] = sid, k
                sent = rounds * len(subs)
            transport.writelines(parts)
            self.updates_sent += sent
            if s.paused or transport.is_closing():
                return

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            for s in list(self._sessions.values()):
                if s.handshaken:
                    self._send(s, b'{"type":6}' + RS)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interval", type=float, default=0.5,
                   help="seconds per update (paced; e.g. 0.001 for latency runs); 0: blast "
                        "pre-encoded records as fast as the socket drains")


def _make(args: argparse.Namespace) -> BetcoreSimulator:
    sim = BetcoreSimulator(interval=args.interval, port=args.port)
    print(f"TOKEN {sim.token()}", flush=True)
    return sim


def main() -> None:
    """``python -m oddswire.sim.betcore [--interval S]``."""
    serve_main("python -m oddswire.sim.betcore", _make, _configure)


if __name__ == "__main__":
    main()
