# Framing codecs on the hot path: HTTP/1.1 chunked bodies split into NDJSON lines
# (DATA.BET) and SignalR 0x1E record splitting (BETCORE).
#
# The pure-Python twins in oddswire.reference implement the same state machines and
# raise the same errors at the same offsets; the property tests hold the two together.

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from libc.stdint cimport uint64_t
from libc.stdlib cimport realloc, free
from libc.string cimport memchr, memcpy

from oddswire.errors import ProtocolError

cdef enum:
    CR = 13
    LF = 10

cdef uint64_t MAX_CHUNK_SIZE = (<uint64_t>1) << 62

cdef enum State:
    S_SIZE_START
    S_SIZE
    S_SIZE_BWS
    S_EXT_PRE_NAME
    S_EXT_NAME
    S_EXT_POST_NAME
    S_EXT_PRE_VALUE
    S_EXT_TOKEN
    S_EXT_QUOTED
    S_EXT_QUOTED_ESCAPE
    S_EXT_POST_VALUE
    S_SIZE_LF
    S_DATA
    S_DATA_CR
    S_DATA_LF
    S_TRAILER_START
    S_TRAILER_NAME
    S_TRAILER_VALUE
    S_TRAILER_LF
    S_END_LF
    S_DONE
    S_FAILED

cdef enum CharClass:
    C_TCHAR = 1
    C_QDTEXT = 2
    C_VISIBLE = 4   # HT, SP, VCHAR, obs-text: quoted-pair and field-value bytes

cdef unsigned char CLASS[256]
cdef signed char HEXVAL[256]


cdef void _init_tables():
    cdef int c
    for c in range(256):
        CLASS[c] = 0
        HEXVAL[c] = -1
    for c in range(ord('0'), ord('9') + 1):
        HEXVAL[c] = c - ord('0')
    for c in range(ord('a'), ord('f') + 1):
        HEXVAL[c] = c - ord('a') + 10
        HEXVAL[c - 32] = c - ord('a') + 10
    for c in b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
        CLASS[c] |= C_TCHAR
    for c in range(256):
        if c == 9 or c == 32 or 0x21 <= c <= 0x7E or c >= 0x80:
            CLASS[c] |= C_VISIBLE
            if c != 0x22 and c != 0x5C:
                CLASS[c] |= C_QDTEXT

_init_tables()

# Names for error messages, indexed by State.
_STATE_NAMES = (
    "chunk size", "chunk size", "chunk size", "chunk extension", "chunk extension",
    "chunk extension", "chunk extension", "chunk extension", "chunk extension",
    "chunk extension", "chunk extension", "chunk size line", "chunk data",
    "CRLF after chunk data", "CRLF after chunk data", "trailer section", "trailer field",
    "trailer field", "trailer field", "final CRLF", "end of body", "failed",
)


cdef inline int _reserve(GrowBuf* buf, Py_ssize_t extra) except -1:
    cdef Py_ssize_t need = buf.size + extra
    cdef Py_ssize_t cap
    cdef char* data
    if need <= buf.cap:
        return 0
    cap = buf.cap * 2 if buf.cap else 4096
    while cap < need:
        cap *= 2
    data = <char*>realloc(buf.data, cap)
    if data == NULL:
        raise MemoryError()
    buf.data = data
    buf.cap = cap
    return 0


cdef inline void _release(GrowBuf* buf) noexcept:
    # A failed splitter holds nothing: a rejected 100 MB line must not keep its buffer alive
    # through the exception -> traceback -> frame -> splitter chain.
    free(buf.data)
    buf.data = NULL
    buf.size = 0
    buf.cap = 0


cdef inline int _append(GrowBuf* buf, const char* data, Py_ssize_t size) except -1:
    _reserve(buf, size)
    memcpy(buf.data + buf.size, data, size)
    buf.size += size
    return 0


