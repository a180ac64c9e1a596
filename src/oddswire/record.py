"""Recordings of a feed's wire payloads: the file format, the writer every client's
``record=PATH`` opens, and the reader ``oddswire.replay`` plays back.

A recording is a small header, then records, appended as they arrive::

    header  b"OWREC" | version u8 | flags u8 (1: zstd) | feed name length u8 | feed name
            | meta length u32 | meta (JSON: the feed's address without its query, start time)
    record  kind u8 | flags u8 | receive time (wall clock, ns) i64 | length u32 | payload

All integers are little-endian. With ``compress=True`` (the ``zstandard`` package, extra
``oddswire[zstd]``) everything after the header is one zstd stream, flushed block by block.

Record kinds: ``FRAME`` (a WebSocket data frame's payload; flags: the frame type, FIN and
last-in-read-buffer bits), ``CONNECT`` (the WebSocket handshake completed), ``DISCONNECT`` (payload:
JSON of the close handshake), ``SEND`` (a marker, no payload: the client's session sent a
message; what it sent is not kept, since logins carry secrets), ``STOP`` (``stop()`` was
called), ``HTTP_OPEN`` (payload: ``"GET /path"``, the query dropped), ``HTTP_DATA`` (one
socket read of an HTTP stream, head and chunked body as received), ``HTTP_CLOSE``
(payload: the error text, empty for a clean close).

Writes go to a C buffer (``oddswire._wire.Recorder``). A plain recording reaches the file
at the end of every socket read (one ``write`` per read, however many frames it held), so a
process that dies loses at most the records of the read it was processing. A zstd
recording is written when 64 KiB are buffered or a second has passed since the last write
(checked at each record and by the client's watchdog), at every disconnect and when
``run()`` ends: a crash loses up to about a second of traffic, the price of compressing
whole blocks. A write cut short leaves a torn last record, which the reader notices,
reports (``Reader.torn_tail``) and stops before. The file is never rewritten: a second
``run()`` of the client appends.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from oddswire._wire import Recorder
from oddswire.errors import ConfigError, RecordingError, RecordingVersionError

__all__ = ["CLOSE", "CONNECT", "DISCONNECT", "FRAME", "HTTP_CLOSE", "HTTP_DATA", "HTTP_OPEN",
           "SEND", "STOP", "VERSION", "Header", "Reader", "Record", "Recording"]

MAGIC = b"OWREC"
VERSION = 1
FLAG_ZSTD = 1

FRAME, CONNECT, DISCONNECT, SEND, STOP, HTTP_OPEN, HTTP_DATA, HTTP_CLOSE = range(1, 9)
CLOSE = DISCONNECT
KIND_NAMES = {FRAME: "frame", CONNECT: "connect", DISCONNECT: "disconnect", SEND: "send",
              STOP: "stop", HTTP_OPEN: "http_open", HTTP_DATA: "http_data",
              HTTP_CLOSE: "http_close"}
#: ``SEND`` flag: sent by the connection's session (the ``run()`` attempt), so a replay
#: waits for the client to send it before playing what came after.
SEND_SESSION = 1
#: ``FRAME`` flags: the low four bits are the WebSocket message type.
FRAME_FIN = 0x10
FRAME_LAST = 0x20

_HEAD = struct.Struct("<BBqI")
_FIXED = struct.Struct("<5sBBB")
_META_LEN = struct.Struct("<I")
_MAX_META = 1 << 20


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise ConfigError("zstd recordings need the zstandard package: "
                          "pip install 'oddswire[zstd]'") from None
    return zstandard


@dataclass(frozen=True)
class Header:
    feed: str
    version: int
    compressed: bool
    meta: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Record:
    kind: int
    flags: int
    ts_ns: int
    payload: bytes

    @property
    def name(self) -> str:
        return KIND_NAMES.get(self.kind, f"kind {self.kind}")


class Recording:
    """One client's recording file: the header written at creation, then the ``Recorder``
    (``writer``) the listeners and streams append to. ``record=PATH`` makes one; an
    existing file is refused (``RecordingError``) rather than overwritten."""

    def __init__(self, path: str | os.PathLike[str], feed: str, *, where: str = "",
                 compress: bool = False, flush_bytes: int = 1 << 16,
                 flush_interval: float = 1.0) -> None:
        self.path = os.fspath(path)
        self.feed = feed
        self.compress = compress
        if compress:
            _zstd()  # fail before creating the file
        meta = json.dumps({"where": where, "started_ns": time.time_ns()}).encode()
        name = feed.encode()
        try:
            fh: BinaryIO = open(self.path, "xb", buffering=0)  # noqa: SIM115 (kept open)
        except FileExistsError:
            raise RecordingError("exists already; a recording is never overwritten",
                                 path=self.path) from None
        except OSError as e:
            raise RecordingError(f"cannot create: {e}", path=self.path) from e
        try:
            fh.write(_FIXED.pack(MAGIC, VERSION, FLAG_ZSTD if compress else 0, len(name))
                     + name + _META_LEN.pack(len(meta)) + meta)
        except OSError as e:
            fh.close()
            raise RecordingError(f"cannot write: {e}", path=self.path) from e
        self._flush_bytes = flush_bytes
        self._flush_interval = flush_interval
        self.on_error: Any = None
        self.writer = self._writer(fh)

    def _writer(self, fh: BinaryIO) -> Recorder:
        sink: Any = fh
        if self.compress:  # one zstd frame per open: a reader concatenates them
            sink = _zstd().ZstdCompressor(write_checksum=True).stream_writer(fh, closefd=True)
        # Plain files are written at the end of every socket read; a zstd stream keeps the
        # size/time bounds, since a block flush per read costs time and compression.
        return Recorder(sink, flush_bytes=self._flush_bytes,
                        flush_interval=self._flush_interval, per_read=not self.compress,
                        on_error=self._failed)

    def reopen(self) -> None:
        """After ``close()``: append again (a client's next ``run()``)."""
        if not self.writer.closed:
            return
        try:
            fh: BinaryIO = open(self.path, "ab", buffering=0)  # noqa: SIM115 (kept open)
        except OSError as e:
            raise RecordingError(f"cannot append: {e}", path=self.path) from e
        self.writer = self._writer(fh)

    def _failed(self, exc: BaseException) -> None:
        err = RecordingError(f"recording stopped: {exc}", path=self.path)
        err.__cause__ = exc
        if self.on_error is not None:
            self.on_error(err)

    def write(self, kind: int, payload: bytes = b"", flags: int = 0) -> None:
        self.writer.write(kind, payload, flags)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    @property
    def closed(self) -> bool:
        return bool(self.writer.closed)

    def __repr__(self) -> str:
        return (f"<Recording {self.path!r} feed={self.feed!r} records={self.writer.records}"
                f"{' zstd' if self.compress else ''}>")


class Reader:
    """The records of a recording, in order. Iterating stops at the end of the file, or
    before a torn last record (a write cut short by a crash): then ``torn`` is the number
    of bytes left unread. A file that is not a recording, or has a damaged header, raises
    ``RecordingError``; another format version ``RecordingVersionError``."""

    CHUNK = 1 << 20

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.torn = 0
        self.torn_tail = False
        self.records = 0
        try:
            self._fh: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 (closed by close())
        except OSError as e:
            raise RecordingError(f"cannot open: {e}", path=self.path) from e
        try:
            self.header = self._read_header()
            self._dctx = _zstd().ZstdDecompressor() if self.header.compressed else None
            self._dobj: Any = None
        except BaseException:
            self._fh.close()
            raise

    def _read_header(self) -> Header:
        fixed = self._fh.read(_FIXED.size)
        if len(fixed) < _FIXED.size or not fixed.startswith(MAGIC):
            raise RecordingError("not an oddswire recording (bad magic)", path=self.path)
        _, version, flags, name_len = _FIXED.unpack(fixed)
        if version != VERSION:
            raise RecordingVersionError(version, VERSION, path=self.path)
        if flags & ~FLAG_ZSTD:
            raise RecordingError(f"unknown header flags {flags:#x}", path=self.path)
        name = self._fh.read(name_len)
        meta_len = self._fh.read(_META_LEN.size)
        if len(name) < name_len or len(meta_len) < _META_LEN.size:
            raise RecordingError("header cut short", path=self.path)
        (n,) = _META_LEN.unpack(meta_len)
        raw = self._fh.read(n) if n <= _MAX_META else b""
        try:
            feed = name.decode()
            meta = json.loads(raw)
        except ValueError:
            raise RecordingError("damaged header", path=self.path) from None
        if len(raw) < n or not isinstance(meta, dict):
            raise RecordingError("damaged header", path=self.path)
        return Header(feed, version, bool(flags & FLAG_ZSTD), meta)

    def __iter__(self) -> Iterator[Record]:
        buf, pos, eof, head = b"", 0, False, _HEAD.size
        while True:
            left = len(buf) - pos
            need = head if left < head else head + _HEAD.unpack_from(buf, pos)[3]
            if left < need:
                if eof:
                    self.torn = left
                    self.torn_tail = self.torn_tail or left > 0
                    return
                more = self._read()
                if more:
                    buf, pos = buf[pos:] + more, 0
                else:
                    eof = True
                continue
            kind, flags, ts, _ = _HEAD.unpack_from(buf, pos)
            start, pos = pos + head, pos + need
            self.records += 1
            yield Record(kind, flags, ts, buf[start:pos])

    def _read(self) -> bytes:
        """The next decoded bytes of the body (b"" at its end)."""
        while True:
            raw = self._fh.read(self.CHUNK)
            if self._dctx is None:
                return raw
            if not raw:  # a zstd frame without its end: the writer died mid-stream
                self.torn_tail = self._dobj is not None and not self._dobj.eof
                return b""
            out = []
            while raw:
                if self._dobj is None or self._dobj.eof:
                    self._dobj = self._dctx.decompressobj()
                try:
                    out.append(self._dobj.decompress(raw))
                except Exception as e:  # ZstdError
                    raise RecordingError(f"damaged zstd stream: {e}", path=self.path) from e
                raw = self._dobj.unused_data if self._dobj.eof else b""
            data = b"".join(out)
            if data:
                return data

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
