"""DATA.BET log application: OddsTable.apply_many vs its twin and vs orjson + dicts.

The stream is the issue's realistic mix from ``DatabetWorld``: 500 events x 5-40 markets x
2-4 odds, ~70% ``markets_updated`` lines of ~900 B, plus bet stops, fixtures, scores and
occasional re-snapshots. Each library starts from the same snapshot and applies the same
20k log lines; the benchmark checks that all end with the same odds.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from conftest import scale
from oddswire import reference
from oddswire.databet import OddsTable
from oddswire.sim.databet_world import DatabetWorld

_world = DatabetWorld(seed=11, events=500, markets=(5, 40), odds=(2, 4))
SNAPSHOT = _world.snapshot_lines()
LINES = _world.lines(scale(20_000))
NBYTES = sum(map(len, LINES))


def _table_state(t: Any) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    out = {}
    for r in range(t.rows):
        k = t.key(r)
        if k is not None:
            v, p, s, a = t.get(*k)
            out[k] = (v, None if math.isnan(p) else p, s, a, t.is_bettable(*k))
    return out


def _run_table(cls: Any) -> Any:
    t = cls()
    t.apply_many(SNAPSHOT)

    def run() -> Any:
        t.apply_many(LINES)
        return t
    return run


class DictBook:
    """What a bot writes by hand: orjson.loads each line into dicts of dicts."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.version = ""

    def apply(self, raw: bytes) -> None:
        self.apply_log(orjson.loads(raw))

    def apply_log(self, log: dict[str, Any]) -> None:
        kind, pl = log["event_type"], log.get("payload")
        if kind == "heartbeat":
            return
        self.version = log["version"]
        sid = log["sport_event_id"]
        if kind in ("sport_event_snapshot", "sport_event_added"):
            self.events[sid] = {
                "status": pl["fixture"]["status"], "bet_stop": pl.get("bet_stop", False),
                "fixture": pl["fixture"], "markets": {m["id"]: self._market(m)
                                                      for m in pl["markets"]}}
            return
        ev = self.events.get(sid)
        if ev is None:
            return
        if kind == "markets_updated":
            for m in pl:
                ev["markets"][m["id"]] = self._market(m)
        elif kind == "bet_stop_updated":
            ev["bet_stop"] = pl["bet_stop"]
        elif kind == "fixture_updated":
            ev["fixture"], ev["status"] = pl, pl["status"]
        elif kind == "competitor_scores_updated":
            ev["scores"] = pl
        elif kind == "game_state_updated":
            ev["game_state"] = pl

    @staticmethod
    def _market(m: dict[str, Any]) -> dict[str, Any]:
        return {"status": m["status"], "odds": {
            o["id"]: (float(o["value"]),
                      float(o["probability"]) if "probability" in o else None,
                      o["status"], o["is_active"]) for o in m["odds"]}}

    def apply_many(self, lines: list[bytes]) -> None:
        for raw in lines:
            self.apply(raw)


def _dict_state(book: DictBook) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    out = {}
    for sid, ev in book.events.items():
        open_ = ev["status"] in (0, 1) and not ev["bet_stop"]
        for mid, m in ev["markets"].items():
            for oid, (v, p, s, a) in m["odds"].items():
                out[(sid, mid, oid)] = (v, p, s, a, open_ and m["status"] == 0 and s == 0 and a)
    return out


_expected_book = DictBook()
_expected_book.apply_many(SNAPSHOT)
_expected_book.apply_many(LINES)
EXPECTED = _dict_state(_expected_book)

CASES = [
    ("oddswire OddsTable.apply_many", "oddswire", _run_table(OddsTable), _table_state),
    ("reference twin OddsTable", "twin", _run_table(reference.OddsTable), _table_state),
    ("orjson.loads + dict of dicts", "peer", _run_table(DictBook), _dict_state),
]


@pytest.mark.parametrize(("library", "kind", "fn", "state"), CASES, ids=[c[0] for c in CASES])
def test_apply_log_stream(bench, library, kind, fn, state):
    bench("DATA.BET log lines -> odds table (20k lines, ~900 B)", library, kind, fn,
          nbytes=NBYTES, units=len(LINES), unit="lines", result=state, expected=EXPECTED)