cdef inline Py_ssize_t _line_overflow(Py_ssize_t cur, const unsigned char* seg,
                                      Py_ssize_t seglen, Py_ssize_t limit,
                                      bint last_is_cr) nogil:
    # Where a line of cur buffered bytes plus seg provably exceeds limit once its one
    # trailing CR is dropped: the index in seg of the first byte that proves it, or -1.
    # A CR at index limit may still be the terminator's CR, so it proves nothing alone.
    cdef Py_ssize_t total = cur + seglen
    cdef Py_ssize_t j
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


cdef class LineSink:
    """Base class of C-level line consumers; subclass it in Cython and override on_line."""

    cdef int on_line(self, const char* data, Py_ssize_t size) except -1:
        return 0


cdef class CountingLineSink(LineSink):
    """A sink that only counts lines and bytes: the ceiling of the splitter itself."""

    cdef int on_line(self, const char* data, Py_ssize_t size) except -1:
        self.lines += 1
        self.bytes += size
        return 0


cdef class ChunkedLineSplitter:
    """Decode an HTTP/1.1 chunked body (RFC 9112 section 7.1) into NDJSON lines."""

    def __cinit__(self):
        self._line.data = NULL
        self._line.size = 0
        self._line.cap = 0

    def __init__(self, Py_ssize_t max_line_bytes=64 * 2**20):
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self._max_line = max_line_bytes
        self._state = S_SIZE_START
        self._remaining = 0
        self._pos = 0
        self._error = None

    def __dealloc__(self):
        free(self._line.data)

    @property
    def done(self):
        """True once the last chunk and the trailer section have been consumed."""
        return self._state == S_DONE

    @property
    def failed(self):
        """True after a framing error: every later call raises ProtocolError."""
        return self._state == S_FAILED

    @property
    def pending(self):
        """Bytes of an unfinished line held in the buffer."""
        return self._line.size

    @property
    def capacity(self):
        """Bytes allocated for the line buffer (0 once failed: the buffer is released)."""
        return self._line.cap

    @property
    def max_line_bytes(self):
        return self._max_line

    cdef int _fail(self, str message, unsigned long long offset, list out) except -1:
        self._state = S_FAILED
        _release(&self._line)
        self._error = (message, offset)
        raise ProtocolError(message, offset=offset, lines=out)

    cdef int _raise_failed(self) except -1:
        message, offset = self._error
        raise ProtocolError("splitter already failed: " + message, offset=offset)

    cdef int _emit(self, const char* data, Py_ssize_t size, list out, LineSink sink) except -1:
        if sink is None:
            out.append(PyBytes_FromStringAndSize(data, size))
            return 0
        return sink.on_line(data, size)

    cdef int _run(self, const unsigned char* data, Py_ssize_t n, list out,
                  LineSink sink) except -1:
        cdef Py_ssize_t i = 0
        cdef Py_ssize_t p, end, k, seglen, cut, take, cur
        cdef const unsigned char* nl
        cdef unsigned char c
        cdef uint64_t size
        cdef int state = self._state
        cdef Py_ssize_t limit = self._max_line
        cdef bytes line
        cdef char* dst

        if state == S_FAILED:
            self._raise_failed()
        while i < n:
            if state == S_DATA:
                take = <Py_ssize_t>(n - i)
                if self._remaining < <uint64_t>take:
                    take = <Py_ssize_t>self._remaining
                end = i + take
                p = i
                while p < end:
                    nl = <const unsigned char*>memchr(data + p, LF, end - p)
                    if nl == NULL:
                        break
                    k = nl - data
                    seglen = k - p
                    cur = self._line.size
                    cut = _line_overflow(cur, data + p, seglen, limit,
                                         cur > 0 and self._line.data[cur - 1] == CR)
                    if cut >= 0:
                        self._fail("line longer than max_line_bytes",
                                   self._pos + p + cut, out)
                    if cur == 0:
                        if seglen and data[k - 1] == CR:
                            seglen -= 1
                        if seglen:
                            self._emit(<const char*>data + p, seglen, out, sink)
                    else:
                        if seglen == 0:
                            if self._line.data[cur - 1] == CR:
                                cur -= 1
                        elif data[k - 1] == CR:
                            seglen -= 1
                        if cur + seglen:
                            if sink is None:
                                # One allocation and one copy of each part, no join.
                                line = PyBytes_FromStringAndSize(NULL, cur + seglen)
                                dst = PyBytes_AS_STRING(line)
                                memcpy(dst, self._line.data, cur)
                                memcpy(dst + cur, data + p, seglen)
                                out.append(line)
                            else:
                                self._line.size = cur
                                _append(&self._line, <const char*>data + p, seglen)
                                cur = self._line.size
                                self._line.size = 0
                                self._emit(self._line.data, cur, out, sink)
                        self._line.size = 0
                    p = k + 1
                if p < end:
                    cur = self._line.size
                    cut = _line_overflow(cur, data + p, end - p, limit,
                                         cur > 0 and self._line.data[cur - 1] == CR)
                    if cut >= 0:
                        self._fail("line longer than max_line_bytes",
                                   self._pos + p + cut, out)
                    _append(&self._line, <const char*>data + p, end - p)
                self._remaining -= <uint64_t>take
                i = end
                if self._remaining == 0:
                    state = S_DATA_CR
                continue

            c = data[i]
            if state == S_SIZE_START or state == S_SIZE:
                if HEXVAL[c] >= 0:
                    size = self._remaining
                    if size > (MAX_CHUNK_SIZE - <uint64_t>HEXVAL[c]) >> 4:
                        self._fail("chunk size over 2**62", self._pos + i, out)
                    self._remaining = (size << 4) | <uint64_t>HEXVAL[c]
                    state = S_SIZE
                elif state == S_SIZE_START:
                    self._fail("invalid character %r in chunk size" % chr(c),
                               self._pos + i, out)
                elif c == CR:
                    state = S_SIZE_LF
                elif c == b';':
                    state = S_EXT_PRE_NAME
                elif c == b' ' or c == b'\t':
                    state = S_SIZE_BWS
                elif c == LF:
                    self._fail("bare LF after chunk size", self._pos + i, out)
                else:
                    self._fail("invalid character %r in chunk size" % chr(c),
                               self._pos + i, out)
            elif state == S_SIZE_BWS or state == S_EXT_POST_NAME or state == S_EXT_POST_VALUE:
                if c == b' ' or c == b'\t':
                    pass
                elif c == b';':
                    state = S_EXT_PRE_NAME
                elif c == CR:
                    state = S_SIZE_LF
                elif c == b'=' and state == S_EXT_POST_NAME:
                    state = S_EXT_PRE_VALUE
                elif c == LF:
                    self._fail("bare LF in chunk size line", self._pos + i, out)
                else:
                    self._fail("invalid character %r in %s" % (chr(c), _STATE_NAMES[state]),
                               self._pos + i, out)
            elif state == S_EXT_PRE_NAME:
                if CLASS[c] & C_TCHAR:
                    state = S_EXT_NAME
                elif c != b' ' and c != b'\t':
                    self._fail("chunk extension without a name", self._pos + i, out)
            elif state == S_EXT_NAME or state == S_EXT_TOKEN:
                if CLASS[c] & C_TCHAR:
                    pass
                elif c == b' ' or c == b'\t':
                    state = S_EXT_POST_NAME if state == S_EXT_NAME else S_EXT_POST_VALUE
                elif c == b';':
                    state = S_EXT_PRE_NAME
                elif c == CR:
                    state = S_SIZE_LF
                elif c == b'=' and state == S_EXT_NAME:
                    state = S_EXT_PRE_VALUE
                elif c == LF:
                    self._fail("bare LF in chunk extension", self._pos + i, out)
                else:
                    self._fail("invalid character %r in chunk extension" % chr(c),
                               self._pos + i, out)
            elif state == S_EXT_PRE_VALUE:
                if c == b'"':
                    state = S_EXT_QUOTED
                elif CLASS[c] & C_TCHAR:
                    state = S_EXT_TOKEN
                elif c != b' ' and c != b'\t':
                    self._fail("chunk extension without a value after '='",
                               self._pos + i, out)
            elif state == S_EXT_QUOTED:
                if c == b'"':
                    state = S_EXT_POST_VALUE
                elif c == b'\\':
                    state = S_EXT_QUOTED_ESCAPE
                elif not CLASS[c] & C_QDTEXT:
                    self._fail("invalid character %r in quoted chunk extension" % chr(c),
                               self._pos + i, out)
            elif state == S_EXT_QUOTED_ESCAPE:
                if not CLASS[c] & C_VISIBLE:
                    self._fail("invalid quoted-pair in chunk extension", self._pos + i, out)
                state = S_EXT_QUOTED
            elif state == S_SIZE_LF:
                if c != LF:
                    self._fail("CR not followed by LF in chunk size line", self._pos + i, out)
                state = S_DATA if self._remaining else S_TRAILER_START
            elif state == S_DATA_CR:
                if c != CR:
                    self._fail("chunk data not followed by CRLF", self._pos + i, out)
                state = S_DATA_LF
            elif state == S_DATA_LF:
                if c != LF:
                    self._fail("chunk data not followed by CRLF", self._pos + i, out)
                state = S_SIZE_START
            elif state == S_TRAILER_START:
                if c == CR:
                    state = S_END_LF
                elif CLASS[c] & C_TCHAR:
                    state = S_TRAILER_NAME
                elif c == b' ' or c == b'\t':
                    self._fail("obsolete line folding in trailer section", self._pos + i, out)
                else:
                    self._fail("invalid character %r in trailer section" % chr(c),
                               self._pos + i, out)
            elif state == S_TRAILER_NAME:
                if c == b':':
                    state = S_TRAILER_VALUE
                elif not CLASS[c] & C_TCHAR:
                    self._fail("invalid character %r in trailer field name" % chr(c),
                               self._pos + i, out)
            elif state == S_TRAILER_VALUE:
                if c == CR:
                    state = S_TRAILER_LF
                elif not CLASS[c] & C_VISIBLE:
                    self._fail("invalid character %r in trailer field value" % chr(c),
                               self._pos + i, out)
            elif state == S_TRAILER_LF or state == S_END_LF:
                if c != LF:
                    self._fail("CR not followed by LF in trailer section", self._pos + i, out)
                state = S_TRAILER_START if state == S_TRAILER_LF else S_DONE
            else:  # S_DONE
                self._fail("data after the end of the chunked body", self._pos + i, out)
            i += 1
        self._state = state
        self._pos += <unsigned long long>n
        return 0

    cpdef list feed(self, object data):
        """Feed bytes as the socket delivered them; return the lines they complete.

        On a framing error raises ProtocolError whose ``lines`` holds the lines this call
        completed before the error; the splitter then stays failed.
        """
        cdef Py_buffer view
        cdef list out = []
        if type(data) is bytes:
            self._run(<const unsigned char*>PyBytes_AS_STRING(data), len(<bytes>data), out, None)
            return out
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._run(<const unsigned char*>view.buf, view.len, out, None)
        finally:
            PyBuffer_Release(&view)
        return out

    cpdef Py_ssize_t feed_into(self, object data, LineSink sink) except -1:
        """Feed bytes and hand each completed line to ``sink`` with no Python object.

        Returns 0. An exception raised by the sink propagates unchanged and leaves the
        splitter failed (the rest of that read was not consumed).
        """
        cdef Py_buffer view
        if sink is None:
            raise TypeError("sink must be a LineSink")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            self._run(<const unsigned char*>view.buf, view.len, None, sink)
        except BaseException:
            if self._state != S_FAILED:
                # The sink raised: the rest of this read was not consumed, so the stream
                # position is lost and the splitter must not pretend to go on.
                self._state = S_FAILED
                _release(&self._line)
                self._error = ("a line sink raised", self._pos)
            raise
        finally:
            PyBuffer_Release(&view)
        return 0

    cpdef list eof(self):
        """End of stream: return a last line that had no newline, or raise if cut short."""
        cdef Py_ssize_t size
        cdef list out = []
        if self._state == S_FAILED:
            self._raise_failed()
        if self._state != S_DONE:
            self._fail("body cut short in %s" % _STATE_NAMES[self._state], self._pos, out)
        size = self._line.size
        if size and self._line.data[size - 1] == CR:
            size -= 1
        if size:
            out.append(PyBytes_FromStringAndSize(self._line.data, size))
        self._line.size = 0
        return out


