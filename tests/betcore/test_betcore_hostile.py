"""BetcoreClient against hostile or unusual hubs, written from ``betcore-signalr.md``,
``protocol-notes.md`` §1 and DESIGN §3/§5/§5b (not from ``oddswire.sim``). The hubs are
`websockets` servers on 127.0.0.1, port 0; every test runs on asyncio and uvloop.

Covered: handshake responses with extra fields or sharing a frame with the first records;
records split across frames at every awkward point, several per frame, cut short by the
close, over the bound; Ping and Close (with and without ``error`` / ``allowReconnect``);
unknown targets and types; argument layouts the spec leaves open; games that change
shape; redelivered, repeated and out-of-order ``sId``; a backlog after an outage; peers
that fall silent or flood; secrets. What every WebSocket feed shares (peers that never
finish the upgrade or never answer the handshake, every close code, 401/403, ``stop()``
from every state) is in ``common/test_hostile_lifecycle.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection

from hostile_peers import (
    BETCORE,
    RS,
    TOKEN,
    ScriptedPeer,
    captured_logs,
    client_lines,
    ended_within,
    errors_of,
    ev,
    exception_texts,
    game,
    hub,
    payload,
    recorder,
    send_all,
    serve_peer,
    stop_and_end,
    tst,
    update,
)
from netutil import LOOPS, run, wait_until
from oddswire.errors import (
    AuthError,
    DecodeError,
    HandshakeError,
    OddswireError,
    ProtocolError,
    StaleFeedError,
)

Script = Callable[[ServerConnection, int], Awaitable[None]]


class HubPeer(ScriptedPeer):
    """A hub: answers the handshake request with ``handshake`` (None: no answer), then runs
    ``script(ws, connection_index)``; records what the client sends, as text."""

    def __init__(self, script: Script | None = None, handshake: str | None = "{}" + RS) -> None:
        super().__init__(script)
        self.handshake = handshake

    def greet(self, first: str, n: int) -> list[str]:
        return [] if self.handshake is None else [self.handshake]

    def subscribes(self, n: int = 0) -> list[Any]:
        out: list[Any] = []
        if n >= len(self.received):
            return out
        for text in self.received[n]:
            for rec in text.split(RS):
                if rec:
                    msg = orjson.loads(rec)
                    if msg.get("target") == "Subscribe":
                        out.append(msg)
        return out


client_for = BETCORE.client
url_of = BETCORE.url


# --- handshake -----------------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_handshake_request_and_subscribe_are_as_the_spec_writes_them(loop: str) -> None:
    async def main() -> None:
        peer = HubPeer(lambda ws, n: send_all(ws, [update(0)]))
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), game_types=(3, 5))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(peer.subscribes()) == 2 and seen["games"],
                             5, "the subscribes")
            await stop_and_end(client, task)
        assert peer.firsts[0] == '{"protocol":"json","version":1}' + RS
        assert "access_token=" in peer.requests[0]
        for msg, game_type in zip(peer.subscribes(), (3, 5), strict=True):
            assert msg["type"] == 1 and msg["target"] == "Subscribe"
            name, params = msg["arguments"]
            assert name == "SubOnWholeGamesInfo" and isinstance(params, str)
            assert orjson.loads(params) == {"GameType": game_type, "PartnerClientId": 7,
                                            "Count": 1}
        assert seen["error"] == []
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_handshake_with_extra_fields_in_the_same_frame_as_the_first_records(loop: str) -> None:
    async def main() -> None:
        first = '{"minorVersion":1,"x":{"y":[1,2]}}' + RS + update(0) + update(1)

        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send(first)
        peer = HubPeer(script, handshake=None)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["games"]) == 2, 5, "two updates")
            # Fresh updates, even in the handshake's frame, make the feed healthy.
            await wait_until(lambda: client.healthy, 2, "healthy")
            assert client.table.is_bettable(100, 196)
            await stop_and_end(client, task)
        assert [u.sid for u in seen["games"]] == [0, 1]
        assert seen["error"] == [] and seen["gap"] == []
        assert peer.subscribes(), "subscribed after the handshake"
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_handshake_error_is_fatal_and_not_retried(loop: str) -> None:
    async def main() -> None:
        peer = HubPeer(handshake='{"error":"Requested protocol \'json\' is not available."}'
                       + RS)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            with pytest.raises(HandshakeError):
                await asyncio.wait_for(client.run(), 5)
        assert peer.connections == 1
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("response", ['{"type":1,"target":"x","arguments":[]}', "[]",
                                      '{"error":null}', "not json"])
def test_a_malformed_handshake_response_is_a_protocol_error(loop: str, response: str) -> None:
    async def main() -> None:
        peer = HubPeer(handshake=response + RS)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: peer.connections >= 2, 5, "a retry")
            await stop_and_end(client, task)
        assert errors_of(seen, ProtocolError), seen["error"]
        assert seen["games"] == []
    run(loop, main, timeout=20)


# --- framing -------------------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_records_split_across_frames_at_awkward_points(loop: str) -> None:
    async def main() -> None:
        a, b, c, d = update(0), update(1), update(2), update(3)
        frames = [
            a[:1], a[1:20], a[20:-1], a[-1:],      # the separator alone in a frame
            b[:-1], b[-1:] + c[:5], c[5:],         # a separator starting the next frame
            d + '{"type":6}' + RS + update(4) + update(5),  # several records per frame
        ]

        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, frames)
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["games"]) == 6, 5, "six updates")
            await stop_and_end(client, task)
        assert [u.sid for u in seen["games"]] == [0, 1, 2, 3, 4, 5]
        assert seen["error"] == [] and seen["gap"] == []
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_record_without_its_separator_at_the_close_is_reported(loop: str) -> None:
    """.NET: "Connection terminated while reading a message"; never silent loss."""
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            if n == 0:
                await ws.send(update(0) + update(1)[:-1])  # the last record is unfinished
                await ws.close(1000)
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: peer.connections >= 2, 5, "the reconnect")
            await asyncio.sleep(0.1)
            await stop_and_end(client, task)
        assert [u.sid for u in seen["games"]] == [0]
        assert errors_of(seen, ProtocolError), seen["error"]
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_record_over_the_bound_across_frames_is_an_error_and_a_reconnect(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            if n == 0:
                await ws.send(update(0))
                # A record that never ends, in frames each well under the bound.
                body = '{"type":1,"target":"WholeGamesInfoSubscribe","arguments":["'
                await ws.send(body)
                for _ in range(400):
                    await ws.send("x" * 1000)
                await ws.wait_closed()
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), max_message_bytes=64 * 1024)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: peer.connections >= 2, 10, "the reconnect")
            await stop_and_end(client, task)
        assert [u.sid for u in seen["games"]] == [0]
        assert errors_of(seen, ProtocolError), seen["error"]
        assert peer.close_codes[0] is not None
    run(loop, main, timeout=30)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_frame_over_the_bound_is_an_error_and_a_reconnect(loop: str) -> None:
    async def main() -> None:
        big = update(1, [game(100, [ev(t, 1.5) for t in range(200, 5000)])])

        async def script(ws: ServerConnection, n: int) -> None:
            if n == 0:
                await ws.send(update(0))
                await ws.send(big)
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), max_message_bytes=32 * 1024)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: peer.connections >= 2, 10, "the reconnect")
            await stop_and_end(client, task)
        assert len(big) > 32 * 1024
        assert [u.sid for u in seen["games"]] == [0]
        assert errors_of(seen, OddswireError) or any("1009" in r for r in seen["disconnected"])
    run(loop, main, timeout=30)


@pytest.mark.parametrize("loop", LOOPS)
def test_an_empty_record_and_a_bad_record_do_not_cost_the_rest(loop: str) -> None:
    async def main() -> None:
        frame = update(0) + RS + "[1,2]" + RS + '{"target":"x"}' + RS + "{bad" + RS + update(1)

        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send(frame)
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["games"]) == 2, 5, "both updates")
            await stop_and_end(client, task)
        assert len([e for e in seen["error"] if isinstance(e, ProtocolError | DecodeError)]) >= 4
        assert peer.connections == 1
    run(loop, main, timeout=20)


# --- Ping and Close ------------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_pings_are_ignored_and_a_plain_close_ends_run(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send('{"type":6}' + RS)
            await ws.send(update(0) + '{"type":6}' + RS)
            # Nothing after a Close is dispatched.
            await ws.send('{"type":7}' + RS + update(1))
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await ended_within(task, 5, "a Close without allowReconnect")
            task.result()
        assert seen["closed"] == [(None, False)]
        assert [u.sid for u in seen["games"]] == [0]
        assert peer.connections == 1 and seen["error"] == []
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_close_with_an_error_and_allow_reconnect_reconnects(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send(update(2 * n))
            if n == 0:
                await ws.send(hub({"type": 7, "error": "Server restarting",
                                   "allowReconnect": True}))
            else:
                await ws.send(update(2 * n + 1))
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["games"]) >= 3, 5, "the second connection")
            await stop_and_end(client, task)
        assert seen["closed"] == [("Server restarting", True)]
        assert peer.connections == 2 and len(peer.subscribes(1)) == 1
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("close", [{"type": 7, "error": "Connection closed with an error."},
                                   {"type": 7, "error": "bye", "allowReconnect": False},
                                   {"type": 7, "allowReconnect": False}])
def test_a_close_without_allow_reconnect_stops_for_good(loop: str, close: Any) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send(update(0))
            await ws.send(hub(close))
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await ended_within(task, 5, "a Close without allowReconnect")
            if task.exception() is not None:
                assert isinstance(task.exception(), OddswireError)
            await asyncio.sleep(0.2)
        assert peer.connections == 1
        assert seen["closed"] == [(close.get("error"), False)]
        assert not client.running
    run(loop, main, timeout=20)


# --- messages we do not know, layouts the spec leaves open ---------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_unknown_targets_and_types_are_passed_on(loop: str) -> None:
    async def main() -> None:
        others = [
            {"type": 1, "target": "SomethingNew", "arguments": [1, {"a": None}]},
            {"type": 1, "target": "WholeGamesInfo", "arguments": []},
            {"type": 3, "invocationId": "1", "result": {"ok": True}},
            {"type": 42, "whatever": [1]},
            {"type": 1, "target": "SomethingNew", "arguments": [], "headers": {"a": "b"},
             "extra": 1},
        ]

        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send("".join(hub(m) for m in others) + update(0))
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: seen["games"], 5, "the update")
            await stop_and_end(client, task)
        assert seen["message"] == others
        assert seen["error"] == [] and peer.connections == 1
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_argument_and_key_layouts_the_spec_leaves_open(loop: str) -> None:
    async def main() -> None:
        g = game(100, [ev(196, 5.5)])
        reordered = {"arguments": [{"sId": 1, "im": False, "bt": 3, "tst": tst(1),
                                    "wgi": [dict(reversed(list(g.items())))]}],
                     "target": "WholeGamesInfoSubscribe", "type": 1}
        minimal = game(101, [{"t": 1, "c": 2, "b": False, "sn": "1"}], di=None,
                       ge=650351)
        del minimal["r"], minimal["h"]
        extra_arg = {"type": 1, "target": "WholeGamesInfoSubscribe",
                     "arguments": [payload(2, [minimal]), "extra", {"x": 1}]}
        as_string = {"type": 1, "target": "WholeGamesInfoSubscribe",
                     "arguments": [orjson.dumps(payload(3, [g])).decode()]}

        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send(update(0) + hub(reordered) + hub(extra_arg) + hub(as_string)
                          + update(4))
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: any(u.sid == 4 for u in seen["games"]), 5, "sId 4")
            await stop_and_end(client, task)
        sids = [u.sid for u in seen["games"]]
        assert sids[:3] == [0, 1, 2]
        # The payload as a JSON string (as the Subscribe arguments are): applied, or at
        # least reported; never lost in silence.
        assert 3 in sids or seen["error"], (sids, seen["error"])
        game101 = client.table.game(101)
        assert game101 is not None and game101.dealer is None and game101.edition == "650351"
        assert client.table.get(101, 1) == (2.0, False)
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_games_that_change_shape(loop: str) -> None:
    async def main() -> None:
        steps = [
            [game(100, [ev(196, 5.5), ev(197, 6.0), ev(198, 7.0)])],
            # 197 gone, 199 new, 196 repriced and blocked; a second game appears.
            [game(100, [ev(199, 9.5), ev(196, 5.0, True), ev(198, 7.0)]),
             game(200, [ev(1, 1.9)], t=5)],
            # Game 100 with no coefficients at all; game 200 with a new event type.
            [game(100, []), game(200, [ev(2, 2.1), ev(1, 1.8)], t=5, newField={"a": 1})],
        ]

        async def script(ws: ServerConnection, n: int) -> None:
            for sid, games in enumerate(steps):
                await ws.send(update(sid, games))
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            states: list[Any] = []
            client.on("games", lambda u: states.append({
                (g, t): client.table.get(g, t) for g in (100, 200)
                for t in (1, 2, 196, 197, 198, 199)}))
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["games"]) == 3, 5, "three updates")
            mask = client.table.bettable_mask()
            await stop_and_end(client, task)
        s0, s1, s2 = states
        assert s0[(100, 197)] == (6.0, False) and s0[(200, 1)] is None
        assert s1[(100, 197)] is None and s1[(100, 199)] == (9.5, False)
        assert s1[(100, 196)] == (5.0, True) and s1[(200, 1)] == (1.9, False)
        assert all(s2[(100, t)] is None for t in (196, 197, 198, 199))
        assert s2[(200, 2)] == (2.1, False) and s2[(200, 1)] == (1.8, False)
        assert len(mask) == len(client.table.events["coefficient"])
        assert seen["error"] == []
    run(loop, main, timeout=20)


# --- sId: redelivery, order, outages -------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_a_redelivered_old_update_is_reported_and_does_not_roll_the_table_back(
        loop: str) -> None:
    async def main() -> None:
        def at(sid: int, c: float, when: float | None = None) -> str:
            return update(sid, [game(100, [ev(196, c)])], at=sid if when is None else when)

        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [at(0, 2.0), at(1, 2.1), at(2, 2.2),
                                at(1, 2.1),            # redelivered
                                at(2, 2.2),            # repeated
                                at(3, 2.3)])
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: any(u.sid == 3 for u in seen["games"]), 5, "sId 3")
            after_3 = client.table.get(100, 196)
            await asyncio.sleep(0.05)
            await stop_and_end(client, task)
        assert len(seen["gap"]) == 2, seen["gap"]  # the two old ones; sId 3 is in order
        assert after_3 == (2.3, False)
        assert client.stats()["gaps"] == 2
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_stale_redelivery_never_overwrites_newer_state(loop: str) -> None:
    """sId 1 arrives after sId 2, with its older tst and older coefficient: reported, and
    the table keeps the newer coefficient (a bot must not bet on the old one)."""
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [update(0, [game(100, [ev(196, 2.0)])]),
                                update(2, [game(100, [ev(196, 2.2)])]),
                                update(1, [game(100, [ev(196, 2.1)])])])
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["gap"]) >= 2, 5, "two gap events")
            await asyncio.sleep(0.05)
            await stop_and_end(client, task)
        assert seen["gap"][0] == (1, 2)
        assert client.table.get(100, 196) == (2.2, False)
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_backlog_after_an_outage_continues_the_counter(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            if n == 0:
                await send_all(ws, [update(0), update(1)])
                await ws.close(1011)
            else:
                # The counter is not reset on reconnect; the backlog carries old stamps.
                await send_all(ws, [update(2, at=-600), update(3, at=-599),
                                    update(4, [game(100, [ev(196, 9.9)])])])
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["games"]) == 5, 5, "five updates")
            await stop_and_end(client, task)
        assert [u.sid for u in seen["games"]] == [0, 1, 2, 3, 4]
        assert seen["gap"] == [] and client.table.get(100, 196) == (9.9, False)
        assert len(seen["disconnected"]) == 2 and "1011" in seen["disconnected"][0]
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_skip_is_a_gap_event(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await send_all(ws, [update(0), update(1), update(5), update(6)])
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["games"]) == 4, 5, "four updates")
            await stop_and_end(client, task)
        assert seen["gap"] == [(2, 5)]
    run(loop, main, timeout=20)


# --- peers that do not play along ----------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_a_peer_that_falls_silent_is_dropped_after_the_server_timeout(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send(update(n))  # then nothing: no updates, no pings
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), server_timeout=0.6, keepalive_interval=0.1,
                                stale_after=0.3)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: peer.connections >= 2, 10, "the reconnect")
            await stop_and_end(client, task)
        assert errors_of(seen, StaleFeedError), seen["error"]
        assert seen["stale"], "healthy dropped while silent"
        pings = [t for t in peer.received[0] if '"type":6' in t]
        assert pings, "the client kept the link alive with Pings"
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_flooding_hub_is_kept_up_with_and_stop_is_prompt(loop: str) -> None:
    async def main() -> None:
        sent = [0]

        async def script(ws: ServerConnection, n: int) -> None:
            while True:
                await ws.send("".join(update(sent[0] + i) for i in range(50)))
                sent[0] += 50
                await asyncio.sleep(0)
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["games"]) >= 2000, 20, "2000 updates")
            await stop_and_end(client, task)
        assert not errors_of(seen, ProtocolError)
    run(loop, main, timeout=40)


# --- secrets -------------------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_the_token_never_appears_in_logs_errors_repr_or_stats(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send(update(0) + hub({"type": 1, "target": "Oops",
                                           "arguments": [TOKEN]}) + "{bad " + TOKEN + RS)
            await ws.send(hub({"type": 7, "error": f"token {TOKEN} expired",
                               "allowReconnect": n == 0}))
        peer = HubPeer(script)
        with captured_logs() as logs:
            async with serve_peer(peer.handler) as server:
                client = client_for(url_of(server))
                seen = recorder(client)
                task = asyncio.ensure_future(client.run())
                await ended_within(task, 10, "the second Close")
                task.result()
            refused = HubPeer(handshake=hub({"error": f"invalid access_token {TOKEN}"}))
            async with serve_peer(refused.handler) as server:
                other = client_for(url_of(server))
                with pytest.raises(HandshakeError) as info:
                    await asyncio.wait_for(other.run(), 5)
        texts = [*client_lines(logs), repr(client), str(client.stats()), repr(other),
                 *seen["disconnected"], *exception_texts(info.value)]
        for e in seen["error"]:
            texts += exception_texts(e)
        assert peer.connections == 2
        leaks = [t for t in texts if TOKEN in t]
        assert leaks == [], leaks
    run(loop, main, timeout=30)


# --- negotiate (an aiohttp hub: negotiate is an HTTP POST) ---------------------------------

class NegotiatingHub:
    """``POST {base}/negotiate`` answers ``answers[path]`` (a status and a JSON body, or
    raw bytes); ``GET {base}`` upgrades, handshakes and sends one update. Records every
    request's path, query and Authorization header."""

    def __init__(self, answers: dict[str, tuple[int, Any]]) -> None:
        self.answers = answers
        self.negotiates: list[tuple[str, dict[str, str], str | None]] = []
        self.upgrades: list[tuple[str, dict[str, str]]] = []
        self.port = 0
        self._runner: Any = None

    async def __aenter__(self) -> NegotiatingHub:
        from aiohttp import web
        app = web.Application()
        for base in {p.rsplit("/negotiate", 1)[0] for p in self.answers}:
            app.router.add_post(base + "/negotiate", self.negotiate)
            app.router.add_get(base, self.hub)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    def url(self, base: str = "/hubs") -> str:
        return f"http://127.0.0.1:{self.port}{base}"

    async def negotiate(self, request: Any) -> Any:
        from aiohttp import web
        self.negotiates.append((request.path, dict(request.query),
                                request.headers.get("Authorization")))
        status, body = self.answers[request.path]
        if callable(body):
            body = body(self)
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, content_type="application/json")
        return web.json_response(body, status=status)

    async def hub(self, request: Any) -> Any:
        from aiohttp import web
        self.upgrades.append((request.path, dict(request.query)))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive_str()
        await ws.send_str("{}" + RS + update(len(self.upgrades)))
        async for _ in ws:
            pass
        return ws


