"""BETCORE games hub end to end on loopback: records/s delivered to a Python callback, and
server-stamp -> callback latency, for BetcoreClient against peers in the same run.

The simulator runs in its own process (``python -m oddswire.sim.betcore``), so server and
client each have a core. Throughput: blast mode (``--interval 0``) replays, from each
session's start, a pre-encoded cycle of ~4,100 churning ``WholeGamesInfoSubscribe`` records
of one poker game type (~1.6 KB, one record per frame; games cycling through betting,
dealing and finished; coefficients drifting) with the per-partner ``sId`` spliced in, as
fast as the socket drains. Every library connects with ``?access_token=``, handshakes,
subscribes (game type 3, partner 1) and delivers N records to the same callback
``on_update(sid, tst_ns)``, which counts and checks that sIds are contiguous; after exactly
N records the coefficients of the games in the last records must equal what those records
say (computed here from the same cycle, :func:`oddswire.sim.betcore.blast_cycle`). Latency:
a paced server (``--interval 0.001``) stamps ``tst`` (ISO, 100 ns) at each update; the
callback samples ``time.time_ns() - tst``.

Libraries: oddswire ``BetcoreClient`` (picows + Cython listener + Rust ``GamesTable``,
``games`` callback after the table is updated); picows + ``bytes.split(b"\\x1e")`` +
``orjson.loads`` + dict state in a hand-written ``WSListener`` (the best peer, usually);
``websockets`` + the same split/orjson/dict code; pysignalr (``SignalRClient``, its JSON
protocol and coroutine handlers, negotiation skipped: a picows server cannot serve POST);
and picows counting frames without decoding (the ceiling, bounded by the simulator too).
"""

from __future__ import annotations

import asyncio
import calendar
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from picows import WSListener, WSMsgType, WSTransport, ws_connect
from pysignalr.client import SignalRClient
from websockets.asyncio.client import connect

from conftest import record_latency, scale
from oddswire.betcore import BetcoreClient
from oddswire.sim.betcore import blast_cycle
from simproc import drive, simulator_process

N = scale(100_000)
LATENCY_N = scale(3_000, 1_000)  # 3 s at the paced simulator's 1 ms
LATENCY_SKIP = scale(300)  # connection warm-up, not sampled
GAME_TYPE, PARTNER = 3, 1
LAST = 200  # agreement: the games of the last LAST records (many games, all retained)
RS = b"\x1e"
HANDSHAKE = b'{"protocol":"json","version":1}' + RS
PARAMS = f'{{"GameType":{GAME_TYPE},"PartnerClientId":{PARTNER},"Count":1}}'
SUBSCRIBE = orjson.dumps({"arguments": ["SubOnWholeGamesInfo", PARAMS], "target": "Subscribe",
                          "type": 1}) + RS

State = dict[int, dict[int, tuple[float, bool]]]


@pytest.fixture(scope="module")
def blast_url() -> Iterator[str]:
    yield from _server("--interval", "0")


@pytest.fixture(scope="module")
def paced_url() -> Iterator[str]:
    yield from _server("--interval", "0.001")


def _server(*args: str) -> Iterator[str]:
    yield from simulator_process(["-m", "oddswire.sim.betcore", *args],
                                 token_param="access_token")


_SECONDS: dict[str, int] = {}


def tst_ns(tst: str) -> int:
    """``2025-06-19T15:57:18.6120782Z`` -> ns since the epoch (whole seconds cached)."""
    head = tst[:19]
    base = _SECONDS.get(head)
    if base is None:
        base = _SECONDS[head] = calendar.timegm(
            time.strptime(head, "%Y-%m-%dT%H:%M:%S")) * 1_000_000_000
    frac = tst[20:-1]
    return base + int(frac) * 10 ** (9 - len(frac)) if frac else base


