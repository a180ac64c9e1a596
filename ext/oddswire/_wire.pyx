# The picows listeners: the whole per-frame hot path of the WebSocket feeds in one module.
#
# FeedListener is what every feed shares: frames in, whole messages out (fragments
# reassembled within a bound), CLOSE answered, PING answered only while the peer reads what
# we send, text ping/pong for feeds that use it, counters, sampling and error isolation.
# A feed's listener overrides the C-level hook on_message(data, size, last).
#
# BrokerListener takes each quote's payload pointer straight from picows' read buffer and
# hands it to the Rust compact decoder through the C entry point oddswire_native exports
# (PyCapsule "oddswire_native._C_API"): no bytes object, no Python call until the user's
# quote callback, which gets scalars. Frames that are not quotes (other markers, JSON
# objects) are rare and go to Python as bytes.
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.pycapsule cimport PyCapsule_Import
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp, memcpy, memset
from oddswire._metrics cimport (
    monotonic_ns, read_clock_elapsed, read_clock_init, read_clock_start, realtime_ns,
    stage_add, stage_flush, stamp_stage_add, stamp_stage_flush,
)

from picows.picows cimport (
    WSCloseCode,
    WSCloseHandshake,
    WSCloseInfo,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
)

from oddswire.errors import DecodeError, ProtocolError

from numpy import empty as _np_empty, int64 as _np_int64

cdef enum:
    ABI_VERSION = 3

native_api = <NativeApi*>PyCapsule_Import(b"oddswire_native._C_API", 0)
if native_api.abi_version != ABI_VERSION or native_api.size != sizeof(NativeApi):
    raise ImportError(
        "oddswire._wire and oddswire_native were built from different versions; "
        "reinstall both: pip install ./rust .")


cdef inline bint _is_ws(char c) noexcept nogil:
    return c == b' ' or c == b'\t' or c == b'\n' or c == b'\r'


# --- recording (oddswire.record) ---------------------------------------------------------
#
# Recorder is the one writer behind every client's record=PATH: a record is a 14-byte head
# (kind u8, flags u8, wall-clock receive time ns i64, payload length u32, little-endian)
# and the payload, appended to a C buffer; the buffer goes to the sink (a raw file, or a
# zstd stream writer) at the end of every socket read when per_read is set (a crash then
# loses at most the read being processed: one write(2) per read, not per frame), else when
# it holds flush_bytes or flush_interval has passed since the last write; and on flush() /
# close(). A write that fails (disk full) is reported once through
# on_error and recording stops: the feed goes on.

cdef enum:
    RECORD_HEAD = 14
    RECORD_FRAME = 1
    RECORD_CONNECT = 2
    FRAME_FIN = 0x10
    FRAME_LAST = 0x20


cdef inline void _put_le(char* p, uint64_t v, int n) noexcept nogil:
    cdef int i
    for i in range(n):
        p[i] = <char>((v >> (8 * i)) & 0xFF)