def ws_base(hub: NegotiatingHub) -> str:
    return f"ws://127.0.0.1:{hub.port}/hubs"


@pytest.mark.parametrize("loop", LOOPS)
def test_negotiate_v1_with_extra_fields_and_v0(loop: str) -> None:
    async def main() -> None:
        v1 = {"connectionToken": "CT-s3cr3t-connection-token", "connectionId": "cid",
              "negotiateVersion": 1, "useStatefulReconnect": False, "newField": {"a": [1]},
              "availableTransports": [{"transport": "WebSockets",
                                       "transferFormats": ["Text", "Binary"]},
                                      {"transport": "ServerSentEvents",
                                       "transferFormats": ["Text"]}]}
        for body, conn_id in ((v1, "CT-s3cr3t-connection-token"),
                              ({"connectionId": "v0-id"}, "v0-id")):
            async with NegotiatingHub({"/hubs/negotiate": (200, body)}) as hub:
                with captured_logs() as logs:
                    client = client_for(ws_base(hub), negotiate=True)
                    seen = recorder(client)
                    task = asyncio.ensure_future(client.run())
                    await wait_until(lambda seen=seen: seen["games"], 5, "an update")
                    await stop_and_end(client, task)
            path, query, auth = hub.negotiates[0]
            assert path == "/hubs/negotiate" and query["negotiateVersion"] == "1"
            assert auth == f"Bearer {TOKEN}"
            assert hub.upgrades[0][1]["id"] == conn_id
            assert hub.upgrades[0][1]["access_token"] == TOKEN
            assert seen["error"] == []
            lines = client_lines(logs)
            assert not [line for line in lines if "CT-s3cr3t" in line or TOKEN in line]
    run(loop, main, timeout=30)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_negotiate_redirect_uses_its_access_token(loop: str) -> None:
    """The redirect's ``accessToken`` replaces ours for what follows (negotiate and the
    WebSocket), as the reference clients do; it is a secret like ours."""
    async def main() -> None:
        redirected = "eyJ.redirected.R3D1R-secret"

        def to_hubs2(hub: NegotiatingHub) -> Any:
            return {"url": hub.url("/hubs2"), "accessToken": redirected}
        answers = {"/hubs/negotiate": (200, to_hubs2),
                   "/hubs2/negotiate": (200, {"connectionToken": "ct2", "connectionId": "c2",
                                              "negotiateVersion": 1})}
        async with NegotiatingHub(answers) as hub:
            with captured_logs() as logs:
                client = client_for(ws_base(hub), negotiate=True)
                seen = recorder(client)
                task = asyncio.ensure_future(client.run())
                await wait_until(lambda: seen["games"], 5, "an update")
                await stop_and_end(client, task)
        assert [n[0] for n in hub.negotiates] == ["/hubs/negotiate", "/hubs2/negotiate"]
        assert hub.negotiates[1][2] == f"Bearer {redirected}"
        path, query = hub.upgrades[0]
        assert path == "/hubs2" and query["id"] == "ct2"
        assert query["access_token"] == redirected
        assert not [line for line in client_lines(logs) if redirected in line]
    run(loop, main, timeout=30)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_negotiate_error_is_fatal_and_a_401_is_an_auth_error(loop: str) -> None:
    async def main() -> None:
        answers: dict[str, tuple[int, Any]] = {
            "/hubs/negotiate": (200, {"error": f"Token {TOKEN} is not valid"})}
        async with NegotiatingHub(answers) as hub:
            client = client_for(ws_base(hub), negotiate=True)
            with pytest.raises(HandshakeError) as info:
                await asyncio.wait_for(client.run(), 5)
            assert len(hub.negotiates) == 1 and hub.upgrades == []
            assert all(TOKEN not in t for t in exception_texts(info.value))
            answers["/hubs/negotiate"] = (401, {"error": "unauthorized"})
            client = client_for(ws_base(hub), negotiate=True)
            with pytest.raises(AuthError):
                await asyncio.wait_for(client.run(), 5)
            assert len(hub.negotiates) == 2
    run(loop, main, timeout=30)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"connectionId": 5}', b"{}"])
