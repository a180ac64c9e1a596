"""DatabetClient against real servers on 127.0.0.1: our simulator (plain and mTLS), an
aiohttp server, and curl against the simulator. Every connection test runs on asyncio and
on uvloop."""

from __future__ import annotations

import asyncio
import math
import shutil

import pytest
from aiohttp import web

from netutil import LOOPS, make_certs, run, server_context, wait_until
from oddswire._http import Endpoint, request
from oddswire.client import ReconnectPolicy
from oddswire.databet import DatabetClient, OddsTable
from oddswire.errors import DecodeError, StaleFeedError
from oddswire.sim.databet import DatabetSimulator
from oddswire.sim.databet_world import DatabetWorld

FAST = ReconnectPolicy(initial=0.01, maximum=0.05)


def assert_table_matches_world(table: OddsTable, world: DatabetWorld) -> None:
    want = {(ev.sport_event_id, m["id"], o["id"]): o
            for ev in world.events.values() for m in ev.markets.values() for o in m["odds"]}
    assert len(table) == len(want)
    for (sid, mid, oid), o in want.items():
        v, p, s, a = table.get(sid, mid, oid)
        assert (v, s, a) == (float(o["value"]), o["status"], o["is_active"])
        assert p == float(o["probability"]) or (math.isnan(p) and "probability" not in o)
    for ev in world.events.values():
        got = table.event(ev.sport_event_id)
        assert got.bet_stop == ev.bet_stop and got.status == ev.fixture["status"]


def recorder(client: DatabetClient) -> dict[str, list]:
    seen: dict[str, list] = {k: [] for k in ("log", "stale", "healthy", "resync", "error")}
    client.on("log", lambda a: seen["log"].append(a.version))
    client.on("stale", lambda r: seen["stale"].append(r))
    client.on("healthy", lambda: seen["healthy"].append(True))
    client.on("resync", lambda r: seen["resync"].append(r))
    client.on("error", lambda e: seen["error"].append(e))
    return seen


