"""BetcoreClient against the picows simulator and against a SignalR hub written with aiohttp
(negotiate, handshake, the spec's example message verbatim); pysignalr, an independent
SignalR client, against our simulator. Both event loops, 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import defaultdict
from typing import Any

import orjson
import pytest
from aiohttp import WSMsgType, web
from pysignalr.client import SignalRClient

from netutil import LOOPS, run, wait_until
from oddswire.betcore import BetcoreClient, GamesUpdate
from oddswire.client import ReconnectPolicy
from oddswire.errors import AuthError, DecodeError, HandshakeError, ProtocolError, StaleFeedError
from oddswire.sim.betcore import BetcoreSimulator

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)
RS = b"\x1e"


def recorder(client: BetcoreClient) -> dict[str, list[Any]]:
    seen: dict[str, list[Any]] = defaultdict(list)
    for name in client.EVENTS:
        client.on(name, lambda *a, name=name: seen[name].append(a[0] if len(a) == 1 else a))
    return seen


async def start(client: BetcoreClient) -> asyncio.Task[None]:
    return asyncio.ensure_future(client.run())


async def stop(client: BetcoreClient, task: asyncio.Task[None]) -> None:
    await client.stop()
    await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("loop", LOOPS)
def test_pysignalr_receives_updates_from_the_simulator(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.05) as sim:
            got: list[Any] = []
            client = SignalRClient(f"{sim.url}?access_token={sim.token()}")
            client._transport._skip_negotiation = True  # a picows server cannot serve POST

            async def on_games(args: list[Any]) -> None:
                got.append(args[0])

            async def opened() -> None:
                await client.send("Subscribe", ["SubOnWholeGamesInfo",
                                                '{"GameType":1,"PartnerClientId":9,"Count":1}'])
            client.on("WholeGamesInfoSubscribe", on_games)
            client.on_open(opened)
            task = asyncio.ensure_future(client.run())
            try:
                await wait_until(lambda: len(got) >= 4, what="pysignalr updates")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            assert [u["sId"] for u in got[:4]] == [0, 1, 2, 3]
            assert all(u["wgi"][0]["t"] == 1 and u["wgi"][0]["di"] is None for u in got)
            assert len(got[0]["wgi"][0]["e"]) == 16
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_games_reach_the_table_and_the_callbacks(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.02) as sim:
            sim.world.betting_ticks = 30
            client = BetcoreClient(sim.url, access_token=sim.token, partner_client_id=7,
                                   game_types=(3,), reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: len(seen["games"]) >= 5 and client.healthy)
            update = seen["games"][-1]
            assert isinstance(update, GamesUpdate)
            game_id = update.game_ids[0]
            game = client.table.game(game_id)
            server = sim.world.current(3)[-1]
            assert game is not None and game.type == 3 and game.id == server.id
            assert game.edition == server.edition and game.dealer == server.dealer
            assert len(game.events) == 16
            assert client.table.get(game_id, 196) is not None
            if game.state == 2 and game.play_status == 1 and update.bt > 0:
                assert client.table.is_bettable(game_id, 196)
                assert client.table.bettable_mask().sum() == 16
            # Subscribe at run time, then unsubscribe: the simulator sees both.
            client.subscribe(1)
            await wait_until(lambda: any(1 in u.game_ids or any(
                (g := client.table.game(i)) is not None and g.type == 1 for i in u.game_ids)
                for u in seen["games"][-3:]), what="type 1 updates")
            client.unsubscribe(1)
            await wait_until(lambda: any(e[1] == "unsubscribe" for e in sim.log))
            assert [e[2] for e in sim.log if e[1] == "subscribe"] == [(3, 7, 1), (1, 7, 1)]
            stats = client.stats()
            assert stats["updates"] == client.updates >= 5 and stats["gaps"] == 0
            assert stats["server_to_receive"]["count"] >= 5
            await stop(client, task)
            assert seen["disconnected"][-1] == "stopped" and not client.healthy
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_sid_skips_repeats_and_resets_are_gaps(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.02) as sim:
            client = BetcoreClient(sim.url, access_token=sim.token(), partner_client_id=1,
                                   reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: len(seen["games"]) >= 3)
            sim.skip_sid(2)
            await wait_until(lambda: len(seen["gap"]) == 1, what="skip")
            expected, got = seen["gap"][0]
            assert got == expected + 2
            sim.repeat_sid()
            await wait_until(lambda: len(seen["gap"]) == 2, what="repeat")
            assert seen["gap"][1][1] == seen["gap"][1][0] - 1
            sim.reset_sid()
            await wait_until(lambda: len(seen["gap"]) == 3, what="reset")
            assert seen["gap"][2][1] == 0
            n = len(seen["games"])
            await wait_until(lambda: len(seen["games"]) >= n + 3)
            assert len(seen["gap"]) == 3  # after a reset the client follows the new count
            assert client.stats()["gaps"] == 3
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_bad_records_are_reported_and_survived(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.02, batch=True) as sim:
            client = BetcoreClient(sim.url, access_token=sim.token(), partner_client_id=1,
                                   game_types=(1, 3), reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: len(seen["games"]) >= 6, what="batched records")
            sim.inject_malformed()
            sim.inject_empty_record()
            sim.send_raw(b'[1,2]' + RS)
            sim.send_raw(b'{"type":1,"target":"WholeGamesInfoSubscribe","arguments":'
                         b'[{"wgi":[{"i":"x"}],"tst":"2025-06-19T15:57:18Z","bt":1,'
                         b'"im":false,"sId":1}]}' + RS)
            await wait_until(lambda: len(seen["error"]) >= 4, what="four errors")
            n = len(seen["games"])
            await wait_until(lambda: len(seen["games"]) >= n + 4, what="still streaming")
            kinds = {type(e) for e in seen["error"]}
            assert kinds <= {DecodeError, ProtocolError}
            assert sim.connections == 1
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_close_reconnects_only_when_allowed(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.02) as sim:
            client = BetcoreClient(sim.url, access_token=sim.token(), partner_client_id=1,
                                   reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: len(seen["games"]) >= 2)
            sim.close("restarting", allow_reconnect=True)
            await wait_until(lambda: sim.connections == 2 and len(sim.sessions) == 1
                             and sim.sessions[0].subs, what="reconnect and resubscribe")
            assert seen["closed"] == [("restarting", True)]
            sim.close("go away", allow_reconnect=False)
            await asyncio.wait_for(task, 5)  # run() returns
            assert seen["closed"][-1] == ("go away", False) and sim.connections == 2
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_refused_token_and_refused_handshake_are_fatal(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator() as sim:
            client = BetcoreClient(sim.url, access_token="not.a.jwt", partner_client_id=1,
                                   reconnect=FAST)
            with pytest.raises(AuthError, match="401"):
                await asyncio.wait_for(client.run(), 5)
            assert sim.refused == 1 and sim.connections == 0
        async with BetcoreSimulator(fail_handshake="protocol not allowed") as sim:
            client = BetcoreClient(sim.url, access_token=sim.token(), partner_client_id=1,
                                   reconnect=FAST)
            with pytest.raises(HandshakeError, match="protocol not allowed"):
                await asyncio.wait_for(client.run(), 5)
            assert sim.connections == 1
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_stale_without_updates_and_in_maintenance_but_no_reconnect(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.05) as sim:
            client = BetcoreClient(sim.url, access_token=sim.token(), partner_client_id=1,
                                   stale_after=0.5, reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: client.healthy, what="healthy")
            sim.stall(1.5)
            await wait_until(lambda: len(seen["stale"]) == 1, what="stale in the stall")
            assert not client.table.healthy and not client.table.bettable_mask().any()
            await wait_until(lambda: client.healthy, what="healthy after the stall")
            sim.maintenance(True)
            await wait_until(lambda: any("maintenance" in r for r in seen["stale"]))
            assert not client.healthy and client.table.maintenance
            sim.maintenance(False)
            await wait_until(lambda: client.healthy, what="healthy after maintenance")
            assert sim.connections == 1  # neither rule drops the connection
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_keepalive_pings_and_server_timeout(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.05, ping_interval=60) as sim:
            client = BetcoreClient(sim.url, access_token=sim.token(), partner_client_id=1,
                                   keepalive_interval=0.2, server_timeout=0.8,
                                   handshake_timeout=0.5, reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: any(e[1] == "ping" for e in sim.log), what="client ping")
            sim.stall(2.0)
            await wait_until(lambda: any(isinstance(e, StaleFeedError) for e in seen["error"]),
                             what="server timeout")
            await wait_until(lambda: sim.connections >= 2 and client.healthy, what="back")
            assert any("no message from the hub" in r for r in seen["disconnected"])
            # A reconnect into the stall meets no handshake answer: a timeout, not a hang.
            assert any("no handshake response" in str(e) for e in seen["error"])
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_drop_mid_frame_reconnects_and_resubscribes(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.02) as sim:
            client = BetcoreClient(sim.url, access_token=sim.token, partner_client_id=4,
                                   game_types=(1, 6), reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: len(seen["games"]) >= 4)
            sim.drop(mid_frame=True, partial=b'{"type":1,"target":"WholeGamesInfoSubscribe"')
            await wait_until(lambda: sim.connections == 2 and len(seen["games"]) >= 10)
            subs = [e[2] for e in sim.log if e[1] == "subscribe"]
            assert subs == [(1, 4, 1), (6, 4, 1)] * 2
            assert seen["gap"] == []  # the sId counter goes on across the reconnect
            await stop(client, task)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_secrets_stay_out_of_logs_errors_and_repr(loop: str, caplog: Any) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.05) as sim:
            token = sim.token(secret_marker="S3CR3T")
            client = BetcoreClient(sim.url, access_token=token, partner_client_id=1,
                                   reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: len(seen["games"]) >= 2)
            sim.drop()
            await wait_until(lambda: sim.connections == 2 and len(seen["games"]) >= 4)
            await stop(client, task)
            bad = BetcoreClient(sim.url, access_token=token + "x", partner_client_id=1)
            with pytest.raises(AuthError) as info:
                await bad.run()
            texts = [r.getMessage() for r in caplog.records] + [repr(client), str(info.value),
                                                                str(client.stats())]
            texts += [str(e) for e in seen["error"]]
            assert not [t for t in texts if token in t]
    with caplog.at_level(logging.DEBUG):
        run(loop, main)


# --- an independent hub: aiohttp -------------------------------------------------------

SPEC_UPDATE = {"type": 1, "target": "WholeGamesInfoSubscribe", "arguments": [{
    "wgi": [{"i": 30000603282, "t": 3, "ge": "PB650351", "s": 2, "ps": 1, "cr": 1,
             "sdt": "2025-06-19T15:56:50.529Z", "fdt": "2025-06-19T15:59:50.529Z",
             "r": [{"v": "3c", "hi": 1, "ra": None, "ri": 1, "s": 1, "sn": 1, "vi": None,
                    "h": False}],
             "h": [{"i": 1, "r": [], "s": 0, "p": 0}],
             "e": [{"t": 196 + k, "p": [], "c": 5.5 + k, "b": k == 3, "sn": f"03{196 + k}"}
                   for k in range(16)],
             "vs": 2, "lrId": 30000603281,
             "di": {"id": 2312, "n": "PetreQA-manual", "c": "Poland", "a": 31}}],
    "tst": "2025-06-19T15:57:18.6120782Z", "bt": 1, "im": False, "sId": 0}]}


class AiohttpHub:
    """A SignalR JSON hub in aiohttp: negotiate, handshake, and per connection a scripted
    stream of updates; the first connection ends with Close(allowReconnect=true)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.negotiations = 0
        self.connections = 0
        self.subscribes: list[str] = []
        self.sent: list[dict[str, Any]] = []
        self.sid = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hubs/negotiate", self.negotiate)
        app.router.add_get("/hubs", self.hub)
        return app

    async def negotiate(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        self.negotiations += 1
        return web.json_response({"negotiateVersion": 1, "connectionId": "c",
                                  "connectionToken": f"tok{self.negotiations}",
                                  "availableTransports": [{"transport": "WebSockets",
                                                           "transferFormats": ["Text"]}]})

    def update(self, coefficient_shift: float) -> dict[str, Any]:
        msg = copy.deepcopy(SPEC_UPDATE)
        msg["arguments"][0]["sId"] = self.sid
        for e in msg["arguments"][0]["wgi"][0]["e"]:
            e["c"] = round(e["c"] + coefficient_shift, 2)
        self.sid += 1
        self.sent.append(msg)
        return msg

    async def hub(self, request: web.Request) -> web.WebSocketResponse:
        if (request.query.get("access_token") != self.token
                or request.query.get("id") != f"tok{self.negotiations}"):
            raise web.HTTPUnauthorized()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        first = self.connections == 1
        handshake = await ws.receive_str()
        assert handshake == '{"protocol":"json","version":1}\x1e'
        await ws.send_str("{}\x1e")
        sub = await ws.receive_str()
        self.subscribes.append(sub)
        # Two updates in one frame, one split across two frames, then a skipped sId.
        a, b = (orjson.dumps(self.update(0.01 * self.sid)) + RS for _ in range(2))
        await ws.send_str((a + b).decode())
        c = orjson.dumps(self.update(0.5)) + RS
        await ws.send_str(c[:100].decode())
        await ws.send_str(c[100:].decode())
        if first:
            self.sid += 5
            await ws.send_str((orjson.dumps(self.update(1.0)) + RS).decode())
            await ws.send_str('{"type":7,"error":"rolling restart","allowReconnect":true}\x1e')
            await ws.close()
            return ws
        await ws.send_str('{"type":6}\x1e')
        async for msg in ws:  # until the client closes
            if msg.type == WSMsgType.CLOSE:
                break
        return ws


@pytest.mark.parametrize("loop", LOOPS)
def test_client_against_an_aiohttp_hub(loop: str) -> None:
    async def main() -> None:
        hub = AiohttpHub("t0k3n")
        runner = web.AppRunner(hub.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            client = BetcoreClient(f"ws://127.0.0.1:{port}/hubs", access_token="t0k3n",
                                   partner_client_id=1, game_types=(1,), negotiate=True,
                                   reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: len(seen["games"]) == 7, what="seven updates")
            assert [u.sid for u in seen["games"]] == [m["arguments"][0]["sId"]
                                                     for m in hub.sent]
            assert seen["gap"] == [(3, 8)]
            assert seen["closed"] == [("rolling restart", True)]
            assert hub.connections == 2 and hub.negotiations == 2
            # The Subscribe invocation exactly as the spec's example.
            want = ('{"arguments":["SubOnWholeGamesInfo","{ \\"GameType\\": 1, '
                    '\\"PartnerClientId\\": 1, \\"Count\\": 1 }"],"target":"Subscribe",'
                    '"type":1}\x1e')
            assert hub.subscribes == [want, want]
            # The table equals the server's last state.
            last = hub.sent[-1]["arguments"][0]["wgi"][0]
            game = client.table.game(last["i"])
            assert game is not None and game.edition == "PB650351" and game.state == 2
            assert game.dealer == last["di"] and game.results == last["r"]
            for e in last["e"]:
                assert client.table.get(last["i"], e["t"]) == (e["c"], e["b"])
            assert client.table.is_bettable(last["i"], 196)
            assert not client.table.is_bettable(last["i"], 199)  # blocked
            await stop(client, task)
        finally:
            await runner.cleanup()
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_nothing_after_a_close_in_the_same_frame_is_dispatched(loop: str) -> None:
    async def main() -> None:
        async with BetcoreSimulator(interval=0.05) as sim:
            client = BetcoreClient(sim.url, access_token=sim.token(), partner_client_id=1,
                                   reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: len(seen["games"]) >= 1)
            sim.interval = 3600.0  # no more regular updates
            await asyncio.sleep(0.1)
            n = len(seen["games"])
            sim.send_raw(b'{"type":7,"error":"bye"}' + RS + orjson.dumps(SPEC_UPDATE) + RS)
            await asyncio.wait_for(task, 5)  # no allowReconnect: run() returns
            assert seen["closed"] == [("bye", False)]
            assert len(seen["games"]) == n
            assert client.table.game(30000603282) is None
    run(loop, main)


class StatefulHub:
    """An aiohttp hub that offers SignalR stateful reconnect: the first connection delivers
    updates 1-5, waits for the client's Ack of 5, then sends 6 and drops with 7 and 8 still
    unsent; the resumed connection (same connection token, no new negotiate) sends a
    Sequence from 6, replays 6-8 (6 a duplicate for the client) and goes on with 9."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.negotiations = 0
        self.connections = 0
        self.client_messages: list[dict[str, Any]] = []
        self.acked = 0
        self.resume_from = 0
        self.sent: list[bytes] = []  # trackable records, id = index + 1
        self.drop_done = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hubs/negotiate", self.negotiate)
        app.router.add_get("/hubs", self.hub)
        return app

    async def negotiate(self, request: web.Request) -> web.Response:
        self.negotiations += 1
        assert request.query.get("useStatefulReconnect") == "true"
        return web.json_response({"negotiateVersion": 1, "connectionId": "c",
                                  "connectionToken": "tok", "useStatefulReconnect": True,
                                  "availableTransports": [{"transport": "WebSockets",
                                                           "transferFormats": ["Text"]}]})

    def update(self) -> bytes:
        msg = copy.deepcopy(SPEC_UPDATE)
        msg["arguments"][0]["sId"] = len(self.sent)
        record = orjson.dumps(msg) + RS
        self.sent.append(record)
        return record

    async def reader(self, ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            for rec in msg.data.encode().split(RS)[:-1]:
                obj = orjson.loads(rec)
                self.client_messages.append(obj)
                if obj.get("type") == 8:
                    self.acked = obj["sequenceId"]
                if obj.get("type") == 1:  # the client's Subscribe: ack it
                    await ws.send_str('{"type":8,"sequenceId":1}\x1e')

    async def hub(self, request: web.Request) -> web.WebSocketResponse:
        assert request.query.get("id") == "tok"
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        assert await ws.receive_str() == '{"protocol":"json","version":1}\x1e'
        await ws.send_str("{}\x1e")
        reading = asyncio.ensure_future(self.reader(ws))
        try:
            if self.connections == 1:
                for _ in range(5):
                    await ws.send_str(self.update().decode())
                while self.acked < 5:
                    await asyncio.sleep(0.01)
                # The resume replays from here: an Ack of 6 that races the drop (a loaded
                # machine) is treated as lost with it, so 6 is always the duplicate.
                self.resume_from = self.acked
                await ws.send_str(self.update().decode())
                self.update(), self.update()  # 7 and 8: lost with the connection
                await asyncio.sleep(0.05)
                assert request.transport is not None
                request.transport.abort()
                self.drop_done.set()
                return ws
            await ws.send_str(f'{{"type":9,"sequenceId":{self.resume_from + 1}}}\x1e')
            for record in self.sent[self.resume_from:]:
                await ws.send_str(record.decode())
            await ws.send_str(self.update().decode())
            await reading
            return ws
        finally:
            reading.cancel()


@pytest.mark.parametrize("loop", LOOPS)
def test_stateful_reconnect_loses_nothing_and_repeats_nothing(loop: str) -> None:
    async def main() -> None:
        hub = StatefulHub("t0k3n")
        runner = web.AppRunner(hub.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            client = BetcoreClient(f"ws://127.0.0.1:{port}/hubs", access_token="t0k3n",
                                   partner_client_id=1, negotiate=True,
                                   stateful_reconnect=True, reconnect=FAST)
            seen = recorder(client)
            task = await start(client)
            await wait_until(lambda: len(seen["games"]) >= 9, what="nine updates")
            assert [u.sid for u in seen["games"]] == list(range(9))
            assert seen["gap"] == [] and hub.connections == 2 and hub.negotiations == 1
            stats = client.stats()
            assert stats["replays_dropped"] == 1 and stats["resumable"]
            # The client resumed with a Sequence after its acked Subscribe, and no
            # second Subscribe: the hub kept the subscription.
            kinds = [m.get("type") for m in hub.client_messages if m.get("type") != 8]
            assert kinds.count(1) == 1 and {"type": 9, "sequenceId": 2} in hub.client_messages
            await stop(client, task)
        finally:
            await runner.cleanup()
    run(loop, main)


def test_stateful_reconnect_needs_negotiate() -> None:
    from oddswire.errors import ConfigError
    with pytest.raises(ConfigError, match="negotiate"):
        BetcoreClient("ws://127.0.0.1:1/hubs", access_token="t", partner_client_id=1,
                      stateful_reconnect=True)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_games_callback_that_raises_is_reported_and_survived(loop: str) -> None:
    from oddswire.errors import CallbackError

    async def main() -> None:
        async with BetcoreSimulator(interval=0.02) as sim:
            client = BetcoreClient(sim.url, access_token=sim.token(), partner_client_id=1,
                                   reconnect=FAST)
            errors: list[BaseException] = []
            client.on("error", errors.append)
            calls: list[int] = []

            def on_games(update: GamesUpdate) -> None:
                calls.append(update.sid)
                if len(calls) == 2:
                    raise ValueError("bot bug")
            client.on("games", on_games)
            task = await start(client)
            await wait_until(lambda: len(calls) >= 5)
            assert len(errors) == 1 and isinstance(errors[0], CallbackError)
            assert isinstance(errors[0].__cause__, ValueError)
            assert client.stats()["callback_errors"] == 1 and sim.connections == 1
            await stop(client, task)
    run(loop, main)