class Counter:
    """The same callback for every library: count, check that sIds are contiguous, sample
    stamp -> callback latency when asked, and after exactly ``n`` records snapshot the
    coefficients of the games ``ids`` (``snapshot`` is the library's view of its state)."""

    def __init__(self, n: int, ids: frozenset[int] = frozenset(), latency: bool = False) -> None:
        self.n, self.count, self.gaps = n, 0, 0
        self.ids = ids
        self.last_sid: int | None = None
        self.samples: list[int] = []
        self.state: State | None = None
        self.snapshot: Callable[[], State] = dict
        self.done = asyncio.get_running_loop().create_future()
        samples, now = self.samples, time.time_ns

        def on_update(sid: int, tst: int) -> None:
            if self.count == n:  # the rest of the last socket read: not counted
                return
            if latency:
                samples.append(now() - tst)
            if self.last_sid is not None and sid != self.last_sid + 1:
                self.gaps += 1
            self.last_sid = sid
            self.count += 1
            if self.count == n:
                self.state = self.snapshot()
                self.done.set_result(None)
        self.on_update = on_update

    def result(self) -> tuple[State | None, int]:
        return self.state, self.gaps


async def oddswire_client(url: str, cb: Counter) -> None:
    base, _, token = url.partition("?access_token=")  # the client adds it to the query
    client = BetcoreClient(base, access_token=token, partner_client_id=PARTNER,
                           game_types=(GAME_TYPE,))
    table = client.table

    def snapshot() -> State:
        return {i: {e[0]: (e[1], e[2]) for e in g.events}
                for i in cb.ids if (g := table.game(i)) is not None}
    cb.snapshot = snapshot
    on_update = cb.on_update
    client.on("games", lambda u: on_update(u.sid, u.tst))
    task = asyncio.ensure_future(client.run())
    await cb.done
    await client.stop()
    await task


def _records_into(cb: Counter) -> Callable[[bytes], None]:
    """``bytes.split(b"\\x1e")`` with the unfinished tail carried, ``orjson.loads``, dict
    state: what a hand-written client does with each WebSocket payload."""
    state: State = {}
    cb.snapshot = lambda: {i: dict(state[i]) for i in cb.ids if i in state}
    on_update, loads = cb.on_update, orjson.loads
    rest = b""

    def feed(data: bytes) -> None:
        nonlocal rest
        records = (rest + data if rest else data).split(RS)
        rest = records.pop()
        for r in records:
            msg = loads(r)
            if msg.get("type") == 1 and msg.get("target") == "WholeGamesInfoSubscribe":
                u = msg["arguments"][0]
                for g in u["wgi"]:
                    state[g["i"]] = {e["t"]: (float(e["c"]), e["b"]) for e in g["e"]}
                on_update(u["sId"], tst_ns(u["tst"]))
    return feed


class _PicowsHub(WSListener):
    """Handshake, subscribe on the handshake response, then hand every payload on."""

    def __init__(self, handle: Callable[[Any], None], raw: bool = False) -> None:
        super().__init__()
        self.handle, self.raw = handle, raw
        self.handshaken = False

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, HANDSHAKE)

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        if not self.handshaken:
            self.handshaken = True  # the simulator answers b"{}\x1e" in a frame of its own
            transport.send(WSMsgType.TEXT, SUBSCRIBE)
            return
        self.handle(frame if self.raw else frame.get_payload_as_bytes())


async def _picows(url: str, cb: Counter, handle: Callable[[Any], None],
                  raw: bool = False) -> None:
    transport, _ = await ws_connect(lambda: _PicowsHub(handle, raw), url)
    await cb.done
    transport.disconnect()
    await transport.wait_disconnected()


async def picows_orjson(url: str, cb: Counter) -> None:
    await _picows(url, cb, _records_into(cb))


async def picows_count_only(url: str, cb: Counter) -> None:
    def handle(frame: Any) -> None:  # one record per frame in blast mode
        if cb.count < cb.n:
            cb.count += 1
            if cb.count == cb.n:
                cb.done.set_result(None)
    await _picows(url, cb, handle, raw=True)


