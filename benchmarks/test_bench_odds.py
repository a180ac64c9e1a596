"""DATA.BET log application: OddsTable.apply_many vs its twin and vs orjson + dicts.

Two streams from ``DatabetWorld``, both the production mix (~70% ``markets_updated`` lines of
~900 B, plus bet stops, fixtures, scores and occasional re-snapshots) over 5-40 markets x 2-4
odds per event:

- stable: 500 events whose markets keep their shapes (the original benchmark);
- churning: 2,000 events, ``churn=True``: updates change a market's odd count and specifiers,
  re-snapshots bring all-new market ids, a third of odds lack ``probability`` or ``template``.

Each library starts from the same snapshot and applies the same 20k log lines (again each
round: the end state is the same after every round); the benchmark checks that all end with
the same odds. The garbage collector stays on, as users run it.
"""

from __future__ import annotations

import gc
import math
from typing import Any

import orjson
import pytest

from conftest import scale
from oddswire import reference
from oddswire.databet import OddsTable
from oddswire.sim.databet_world import DatabetWorld


def _stream(churn: bool, events: int) -> tuple[list[bytes], list[bytes]]:
    world = DatabetWorld(seed=11, events=events, markets=(5, 40), odds=(2, 4), churn=churn)
    return world.snapshot_lines(), world.lines(scale(20_000))


STREAMS = {"stable": _stream(False, 500), "churning": _stream(True, 2000)}


def _table_state(t: Any) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    out = {}
    for r in range(t.rows):
        k = t.key(r)
        if k is not None:
            v, p, s, a = t.get(*k)
            out[k] = (v, None if math.isnan(p) else p, s, a, t.is_bettable(*k))
    return out


def _run_table(cls: Any, stream: str, **options: Any) -> Any:
    snapshot, lines = STREAMS[stream]
    t = cls()
    t.apply_many(snapshot)

    def run() -> Any:
        t.apply_many(lines, **options)
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


def _expected(stream: str) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    book = DictBook()
    for lines in STREAMS[stream]:
        book.apply_many(lines)
    return _dict_state(book)


EXPECTED = {name: _expected(name) for name in STREAMS}
_N = f"{len(STREAMS['stable'][1]):,} lines"
GROUPS = {
    "stable": f"DATA.BET log lines -> odds table (500 events, stable shapes, {_N})",
    "churning": f"DATA.BET log lines -> odds table (2,000 events, churning shapes, {_N})",
}
LIBRARIES: list[tuple[str, str, Any, Any, dict[str, Any]]] = [
    ("oddswire OddsTable.apply_many", "oddswire", OddsTable, _table_state, {}),
    ("oddswire OddsTable.apply_many(results=False)", "oddswire", OddsTable, _table_state,
     {"results": False}),
    ("reference twin OddsTable", "twin", reference.OddsTable, _table_state, {}),
    ("orjson.loads + dict of dicts", "peer", DictBook, _dict_state, {}),
]
CASES = [(stream, *lib) for stream in STREAMS for lib in LIBRARIES]


@pytest.mark.parametrize(("stream", "library", "kind", "cls", "state", "options"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_apply_log_stream(bench, stream, library, kind, cls, state, options):
    lines = STREAMS[stream][1]
    gc.collect()  # each library starts without the garbage of the one before
    bench(GROUPS[stream], library, kind, _run_table(cls, stream, **options),
          nbytes=sum(map(len, lines)), units=len(lines), unit="lines", result=state,
          expected=EXPECTED[stream])
