"""Tech55Client against hostile or unusual servers, written from ``tech55-ws.md`` and DESIGN
§5/§5b (not from ``oddswire.sim``). The servers are `websockets` servers on 127.0.0.1,
port 0; every test runs on asyncio and uvloop.

Covered: the login and ``login_ok`` per the spec, with fields extra, missing or null;
refused logins (an ``error`` message, a close before ``login_ok``); reliable delivery
(acks after the callbacks, redelivered ``seq`` acked again but never delivered twice,
across a reconnect); gaps and late fills; payloads with fields missing, extra, null or as
strings; invalid JSON and UTF-8; a message over the bound; JSON ping/pong and a server
that stops pinging; unknown channels and types; a flooding server; the API key in logs,
errors, ``repr`` and ``stats()``. What every WebSocket feed shares (peers that never
finish the upgrade or never answer the login, every close code, 401/403, ``stop()`` from
every state) is in ``common/test_hostile_lifecycle.py``."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection

from hostile_peers import (
    API_KEY,
    ORDER,
    TECH55,
    TS,
    ScriptedPeer,
    captured_logs,
    client_lines,
    data,
    errors_of,
    exception_texts,
    login_ok,
    order,
    recorder,
    send_all,
    serve_peer,
    stop_and_end,
)
from netutil import LOOPS, run, wait_until
from oddswire.errors import (
    AuthError,
    DecodeError,
    OddswireError,
    ProtocolError,
    StaleFeedError,
)
from oddswire.tech55 import Balance, Bet, Order, Tech55Client

Script = Callable[[ServerConnection, int], Awaitable[None]]

# --- the spec's payloads -------------------------------------------------------------------

BET: dict[str, Any] = {
    "betId": 73, "orderId": 327, "bookmaker": "pinnacle", "bookmakerBetId": "3332684214",
    "betStatus": "CONFIRMED", "settlementStatus": "UNSETTLED", "placedStake": 10.0,
    "placedPrice": 1.98, "placedCurrency": "USD", "account": "pinnacle_main",
    "requestUuid": "eb45b192-317b-42d5-9f65-af497b9fa8c1", "userRef": "bettor1234",
    "testBet": False, "client": "demo", "clientName": "demo",
    "sentData": {"stake": 10.0, "price": 1.95},
    "receivedData": {"betId": "3332684214", "status": "accepted", "price": 1.98},
    "settlementAmount": None, "settlementReason": None, "settledAt": None,
    "declineReason": None, "betRequestId": None, "oddsInfo": None, "meta": {},
    "placedAt": "2026-02-07T17:29:32+00:00", "createdAt": "2026-02-07T17:29:32+00:00",
    "updatedAt": "2026-02-07T17:29:32+00:00"}
BALANCE: dict[str, Any] = {"clientName": "demo", "bookmaker": "pinnacle",
                           "username": "pinnacle_main", "balance": 4990.0, "currency": "USD",
                           "ts": 1771183910123}


class Peer(ScriptedPeer):
    """A 55-tech server: answers the login with ``answer(login, n)`` (a list of frames;
    None: never), then runs ``script(ws, n)``; records the logins and, decoded, what the
    client sends, answering its pings (unless ``answer_pings`` is False)."""

    def __init__(self, script: Script | None = None,
                 answer: Callable[[dict[str, Any], int], list[str] | None] | None = None,
                 answer_pings: bool = True) -> None:
        super().__init__(script)
        self.answer = answer or (lambda login, n: [login_ok(login)])
        self.answer_pings = answer_pings
        self.logins: list[dict[str, Any]] = []

    def greet(self, first: str, n: int) -> list[str] | None:
        self.logins.append(orjson.loads(first))
        return self.answer(self.logins[-1], n)

    def decode(self, msg: str) -> Any:
        return orjson.loads(msg)

    def reply(self, msg: Any) -> str | None:
        return '{"type":"pong"}' if msg.get("type") == "ping" and self.answer_pings else None

    def acks(self, n: int | None = None) -> list[int]:
        conns = self.received if n is None else self.received[n:n + 1]
        out: list[int] = []
        for got in conns:
            for m in got:
                if m.get("type") == "ack":
                    out += m["seqs"] if "seqs" in m else [m["seq"]]
        return out

    def sent_types(self, n: int = 0) -> list[str]:
        return [m.get("type") for m in self.received[n]] if n < len(self.received) else []


client_for = TECH55.client
url_of = TECH55.url


def calls(client: Tech55Client, channel: str) -> list[tuple[Any, Any, Any, Any]]:
    out: list[tuple[Any, Any, Any, Any]] = []
    client.on(channel, lambda event, payload, seq, ts: out.append((event, payload, seq, ts)))
    return out


# --- login -------------------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_the_login_and_login_ok_per_the_spec(loop: str) -> None:
    async def main() -> None:
        peer = Peer(answer=lambda login, n: [login_ok(login, newField={"x": 1})],
                    script=lambda ws, n: send_all(ws, [order(1, ack=True)]))
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), channels=("orders", "bets"), reliable=True)
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: orders and peer.acks(), 5, "an order and its ack")
            await stop_and_end(client, task)
        assert peer.logins == [{"type": "login", "apiKey": API_KEY,
                                "channels": ["orders", "bets"], "reliableDelivery": True}]
        session = client.session
        assert session is not None and seen["login"] == [session]
        assert session.client_name == "demo" and session.subscription_id == 1
        assert session.extra == {"newField": {"x": 1}}
        assert peer.acks() == [1] and seen["error"] == []
        event, payload, seq, ts = orders[0]
        assert (event, seq, ts) == ("INSERT", 1, TS)
        assert isinstance(payload, Order) and payload.order_id == 327
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("changes", [
    {"channels": None, "access": None, "features": None, "clientName": None},
    {"channels": ..., "access": ..., "features": ..., "clientName": ..., "subscriptionId": ...,
     "reliableDelivery": ...},
    {"features": {"messageOrdering": "yes", "batchAck": None}, "subscriptionId": "sub-1"},
], ids=["nulls", "minimal", "odd-values"])
def test_a_login_ok_with_fields_missing_or_null_still_logs_in(loop: str, changes: Any) -> None:
    async def main() -> None:
        peer = Peer(answer=lambda login, n: [login_ok(login, **changes)],
                    script=lambda ws, n: send_all(ws, [order(1)]))
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: orders, 5, "the order")
            await stop_and_end(client, task)
        assert len(seen["login"]) == 1 and peer.connections == 1
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_refused_login_is_an_auth_error_without_retries(loop: str) -> None:
    async def main() -> None:
        refusal = orjson.dumps({"type": "error", "code": "INVALID_API_KEY",
                                "message": f"unknown apiKey {API_KEY}"}).decode()
        peer = Peer(answer=lambda login, n: [refusal])
        with captured_logs() as logs:
            async with serve_peer(peer.handler) as server:
                client = client_for(url_of(server))
                with pytest.raises(AuthError) as info:
                    await asyncio.wait_for(client.run(), 5)
        assert peer.connections == 1
        assert all(API_KEY not in t for t in exception_texts(info.value))
        assert all(API_KEY not in line for line in client_lines(logs))
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("code", [1000, 1002, 1003, 1008, 4001, 4003])
def test_a_close_before_login_ok_is_an_auth_error(loop: str, code: int) -> None:
    async def main() -> None:
        async def close(ws: ServerConnection, n: int) -> None:
            await ws.close(code, "invalid api key")

        def answer(login: dict[str, Any], n: int) -> list[str]:
            return []
        peer = Peer(script=close, answer=answer)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            with pytest.raises(AuthError):
                await asyncio.wait_for(client.run(), 5)
        assert peer.connections == 1
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("code", [1001, 1011, 1012, 1013])
def test_a_transient_close_before_login_ok_is_retried(loop: str, code: int) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            if n == 0:
                await ws.close(code, "restarting")
            else:
                await ws.send(order(1))

        peer = Peer(script=script, answer=lambda login, n: [] if n == 0 else [login_ok(login)])
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: orders, 5, "the order on the second connection")
            await stop_and_end(client, task)
        assert peer.connections == 2 and len(seen["login"]) == 1
    run(loop, main, timeout=20)


# --- reliable delivery, seq ----------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_acks_follow_the_callbacks_and_a_redelivery_is_acked_not_delivered(loop: str) -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [order(1, ack=True), order(2, ack=True), order(3, ack=True)])
            await asyncio.sleep(0.2)
            await send_all(ws, [order(2, ack=True), order(3, ack=True), order(4, ack=True)])
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), reliable=True)
            seen = recorder(client)
            got: list[int] = []

            @client.on("orders")
            async def on_order(event: str, payload: Any, seq: int, ts: int) -> None:
                got.append(seq)
                if seq == 1:
                    await release.wait()
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: 3 in got, 5, "orders 1-3")
            await asyncio.sleep(0.1)
            assert 1 not in peer.acks(), "acked before its callback returned"
            release.set()
            await wait_until(lambda: len(peer.acks()) >= 6, 5, "six acks")
            await stop_and_end(client, task)
        assert got == [1, 2, 3, 4]
        assert sorted(peer.acks()) == [1, 2, 2, 3, 3, 4]
        assert client.stats()["duplicates"] == 2 and seen["gap"] == []
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_redelivery_across_a_reconnect_with_the_same_subscription(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            if n == 0:
                await send_all(ws, [order(1, ack=True), order(2, ack=True),
                                    order(3, ack=True)])
                await asyncio.sleep(0.2)
                await ws.close(1011)
            else:
                await send_all(ws, [order(2, ack=True), order(3, ack=True),
                                    order(4, ack=True)])
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), reliable=True)
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(peer.acks(1)) == 3 if peer.connections > 1 else False,
                             5, "three acks on the second connection")
            await stop_and_end(client, task)
        assert [o[2] for o in orders] == [1, 2, 3, 4]
        assert peer.acks(0) == [1, 2, 3] and sorted(peer.acks(1)) == [2, 3, 4]
        assert seen["gap"] == []
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_new_subscription_starts_a_new_sequence(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [order(1 + 10 * (n == 0)), order(2 + 10 * (n == 0))])
            if n == 0:
                await ws.close(1011)
        peer = Peer(script=script, answer=lambda login, n: [login_ok(login, subscription=n + 1)])
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(orders) == 4, 5, "four orders")
            await stop_and_end(client, task)
        assert [o[2] for o in orders] == [11, 12, 1, 2] and seen["gap"] == []
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_gap_is_an_event_and_a_late_fill_is_delivered_once(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [order(1), order(4), order(2), order(2), order(3), order(5),
                                order(3)])
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: 5 in [o[2] for o in orders], 5, "seq 5")
            await asyncio.sleep(0.1)
            await stop_and_end(client, task)
        assert [o[2] for o in orders] == [1, 4, 2, 3, 5]
        assert seen["gap"] == [(2, 4)]
    run(loop, main, timeout=20)


# --- payloads ------------------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_settlement_and_balance_payloads_with_fields_missing_extra_or_null(loop: str) -> None:
    settled = {**BET, "settlementStatus": "WON", "settlementAmount": 19.8,
               "settledAt": "2026-02-08T10:00:00+00:00", "settlementReason": "result"}
    no_bet_id = copy.deepcopy(settled)
    del no_bet_id["betId"]
    sent = {
        "settlements": [settled, {**settled, "newField": [1, 2]},
                        {**settled, "settlementAmount": None}, no_bet_id,
                        {**settled, "placedStake": "10.0"}, {**settled, "betId": None}],
        "balance": [BALANCE, {**BALANCE, "extraThing": True},
                    {"balance": 12.5}, {**BALANCE, "balance": None},
                    {**BALANCE, "balance": "4990.00"}, {**BALANCE, "ts": None}, {}],
    }

    async def main() -> None:
        frames = []
        seq = 0
        for channel, payloads in sent.items():
            for p in payloads:
                seq += 1
                frames.append(data(channel, seq, p, event="SETTLED" if channel ==
                                   "settlements" else "UPDATE"))

        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, frames)
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            got = {c: calls(client, c) for c in sent}
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: sum(map(len, got.values())) == seq, 5, "every message")
            await stop_and_end(client, task)
        for channel, payloads in sent.items():
            assert len(got[channel]) == len(payloads), channel  # never dropped
        s = [c[1] for c in got["settlements"]]
        assert isinstance(s[0], Bet) and s[0].settlement_amount == 19.8
        assert s[0].settlement_status == "WON" and s[0].bet_id == 73
        assert isinstance(s[1], Bet) and s[1].extra == {"newField": [1, 2]}
        assert isinstance(s[2], Bet) and s[2].settlement_amount is None
        b = [c[1] for c in got["balance"]]
        assert isinstance(b[0], Balance) and b[0].balance == 4990.0
        assert isinstance(b[1], Balance) and b[1].extra == {"extraThing": True}
        assert isinstance(b[2], Balance) and b[2].balance == 12.5 and b[2].currency is None
        assert isinstance(b[5], Balance) and b[5].ts is None
        off = {e.field for e in errors_of(seen, DecodeError)}
        assert off == {"payload"}, seen["error"]  # reported (once per channel)
        assert len(errors_of(seen, DecodeError)) == 2, seen["error"]
        assert peer.connections == 1
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_numbers_as_strings_in_the_envelope_are_delivered_and_reported(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [order(1), data("orders", "2", ORDER, ts=str(TS)), order(3)])
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(orders) == 3, 5, "three orders")
            await stop_and_end(client, task)
        assert errors_of(seen, DecodeError), seen["error"]
        assert [o[2] for o in orders][::2] == [1, 3]
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_invalid_json_and_utf8_are_errors_not_crashes(loop: str) -> None:
    async def main() -> None:
        bad: list[str | bytes] = ["{not json", "[1,2]", "null", '"text"', "",
                                  '{"type":"data","channel":"orders","payload":{"orderId":1}'
                                  ',"seq":2,"ts":1,"x":NaN}']

        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [order(1), *bad])
            await ws.send(b'{"type":"data","channel":"orders","seq":3,"payload":"\xff\xfe"}',
                          text=True)
            await ws.send(order(4))
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: 4 in [o[2] for o in orders], 5, "the last order")
            await stop_and_end(client, task)
        assert [o[2] for o in orders] == [1, 4]
        assert len(errors_of(seen, OddswireError)) >= len(bad), seen["error"]
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_message_over_the_bound_is_an_error_and_a_reconnect(loop: str) -> None:
    async def main() -> None:
        huge = order(2, meta={"blob": "x" * 300_000})

        async def script(ws: ServerConnection, n: int) -> None:
            if n == 0:
                await send_all(ws, [order(1), huge])
            else:
                await ws.send(order(3))
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), max_message_bytes=64 * 1024)
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(orders) == 2, 10, "the order after the reconnect")
            await stop_and_end(client, task)
        assert [o[2] for o in orders] == [1, 3]
        assert seen["gap"] == [(2, 3)], "the lost message is a gap"
        assert (seen["error"] or any("1009" in r for r in seen["disconnected"])), seen
    run(loop, main, timeout=30)


@pytest.mark.parametrize("loop", LOOPS)
def test_unknown_channels_and_types_reach_unknown(loop: str) -> None:
    async def main() -> None:
        others = [{"type": "data", "channel": "newchan", "event": "INSERT",
                   "payload": {"a": 1}, "ts": TS, "seq": 2},
                  {"type": "notice", "text": "maintenance at 12:00"}]

        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [order(1), *(orjson.dumps(m).decode() for m in others),
                                order(3)])
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(orders) == 2, 5, "both orders")
            await stop_and_end(client, task)
        assert seen["unknown"] == others
        assert seen["gap"] == [] and seen["error"] == []
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_emergency_payloads_halt_resume_and_off_schema(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [
                data("emergency", 1, {"active": True, "reason": "Upstream", "ts": TS},
                     event="STATUS"),
                data("emergency", 2, {"reason": "no active field"}, event="STATUS"),
                data("emergency", 3, {"active": False, "extra": 1}, event="STATUS")])
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), channels=())
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["emergency"]) == 3, 5, "three messages")
            await stop_and_end(client, task)
        assert len(seen["halt"]) == 1 and len(seen["resume"]) == 1
        assert not client.halted
        assert errors_of(seen, DecodeError), "the payload without 'active' is reported"
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_server_error_after_login_is_reported_and_the_stream_goes_on(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [order(1), orjson.dumps(
                {"type": "error", "code": 500, "message": f"oops for {API_KEY}"}).decode(),
                order(2)])
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(orders) == 2, 5, "both orders")
            await stop_and_end(client, task)
        errs = errors_of(seen, ProtocolError)
        assert errs and all(API_KEY not in str(e) for e in errs)
        assert peer.connections == 1
    run(loop, main, timeout=20)


# --- keep-alive ----------------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_server_pings_are_answered_and_a_server_that_stops_pinging_is_dropped(
        loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            if n == 0:
                await send_all(ws, ['{"type":"ping"}', order(1), '{"type":"ping"}'])
                # then: data only, never a ping, until the client drops the connection
                for i in range(2, 10**6):
                    await ws.send(order(i))
                    await asyncio.sleep(0.02)
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), server_ping_interval=0.3,
                                client_ping_interval=0.1)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: peer.connections >= 2, 10, "the reconnect")
            await stop_and_end(client, task)
        assert peer.sent_types(0).count("pong") == 2
        assert errors_of(seen, StaleFeedError), seen["error"]
    run(loop, main, timeout=20)


# --- peers that do not play along ----------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_a_flooding_server_with_reliable_delivery(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            seq = 1
            while True:
                for _ in range(50):
                    await ws.send(order(seq, ack=True))
                    seq += 1
                await asyncio.sleep(0)
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), reliable=True)
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(orders) >= 3000, 30, "3000 orders")
            await stop_and_end(client, task)
        seqs = [o[2] for o in orders]
        assert seqs == list(range(1, len(seqs) + 1)) and seen["gap"] == []
        acks = peer.acks()
        assert acks == list(range(1, len(acks) + 1)) and len(acks) >= len(seqs) - 100
    run(loop, main, timeout=60)


# --- secrets -------------------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_the_api_key_never_appears_in_logs_errors_repr_or_stats(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [order(1), "{bad json " + API_KEY,
                                orjson.dumps({"type": "error", "code": "X",
                                              "reason": f"key {API_KEY}"}).decode()])
            await ws.close(4000 + n, f"bye {API_KEY}"[:60])
        peer = Peer(script=script)
        with captured_logs() as logs:
            async with serve_peer(peer.handler) as server:
                client = client_for(url_of(server))
                seen = recorder(client)
                task = asyncio.ensure_future(client.run())
                await wait_until(lambda: peer.connections >= 2, 10, "the reconnect")
                texts = [repr(client), str(client.stats())]
                await stop_and_end(client, task)
        texts += [*client_lines(logs), repr(client), str(client.stats()),
                  *seen["disconnected"]]
        for e in seen["error"]:
            texts += exception_texts(e)
        leaks = [t for t in texts if API_KEY in t]
        assert leaks == [], leaks
    run(loop, main, timeout=30)


# --- more reliable delivery ----------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_batch_acks_when_login_ok_offers_them(loop: str) -> None:
    async def main() -> None:
        def answer(login: dict[str, Any], n: int) -> list[str]:
            return [login_ok(login, features={"messageOrdering": True, "acknowledgments": True,
                                              "batchAck": True})]

        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [order(i, ack=True) for i in (1, 2, 3, 4, 5, 3, 2)])
        peer = Peer(script=script, answer=answer)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), reliable=True)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(peer.acks()) >= 7, 5, "seven acks")
            await stop_and_end(client, task)
        acks = [m for m in peer.received[0] if m.get("type") == "ack"]
        assert acks and all(set(m) == {"type", "seqs"} for m in acks), acks
        assert sorted(peer.acks()) == [1, 2, 2, 3, 3, 4, 5]
        assert [o[2] for o in orders] == [1, 2, 3, 4, 5]
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_slow_consumer_fills_the_reliable_buffer_and_catches_up(loop: str) -> None:
    async def main() -> None:
        release = asyncio.Event()

        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [order(i, ack=True) for i in range(1, 151)])
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), reliable=True)
            seen = recorder(client)
            got: list[int] = []

            @client.on("orders")
            async def on_order(event: str, payload: Any, seq: int, ts: int) -> None:
                got.append(seq)
                await release.wait()
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(got) == 150, 5, "150 orders")
            await wait_until(lambda: seen["slow_consumer"], 5, "slow_consumer")
            assert peer.acks() == []
            release.set()
            await wait_until(lambda: len(peer.acks()) == 150, 5, "150 acks")
            await stop_and_end(client, task)
        assert sorted(peer.acks()) == list(range(1, 151))
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_data_before_login_ok_is_reported(loop: str) -> None:
    async def main() -> None:
        peer = Peer(answer=lambda login, n: [order(1), login_ok(login), order(2)])
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            orders = calls(client, "orders")
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: orders, 5, "the order after login_ok")
            await stop_and_end(client, task)
        assert [o[2] for o in orders] == [2]
        assert errors_of(seen, ProtocolError), "the early message is not dropped in silence"
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_endless_gaps_keep_the_gap_memory_bounded(loop: str) -> None:
    async def main() -> None:
        n_msgs = 400

        async def script(ws: ServerConnection, n: int) -> None:
            frames = []
            for i in range(n_msgs):  # every other seq skipped, on known and unknown channels
                seq = 2 * i + 1
                frames.append(order(seq) if i % 2 else data("newchan", seq, {"i": i}))
            await send_all(ws, frames)
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["orders"]) + len(seen["unknown"]) == n_msgs, 10,
                             "every message")
            await stop_and_end(client, task)
        assert len(seen["gap"]) == n_msgs - 1 and client.stats()["gaps"] == n_msgs - 1
        # The gaps remembered for late fills are bounded, whatever the channel.
        assert len(client._missing) <= 64
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_betslip_payloads_with_fields_missing_null_or_as_strings(loop: str) -> None:
    def slip(**odds: Any) -> dict[str, Any]:
        line = {"price": 1.98, "limit": 500.0, "limitMin": 1.0, "limitCurrency": "USD",
                "limitUsd": 500.0, "limitMinUsd": 1.0, "active": True,
                "account": "pinnacle_main", **odds}
        return {"fixtureId": "id1000004461512432", "outcomeId": 103, "playerId": 0,
                "client": "demo", "userRef": None, "odds": {"pinnacle": {"odds_1": line}}}

    async def main() -> None:
        payloads = [slip(), slip(price=None), slip(price="2.05"), slip(newField=1),
                    {k: v for k, v in slip().items() if k != "fixtureId"},
                    {**slip(), "odds": None}, slip(price=2.10)]

        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [data("betslip", i + 1, p, event="UPDATE")
                                for i, p in enumerate(payloads)])
        peer = Peer(script=script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), channels=("betslip",))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["betslip"]) == len(payloads), 5, "every payload")
            await stop_and_end(client, task)
        assert errors_of(seen, DecodeError), seen["error"]
        quote = client.betslip.get("id1000004461512432", 103, "pinnacle", "odds_1")
        assert quote is not None and quote.price == 2.10
        assert peer.connections == 1
    run(loop, main, timeout=20)