async def websockets_orjson(url: str, cb: Counter) -> None:
    async with connect(url, max_size=4 << 20, compression=None) as ws:
        await ws.send(HANDSHAKE.decode())
        await ws.recv()
        await ws.send(SUBSCRIBE.decode())
        feed = _records_into(cb)
        while not cb.done.done():
            feed(await ws.recv(decode=False))
        ws.transport.abort()  # the server is still blasting: skip the close handshake


async def pysignalr_client(url: str, cb: Counter) -> None:
    client = SignalRClient(url, max_size=4 << 20)
    client._transport._skip_negotiation = True  # a picows server cannot serve POST negotiate
    state: State = {}
    cb.snapshot = lambda: {i: dict(state[i]) for i in cb.ids if i in state}
    on_update = cb.on_update

    async def on_games(args: list[Any]) -> None:
        u = args[0]
        for g in u["wgi"]:
            state[g["i"]] = {e["t"]: (float(e["c"]), e["b"]) for e in g["e"]}
        on_update(u["sId"], tst_ns(u["tst"]))

    async def opened() -> None:
        await client.send("Subscribe", ["SubOnWholeGamesInfo", PARAMS])  # type: ignore[list-item]
    client.on("WholeGamesInfoSubscribe", on_games)
    client.on_open(opened)
    task = asyncio.ensure_future(client.run())
    try:
        await cb.done
    finally:
        ws = client._transport._ws
        if ws is not None:
            ws.transport.abort()  # cancelling run() leaves its connection open
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


LIBRARIES = [
    ("oddswire BetcoreClient", "oddswire", oddswire_client, N),
    ("picows + split + orjson.loads + dict state", "peer", picows_orjson, N),
    ("websockets + split + orjson.loads + dict state", "peer", websockets_orjson, N // 2),
    ("pysignalr SignalRClient + dict state", "peer", pysignalr_client, N // 4),
    ("picows, frames counted, not decoded", "ceiling", picows_count_only, 4 * N),
]

_CYCLE = blast_cycle(GAME_TYPE)  # what the simulator replays (same seed and sizes)
WIRE_BYTES = sum(map(len, _CYCLE)) / len(_CYCLE) + len(b'false,"sId":12345}]}\x1e') + 4


def expected(n: int) -> tuple[frozenset[int], State]:
    """The games of records n-LAST..n-1 of a session and their coefficients after record n."""
    state: State = {}
    for k in range(n - LAST, n):
        u = orjson.loads(_CYCLE[k % len(_CYCLE)] + b'false,"sId":0}]}')["arguments"][0]
        for g in u["wgi"]:
            state[g["i"]] = {e["t"]: (float(e["c"]), e["b"]) for e in g["e"]}
    return frozenset(state), state


def _run(client: Any, url: str, n: int, ids: frozenset[int] = frozenset(),
         latency: bool = False) -> Counter:
    return drive(client, url, lambda: Counter(n, ids, latency))


@pytest.mark.parametrize(("library", "kind", "client", "n"), LIBRARIES,
                         ids=[x[0] for x in LIBRARIES])
def test_records_per_second(bench: Any, blast_url: str, library: str, kind: str,
                            client: Any, n: int) -> None:
    ids, state = expected(n)
    bench(f"BETCORE games hub, loopback end to end (~{WIRE_BYTES / 1e3:.1f} KB records, "
          f"{N:,} for oddswire)", library, kind, lambda: _run(client, blast_url, n, ids),
          nbytes=int(n * WIRE_BYTES), units=n, unit="records",
          result=lambda cb: cb.result() if kind != "ceiling" else (state, 0),
          expected=(state, 0), rounds=3)


@pytest.mark.parametrize(("library", "kind", "client", "n"), LIBRARIES[:4],
                         ids=[x[0] for x in LIBRARIES[:4]])
def test_stamp_to_callback_latency(paced_url: str, library: str, kind: str, client: Any,
                                   n: int) -> None:
    cb = _run(client, paced_url, LATENCY_N, latency=True)
    assert cb.gaps == 0 and len(cb.samples) == LATENCY_N
    record_latency("BETCORE server tst -> callback latency (1 ms paced)", library,
                   cb.samples[LATENCY_SKIP:])
