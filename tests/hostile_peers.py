"""Helpers for the hostile-peer suites of the BETCORE and 55-tech clients: `websockets`
servers on 127.0.0.1 port 0, a TCP peer that never answers the upgrade, a port nobody
listens on, a root log capture and "run() ended promptly" checks; the two feeds' wire
builders and the per-feed adapters (``FEEDS``) that ``common/test_hostile_lifecycle.py``
runs its feed-agnostic tests over, with ``FeedPeer`` playing either feed's server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from oddswire.betcore import BetcoreClient
from oddswire.client import ReconnectPolicy
from oddswire.tech55 import Tech55Client

#: The `websockets` peers log requests (with their query) on their own logger, which the
#: secret checks leave out: that is the server's log, not the client's.
PEER_LOG = logging.getLogger("hostile.peer")


def serve_peer(handler: Callable[[ServerConnection], Awaitable[None]], **kw: Any) -> Any:
    kw.setdefault("max_size", None)
    return serve(handler, "127.0.0.1", 0, logger=PEER_LOG, **kw)


def port_of(server: Any) -> int:
    return int(server.sockets[0].getsockname()[1])


def refusing_port() -> int:
    """A 127.0.0.1 port nobody listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def silent_tcp() -> AsyncIterator[tuple[int, list[asyncio.StreamWriter]]]:
    """A peer that accepts TCP, reads the upgrade request and never answers it."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        for w in accepted:
            w.transport.abort()
        await server.wait_closed()


def recorder(client: Any) -> dict[str, list[Any]]:
    """Every event of ``client``: one argument as itself, several as a tuple."""
    seen: dict[str, list[Any]] = defaultdict(list)
    for name in client.EVENTS:
        client.on(name, lambda *a, name=name: seen[name].append(
            a[0] if len(a) == 1 else (a if a else None)))
    return seen


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record at DEBUG or above from every logger (a root handler)."""
    root = logging.getLogger()
    handler = _Records()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def client_lines(records: list[logging.LogRecord]) -> list[str]:
    """The client's log lines, each with its formatted traceback (the peers' own left out)."""
    fmt = logging.Formatter()
    out = []
    for r in records:
        if r.name.startswith(PEER_LOG.name) or r.name.startswith("websockets"):
            continue
        text = r.getMessage()
        if r.exc_info:
            text += "\n" + fmt.formatException(r.exc_info)
        out.append(text)
    return out


def exception_texts(exc: BaseException) -> list[str]:
    """``str`` and ``repr`` of an exception and its causes and contexts."""
    out: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        out += [str(e), repr(e), repr(e.args)]
        todo += [e.__cause__, e.__context__]
    return out


def errors_of(seen: dict[str, list[Any]], kind: type[BaseException]) -> list[Any]:
    """The ``error`` events of ``seen`` (a ``recorder``) that are ``kind``."""
    return [e for e in seen["error"] if isinstance(e, kind)]


async def send_all(ws: ServerConnection, frames: list[str | bytes]) -> None:
    for f in frames:
        await ws.send(f)


async def ended_within(task: asyncio.Task[Any], seconds: float, what: str) -> None:
    done, _ = await asyncio.wait([task], timeout=seconds)
    assert done, f"run() still running {seconds}s after {what}"


async def stop_and_end(client: Any, task: asyncio.Task[Any], seconds: float = 2) -> None:
    """``stop()`` ends ``run()`` within ``seconds``, without an exception."""
    await asyncio.wait_for(client.stop(), seconds)
    await ended_within(task, seconds, "stop()")
    task.result()
    assert not client.running


# --- the feeds' wire builders (from the specs' examples) ------------------------------------

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)

#: BETCORE (``betcore-signalr.md``): a SignalR JSON hub, records ending in RS.
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib3QifQ.S3CR3T-betcore-signature"
RS = "\x1e"
BASE = datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def ev(t: int, c: float, b: bool = False) -> dict[str, Any]:
    return {"t": t, "p": [], "c": c, "b": b, "sn": f"03{t:03d}"}


def game(i: int, events: list[dict[str, Any]], *, t: int = 3, s: int = 2, ps: int = 1,
         **extra: Any) -> dict[str, Any]:
    g: dict[str, Any] = {
        "i": i, "t": t, "ge": f"PB{i}", "s": s, "ps": ps, "cr": 1,
        "sdt": "2025-06-19T15:56:50.529Z", "fdt": "2025-06-19T15:59:50.529Z",
        "r": [{"v": "3c", "hi": 1, "ra": None, "ri": 1, "s": 1, "sn": 1, "vi": None,
               "h": False}],
        "h": [{"i": 1, "r": [], "s": 0, "p": 0}],
        "e": events, "vs": 2, "lrId": i - 1,
        "di": {"id": 2312, "n": "Dealer", "c": "Poland", "a": 31}}
    g.update(extra)
    return g


