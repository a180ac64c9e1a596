"""A seeded, realistic DATA.BET world: sport events, markets, odds, and the log lines
(one JSON object per line, exactly the spec's shapes) that move it forward.

Deterministic for a seed, so benchmarks, property tests and the simulator replay the same
traffic. Versions are fixed-width base62 strings that ascend, like the real feed's.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["DatabetWorld", "encode_version"]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MARKET_TYPES = [(1, ""), (18, "total={t}"), (16, "hcp={h}"), (20, ""), (201, ""),
                 (240, "hcp={t}"), (589, "halfnr=1&total={t}"), (103, "hcp={h}")]
_SPORTS = ["football", "tennis", "basketball", "esports_counter_strike", "esports_dota_2"]
_TEAMS = ["AD Confianca", "Ypiranga FC", "MSK Zilina", "TSC Backa Topola", "Natus Vincere",
          "Team Spirit", "Real Betis", "Boca Juniors", "FC Porto", "Olympiacos"]
ROLLBACK_REASONS = ["after_goal", "technical_error_in_coefficient", "match_was_canceled"]


def encode_version(n: int, width: int = 22) -> str:
    """Fixed-width base62: ascending integers give ascending strings."""
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out))


@dataclass
class _Event:
    sport_event_id: str
    sport_id: str
    fixture: dict[str, Any]
    markets: dict[str, dict[str, Any]] = field(default_factory=dict)
    bet_stop: bool = False
    scores: list[dict[str, Any]] = field(default_factory=list)
    game_state: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


class DatabetWorld:
    """The feed's state plus a generator of log lines that evolve it.

    ``snapshot_lines()`` is what ``GET /all`` streams; ``next_line()`` one log of the
    ``GET /log`` stream, with roughly the production mix (70% ``markets_updated``).

    ``churn=True`` makes the shapes move as production's do: a market in ``markets_updated``
    often comes back with another number of odds (within ``odds``) and other specifiers, a
    ``sport_event_added`` brings all-new market ids, and about a third of odds come without
    ``probability`` or without ``template``. Off, shapes stay stable (the default, which the
    replication tests and the simulator rely on).
    """

    def __init__(self, seed: int = 1, events: int = 500, markets: tuple[int, int] = (5, 40),
                 odds: tuple[int, int] = (2, 4), clock: Any = time.time_ns,
                 churn: bool = False) -> None:
        self.rng = random.Random(seed)
        self.clock = clock
        self.churn = churn
        self._generation = 0  # bumped per churned re-snapshot: suffix of its new market ids
        self.counter = 62**12  # versions start well into the width, like the real ones
        self.market_range = markets
        self.odds_range = odds
        self.events: dict[str, _Event] = {}
        self._keys: list[str] = []
        self.version = encode_version(self.counter)
        for _ in range(events):
            self._add_event()

    # --- world building --------------------------------------------------------------

    def _uuid(self) -> str:
        r = self.rng.getrandbits
        return f"{r(32):08x}-{r(16):04x}-4{r(12):03x}-{0x8000 | r(14):04x}-{r(48):012x}"

    def _market(self, index: int, suffix: str = "") -> dict[str, Any]:
        rng = self.rng
        type_id, spec = _MARKET_TYPES[index % len(_MARKET_TYPES)]
        line = index // len(_MARKET_TYPES)
        spec = spec.format(t=f"{line + 0.5}", h=f"{line - 2.5}")
        mid = (f"{type_id}" if not spec else f"{type_id}h{index}_{line}") + suffix
        odds = self._odds(rng.randint(*self.odds_range))
        return {"id": mid, "status": 0 if rng.random() > 0.1 else 1, "odds": odds,
                "type_id": type_id, "specifiers": spec}

    def _odds(self, n: int, first_id: int = 1) -> list[dict[str, Any]]:
        rng = self.rng
        probs = [rng.random() + 0.05 for _ in range(n)]
        total = sum(probs)
        odds = []
        for j, p in enumerate(probs):
            p /= total
            odd: dict[str, Any] = {
                "id": str(j + first_id),
                "value": f"{max(1.01, 0.95 / p):.2f}",
                "probability": f"{p:.4f}",
                "status": 0,
                "template": ["{$competitor1}", "draw", "{$competitor2}", "Over", "Under"][j % 5],
                "is_active": rng.random() > 0.05,
            }
            if self.churn:
                if rng.random() < 1 / 3:
                    del odd["probability"]
                if rng.random() < 1 / 3:
                    del odd["template"]
            odds.append(odd)
        return odds

    def _reshape(self, m: dict[str, Any]) -> None:
        """A churned market update: another number of odds, other specifiers, and odd ids
        that partly move (a line shift renumbers some outcomes)."""
        rng = self.rng
        m["odds"] = self._odds(rng.randint(*self.odds_range), first_id=rng.choice((1, 1, 2, 3)))
        if m["specifiers"]:
            key = m["specifiers"].rsplit("=", 1)[0]
            m["specifiers"] = f"{key}={rng.randint(0, 12) + 0.5}"

    def _fixture(self, sport_id: str, status: int) -> dict[str, Any]:
        home, away = self.rng.sample(_TEAMS, 2)
        return {
            "type": 0, "status": status, "streams": [], "sport_id": sport_id,
            "template": "{$competitor1} vs {$competitor2}",
            "tournament": {"id": f"gin:{self._uuid()}", "name": "Premier League 2026/2027"},
            "competitors": [
                {"id": f"gin:{self._uuid()}", "name": home, "side": "home", "type": 2,
                 "template_position": 1},
                {"id": f"gin:{self._uuid()}", "name": away, "side": "away", "type": 2,
                 "template_position": 2},
            ],
            "live_coverage": True, "start_time_ns": self.clock(), "updated_at_ns": self.clock(),
        }

    def _add_event(self) -> _Event:
        rng = self.rng
        sport = rng.choice(_SPORTS)
        ev = _Event(self._uuid(), sport, self._fixture(sport, rng.choice((0, 1, 1, 1))))
        for i in range(rng.randint(*self.market_range)):
            m = self._market(i)
            ev.markets[m["id"]] = m
        ev.scores = self._scores(ev)
        ev.game_state = {"bo": 1, "time": "0", "period": "period_1st_half",
                         "match_format": "live", "period_number": 1, "timer_running": True}
        ev.extensions = {"app.data.bet/widget": {"types": ["pitch_tracker", "scoreboard"]}}
        self.events[ev.sport_event_id] = ev
        return ev

    def _scores(self, ev: _Event) -> list[dict[str, Any]]:
        return [
            {"scores": [{"id": "total", "type": "total", "number": 0,
                         "points": str(self.rng.randint(0, 5))}],
             "competitor_id": c["id"], "side": c["side"]}
            for c in ev.fixture["competitors"]
        ]

    # --- lines -----------------------------------------------------------------------

    def _next_version(self) -> str:
        self.counter += self.rng.randint(1, 50)
        self.version = encode_version(self.counter)
        return self.version

    def _log(self, ev: _Event, event_type: str, payload: Any, version: str | None = None) -> bytes:
        return orjson.dumps({
            "sport_event_id": ev.sport_event_id, "sport_id": ev.sport_id,
            "version": version or self._next_version(), "timestamp_ns": self.clock(),
            "event_type": event_type, "payload": payload,
        })

    def snapshot_payload(self, ev: _Event) -> dict[str, Any]:
        return {"fixture": ev.fixture, "markets": list(ev.markets.values()),
                "bet_stop": ev.bet_stop, "game_state": ev.game_state,
                "competitors_score": ev.scores, "extensions": ev.extensions}

    def snapshot_lines(self) -> list[bytes]:
        """Every sport event as a ``sport_event_snapshot`` line (what ``GET /all`` sends),
        all at the world's current version (the ``Last-Version`` of that ``/all``)."""
        return [self._log(ev, "sport_event_snapshot", self.snapshot_payload(ev), self.version)
                for ev in list(self.events.values())]

    def heartbeat(self) -> bytes:
        return orjson.dumps({"event_type": "heartbeat", "timestamp_ns": self.clock()})

    def next_line(self) -> bytes:
        """One log that moves the world forward, in roughly the production mix."""
        rng = self.rng
        ev = self.events[rng.choice(list(self.events)) if len(self.events) < 64
                         else self._pick_key()]
        roll = rng.random()
        if roll < 0.70:
            chosen = rng.sample(list(ev.markets), min(len(ev.markets), rng.randint(1, 3)))
            for mid in chosen:
                m = ev.markets[mid]
                if self.churn and rng.random() < 0.4:
                    self._reshape(m)
                for odd in m["odds"]:
                    odd["value"] = f"{max(1.01, float(odd['value']) * rng.uniform(0.95, 1.05)):.2f}"
                    odd["is_active"] = rng.random() > 0.03
                m["status"] = 0 if rng.random() > 0.05 else 1
            if rng.random() < 0.05:  # a market drops an odd or a new market appears
                m = self._market(len(ev.markets) + rng.randint(0, 50))
                ev.markets[m["id"]] = m
                chosen.append(m["id"])
            return self._log(ev, "markets_updated", [ev.markets[mid] for mid in chosen])
        if roll < 0.78:
            ev.bet_stop = not ev.bet_stop
            return self._log(ev, "bet_stop_updated", {"bet_stop": ev.bet_stop})
        if roll < 0.85:
            ev.scores = self._scores(ev)
            return self._log(ev, "competitor_scores_updated", ev.scores)
        if roll < 0.91:
            ev.game_state = dict(ev.game_state, time=str(rng.randint(0, 5_400_000)))
            return self._log(ev, "game_state_updated", ev.game_state)
        if roll < 0.95:
            ev.fixture = dict(ev.fixture, status=rng.choice((0, 1, 1, 2)),
                              updated_at_ns=self.clock())
            return self._log(ev, "fixture_updated", ev.fixture)
        if roll < 0.97:
            return self._log(ev, "extensions_updated", ev.extensions)
        if roll < 0.98:
            mid = rng.choice(list(ev.markets))
            m = ev.markets[mid]
            return self._log(ev, "bets_rollback", {
                "markets": [{"id": mid, "type_id": m["type_id"], "specifiers": m["specifiers"]}],
                "reason": rng.choice(ROLLBACK_REASONS),
                "dt_start": "2026-11-21T10:00:00Z", "dt_end": "2026-11-21T10:01:00Z"})
        # occasional re-snapshot: a market disappears, as after a refetch
        if len(ev.markets) > 1:
            del ev.markets[rng.choice(list(ev.markets))]
        if self.churn:  # the event comes back with all-new market ids
            self._generation += 1
            n = len(ev.markets)
            ev.markets = {}
            for i in range(n):
                m = self._market(i, suffix=f"g{self._generation}")
                ev.markets[m["id"]] = m
        return self._log(ev, "sport_event_added", self.snapshot_payload(ev))

    def _pick_key(self) -> str:
        # random.choice over a dict's keys without building a list per line
        if len(self._keys) != len(self.events):
            self._keys = list(self.events)
        return self._keys[self.rng.randrange(len(self._keys))]

    def lines(self, n: int) -> list[bytes]:
        return [self.next_line() for _ in range(n)]
