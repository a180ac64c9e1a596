"""Pure-Python twins of the compiled framing codecs in ``oddswire._framing``.

Same API, same state machine, same errors at the same offsets: these are the oracle of
the property tests and the baseline of the benchmarks, never a runtime fallback.
"""

from __future__ import annotations

from collections.abc import Callable

from oddswire.errors import ProtocolError

__all__ = ["ChunkedLineSplitter", "RecordSplitter"]

MAX_CHUNK_SIZE = 1 << 62
CR, LF = 13, 10
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_VISIBLE = frozenset([9, 32, *range(0x21, 0x7F), *range(0x80, 0x100)])
_QDTEXT = _VISIBLE - {0x22, 0x5C}
# Never int(x, 16): it accepts " 8", "+8", "0x8", "1_0" and non-ASCII digits.
_HEXVAL = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}
_WS = (32, 9)

(S_SIZE_START, S_SIZE, S_SIZE_BWS, S_EXT_PRE_NAME, S_EXT_NAME, S_EXT_POST_NAME,
 S_EXT_PRE_VALUE, S_EXT_TOKEN, S_EXT_QUOTED, S_EXT_QUOTED_ESCAPE, S_EXT_POST_VALUE,
 S_SIZE_LF, S_DATA, S_DATA_CR, S_DATA_LF, S_TRAILER_START, S_TRAILER_NAME, S_TRAILER_VALUE,
 S_TRAILER_LF, S_END_LF, S_DONE, S_FAILED) = range(22)

_STATE_NAMES = (
    "chunk size", "chunk size", "chunk size", "chunk extension", "chunk extension",
    "chunk extension", "chunk extension", "chunk extension", "chunk extension",
    "chunk extension", "chunk extension", "chunk size line", "chunk data",
    "CRLF after chunk data", "CRLF after chunk data", "trailer section", "trailer field",
    "trailer field", "trailer field", "final CRLF", "end of body", "failed",
)


def _line_overflow(cur: int, seg: bytes | memoryview, limit: int, last_is_cr: bool) -> int:
    total = cur + len(seg)
    if total <= limit:
        return -1
    if cur <= limit:
        j = limit - cur
        if seg[j] != CR:
            return j
    elif not last_is_cr:
        return 0
    if total > limit + 1:
        return limit + 1 - cur
    return -1