def tst(offset_s: float) -> str:
    t = BASE + datetime.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def payload(sid: int, games: list[dict[str, Any]], *, at: float | None = None,
            bt: float = 10, im: bool = False) -> dict[str, Any]:
    return {"wgi": games, "tst": tst(sid if at is None else at), "bt": bt, "im": im,
            "sId": sid}


def update(sid: int, games: list[dict[str, Any]] | None = None, **kw: Any) -> str:
    """One WholeGamesInfoSubscribe record (with its separator)."""
    if games is None:
        games = [game(100, [ev(196, 5.5)])]
    return hub({"type": 1, "target": "WholeGamesInfoSubscribe",
                "arguments": [payload(sid, games, **kw)]})


def hub(msg: Any) -> str:
    return orjson.dumps(msg).decode() + RS


#: 55-tech (``tech55-ws.md``): JSON messages, one a frame, after a login.
API_KEY = "55t-LIVE-k3y-0f-th3-b0t-7f3a9c"
TS = 1771183909789
ORDER: dict[str, Any] = {
    "orderId": 327, "requestUuid": "eb45b192-317b-42d5-9f65-af497b9fa8c1", "client": "demo",
    "clientName": "demo", "fixtureId": "id1000004461512432", "outcomeId": 103, "playerId": 0,
    "orderPrice": 1.95, "orderStake": 10.0, "filledStake": 10.0, "remainingStake": 0.0,
    "orderStatus": "FILLED", "statusReason": None, "userRef": "bettor1234",
    "testOrder": False, "acceptBetterOdds": True, "acceptPartialStake": True,
    "orderCurrency": "USD", "back": True, "allowedBookmakers": "*", "oddsInfo": None,
    "meta": {}, "expiresAt": "2026-02-07T17:29:37+00:00",
    "filledAt": "2026-02-07T17:29:32+00:00", "createdAt": "2026-02-07T17:29:32+00:00",
    "updatedAt": "2026-02-07T17:29:32+00:00"}


def data(channel: str, seq: Any, payload: Any, *, event: str = "INSERT", ack: bool = False,
         ts: Any = TS) -> str:
    msg: dict[str, Any] = {"type": "data", "channel": channel, "event": event,
                           "payload": payload, "ts": ts, "seq": seq}
    if ack:
        msg["requireAck"] = True
    return orjson.dumps(msg).decode()


def order(seq: Any, ack: bool = False, **changes: Any) -> str:
    return data("orders", seq, {**ORDER, **changes}, ack=ack)


def login_ok(login: dict[str, Any], subscription: int = 1, **changes: Any) -> str:
    reliable = login.get("reliableDelivery") is True
    msg: dict[str, Any] = {
        "type": "login_ok", "clientName": "demo", "channels": login.get("channels", []),
        "subscriptionId": subscription,
        "access": {"clientFiltered": ["orders", "bets", "settlements", "accounts",
                                      "balance", "betslip"],
                   "global": ["fixtures", "currencies", "status", "emergency"]},
        "reliableDelivery": reliable,
        "features": {"messageOrdering": True, "acknowledgments": reliable,
                     "batchAck": False}}
    msg.update(changes)
    return orjson.dumps({k: v for k, v in msg.items() if v is not ...}).decode()


def betcore_client(url: str, **kw: Any) -> BetcoreClient:
    kw.setdefault("reconnect", FAST)
    kw.setdefault("game_types", (3,))
    return BetcoreClient(url, access_token=TOKEN, partner_client_id=7, **kw)


def tech55_client(url: str, **kw: Any) -> Tech55Client:
    kw.setdefault("reconnect", FAST)
    kw.setdefault("channels", ("orders", "bets", "settlements", "balance"))
    return Tech55Client(url, api_key=API_KEY, **kw)


# --- per-feed adapters for the feed-agnostic tests ------------------------------------------

