"""A small HTTP/1.1 client on asyncio/uvloop transports, for long-lived chunked streams.

The head is parsed once per request; a chunked body goes straight into the Cython
``ChunkedLineSplitter`` and each batch of lines to ``on_lines`` with the receive time.
Bodies of non-200 answers and of small requests are collected whole.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

from oddswire.codec import ChunkedLineSplitter
from oddswire.errors import ConfigError, ConnectError, HTTPStatusError, ProtocolError

__all__ = ["Endpoint", "HTTPResponse", "LineStream", "request"]

MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: ssl.SSLContext | None
    base_path: str

    @classmethod
    def parse(cls, url: str, ssl_context: ssl.SSLContext | None) -> Endpoint:
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError(f"base_url must be http:// or https://host[:port], got {url!r}")
        if u.scheme == "https" and ssl_context is None:
            ssl_context = ssl.create_default_context()
        return cls(u.hostname, u.port or (443 if u.scheme == "https" else 80),
                   ssl_context if u.scheme == "https" else None, u.path.rstrip("/"))


@dataclass
class HTTPResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes = b""


class LineStream(asyncio.Protocol):
    """One request; ``head`` resolves with the response head, ``done`` when it ends."""

    def __init__(self, on_lines: Callable[[list[bytes], int], None] | None,
                 max_line_bytes: int = 64 * 2**20,
                 on_head: Callable[[HTTPResponse], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.head: asyncio.Future[HTTPResponse] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.bytes = 0
        self._on_lines = on_lines
        self._buf = bytearray()
        self._response: HTTPResponse | None = None
        self._splitter: ChunkedLineSplitter | None = None
        self._max_line = max_line_bytes
        self._length: int | None = None
        self._on_head = on_head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        t = time.perf_counter_ns()
        self.bytes += len(data)
        if self._response is None:
            self._buf += data
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    self._fail(ProtocolError("response head larger than 64 KiB"))
                return
            try:
                self._response = self._parse_head(bytes(self._buf[:end]))
            except ProtocolError as e:
                self._fail(e)
                return
            data = bytes(self._buf[end + 4:])
            self._buf.clear()
            if self._response.status == 200 and self._splitter is not None:
                self.head.set_result(self._response)
                if self._on_head is not None:  # before the first lines are handed out
                    self._on_head(self._response)
        if self._splitter is not None and self._response.status == 200:
            try:
                lines = self._splitter.feed(data)
            except ProtocolError as e:
                if e.lines and self._on_lines is not None:
                    self._on_lines(e.lines, t)
                self._fail(e)
                return
            if lines:
                if self._on_lines is not None:
                    self._on_lines(lines, t)
                else:
                    self._response.body += b"\n".join(lines) + b"\n"
            if self._splitter.done:
                self._finish()
        else:
            self._buf += data
            self._collect()

    def _parse_head(self, head: bytes) -> HTTPResponse:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line {lines[0][:80]!r}")
        headers = {}
        for h in lines[1:]:
            name, sep, value = h.partition(b":")
            if not sep or not name or name != name.strip():
                raise ProtocolError(f"bad header line {h[:80]!r}")
            headers[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
        te = headers.get("transfer-encoding", "").lower()
        if te == "chunked":
            self._splitter = ChunkedLineSplitter(self._max_line)
        elif te:
            raise ProtocolError(f"unsupported transfer-encoding {te!r}")
        elif "content-length" in headers:
            if not headers["content-length"].isdigit():
                raise ProtocolError("bad content-length")
            self._length = int(headers["content-length"])
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        return HTTPResponse(int(parts[1]), reason, headers)

    def _collect(self) -> None:
        """Whole-body responses: chunked (decoded) or Content-Length."""
        assert self._response is not None
        if self._splitter is not None:
            try:
                lines = self._splitter.feed(bytes(self._buf))
            except ProtocolError as e:
                self._fail(e)
                return
            self._buf.clear()
            self._response.body += b"\n".join(lines) + (b"\n" if lines else b"")
            if self._splitter.done:
                self._finish()
        elif self._length is not None and len(self._buf) >= self._length:
            self._response.body = bytes(self._buf[: self._length])
            self._finish()

    def _finish(self) -> None:
        assert self._response is not None
        if not self.head.done():
            self.head.set_result(self._response)
        if not self.done.done():
            self.done.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        for fut in (self.head, self.done):
            if not fut.done():
                fut.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if self._response is not None and self._length is None and self._splitter is None:
            self._response.body = bytes(self._buf)  # body delimited by close
            self._finish()
            return
        reason = f": {exc}" if exc else ""
        self._fail(ConnectError(f"connection closed before the response ended{reason}"))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def _send_request(ep: Endpoint, proto: LineStream, method: str, path: str,
                        headers: dict[str, str], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.create_connection(
            lambda: proto, ep.host, ep.port, ssl=ep.tls,
            server_hostname=ep.host if ep.tls else None), timeout)
    except (TimeoutError, OSError, ssl.SSLError) as e:
        raise ConnectError(f"cannot connect to {ep.host}:{ep.port}: {e}") from e
    lines = [f"{method} {ep.base_path}{path} HTTP/1.1", f"Host: {ep.host}:{ep.port}",
             "User-Agent: oddswire", "Accept-Encoding: identity"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    assert proto.transport is not None
    proto.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


async def open_stream(ep: Endpoint, method: str, path: str, headers: dict[str, str],
                      on_lines: Callable[[list[bytes], int], None] | None,
                      timeout: float = 10.0,
                      on_head: Callable[[HTTPResponse], None] | None = None) -> LineStream:
    """Connect, send the request and wait for the head (raises HTTPStatusError on non-200)."""
    proto = LineStream(on_lines, on_head=on_head)
    await _send_request(ep, proto, method, path, headers, timeout)
    try:
        resp = await asyncio.wait_for(asyncio.shield(proto.head), timeout)
    except TimeoutError:
        proto.abort()
        raise ConnectError(f"no response head from {ep.host}:{ep.port} in {timeout}s") from None
    if resp.status != 200:
        await asyncio.wait_for(proto.done, timeout)
        raise HTTPStatusError(resp.status, resp.reason, path=path)
    return proto


async def request(ep: Endpoint, method: str, path: str, headers: dict[str, str] | None = None,
                  timeout: float = 10.0) -> HTTPResponse:
    """A small request whose whole body is wanted (any status)."""
    proto = LineStream(None)
    await _send_request(ep, proto, method, path,
                        {"Content-Length": "0", "Connection": "close", **(headers or {})},
                        timeout)
    try:
        await asyncio.wait_for(proto.done, timeout)
    except TimeoutError:
        proto.abort()
        raise ConnectError(f"no complete response from {ep.host}:{ep.port}") from None
    return await proto.head
