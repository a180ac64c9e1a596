# C-level API of oddswire._metrics: cimport it to record latencies without Python calls.
#
#     from oddswire._metrics cimport LatencyHistogram, monotonic_ns
#     hist.record(monotonic_ns() - t_recv)
#
from libc.stdint cimport int64_t, uint64_t

# Log-linear buckets: values below 2**SUB_BITS exactly, then 2**SUB_BITS buckets per power of
# two (at most 1/32 = 3.1% wide), up to 2**44 ns (~4.9 hours); larger values share the last.
cdef enum:
    SUB_BITS = 5
    SUB = 32
    TOP_BIT = 44
    NBUCKETS = (TOP_BIT - SUB_BITS + 1) * SUB


cdef int64_t monotonic_ns() noexcept nogil   # time.perf_counter_ns() on Linux
cdef int64_t realtime_ns() noexcept nogil    # time.time_ns()


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