def test_a_malformed_negotiate_answer_is_reported_and_retried(loop: str, body: bytes) -> None:
    async def main() -> None:
        async with NegotiatingHub({"/hubs/negotiate": (200, body)}) as hub:
            client = client_for(ws_base(hub), negotiate=True)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(hub.negotiates) >= 2, 5, "a retry")
            await stop_and_end(client, task)
        assert errors_of(seen, ProtocolError), seen["error"]
        assert hub.upgrades == []
    run(loop, main, timeout=30)


# --- the bettable rule ---------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_maintenance_and_betting_time_follow_the_updates(loop: str) -> None:
    async def main() -> None:
        steps = [update(0), update(1, bt=0), update(2, im=True), update(3),
                 update(4, [game(100, [ev(196, 5.5)], ps=2)])]
        go = asyncio.Event()

        async def script(ws: ServerConnection, n: int) -> None:
            for s in steps:
                await go.wait()
                go.clear()
                await ws.send(s)
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            bettable: list[bool] = []
            healthy: list[bool] = []
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: peer.connections, 5, "the connection")
            for i in range(len(steps)):
                go.set()
                await wait_until(lambda i=i: len(seen["games"]) > i, 5, f"update {i}")
                bettable.append(client.table.is_bettable(100, 196))
                healthy.append(client.healthy)
            await stop_and_end(client, task)
        assert bettable == [True, False, False, True, False]
        assert healthy == [True, True, False, True, True]
        assert seen["stale"] and len(seen["healthy"]) >= 2
    run(loop, main, timeout=20)