class ChunkedLineSplitter:
    """Decode an HTTP/1.1 chunked body (RFC 9112 section 7.1) into NDJSON lines."""

    def __init__(self, max_line_bytes: int = 64 * 2**20) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self._max_line = max_line_bytes
        self._state = S_SIZE_START
        self._remaining = 0
        self._pos = 0
        self._line = bytearray()
        self._error: tuple[str, int] | None = None

    @property
    def done(self) -> bool:
        return self._state == S_DONE

    @property
    def failed(self) -> bool:
        return self._state == S_FAILED

    @property
    def pending(self) -> int:
        return len(self._line)

    @property
    def capacity(self) -> int:
        """Bytes allocated for the line buffer (0 once failed: the buffer is released)."""
        return self._line.__alloc__()

    @property
    def max_line_bytes(self) -> int:
        return self._max_line

    def _fail(self, message: str, offset: int, out: list[bytes]) -> None:
        self._state = S_FAILED
        self._line.clear()  # frees the storage, also for a caller's local alias
        self._line = bytearray()
        self._error = (message, offset)
        raise ProtocolError(message, offset=offset, lines=out)

    def _raise_failed(self) -> None:
        assert self._error is not None
        message, offset = self._error
        raise ProtocolError("splitter already failed: " + message, offset=offset)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        out: list[bytes] = []
        self._run(bytes(data), out.append, out)
        return out

    def feed_into(self, data: bytes | bytearray | memoryview,
                  sink: Callable[[bytes], object]) -> int:
        """Like the compiled ``feed_into``, with any callable taking the line as the sink."""
        try:
            self._run(bytes(data), sink, [])
        except ProtocolError:
            raise
        except BaseException:
            if self._state != S_FAILED:
                self._state = S_FAILED
                self._line.clear()
                self._line = bytearray()
                self._error = ("a line sink raised", self._pos)
            raise
        return 0

    def eof(self) -> list[bytes]:
        if self._state == S_FAILED:
            self._raise_failed()
        if self._state != S_DONE:
            self._fail(f"body cut short in {_STATE_NAMES[self._state]}", self._pos, [])
        line = bytes(self._line)
        self._line.clear()
        if line.endswith(b"\r"):
            line = line[:-1]
        return [line] if line else []

    def _run(self, data: bytes, emit: Callable[[bytes], object], out: list[bytes]) -> None:
        state = self._state
        if state == S_FAILED:
            self._raise_failed()
        limit = self._max_line
        n = len(data)
        i = 0
        while i < n:
            if state == S_DATA:
                end = i + min(n - i, self._remaining)
                p = i
                while p < end:
                    k = data.find(b"\n", p, end)
                    if k < 0:
                        break
                    seg = data[p:k]
                    line = self._line
                    cut = _line_overflow(len(line), seg, limit, line[-1:] == b"\r")
                    if cut >= 0:
                        self._fail("line longer than max_line_bytes", self._pos + p + cut, out)
                    full = bytes(line) + seg
                    line.clear()
                    if full.endswith(b"\r"):
                        full = full[:-1]
                    if full:
                        emit(full)
                    p = k + 1
                if p < end:
                    seg = data[p:end]
                    cut = _line_overflow(len(self._line), seg, limit, self._line[-1:] == b"\r")
                    if cut >= 0:
                        self._fail("line longer than max_line_bytes", self._pos + p + cut, out)
                    self._line += seg
                self._remaining -= end - i
                i = end
                if self._remaining == 0:
                    state = S_DATA_CR
                continue

            c = data[i]
            off = self._pos + i
            if state in (S_SIZE_START, S_SIZE):
                if c in _HEXVAL:
                    d = _HEXVAL[c]
                    if self._remaining > (MAX_CHUNK_SIZE - d) >> 4:
                        self._fail("chunk size over 2**62", off, out)
                    self._remaining = (self._remaining << 4) | d
                    state = S_SIZE
                elif state == S_SIZE_START:
                    self._fail(f"invalid character {chr(c)!r} in chunk size", off, out)
                elif c == CR:
                    state = S_SIZE_LF
                elif c == 0x3B:
                    state = S_EXT_PRE_NAME
                elif c in _WS:
                    state = S_SIZE_BWS
                elif c == LF:
                    self._fail("bare LF after chunk size", off, out)
                else:
                    self._fail(f"invalid character {chr(c)!r} in chunk size", off, out)
            elif state in (S_SIZE_BWS, S_EXT_POST_NAME, S_EXT_POST_VALUE):
                if c in _WS:
                    pass
                elif c == 0x3B:
                    state = S_EXT_PRE_NAME
                elif c == CR:
                    state = S_SIZE_LF
                elif c == 0x3D and state == S_EXT_POST_NAME:
                    state = S_EXT_PRE_VALUE
                elif c == LF:
                    self._fail("bare LF in chunk size line", off, out)
                else:
                    self._fail(f"invalid character {chr(c)!r} in {_STATE_NAMES[state]}", off, out)
            elif state == S_EXT_PRE_NAME:
                if c in _TCHAR:
                    state = S_EXT_NAME
                elif c not in _WS:
                    self._fail("chunk extension without a name", off, out)
            elif state in (S_EXT_NAME, S_EXT_TOKEN):
                if c in _TCHAR:
                    pass
                elif c in _WS:
                    state = S_EXT_POST_NAME if state == S_EXT_NAME else S_EXT_POST_VALUE
                elif c == 0x3B:
                    state = S_EXT_PRE_NAME
                elif c == CR:
                    state = S_SIZE_LF
                elif c == 0x3D and state == S_EXT_NAME:
                    state = S_EXT_PRE_VALUE
                elif c == LF:
                    self._fail("bare LF in chunk extension", off, out)
                else:
                    self._fail(f"invalid character {chr(c)!r} in chunk extension", off, out)
            elif state == S_EXT_PRE_VALUE:
                if c == 0x22:
                    state = S_EXT_QUOTED
                elif c in _TCHAR:
                    state = S_EXT_TOKEN
                elif c not in _WS:
                    self._fail("chunk extension without a value after '='", off, out)
            elif state == S_EXT_QUOTED:
                if c == 0x22:
                    state = S_EXT_POST_VALUE
                elif c == 0x5C:
                    state = S_EXT_QUOTED_ESCAPE
                elif c not in _QDTEXT:
                    self._fail(f"invalid character {chr(c)!r} in quoted chunk extension",
                               off, out)
            elif state == S_EXT_QUOTED_ESCAPE:
                if c not in _VISIBLE:
                    self._fail("invalid quoted-pair in chunk extension", off, out)
                state = S_EXT_QUOTED
            elif state == S_SIZE_LF:
                if c != LF:
                    self._fail("CR not followed by LF in chunk size line", off, out)
                state = S_DATA if self._remaining else S_TRAILER_START
            elif state == S_DATA_CR:
                if c != CR:
                    self._fail("chunk data not followed by CRLF", off, out)
                state = S_DATA_LF
            elif state == S_DATA_LF:
                if c != LF:
                    self._fail("chunk data not followed by CRLF", off, out)
                state = S_SIZE_START
            elif state == S_TRAILER_START:
                if c == CR:
                    state = S_END_LF
                elif c in _TCHAR:
                    state = S_TRAILER_NAME
                elif c in _WS:
                    self._fail("obsolete line folding in trailer section", off, out)
                else:
                    self._fail(f"invalid character {chr(c)!r} in trailer section", off, out)
            elif state == S_TRAILER_NAME:
                if c == 0x3A:
                    state = S_TRAILER_VALUE
                elif c not in _TCHAR:
                    self._fail(f"invalid character {chr(c)!r} in trailer field name", off, out)
            elif state == S_TRAILER_VALUE:
                if c == CR:
                    state = S_TRAILER_LF
                elif c not in _VISIBLE:
                    self._fail(f"invalid character {chr(c)!r} in trailer field value", off, out)
            elif state in (S_TRAILER_LF, S_END_LF):
                if c != LF:
                    self._fail("CR not followed by LF in trailer section", off, out)
                state = S_TRAILER_START if state == S_TRAILER_LF else S_DONE
            else:
                self._fail("data after the end of the chunked body", off, out)
            i += 1
        self._state = state
        self._pos += n


