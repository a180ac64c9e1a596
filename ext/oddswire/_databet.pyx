# The DATA.BET /log hot path: the chunked splitter's C-level sink applies each line to the
# Rust OddsTable and does the client's per-line bookkeeping (latency histograms, staleness,
# lag rule, version, sequence) in C; Python runs only for callbacks someone registered and
# for the rare cases (bad lines, unknown events, a lag state change). DatabetClient owns the
# rules; this module is their compiled loop, kept equal to them by tests/databet.
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport int64_t

from oddswire._framing cimport LineSink
from oddswire._metrics cimport (
    HistStage, LatencyHistogram, ReadClock, StampLatency, read_clock_elapsed, read_clock_init,
    read_clock_start, realtime_ns, stage_add, stage_flush, stamp_add,
)

from oddswire.errors import DecodeError

cdef enum Slot:
    S_LOG, S_HEARTBEAT, S_BATCH, S_MARKETS, S_BET_STOP, S_FIXTURE, S_SCORES, S_GAME_STATE,
    S_EXTENSIONS, S_SPORT_EVENT, S_ROLLBACK, S_NONE

#: The events the sink delivers itself, by slot.
SLOT_NAMES = ("log", "heartbeat", "batch", "markets", "bet_stop", "fixture", "scores",
              "game_state", "extensions", "sport_event", "rollback")
# event_type -> the slot of its own event (heartbeat is handled apart)
cdef dict _SLOT_OF = {
    "heartbeat": S_HEARTBEAT, "markets_updated": S_MARKETS, "bet_stop_updated": S_BET_STOP,
    "fixture_updated": S_FIXTURE, "competitor_scores_updated": S_SCORES,
    "game_state_updated": S_GAME_STATE, "extensions_updated": S_EXTENSIONS,
    "sport_event_snapshot": S_SPORT_EVENT, "sport_event_added": S_SPORT_EVENT,
    "bets_rollback": S_ROLLBACK,
}


