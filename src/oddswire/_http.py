"""A small HTTP/1.1 client on asyncio/uvloop transports, for long-lived NDJSON streams.

The head is parsed once per request. A 200 body is split into lines as it arrives and each
batch goes to ``on_lines`` with the receive time: a chunked body through the Cython
``ChunkedLineSplitter``, a ``Content-Length`` or close-delimited one (a proxy that
de-chunks) through ``PlainLineSplitter``; both bounded by ``max_line_bytes``, nothing is
buffered whole. Any other status resolves ``head`` at once and ``open_stream`` drops the
connection without reading the body. ``request()`` collects small bodies whole, up to
``max_body_bytes``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from oddswire._framing import LineSink
from oddswire.codec import ChunkedLineSplitter
from oddswire.errors import (
    CertificateError,
    ConfigError,
    ConnectError,
    HTTPStatusError,
    ProtocolError,
)
from oddswire.record import HTTP_CLOSE, HTTP_DATA, HTTP_OPEN

__all__ = ["Endpoint", "HTTPResponse", "LineStream", "PlainLineSplitter", "open_stream",
           "request"]

MAX_HEAD = 64 * 1024
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: ssl.SSLContext | None
    base_path: str
    #: The client's ``WireTap``: streams opened here are recorded, or replayed.
    tap: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, url: str, ssl_context: ssl.SSLContext | None, *,
              tap: Any = None) -> Endpoint:
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError(f"base_url must be http:// or https://host[:port], got {url!r}")
        if u.scheme == "https" and ssl_context is None:
            ssl_context = ssl.create_default_context()
        return cls(u.hostname, u.port or (443 if u.scheme == "https" else 80),
                   ssl_context if u.scheme == "https" else None, u.path.rstrip("/"), tap)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass
class HTTPResponse:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes = b""


class PlainLineSplitter:
    """NDJSON lines of a body that is not chunked (``Content-Length`` or ended by the
    close), with ``ChunkedLineSplitter``'s line rules: a line ends at ``\\n``, one CR before
    it is dropped, empty lines are skipped, and a line over ``max_line_bytes`` fails."""

    def __init__(self, max_line_bytes: int, length: int | None) -> None:
        self.max_line_bytes = max_line_bytes
        self.remaining = length
        self._partial = bytearray()

    @property
    def done(self) -> bool:
        return self.remaining == 0

    def feed(self, data: bytes) -> list[bytes]:
        if self.remaining is not None:
            if len(data) > self.remaining:
                raise ProtocolError(f"{len(data) - self.remaining} bytes past Content-Length")
            self.remaining -= len(data)
        end = data.rfind(b"\n")
        if end < 0:
            self._partial += data
            self._check()
            return []
        head, tail = data[: end + 1], data[end + 1:]
        if self._partial:
            self._partial += head
            head = bytes(self._partial)
            self._partial = bytearray(tail)
        else:
            self._partial += tail
        self._check()
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in head.split(b"\n")[:-1]]
        if any(len(ln) > self.max_line_bytes for ln in lines):
            raise ProtocolError(f"line longer than max_line_bytes ({self.max_line_bytes})")
        return [ln for ln in lines if ln]

    def eof(self) -> list[bytes]:
        if self.remaining:
            raise ProtocolError(f"body cut short: {self.remaining} bytes of Content-Length "
                                "never arrived")
        last = bytes(self._partial)
        self._partial = bytearray()
        return [last] if last else []

    def _check(self) -> None:
        if len(self._partial) > self.max_line_bytes:
            self._partial = bytearray()
            raise ProtocolError(f"line longer than max_line_bytes ({self.max_line_bytes})")


class LineStream(asyncio.Protocol):
    """One request. ``head`` resolves with the response head (any status), ``done`` when
    the response ended. With ``on_lines`` a 200 body is delivered as lines; without, the
    body is collected into ``head.body`` up to ``max_body_bytes``.

    ``progress_timeout``: fail with ``ConnectError`` when no line (or, before the head, no
    head) arrived for that long: a server that stalls or trickles cannot hold us for ever.

    ``sink``: a ``LineSink`` with ``begin(t_recv)`` / ``end() -> lines`` (such as
    ``oddswire._databet.LogSink``) that a chunked body's lines go to straight from the
    splitter, with no list and no Python call per line; ``on_lines`` still gets the lines
    split in Python (the last line, a body that is not chunked).
    """

    def __init__(self, on_lines: Callable[[list[bytes], int], None] | None, *,
                 max_line_bytes: int = 64 * 2**20, max_body_bytes: int = MAX_BODY,
                 on_head: Callable[[HTTPResponse], None] | None = None,
                 progress_timeout: float | None = None, sink: Any = None) -> None:
        loop = asyncio.get_running_loop()
        self.head: asyncio.Future[HTTPResponse] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        for fut in (self.head, self.done):
            fut.add_done_callback(_retrieve)
        self.transport: asyncio.Transport | None = None
        self.bytes = 0
        self._loop = loop
        self._on_lines = on_lines
        self._sink: Any = sink if isinstance(sink, LineSink) else None
        self._buf = bytearray()
        self._response: HTTPResponse | None = None
        self._splitter: ChunkedLineSplitter | PlainLineSplitter | None = None
        self._chunked = False
        self._length: int | None = None
        self._max_line = max_line_bytes
        self._max_body = max_body_bytes
        self._on_head = on_head
        self._progress_timeout = progress_timeout
        self._last_progress = loop.time()
        self._timer: asyncio.TimerHandle | None = None
        #: ``oddswire._wire.Recorder`` of ``record=PATH``: every read and the close.
        self.recorder: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._last_progress = self._loop.time()
        if self._progress_timeout is not None:
            self._timer = self._loop.call_later(self._progress_timeout, self._check_progress)

    def data_received(self, data: bytes) -> None:
        t = time.perf_counter_ns()
        if self.recorder is not None:
            self.recorder.write(HTTP_DATA, data)
        self.bytes += len(data)
        if self.done.done():
            return
        if self._response is None:
            self._buf += data
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    self._fail(ProtocolError("response head larger than 64 KiB"))
                return
            try:
                self._response = resp = self._parse_head(bytes(self._buf[:end]))
            except ProtocolError as e:
                self._fail(e)
                return
            data = bytes(self._buf[end + 4:])
            self._buf = bytearray()
            self._last_progress = self._loop.time()
            if resp.status == 200 and self._on_lines is not None:
                self._splitter = (ChunkedLineSplitter(self._max_line) if self._chunked
                                  else PlainLineSplitter(self._max_line, self._length))
            self.head.set_result(resp)
            if resp.status == 200 and self._on_head is not None:
                self._on_head(resp)  # before the first lines are handed out
            if self._splitter is not None and self._length == 0:
                self._end_lines(t)
                return
        if self._splitter is not None:
            self._feed_lines(data, t)
        else:
            self._collect(data)

    def _feed_lines(self, data: bytes, t: int) -> None:
        splitter = self._splitter
        assert splitter is not None and self._on_lines is not None
        sink = self._sink
        if sink is not None and isinstance(splitter, ChunkedLineSplitter):
            sink.begin(t)
            try:
                splitter.feed_into(data, sink)
            except Exception as e:  # any failure ends this response
                sink.end()
                self._fail(e if isinstance(e, ProtocolError | ConnectError)
                           else ProtocolError(f"line handling failed: {e!r}"))
                return
            if sink.end():
                self._last_progress = self._loop.time()
            if splitter.done:
                self._end_lines(t)
            return
        try:
            lines = splitter.feed(data)
        except ProtocolError as e:
            if e.lines:
                self._on_lines(e.lines, t)
            self._fail(e)
            return
        if lines:
            self._last_progress = self._loop.time()
            self._on_lines(lines, t)
        if splitter.done:
            self._end_lines(t)

    def _end_lines(self, t: int) -> None:
        assert self._splitter is not None and self._on_lines is not None
        try:
            lines = self._splitter.eof()
        except ProtocolError as e:
            self._fail(e)
            return
        if lines:
            self._on_lines(lines, t)
        self._finish()

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
            self._chunked = True
        elif te:
            raise ProtocolError(f"unsupported transfer-encoding {te!r}")
        elif "content-length" in headers:
            cl = headers["content-length"]
            if not cl.isdigit() or not cl.isascii():
                raise ProtocolError("bad content-length")
            self._length = int(cl)
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        return HTTPResponse(int(parts[1]), reason, headers)

    def _collect(self, data: bytes) -> None:
        """A body wanted whole (``request()``): bounded by ``max_body_bytes``."""
        assert self._response is not None
        self._buf += data
        if self._chunked:
            if self._splitter is None:
                self._splitter = ChunkedLineSplitter(self._max_body)
            try:
                lines = self._splitter.feed(bytes(self._buf))
            except ProtocolError as e:
                self._fail(e)
                return
            self._buf = bytearray()
            self._response.body += b"\n".join(lines) + (b"\n" if lines else b"")
            if self._splitter.done:
                self._finish()
        elif self._length is not None and len(self._buf) >= self._length:
            self._response.body = bytes(self._buf[: self._length])
            self._finish()
        if len(self._buf) > self._max_body or len(self._response.body) > self._max_body:
            self._response.body = (self._response.body or bytes(self._buf))[: self._max_body]
            self._finish()  # enough to tell what happened; the rest is not read

    def _check_progress(self) -> None:
        assert self._progress_timeout is not None
        idle = self._loop.time() - self._last_progress
        if idle >= self._progress_timeout:
            what = "line" if self._response is not None else "response head"
            self._fail(ConnectError(f"no {what} for {idle:.1f}s (progress timeout)"))
        else:
            self._timer = self._loop.call_later(self._progress_timeout - idle,
                                                self._check_progress)

    def _finish(self) -> None:
        assert self._response is not None
        self._stop_timer()
        if not self.head.done():
            self.head.set_result(self._response)
        if not self.done.done():
            self.done.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        self._stop_timer()
        self._splitter = None  # free its buffer now, not when the traceback cycle is collected
        self._buf = bytearray()
        for fut in (self.head, self.done):
            if not fut.done():
                fut.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.recorder is not None:
            self.recorder.write(HTTP_CLOSE, str(exc).encode() if exc else b"")
            self.recorder.flush()
            self.recorder = None
        self._stop_timer()
        if self.done.done():
            return
        if self._response is not None and exc is None and not self._chunked:
            if isinstance(self._splitter, PlainLineSplitter):  # a body ended by the close
                self._end_lines(time.perf_counter_ns())
                return
            if self._splitter is None and self._length is None:
                self._response.body = bytes(self._buf[: self._max_body])
                self._finish()
                return
        reason = f": {exc}" if exc else ""
        where = "response ended" if self._response is not None else "response head arrived"
        self._fail(ConnectError(f"connection closed before the {where}{reason}"))

    def abort(self) -> None:
        self._stop_timer()
        if self.transport is not None:
            self.transport.abort()


def _retrieve(fut: asyncio.Future[Any]) -> None:
    """Mark a failed future's exception as seen: the caller may have stopped waiting."""
    if not fut.cancelled():
        fut.exception()