# --- liveness and memory -------------------------------------------------------------------

@pytest.mark.parametrize("loop", LOOPS)
def test_a_hub_that_only_pings_is_stale_but_kept(loop: str) -> None:
    """Pings keep the connection (the 30 s server timeout), not the data (stale_after)."""
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send(update(0))
            while True:
                await ws.send('{"type":6}' + RS)
                await asyncio.sleep(0.05)
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), stale_after=0.3, server_timeout=1.0)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: seen["stale"], 5, "stale")
            await asyncio.sleep(1.5)  # past the server timeout: pings count as messages
            assert not client.healthy and not client.table.is_bettable(100, 196)
            await stop_and_end(client, task)
        assert peer.connections == 1 and not errors_of(seen, StaleFeedError)
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_finished_games_do_not_accumulate(loop: str) -> None:
    async def main() -> None:
        async def script(ws: ServerConnection, n: int) -> None:
            for i in range(400):  # every game runs once and finishes
                await ws.send(update(2 * i, [game(1000 + i, [ev(1, 2.0)])], at=2 * i)
                              + update(2 * i + 1, [game(1000 + i, [ev(1, 2.0)], s=3)],
                                       at=2 * i + 1))
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server), retention_s=10.0)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: len(seen["games"]) == 800, 10, "800 updates")
            await stop_and_end(client, task)
        assert len(client.table) <= 12, len(client.table)
        assert client.table.rows <= 64 and client.table.event_rows <= 64
    run(loop, main, timeout=20)


@pytest.mark.parametrize("loop", LOOPS)
def test_invalid_utf8_in_a_record_is_an_error(loop: str) -> None:
    async def main() -> None:
        bad = update(1).replace('"PB100"', '"PB\\u00e9"').encode().replace(b"\\u00e9",
                                                                             b"\xff\xfe")

        async def script(ws: ServerConnection, n: int) -> None:
            await ws.send(update(0))
            await ws.send(bad, text=True)
            await ws.send(update(2))
        peer = HubPeer(script)
        async with serve_peer(peer.handler) as server:
            client = client_for(url_of(server))
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: any(u.sid == 2 for u in seen["games"]), 5, "sId 2")
            await stop_and_end(client, task)
        assert [u.sid for u in seen["games"]] == [0, 2]
        assert errors_of(seen, OddswireError), seen["error"]
    run(loop, main, timeout=20)