cdef class Recorder:
    """Buffered writer of recording records (see ``oddswire.record`` for the format)."""

    def __init__(self, sink, *, Py_ssize_t flush_bytes=1 << 16, double flush_interval=1.0,
                 bint per_read=False, on_error=None):
        if flush_bytes < 1 or not flush_interval > 0:
            raise ValueError("flush_bytes and flush_interval must be positive")
        self._sink = sink
        self._on_error = on_error
        self.flush_bytes = flush_bytes
        self.per_read = per_read
        self._flush_ns = <int64_t>(flush_interval * 1e9)
        self._last_flush = realtime_ns()

    def __dealloc__(self):
        PyMem_Free(self._buf)

    def write(self, int kind, data=b"", int flags=0):
        """Append one record (``data``: bytes-like) stamped with the wall clock now."""
        cdef const unsigned char[:] view = data
        cdef const char* ptr = b""
        if view.shape[0]:
            ptr = <const char*>&view[0]
        self.put(kind, flags, ptr, view.shape[0])

    def flush(self):
        """Write what is buffered to the sink, and flush the sink."""
        self._flush()

    def tick(self):
        """Write what is buffered if ``flush_interval`` has passed since the last write (a
        quiet feed's last records reach the file without waiting for the next one)."""
        if self._len and realtime_ns() - self._last_flush >= self._flush_ns:
            self._flush()

    def close(self):
        """Flush, then close the sink; further records are dropped."""
        if self.closed:
            return
        self._flush()
        self.closed = True
        sink, self._sink = self._sink, None
        try:
            sink.close()
        except Exception as exc:
            self._failed(exc)

    @property
    def buffered(self):
        """Bytes appended but not yet written to the sink."""
        return self._len

    cdef int put(self, int kind, int flags, const char* data, Py_ssize_t size) except -1:
        cdef Py_ssize_t need, cap
        cdef char* grown
        cdef char* p
        cdef int64_t now
        if self.failed or self.closed:
            return 0
        if size > 0xFFFFFFFF:
            self._failed(ValueError(f"a {size}-byte payload does not fit a record"))
            return 0
        need = self._len + RECORD_HEAD + size
        if need > self._cap:
            cap = max(need, 2 * self._cap, self.flush_bytes + 4096)
            grown = <char*>PyMem_Realloc(self._buf, cap)
            if grown == NULL:
                raise MemoryError()
            self._buf = grown
            self._cap = cap
        now = realtime_ns()
        p = self._buf + self._len
        p[0] = <char>kind
        p[1] = <char>flags
        _put_le(p + 2, <uint64_t>now, 8)
        _put_le(p + 10, <uint64_t>size, 4)
        if size:
            memcpy(p + RECORD_HEAD, data, size)
        self._len = need
        self.records += 1
        # A frame record without FRAME_LAST has more of its socket read behind it; every
        # other record kind is a whole read or a rare control record.
        if (need >= self.flush_bytes or now - self._last_flush >= self._flush_ns
                or (self.per_read and (kind != RECORD_FRAME or flags & FRAME_LAST))):
            return self._flush()
        return 0

    cdef int _flush(self) except -1:
        cdef Py_ssize_t n = self._len
        self._last_flush = realtime_ns()
        if self.failed or self.closed:
            return 0
        self._len = 0
        try:
            if n:
                data = memoryview(PyBytes_FromStringAndSize(self._buf, n))
                while len(data):
                    done = self._sink.write(data)
                    data = data[len(data) if done is None else done:]
                self.written += n
            self._sink.flush()
        except Exception as exc:
            self._failed(exc)
        return 0

    def _failed(self, exc):
        self.failed = True
        self._len = 0
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:
                pass  # the error sink itself failed: recording has stopped either way


