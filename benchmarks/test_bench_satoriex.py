"""SatoriEx market data (price_update + orderbook deltas, ~100-200 B each): decode + prices
+ order books per message, in process (no socket), the same frames for every library and
the same final books checked against the simulator's worlds.

oddswire: ``SatoriexClient``'s frame handler (Rust ``MarketData.apply`` from the bytes, the
``price`` / ``book`` scalar events dispatched); the pure-Python twin; ``orjson.loads`` +
dict/bisect books (what a picows + orjson bot does per frame); ``json.loads`` + the same
(what the spec's websockets + json loop does). Not yet: the end-to-end run over loopback.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from typing import Any

import msgspec
import orjson
import pytest

from conftest import scale
from oddswire import reference
from oddswire.satoriex import SatoriexClient
from oddswire.sim.satoriex import blast_frames

FRAMES, WORLDS = blast_frames(scale(60_000))
NBYTES = sum(map(len, FRAMES))
EXPECTED = {m: tuple(map(lambda a: a.tolist(), w.levels())) for m, w in WORLDS.items()}


def _dict_books(loads: Callable[[bytes], Any]) -> Callable[[], Any]:
    def run() -> Any:
        books: dict[str, tuple[list[list[float]], list[list[float]]]] = {}
        prices: dict[str, tuple[float, float, float, int]] = {}
        seqs: dict[str, int] = {}
        for f in FRAMES:
            msg = loads(f)
            kind, m = msg["type"], msg["market_id"]
            if kind == "price_update":
                prices[m] = (msg["mid"], msg["best_bid"], msg["best_ask"], msg["ts"])
                continue
            if kind != "orderbook":
                continue
            if msg.get("snapshot"):
                books[m] = ([], [])
            elif seqs.get(m, msg["seq"] - 1) + 1 != msg["seq"]:
                raise AssertionError("gap")
            seqs[m] = msg["seq"]
            for side, levels, sign in ((books[m][0], msg.get("bids", ()), -1),
                                       (books[m][1], msg.get("asks", ()), 1)):
                for price, size in levels:
                    i = bisect.bisect_left(side, sign * price, key=lambda lv, s=sign: s * lv[0])
                    if i < len(side) and side[i][0] == price:
                        if size == 0:
                            del side[i]
                        else:
                            side[i][1] = size
                    elif size:
                        side.insert(i, [price, size])
        return books
    return run


def _ours() -> Any:
    client = SatoriexClient("ws://127.0.0.1:1/ws", token="t.t.t",
                            marketdata=sorted(WORLDS))
    client.on("price", lambda market, mid, bid, ask, ts: None)
    client.on("book", lambda market, seq: None)
    handler = client._on_frame
    for f in FRAMES:
        handler(f)
    return client


def _twin() -> Any:
    md = reference.MarketData()
    for f in FRAMES:
        md.apply(f)
    return md


def _state_md(md: Any) -> Any:
    md = getattr(md, "market_data", md)
    return {m: (md.bids(m).tolist(), md.asks(m).tolist()) for m in WORLDS}


def _state_dict(books: Any) -> Any:
    return {m: (b, a) for m, (b, a) in books.items()}


LIBRARIES = [
    ("oddswire SatoriexClient frame handler (Rust MarketData)", "oddswire", _ours, _state_md),
    ("reference twin", "twin", _twin, _state_md),
    ("orjson.loads + dict/bisect books (picows + orjson)", "peer", _dict_books(orjson.loads),
     _state_dict),
    ("json.loads + dict/bisect books (websockets + json)", "peer", _dict_books(json.loads),
     _state_dict),
    ("msgspec.json.decode + dict/bisect books", "peer", _dict_books(msgspec.json.decode),
     _state_dict),
]


@pytest.mark.parametrize(("library", "kind", "fn", "state"), LIBRARIES,
                         ids=[c[0] for c in LIBRARIES])
def test_market_data_into_books(bench: Any, library: str, kind: str, fn: Any,
                                state: Any) -> None:
    bench(f"SatoriEx price_update + orderbook deltas -> prices + books ({len(FRAMES)} "
          "messages, in process)", library, kind, fn, nbytes=NBYTES, units=len(FRAMES),
          unit="messages", result=state, expected={m: tuple(v) for m, v in EXPECTED.items()},
          rounds=3)
