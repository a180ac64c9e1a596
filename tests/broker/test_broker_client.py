"""BrokerClient against the picows simulator on 127.0.0.1 (plain and TLS), on asyncio and
on uvloop: the session flow, every account.switch form and error, subscription replay after
drops, the pong timeout, staleness, and bad frames reported and survived."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

import pytest

from netutil import LOOPS, make_certs, run, server_context, server_thread, wait_until
from oddswire.broker import BrokerClient
from oddswire.client import ReconnectPolicy
from oddswire.errors import (
    AccountSwitchError,
    AuthError,
    CallbackError,
    CertificateError,
    ConfigError,
    DecodeError,
    StaleFeedError,
)
from oddswire.sim.broker import BrokerSimulator

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)
CUSTOMERS = {7: [2000009, 2000010], 8: [3000001]}


def recorder(client: BrokerClient) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = defaultdict(list)
    for name in client.EVENTS - {"quote"}:
        client.on(name, lambda *a, name=name: seen[name].append(a[0] if len(a) == 1 else a))
    client.on("quote", lambda *a: seen["quote"].append(a))
    return seen


async def started(client: BrokerClient) -> asyncio.Task[None]:
    task = asyncio.ensure_future(client.run())
    await wait_until(lambda: client.connected or task.done(), what="authorized")
    return task


async def stopped(client: BrokerClient, task: asyncio.Task[None]) -> None:
    await client.stop()
    await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("loop", LOOPS)
def test_quotes_reach_the_callback_and_the_book(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=300, customers=CUSTOMERS) as sim:
            client = BrokerClient(sim.url, token=sim.signer.customer(7), account=2000009,
                                  symbols=["eurusd", "xauusd"], reconnect=FAST)
            seen = recorder(client)
            task = await started(client)
            await wait_until(lambda: len(seen["quote"]) > 100 and client.healthy)
            assert {q[0] for q in seen["quote"]} == {"eurusd", "xauusd"}
            for _sym, bid, ask, ts in seen["quote"]:
                assert type(bid) is float and type(ts) is int and bid < ask
            last = {q[0]: q for q in seen["quote"]}
            for sym, (_, bid, ask, ts) in last.items():
                row = client.book.row(sym)
                assert (client.book.bid[row], client.book.ask[row], client.book.ts[row]) == (
                    bid, ask, ts)
            stats = client.stats()
            assert stats["quotes"] >= len(seen["quote"]) and stats["errors"] == 0
            assert stats["receive_to_callback"]["count"] > 0
            await stopped(client, task)
            assert seen["disconnected"][-1] == "stopped"
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_account_switch_every_form_and_account_scoped_pushes(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=0, customers=CUSTOMERS) as sim:
            client = BrokerClient(sim.url, token=sim.signer.customer(7), account=2000009,
                                  account_form="login", reconnect=FAST)
            seen = recorder(client)
            task = await started(client)
            await wait_until(lambda: seen["account"] == [2000009])
            assert sim.sessions[0].received[1] == {"event": "account.switch", "login": 2000009}
            # The back-office workflow notifies on every switch, also to the same account.
            assert await client.switch_account(2000009) == 2000009
            await wait_until(lambda: len(seen["notification"]) == 2)
            assert seen["account"] == [2000009, 2000009]
            assert seen["notification"][1]["kind"] == "account.switch"

            assert sim.push_balance(2000009, 1500.25, equity=1490.0, margin=100.0) == 1
            assert sim.push_trade(2000009, 11, "eurusd", "buy", 0.5, 1.0853) == 1
            assert sim.push_alert(2000009, 3, "xauusd", 2350.0) == 1
            assert sim.push_balance(2000010, 1.0) == 0  # not the active account
            await wait_until(lambda: seen["alert"])
            b = seen["balance"][0]
            assert (b["login"], b["balance"], b["equity"], b["free_margin"], b["currency"]) == (
                2000009, 1500.25, 1490.0, 1390.0, "USD")
            assert seen["trade"][0]["symbol"] == "eurusd" and seen["trade"][0]["volume"] == 0.5
            assert seen["alert"][0]["alert_id"] == 3

            client.account_form = "data"
            assert await client.switch_account(2000010) == 2000010
            assert sim.sessions[0].received[-1] == {"event": "account.switch",
                                                    "data": {"active_login": 2000010}}
            assert sim.push_balance(2000009, 2.0) == 0
            assert sim.push_balance(2000010, 3.0) == 1
            await wait_until(lambda: len(seen["balance"]) == 2)
            assert seen["balance"][1]["login"] == 2000010

            with pytest.raises(AccountSwitchError) as info:
                await client.switch_account(3000001)  # another customer's account
            assert info.value.code == "PERMISSION_DENIED"
            sim.session_change_next()
            with pytest.raises(AccountSwitchError, match="SESSION_CHANGED"):
                await client.switch_account(2000009)
            with pytest.raises(AccountSwitchError, match="INVALID_LOGIN"):
                await client.switch_account(None)  # a customer must name the login
            assert seen["account_error"] == [("PERMISSION_DENIED", 3000001),
                                             ("SESSION_CHANGED", 2000009),
                                             ("INVALID_LOGIN", None)]
            assert client.active_login == 2000010 and client.account == 2000010
            await stopped(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_session_user_forms(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=0) as sim:
            client = BrokerClient(sim.url, token=sim.signer.user(4100), reconnect=FAST)
            seen = recorder(client)
            task = await started(client)
            await wait_until(lambda: seen["account"] == [4100])
            assert sim.sessions[0].received[1] == {"event": "account.switch"}  # bare form
            assert await client.switch_account(4100) == 4100  # active_login form
            with pytest.raises(AccountSwitchError, match="PERMISSION_DENIED"):
                await client.switch_account(4101)
            await stopped(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(("token", "code"), [
    (lambda sim: sim.signer.customer(7)[:-3] + "abc", "INVALID_TOKEN"),
    (lambda sim: "not-a-jwt", "INVALID_TOKEN"),
    (lambda sim: sim.signer.user(1, exp=1), "INVALID_TOKEN"),
    (lambda sim: sim.signer.sign({"session_type": "SESSION_USER"}), "INVALID_TOKEN"),
    (lambda sim: sim.signer.sign({"session_type": "SESSION_SERVICE", "login": 1}),
     "UNSUPPORTED_SESSION"),
], ids=["bad-signature", "garbage", "expired", "no-login", "unsupported"])
def test_refused_token_raises_auth_error_without_a_reconnect_storm(
        loop: str, token: Any, code: str, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=0, customers=CUSTOMERS) as sim:
            secret = token(sim)
            client = BrokerClient(sim.url, token=secret, reconnect=FAST)
            seen = recorder(client)
            with caplog.at_level(logging.DEBUG), pytest.raises(AuthError) as info:
                await asyncio.wait_for(client.run(), 10)
            assert info.value.code == code
            assert sim.connections == 1
            assert secret not in str(info.value) and secret not in caplog.text
            assert isinstance(seen["error"][0], AuthError)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_subscriptions_are_replayed_after_drops(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=400, customers=CUSTOMERS) as sim:
            fresh = iter(range(100))
            client = BrokerClient(  # a token function: a fresh token for every connection
                sim.url, token=lambda: sim.signer.customer(7, n=next(fresh)),
                account=2000009, symbols=["eurusd"], reconnect=FAST)
            seen = recorder(client)
            task = await started(client)
            client.subscribe(["btcusd", "us500"])
            client.unsubscribe(["eurusd"])
            await wait_until(lambda: {"btcusd", "us500"} <= {q[0] for q in seen["quote"][-50:]})
            assert sim.sessions[0].symbols == {"btcusd", "us500"}
            for cut in (False, True):
                before = sim.connections
                sim.drop(mid_frame=cut)
                await wait_until(lambda before=before: sim.connections > before and
                                 client.connected and client.healthy)
                n = len(seen["quote"])
                await wait_until(lambda n=n: len(seen["quote"]) > n + 20)
                assert sim.sessions[-1].symbols == {"btcusd", "us500"}
                assert sim.sessions[-1].active_login == 2000009
            assert {q[0] for q in seen["quote"][-20:]} <= {"btcusd", "us500"}
            assert seen["stale"] and seen["healthy"]
            assert len(seen["authorized"]) == 3 and client.stats()["reconnects"] == 2
            assert not [e for e in seen["error"] if not isinstance(e, DecodeError | OSError)
                        and "connect" not in str(e)]
            await stopped(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_pong_timeout_forces_a_reconnect(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=0) as sim:
            client = BrokerClient(sim.url, token=sim.signer.user(5), ping_interval=0.2,
                                  pong_timeout=0.2, reconnect=FAST)
            seen = recorder(client)
            task = await started(client)
            await wait_until(lambda: sum(1 for e in sim.log if e[1] == "ping") >= 3)
            assert sim.connections == 1 and client.stats()["pongs"] >= 2  # answered: stays
            sim.ignore_pings = True
            await wait_until(lambda: sim.connections >= 2 and client.connected)
            assert any(r.startswith("no pong") for r in seen["disconnected"])
            assert any(isinstance(e, StaleFeedError) for e in seen["error"])
            sim.ignore_pings = False
            await stopped(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_stall_makes_quotes_stale_then_healthy_again_without_reconnecting(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=200) as sim:
            client = BrokerClient(sim.url, token=sim.signer.user(5), symbols=["eurusd"],
                                  stale_after=0.3, ping_interval=5, pong_timeout=5,
                                  reconnect=FAST)
            seen = recorder(client)
            task = await started(client)
            await wait_until(lambda: client.healthy)
            sim.stall(1.0)
            await wait_until(lambda: seen["stale"], what="stale")
            assert not client.healthy and "no data" in seen["stale"][0]
            await wait_until(lambda: client.healthy, what="healthy again")
            assert sim.connections == 1
            await stopped(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_bad_frames_and_unknown_markers_are_reported_and_survived(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=200) as sim:
            client = BrokerClient(sim.url, token=sim.signer.user(5), symbols=["eurusd"],
                                  reconnect=FAST)
            seen = recorder(client)
            calls = 0

            def flaky(*quote: Any) -> None:
                nonlocal calls
                calls += 1
                if calls == 3:
                    raise RuntimeError("bot bug")
            client.on("quote", flaky)
            task = await started(client)
            await wait_until(lambda: client.healthy)
            sim.inject_malformed()
            sim.inject_unknown_marker("z")
            sim.send_raw(b"\xff not json")
            sim.send_raw(b'{"event": "maintenance", "in": 60}')
            sim.send_raw(b'["b", "not a login"]')
            sim.send_raw(b'{"broken": ')
            n = len(seen["quote"])
            await wait_until(lambda: len(seen["quote"]) > n + 20)
            kinds = [type(e) for e in seen["error"]]
            assert kinds.count(DecodeError) == 4 and kinds.count(CallbackError) == 1
            assert seen["unknown"] == [("z", (1, {"new": "feature"}))]
            assert seen["message"] == [{"event": "maintenance", "in": 60}]
            stats = client.stats()
            assert sim.connections == 1 and stats["errors"] == 4
            assert stats["callback_errors"] == 1
            await stopped(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_tls_with_generated_certificates(loop: str, tmp_path: Any) -> None:
    import ssl
    certs = make_certs(tmp_path)

    async def main() -> None:
        ctx = server_context(certs)
        ctx.verify_mode = ssl.CERT_NONE  # server auth only: the JWT authenticates the client
        async with BrokerSimulator(rate=200, ssl_context=ctx) as sim:
            assert sim.url.startswith("wss://127.0.0.1")
            client_ctx = ssl.create_default_context(cafile=str(certs["ca"]))
            client = BrokerClient(sim.url, token=sim.signer.user(5), symbols=["btcusd"],
                                  ssl_context=client_ctx, reconnect=FAST)
            seen = recorder(client)
            task = await started(client)
            await wait_until(lambda: len(seen["quote"]) > 10)
            await stopped(client, task)
            # Verification is on: a client that does not trust the CA never gets in, and a
            # certificate that fails verification is a configuration error, not retried.
            connections = sim.connections
            strict = BrokerClient(sim.url, token=sim.signer.user(5),
                                  ssl_context=ssl.create_default_context(), reconnect=FAST)
            with pytest.raises(CertificateError, match="TLS verification failed"):
                await strict.run()
            assert sim.connections == connections  # the handshake never got to WebSocket
    run(loop, main)


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="ws://"):
        BrokerClient("http://127.0.0.1:1", token="t")
    with pytest.raises(ConfigError, match="pong_timeout"):
        BrokerClient("ws://127.0.0.1:1", token="t", ping_interval=1, pong_timeout=2)
    with pytest.raises(ConfigError, match="not one string"):
        BrokerClient("ws://127.0.0.1:1", token="t", symbols="eurusd")
    with pytest.raises(ConfigError, match="unknown event"):
        BrokerClient("ws://127.0.0.1:1", token="t").on("trades", print)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_slow_quote_callback_is_a_slow_consumer_on_a_websocket_feed(loop: str) -> None:
    # The simulator has its own thread, like a real server: a callback that blocks the
    # client's loop must not slow the server down, or no backlog ever builds.
    with server_thread(lambda: BrokerSimulator(rate=None, customers=CUSTOMERS)) as sim:
        run(loop, lambda: slow_consumer_seen(sim))


async def slow_consumer_seen(sim: BrokerSimulator) -> None:
    client = BrokerClient(sim.url, token=sim.signer.customer(7), account=2000009,
                          symbols=list(sim.walk.spec), reconnect=FAST)
    client.slow_after_s = 0.3
    client.slow_backlog_bytes = 16 * 1024
    slow: list[tuple[int, float | None]] = []
    client.on("slow_consumer", lambda backlog, lag: slow.append((backlog, lag)))
    # ~5k quotes/s at most: far behind a simulator writing as fast as it can.
    client.on("quote", lambda symbol, bid, ask, ts: time.sleep(0.0002))
    task = await started(client)
    await wait_until(lambda: bool(slow), what="slow_consumer")
    await stopped(client, task)
    backlog, lag = slow[0]
    assert backlog >= 16 * 1024 and lag is not None and lag > 0
    assert client.stats()["slow_consumers"] == len(slow) >= 1


@pytest.mark.parametrize("loop", LOOPS)
def test_the_quotes_batch_has_each_row_updated_in_a_read_once_and_agrees_with_the_book(
        loop: str) -> None:
    async def main() -> None:
        # 4 quotes per symbol per 2 ms tick, written together: reads hold repeated symbols.
        async with BrokerSimulator(rate=2000, customers=CUSTOMERS) as sim:
            client = BrokerClient(sim.url, token=sim.signer.customer(7), account=2000009,
                                  symbols=["eurusd", "xauusd", "gbpusd"], reconnect=FAST)
            since_batch: list[tuple[str, float, float, int]] = []
            batches: list[list[int]] = []
            problems: list[str] = []

            def on_quotes(rows: Any) -> None:
                book = client.book
                want = list(dict.fromkeys(book.row(q[0]) for q in since_batch))
                if rows.dtype != "int64" or rows.tolist() != want:
                    problems.append(f"batch {rows!r} != rows quoted since the last {want}")
                last = {book.row(q[0]): q[1:] for q in since_batch}
                problems.extend(f"row {row} differs from its last quote" for row in rows.tolist()
                                if (book.bid[row], book.ask[row], book.ts[row]) != last[row])
                batches.append(rows.tolist())
                since_batch.clear()

            client.on("quote", lambda *q: since_batch.append(q))
            client.on("quotes", on_quotes)
            errors: list[BaseException] = []
            client.on("error", errors.append)
            task = await started(client)
            await wait_until(lambda: sum(map(len, batches)) > 300)
            await stopped(client, task)
            assert problems == [] and errors == []
            assert since_batch == []  # the disconnect flushed the last batch
            assert any(len(b) > 1 for b in batches)
            stats = client.stats()
            assert stats["batches"] == len(batches)
            assert stats["quotes"] > sum(map(len, batches))  # repeats were folded
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_the_quotes_batch_alone_and_its_errors(loop: str) -> None:
    async def main() -> None:
        async with BrokerSimulator(rate=500, customers=CUSTOMERS) as sim:
            client = BrokerClient(sim.url, token=sim.signer.customer(7), account=2000009,
                                  symbols=["eurusd"], reconnect=FAST)
            seen: list[list[int]] = []
            errors: list[BaseException] = []
            client.on("error", errors.append)
            task = await started(client)
            client.on("quotes", lambda rows: seen.append(rows.tolist()))  # while connected
            await wait_until(lambda: len(seen) > 5)
            assert {r for rows in seen for r in rows} == {client.book.row("eurusd")}

            def bad(rows: Any) -> None:
                raise RuntimeError("bot bug")
            client.on("quotes", bad)
            await wait_until(lambda: any(isinstance(e, CallbackError) for e in errors))
            err = next(e for e in errors if isinstance(e, CallbackError))
            assert "'quotes'" in str(err) and isinstance(err.__cause__, RuntimeError)
            assert client.connected
            await stopped(client, task)
    run(loop, main)
