"""Tech55Client against the picows simulator (oddswire.sim.tech55), and the spec's own
example client (the `websockets` library) against the simulator. Both event loops,
127.0.0.1 only, every test bounded in time."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections import defaultdict
from typing import Any

import msgspec
import numpy as np
import pytest
import websockets

from netutil import LOOPS, run, wait_until
from oddswire.client import ReconnectPolicy
from oddswire.errors import AuthError, ConfigError, ConnectError, DecodeError, StaleFeedError
from oddswire.sim.tech55 import Tech55Simulator
from oddswire.tech55 import (
    CHANNELS,
    LIMITER,
    Balance,
    Bet,
    Betslip,
    BetslipTable,
    Emergency,
    Order,
    Session,
    Tech55Client,
    ack_batch,
    ack_single,
)

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)


class Recorder:
    """Every event of a client; data callbacks also check that no seq is seen twice."""

    def __init__(self, client: Tech55Client) -> None:
        self.seen: dict[str, list[Any]] = defaultdict(list)
        self.seqs: list[int] = []
        self.dupes: list[int] = []
        for name in client.EVENTS - set(CHANNELS):
            client.on(name, lambda *a, name=name: self.seen[name].append(
                a[0] if len(a) == 1 else a))
        client.on("unknown", lambda m: self.seqs.append(m["seq"]) if "seq" in m else None)
        for ch in CHANNELS:
            client.on(ch, lambda event, payload, seq, ts, ch=ch: self._data(
                ch, event, payload, seq, ts))

    def _data(self, ch: str, event: str, payload: Any, seq: int, ts: int) -> None:
        if seq in self.seqs:
            self.dupes.append(seq)
        self.seqs.append(seq)
        self.seen[ch].append((event, payload, seq, ts))

    def __getitem__(self, name: str) -> list[Any]:
        return self.seen[name]


async def start(client: Tech55Client) -> asyncio.Task[None]:
    return asyncio.ensure_future(client.run())


async def stop(client: Tech55Client, task: asyncio.Task[None]) -> None:
    await asyncio.wait_for(client.stop(), 5)
    await asyncio.wait_for(task, 5)


# --- the spec's example client -------------------------------------------------------------

SPEC_EXAMPLE = '''
import asyncio
import json
import websockets
async def connect():
    uri = "wss://v2.55-tech.com/ws"
    async with websockets.connect(uri) as ws:
        # Login
        await ws.send(json.dumps({
            "type": "login",
            "apiKey": "YOUR_API_KEY",
            "channels": ["orders", "bets", "settlements"]
        }))
        # Wait for login confirmation
        login_resp = json.loads(await ws.recv())
        print(f"Logged in as {login_resp.get('clientName')}")
        # Listen for updates (respond to pings automatically)
        async for message in ws:
            data = json.loads(message)
            if data["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif data["type"] == "data":
                print(f"[{data['channel']}:{data['event']}] {data['payload']}")
asyncio.run(connect())
'''


@pytest.mark.parametrize("loop", LOOPS)
def test_the_spec_example_client_receives_data_from_the_simulator(loop: str) -> None:
    """The spec's Python example, unmodified but for the URL (and its last line, which
    would start a second event loop: the test awaits ``connect()`` instead)."""
    async def main() -> None:
        async with Tech55Simulator(rate=300, ping_interval=0.05,
                                   api_keys={"YOUR_API_KEY": "demo"}) as sim:
            source = SPEC_EXAMPLE.replace("wss://v2.55-tech.com/ws", sim.url)
            source = source.replace("asyncio.run(connect())", "")
            ns: dict[str, Any] = {}
            exec(compile(source, "spec_example", "exec"), ns)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                task = asyncio.ensure_future(ns["connect"]())
                await wait_until(lambda: out.getvalue().count("\n[") >= 10
                                 and any(m.get("type") == "pong" for s in sim.sessions
                                         for m in s.received), what="spec client data")
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            lines = out.getvalue().splitlines()
            assert lines[0] == "Logged in as demo"
            channels = {ln[1:].split(":")[0] for ln in lines[1:] if ln.startswith("[")}
            assert channels and channels <= {"orders", "bets", "settlements"}
            assert any(ln.startswith("[orders:INSERT] {'orderId': ") for ln in lines)
    run(loop, main)


# --- sessions, channels, payloads ----------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_login_typed_payloads_and_channel_filtering(loop: str) -> None:
    async def main() -> None:
        keys = {"key-demo": "demo", "key-other": "other"}
        async with Tech55Simulator(rate=400, api_keys=keys) as sim:
            client = Tech55Client(sim.url, api_key="key-demo", reconnect=FAST)
            only = Tech55Client(sim.url, api_key="key-other", channels=["orders", "fixtures"],
                                reconnect=FAST)
            rec, rec_only = Recorder(client), Recorder(only)
            tasks = [await start(client), await start(only)]
            await wait_until(lambda: all(len(rec[c]) >= 2 for c in (
                "orders", "bets", "settlements", "balance")) and len(rec_only["orders"]) >= 2
                and rec["fixtures"], what="every lifecycle channel")
            session = client.session
            assert isinstance(session, Session) and rec["login"] == [session]
            # The simulator numbers subscriptions server-wide and both clients log in at
            # once: which one is first is a race.
            assert session.client_name == "demo" and session.subscription_id in (1, 2)
            assert session.reliable_delivery is False and session.channels == list(CHANNELS)
            assert session.access["global"] == ["fixtures", "currencies", "status",
                                                "emergency"]
            assert session.features == {"messageOrdering": True, "acknowledgments": False,
                                        "batchAck": False}
            for ch, cls in (("orders", Order), ("bets", Bet), ("settlements", Bet),
                            ("balance", Balance)):
                for _event, payload, seq, ts in rec[ch]:
                    assert isinstance(payload, cls), (ch, payload)
                    assert isinstance(seq, int) and isinstance(ts, int)
            event, order, _, _ = rec["orders"][0]
            assert event == "INSERT" and order.order_status == "PENDING"
            assert order.client_name == "demo" and order.status_reason is None
            assert isinstance(order.order_price, float) and order.extra == {}
            assert {e for e, *_ in rec["settlements"]} == {"SETTLED"}
            assert all(p.settlement_status in ("WON", "LOST") for _, p, _, _ in rec["settlements"])
            assert isinstance(rec["fixtures"][0][1], dict)  # no documented schema
            # Client-filtered channels carry only our rows; the channel list is honoured.
            assert {p.client_name for _, p, _, _ in rec_only["orders"]} == {"other"}
            assert set(rec_only.seen) <= {"orders", "fixtures", "login", "connected",
                                          "healthy"}
            assert only.session is not None and only.session.channels == ["fixtures",
                                                                          "orders"]
            assert {session.subscription_id, only.session.subscription_id} == {1, 2}
            # seq is contiguous per subscription and nothing was lost.
            for r in (rec, rec_only):
                assert r.seqs == list(range(1, len(r.seqs) + 1))
            assert rec["gap"] == [] and rec["error"] == [] and client.healthy
            stats = client.stats()
            assert stats["duplicates"] == 0 and stats["seq"] == len(rec.seqs)
            assert "key-demo" not in repr(client) + str(stats)
            for c, t in ((client, tasks[0]), (only, tasks[1])):
                await stop(c, t)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_emergency_halts_and_resumes(loop: str) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=0) as sim:
            client = Tech55Client(sim.url, api_key=sim.api_key, channels=["emergency"],
                                  reconnect=FAST)
            rec = Recorder(client)
            flags: list[bool] = []
            client.on("emergency", lambda *a: flags.append(client.halted))
            task = await start(client)
            await wait_until(lambda: client.logged_in)
            assert client.halted is False
            sim.emergency(True, "maintenance")
            await wait_until(lambda: client.halted, what="halted")
            assert len(rec["halt"]) == 1 and isinstance(rec["halt"][0], Emergency)
            assert rec["halt"][0].reason == "maintenance" and flags == [True]
            sim.emergency(True, "still")  # no second halt
            sim.emergency(False, "back")
            await wait_until(lambda: not client.halted, what="resumed")
            assert len(rec["halt"]) == 1 and rec["resume"][0].active is False
            assert flags == [True, True, False] and client.emergency is not None
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_betslip_windows_fill_the_table(loop: str) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=0, betslip_window=0.5, betslip_interval=0.02) as sim:
            client = Tech55Client(sim.url, api_key=sim.api_key, channels=["betslip"],
                                  reconnect=FAST)
            rec = Recorder(client)
            task = await start(client)
            await wait_until(lambda: client.logged_in)
            w = sim.poll_betslip(outcome_id=103)
            f = sim.poll_betslip(outcome_id=0, fixture_id=None, future_id="fut_123456",
                                 participant_id=5)
            await wait_until(lambda: len(rec["betslip"]) >= 6, what="betslip updates")
            # Windows expire 0.5 s after the last poll: updates stop.
            await asyncio.sleep(0.7)
            n = len(rec["betslip"])
            await asyncio.sleep(0.2)
            assert len(rec["betslip"]) == n
            assert all(isinstance(p, Betslip) for _, p, _, _ in rec["betslip"])
            table = client.betslip
            for (book, line), price in w.prices.items():
                q = table.get("id1000004461512432", 103, book, line)
                assert q is not None and q.price == price and q.limit == 500.0
                assert q.active == (price < 2.15) and q.account == f"{book}_main"
            active = {k: v for k, v in w.prices.items() if v < 2.15}
            best = table.best_price("id1000004461512432", 103)
            if active:
                (book, line), price = max(active.items(), key=lambda kv: kv[1])
                assert best == (price, book, line)
            else:
                assert best is None
            (book, line), price = next(iter(f.prices.items()))
            q = table.get("fut_123456", 0, book, line, participant_id=5)
            assert q is not None and q.price == price
            assert len(table) == 6
            await stop(client, task)
    run(loop, main)


# --- sequence faults and reliable delivery -------------------------------------------------

def ack_checker(sim: Tech55Simulator, rec: Recorder, problems: list[str]) -> None:
    """Every ack the server receives is for a message whose callbacks already ran."""
    def on_ack(sub: Any, seq: int) -> None:
        if seq not in rec.seqs:
            problems.append(f"ack for {seq} before its callbacks")
    sim.on_ack = on_ack


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
def test_reliable_delivery_under_every_fault(loop: str, batch: bool) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=500, batch_ack=batch) as sim:
            client = Tech55Client(sim.url, api_key=sim.api_key, reliable=True, reconnect=FAST)
            rec = Recorder(client)
            problems: list[str] = []
            ack_checker(sim, rec, problems)
            task = await start(client)
            await wait_until(lambda: len(rec.seqs) >= 20, what="data")
            sim.skip_seq(3)  # a gap
            await wait_until(lambda: len(rec["gap"]) == 1, what="gap")
            expected, got = rec["gap"][0]
            assert got == expected + 3
            assert sim.duplicate() == 1  # the same message again
            await wait_until(lambda: client.stats()["duplicates"] >= 1, what="duplicate")
            sim.send_unknown_channel()
            sim.inject_malformed()
            await wait_until(lambda: rec["unknown"] and rec["error"], what="unknown + error")
            assert rec["unknown"][0]["channel"] == "promotions"
            assert isinstance(rec["error"][0], DecodeError)
            # Slow acks, then a drop: the server redelivers what it has not acked yet.
            sim.ack_delay = 0.3
            await asyncio.sleep(0.2)
            before = client.stats()["duplicates"]
            sim.drop()
            await wait_until(lambda: sim.connections == 2 and client.logged_in,
                             what="reconnect")
            sim.ack_delay = 0
            await wait_until(lambda: client.stats()["duplicates"] > before,
                             what="redelivered duplicates")
            assert client.session is not None and client.session.subscription_id == 1
            n = len(rec.seqs)
            await wait_until(lambda: len(rec.seqs) >= n + 50, what="streaming again")
            await asyncio.sleep(0.1)
            assert rec.dupes == [] and problems == []
            assert rec["gap"] == [(expected, got)]  # the only gap: nothing lost in the drop
            assert sorted(rec.seqs) == [s for s in range(1, max(rec.seqs) + 1)
                                        if not expected <= s < got]
            # Every delivered message was acked, duplicates again.
            await wait_until(lambda: {s for _, s in sim.acked} >= set(rec.seqs[:-5]),
                             what="acks")
            sub = sim.subscriptions[1]
            acks = [a for s in sim.sessions for a in s.acks] + [
                a for a in sim.sessions[0].acks]
            del acks
            assert len(sub.buffer) < 100
            if batch:
                assert any(isinstance(m.get("seqs"), list) for s in sim.sessions
                           for m in s.received if m.get("type") == "ack")
            else:
                assert all("seq" in m for s in sim.sessions for m in s.received
                           if m.get("type") == "ack")
            await stop(client, task)
    run(loop, main, timeout=60)


@pytest.mark.parametrize("loop", LOOPS)
def test_coroutine_callbacks_hold_the_ack_and_a_slow_consumer_is_reported(loop: str) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=2000) as sim:
            client = Tech55Client(sim.url, api_key=sim.api_key, channels=["orders", "bets"],
                                  reliable=True, reconnect=FAST)
            rec = Recorder(client)
            gate = asyncio.Event()
            done: list[int] = []
            problems: list[str] = []

            @client.on("orders")
            async def slow(event: str, payload: Order, seq: int, ts: int) -> None:
                await gate.wait()
                done.append(seq)

            @client.on("bets")
            async def slow_bets(event: str, payload: Bet, seq: int, ts: int) -> None:
                await gate.wait()
                done.append(seq)

            def on_ack(sub: Any, seq: int) -> None:
                if seq not in done:
                    problems.append(f"ack for {seq} before its coroutine ended")
            sim.on_ack = on_ack
            task = await start(client)
            await wait_until(lambda: bool(rec["slow_consumer"]), what="slow consumer")
            unacked, lag = rec["slow_consumer"][0]
            assert lag is None and unacked >= 100
            assert sim.acked == [] and len(sim.subscriptions[1].buffer) == 100
            assert sim.subscriptions[1].queue  # the server holds the rest: nothing lost
            gate.set()
            await wait_until(lambda: len(sim.acked) >= 300, what="acks after the coroutines")
            assert problems == [] and rec.dupes == [] and rec["gap"] == []
            # Once per episode; a loaded machine can refill the buffer after the release.
            assert rec["slow_consumer"] and all(r == (100, None) for r in rec["slow_consumer"])
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_new_subscription_starts_a_new_sequence(loop: str) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=300) as sim:
            client = Tech55Client(sim.url, api_key=sim.api_key, reconnect=FAST)
            rec = Recorder(client)
            task = await start(client)
            await wait_until(lambda: len(rec.seqs) >= 10)
            sim.drop()  # unreliable: the next login is a new subscription, seq from 1
            await wait_until(lambda: len(rec["login"]) == 2 and len(rec.seqs) >= 25)
            assert [s.subscription_id for s in rec["login"]] == [1, 2]
            assert rec["gap"] == [] and client.stats()["duplicates"] == 0
            restart = rec.seqs.index(1, 1)
            assert rec.seqs[restart:] == list(range(1, len(rec.seqs) - restart + 1))
            await stop(client, task)
    run(loop, main)


# --- login, limits, keep-alive -------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("refuse", ["error", "close"])
def test_a_refused_login_is_fatal(loop: str, refuse: str, caplog: Any) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=0, refuse=refuse) as sim:
            client = Tech55Client(sim.url, api_key="WRONG-KEY-S3CR3T", reconnect=FAST)
            with pytest.raises(AuthError) as info:
                await asyncio.wait_for(client.run(), 5)
            assert sim.connections == 1
            assert ("INVALID_API_KEY" if refuse == "error" else "4001") in str(info.value)
            texts = [r.getMessage() for r in caplog.records] + [str(info.value), repr(client),
                                                                str(client.stats())]
            assert not [t for t in texts if "S3CR3T" in t]
            assert LIMITER.live("WRONG-KEY-S3CR3T") == 0
    with caplog.at_level(logging.DEBUG):
        run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_five_clients_per_key_and_a_sixth_run_is_refused(loop: str) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=50) as sim:
            clients = [Tech55Client(sim.url, api_key=sim.api_key, reconnect=FAST)
                       for _ in range(5)]
            tasks = [await start(c) for c in clients]
            await wait_until(lambda: all(c.logged_in for c in clients), what="five logins")
            sixth = Tech55Client(sim.url, api_key=sim.api_key, reconnect=FAST)
            with pytest.raises(ConfigError, match="5 connections per API key"):
                await asyncio.wait_for(sixth.run(), 2)
            assert sim.connections == 5 and not any(e[1] == "too-many" for e in sim.log)
            await stop(clients[0], tasks[0])
            task = await start(sixth)  # a slot is free again
            await wait_until(lambda: sixth.logged_in, what="the sixth after a stop")
            for c, t in [*zip(clients[1:], tasks[1:], strict=True), (sixth, task)]:
                await stop(c, t)
            assert LIMITER.live(sim.api_key) == 0
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_the_simulator_enforces_the_auth_window_and_the_connection_limit(loop: str) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=0, auth_timeout=0.3) as sim:
            async with websockets.connect(sim.url) as ws:
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 1008
            login = json.dumps({"type": "login", "apiKey": sim.api_key, "channels": []})
            async with contextlib.AsyncExitStack() as stack:
                peers = [await stack.enter_async_context(websockets.connect(sim.url))
                         for _ in range(6)]
                for ws in peers:
                    await ws.send(login)
                answers = [json.loads(await ws.recv()) for ws in peers]
            assert [a["type"] for a in answers] == ["login_ok"] * 5 + ["error"]
            assert answers[5]["code"] == "TOO_MANY_CONNECTIONS"
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_keepalive_pongs_client_pings_and_missing_server_pings(loop: str) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=0, ping_interval=0.1) as sim:
            client = Tech55Client(sim.url, api_key=sim.api_key, server_ping_interval=0.4,
                                  client_ping_interval=0.15, reconnect=FAST)
            rec = Recorder(client)
            task = await start(client)
            await wait_until(lambda: client.logged_in and sim.sessions and any(
                m.get("type") == "pong" for m in sim.sessions[0].received), what="pong")
            # The server stops pinging (but answers ours): the client pings when idle, and
            # after 2 server ping intervals without a ping it is stale and reconnects.
            sim.pings = False
            await wait_until(lambda: sim.sessions[0].pings >= 1, what="a client ping")
            await wait_until(lambda: any(isinstance(e, StaleFeedError) for e in rec["error"]),
                             what="stale")
            assert any("no ping" in r for r in rec["stale"]), rec["stale"]
            await wait_until(lambda: sim.connections >= 2, what="reconnect")
            assert any("no ping from the server" in r for r in rec["disconnected"])
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_server_that_never_answers_the_login(loop: str) -> None:
    async def main() -> None:
        async with Tech55Simulator(rate=0) as sim:
            sim.silent_login = True
            client = Tech55Client(sim.url, api_key=sim.api_key, login_timeout=0.3,
                                  reconnect=FAST)
            rec = Recorder(client)
            task = await start(client)
            await wait_until(lambda: sim.connections >= 2, what="retried")
            assert all(isinstance(e, ConnectError) for e in rec["error"])
            assert "no login answer" in str(rec["error"][0])
            t0 = asyncio.get_running_loop().time()
            await stop(client, task)
            assert asyncio.get_running_loop().time() - t0 < 2
    run(loop, main)


# --- units ---------------------------------------------------------------------------------

def offline(client: Tech55Client) -> Any:
    """The client's listener for this connection, without a socket, logged in (``feed()``
    a frame as picows would deliver it)."""
    listener = client._make_listener()
    client._listener = listener
    client.session = Session(subscription_id="s")
    client._set_logged_in(True)
    client.gate.release()
    return listener


def test_payload_schemas_extra_fields_and_missing_optionals() -> None:
    frame = (b'{"type":"data","channel":"orders","event":"UPDATE","payload":{"orderId":5,'
             b'"orderPrice":2,"newField":{"x":1}},"ts":1,"seq":1}')
    import oddswire.tech55 as t55
    # The eager decoder refuses unknown fields: such a payload takes the slow path...
    with pytest.raises(msgspec.ValidationError, match="newField"):
        t55._DATA.decode(frame)
    # ... as the lazy types' scan does; Order.decode keeps them in extra.
    assert Order.decode(b'{"orderId":5,"newField":1}').extra == {"newField": 1}
    with pytest.raises(msgspec.ValidationError):
        Order.decode(b'{"orderId":"5"}')
    # ... which delivers it typed, with the unknown fields in extra and the wire bytes.
    for compiled in (True, False):
        client = Tech55Client("ws://127.0.0.1:1/ws", api_key="k")
        client.compiled = compiled
        got: list[Any] = []
        client.on("orders", lambda e, p, seq, ts, got=got: got.append(p))
        listener = offline(client)
        listener.feed(frame)
        listener.feed(frame.replace(b',"newField":{"x":1}', b"").replace(b'"seq":1', b'"seq":2'))
        order, plain = got
        assert isinstance(order, Order) and order.order_id == 5 and order.order_price == 2.0
        assert order.fixture_id is None and order.meta is None
        assert order.extra == {"newField": {"x": 1}}
        assert msgspec.json.decode(order.raw) == {"orderId": 5, "orderPrice": 2,
                                                  "newField": {"x": 1}}
        # The common case: raw is the payload's wire bytes, extra is empty.
        assert type(plain) is Order and plain.extra == {}
        assert plain.raw == b'{"orderId":5,"orderPrice":2}' and plain.order_price == 2.0
        assert client.stats()["errors"] == 0
    assert ack_single(7) == b'{"type":"ack","seq":7}'
    assert json.loads(ack_batch([1, 2, 3])) == {"type": "ack", "seqs": [1, 2, 3]}
    with pytest.raises(ConfigError):
        Tech55Client("ws://127.0.0.1:1/ws", api_key="")
    with pytest.raises(ConfigError):
        Tech55Client("ws://127.0.0.1:1/ws", api_key="k", channels="orders")


def test_betslip_table_rows_best_price_growth_and_expiry() -> None:
    table = BetslipTable(capacity=2)
    def slip(fid: str, odds: dict[str, Any], **kw: Any) -> Betslip:
        return msgspec.json.decode(json.dumps({"fixtureId": fid, "outcomeId": 1, "odds": odds,
                                               **kw}), type=Betslip)
    line = {"price": 1.9, "limit": 100, "active": True}
    assert table.apply(slip("f", {"a": {"l1": line, "l2": {**line, "price": 2.5,
                                                           "active": False}},
                                  "b": {"l3": {**line, "price": 2.1}}}), ts=10) == 3
    assert len(table) == 3 and table.capacity == 4
    assert table.best_price("f", 1) == (2.1, "b", "l3")
    assert table.best_price("f", 1, active_only=False) == (2.5, "a", "l2")
    assert table.best_price("f", 1, min_limit=200) is None
    q = table.get("f", 1, "a", "l1")
    assert q is not None and q.price == 1.9 and np.isnan(q.limit_min) and q.ts == 10
    assert table.get("f", 1, "a").price == 1.9  # type: ignore[union-attr]  # active first
    table.apply(slip("g", {"a": {"x": line}}), ts=20)
    assert table.expire(15) == 3 and len(table) == 1 and table.best_price("f", 1) is None
    assert table.get("g", 1, "a", "x") is not None
    with pytest.raises(DecodeError):
        table.apply(msgspec.json.decode(b'{"outcomeId":1,"odds":{}}', type=Betslip))
