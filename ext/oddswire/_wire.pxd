# C-level API of oddswire._wire: the picows listeners. cimport it to subclass a listener in
# Cython, or to call the Rust quote decoder from your own listener:
#
#     from oddswire._wire cimport BrokerListener, FeedListener, QuoteOut, native_api
#
#     cdef class MyListener(BrokerListener):
#         cdef int on_quote_c(self, QuoteOut* q) except -1:
#             ...  # q.symbol is borrowed, valid while the book lives; return 0
#
#     cdef class MyFeed(FeedListener):
#         cdef int on_message(self, const char* data, Py_ssize_t size, bint last) except -1:
#             ...  # one whole message; `data` is valid only during the call; return 0
#
# The structs mirror rust/src/capi.rs (oddswire_native._C_API); the module refuses to import
# against a native build with another ABI version or struct size.
from cpython.object cimport PyObject
from libc.stdint cimport int64_t, uint32_t, uint64_t
from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

from oddswire._metrics cimport HistStage, LatencyHistogram, ReadClock, StampLatency


ctypedef struct QuoteOut:
    int64_t row
    PyObject* symbol
    double bid
    double ask
    int64_t ts


# quote_apply returns 1 (a quote, `out` filled), 0 (another marker, book unchanged), 2 (a
# quote for a symbol the book does not admit, book unchanged) or -1 (exception set).
ctypedef int (*quote_apply_fn)(PyObject* book, const unsigned char* buf, Py_ssize_t size,
                               QuoteOut* out) except -1
ctypedef int (*is_quote_book_fn)(PyObject* obj) noexcept


# SatoriEx: what market_apply applied (rust/src/satoriex/mod.rs MarketOut). `market` is
# borrowed (the MarketData keeps it); prices for a price update, `seq` for a book message.
ctypedef struct MarketOut:
    int64_t row
    PyObject* market
    double mid
    double best_bid
    double best_ask
    int64_t ts
    int64_t seq


# market_apply returns 0 (another type: nothing changed, `out` untouched), 1-5 (MarketData
# .apply's code, `out` filled) or -1 (exception set: a DecodeError, nothing changed).
ctypedef int (*market_apply_fn)(PyObject* md, const unsigned char* buf, Py_ssize_t size,
                                MarketOut* out) except -1
ctypedef int (*is_market_data_fn)(PyObject* obj) noexcept


ctypedef struct NativeApi:
    uint32_t abi_version
    uint32_t size
    quote_apply_fn quote_apply
    is_quote_book_fn is_quote_book
    market_apply_fn market_apply
    is_market_data_fn is_market_data


cdef NativeApi* native_api


# A millisecond server stamp in ns; 0 (not recorded) for one out of range.
cdef inline int64_t _ms_to_ns(int64_t ms) noexcept nogil:
    if ms <= 0 or ms > 9223372036854LL:
        return 0
    return ms * 1000000


cdef class Recorder:
    """The buffered writer of a recording (see oddswire.record): records are appended to a
    C buffer and written to the sink at a size or time bound."""
    cdef:
        object _sink
        object _on_error
        char* _buf
        Py_ssize_t _len
        Py_ssize_t _cap
        readonly Py_ssize_t flush_bytes
        readonly bint per_read
        int64_t _flush_ns
        int64_t _last_flush
        readonly uint64_t records
        readonly uint64_t written
        readonly bint failed
        readonly bint closed

    cdef int put(self, int kind, int flags, const char* data, Py_ssize_t size) except -1
    cdef int _flush(self) except -1


