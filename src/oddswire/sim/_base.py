"""What every WebSocket simulator shares: a picows server on loopback with its life cycle,
``url`` (IPv6 in brackets), per-connection sessions, background tasks, flow control, and
the fault vocabulary every feed's tests use: ``stall``, ``drop`` (optionally cutting a frame
in half first), ``send_raw`` / ``inject_malformed``; plus ``run_loop``, the one place that
runs a coroutine on asyncio or uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from picows import (
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from oddswire._aio import cancel_and_wait

__all__ = ["LOOPS", "Session", "WSSimulator", "run_loop", "serve_main", "ws_frame_bytes"]

T = TypeVar("T")
LOOPS = ("asyncio", "uvloop")


def run_loop(loop_kind: str, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a fresh ``asyncio`` or ``uvloop`` event loop."""
    if loop_kind == "uvloop":
        import uvloop
        return uvloop.run(main)
    if loop_kind != "asyncio":
        raise ValueError(f"loop must be one of {LOOPS}, got {loop_kind!r}")
    return asyncio.run(main)


def ws_frame_bytes(payload: bytes, *, fin: bool = True, opcode: int = 0x1) -> bytes:
    """A server-to-client (unmasked) frame on the wire; TEXT by default."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", b0, 126, n) + payload
    return struct.pack("!BBQ", b0, 127, n) + payload


@dataclass
class Session:
    """One client connection as the server sees it."""

    id: int
    transport: WSTransport
    query: dict[str, str] = field(default_factory=dict)
    received: list[Any] = field(default_factory=list)
    paused: bool = False


class _SimListener(WSListener):
    def __init__(self, sim: WSSimulator, query: dict[str, str]) -> None:
        super().__init__()
        self.sim = sim
        self.query = query
        self.session: Session | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.session = self.sim._connected(transport, self.query)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        s = self.session
        if s is not None and self.sim._sessions.pop(s.id, None) is not None:
            self.sim._disconnected(s)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
            return
        if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY) and self.session is not None:
            self.sim._message(self.session, frame.get_payload_as_bytes())

    def pause_writing(self) -> None:
        if self.session is not None:
            self.session.paused = True

    def resume_writing(self) -> None:
        if self.session is not None:
            self.session.paused = False
            self.sim._drained.set()


class WSSimulator:
    """Base of the picows simulators. A feed implements ``_message(session, payload)``,
    optionally ``_refuse(query)`` (an HTTP status to answer the upgrade with instead of 101),
    ``_new_session``, ``_disconnected``, ``_started`` (spawn its generators) and
    ``MALFORMED`` (what ``inject_malformed`` sends)."""

    PATH = "/"
    MALFORMED = b'{"not json'

    def __init__(self, *, ssl_context: Any = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.ssl_context = ssl_context
        self.host, self.port = host, port
        self.connections = 0
        self.refused = 0
        self._sessions: dict[int, Session] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stall_until = 0.0
        self._drained = asyncio.Event()

    # --- life cycle ----------------------------------------------------------------------

    async def start(self: T) -> T:
        sim: WSSimulator = self  # type: ignore[assignment]
        sim._server = await ws_create_server(
            sim._route, sim.host, sim.port, ssl=sim.ssl_context,
            websocket_handshake_timeout=5, enable_auto_pong=True)
        sim.port = sim._server.sockets[0].getsockname()[1]
        sim._started()
        return self

    async def stop(self) -> None:
        await cancel_and_wait(list(self._tasks))
        for s in list(self._sessions.values()):
            s.transport.disconnect(graceful=False)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self: T) -> T:
        return await self.start()  # type: ignore[attr-defined, no-any-return]

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.ssl_context else 'ws'}://{host}:{self.port}{self.PATH}"

    @property
    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    # --- for feeds -------------------------------------------------------------------------

    def _started(self) -> None:
        """The server listens: spawn the feed's generators."""

    def _refuse(self, query: dict[str, str]) -> int | None:
        """An HTTP status (401, 403, ...) to refuse this upgrade with, or None."""
        return None

    def _new_session(self, sid: int, transport: WSTransport, query: dict[str, str]) -> Session:
        return Session(sid, transport, query)

    def _message(self, s: Session, payload: bytes) -> None:
        raise NotImplementedError

    def _disconnected(self, s: Session) -> None:
        """``s`` is gone."""

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _blast_pause(self, sent: bool) -> None:
        """Between passes of a blast loop: yield to the loop after writing, else wait (10 ms
        at most) for a paused session to drain, so a full socket does not spin."""
        if sent:
            await asyncio.sleep(0)
            return
        self._drained.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained.wait(), 0.01)

    def _live(self) -> bool:
        return time.monotonic() >= self._stall_until

    def _send(self, s: Session, payload: bytes) -> None:
        """One text frame to ``s`` unless stalled."""
        if self._live():
            s.transport.send(WSMsgType.TEXT, payload)

    # --- faults --------------------------------------------------------------------------

    def stall(self, seconds: float) -> None:
        """Send nothing at all for ``seconds``."""
        self._stall_until = time.monotonic() + seconds

    def drop(self, mid_frame: bool = False, partial: bytes = b'["t","x",1') -> int:
        """Abort every connection (after half a frame carrying ``partial`` with
        ``mid_frame``); returns how many."""
        n = 0
        for s in list(self._sessions.values()):
            # Forget it first: nothing may follow the cut (picows writes straight to the fd
            # until asyncio closes it, so a later send would land after the partial frame).
            del self._sessions[s.id]
            self._disconnected(s)
            if mid_frame:
                frame = ws_frame_bytes(partial + b" " * 64)
                s.transport.underlying_transport.write(frame[: len(frame) // 2])
            s.transport.underlying_transport.abort()
            n += 1
        return n

    def send_raw(self, payload: bytes) -> None:
        """Send a text frame as it is to every session (malformed data, new kinds)."""
        for s in self._sessions.values():
            s.transport.send(WSMsgType.TEXT, payload)

    def inject_malformed(self) -> None:
        self.send_raw(self.MALFORMED)

    # --- plumbing ------------------------------------------------------------------------

    def _route(self, request: WSUpgradeRequest) -> Any:
        target = request.path.decode("latin-1") if isinstance(request.path, bytes) else str(
            request.path)
        query = {k: v[-1] for k, v in parse_qs(urlsplit(target).query).items()}
        status = self._refuse(query)
        if status is not None:
            self.refused += 1
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(status, b"refused"), None)
        return _SimListener(self, query)

    def _connected(self, transport: WSTransport, query: dict[str, str]) -> Session:
        self.connections += 1
        s = self._new_session(self.connections, transport, query)
        self._sessions[s.id] = s
        return s


async def _serve(make: Callable[[argparse.Namespace], WSSimulator],
                 args: argparse.Namespace) -> None:
    sim = make(args)
    await sim.start()
    print(f"LISTENING {sim.url}", flush=True)
    await asyncio.Event().wait()


def serve_main(prog: str, make: Callable[[argparse.Namespace], WSSimulator],
               configure: Callable[[argparse.ArgumentParser], None]) -> None:
    """``python -m oddswire.sim.FEED``: run a simulator in its own process (the benchmarks
    do, so server and client use two cores) until interrupted."""
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--loop", default="uvloop", choices=LOOPS)
    configure(p)
    args = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        run_loop(args.loop, _serve(make, args))