cdef class FeedListener(WSListener):
    """picows listener base of the WebSocket feeds (see the module comment).

    Each whole message goes to the C-level ``on_message`` hook; the default hands it to
    ``on_message(payload: bytes)`` when given. A message (one frame or fragmented) over
    ``max_message_bytes`` is hopeless: it is reported once, the rest of it is discarded,
    and the connection is closed with 1009. A PING is answered only while our unsent data
    stays under ``max_write_buffer`` bytes; past that the peer is not reading, and the
    connection is dropped instead of queueing PONGs for ever (connect with
    ``enable_auto_pong=False``). ``ping_payload`` / ``pong_payload`` select a text
    keep-alive (picows' user-specific ping hooks), else protocol PING / PONG frames.

    ``metrics``: the client's ``Stats`` (``oddswire.client``), or None. Every message is
    then recorded in C into its histograms: ``receive_to_callback`` when ``on_message``
    returns, ``receive_to_decoded`` where a subclass (or ``mark_decoded()``) says the
    message is decoded, ``server_to_receive`` where it has a server stamp (``stamp()``),
    all against one receive stamp per socket read (the first frame of the read).
    Exceptions raised by callbacks go to ``on_error`` and never reach picows, so a bot's
    bug does not drop the connection. ``abandon()`` closes the connection as soon as it
    exists (a stop during the handshake).

    ``record``: a ``Recorder`` that gets every data frame (TEXT, BINARY, CONTINUATION) as
    it arrives, with its type, FIN and last-in-buffer flags; ``replay_frame`` plays one
    back through ``on_ws_frame``, the very entry picows calls.
    """

    def __init__(self, *, on_message=None, on_error=None, on_connected=None,
                 on_disconnected=None, Py_ssize_t max_message_bytes=1 << 20,
                 Py_ssize_t max_write_buffer=1 << 20, bytes ping_payload=None,
                 bytes pong_payload=None, Recorder record=None, metrics=None):
        self.recorder = record
        read_clock_init(&self._clock)
        self._on_message = on_message
        self._on_error = on_error
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected
        self.max_message_bytes = max_message_bytes
        self.max_write_buffer = max_write_buffer
        self._ping_payload = ping_payload
        self._pong_payload = pong_payload
        if metrics is not None:
            self.to_decoded = metrics.receive_to_decoded
            self.to_callback = metrics.receive_to_callback
            self.server_stamp = metrics.server_to_receive

    def __dealloc__(self):
        PyMem_Free(self._frag)

    def abandon(self):
        """Close the connection now, or as soon as the handshake completes."""
        self.abandoned = True
        if self.transport is not None:
            self.transport.disconnect(False)

    # --- picows callbacks --------------------------------------------------------------

    cpdef on_ws_connected(self, WSTransport transport):
        self.transport = transport
        if self.recorder is not None:  # before the frames of the handshake's read
            self.recorder.put(RECORD_CONNECT, 0, NULL, 0)
        if self.abandoned:
            transport.disconnect(False)
            return
        if self._on_connected is not None:
            self._on_connected(transport)

    cpdef on_ws_disconnected(self, WSTransport transport):
        self._flush_metrics()
        hs = transport.close_handshake
        self.pong_timed_out = (transport.auto_ping_expect_pong and hs is not None
                               and hs.sent is not None and hs.sent.code == WSCloseCode.GOING_AWAY)
        if self._on_disconnected is not None:
            self._on_disconnected(transport)

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef int mt = frame.msg_type
        if mt == WSMsgType.PING:
            if (transport.underlying_transport.get_write_buffer_size()
                    > self.max_write_buffer):
                self._report(ProtocolError(
                    f"the peer does not read what we send (over {self.max_write_buffer} "
                    "bytes unsent): not answering its PING, disconnecting"))
                transport.disconnect(False)
            else:
                transport.send_pong(frame.get_payload_as_bytes())
            if frame.last_in_buffer:
                self._flush_metrics()
            return
        if mt == WSMsgType.CLOSE:
            self._flush_metrics()
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
            return
        if self.recorder is not None:
            self.recorder.put(RECORD_FRAME, mt | (FRAME_FIN if frame.fin else 0)
                              | (FRAME_LAST if frame.last_in_buffer else 0),
                              frame.payload_ptr, frame.payload_size)
        self._received(frame.last_in_buffer)
        self._frame(mt, frame.payload_ptr, frame.payload_size, frame.fin, frame.last_in_buffer)
        if frame.last_in_buffer:
            self._flush_metrics()

    cpdef send_user_specific_ping(self, WSTransport transport):
        self.pings += 1
        if self._ping_payload is None:
            transport.send_ping()
        else:
            transport.send(WSMsgType.TEXT, self._ping_payload)

    cpdef is_user_specific_pong(self, WSFrame frame):
        if self._pong_payload is None:
            if frame.msg_type == WSMsgType.PONG:
                self.pongs += 1
                return True
            return False
        cdef Py_ssize_t n = len(self._pong_payload)
        if (frame.msg_type == WSMsgType.TEXT and frame.payload_size == n
                and memcmp(frame.payload_ptr, <const char*>self._pong_payload, n) == 0):
            self.pongs += 1
            return True
        return False

    # --- the same path without a socket (tests, replay) ----------------------------------

    def feed(self, payload, *, int msg_type=WSMsgType.TEXT, bint fin=True,
             bint last_in_buffer=True):
        """Process one frame's payload as if picows had delivered it."""
        cdef const unsigned char[:] view = payload
        cdef const char* ptr = b""
        if view.shape[0]:
            ptr = <const char*>&view[0]
        self._received(last_in_buffer)
        self._frame(msg_type, ptr, view.shape[0], fin, last_in_buffer)
        if last_in_buffer:
            self._flush_metrics()

    def flush_metrics(self):
        """Add the staged latencies to the histograms now (done at the end of every socket
        read; a reader inside a callback calls this first)."""
        self._flush_metrics()

    def mark_decoded(self):
        """The message being handled is decoded (a Python decoder's ``receive_to_decoded``)."""
        self._decoded()

    def stamp(self, stamp_ns, *, bint ms=False):
        """The message being handled carries server stamp ``stamp_ns`` (an int, ns since
        the epoch; ms with ``ms=True``): ``server_to_receive``, against the wall clock at
        its socket read. Anything else, or one out of range, is ignored."""
        cdef int overflow = 0
        cdef long long v
        if type(stamp_ns) is not int:
            return
        v = PyLong_AsLongLongAndOverflow(stamp_ns, &overflow)
        if overflow:
            return
        self._stamped(_ms_to_ns(v) if ms else v)

    def replay_frame(self, payload, int flags):
        """Deliver one recorded data frame (``flags`` as recorded: type, FIN, last in
        buffer) through ``on_ws_frame`` exactly as picows delivers a received one, on the
        ``transport`` given to ``on_ws_connected``; no socket is read. Used by
        ``oddswire.replay``."""
        cdef const unsigned char[:] view = payload
        cdef WSFrame frame = self._replay_frame
        cdef int mt = flags & 0x0F
        if mt != WSMsgType.TEXT and mt != WSMsgType.BINARY and mt != WSMsgType.CONTINUATION:
            raise ValueError(f"not a recorded data frame type: {mt}")
        if frame is None:
            frame = self._replay_frame = WSFrame.__new__(WSFrame)
        frame.payload_ptr = <char*>b""
        if view.shape[0]:
            frame.payload_ptr = <char*>&view[0]
        frame.payload_size = view.shape[0]
        frame.tail_size = 0
        frame.msg_type = <WSMsgType>mt
        frame.fin = 1 if flags & FRAME_FIN else 0
        frame.last_in_buffer = 1 if flags & FRAME_LAST else 0
        try:
            self.on_ws_frame(self.transport, frame)
        finally:
            frame.payload_ptr = NULL
            frame.payload_size = 0

    # --- frames into messages ----------------------------------------------------------

    cdef int _frame(self, int msg_type, const char* data, Py_ssize_t size, bint fin,
                    bint last) except -1:
        cdef Py_ssize_t need, cap
        cdef char* grown
        self.frames += 1
        self.bytes += size
        if msg_type == WSMsgType.TEXT or msg_type == WSMsgType.BINARY:
            self._discarding = False
            if self._in_frag:
                self._in_frag = False
                self._report(ProtocolError(
                    "a new message started before the fragmented one ended; dropped it"))
            if fin:
                if size > self.max_message_bytes:  # picows may still deliver a frame it refused
                    return self._too_big()
                return self._deliver_message(data, size, last)
            self._in_frag = True
            self._frag_size = 0
        elif msg_type == WSMsgType.CONTINUATION:
            if self._discarding:  # the rest of a message already refused
                self._discarding = not fin
                return 0
            if not self._in_frag:
                return self._report(ProtocolError("continuation frame without a message"))
        else:  # PING / PONG control frames
            return 0
        need = self._frag_size + size
        if need > self.max_message_bytes:
            self._in_frag = False
            self._discarding = not fin
            return self._too_big()
        if need > self._frag_cap:
            cap = max(need, 2 * self._frag_cap, 256)
            grown = <char*>PyMem_Realloc(self._frag, cap)
            if grown == NULL:
                raise MemoryError()
            self._frag = grown
            self._frag_cap = cap
        if size:
            memcpy(self._frag + self._frag_size, data, size)
        self._frag_size = need
        if fin and msg_type == WSMsgType.CONTINUATION:
            self._in_frag = False
            return self._deliver_message(self._frag, self._frag_size, last)
        return 0

    cdef int _too_big(self) except -1:
        self._report(ProtocolError(
            f"a message over max_message_bytes ({self.max_message_bytes}): "
            "dropped, and the connection closed (1009)"))
        if self.transport is not None:
            self.transport.send_close(WSCloseCode.MESSAGE_TOO_BIG, b"message too big")
            self.transport.disconnect()
        return 0

    cdef int _deliver_message(self, const char* data, Py_ssize_t size, bint last) except -1:
        self.messages += 1
        self.on_message(data, size, last)
        if self.to_callback is not None:
            stage_add(&self._stage_callback, self.to_callback, read_clock_elapsed(&self._clock))
        return 0

    # --- latency (every message; see the class docstring) --------------------------------

    cdef int _received(self, bint last) except -1:
        """A data frame arrived: its read's receive stamp is taken at the read's first."""
        if not self._in_read and self.to_callback is not None:
            self._t_read = read_clock_start(&self._clock)
        self._in_read = not last
        return 0

    cdef int _flush_metrics(self) except -1:
        if self.to_decoded is not None:
            stage_flush(&self._stage_decoded, self.to_decoded)
        if self.to_callback is not None:
            stage_flush(&self._stage_callback, self.to_callback)
        if self.server_stamp is not None:
            stamp_stage_flush(&self._stage_server, self.server_stamp)
        return 0

    cdef int _decoded(self) except -1:
        if self.to_decoded is not None:
            stage_add(&self._stage_decoded, self.to_decoded, read_clock_elapsed(&self._clock))
        return 0

    cdef int _stamped(self, int64_t stamp_ns) except -1:
        if self.server_stamp is None or stamp_ns <= 0:  # <= 0: none, or not a stamp
            return 0
        if self._wall_offset_at == 0 or self._t_read - self._wall_offset_at > 1000000000:
            self._wall_offset = realtime_ns() - monotonic_ns()
            self._wall_offset_at = self._t_read
        stamp_stage_add(&self._stage_server, self.server_stamp, self._t_read + self._wall_offset,
                        stamp_ns)
        return 0

    cdef int on_message(self, const char* data, Py_ssize_t size, bint last) except -1:
        """One whole message; ``data`` is valid only during the call."""
        if self._on_message is not None:
            self._call(self._on_message, PyBytes_FromStringAndSize(data, size))
        return 0

    cdef int _call(self, object fn, object arg) except -1:
        try:
            fn(arg)
        except Exception as exc:
            self._report(exc)
        return 0

    cdef int _report(self, object exc) except -1:
        self.errors += 1
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:
                pass  # the error sink itself failed: nothing safer to do than go on
        return 0