@dataclass(frozen=True)
class Feed:
    """What a feed-agnostic test needs to know of one feed."""

    name: str
    path: str  #: the WebSocket URL's path
    client: Callable[..., Any]  #: ``client(url, **kw)``, with a fast reconnect policy
    secret: str  #: the credential ``client`` is built with
    event: str  #: the event one data frame raises
    #: the frames answering the client's first message (the hub handshake, the login)
    answer: Callable[[str], list[str]]
    #: data frame ``i`` (from 0) of one stream; ``ack``: asks for an ack where the feed can
    frame: Callable[..., str]
    answer_timeout: str  #: the client option bounding the wait for ``answer``
    #: client options under which ``frame(i, ack=True)`` is acked (reliable delivery)
    acked: dict[str, Any] = field(default_factory=dict)
    #: the feed's answer to one later client message (a pong), or None
    reply: Callable[[str], str | None] = lambda msg: None
    #: whether the session got past the handshake (a subscribe sent, a login event)
    started: Callable[[FeedPeer, dict[str, list[Any]]], bool] = lambda peer, seen: False

    def url(self, server: Any) -> str:
        return f"ws://127.0.0.1:{port_of(server)}{self.path}"


class ScriptedPeer:
    """A `websockets` server: reads the client's first message (a handshake, a login) into
    ``firsts``, sends ``greet(first, n)`` (None: never answers, and runs no script), then
    runs ``script(ws, n)`` while recording every later message (``decode``d) and sending
    ``reply(message)`` where not None; the connection stays open until either side closes.
    The feeds' peers override the three hooks."""

    def __init__(self, script: Callable[[ServerConnection, int], Awaitable[None]]
                 | None = None) -> None:
        self.script = script
        self.connections = 0
        self.firsts: list[str] = []
        self.requests: list[str] = []
        self.received: list[list[Any]] = []
        self.close_codes: list[int | None] = []

    def greet(self, first: str, n: int) -> list[str] | None:
        return []

    def decode(self, msg: str) -> Any:
        return msg

    def reply(self, msg: Any) -> str | None:
        return None

    async def handler(self, ws: ServerConnection) -> None:
        n = self.connections
        self.connections += 1
        got: list[Any] = []
        self.received.append(got)
        self.requests.append(ws.request.path if ws.request is not None else "")
        reader = None
        try:
            first = await ws.recv()
            self.firsts.append(first if isinstance(first, str) else first.decode())
            frames = self.greet(self.firsts[-1], n)
            reader = asyncio.ensure_future(self._read(ws, got))
            if frames is not None:
                for frame in frames:
                    await ws.send(frame)
                if self.script is not None:
                    await self.script(ws, n)
            await reader
        except ConnectionClosed:
            pass
        finally:
            if reader is not None:
                reader.cancel()
        self.close_codes.append(ws.close_code)

    async def _read(self, ws: ServerConnection, got: list[Any]) -> None:
        try:
            async for raw in ws:
                msg = self.decode(raw if isinstance(raw, str) else raw.decode())
                got.append(msg)
                answer = self.reply(msg)
                if answer is not None:
                    await ws.send(answer)
        except ConnectionClosed:
            pass


class FeedPeer(ScriptedPeer):
    """``feed``'s server: answers the first message as the feed does (unless ``answer`` is
    False: never), then runs ``script``."""

    def __init__(self, feed: Feed, script: Callable[[ServerConnection, int], Awaitable[None]]
                 | None = None, answer: bool = True) -> None:
        super().__init__(script)
        self.feed = feed
        self.answer = answer

    def greet(self, first: str, n: int) -> list[str] | None:
        return self.feed.answer(first) if self.answer else None

    def reply(self, msg: Any) -> str | None:
        return self.feed.reply(msg)


def _betcore_subscribed(peer: FeedPeer, seen: dict[str, list[Any]]) -> bool:
    return any(orjson.loads(rec).get("target") == "Subscribe"
               for got in peer.received for text in got for rec in text.split(RS) if rec)


BETCORE = Feed(
    name="betcore", path="/signalrhub-integration-service/hubs", client=betcore_client,
    secret=TOKEN, event="games", answer=lambda handshake: ["{}" + RS],
    frame=lambda i, ack=False: update(i), answer_timeout="handshake_timeout",
    started=_betcore_subscribed)

TECH55 = Feed(
    name="tech55", path="/ws", client=tech55_client, secret=API_KEY, event="orders",
    answer=lambda login: [login_ok(orjson.loads(login))],
    frame=lambda i, ack=False: order(i + 1, ack=ack), answer_timeout="login_timeout",
    acked={"reliable": True},
    reply=lambda msg: '{"type":"pong"}' if orjson.loads(msg).get("type") == "ping" else None,
    started=lambda peer, seen: bool(seen["login"]))

FEEDS = [BETCORE, TECH55]
