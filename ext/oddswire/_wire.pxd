# C-level API of oddswire._wire: the picows listeners. cimport it to subclass the broker
# listener in Cython, or to call the Rust quote decoder from your own listener:
#
#     from oddswire._wire cimport BrokerListener, QuoteOut, native_api
#
#     cdef class MyListener(BrokerListener):
#         cdef int on_quote_c(self, QuoteOut* q) except -1:
#             ...  # q.symbol is borrowed, valid while the book lives; return 0
#
# The structs mirror rust/src/capi.rs (oddswire_native._C_API); the module refuses to import
# against a native build with another ABI version or struct size.
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint32_t, uint64_t
from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport


ctypedef struct QuoteOut:
    int64_t row
    PyObject* symbol
    double bid
    double ask
    int64_t ts


ctypedef int (*quote_apply_fn)(PyObject* book, const unsigned char* buf, Py_ssize_t size,
                               QuoteOut* out) except -1
ctypedef int (*is_quote_book_fn)(PyObject* obj) noexcept


ctypedef struct NativeApi:
    uint32_t abi_version
    uint32_t size
    quote_apply_fn quote_apply
    is_quote_book_fn is_quote_book


cdef NativeApi* native_api


cdef class BrokerListener(WSListener):
    cdef:
        readonly object book
        PyObject* _book
        readonly WSTransport transport
        # Looked up once; None means "not wanted" (httptools style).
        object _on_quote
        object _on_array
        object _on_object
        object _on_error
        object _on_connected
        object _on_disconnected
        object _on_sample
        public object on_fresh
        public bint notify_fresh
        readonly bint quote_rows
        readonly bint conflate
        # A fragmented message being assembled (TEXT or BINARY + CONTINUATION frames).
        char* _frag
        Py_ssize_t _frag_size
        Py_ssize_t _frag_cap
        bint _in_frag
        readonly Py_ssize_t max_message_bytes
        # Conflation: the latest quote per row within one read buffer, in arrival order.
        QuoteOut* _pend
        Py_ssize_t _npend
        Py_ssize_t _pend_cap
        int* _slot_of_row
        Py_ssize_t _slot_cap
        # Latency sampling: one frame in `_sample_every` is timed.
        uint32_t _sample_every
        uint32_t _sample_left
        readonly uint64_t frames
        readonly uint64_t bytes
        readonly uint64_t quotes
        readonly uint64_t delivered
        readonly uint64_t errors
        readonly uint64_t pings
        readonly uint64_t pongs
        readonly bint pong_timed_out

    cdef int on_quote_c(self, QuoteOut* q) except -1
    cdef int _deliver(self, QuoteOut* q) except -1
    cdef int _flush(self) except -1
    cdef int _pend_quote(self, QuoteOut* q) except -1
    cdef int _message(self, const char* data, Py_ssize_t size, bint last) except -1
    cdef int _frame(self, int msg_type, const char* data, Py_ssize_t size, bint fin,
                    bint last) except -1
    cdef int _call(self, object fn, object arg) except -1
    cdef int _report(self, object exc) except -1