cdef class BrokerListener(FeedListener):
    """picows listener for the broker stream (see ``oddswire.broker``).

    Quote frames (``["t", ...]``) are decoded from the read buffer into ``book`` (a
    ``QuoteBook``) and delivered as ``on_quote(symbol, bid, ask, ts)``, or
    ``on_quote(row)`` with ``quote_rows=True``. Other compact arrays go to
    ``on_array(payload: bytes)``, JSON objects to ``on_object(payload: bytes)``; a frame
    that is neither, or a quote that does not decode, goes to ``on_error(exc)`` and is
    skipped. A quote for a symbol the book does not admit (``QuoteBook.admit_new`` False)
    changes nothing and is counted in ``rejected`` (the first one is reported). A text
    ``pong`` is the heartbeat answer and is consumed here.

    ``conflate=True``: quotes are written to the book as they arrive, but the callback runs
    once per symbol per read buffer, with the latest values, when picows reports the last
    frame of the buffer, or before any non-quote frame, so the feed's order across event
    kinds is kept.

    ``on_quotes(rows)``: the batch, called once per read buffer (at the same points as
    conflation, after the ``on_quote`` calls) with a numpy int64 array of the book rows
    that quotes updated since the last batch, each once, in order of first update; the
    book already holds their values. It runs with or without ``on_quote``.

    ``on_report(name, exc)``: where an exception of ``on_quote`` (name ``"quote"``) or
    ``on_quotes`` (``"quotes"``) goes; ``on_error`` when not given. Other keyword
    arguments are ``FeedListener``'s.
    """

    def __init__(self, book, *, on_quote=None, on_quotes=None, on_array=None,
                 on_object=None, on_report=None, bint quote_rows=False,
                 bint conflate=False, **kwargs):
        if not native_api.is_quote_book(<PyObject*>book):
            raise TypeError("book must be an oddswire.broker.QuoteBook")
        if on_quote is not None and not quote_rows and not book.has_quote_fields:
            raise ValueError("the book's schema has no bid/ask/ts fields: use quote_rows=True")
        kwargs.setdefault("ping_payload", b"ping")
        kwargs.setdefault("pong_payload", b"pong")
        FeedListener.__init__(self, **kwargs)
        self.book = book
        self._book = <PyObject*>book
        self._on_quote = on_quote
        self._on_quotes = on_quotes
        self._on_array = on_array
        self._on_object = on_object
        self._on_report = on_report
        self.quote_rows = quote_rows
        self.conflate = conflate

    def __dealloc__(self):
        PyMem_Free(self._pend)
        PyMem_Free(self._slot_of_row)
        PyMem_Free(self._batch)
        PyMem_Free(self._in_batch)

    cpdef on_ws_disconnected(self, WSTransport transport):
        self._flush()
        FeedListener.on_ws_disconnected(self, transport)

    def set_on_quote(self, on_quote):
        """Replace the quote callback (None: quotes only update the book)."""
        if on_quote is not None and not self.quote_rows and not self.book.has_quote_fields:
            raise ValueError("the book's schema has no bid/ask/ts fields: use quote_rows=True")
        self._on_quote = on_quote

    def set_on_quotes(self, on_quotes):
        """Replace the batch callback (None: no batches; rows pending are dropped)."""
        self._on_quotes = on_quotes
        if on_quotes is None:
            self._clear_batch()

    def flush(self):
        """Deliver the conflated quotes and the batch still pending."""
        self._flush()

    # --- the hot path -----------------------------------------------------------------

    cdef int on_message(self, const char* data, Py_ssize_t size, bint last) except -1:
        self._on_frame(data, size, last)
        if last:
            self._flush()
        return 0

    cdef int _on_frame(self, const char* data, Py_ssize_t size, bint last) except -1:
        cdef QuoteOut q
        cdef Py_ssize_t i = 0
        cdef int rc
        while i < size and _is_ws(data[i]):
            i += 1
        if i < size and data[i] == b'[':
            try:
                rc = native_api.quote_apply(self._book, <const unsigned char*>data, size, &q)
            except DecodeError as exc:
                self._report(exc)
                return 0
            if rc == 1:
                self.quotes += 1
                self._decoded()
                self._stamped(_ms_to_ns(q.ts))
                if self.notify_fresh:
                    self.notify_fresh = False
                    if self.on_fresh is not None:
                        self.on_fresh()
                if self._on_quotes is not None:
                    self._batch_row(q.row)
                if self.conflate:
                    return self._pend_quote(&q)
                return self._deliver(&q)
            if rc == 2:
                self.rejected += 1
                if self.rejected == 1:
                    self._report(ProtocolError(
                        "quotes for symbols this client did not subscribe are dropped "
                        "(counted in rejected)"))
                return 0
            self._flush()
            if self._on_array is not None:
                self._call(self._on_array, PyBytes_FromStringAndSize(data, size))
            return 0
        self._flush()
        if i < size and data[i] == b'{':
            if self._on_object is not None:
                self._call(self._on_object, PyBytes_FromStringAndSize(data, size))
            return 0
        if size == 4 and memcmp(data, b"pong", 4) == 0:
            self.pongs += 1  # an answer picows was no longer waiting for
            return 0
        return self._report(DecodeError(
            "frame is neither a compact array nor a JSON object", field=0))

    cdef int on_quote_c(self, QuoteOut* q) except -1:
        """The quote hook for Cython subclasses: the default calls ``on_quote``."""
        if self._on_quote is None:
            return 0
        try:
            if self.quote_rows:
                self._on_quote(q.row)
            else:
                if q.ts != self._ts_value or self._ts_obj is None:
                    self._ts_obj = q.ts
                    self._ts_value = q.ts
                self._on_quote(<object>q.symbol, q.bid, q.ask, self._ts_obj)
        except Exception as exc:
            self._callback_failed("quote", exc)
        return 0

    cdef int _callback_failed(self, str name, object exc) except -1:
        if self._on_report is None:
            return self._report(exc)
        self.errors += 1
        try:
            self._on_report(name, exc)
        except Exception:
            pass  # the error sink itself failed: nothing safer to do than go on
        return 0

    cdef int _deliver(self, QuoteOut* q) except -1:
        self.delivered += 1
        return self.on_quote_c(q)

    cdef int _pend_quote(self, QuoteOut* q) except -1:
        cdef Py_ssize_t row = q.row, n
        cdef int* slots
        cdef QuoteOut* pend
        if row >= self._slot_cap:
            n = max(row + 1, 2 * self._slot_cap, 64)
            slots = <int*>PyMem_Realloc(self._slot_of_row, n * sizeof(int))
            if slots == NULL:
                raise MemoryError()
            for i in range(self._slot_cap, n):
                slots[i] = -1
            self._slot_of_row = slots
            self._slot_cap = n
        if self._slot_of_row[row] >= 0:
            self._pend[self._slot_of_row[row]] = q[0]
            return 0
        if self._npend == self._pend_cap:
            n = max(2 * self._pend_cap, 16)
            pend = <QuoteOut*>PyMem_Realloc(self._pend, n * sizeof(QuoteOut))
            if pend == NULL:
                raise MemoryError()
            self._pend = pend
            self._pend_cap = n
        self._slot_of_row[row] = <int>self._npend
        self._pend[self._npend] = q[0]
        self._npend += 1
        return 0

    cdef int _batch_row(self, int64_t row) except -1:
        cdef Py_ssize_t n
        cdef unsigned char* marks
        cdef int64_t* rows
        if row >= self._in_batch_cap:
            n = max(row + 1, 2 * self._in_batch_cap, 64)
            marks = <unsigned char*>PyMem_Realloc(self._in_batch, n)
            if marks == NULL:
                raise MemoryError()
            memset(marks + self._in_batch_cap, 0, n - self._in_batch_cap)
            self._in_batch = marks
            self._in_batch_cap = n
        if self._in_batch[row]:
            return 0
        if self._nbatch == self._batch_cap:
            n = max(2 * self._batch_cap, 64)
            rows = <int64_t*>PyMem_Realloc(self._batch, n * sizeof(int64_t))
            if rows == NULL:
                raise MemoryError()
            self._batch = rows
            self._batch_cap = n
        self._in_batch[row] = 1
        self._batch[self._nbatch] = row
        self._nbatch += 1
        return 0

    cdef int _clear_batch(self) except -1:
        cdef Py_ssize_t i
        for i in range(self._nbatch):
            self._in_batch[self._batch[i]] = 0
        self._nbatch = 0
        return 0

    cdef int _flush_batch(self) except -1:
        cdef Py_ssize_t n = self._nbatch
        cdef int64_t[::1] view
        if n == 0:
            return 0
        rows = _np_empty(n, _np_int64)
        view = rows
        memcpy(&view[0], self._batch, n * sizeof(int64_t))
        self._clear_batch()
        self.batches += 1
        if self._on_quotes is not None:
            try:
                self._on_quotes(rows)
            except Exception as exc:
                self._callback_failed("quotes", exc)
        return 0

    cdef int _flush(self) except -1:
        cdef Py_ssize_t i, n = self._npend
        if n != 0:
            self._npend = 0
            for i in range(n):
                self._slot_of_row[self._pend[i].row] = -1
            for i in range(n):
                self._deliver(&self._pend[i])
        return self._flush_batch()