cdef class RecordSplitter:
    """Split a byte stream on the SignalR record separator 0x1E."""

    def __cinit__(self):
        self._rec.data = NULL
        self._rec.size = 0
        self._rec.cap = 0

    def __init__(self, Py_ssize_t max_record_bytes=64 * 2**20):
        if max_record_bytes < 1:
            raise ValueError("max_record_bytes must be positive")
        self._max_record = max_record_bytes
        self._pos = 0
        self._error = None

    def __dealloc__(self):
        free(self._rec.data)

    @property
    def pending(self):
        """Number of buffered bytes of an unfinished record."""
        return self._rec.size

    @property
    def capacity(self):
        """Bytes allocated for the record buffer (0 once failed: the buffer is released)."""
        return self._rec.cap

    @property
    def failed(self):
        return self._error is not None

    @property
    def max_record_bytes(self):
        return self._max_record

    cdef int _fail(self, str message, unsigned long long offset, list out) except -1:
        _release(&self._rec)
        self._error = (message, offset)
        raise ProtocolError(message, offset=offset, lines=out)

    cpdef list feed(self, object data):
        """Feed bytes; return the complete records (separator removed, b"" if empty)."""
        cdef Py_buffer view
        cdef list out = []
        cdef const unsigned char* buf
        cdef const unsigned char* sep
        cdef Py_ssize_t n, p = 0, k, seglen, cur
        cdef Py_ssize_t limit = self._max_record
        cdef bytes rec
        cdef char* dst
        if self._error is not None:
            message, offset = self._error
            raise ProtocolError("splitter already failed: " + message, offset=offset)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            buf = <const unsigned char*>view.buf
            n = view.len
            while p < n:
                sep = <const unsigned char*>memchr(buf + p, 0x1E, n - p)
                if sep == NULL:
                    break
                k = sep - buf
                seglen = k - p
                cur = self._rec.size
                if cur + seglen > limit:
                    self._fail("record longer than max_record_bytes",
                               self._pos + p + (limit - cur), out)
                if cur == 0:
                    out.append(PyBytes_FromStringAndSize(<const char*>buf + p, seglen))
                else:
                    rec = PyBytes_FromStringAndSize(NULL, cur + seglen)
                    dst = PyBytes_AS_STRING(rec)
                    memcpy(dst, self._rec.data, cur)
                    memcpy(dst + cur, buf + p, seglen)
                    out.append(rec)
                    self._rec.size = 0
                p = k + 1
            if p < n:
                cur = self._rec.size
                if cur + (n - p) > limit:
                    self._fail("record longer than max_record_bytes",
                               self._pos + p + (limit - cur), out)
                _append(&self._rec, <const char*>buf + p, n - p)
            self._pos += <unsigned long long>n
        finally:
            PyBuffer_Release(&view)
        return out

    cpdef eof(self):
        """End of stream: raise ProtocolError if an unfinished record remains."""
        if self._error is not None:
            message, offset = self._error
            raise ProtocolError("splitter already failed: " + message, offset=offset)
        if self._rec.size:
            self._fail("stream ended inside a record (%d bytes pending)" % self._rec.size,
                       self._pos, [])
        return None
