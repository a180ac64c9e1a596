# C-level API of oddswire._metrics: cimport it to record latencies without Python calls.
#
#     from oddswire._metrics cimport LatencyHistogram, ReadClock, hist_add, ...
#     read_clock_init(&clock)                      # once
#     t_recv = read_clock_start(&clock)            # at each socket read
#     hist_add(hist, read_clock_elapsed(&clock))   # per message: inlined, no call
#     stage_add(&stage, hist, ns) ... stage_flush(&stage, hist)   # the same, batched
#
from libc.stdint cimport UINT32_MAX, int64_t, uint32_t, uint64_t

# Log-linear buckets: values below 2**SUB_BITS exactly, then 2**SUB_BITS buckets per power of
# two (at most 1/32 = 3.1% wide), up to 2**44 ns (~4.9 hours); larger values share the last.
cdef enum:
    SUB_BITS = 5
    SUB = 32
    TOP_BIT = 44
    NBUCKETS = (TOP_BIT - SUB_BITS + 1) * SUB


cdef extern from *:
    """
    static inline int oddswire_floor_log2(unsigned long long v) {
        return 63 - __builtin_clzll(v);
    }
    #if defined(__x86_64__) || defined(__i386__)
    #include <x86intrin.h>
    static inline unsigned long long oddswire_ticks(void) { return __rdtsc(); }
    #define ODDSWIRE_HAVE_TICKS 1
    #else
    static inline unsigned long long oddswire_ticks(void) { return 0; }
    #define ODDSWIRE_HAVE_TICKS 0
    #endif
    """
    int floor_log2 "oddswire_floor_log2"(unsigned long long v) noexcept nogil
    uint64_t cpu_ticks "oddswire_ticks"() noexcept nogil
    bint HAVE_TICKS "ODDSWIRE_HAVE_TICKS"


cdef int64_t monotonic_ns() noexcept nogil   # time.perf_counter_ns() on Linux
cdef int64_t realtime_ns() noexcept nogil    # time.time_ns()


# --- the clock of one socket read ----------------------------------------------------------
#
# A clock_gettime costs ~25 ns on a VM (an lfence and the pvclock arithmetic), and a feed
# stamps every message twice (decoded, callback returned): at millions of messages a second
# that was a fifth of the broker's time. So each read is stamped once with CLOCK_MONOTONIC,
# and the messages of that read are stamped with the CPU's time-stamp counter relative to it
# (a plain rdtsc, ~3x cheaper), scaled by a rate measured against CLOCK_MONOTONIC between
# reads at least CALIBRATE_NS apart. The counter is used only where the kernel itself keeps
# time with it (clocksource "tsc": invariant and synchronised across cores); elsewhere, before
# the first calibration, and for anything that looks wrong (a counter that went back, over a
# second within a read), every stamp is clock_gettime.
cdef enum:
    CALIBRATE_NS = 100000000
    TICKS_TRUSTED_NS = 1000000000

cdef struct ReadClock:
    int64_t start_ns       # CLOCK_MONOTONIC at the read's start
    uint64_t start_ticks
    double ns_per_tick     # 0: uncalibrated, or the counter is not to be used
    int64_t cal_ns         # the calibration anchor: a read's (monotonic, ticks) pair
    uint64_t cal_ticks
    bint use_ticks


cdef void read_clock_init(ReadClock* c) noexcept nogil
cdef int64_t read_clock_start(ReadClock* c) noexcept nogil


cdef inline int64_t read_clock_elapsed(ReadClock* c) noexcept nogil:
    """Nanoseconds since ``read_clock_start``."""
    cdef uint64_t t
    cdef int64_t d
    if c.ns_per_tick != 0.0:
        t = cpu_ticks()
        if t >= c.start_ticks:
            d = <int64_t>(<double>(t - c.start_ticks) * c.ns_per_tick)
            if d < TICKS_TRUSTED_NS:
                return d
    return monotonic_ns() - c.start_ns


# --- histograms --------------------------------------------------------------------------

cdef class LatencyHistogram:
    cdef uint64_t _counts[NBUCKETS]
    cdef readonly uint64_t n
    cdef readonly int64_t max

    cpdef void record(self, int64_t ns) noexcept


cdef class StampLatency(LatencyHistogram):
    cdef readonly int64_t window_ns
    cdef int64_t _window_start
    cdef int64_t _min_now
    cdef int64_t _min_prev

    cpdef void record_stamp(self, int64_t receive_ns, int64_t stamp_ns) noexcept