# --- SatoriEx (oddswire.satoriex) ---------------------------------------------------------
#
# SatoriexListener applies each market-data message (price_update / orderbook) to the Rust
# MarketData straight from picows' read buffer through the C entry point (no bytes object)
# and, in the common case, calls the bound price(market_id, mid, best_bid, best_ask, ts) /
# book(market_id, seq) callback with scalars. Every other type, a message MarketData
# refuses, a gap / crossing / delta before a snapshot, a book message while a resubscribe
# is pending, and market data someone wants as a decoded message go to the client's Python
# path, which owns the semantics.

from cpython.dict cimport PyDict_Size
from libc.stdint cimport INT64_MIN

cdef enum:
    SX_PRICE = 1
    SX_BOOK = 2


cdef class SatoriexListener(FeedListener):
    """picows listener for the SatoriEx WebSocket (see ``oddswire.satoriex``).

    Each whole message is applied to ``market_data`` (a Rust ``MarketData``) from the read
    buffer. A price update (result 1) calls ``on_price(market_id, mid, best_bid, best_ask,
    ts)``, an applied book message (result 2) ``on_book(market_id, seq)``, both bound with
    ``bind()`` (None: nobody listens); their exceptions go to ``on_report(name, exc)``.
    Those are taken here unless ``bind()`` said the client wants that type's decoded message
    (``price_python`` / ``book_python``), or, for a book message, ``resyncing`` (the
    client's dict of pending resubscribes) is not empty, or a price update left no price
    (its ``ts`` the column's empty marker). Then, and for the other result codes, it is
    ``on_applied(code, payload: bytes)`` with the state already changed. A message of
    another type goes to ``on_other(payload)``, one ``MarketData`` refuses to
    ``on_refused(payload, exc)`` (nothing changed). ``on_established()`` runs once, at the
    first message. Other keyword arguments are ``FeedListener``'s.
    """

    def __init__(self, market_data, *, on_other, on_applied, on_refused, on_report,
                 on_established, dict resyncing, **kwargs):
        if not native_api.is_market_data(<PyObject*>market_data):
            raise TypeError("market_data must be an oddswire.satoriex.MarketData")
        FeedListener.__init__(self, **kwargs)
        self.market_data = market_data
        self._md = <PyObject*>market_data
        self._on_other = on_other
        self._on_applied = on_applied
        self._on_refused = on_refused
        self._on_report = on_report
        self._on_established = on_established
        self._resyncing = resyncing
        self._price_python = True
        self._book_python = True

    def bind(self, on_price, on_book, bint price_python, bint book_python):
        """The callbacks of the fast path (None: nobody listens), and whether price updates
        / book messages must take the Python path instead."""
        self._on_price = on_price
        self._on_book = on_book
        self._price_python = price_python
        self._book_python = book_python

    # --- the hot path -----------------------------------------------------------------

    cdef int on_message(self, const char* data, Py_ssize_t size, bint last) except -1:
        cdef MarketOut q
        cdef int rc
        if not self._established:
            self._established = True
            self._call0(self._on_established)
        try:
            rc = native_api.market_apply(self._md, <const unsigned char*>data, size, &q)
        except DecodeError as exc:
            self.slow += 1
            return self._call2(self._on_refused, PyBytes_FromStringAndSize(data, size), exc)
        if rc == 0:
            self.slow += 1
            return self._call(self._on_other, PyBytes_FromStringAndSize(data, size))
        self._decoded()
        if rc == SX_PRICE and q.ts != INT64_MIN:
            self._stamped(_ms_to_ns(q.ts))
        if rc == SX_PRICE and not self._price_python and q.ts != INT64_MIN:
            self.prices += 1
            if self._on_price is not None:
                try:
                    self._on_price(<object>q.market, q.mid, q.best_bid, q.best_ask, q.ts)
                except Exception as exc:
                    self._reported(u"price", exc)
            return 0
        if rc == SX_BOOK and not self._book_python and PyDict_Size(self._resyncing) == 0:
            self.books += 1
            if self._on_book is not None:
                try:
                    self._on_book(<object>q.market, q.seq)
                except Exception as exc:
                    self._reported(u"book", exc)
            return 0
        self.slow += 1
        return self._call2(self._on_applied, rc, PyBytes_FromStringAndSize(data, size))

    cdef int _reported(self, object name, object exc) except -1:
        try:
            self._on_report(name, exc)
        except Exception as e:
            self._report(e)
        return 0

    cdef int _call0(self, object fn) except -1:
        try:
            fn()
        except Exception as exc:
            self._report(exc)
        return 0

    cdef int _call2(self, object fn, object a, object b) except -1:
        try:
            fn(a, b)
        except Exception as exc:
            self._report(exc)
        return 0



