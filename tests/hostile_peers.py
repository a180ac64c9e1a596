"""Helpers for the hostile-peer suites of the BETCORE and 55-tech clients: `websockets`
servers on 127.0.0.1 port 0, a TCP peer that never answers the upgrade, a port nobody
listens on, a root log capture and "run() ended promptly" checks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

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


async def ended_within(task: asyncio.Task[Any], seconds: float, what: str) -> None:
    done, _ = await asyncio.wait([task], timeout=seconds)
    assert done, f"run() still running {seconds}s after {what}"


async def stop_and_end(client: Any, task: asyncio.Task[Any], seconds: float = 2) -> None:
    """``stop()`` ends ``run()`` within ``seconds``, without an exception."""
    await asyncio.wait_for(client.stop(), seconds)
    await ended_within(task, seconds, "stop()")
    task.result()
    assert not client.running