@pytest.mark.parametrize("loop", LOOPS)
def test_client_replicates_the_world_through_cuts_stalls_409_and_bad_lines(loop):
    async def main():
        async with DatabetSimulator(seed=3, events=30, rate=1500, chunk=(1, 1500)) as sim:
            client = DatabetClient(sim.url, heartbeat_interval=1, reconnect=FAST)
            seen = recorder(client)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: client.healthy, what="healthy")
            await wait_until(lambda: len(seen["log"]) > 300)
            sim.cut_streams()
            await wait_until(lambda: len(seen["stale"]) >= 1 and client.healthy)
            sim.answer_409_next()
            sim.cut_streams()
            await wait_until(lambda: len(seen["resync"]) >= 3, what="409 resync")
            await wait_until(lambda: client.healthy)
            sim.inject_malformed()
            await wait_until(lambda: any(isinstance(e, DecodeError) for e in seen["error"]))
            stale_before = len(seen["stale"])
            sim.stall(3.5)  # limit is 2 heartbeat intervals = 2 s
            await wait_until(lambda: len(seen["stale"]) > stale_before, timeout=3.4,
                             what="stale within the stall")
            assert not client.healthy and not client.table.healthy
            assert not client.table.bettable_mask().any()
            assert any(isinstance(e, StaleFeedError) for e in seen["error"])
            await wait_until(lambda: client.healthy, what="recovery after the stall")
            sim.pause()
            await asyncio.sleep(0.05)
            await wait_until(lambda: client.version == sim.version, what="catch up")
            await asyncio.sleep(0.1)  # a refetch answer may still be in flight
            await wait_until(lambda: client.version == sim.version, what="catch up")
            assert_table_matches_world(client.table, sim.world)
            assert client.table.bettable_mask().any()
            # nothing applied twice within one stream: versions only ascend between resyncs
            assert client.stats()["regressions"] == 0 and client.stats()["duplicates"] == 0
            await client.stop()
            await task
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_state_file_resumes_from_log_without_loss_or_duplication(loop, tmp_path):
    state = tmp_path / "databet.version"

    async def main():
        async with DatabetSimulator(seed=5, events=20, rate=800) as sim:
            a = DatabetClient(sim.url, state_file=state, reconnect=FAST)
            seen_a = recorder(a)
            task = asyncio.ensure_future(a.run())
            await wait_until(lambda: len(seen_a["log"]) > 200)
            await a.stop()
            await task
            assert state.read_text().strip() == a.version == seen_a["log"][-1]
            await asyncio.sleep(0.2)  # the feed moves on while nobody listens
            b = DatabetClient(sim.url, state_file=state, reconnect=FAST)
            seen_b = recorder(b)
            task = asyncio.ensure_future(b.run())
            await wait_until(lambda: len(seen_b["log"]) > 200)
            sim.pause()
            await wait_until(lambda: b.version == sim.version)
            await b.stop()
            await task
            assert sum(1 for m, p, _ in sim.requests if p == "/all") == 1  # only a's
            got = seen_a["log"] + seen_b["log"]
            first = sim.versions.index(seen_a["log"][0])
            # the refetches b made for events it did not hold are extra logs; all in order
            assert got == sim.versions[first:]
            assert len(set(got)) == len(got)
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_client_over_mutual_tls(loop, tmp_path):
    certs = make_certs(tmp_path)

    async def main():
        async with DatabetSimulator(seed=9, events=10, rate=500,
                                    ssl_context=server_context(certs)) as sim:
            assert sim.url.startswith("https://127.0.0.1:")
            client = DatabetClient(sim.url, cert=str(certs["client"]),
                                   key=str(certs["client_key"]), ca=str(certs["ca"]),
                                   reconnect=FAST)
            task = asyncio.ensure_future(client.run())
            await wait_until(lambda: client.healthy and len(client.table) > 0)
            sim.pause()
            await wait_until(lambda: client.version == sim.version)
            assert_table_matches_world(client.table, sim.world)
            await client.stop()
            await task
            # without a client certificate the server refuses the handshake
            no_cert = DatabetClient(sim.url, ca=str(certs["ca"]), reconnect=ReconnectPolicy(
                max_attempts=2))
            errors = []
            no_cert.on("error", errors.append)
            with pytest.raises(Exception):  # noqa: B017 - ConnectError after the retries
                await no_cert.run()
            assert errors
    run(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_simulator_answers_400_without_last_version(loop):
    async def main():
        async with DatabetSimulator(seed=1, events=3, rate=0) as sim:
            ep = Endpoint.parse(sim.url, None)
            r = await request(ep, "GET", "/log")
            assert r.status == 400
            r = await request(ep, "GET", "/log", {"Last-Version": "0000"})
            assert r.status == 409
            r = await request(ep, "POST", "/refetch/sport-event/nope")
            assert r.status == 404
    run(loop, main)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_reads_all_and_log_over_mtls(tmp_path):
    certs = make_certs(tmp_path)
    tls = ["--cert", str(certs["client"]), "--key", str(certs["client_key"]),
           "--cacert", str(certs["ca"]), "--silent", "--show-error"]

    async def curl(*args: str) -> tuple[int, bytes, bytes]:
        p = await asyncio.create_subprocess_exec(
            "curl", *tls, *args, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await p.communicate()
        return p.returncode or 0, out, err

    async def main():
        async with DatabetSimulator(seed=2, events=12, rate=50,
                                    ssl_context=server_context(certs)) as sim:
            rc, out, err = await curl("--dump-header", str(tmp_path / "h"), f"{sim.url}/all")
            assert rc == 0, err
            lines = out.splitlines()
            assert len(lines) == 12
            head = (tmp_path / "h").read_text().lower()
            assert "transfer-encoding: chunked" in head and "last-version:" in head
            version = next(h for h in (tmp_path / "h").read_text().splitlines()
                           if h.lower().startswith("last-version:"))
            t = OddsTable()
            t.apply_many(lines)
            rc, out, err = await curl("--max-time", "1.5", "--header", version.strip(),
                                      f"{sim.url}/log?heartbeat_interval=1")
            assert rc == 28, err  # curl's "timed out": the stream never ends by itself
            logs = out.splitlines()
            assert logs and all(t.apply(x).known_event for x in logs if b"heartbeat" not in x)
            # without a client certificate the handshake is refused
            p = await asyncio.create_subprocess_exec(
                "curl", "--cacert", str(certs["ca"]), "--silent", f"{sim.url}/all",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            assert await p.wait() != 0
    run("asyncio", main)


@pytest.mark.parametrize("loop", LOOPS)
def test_client_against_an_aiohttp_server(loop):
    """A second, independent HTTP/1.1 implementation with its own chunking."""
    world = DatabetWorld(seed=21, events=25)
    snapshot = world.snapshot_lines()
    base = world.version
    logs = [(world.next_line(), world.version) for _ in range(500)]

    async def all_(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Last-Version": base,
                                           "Content-Type": "application/x-ndjson"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for line in snapshot:
            await resp.write(line + b"\n")
        await resp.write_eof()
        return resp

    async def log(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Last-Version") != base:
            return web.Response(status=409)
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(logs), 7):
            await resp.write(b"".join(x + b"\n" for x, _ in logs[i:i + 7]))
        while True:
            await resp.write(world.heartbeat() + b"\n")
            await asyncio.sleep(0.2)

    async def main():
        app = web.Application()
        app.router.add_get("/all", all_)
        app.router.add_get("/log", log)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        client = DatabetClient(f"http://127.0.0.1:{port}", heartbeat_interval=1, reconnect=FAST)
        seen = recorder(client)
        task = asyncio.ensure_future(client.run())
        await wait_until(lambda: client.version == logs[-1][1])
        assert client.healthy, seen
        assert_table_matches_world(client.table, world)
        await client.stop()
        await task
        await runner.cleanup()
    run(loop, main)