# --- replay without a socket (oddswire.replay) -------------------------------------------

def replay_transport(underlying, logger, loop):
    """A picows ``WSTransport`` over ``underlying`` (a stand-in asyncio transport whose
    writes go nowhere): what a listener and its client talk to during a replay."""
    return WSTransport(True, underlying, logger, loop)


def replay_disconnected(WSTransport transport, recv=None, sent=None, bint recv_then_sent=False,
                        bint pong_timed_out=False):
    """Mark ``transport`` disconnected as picows' ``connection_lost`` does, with the close
    handshake as recorded (``recv`` / ``sent``: ``(code, reason)`` or None; a pong that
    never came shows as picows shows it). Call the listener's ``on_ws_disconnected`` next,
    then ``replay_wait_done``."""
    cdef WSCloseHandshake hs
    transport.is_disconnected = True
    transport.auto_ping_expect_pong = pong_timed_out
    if recv is not None or sent is not None:
        hs = WSCloseHandshake.__new__(WSCloseHandshake)
        hs.recv = _close_info(recv)
        hs.sent = _close_info(sent)
        hs.recv_then_sent = recv_then_sent
        transport.close_handshake = hs


def replay_wait_done(WSTransport transport):
    """Release ``wait_disconnected()`` (the last step of picows' ``connection_lost``)."""
    if not transport.disconnected_future.done():
        transport.disconnected_future.set_result(None)


cdef WSCloseInfo _close_info(info):
    cdef WSCloseInfo out
    cdef int code
    if info is None:
        return None
    code = info[0]
    out = WSCloseInfo.__new__(WSCloseInfo)
    out.code = <WSCloseCode>code
    out.reason = str(info[1])
    return out
