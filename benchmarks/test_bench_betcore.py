"""BETCORE WholeGamesInfoSubscribe records (~1-2 KB): framing + decode + games-table update,
oddswire (Cython RecordSplitter + Rust GamesTable) vs pysignalr's JSON protocol parse and
``split(b"\\x1e") + orjson.loads`` into dict state, and the pure-Python twin; same frames,
same final coefficients checked.

The frames churn like the live hub: three game types, games cycling from betting through
dealing to finished and replaced, coefficients drifting, blocks toggling, two records in one
frame now and then.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
import orjson
import pytest
from pysignalr.protocol.json import JSONProtocol

from conftest import scale
from oddswire import reference
from oddswire.betcore import GamesTable
from oddswire.codec import RecordSplitter
from oddswire.sim.betcore import BetcoreWorld

RS = b"\x1e"


def _frames(n: int = scale(6000)) -> list[bytes]:
    world = BetcoreWorld(seed=7, betting_ticks=12, finished_ticks=2)
    rng = random.Random(7)
    frames: list[bytes] = []
    pending = b""
    for i in range(n):
        gtype = (1, 3, 6)[i % 3]
        world.tick(gtype)
        record = orjson.dumps({"type": 1, "target": "WholeGamesInfoSubscribe",
                               "arguments": [world.payload(gtype, 1, i)]}) + RS
        if rng.random() < 0.2 and not pending:  # two records in one frame now and then
            pending = record
            continue
        frames.append(pending + record)
        pending = b""
    return frames


FRAMES = _frames()
NBYTES = sum(map(len, FRAMES))
RECORDS = sum(f.count(RS) for f in FRAMES)


def _apply_dict(state: dict[int, dict[int, tuple[float, bool]]], msg: dict[str, Any]) -> None:
    if msg.get("type") == 1 and msg.get("target") == "WholeGamesInfoSubscribe":
        for g in msg["arguments"][0]["wgi"]:
            state[g["i"]] = {e["t"]: (float(e["c"]), e["b"]) for e in g["e"]}


def split_orjson() -> dict[int, dict[int, tuple[float, bool]]]:
    state: dict[int, dict[int, tuple[float, bool]]] = {}
    for f in FRAMES:
        for r in f.split(RS)[:-1]:
            _apply_dict(state, orjson.loads(r))
    return state


def split_msgspec() -> dict[int, dict[int, tuple[float, bool]]]:
    state: dict[int, dict[int, tuple[float, bool]]] = {}
    decode = msgspec.json.decode
    for f in FRAMES:
        for r in f.split(RS)[:-1]:
            _apply_dict(state, decode(r))
    return state


def pysignalr_parse() -> dict[int, dict[int, tuple[float, bool]]]:
    proto = JSONProtocol()
    state: dict[int, dict[int, tuple[float, bool]]] = {}
    for f in FRAMES:
        for m in proto.decode(f):
            if getattr(m, "target", None) == "WholeGamesInfoSubscribe":
                for g in m.arguments[0]["wgi"]:  # type: ignore[attr-defined]
                    state[g["i"]] = {e["t"]: (float(e["c"]), e["b"]) for e in g["e"]}
    return state


def _ours(table_cls: Any, splitter_cls: Any) -> Any:
    def run() -> Any:
        table, splitter = table_cls(), splitter_cls()
        for f in FRAMES:
            for r in splitter.feed(f):
                table.apply(r)
        return table
    return run


def _table_state(table: Any) -> dict[int, dict[int, tuple[float, bool]]]:
    return {i: {e[0]: (e[1], e[2]) for e in table.game(i).events} for i in table.game_ids()}


EXPECTED = split_orjson()
LIBRARIES = [
    ("oddswire RecordSplitter + GamesTable.apply", "oddswire",
     _ours(GamesTable, RecordSplitter), _table_state),
    ("reference twin", "twin", _ours(reference.GamesTable, reference.RecordSplitter),
     _table_state),
    ("split + orjson.loads + dict state", "peer", split_orjson, lambda s: s),
    ("split + msgspec.json.decode + dict state", "peer", split_msgspec, lambda s: s),
    ("pysignalr JSONProtocol.decode + dict state", "peer", pysignalr_parse, lambda s: s),
]


@pytest.mark.parametrize(("library", "kind", "fn", "state"), LIBRARIES,
                         ids=[c[0] for c in LIBRARIES])
def test_games_records_into_a_table(bench: Any, library: str, kind: str, fn: Any,
                                    state: Any) -> None:
    bench(f"BETCORE records -> games table ({RECORDS} records, {len(FRAMES)} frames)",
          library, kind, fn, nbytes=NBYTES, units=RECORDS, unit="records", result=state,
          expected=EXPECTED, rounds=5)
