"""Record and replay (oddswire.record, oddswire.replay): each of the five simulators is
recorded by the live client on 127.0.0.1 with ``record=``, replayed into a fresh client
configured the same way, and the replay gives the same tables and the same events in the
same order; both event loops, plain and zstd recordings."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netutil import LOOPS, run, wait_until
from oddswire.betcore import BetcoreClient
from oddswire.broker import BrokerClient
from oddswire.client import FeedClient, ReconnectPolicy
from oddswire.databet import DatabetClient
from oddswire.record import Reader
from oddswire.replay import Replayer
from oddswire.satoriex import SatoriexClient
from oddswire.sim.betcore import BetcoreSimulator
from oddswire.sim.broker import BrokerSimulator
from oddswire.sim.databet import DatabetSimulator
from oddswire.sim.satoriex import SatoriexSimulator
from oddswire.sim.tech55 import Tech55Simulator
from oddswire.tech55 import Tech55Client

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)
M1 = "mkt_abc123"
_ADDR = re.compile(r" at 0x[0-9a-f]+")


def _norm(v: Any, depth: int = 0) -> Any:
    """A comparable form: scalars as they are, containers and objects by their contents
    (their public attributes), never by identity."""
    if isinstance(v, BaseException):
        return (type(v).__name__, str(v))
    if v is None or isinstance(v, (int, float, str, bytes, bool)):
        return v
    if isinstance(v, np.ndarray | np.generic):
        return v.tolist()
    if depth > 4:
        return _ADDR.sub("", repr(v))
    if isinstance(v, (list, tuple)):
        return tuple(_norm(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((str(k), _norm(x, depth + 1)) for k, x in v.items()))
    attrs = [a for a in dir(v) if not a.startswith("_")]
    return (type(v).__name__, tuple(
        (a, _norm(x, depth + 1)) for a in attrs
        if not callable(x := getattr(v, a, None))))


def capture(client: FeedClient) -> list[tuple[str, Any]]:
    """Every event the client emits, in order, with its arguments (normalised)."""
    seen: list[tuple[str, Any]] = []
    for name in sorted(client.EVENTS):
        client.on(name, lambda *a, _n=name: seen.append((_n, _norm(a))))
    return seen


# --- the five feeds: simulator, client, "enough traffic", the state to compare ----------

def broker_client(url: str, **kw: Any) -> BrokerClient:
    return BrokerClient(url, token=kw.pop("token"), account=2000009,
                        symbols=["eurusd", "xauusd"], reconnect=FAST, **kw)


def broker_state(c: Any) -> Any:
    b = c.book
    return (list(b.symbols), b.bid.tolist(), b.ask.tolist(), b.ts.tolist())


def databet_state(c: Any) -> Any:
    """Version, events and every live odd by its key (free rows hold nothing to compare)."""
    t = c.table
    cols = [t.odds[n].tolist() for n in ("value", "probability", "status", "is_active")]
    odds = {}
    for row in range(len(cols[0])):
        key = t.key(row)
        if key is not None:
            odds[key] = tuple(c[row] for c in cols)
    return (t.version, len(t), t.event_count, sorted(t.sport_event_ids()), sorted(odds.items()))


def betcore_state(c: Any) -> Any:
    t = c.table
    return (t.sid, t.tst, sorted(t.game_ids()), [_norm(t.game(g)) for g in sorted(t.game_ids())])


def satoriex_state(c: Any) -> Any:
    md = c.market_data
    return [(m, _norm(md.get(m)), md.seq(m) if callable(md.seq) else None)
            for m in sorted(md.market_ids())]


def tech55_state(c: Any) -> Any:
    return (_norm(c.session), c.sequence.last if hasattr(c, "sequence") else None)


FEEDS: dict[str, dict[str, Any]] = {
    "broker": {
        "sim": lambda: BrokerSimulator(rate=300, customers={7: [2000009]}),
        "client": lambda sim, **kw: broker_client(sim.url, token=sim.signer.customer(7), **kw),
        "enough": lambda c, seen: sum(1 for e in seen if e[0] == "quote") > 150,
        "state": broker_state,
    },
    "databet": {
        "sim": lambda: DatabetSimulator(seed=3, events=20, rate=1500, chunk=(1, 1500)),
        "client": lambda sim, **kw: DatabetClient(sim.url, heartbeat_interval=1, reconnect=FAST,
                                                  **kw),
        "enough": lambda c, seen: sum(1 for e in seen if e[0] == "log") > 300,
        "state": databet_state,
    },
    "betcore": {
        "sim": lambda: BetcoreSimulator(interval=0.02),
        "client": lambda sim, **kw: BetcoreClient(sim.url, access_token=sim.token(),
                                                  partner_client_id=1, reconnect=FAST, **kw),
        "enough": lambda c, seen: sum(1 for e in seen if e[0] == "games") > 30,
        "state": betcore_state,
    },
    "satoriex": {
        "sim": lambda: SatoriexSimulator(interval=0.002),
        "client": lambda sim, **kw: SatoriexClient(sim.url, token=sim.token(), markets=[M1],
                                                   marketdata=[M1], reconnect=FAST, **kw),
        "enough": lambda c, seen: sum(1 for e in seen if e[0] in ("price", "book")) > 200,
        "state": satoriex_state,
    },
    "tech55": {
        "sim": lambda: Tech55Simulator(rate=400),
        "client": lambda sim, **kw: Tech55Client(sim.url, api_key=sim.api_key, reliable=True,
                                                 reconnect=FAST, **kw),
        "enough": lambda c, seen: sum(1 for e in seen if e[0] in ("orders", "bets")) > 150,
        "state": tech55_state,
    },
}


async def record_live(feed: str, path: Path) -> tuple[list[tuple[str, Any]], Any, Any]:
    spec = FEEDS[feed]
    async with spec["sim"]() as sim:
        client = spec["client"](sim, record=path)
        seen = capture(client)
        task = asyncio.ensure_future(client.run())
        await wait_until(lambda: spec["enough"](client, seen) or task.done(),
                         what=f"{feed} traffic")
        await client.stop()
        await asyncio.wait_for(task, 10)
        return seen, spec["state"](client), sim


async def replay_into_fresh(feed: str, path: Path, sim: Any,
                            **kw: Any) -> tuple[list[tuple[str, Any]], Any, Any]:
    spec = FEEDS[feed]
    client = spec["client"](sim)
    seen = capture(client)
    report = await Replayer(path, client=client, **kw).run()
    return seen, spec["state"](client), report


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_replay_gives_the_live_tables_and_events(feed: str, loop: str,
                                                 tmp_path: Path) -> None:
    path = tmp_path / f"{feed}.owrec"

    async def main() -> None:
        live_events, live_state, sim = await record_live(feed, path)
        events, state, report = await replay_into_fresh(feed, path, sim)
        assert report.frames + report.http_reads > 0
        assert report.skipped == 0 and report.desyncs == 0 and not report.torn_tail
        if feed != "databet":  # the client did talk; nothing left the process
            assert report.unsent_bytes > 0
        assert [e[0] for e in events] == [e[0] for e in live_events]
        assert events == live_events
        assert state == live_state
    run(loop, main)


def test_speed_paces_the_replay(tmp_path: Path) -> None:
    path = tmp_path / "b.owrec"

    async def main() -> None:
        live_events, live_state, sim = await record_live("broker", path)
        with Reader(path) as r:
            stamps = [rec.ts_ns for rec in r]
        recorded = (stamps[-1] - stamps[0]) / 1e9
        events, state, report = await replay_into_fresh("broker", path, sim, speed=4.0)
        assert events == live_events and state == live_state
        assert report.elapsed >= recorded / 4 * 0.9
    run("uvloop", main)


def test_replay_without_a_client_builds_one_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "s.owrec"

    async def main() -> None:
        _, live_state, _ = await record_live("satoriex", path)
        replayer = Replayer(path)
        assert isinstance(replayer.client, SatoriexClient)
        assert replayer.client.url.split("?")[0] == replayer.header.meta["where"]
        await replayer.run()
        assert satoriex_state(replayer.client) == live_state
    run("asyncio", main)
