"""BETCORE games hub: the SignalR JSON hub protocol over WebSocket.

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

from collections import deque
from collections.abc import Callable
from enum import IntEnum
from typing import Any

import orjson

from oddswire.codec import RecordSplitter
from oddswire.errors import HandshakeError, ProtocolError

__all__ = ["HANDSHAKE_REQUEST", "HubDecoder", "MessageType", "encode_message"]

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

    @staticmethod
    def _parse(record: bytes, index: int) -> Any:
        if not record:
            raise ProtocolError(f"empty record #{index} (two separators in a row)")
        try:
            return orjson.loads(record)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"record #{index} is not valid JSON: {exc}") from None

    def _handshake(self, record: bytes, index: int) -> None:
        response = self._parse(record, index)
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
        self.handshake = response
        self._awaiting_handshake = False

    def _message(self, record: bytes, index: int) -> dict[str, Any]:
        msg = self._parse(record, index)
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
