"""BETCORE games hub: the SignalR JSON hub protocol over WebSocket.

:class:`BetcoreClient` connects, handshakes, subscribes to ``SubOnWholeGamesInfo`` and keeps
:class:`GamesTable` (Rust, numpy columns) current; see its docstring for the session,
liveness and sequence rules, and the wire assumptions.

:class:`HubDecoder` turns WebSocket payloads into SignalR hub messages: 0x1E framing by the
compiled :class:`~oddswire.codec.RecordSplitter`, strict RFC 8259 JSON by orjson, and the
required fields of message types 1-9 checked as ASP.NET Core's ``HubProtocol.md`` defines
them. Unknown fields are ignored and unknown message types are passed through (both
reference clients ignore them for forward compatibility; the client logs them).

Decisions where the references diverge (see ``shared/specs/protocol-notes.md``):
an empty record is an error; a handshake ``{"error": ""}`` is a failure (as .NET);
``Close`` is returned like any message and the client stops dispatching after it.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from oddswire._http import Endpoint, request
from oddswire._wire import FeedListener
from oddswire._ws import TokenSource, WSFeedClient
from oddswire.client import ReconnectPolicy, RecordPath, SequenceTracker
from oddswire.codec import RecordSplitter
from oddswire.errors import (
    AuthError,
    ConfigError,
    ConnectError,
    DecodeError,
    HandshakeError,
    HTTPStatusError,
    ProtocolError,
    StaleFeedError,
)
from oddswire_native import Game, GamesTable, GamesUpdate

__all__ = [
    "EVENTS",
    "HANDSHAKE_REQUEST",
    "BetcoreClient",
    "Game",
    "GamesTable",
    "GamesUpdate",
    "HubDecoder",
    "MessageType",
    "decode_message",
    "encode_message",
    "parse_handshake",
    "subscribe_record",
]

RECORD_SEPARATOR = b"\x1e"
HANDSHAKE_REQUEST = b'{"protocol":"json","version":1}\x1e'


class MessageType(IntEnum):
    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7
    ACK = 8
    SEQUENCE = 9


def encode_message(message: dict[str, Any]) -> bytes:
    """One hub message as a record: compact JSON followed by 0x1E."""
    return orjson.dumps(message) + RECORD_SEPARATOR


def _is_int(value: object) -> bool:
    return type(value) is int


def _str(msg: dict[str, Any], key: str, *, required: bool, nonempty: bool = False) -> str | None:
    if key not in msg:
        return f"missing required property {key!r}" if required else None
    value = msg[key]
    if type(value) is not str:
        return f"{key!r} must be a string"
    if nonempty and not value:
        return f"{key!r} must not be empty"
    return None


def _invocation(msg: dict[str, Any], *, needs_id: bool) -> str | None:
    problem = (_str(msg, "invocationId", required=needs_id, nonempty=True)
               or _str(msg, "target", required=True, nonempty=True))
    if problem:
        return problem
    if type(msg.get("arguments")) is not list:
        return "'arguments' must be an array" if "arguments" in msg else (
            "missing required property 'arguments'")
    stream_ids = msg.get("streamIds")
    if stream_ids is not None and (type(stream_ids) is not list
                                   or any(type(s) is not str for s in stream_ids)):
        return "'streamIds' must be an array of strings"
    return _headers(msg)


def _headers(msg: dict[str, Any]) -> str | None:
    headers = msg.get("headers")
    if headers is not None and (type(headers) is not dict
                                or any(type(v) is not str for v in headers.values())):
        return "'headers' must be an object of strings"
    return None


def _stream_item(msg: dict[str, Any]) -> str | None:
    problem = _str(msg, "invocationId", required=True, nonempty=True)
    if problem:
        return problem
    if "item" not in msg:
        return "missing required property 'item'"
    return _headers(msg)


def _completion(msg: dict[str, Any]) -> str | None:
    problem = _str(msg, "invocationId", required=True, nonempty=True)
    if problem:
        return problem
    if "error" in msg:
        if "result" in msg:
            return "a completion carries both 'result' and 'error'"
        if type(msg["error"]) is not str:
            return "'error' must be a string"
    return _headers(msg)


def _cancel(msg: dict[str, Any]) -> str | None:
    return _str(msg, "invocationId", required=True, nonempty=True) or _headers(msg)


def _close(msg: dict[str, Any]) -> str | None:
    error = msg.get("error")
    if error is not None and type(error) is not str:
        return "'error' must be a string"
    allow = msg.get("allowReconnect")
    if allow is not None and type(allow) is not bool:
        return "'allowReconnect' must be a boolean"
    return None


def _sequence(msg: dict[str, Any]) -> str | None:
    if "sequenceId" not in msg:
        return "missing required property 'sequenceId'"
    if not _is_int(msg["sequenceId"]):
        return "'sequenceId' must be an integer"
    return None


_CHECKS: dict[int, Callable[[dict[str, Any]], str | None]] = {
    1: lambda m: _invocation(m, needs_id=False),
    2: _stream_item,
    3: _completion,
    4: lambda m: _invocation(m, needs_id=True),
    5: _cancel,
    6: lambda m: None,
    7: _close,
    8: _sequence,
    9: _sequence,
}


def _parse(record: bytes, index: int) -> Any:
    if not record:
        raise ProtocolError(f"empty record #{index} (two separators in a row)")
    try:
        return orjson.loads(record)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"record #{index} is not valid JSON: {exc}") from None


def parse_handshake(record: bytes, index: int = 0) -> dict[str, Any]:
    """The HandshakeResponse record: ``{}`` (extra fields ignored) or ``HandshakeError``."""
    response = _parse(record, index)
    if type(response) is not dict:
        raise ProtocolError(
            f"handshake response is a JSON {type(response).__name__}, expected an object")
    if "type" in response:
        raise ProtocolError("expected a handshake response, got a hub message")
    if "error" in response:
        error = response["error"]
        if type(error) is not str:
            raise ProtocolError("handshake 'error' must be a string")
        raise HandshakeError(f"server refused the handshake: {error}")
    return response


def decode_message(record: bytes, index: int = 0) -> dict[str, Any]:
    """One hub message record (no separator) as a dict, its required fields checked."""
    msg = _parse(record, index)
    if type(msg) is not dict:
        raise ProtocolError(
            f"record #{index} is a JSON {type(msg).__name__}, expected an object")
    kind = msg.get("type")
    if kind is None:
        raise ProtocolError(f"record #{index}: missing required property 'type'")
    if not _is_int(kind):
        raise ProtocolError(f"record #{index}: 'type' must be an integer")
    check = _CHECKS.get(kind)
    if check is not None:
        problem = check(msg)
        if problem:
            raise ProtocolError(f"record #{index} (type {kind}): {problem}")
    return msg



class HubDecoder:
    """Turn WebSocket payloads into SignalR hub messages (dicts).

    ``feed(data)`` returns the complete messages the payload finished. An empty record,
    invalid JSON, or a record that is not an object with an integer ``type`` (or lacks a
    required field of its type) raises :class:`ProtocolError`; its ``messages`` holds the
    messages decoded before the bad record, and records after it in the same payload are
    kept and returned by the next ``feed`` call, so one bad record loses nothing else.

    With ``handshake=True`` the first record is the HandshakeResponse, kept in
    ``.handshake``; one with an ``error`` string raises :class:`HandshakeError`.
    """

    def __init__(self, handshake: bool = False, *, max_record_bytes: int = 64 * 2**20) -> None:
        self._splitter = RecordSplitter(max_record_bytes)
        self._awaiting_handshake = handshake
        self.handshake: dict[str, Any] | None = None
        self._records: deque[bytes] = deque()
        self._index = 0

    @property
    def pending(self) -> int:
        """Bytes of an unfinished record."""
        return self._splitter.pending

    def feed(self, data: bytes | bytearray | memoryview) -> list[dict[str, Any]]:
        self._records.extend(self._splitter.feed(data))
        out: list[dict[str, Any]] = []
        records = self._records
        while records:
            record = records.popleft()
            index = self._index
            self._index += 1
            try:
                if self._awaiting_handshake:
                    self._handshake(record, index)
                else:
                    out.append(self._message(record, index))
            except ProtocolError as exc:
                exc.messages = out
                raise
        return out

    def eof(self) -> None:
        """End of stream: raise ProtocolError if a record is unfinished, or if the handshake
        response was expected and never came (the server disconnected before answering)."""
        self._splitter.eof()
        if self._awaiting_handshake:
            raise ProtocolError("stream ended before the handshake response")

    def _handshake(self, record: bytes, index: int) -> None:
        self.handshake = parse_handshake(record, index)
        self._awaiting_handshake = False

    @staticmethod
    def _message(record: bytes, index: int) -> dict[str, Any]:
        return decode_message(record, index)


# --- the client ----------------------------------------------------------------------------

#: Events a BetcoreClient emits, and what the callback receives.
EVENTS = frozenset({
    "games",         # (update: GamesUpdate) a WholeGamesInfoSubscribe applied to the table
    "gap",           # (expected, got) sId skipped, repeated or went back
    "closed",        # (error, allow_reconnect) the hub sent Close
    "message",       # (dict) any other hub message (Completion, another invocation, ...)
    "connected",     # () WebSocket open (before the handshake)
    "disconnected",  # (reason) the connection ended
    "stale",         # (reason) healthy went False: no update for stale_after, maintenance, ...
    "healthy",       # () healthy went True again
    "error",         # (exception) bad records, callback errors, timeouts
})
PING_RECORD = b'{"type":6}' + RECORD_SEPARATOR


def subscribe_record(target: str, game_type: int, partner_client_id: int, count: int) -> bytes:
    """A ``Subscribe`` (or ``Unsubscribe``) invocation exactly as the spec's example writes
    it: ``arguments`` = ``["SubOnWholeGamesInfo", "{ \\"GameType\\": 1, ... }"]``."""
    params = (f'{{ "GameType": {game_type}, "PartnerClientId": {partner_client_id}, '
              f'"Count": {count} }}')
    return encode_message({"arguments": ["SubOnWholeGamesInfo", params], "target": target,
                           "type": 1})


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class _Resume:
    """SignalR stateful reconnect bookkeeping (HubProtocol Ack 8 / Sequence 9): trackable
    messages (types 1-5) carry implicit ids from 1, not reset by a reconnect; each side
    acks the highest it processed, keeps what the other has not acked, and after a
    reconnect sends a Sequence (the id of the first message it replays) and replays."""

    def __init__(self, base: str, token: str, buffer_bytes: int) -> None:
        self.base = base  # the hub URL after negotiate's redirects
        self.token = token
        self.access_token: str | None = None  # a redirect's, when it gave one
        self.buffer_bytes = buffer_bytes
        self.rx_last = 0  # the highest id processed
        self.rx_next = 1  # the id of the next trackable message received
        self.acked = 0  # the highest id we acked
        self.tx_id = 0  # the id of the last trackable message we sent
        self.unacked: deque[tuple[int, bytes]] = deque()
        self.unacked_bytes = 0
        self.duplicates = 0

    def sent(self, record: bytes) -> None:
        self.tx_id += 1
        self.unacked.append((self.tx_id, record))
        self.unacked_bytes += len(record)
        while self.unacked_bytes > self.buffer_bytes and len(self.unacked) > 1:
            self.unacked_bytes -= len(self.unacked.popleft()[1])

    def received(self) -> bool:
        """A trackable message arrived: False when it is a replay already processed."""
        rid, self.rx_next = self.rx_next, self.rx_next + 1
        if rid <= self.rx_last:
            self.duplicates += 1
            return False
        self.rx_last = rid
        return True

    def on_ack(self, sequence_id: int) -> None:
        while self.unacked and self.unacked[0][0] <= sequence_id:
            self.unacked_bytes -= len(self.unacked.popleft()[1])

    def ack_due(self) -> bytes | None:
        if self.rx_last <= self.acked:
            return None
        self.acked = self.rx_last
        return encode_message({"type": MessageType.ACK, "sequenceId": self.rx_last})

    def replay(self) -> list[bytes]:
        first = self.unacked[0][0] if self.unacked else self.tx_id + 1
        return [encode_message({"type": MessageType.SEQUENCE, "sequenceId": first}),
                *(record for _, record in self.unacked)]


def _record_type(record: bytes) -> int:
    """The ``type`` of a hub message record: read in place when it comes first (as servers
    write it), else from the decoded message."""
    if record.startswith(b'{"type":'):
        end = 8
        while end < len(record) and 48 <= record[end] <= 57:
            end += 1
        if end > 8 and end < len(record) and record[end] in b",}":
            return int(record[8:end])
    kind: int = decode_message(record)["type"]
    return kind


class BetcoreClient(WSFeedClient):
    """The BETCORE games hub: connect to ``url?access_token=...``, send the JSON handshake,
    subscribe to ``SubOnWholeGamesInfo`` once per game type, and apply every
    ``WholeGamesInfoSubscribe`` to ``table`` (a ``GamesTable``, Rust: the invocation is
    decoded straight from the record bytes) before the ``games`` callbacks run.

    ``access_token``: the JWT, or a function (sync or async) returning a fresh one per
    connection; it never appears in a log line, an exception or ``repr``. HTTP 401/403 at
    the upgrade raises ``AuthError`` and a refused handshake ``HandshakeError`` from
    ``run()``, without retrying. ``negotiate=True`` first does ``POST
    {url}/negotiate?negotiateVersion=1`` (following its redirects) and connects with the
    ``connectionToken`` as ``id``, for hubs that require it.

    ``sId`` is one counter per connection, not reset on reconnect: a skip, a repeat or a
    step back fires ``gap(expected, got)`` and is counted; every update carries whole game
    states, so a gap is reported, not resynced. An update whose ``sId`` and ``tst`` are both
    at or before the last applied one's is a redelivery: reported, not applied to the table
    (``GamesTable.skip_redeliveries``), no ``games`` callback. ``bt`` is read as the
    seconds left to bet.

    Liveness (HubProtocol): a Ping when nothing was sent for ``keepalive_interval``
    seconds; no message at all from the server for ``server_timeout`` seconds drops the
    connection. ``healthy`` drops (``stale``) after ``stale_after`` seconds without an
    update (4x the 500 ms cadence) without dropping the connection, and while the hub
    reports maintenance (``im``); the table's ``is_bettable`` follows it. A Close message
    fires ``closed(error, allow_reconnect)``: the client reconnects only when allowed,
    otherwise ``run()`` returns.

    ``stateful_reconnect=True`` (with ``negotiate=True``) asks the hub for SignalR stateful
    reconnect; when it offers it, a dropped connection is resumed with the same connection
    token: both sides replay what the other had not acked (Sequence + replay), replays
    already processed are dropped, and nothing sent during a short drop is lost. A resume
    the hub refuses falls back to a fresh negotiate and subscribe.

    Assumed (not in the spec): ``Unsubscribe`` takes the same arguments as ``Subscribe``.
    """

    EVENTS = EVENTS
    FEED = "BETCORE"

    def __init__(self, url: str, *, access_token: TokenSource, partner_client_id: int,
                 game_types: Iterable[int] = (1,), count: int = 1, negotiate: bool = False,
                 table: GamesTable | None = None, retention_s: float | None = 300.0,
                 stale_after: float = 2.0, server_timeout: float = 30.0,
                 keepalive_interval: float = 15.0, handshake_timeout: float = 15.0,
                 reconnect: ReconnectPolicy | None = None,
                 ssl_context: ssl.SSLContext | None = None, connect_timeout: float = 10.0,
                 max_message_bytes: int = 4 << 20, max_write_buffer: int = 1 << 20,
                 follow_redirects: bool = False,
                 stateful_reconnect: bool = False,
                 stateful_buffer_bytes: int = 100_000, record: RecordPath = None) -> None:
        if not isinstance(partner_client_id, int) or isinstance(partner_client_id, bool):
            raise ConfigError("partner_client_id must be an int")
        if stateful_reconnect and not negotiate:
            raise ConfigError("stateful_reconnect needs negotiate=True (SignalR resumes a "
                              "negotiated connection token)")
        if count < 1 or server_timeout <= 0 or keepalive_interval <= 0:
            raise ConfigError("count, server_timeout and keepalive_interval must be positive")
        super().__init__(url, reconnect=reconnect, stale_after=stale_after,
                         ssl_context=ssl_context, connect_timeout=connect_timeout,
                         ping_interval=keepalive_interval, pong_timeout=keepalive_interval,
                         max_message_bytes=max_message_bytes, max_write_buffer=max_write_buffer,
                         follow_redirects=follow_redirects, auto_ping=False, record=record)
        self._token = access_token
        self.partner_client_id = partner_client_id
        self.count = count
        self.negotiate = negotiate
        self.table = table if table is not None else GamesTable(retention_s=retention_s)
        self.server_timeout = server_timeout
        self.keepalive_interval = keepalive_interval
        self.handshake_timeout = handshake_timeout
        self.sequence = SequenceTracker(contiguous=True)
        self.updates = 0
        self._game_types: set[int] = set()
        for t in game_types:
            self._game_types.add(_game_type(t))
        self._records: RecordSplitter | None = None
        self._handshake: asyncio.Future[dict[str, Any]] | None = None
        self._seen = 0
        self._last_rx = 0.0
        self._maintenance = False
        self._hub_closed = False
        self.stateful_reconnect = stateful_reconnect
        self.stateful_buffer_bytes = stateful_buffer_bytes
        self._resume: _Resume | None = None
        self.table.healthy = False
        self.table.skip_redeliveries = True

    # --- public API ----------------------------------------------------------------------

    @property
    def game_types(self) -> frozenset[int]:
        """The subscription set, replayed after every reconnect."""
        return frozenset(self._game_types)

    def subscribe(self, game_type: int) -> None:
        """Add a game type (sent now when connected)."""
        game_type = _game_type(game_type)
        if game_type not in self._game_types:
            self._game_types.add(game_type)
            if self._ready():
                self._send_trackable(subscribe_record("Subscribe", game_type,
                                                      self.partner_client_id, self.count))

    def unsubscribe(self, game_type: int) -> None:
        if game_type in self._game_types:
            self._game_types.discard(game_type)
            if self._ready():
                self._send_trackable(subscribe_record("Unsubscribe", game_type,
                                                      self.partner_client_id, self.count))

    def _extra_stats(self) -> dict[str, Any]:
        return {**super()._extra_stats(), "updates": self.updates, "games": len(self.table),
                "sid": self.sequence.last, "duplicates": self.sequence.duplicates,
                "regressions": self.sequence.regressions,
                "replays_dropped": self._resume.duplicates if self._resume else 0,
                "resumable": self._resume is not None}

    # --- one connection ------------------------------------------------------------------

    async def _attempt(self) -> None:
        token = await self._resolve_token(self._token, "access_token")
        resume = self._resume
        if resume is not None:
            url = _with_query(resume.base, id=resume.token)
            token = resume.access_token or token
        elif self.negotiate:
            url, token = await self._negotiated(token)
        else:
            url = self.url
        self._records = RecordSplitter(self.max_message_bytes)
        self._hub_closed = False
        self._handshake = asyncio.get_running_loop().create_future()
        self._handshake.add_done_callback(_retrieve)
        listener = FeedListener(on_message=self._on_frame, **self._listener_options())
        transport = None
        try:
            try:
                transport = await self._ws_connect(listener,
                                                   _with_query(url, access_token=token))
                self._send_bytes(HANDSHAKE_REQUEST)
                try:
                    await asyncio.wait_for(asyncio.shield(self._handshake),
                                           self.handshake_timeout)
                except TimeoutError:
                    raise ConnectError(f"BETCORE: no handshake response within "
                                       f"{self.handshake_timeout}s") from None
            except (ConnectError, AuthError, HandshakeError) as e:
                if resume is None:
                    raise
                self._resume = None  # the hub would not resume: negotiate afresh next time
                raise ConnectError(f"BETCORE: stateful reconnect refused ({e}); "
                                   "negotiating a new connection") from e
            self._seen, self._last_rx = listener.messages, time.monotonic()
            if resume is not None:
                for record in resume.replay():
                    self._send_bytes(record)
            else:
                for game_type in sorted(self._game_types):
                    self._send_trackable(subscribe_record(
                        "Subscribe", game_type, self.partner_client_id, self.count))
            await self._ws_wait(transport)
        finally:
            self._ws_release(listener, transport)

    def _send_trackable(self, record: bytes) -> None:
        """An invocation (kept for replay while the hub has not acked it, when resumable)."""
        if self._resume is not None:
            self._resume.sent(record)
        self._send_bytes(record)

    def _ready(self) -> bool:
        return (self._transport is not None and self._handshake is not None
                and self._handshake.done() and not self._handshake.exception())

    def _is_fatal(self, exc: BaseException) -> bool:
        return super()._is_fatal(exc) or isinstance(exc, HandshakeError)

    async def _negotiated(self, token: str) -> tuple[str, str]:
        """The WebSocket URL after ``POST .../negotiate?negotiateVersion=1``, and the access
        token for it: a redirect's ``accessToken`` replaces ours, as in the reference
        clients."""
        base = self.url
        for _ in range(10):
            http = "https" + base[3:] if base.startswith("wss") else "http" + base[2:]
            parts = urlsplit(http)
            ep = Endpoint.parse(urlunsplit(parts._replace(query="", path="")),
                                self.ssl_context)
            params = {"negotiateVersion": "1"}
            if self.stateful_reconnect:
                params["useStatefulReconnect"] = "true"
            path = _with_query(parts.path.rstrip("/") + "/negotiate", **params)
            resp = await request(ep, "POST", path, {"Authorization": f"Bearer {token}"},
                                 timeout=self.connect_timeout)
            if resp.status in (401, 403):
                raise AuthError(f"BETCORE: negotiate refused the token (HTTP {resp.status})",
                                code=str(resp.status))
            if resp.status != 200:
                raise HTTPStatusError(resp.status, resp.reason, path="/negotiate")
            try:
                body = orjson.loads(resp.body)
            except orjson.JSONDecodeError as e:
                raise ProtocolError(f"BETCORE: negotiate answered invalid JSON: {e}") from None
            if not isinstance(body, dict):
                raise ProtocolError("BETCORE: negotiate answered a non-object")
            if isinstance(body.get("error"), str):
                raise HandshakeError(f"BETCORE: negotiate refused: {self._scrub(body['error'])}")
            if isinstance(body.get("url"), str):  # redirect: negotiate again there
                base = body["url"].replace("https://", "wss://").replace("http://", "ws://")
                if isinstance(body.get("accessToken"), str):
                    token = body["accessToken"]
                    self._add_secret(token)
                continue
            conn = body.get("connectionToken") or body.get("connectionId")
            if not isinstance(conn, str) or not conn:
                raise ProtocolError("BETCORE: negotiate answered no connectionToken")
            if conn == body.get("connectionToken"):
                self._add_secret(conn)  # the connection token is a credential; the id is not
            if self.stateful_reconnect and body.get("useStatefulReconnect") is True:
                self._resume = _Resume(base, conn, self.stateful_buffer_bytes)
                self._resume.access_token = token
            return _with_query(base, id=conn), token
        raise ProtocolError("BETCORE: negotiate redirected more than 10 times")

    # --- records -------------------------------------------------------------------------

    def _on_frame(self, payload: bytes) -> None:
        assert self._records is not None
        try:
            records = self._records.feed(payload)
        except ProtocolError as e:  # a record over max_message_bytes: hopeless
            for record in e.lines:
                if not self._hub_closed:
                    self._on_record(record)
            self._error(e)
            if self._transport is not None:
                self._transport.disconnect(graceful=False)
            return
        for record in records:
            if self._hub_closed:  # like .NET: nothing after a Close is dispatched
                break
            self._on_record(record)

    def _on_record(self, record: bytes) -> None:
        handshake = self._handshake
        assert handshake is not None
        if not handshake.done():
            try:
                handshake.set_result(parse_handshake(record))
            except ProtocolError as e:  # its text is the server's: it may echo the token
                handshake.set_exception(type(e)(self._scrub(str(e))))
                return
            # Records in the same read as the response are updates: they raise healthy.
            self.gate.release()
            return
        resume = self._resume
        if resume is not None and not self._resumable(resume, record):
            return
        try:
            update = self.table.apply(record)
        except DecodeError as e:
            self._error(e)
            return
        listener = self._listener
        if update is not None:
            if listener is not None:
                listener.mark_decoded()
                listener.stamp(update.tst)
            self._on_update(update)
            return
        try:
            msg = decode_message(record)
        except ProtocolError as e:
            self._error(e)
            return
        if listener is not None:
            listener.mark_decoded()
        kind = msg["type"]
        if kind == MessageType.PING:
            return
        if kind == MessageType.CLOSE:
            self._on_close(msg)
            return
        self.callbacks.emit("message", msg)

    def _resumable(self, resume: _Resume, record: bytes) -> bool:
        """Stateful reconnect bookkeeping for one record: False when it is consumed here
        (Ack, Sequence) or is a replay already processed."""
        try:
            kind = _record_type(record)
        except ProtocolError:
            return True  # reported by the normal path
        if 1 <= kind <= 5:
            return resume.received()
        if kind in (MessageType.ACK, MessageType.SEQUENCE):
            try:
                seq = decode_message(record)["sequenceId"]
            except ProtocolError as e:
                self._error(e)
                return False
            if kind == MessageType.ACK:
                resume.on_ack(seq)
            else:
                resume.rx_next = seq
            return False
        return True

    def _on_update(self, update: GamesUpdate) -> None:
        self.updates += 1
        if self._established_at is None:
            self._mark_established()
        sid, last = update.sid, self.sequence.last
        if not update.applied:
            # A redelivery no newer than the table (sId and tst both at or before its
            # last): reported, and left out, so newer coefficients are never rolled back.
            self.sequence.duplicates += 1
            self.stats_counters.gaps += 1
            self.callbacks.emit("gap", (sid if last is None else last) + 1, sid)
            return
        verdict = self.sequence.observe(sid)
        if verdict != "ok":
            self.stats_counters.gaps += 1
            if verdict == "regress":  # the hub restarted its counter: follow it
                self.sequence.reset(sid)
            self.callbacks.emit("gap", last + 1, sid)
        if update.im != self._maintenance:
            self._maintenance = update.im
            if update.im:
                self.gate.hold("maintenance", "the hub reports maintenance (im)")
            else:
                self.gate.clear("maintenance")
        self.gate.touch()
        games = self.callbacks.direct("games")
        if games is not None:
            try:
                games(update)
            except Exception as e:  # a bot's bug must not kill the feed
                self.callbacks.report("games", e)

    def _on_close(self, msg: dict[str, Any]) -> None:
        self._hub_closed = True
        self._resume = None  # a Close ends the logical connection: no resume after it
        error, allow = msg.get("error"), msg.get("allowReconnect") is True
        self.callbacks.emit("closed", error, allow)
        self._disconnect_reason = "hub Close" + (f": {self._scrub(error)}" if error else "")
        if not allow:
            self.stop()
        elif self._transport is not None:
            self._transport.disconnect()


    def _on_link_lost(self, reason: str) -> None:
        records = self._records
        if records is not None and records.pending and not self._stopping:
            try:  # .NET: "Connection terminated while reading a message."
                records.eof()
            except ProtocolError as e:
                self._error(ProtocolError(f"BETCORE: the connection ended inside a record "
                                          f"({e})"))

    # --- liveness ------------------------------------------------------------------------

    def _check_liveness(self) -> None:
        listener = self._listener
        if listener is None or not self._ready():
            return
        now = time.monotonic()
        if listener.messages != self._seen:
            self._seen, self._last_rx = listener.messages, now
        elif now - self._last_rx > self.server_timeout:
            reason = f"no message from the hub for {self.server_timeout:g}s"
            self._error(StaleFeedError(f"BETCORE: {reason}; reconnecting"))
            self._stale_reason = self._disconnect_reason = reason
            if self._transport is not None:
                self._transport.disconnect(graceful=False)
            return
        ack = self._resume.ack_due() if self._resume is not None else None
        if ack is not None:
            self._send_bytes(ack)
        elif now - self._last_send >= self.keepalive_interval:
            self._send_bytes(PING_RECORD)
        if not self.gate.held and not self.gate.check():
            self.gate.release()  # quiet games are not a dead link: the next update raises it

    def _health_changed(self, healthy: bool, reason: str) -> None:
        self.table.healthy = healthy
        super()._health_changed(healthy, reason)


def _game_type(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"game types are non-negative ints, got {value!r}")
    return value


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
