"""Exceptions raised by oddswire.

Every message names what was wrong and where (stream offset, field index, sport event,
version) and never includes a secret: tokens, api keys and key material are not
formatted into any message or ``repr``.
"""

from __future__ import annotations

__all__ = [
    "AccountSwitchError",
    "AuthError",
    "BuildError",
    "CallbackError",
    "CertificateError",
    "ConfigError",
    "ConnectError",
    "DecodeError",
    "HTTPStatusError",
    "HandshakeError",
    "OddswireError",
    "ProtocolError",
    "RecordingError",
    "RecordingVersionError",
    "RepeatedError",
    "ResyncRequired",
    "StaleFeedError",
]


class OddswireError(Exception):
    """Base class of every error oddswire raises on purpose."""


class ProtocolError(OddswireError):
    """The peer broke the wire protocol (framing, handshake, message shape).

    ``offset`` is the byte offset in the stream where the violation was detected, when
    known. ``lines`` holds the complete lines or records that the failing ``feed`` call had
    already decoded before the error, and ``messages`` the decoded messages (hub
    decoders), so nothing decoded is lost with the exception.
    """

    def __init__(self, message: str, *, offset: int | None = None,
                 lines: list[bytes] | None = None,
                 messages: list[dict[str, object]] | None = None) -> None:
        if offset is not None:
            message = f"{message} (at byte offset {offset})"
        super().__init__(message)
        self.offset = offset
        self.lines: list[bytes] = lines if lines is not None else []
        self.messages: list[dict[str, object]] = messages if messages is not None else []


class HandshakeError(ProtocolError):
    """The server refused the protocol handshake (SignalR ``{"error": ...}``)."""


class DecodeError(OddswireError, ValueError):
    """A message could not be decoded into the expected shape.

    ``field`` is the index (compact arrays) or name (JSON objects) of the offending field;
    ``sport_event_id`` and ``version`` identify the DATA.BET log line when known.
    """

    def __init__(self, message: str, *, field: int | str | None = None,
                 sport_event_id: str | None = None, version: str | None = None,
                 index: int | None = None) -> None:
        where = []
        if index is not None:
            where.append(f"line {index}")
        if field is not None:
            where.append(f"field {field!r}")
        if sport_event_id is not None:
            where.append(f"sport_event_id {sport_event_id}")
        if version is not None:
            where.append(f"version {version}")
        if where:
            message = f"{message} ({', '.join(where)})"
        super().__init__(message)
        self.field = field
        self.sport_event_id = sport_event_id
        self.version = version
        self.index = index


class AuthError(OddswireError):
    """Authentication was refused; the client stops instead of retrying in a storm.
    ``code`` is the server's error code (``INVALID_TOKEN``, ...), never the credential."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class AccountSwitchError(OddswireError):
    """The server refused an ``account.switch``: ``code`` (``PERMISSION_DENIED``, ...) and
    the ``login`` it named."""

    def __init__(self, code: str, login: object = None) -> None:
        super().__init__(f"account.switch refused: {code}" + (f" (login {login})"
                                                              if login is not None else ""))
        self.code = code
        self.login = login


class ConnectError(OddswireError):
    """The transport could not be opened or was lost."""


class RepeatedError(OddswireError):
    """The same error repeated on one connection. The first one was reported as it
    happened; this summary, sent when the connection ends, says how many more followed.
    ``first`` is that first exception, ``count`` the number of repeats after it."""

    def __init__(self, first: BaseException, count: int) -> None:
        super().__init__(f"{count} more like: {type(first).__name__}: {first}")
        self.first = first
        self.count = count


class HTTPStatusError(OddswireError):
    """An HTTP request got a status the protocol does not allow at that point."""

    def __init__(self, status: int, reason: str, *, path: str) -> None:
        super().__init__(f"HTTP {status} {reason} for {path}")
        self.status = status
        self.reason = reason
        self.path = path


class ResyncRequired(OddswireError):
    """The server can no longer serve our position (DATA.BET 409); a full resync follows."""


class StaleFeedError(OddswireError):
    """The feed missed its liveness deadline."""


class CallbackError(OddswireError):
    """A user callback raised; the original exception is the ``__cause__``."""


class ConfigError(OddswireError, ValueError):
    """A client or codec was configured with an invalid argument."""


class CertificateError(ConfigError):
    """TLS verification failed (the server's certificate is not trusted, or names another
    host, or our client certificate was refused): a configuration problem that retrying
    will not fix, so the client stops."""


class BuildError(ImportError):
    """A compiled module is missing: oddswire never falls back to pure Python silently."""


class RecordingError(OddswireError):
    """A recording (``record=PATH``, ``oddswire.replay``) cannot be written or read: not a
    recording, a damaged header, a file that exists already, zstd wanted but not installed.
    ``path`` names the file."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class RecordingVersionError(RecordingError):
    """The recording was written in a format version this oddswire does not read."""

    def __init__(self, version: int, supported: int, *, path: str | None = None) -> None:
        super().__init__(f"recording format version {version}; this oddswire reads "
                         f"version {supported} (replay it with the oddswire that wrote it)",
                         path=path)
        self.version = version
        self.supported = supported