async def _send_request(ep: Endpoint, proto: LineStream, method: str, path: str,
                        headers: dict[str, str], timeout: float) -> None:
    tap = ep.tap
    if tap is not None and tap.replay is not None:  # the next recorded stream, no socket
        await tap.replay.http_connect(proto, method, path)
        return
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.create_connection(
            lambda: proto, ep.host, ep.port, ssl=ep.tls,
            server_hostname=ep.host if ep.tls else None), timeout)
    except ssl.SSLCertVerificationError as e:
        raise CertificateError(f"TLS verification of {ep} failed: {e.verify_message}; "
                               "check ca= / ssl_context (not retried)") from e
    except TimeoutError as e:
        raise ConnectError(f"cannot connect to {ep}: timed out after {timeout}s") from e
    except (OSError, ssl.SSLError) as e:
        raise ConnectError(f"cannot connect to {ep}: {e}") from e
    lines = [f"{method} {ep.base_path}{path} HTTP/1.1", f"Host: {ep}",
             "User-Agent: oddswire", "Accept-Encoding: identity"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    assert proto.transport is not None
    proto.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if tap is not None and tap.recording is not None and proto._on_lines is not None:
        proto.recorder = tap.recording.writer  # a stream: its reads are recorded
        tap.write(HTTP_OPEN, f"{method} {path.split('?', 1)[0]}".encode())


async def open_stream(ep: Endpoint, method: str, path: str, headers: dict[str, str],
                      on_lines: Callable[[list[bytes], int], None], timeout: float = 10.0, *,
                      on_head: Callable[[HTTPResponse], None] | None = None,
                      max_line_bytes: int = 64 * 2**20,
                      progress_timeout: float | None = None, sink: Any = None) -> LineStream:
    """Connect, send the request and wait for the head. A status other than 200 raises
    ``HTTPStatusError`` at once (its body is not read). Cancelling closes the connection."""
    proto = LineStream(on_lines, on_head=on_head, max_line_bytes=max_line_bytes,
                       progress_timeout=progress_timeout, sink=sink)
    try:
        await _send_request(ep, proto, method, path, headers, timeout)
        try:
            resp = await asyncio.wait_for(asyncio.shield(proto.head), timeout)
        except TimeoutError:
            raise ConnectError(f"no response head from {ep} within {timeout}s") from None
    except BaseException:
        proto.abort()
        raise
    if resp.status != 200:
        proto.abort()
        raise HTTPStatusError(resp.status, resp.reason, path=path)
    return proto


async def request(ep: Endpoint, method: str, path: str, headers: dict[str, str] | None = None,
                  timeout: float = 10.0, max_body_bytes: int = MAX_BODY) -> HTTPResponse:
    """A small request whose body is wanted (any status), at most ``max_body_bytes``.
    Recorded as a ``SEND`` marker only; in a replay nothing is sent and the answer is
    ``204 not sent (replay)``."""
    if ep.tap is not None:
        ep.tap.sent()
        if ep.tap.replay is not None:
            return HTTPResponse(204, "not sent (replay)", {})
    proto = LineStream(None, max_body_bytes=max_body_bytes)
    try:
        await _send_request(ep, proto, method, path,
                            {"Content-Length": "0", "Connection": "close", **(headers or {})},
                            timeout)
        try:
            await asyncio.wait_for(asyncio.shield(proto.done), timeout)
        except TimeoutError:
            got = "a head but no complete body" if proto.head.done() else "no response head"
            raise ConnectError(f"{method} {path}: {got} from {ep} within {timeout}s") from None
    except BaseException:
        proto.abort()
        raise
    return await proto.head
