# C-level API of oddswire._framing: cimport it to consume lines without Python objects.
#
#     from oddswire._framing cimport LineSink, ChunkedLineSplitter
#
#     cdef class MySink(LineSink):
#         cdef int on_line(self, const char* data, Py_ssize_t size) except -1:
#             ...  # data is valid only during this call; copy what you keep
#
from libc.stdint cimport uint64_t


cdef struct GrowBuf:
    char* data
    Py_ssize_t size
    Py_ssize_t cap


cdef class LineSink:
    # Receives each complete line (terminator stripped) as a pointer and a length. The
    # pointer is into the caller's input or the splitter's own buffer: valid only during
    # the call. Return 0, or raise (with -1) to abort the feed.
    cdef int on_line(self, const char* data, Py_ssize_t size) except -1


cdef class CountingLineSink(LineSink):
    cdef readonly Py_ssize_t lines
    cdef readonly Py_ssize_t bytes


cdef class ChunkedLineSplitter:
    cdef GrowBuf _line
    cdef int _state
    cdef uint64_t _remaining
    cdef Py_ssize_t _max_line
    cdef unsigned long long _pos
    cdef object _error

    cdef int _fail(self, str message, unsigned long long offset, list out) except -1
    cdef int _raise_failed(self) except -1
    cdef int _emit(self, const char* data, Py_ssize_t size, list out, LineSink sink) except -1
    cdef int _run(self, const unsigned char* data, Py_ssize_t n, list out, LineSink sink) except -1
    cpdef list feed(self, object data)
    cpdef Py_ssize_t feed_into(self, object data, LineSink sink) except -1
    cpdef list eof(self)


cdef class RecordSplitter:
    cdef GrowBuf _rec
    cdef Py_ssize_t _max_record
    cdef unsigned long long _pos
    cdef object _error

    cdef int _fail(self, str message, unsigned long long offset, list out) except -1
    cpdef list feed(self, object data)
    cpdef eof(self)