cdef class LogSink(LineSink):
    """Applies /log lines for ``client`` (a DatabetClient). ``begin(t_recv)`` before each
    socket read's lines, ``end()`` after: it counts them into the client's stats and hands
    the ``batch`` callback the read's ``Applied`` list. ``lines(list, t_recv)`` does all
    three for lines split in Python (a body that is not chunked)."""

    cdef object _client, _apply, _callbacks, _gate, _sequence, _stats
    cdef dict _kinds
    cdef LatencyHistogram _decoded, _to_callback, _callback_time
    cdef StampLatency _server
    cdef list _targets
    cdef list _batch
    cdef object _generation
    cdef object _version, _last  # client.version and sequence.last, written back lazily
    cdef int64_t _t_recv, _max_lag_ns
    cdef ReadClock _clock
    cdef HistStage _stage_decoded, _stage_callback, _stage_callback_time
    cdef int64_t _clock_lead  # read_clock_start's stamp - t_recv: where the clock began
    cdef Py_ssize_t _n, _nbytes
    cdef bint _touch

    def __init__(self, client):
        self._client = client
        read_clock_init(&self._clock)
        self._apply = client.table.apply
        self._callbacks = client.callbacks
        self._gate = client.gate
        self._sequence = client.sequence
        self._stats = client.stats_counters
        if client.stamp_latency:
            self._decoded = client.stats_counters.receive_to_decoded
            self._to_callback = client.stats_counters.receive_to_callback
            self._server = client.stats_counters.server_to_receive
        self._callback_time = client.callbacks.callback_ns
        self._max_lag_ns = client.max_lag_ns
        self._kinds = _SLOT_OF
        self._batch = None
        self._version = self._last = None
        self._refresh()

    cdef int _refresh(self) except -1:
        direct = self._callbacks.direct
        self._generation = self._callbacks.generation
        self._targets = [direct(name) for name in SLOT_NAMES]
        return 0

    cpdef begin(self, int64_t t_recv):
        """A socket read's lines follow, received at ``t_recv`` (perf_counter_ns)."""
        if self._callbacks.generation != self._generation:
            self._refresh()
        self._t_recv = t_recv
        self._clock_lead = read_clock_start(&self._clock) - t_recv
        self._touch = True
        self._n = self._nbytes = 0
        self._batch = [] if self._targets[<int>S_BATCH] is not None else None
        self._version = None
        self._last = self._sequence.last
        if self._client._established_at is None:
            self._client._mark_established()

    cpdef Py_ssize_t end(self) except -1:
        """The read's lines are done: count them; the ``batch`` callback. Returns how many
        lines the read carried."""
        cdef Py_ssize_t n = self._n
        cdef list batch = self._batch
        self._sync()
        stats = self._stats
        if n:
            stats.messages += n
            stats.bytes += self._nbytes
        self._n = self._nbytes = 0
        self._batch = None
        if batch:
            fn = self._targets[<int>S_BATCH]
            if fn is not None:
                self._call(S_BATCH, fn, batch)
        self.flush_metrics()
        return n

    cpdef flush_metrics(self):
        """Add the staged latencies to the histograms (done at every ``end``)."""
        if self._decoded is not None:
            stage_flush(&self._stage_decoded, self._decoded)
            stage_flush(&self._stage_callback, self._to_callback)
        stage_flush(&self._stage_callback_time, self._callback_time)

    def lines(self, list lines, int64_t t_recv):
        """``begin``, each line, ``end``: for lines already split into bytes."""
        cdef bytes line
        self.begin(t_recv)
        try:
            for line in lines:
                self.on_line(line, len(line))
        finally:
            self.end()

    cdef inline int _sync(self) except -1:
        """Write the version and the sequence mark back (before Python code can look)."""
        if self._version is not None:
            self._client.version = self._version
            self._sequence.last = self._last
            self._version = None
        return 0

    cdef int _call(self, int slot, object fn, object arg) except -1:
        cdef int64_t t0
        self._sync()
        t0 = read_clock_elapsed(&self._clock)
        try:
            fn(arg)
        except Exception as e:  # a bot's bug must not kill the feed
            self._callbacks.report(SLOT_NAMES[slot], e)
        stage_add(&self._stage_callback_time, self._callback_time,
                  read_clock_elapsed(&self._clock) - t0)
        if self._callbacks.generation != self._generation:
            self._refresh()  # the callback registered another (or a hold started)
        return 0

    cdef int on_line(self, const char* data, Py_ssize_t size) except -1:
        cdef object a, ts, version, last, fn
        cdef int64_t now
        cdef int slot
        client = self._client
        self._n += 1
        self._nbytes += size
        try:
            a = self._apply(PyBytes_FromStringAndSize(data, size))
        except DecodeError as e:
            self._sync()
            client._bad_line(e)
            return 0
        if self._decoded is not None:
            stage_add(&self._stage_decoded, self._decoded,
                      self._clock_lead + read_clock_elapsed(&self._clock))
        slot = self._kinds.get(a.event_type, S_NONE)
        if slot == S_HEARTBEAT:
            self._sync()
            if client._lagging:
                client._lag(a.timestamp_ns)
            self._gate.touch()
            fn = self._targets[<int>S_HEARTBEAT]
            if fn is not None:
                self._call(S_HEARTBEAT, fn, a.timestamp_ns)
            return 0
        if slot == S_MARKETS:
            ts = a.timestamp_ns
            if ts is not None:
                now = realtime_ns()
                if self._server is not None:
                    stamp_add(self._server, now, ts)
                if (now - <int64_t>ts > self._max_lag_ns) != bool(client._lagging):
                    self._sync()
                    client._lag_state(now - <int64_t>ts)
        if self._touch or not self._gate.healthy:
            self._touch = False
            self._sync()  # touch() may run the healthy callbacks
            self._gate.touch()
        version = a.version
        last = self._last
        if last is not None and version is not None and version > last:
            self._last = self._version = version  # SequenceTracker.observe's "ok", inline
        else:
            self._sync()
            if self._sequence.observe(version) != "ok":
                self._stats.gaps += 1
            self._last = self._sequence.last
            client.version = version
        if not a.known_event:
            self._sync()
            client._unknown_event(a)
        elif slot != S_NONE:
            fn = self._targets[slot]
            if fn is not None:
                self._call(slot, fn, a)
        fn = self._targets[<int>S_LOG]
        if fn is not None:
            self._call(S_LOG, fn, a)
        if self._batch is not None:
            self._batch.append(a)
        if self._to_callback is not None:
            stage_add(&self._stage_callback, self._to_callback,
                      self._clock_lead + read_clock_elapsed(&self._clock))
        return 0