class RecordSplitter:
    """Split a byte stream on the SignalR record separator 0x1E."""

    def __init__(self, max_record_bytes: int = 64 * 2**20) -> None:
        if max_record_bytes < 1:
            raise ValueError("max_record_bytes must be positive")
        self._max_record = max_record_bytes
        self._pos = 0
        self._rec = bytearray()
        self._error: tuple[str, int] | None = None

    @property
    def pending(self) -> int:
        return len(self._rec)

    @property
    def capacity(self) -> int:
        """Bytes allocated for the record buffer (0 once failed: the buffer is released)."""
        return self._rec.__alloc__()

    @property
    def failed(self) -> bool:
        return self._error is not None

    @property
    def max_record_bytes(self) -> int:
        return self._max_record

    def _fail(self, message: str, offset: int, out: list[bytes]) -> None:
        self._rec.clear()
        self._rec = bytearray()
        self._error = (message, offset)
        raise ProtocolError(message, offset=offset, lines=out)

    def _check(self) -> None:
        if self._error is not None:
            message, offset = self._error
            raise ProtocolError("splitter already failed: " + message, offset=offset)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        self._check()
        data = bytes(data)
        out: list[bytes] = []
        limit = self._max_record
        n = len(data)
        p = 0
        while p < n:
            k = data.find(b"\x1e", p)
            if k < 0:
                break
            cur = len(self._rec)
            if cur + (k - p) > limit:
                self._fail("record longer than max_record_bytes",
                           self._pos + p + (limit - cur), out)
            out.append(bytes(self._rec) + data[p:k])
            self._rec.clear()
            p = k + 1
        if p < n:
            cur = len(self._rec)
            if cur + (n - p) > limit:
                self._fail("record longer than max_record_bytes",
                           self._pos + p + (limit - cur), out)
            self._rec += data[p:]
        self._pos += n
        return out

    def eof(self) -> None:
        self._check()
        if self._rec:
            self._fail(f"stream ended inside a record ({len(self._rec)} bytes pending)",
                       self._pos, [])