cdef class FeedListener(WSListener):
    """The frame handling every WebSocket feed shares: fragment reassembly (bounded), CLOSE,
    PING answered only while the peer reads, text ping/pong, latency recording, counters and
    error isolation. A feed overrides ``on_message``: one whole message, zero-copy."""
    cdef:
        readonly WSTransport transport
        # Looked up once; None means "not wanted" (httptools style).
        object _on_error
        object _on_connected
        object _on_disconnected
        object _on_message
        # A fragmented message being assembled (TEXT or BINARY + CONTINUATION frames).
        char* _frag
        Py_ssize_t _frag_size
        Py_ssize_t _frag_cap
        bint _in_frag
        bint _discarding
        readonly Py_ssize_t max_message_bytes
        readonly Py_ssize_t max_write_buffer
        # Text keep-alive (None: protocol PING / PONG frames).
        bytes _ping_payload
        bytes _pong_payload
        # Latency histograms (None: not recorded), the client's stats_counters'; every
        # message is recorded against one receive stamp per socket read.
        readonly LatencyHistogram to_decoded
        readonly LatencyHistogram to_callback
        readonly StampLatency server_stamp
        int64_t _t_read       # monotonic ns at the first frame of the current read
        ReadClock _clock      # stamps the read's messages relative to _t_read
        # Staged histogram adds, flushed at the end of each read (see _metrics.pxd).
        HistStage _stage_decoded
        HistStage _stage_callback
        HistStage _stage_server
        # wall - monotonic clock, re-read at most once a second (a clock read costs ~40 ns)
        int64_t _wall_offset
        int64_t _wall_offset_at
        bint _in_read         # the last frame was not the last of its read
        readonly uint64_t frames
        readonly uint64_t bytes
        readonly uint64_t messages
        readonly uint64_t errors
        readonly uint64_t pings
        readonly uint64_t pongs
        readonly bint pong_timed_out
        readonly bint abandoned
        # Recording (None: not recording) and the frame object replay reuses.
        readonly Recorder recorder
        WSFrame _replay_frame

    cdef int on_message(self, const char* data, Py_ssize_t size, bint last) except -1
    cdef int _frame(self, int msg_type, const char* data, Py_ssize_t size, bint fin,
                    bint last) except -1
    cdef int _deliver_message(self, const char* data, Py_ssize_t size, bint last) except -1
    cdef int _too_big(self) except -1
    cdef int _received(self, bint last) except -1
    cdef int _decoded(self) except -1
    cdef int _flush_metrics(self) except -1
    cdef int _stamped(self, int64_t stamp_ns) except -1
    cdef int _call(self, object fn, object arg) except -1
    cdef int _report(self, object exc) except -1


cdef class BrokerListener(FeedListener):
    cdef:
        readonly object book
        PyObject* _book
        object _on_quote
        object _on_array
        object _on_object
        public object on_fresh
        public bint notify_fresh
        readonly bint quote_rows
        readonly bint conflate
        # Conflation: the latest quote per row within one read buffer, in arrival order.
        QuoteOut* _pend
        Py_ssize_t _npend
        Py_ssize_t _pend_cap
        int* _slot_of_row
        Py_ssize_t _slot_cap
        # The batch: rows updated since the last batch callback, each once, in order of
        # first update (`_in_batch[row]` is 1 while the row is in it).
        object _on_quotes
        object _on_report
        int64_t* _batch
        Py_ssize_t _nbatch
        Py_ssize_t _batch_cap
        unsigned char* _in_batch
        Py_ssize_t _in_batch_cap
        # The last ts delivered, boxed: quotes in a burst share their millisecond stamp.
        int64_t _ts_value
        object _ts_obj
        readonly uint64_t quotes
        readonly uint64_t delivered
        readonly uint64_t rejected
        readonly uint64_t batches

    cdef int on_quote_c(self, QuoteOut* q) except -1
    cdef int _on_frame(self, const char* data, Py_ssize_t size, bint last) except -1
    cdef int _deliver(self, QuoteOut* q) except -1
    cdef int _flush(self) except -1
    cdef int _pend_quote(self, QuoteOut* q) except -1
    cdef int _batch_row(self, int64_t row) except -1
    cdef int _flush_batch(self) except -1
    cdef int _clear_batch(self) except -1
    cdef int _callback_failed(self, str name, object exc) except -1


# --- SatoriEx (oddswire.satoriex) ---------------------------------------------------------
cdef class SatoriexListener(FeedListener):
    cdef:
        readonly object market_data
        PyObject* _md
        object _on_price
        object _on_book
        object _on_other
        object _on_applied
        object _on_refused
        object _on_report
        object _on_established
        dict _resyncing
        bint _price_python
        bint _book_python
        bint _established
        readonly uint64_t prices
        readonly uint64_t books
        readonly uint64_t slow

    cdef int _reported(self, object name, object exc) except -1
    cdef int _call0(self, object fn) except -1
    cdef int _call2(self, object fn, object a, object b) except -1
