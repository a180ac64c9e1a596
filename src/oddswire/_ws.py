"""The WebSocket layer the picows feeds share (broker, BETCORE, 55-tech, SatoriEx).

``WSFeedClient`` is a ``FeedClient`` that connects with picows and a ``FeedListener`` (the
Cython frame layer in ``oddswire._wire``): URL checks, redaction of secrets, auto-ping,
timeouts, error mapping (HTTP 401/403 at the upgrade is an ``AuthError``, a certificate
that fails verification a ``CertificateError``, both fatal), no redirects for
authenticated connections unless the user allows same-origin ones, the disconnect reason,
a bounded ``_send`` and the listener's C counters folded into ``stats()``. A feed client
writes its listener and its session (authenticate, subscribe), little else.

Secrets: a token in the URL's query (``?token=``, ``?access_token=``, ``?api_key=``) or in
an ``authorization`` header never reaches a log line (picows logs the upgrade request at
its debug level: it logs through a ``RedactingLogger``), an exception message or ``repr``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
from picows import WSCloseCode, WSError, WSHandshakeError, WSMsgType, WSTransport, ws_connect

from oddswire._wire import FeedListener
from oddswire.client import FeedClient, ReconnectPolicy, RecordPath, describe
from oddswire.errors import (
    AuthError,
    CertificateError,
    ConfigError,
    ConnectError,
    ProtocolError,
    StaleFeedError,
)
from oddswire.record import DISCONNECT

__all__ = ["RedactingLogger", "TokenSource", "WSFeedClient", "redact", "resolve_token",
           "wire_logger"]

TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]]

_SECRET_PARAM = re.compile(
    r"(?i)((?:access_?token|token|api_?key|apikey|jwt|password|secret|signature|auth)=)"
    r"[^&\s#'\"]+")
_SECRET_HEADER = re.compile(r"(?i)((?:authorization|x-api-key|cookie)\s*[:=]\s*)[^\r\n,}]+")


def redact(text: str) -> str:
    """``text`` with secret query values and auth headers replaced by ``***``."""
    return _SECRET_HEADER.sub(r"\1***", _SECRET_PARAM.sub(r"\1***", text))


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """What picows logs through: every message is formatted and passed through ``redact``
    before it becomes a record. (A filter on a ``Logger`` would not do: picows logs on a
    child logger it makes per connection, and a logger's filters never see its children's
    records. picows makes no child for an adapter.)"""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.logger.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, "%s", redact(text), **kwargs)


def wire_logger(name: str) -> RedactingLogger:
    """The logger handed to picows (see ``RedactingLogger``)."""
    return RedactingLogger(logging.getLogger(name), {})


async def resolve_token(source: TokenSource, what: str = "token") -> str:
    """A token from a string or a (sync or async) function returning a fresh one."""
    token: Any = source() if callable(source) else source
    if inspect.isawaitable(token):
        token = await token
    if not isinstance(token, str) or not token:
        raise ConfigError(f"{what} must be a non-empty string")
    return token


class WSFeedClient(FeedClient):
    """A ``FeedClient`` on picows (see the module docstring).

    A subclass's ``_attempt`` builds its listener (a ``FeedListener`` with
    ``on_error=self._on_listener_error`` and ``on_disconnected=self._on_ws_disconnected``),
    calls ``await self._ws_connect(listener, url)``, runs its session, then
    ``await self._ws_wait()``; ``_ws_release()`` in its ``finally`` (done by
    ``_ws_session``). ``LISTENER_COUNTERS`` names the listener's counters that ``stats()``
    reports, summed over connections.
    """

    LISTENER_COUNTERS: tuple[str, ...] = ("frames", "bytes", "messages", "pings", "pongs")

    def __init__(self, url: str, *, reconnect: ReconnectPolicy | None, stale_after: float,
                 ssl_context: ssl.SSLContext | None, connect_timeout: float,
                 ping_interval: float, pong_timeout: float, max_message_bytes: int,
                 max_write_buffer: int = 1 << 20, follow_redirects: bool = False,
                 auto_ping: bool = True, record: RecordPath = None) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"{type(self).__name__} url must be ws:// or wss://")
        if not 0 < pong_timeout <= ping_interval:
            raise ConfigError("need 0 < pong_timeout <= ping_interval")
        if max_message_bytes < 1 or max_write_buffer < 1:
            raise ConfigError("max_message_bytes and max_write_buffer must be positive")
        super().__init__(reconnect=reconnect, stale_after=stale_after, record=record,
                         where=redact(url.split("?", 1)[0]))
        self.url = url
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.max_message_bytes = max_message_bytes
        self.max_write_buffer = max_write_buffer
        self.follow_redirects = follow_redirects
        self.auto_ping = auto_ping
        self._last_send = 0.0
        self._wire_log = wire_logger(f"{type(self).__module__}.wire")
        self._transport: WSTransport | None = None
        self._listener: FeedListener | None = None
        self._totals = dict.fromkeys(self.LISTENER_COUNTERS, 0)
        self._secrets: list[str] = []  # the latest credentials, for _scrub

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where} healthy={self.healthy}>"

    def _add_secret(self, secret: str) -> None:
        """A credential that a server may echo back (a refusal naming the token): every
        server-supplied text that reaches an event, a log line or an exception goes
        through ``_scrub``. The last few are kept (a token source may refresh them)."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)
            del self._secrets[:-4]

    async def _resolve_token(self, source: TokenSource, what: str = "token") -> str:
        """``resolve_token``, the token then kept for ``_scrub``."""
        token = await resolve_token(source, what)
        self._add_secret(token)
        return token

    def _scrub(self, text: str) -> str:
        """``text`` with the credentials and secret-looking query values replaced."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact(text)

    @property
    def where(self) -> str:
        """The URL without its query (which may hold credentials)."""
        return redact(self.url.split("?", 1)[0])

    def _flush_metrics(self) -> None:
        if self._listener is not None:
            self._listener.flush_metrics()

    def _volume(self) -> dict[str, int]:
        totals = self.listener_totals()
        return {"messages": totals.get("messages", 0), "nbytes": totals.get("bytes", 0)}

    def _extra_stats(self) -> dict[str, Any]:
        return dict(self.listener_totals())

    def listener_totals(self) -> dict[str, int]:
        """The listener's C counters, summed over every connection so far."""
        totals = dict(self._totals)
        if self._listener is not None:
            for k in totals:
                totals[k] += getattr(self._listener, k)
        return totals

    # --- one connection ------------------------------------------------------------------

    def _listener_options(self) -> dict[str, Any]:
        """The ``FeedListener`` keyword arguments every feed passes."""
        return {"on_error": self._on_listener_error,
                "on_disconnected": self._on_ws_disconnected,
                "max_message_bytes": self.max_message_bytes,
                "max_write_buffer": self.max_write_buffer,
                "record": None if self.recording is None else self.recording.writer,
                "metrics": self.stats_counters if self.stamp_latency else None}

    async def _ws_connect(self, listener: FeedListener, url: str) -> WSTransport:
        """Open the WebSocket (the ``connected`` event); a cancel or failure abandons it.
        In a replay (``oddswire.replay``) the next recorded connection opens instead."""
        if self.tap.replay is not None:
            replayed: WSTransport = await self.tap.replay.ws_connect(listener)
            self._listener, self._transport = listener, replayed
            self._link_up()
            return replayed
        origin = urlsplit(url)[:2]
        for _ in range(4 if self.follow_redirects else 1):
            try:
                transport, _ = await asyncio.wait_for(ws_connect(
                    lambda: listener, url, ssl_context=self.ssl_context,
                    websocket_handshake_timeout=self.connect_timeout,
                    enable_auto_ping=self.auto_ping, auto_ping_idle_timeout=self.ping_interval,
                    auto_ping_reply_timeout=self.pong_timeout, enable_auto_pong=False,
                    logger_name=self._wire_log, max_frame_size=self.max_message_bytes,
                    max_redirects=0), self.connect_timeout)
                break
            except BaseException as e:
                if isinstance(e, WSHandshakeError):  # no connection is left open
                    target = self._redirect_target(e, url, origin)
                    if target is not None:
                        url = target
                        continue
                listener.abandon()
                if not isinstance(e, Exception):
                    raise  # a cancel (stop()) or exit
                raise self._connect_error(e) from e
        else:
            raise ConnectError(f"{self.FEED}: too many redirects from {self.where}")
        self._listener, self._transport = listener, transport
        self._link_up()
        return transport

    def _redirect_target(self, exc: WSHandshakeError, url: str,
                         origin: tuple[str, str]) -> str | None:
        """A same-origin redirect to follow (only with ``follow_redirects``), else None."""
        resp = exc.response
        if not self.follow_redirects or resp is None or not 300 <= int(resp.status) < 400:
            return None
        location = resp.headers.get("Location") if resp.headers else None
        if not location:
            return None
        target = urljoin(url, location)
        return target if urlsplit(target)[:2] == origin else None

    def _connect_error(self, e: Exception) -> Exception:
        where = f"{self.FEED}: cannot connect to {self.where}"
        if isinstance(e, WSHandshakeError) and e.response is not None:
            status = int(e.response.status)
            if status in (401, 403):
                return AuthError(f"{self.FEED}: the server refused the credentials "
                                 f"(HTTP {status} at the upgrade)", code=str(status))
            if 300 <= status < 400:
                return ConnectError(f"{where}: HTTP {status} redirect not followed "
                                    "(authenticated connections do not follow redirects; "
                                    "follow_redirects=True allows same-origin ones)")
            return ConnectError(f"{where}: HTTP {status} at the upgrade")
        if isinstance(e, ssl.SSLCertVerificationError):
            return CertificateError(f"{where}: TLS verification failed: {e.verify_message} "
                                    "(check ssl_context; not retried)")
        if isinstance(e, TimeoutError):
            return ConnectError(f"{where}: timed out after {self.connect_timeout}s")
        return ConnectError(f"{where}: {redact(describe(e))}")

    async def _ws_wait(self, transport: WSTransport) -> None:
        """Until the connection ends."""
        try:
            await transport.wait_disconnected()
        except WSError as e:  # picows' frame parser: garbage on the wire
            raise ProtocolError(f"{self.FEED}: WebSocket protocol error: {e}") from e

    def _ws_release(self, listener: FeedListener, transport: WSTransport | None) -> None:
        """End of an attempt: drop the link if still up, fold the counters in."""
        listener.abandon()
        if transport is not None and not transport.is_disconnected:
            transport.disconnect(graceful=False)
        for k in self._totals:
            self._totals[k] += getattr(listener, k)
        self._listener = self._transport = None

    def _read_socket(self) -> socket.socket | None:
        t = self._transport
        if t is None or t.is_disconnected:
            return None
        sock: socket.socket | None = t.underlying_transport.get_extra_info("socket")
        return sock

    def _send(self, obj: Any) -> None:
        """Send one JSON text message (dropped when not connected)."""
        self._send_bytes(orjson.dumps(obj))

    def _send_bytes(self, payload: bytes) -> None:
        """Send one text message as it is (dropped when not connected). A peer that stopped
        reading (``max_write_buffer`` bytes unsent) costs the connection, not memory."""
        t = self._transport
        if t is None or t.is_disconnected:
            return
        if t.underlying_transport.get_write_buffer_size() > self.max_write_buffer:
            self._error(ProtocolError(f"{self.FEED}: the server does not read what we send "
                                      f"(over {self.max_write_buffer} bytes unsent)"))
            t.disconnect(graceful=False)
            return
        t.send(WSMsgType.TEXT, payload)
        self._last_send = time.monotonic()
        self.tap.sent()

    def _abort(self) -> None:
        t = self._transport
        if t is not None and not t.is_disconnected:
            t.send_close(WSCloseCode.OK, b"bye")
            t.disconnect()

    # --- listener callbacks ----------------------------------------------------------------

    def _on_listener_error(self, exc: BaseException) -> None:
        self._error(exc)

    def _on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.recording is not None:
            self._record_disconnect(transport)
        listener = self._listener
        if listener is not None and listener.pong_timed_out:
            reason = f"no pong within {self.pong_timeout}s"
            self._stale_reason = reason
            self._error(StaleFeedError(f"{self.FEED}: {reason}; reconnecting"))
        else:
            hs = transport.close_handshake
            if hs is not None and hs.recv is not None:
                why = f" {hs.recv.reason}" if hs.recv.reason else ""
                reason = f"closed by server ({_close_code(hs.recv.code)}{why})"
            else:
                reason = "connection lost"
        if self._disconnect_reason is None:  # not already explained by whoever closed it
            self._disconnect_reason = self._scrub(reason)
        self._on_link_lost(self._disconnect_reason)

    def _on_link_lost(self, reason: str) -> None:
        """The WebSocket closed (``reason``): fail what waits on this connection."""

    def _record_disconnect(self, transport: WSTransport) -> None:
        """The ``DISCONNECT`` record: the close handshake as picows saw it, so a replay
        gives the same reason; then the buffer goes to the file."""
        hs = transport.close_handshake
        info: dict[str, Any] = {"pong_timed_out": bool(
            self._listener is not None and self._listener.pong_timed_out)}
        if hs is not None:
            for side in ("recv", "sent"):
                ci = getattr(hs, side)
                info[side] = None if ci is None else [_close_code(ci.code), ci.reason]
            info["recv_then_sent"] = bool(hs.recv_then_sent)
        self.tap.write(DISCONNECT, orjson.dumps(info))
        self.recording.flush()


def _close_code(code: Any) -> int:
    return int(code.value) if isinstance(code, WSCloseCode) else int(code)