cdef inline Py_ssize_t bucket_of(int64_t ns) noexcept nogil:
    cdef uint64_t v
    cdef int e
    if ns < SUB:
        return ns if ns > 0 else 0
    v = <uint64_t>ns
    if v >= (<uint64_t>1) << TOP_BIT:
        return NBUCKETS - 1
    e = floor_log2(v)
    return (e - SUB_BITS + 1) * SUB + <Py_ssize_t>((v >> (e - SUB_BITS)) - SUB)


cdef inline void hist_add(LatencyHistogram h, int64_t ns) noexcept:
    """``h.record(ns)`` inlined into the caller (``h`` not None)."""
    h._counts[bucket_of(ns)] += 1
    h.n += 1
    if ns > h.max:
        h.max = ns


cdef inline void stamp_add(StampLatency h, int64_t receive_ns, int64_t stamp_ns) noexcept:
    """``h.record_stamp(receive_ns, stamp_ns)`` inlined into the caller (``h`` not None)."""
    cdef int64_t d = receive_ns - stamp_ns
    if receive_ns - h._window_start >= h.window_ns:
        h._min_prev = h._min_now
        h._min_now = 0x7FFFFFFFFFFFFFFF
        h._window_start = receive_ns
    if d < h._min_now:
        h._min_now = d
    hist_add(h, d)


# --- staged adds -------------------------------------------------------------------------
#
# A histogram's counts are 10 KB, and a listener feeds three per message; between two
# messages the interpreter and the read buffer push those lines out of L1, so each add was a
# cache miss: ~30 ns a message on the broker path, more than the clock reads. A stage keeps
# up to STAGE_CAP values in the listener (four bytes each, hot) and adds them to the
# histogram in one pass: at the end of each socket read, when full, and before anyone reads
# the histogram (the clients' stats() flushes first). A value outside 0..2**32-1 ns (over
# ~4.3 s, or negative) is added at once.
cdef enum:
    STAGE_CAP = 512

cdef struct HistStage:
    uint32_t values[STAGE_CAP]
    int n
    # StampLatency only: the receive stamp the staged values share, and their minimum
    int64_t receive_ns
    int64_t min_d


cdef inline void stage_flush(HistStage* s, LatencyHistogram h) noexcept:
    cdef int i
    cdef uint32_t v, top = 0
    if s.n == 0:
        return
    for i in range(s.n):
        v = s.values[i]
        h._counts[bucket_of(v)] += 1
        if v > top:
            top = v
    h.n += s.n
    if top > h.max:
        h.max = top
    s.n = 0


cdef inline bint stage_push(HistStage* s, int64_t ns) noexcept nogil:
    """Stage ``ns``; False when it does not fit (the caller adds it directly)."""
    if <uint64_t>ns > UINT32_MAX:
        return False
    s.values[s.n] = <uint32_t>ns
    s.n += 1
    return True


cdef inline void stage_add(HistStage* s, LatencyHistogram h, int64_t ns) noexcept:
    """``hist_add(h, ns)``, staged (``h`` not None)."""
    if not stage_push(s, ns):
        hist_add(h, ns)
    elif s.n == STAGE_CAP:
        stage_flush(s, h)


cdef inline void stamp_stage_flush(HistStage* s, StampLatency h) noexcept:
    if s.n == 0:
        return
    # stamp_add's window, once for the values of one receive stamp
    if s.receive_ns - h._window_start >= h.window_ns:
        h._min_prev = h._min_now
        h._min_now = 0x7FFFFFFFFFFFFFFF
        h._window_start = s.receive_ns
    if s.min_d < h._min_now:
        h._min_now = s.min_d
    stage_flush(s, h)


cdef inline void stamp_stage_add(HistStage* s, StampLatency h, int64_t receive_ns,
                                 int64_t stamp_ns) noexcept:
    """``stamp_add(h, receive_ns, stamp_ns)``, staged (``h`` not None): the values of one
    stage share their receive stamp."""
    cdef int64_t d = receive_ns - stamp_ns
    if s.n != 0 and receive_ns != s.receive_ns:
        stamp_stage_flush(s, h)
    if <uint64_t>d > UINT32_MAX:  # a clock offset or a stale stamp: straight in
        stamp_stage_flush(s, h)
        stamp_add(h, receive_ns, stamp_ns)
        return
    if s.n == 0:
        s.receive_ns = receive_ns
        s.min_d = d
    elif d < s.min_d:
        s.min_d = d
    stage_push(s, d)
    if s.n == STAGE_CAP:
        stamp_stage_flush(s, h)
