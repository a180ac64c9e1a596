# The 55-tech hot path (oddswire.tech55): a one-pass structural scan of each data message
# and lazily decoded typed payloads.
#
# Callgrind showed that decoding every field of an order / bet row (26-27 of them) and
# freeing them again was 84% of the instructions per message, while a bot reads two or
# three. So a frame is scanned once, in C, straight from picows' read buffer: the envelope
# (type, channel, event, seq, ts, requireAck, payload) is read here, and an orders / bets /
# settlements payload is matched key by key against its schema (length + memcmp), each
# value validated against its field's JSON kind and its span recorded. The payload object
# owns a copy of the payload's bytes (users keep payloads after the callback; the read
# buffer is only valid during it) and decodes a field on first access, then caches it.
# The collector sees the cache but ignores a payload until a container is cached in it
# (see Payload): a cycle through `meta` is collected, a payload of scalars costs it nothing.
#
# The scan accepts a subset of what msgspec accepts and never more: every value it records
# decodes, on access, to exactly what the msgspec twin (oddswire.reference.tech55) gives.
# Whatever it refuses (another message type, an unknown key, a kind off the schema, an
# escaped key, a number it cannot bound, a lone surrogate escape, invalid UTF-8, ...)
# goes to the client's Python path, which decodes it as before (lenient msgspec, `extra`,
# off-schema payloads delivered as plain values and reported once).
#
# Tech55Listener runs the in-order common case in C: scan, `seq == last + 1` against the
# client's SequenceTracker, the one plain callback of the channel. Everything else (not
# logged in, a refused frame, a gap, a duplicate, a first seq, no seq, fan-out or coroutine
# callbacks, the betslip and emergency channels, a callback's non-None return) goes to the
# client's Python path, which owns the semantics.
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_FromLongLong
from cpython.object cimport Py_TPFLAGS_HEAPTYPE, PyObject, PyTypeObject, Py_TYPE
from cpython.ref cimport Py_INCREF, Py_XDECREF
from libc.limits cimport LLONG_MAX
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

cimport cython

from oddswire._wire cimport FeedListener, _ms_to_ns

import msgspec

from oddswire.reference import tech55 as _twin

cdef extern from "Python.h":
    double PyOS_string_to_double(const char* s, char** endptr, PyObject* overflow) except? -1.0
    object PyLong_FromString(const char* s, char** pend, int base)
    object PyUnicode_DecodeASCII(const char* s, Py_ssize_t size, const char* errors)
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)
    object PyFloat_FromDouble(double v)
    object PyNumber_Float(object o)
    # The collector's hooks (plain C: a visit's or clear's result is returned, not raised).
    ctypedef int (*visitproc)(PyObject* o, void* arg) noexcept
    ctypedef int (*traverseproc)(PyObject* o, visitproc visit, void* arg) noexcept
    ctypedef int (*inquiry)(PyObject* o) noexcept
    void PyObject_GC_Track(void* o)
    void PyObject_GC_UnTrack(void* o)
    bint PyObject_GC_IsTracked(PyObject* o)
    bint PyType_IS_GC(PyTypeObject* t)


# --- the scan -----------------------------------------------------------------------------

cdef enum:
    MAXF = 32          # fields per schema
    MAX_DEPTH = 64     # deeper nesting: refused (msgspec decides on the slow path)
    MAX_FLOAT_LEN = 60
    MAX_EXP = 200      # |exponent| bound: no overflow, no subnormal with <= 60 digits
    MAX_INT_DIGITS = 300

# The JSON kind of a recorded value (0: the key was absent).
cdef enum:
    J_MISSING = 0
    J_NULL = 1
    J_FALSE = 2
    J_TRUE = 3
    J_INT = 4
    J_FLOAT = 5
    J_STR = 6         # ASCII, no escapes: decoded here
    J_STR_UTF8 = 7    # valid non-ASCII UTF-8, no escapes
    J_STR_ESC = 8     # with escapes: msgspec decodes the slice
    J_OBJECT = 9
    J_ARRAY = 10
    J_ARRAY_STR = 11  # an array of strings only

# A field's schema kind: which JSON kinds it takes (bit 1 << J_*).
cdef enum:
    B_NULL = 1 << J_NULL
    B_BOOL = (1 << J_FALSE) | (1 << J_TRUE)
    B_INT = 1 << J_INT
    B_FLOAT = 1 << J_FLOAT
    B_STR = (1 << J_STR) | (1 << J_STR_UTF8) | (1 << J_STR_ESC)
    B_ANY = 0xFFFE
    B_STRS = 1 << J_ARRAY_STR

cdef enum:
    F_INT = 1       # int (required)
    F_INT_OPT = 2
    F_FLOAT_OPT = 3
    F_STR_OPT = 4
    F_BOOL_OPT = 5
    F_ANY = 6
    F_STRS_OPT = 7  # str | list[str] | None

cdef uint32_t _accepts(int fk) noexcept nogil:
    if fk == F_INT:
        return B_INT
    if fk == F_INT_OPT:
        return B_INT | B_NULL
    if fk == F_FLOAT_OPT:
        return B_INT | B_FLOAT | B_NULL
    if fk == F_STR_OPT:
        return B_STR | B_NULL
    if fk == F_BOOL_OPT:
        return B_BOOL | B_NULL
    if fk == F_STRS_OPT:
        return B_STR | B_STRS | B_NULL
    return B_ANY


ctypedef struct Schema:
    int n
    const char* keys[MAXF]
    uint32_t key_len[MAXF]
    uint8_t kind[MAXF]
    uint32_t accepts[MAXF]
    int required_field   # the one required field (the row's id)
    # The fields whose value may be a container (F_ANY, F_STRS_OPT): every other kind
    # decodes to a str, int, float, bool or None, so the collector visits only these.
    int n_nested
    uint8_t nested[MAXF]


cdef inline bint _same(const char* a, const char* b, Py_ssize_t n) noexcept nogil:
    """memcmp(a, b, n) == 0 for short keys, 8 bytes at a time, without a libc call."""
    cdef uint64_t x, y
    while n >= 8:
        memcpy(&x, a, 8)
        memcpy(&y, b, 8)
        if x != y:
            return False
        a += 8
        b += 8
        n -= 8
    while n > 0:
        if a[0] != b[0]:
            return False
        a += 1
        b += 1
        n -= 1
    return True


cdef inline bint _is_ws(char c) noexcept nogil:
    return c == c' ' or c == c'\n' or c == c'\r' or c == c'\t'


cdef inline const char* _ws(const char* p, const char* e) noexcept nogil:
    while p < e and _is_ws(p[0]):
        p += 1
    return p


cdef inline int _hex(char c) noexcept nogil:
    if c'0' <= c <= c'9':
        return c - c'0'
    if c'a' <= c <= c'f':
        return c - c'a' + 10
    if c'A' <= c <= c'F':
        return c - c'A' + 10
    return -1


cdef extern from *:
    """
    /* Plain string bytes (not a quote, a backslash, a control character or non-ASCII)
       skipped 16 at a time with SSE2 (x86-64's baseline); elsewhere the 8-byte loop. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    static inline const unsigned char* oddswire_skip_plain(const unsigned char* q,
                                                           const unsigned char* end) {
        const __m128i quote = _mm_set1_epi8(0x22);
        const __m128i slash = _mm_set1_epi8(0x5C);
        const __m128i low = _mm_set1_epi8(0x1F);
        while (end - q >= 16) {
            __m128i x = _mm_loadu_si128((const __m128i*)q);
            __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
                                                  _mm_cmpeq_epi8(x, slash)),
                                     _mm_cmpeq_epi8(_mm_max_epu8(x, low), low));
            int bits = _mm_movemask_epi8(m) | _mm_movemask_epi8(x);
            if (bits) return q + __builtin_ctz(bits);
            q += 16;
        }
        return q;
    }
    #else
    static inline const unsigned char* oddswire_skip_plain(const unsigned char* q,
                                                           const unsigned char* end) {
        return q;
    }
    #endif
    """
    int __builtin_ctzll(unsigned long long x) nogil
    const unsigned char* oddswire_skip_plain(const unsigned char* q,
                                             const unsigned char* end) nogil


cdef inline uint64_t _special8(uint64_t x) noexcept nogil:
    """The high bit of each of 8 bytes (little-endian) that needs a look in a string: '"',
    '\\', a control character or a non-ASCII byte. A borrow can flag bytes above a
    flagged one, never below it: the lowest flag is exact."""
    cdef uint64_t ones = 0x0101010101010101ULL
    cdef uint64_t quote = x ^ (ones * 0x22)
    cdef uint64_t slash = x ^ (ones * 0x5C)
    return (((quote - ones) & ~quote) | ((slash - ones) & ~slash) | ((x - ones * 0x20) & ~x)
            | x) & (ones * 0x80)


cdef const char* _string(const char* p, const char* e, uint8_t* kind) noexcept nogil:
    """``p`` at the opening quote: the end of the string (past the closing quote), or NULL
    when msgspec might decode it otherwise (bad escape, surrogate escape, control
    character, invalid UTF-8). ``kind``: J_STR, J_STR_UTF8 or J_STR_ESC. Plain bytes are
    skipped 8 at a time."""
    cdef const unsigned char* q = <const unsigned char*>p + 1
    cdef const unsigned char* end = <const unsigned char*>e
    cdef unsigned char c, c1
    cdef int i, h, u
    cdef uint64_t x, hit
    cdef uint8_t k = J_STR
    while True:
        q = oddswire_skip_plain(q, end)
        while q + 8 <= end:
            memcpy(&x, q, 8)
            hit = _special8(x)
            if hit:
                q += __builtin_ctzll(hit) >> 3
                break
            q += 8
        if q >= end:
            return NULL
        c = q[0]
        if c == c'"':
            kind[0] = k
            return <const char*>(q + 1)
        if c == c'\\':
            k = J_STR_ESC
            if q + 1 >= end:
                return NULL
            c = q[1]
            if c == c'u':
                if q + 6 > end:
                    return NULL
                u = 0
                for i in range(2, 6):
                    h = _hex(<char>q[i])
                    if h < 0:
                        return NULL
                    u = u * 16 + h
                if 0xD800 <= u <= 0xDFFF:
                    return NULL  # pairs and lone halves alike: msgspec decides
                q += 6
                continue
            if (c == c'"' or c == c'\\' or c == c'/' or c == c'b' or c == c'f' or c == c'n'
                    or c == c'r' or c == c't'):
                q += 2
                continue
            return NULL
        if c < 0x20:
            return NULL
        if c < 0x80:
            q += 1
            continue
        if k == J_STR:
            k = J_STR_UTF8
        # UTF-8: no overlongs, no surrogates, nothing past U+10FFFF.
        if c < 0xC2 or c > 0xF4:
            return NULL
        if c < 0xE0:
            if q + 2 > end or (q[1] & 0xC0) != 0x80:
                return NULL
            q += 2
            continue
        if q + 2 > end:
            return NULL
        c1 = q[1]
        if (c1 & 0xC0) != 0x80:
            return NULL
        if c < 0xF0:
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 >= 0xA0):
                return NULL
            if q + 3 > end or (q[2] & 0xC0) != 0x80:
                return NULL
            q += 3
            continue
        if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 >= 0x90):
            return NULL
        if q + 4 > end or (q[2] & 0xC0) != 0x80 or (q[3] & 0xC0) != 0x80:
            return NULL
        q += 4


cdef const char* _number(const char* p, const char* e, uint8_t* kind) noexcept nogil:
    """A JSON number at ``p``: its end, or NULL (malformed, or too long / too large an
    exponent to be sure msgspec reads it in range). ``kind``: J_INT or J_FLOAT."""
    cdef const char* s = p
    cdef const char* d
    cdef int exp = 0, exp_digits = 0
    cdef bint neg_exp = False
    if p < e and p[0] == c'-':
        p += 1
    if p >= e:
        return NULL
    if p[0] == c'0':
        p += 1
    elif c'1' <= p[0] <= c'9':
        while p < e and c'0' <= p[0] <= c'9':
            p += 1
    else:
        return NULL
    if p >= e or (p[0] != c'.' and p[0] != c'e' and p[0] != c'E'):
        if p - s > MAX_INT_DIGITS:
            return NULL
        kind[0] = J_INT
        return p
    if p[0] == c'.':
        p += 1
        d = p
        while p < e and c'0' <= p[0] <= c'9':
            p += 1
        if p == d:
            return NULL
    if p < e and (p[0] == c'e' or p[0] == c'E'):
        p += 1
        if p < e and (p[0] == c'+' or p[0] == c'-'):
            neg_exp = p[0] == c'-'
            p += 1
        d = p
        while p < e and c'0' <= p[0] <= c'9':
            if exp_digits < 4:
                exp = exp * 10 + (p[0] - c'0')
            exp_digits += 1
            p += 1
        if p == d or exp_digits > 3 or exp > MAX_EXP:
            return NULL
    if p - s > MAX_FLOAT_LEN:
        return NULL
    kind[0] = J_FLOAT
    return p


cdef const char* _value(const char* p, const char* e, int depth, uint8_t* kind) noexcept nogil:
    """Validate one JSON value at ``p`` (no leading whitespace): its end, or NULL.
    ``kind``: its J_* kind (J_ARRAY_STR for an array whose items are all strings)."""
    cdef uint8_t k
    cdef bint strs
    if p >= e:
        return NULL
    cdef char c = p[0]
    if c == c'"':
        return _string(p, e, kind)
    if c == c'{':
        if depth >= MAX_DEPTH:
            return NULL
        kind[0] = J_OBJECT
        p = _ws(p + 1, e)
        if p < e and p[0] == c'}':
            return p + 1
        while True:
            if p >= e or p[0] != c'"':
                return NULL
            p = _string(p, e, &k)
            if p == NULL:
                return NULL
            p = _ws(p, e)
            if p >= e or p[0] != c':':
                return NULL
            p = _value(_ws(p + 1, e), e, depth + 1, &k)
            if p == NULL:
                return NULL
            p = _ws(p, e)
            if p >= e:
                return NULL
            if p[0] == c'}':
                return p + 1
            if p[0] != c',':
                return NULL
            p = _ws(p + 1, e)
    if c == c'[':
        if depth >= MAX_DEPTH:
            return NULL
        p = _ws(p + 1, e)
        strs = True
        if p < e and p[0] == c']':
            kind[0] = J_ARRAY_STR
            return p + 1
        while True:
            p = _value(p, e, depth + 1, &k)
            if p == NULL:
                return NULL
            if k < J_STR or k > J_STR_ESC:
                strs = False
            p = _ws(p, e)
            if p >= e:
                return NULL
            if p[0] == c']':
                kind[0] = J_ARRAY_STR if strs else J_ARRAY
                return p + 1
            if p[0] != c',':
                return NULL
            p = _ws(p + 1, e)
    if c == c't':
        if e - p >= 4 and p[1] == c'r' and p[2] == c'u' and p[3] == c'e':
            kind[0] = J_TRUE
            return p + 4
        return NULL
    if c == c'f':
        if e - p >= 5 and p[1] == c'a' and p[2] == c'l' and p[3] == c's' and p[4] == c'e':
            kind[0] = J_FALSE
            return p + 5
        return NULL
    if c == c'n':
        if e - p >= 4 and p[1] == c'u' and p[2] == c'l' and p[3] == c'l':
            kind[0] = J_NULL
            return p + 4
        return NULL
    return _number(p, e, kind)


cdef const char* _scan_payload(const Schema* s, const char* p, const char* e,
                              const char* base, uint32_t* start, uint32_t* length,
                              uint8_t* kinds) noexcept nogil:
    """Match the object at ``p`` against ``s``: its end, with each present field's span
    (from ``base``) and kind recorded (``kinds`` zeroed by the caller), or NULL (unknown
    key, escaped key, kind off the schema, a required field absent, anything ``_value``
    refuses)."""
    cdef const char* key
    cdef const char* v
    cdef Py_ssize_t n
    cdef int i, f, hint = 0
    cdef uint8_t k
    if p >= e or p[0] != c'{':
        return NULL
    p = _ws(p + 1, e)
    if p < e and p[0] == c'}':
        p += 1
    else:
        while True:
            if p >= e or p[0] != c'"':
                return NULL
            # Rows come in schema order: try the field after the last one first; a
            # match needs no string scan (schema keys have no quote or backslash).
            n = s.key_len[hint] if hint < s.n else 0
            if (hint < s.n and e - p > n + 1 and p[n + 1] == c'"'
                    and _same(p + 1, s.keys[hint], n)):
                f = hint
                p += n + 2
            else:
                key = p + 1
                p = _string(p, e, &k)
                if p == NULL or k != J_STR:
                    return NULL
                n = p - 1 - key
                f = -1
                for i in range(s.n):
                    if s.key_len[i] == n and memcmp(s.keys[i], key, n) == 0:
                        f = i
                        break
                if f < 0:
                    return NULL
            hint = f + 1
            p = _ws(p, e)
            if p >= e or p[0] != c':':
                return NULL
            v = _ws(p + 1, e)
            if v < e and v[0] == c'"':  # the common kinds without _value's dispatch
                p = _string(v, e, &k)
            elif v < e and (v[0] == c'-' or c'0' <= v[0] <= c'9'):
                p = _number(v, e, &k)
            else:
                p = _value(v, e, 1, &k)
            if p == NULL or not (s.accepts[f] >> k) & 1:
                return NULL
            start[f] = <uint32_t>(v - base)  # duplicate keys: the last wins, as in msgspec
            length[f] = <uint32_t>(p - v)
            kinds[f] = k
            p = _ws(p, e)
            if p >= e:
                return NULL
            if p[0] == c'}':
                p += 1
                break
            if p[0] != c',':
                return NULL
            p = _ws(p + 1, e)
    if kinds[s.required_field] == J_MISSING:
        return NULL
    return p


# --- the payloads ---------------------------------------------------------------------------

cdef Schema ORDER_SCHEMA
cdef Schema BET_SCHEMA

# (attribute, wire name, kind); the property indices below follow this order, and the
# tests hold it equal to the twin's Struct fields.
ORDER_FIELDS = (
    ("order_id", "orderId", F_INT),
    ("request_uuid", "requestUuid", F_STR_OPT),
    ("client", "client", F_STR_OPT),
    ("client_name", "clientName", F_STR_OPT),
    ("fixture_id", "fixtureId", F_STR_OPT),
    ("outcome_id", "outcomeId", F_INT_OPT),
    ("player_id", "playerId", F_INT_OPT),
    ("order_price", "orderPrice", F_FLOAT_OPT),
    ("order_stake", "orderStake", F_FLOAT_OPT),
    ("filled_stake", "filledStake", F_FLOAT_OPT),
    ("remaining_stake", "remainingStake", F_FLOAT_OPT),
    ("order_status", "orderStatus", F_STR_OPT),
    ("status_reason", "statusReason", F_STR_OPT),
    ("user_ref", "userRef", F_STR_OPT),
    ("test_order", "testOrder", F_BOOL_OPT),
    ("accept_better_odds", "acceptBetterOdds", F_BOOL_OPT),
    ("accept_partial_stake", "acceptPartialStake", F_BOOL_OPT),
    ("order_currency", "orderCurrency", F_STR_OPT),
    ("back", "back", F_BOOL_OPT),
    ("allowed_bookmakers", "allowedBookmakers", F_STRS_OPT),
    ("odds_info", "oddsInfo", F_ANY),
    ("meta", "meta", F_ANY),
    ("expires_at", "expiresAt", F_STR_OPT),
    ("filled_at", "filledAt", F_STR_OPT),
    ("created_at", "createdAt", F_STR_OPT),
    ("updated_at", "updatedAt", F_STR_OPT),
)
BET_FIELDS = (
    ("bet_id", "betId", F_INT),
    ("order_id", "orderId", F_INT_OPT),
    ("bookmaker", "bookmaker", F_STR_OPT),
    ("bookmaker_bet_id", "bookmakerBetId", F_STR_OPT),
    ("bet_status", "betStatus", F_STR_OPT),
    ("settlement_status", "settlementStatus", F_STR_OPT),
    ("placed_stake", "placedStake", F_FLOAT_OPT),
    ("placed_price", "placedPrice", F_FLOAT_OPT),
    ("placed_currency", "placedCurrency", F_STR_OPT),
    ("account", "account", F_STR_OPT),
    ("request_uuid", "requestUuid", F_STR_OPT),
    ("user_ref", "userRef", F_STR_OPT),
    ("test_bet", "testBet", F_BOOL_OPT),
    ("client", "client", F_STR_OPT),
    ("client_name", "clientName", F_STR_OPT),
    ("sent_data", "sentData", F_ANY),
    ("received_data", "receivedData", F_ANY),
    ("settlement_amount", "settlementAmount", F_FLOAT_OPT),
    ("settlement_reason", "settlementReason", F_STR_OPT),
    ("settled_at", "settledAt", F_STR_OPT),
    ("decline_reason", "declineReason", F_STR_OPT),
    ("bet_request_id", "betRequestId", F_ANY),
    ("odds_info", "oddsInfo", F_ANY),
    ("meta", "meta", F_ANY),
    ("placed_at", "placedAt", F_STR_OPT),
    ("created_at", "createdAt", F_STR_OPT),
    ("updated_at", "updatedAt", F_STR_OPT),
)
_ORDER_ATTRS = tuple([f[0] for f in ORDER_FIELDS])
_ORDER_WIRE = tuple([f[1] for f in ORDER_FIELDS])
_BET_ATTRS = tuple([f[0] for f in BET_FIELDS])
_BET_WIRE = tuple([f[1] for f in BET_FIELDS])
_KEY_BYTES = []  # keeps the schemas' key strings alive


cdef int _init_schema(Schema* s, fields) except -1:
    assert len(fields) <= MAXF
    s.n = len(fields)
    for i, (_attr, wire, fk) in enumerate(fields):
        b = wire.encode()
        _KEY_BYTES.append(b)
        s.keys[i] = PyBytes_AS_STRING(b)
        s.key_len[i] = len(b)
        s.kind[i] = fk
        s.accepts[i] = _accepts(fk)
        if fk == F_INT:
            s.required_field = i
        if fk == F_ANY or fk == F_STRS_OPT:
            s.nested[s.n_nested] = i
            s.n_nested += 1
    return 0


_init_schema(&ORDER_SCHEMA, ORDER_FIELDS)
_init_schema(&BET_SCHEMA, BET_FIELDS)

_any_decode = msgspec.json.Decoder().decode
_str_decode = msgspec.json.Decoder(str).decode
_strs_decode = msgspec.json.Decoder(list[str]).decode


cdef object _int_of(const char* p, Py_ssize_t n):
    cdef const char* q = p
    cdef const char* e = p + n
    cdef bint neg = False
    cdef int64_t v = 0
    if q[0] == c'-':
        neg = True
        q += 1
    if e - q > 18:  # past what fits int64 for sure: CPython parses it
        return PyLong_FromString(PyBytes_AS_STRING(PyBytes_FromStringAndSize(p, n)), NULL, 10)
    while q < e:
        v = v * 10 + (q[0] - c'0')
        q += 1
    return PyLong_FromLongLong(-v if neg else v)


cdef object _float_of(const char* p, Py_ssize_t n, uint8_t kind):
    cdef char buf[MAX_FLOAT_LEN + 1]
    cdef const char* q = p
    cdef const char* e = p + n
    cdef bint neg = False
    cdef int64_t v = 0
    if kind == J_INT:  # msgspec reads an integer literal as an int, then converts it
        if q[0] == c'-':
            neg = True
            q += 1
        if e - q > 18:
            return PyNumber_Float(_int_of(p, n))
        while q < e:
            v = v * 10 + (q[0] - c'0')
            q += 1
        return PyFloat_FromDouble(<double>(-v if neg else v))
    cdef double r
    if _exact_float(p, n, &r):
        return PyFloat_FromDouble(r)
    memcpy(buf, p, n)  # n <= MAX_FLOAT_LEN (the scan)
    buf[n] = 0
    return PyFloat_FromDouble(PyOS_string_to_double(buf, NULL, NULL))


cdef double _POW10[23]
for _i in range(23):
    _POW10[_i] = 10.0 ** _i


cdef bint _exact_float(const char* p, Py_ssize_t n, double* out) noexcept nogil:
    """Clinger's fast path: with at most 15 significant digits and a decimal exponent
    within +-22, mantissa and power of ten are exact doubles and one IEEE multiply or
    divide rounds correctly, as the full parser would. False: use the full parser."""
    cdef const char* e = p + n
    cdef bint neg = False, neg_exp = False, seen = False
    cdef uint64_t m = 0
    cdef int sig = 0, frac = 0, exp = 0, e10
    cdef double r
    if p[0] == c'-':
        neg = True
        p += 1
    while p < e and c'0' <= p[0] <= c'9':
        m = m * 10 + (p[0] - c'0')
        if m:
            sig += 1
        p += 1
    if p < e and p[0] == c'.':
        p += 1
        while p < e and c'0' <= p[0] <= c'9':
            m = m * 10 + (p[0] - c'0')
            if m:
                sig += 1
            frac += 1
            p += 1
            if sig > 15:
                return False
    if sig > 15:
        return False
    if p < e:  # the exponent (at most 3 digits: the scan)
        p += 1
        if p[0] == c'+' or p[0] == c'-':
            neg_exp = p[0] == c'-'
            p += 1
        while p < e:
            exp = exp * 10 + (p[0] - c'0')
            p += 1
    e10 = (-exp if neg_exp else exp) - frac
    if e10 < -22 or e10 > 22:
        return False
    r = <double>m
    if e10 >= 0:
        r = r * _POW10[e10]
    else:
        r = r / _POW10[-e10]
    out[0] = -r if neg else r
    return True


@cython.freelist(32)
cdef class Payload:
    """Base of the lazily decoded payloads (``Order``, ``Bet``): the payload's JSON bytes
    and, per field, where its value is; a field is decoded on first access and cached.

    The garbage collector sees the cached values (``_payload_traverse``), so a cycle
    through one (``payload.meta["self"] = payload``) is collected. Like a dict of atomic
    values, a payload is created untracked (the collector never scans it) and tracked
    from the first cached value of a GC type on (a dict, a list): see ``_holds``."""

    cdef bytes _raw
    cdef const Schema* _schema
    cdef object _extra
    cdef bint _exact            # the scan took every key: no unknown fields
    cdef uint32_t _start[MAXF]
    cdef uint32_t _len[MAXF]
    cdef uint8_t _kind[MAXF]
    cdef PyObject* _cache[MAXF]

    def __init__(self, *args, **kwargs):
        raise TypeError(f"build a {type(self).__name__} with {type(self).__name__}"
                        ".decode(json_bytes)")

    def __dealloc__(self):
        cdef int i
        if self._schema != NULL:
            for i in range(self._schema.n):
                Py_XDECREF(self._cache[i])

    cdef inline void _holds(self, object value) noexcept:
        """``value`` is now cached here: from a GC-type value on (it may come to refer
        back to this payload), the collector tracks the payload. Atomic values (str, int,
        float, bool, None, bytes) can refer to nothing, so they leave it untracked."""
        if (PyType_IS_GC(Py_TYPE(value))
                and not PyObject_GC_IsTracked(<PyObject*>self)):
            PyObject_GC_Track(<void*>self)

    cdef object _get(self, int i):
        cdef PyObject* hit = self._cache[i]
        if hit != NULL:
            return <object>hit
        cdef uint8_t k = self._kind[i]
        if k <= J_NULL:
            return None
        if k == J_TRUE:
            return True
        if k == J_FALSE:
            return False
        value = self._decode(i, k)
        Py_INCREF(value)
        self._cache[i] = <PyObject*>value
        self._holds(value)
        return value

    cdef object _decode(self, int i, uint8_t k):
        cdef const char* p = PyBytes_AS_STRING(self._raw) + self._start[i]
        cdef Py_ssize_t n = self._len[i]
        cdef uint8_t fk = self._schema.kind[i]
        if fk == F_ANY:
            return _any_decode(PyBytes_FromStringAndSize(p, n))
        if k == J_STR:
            return PyUnicode_DecodeASCII(p + 1, n - 2, NULL)
        if k == J_STR_UTF8:
            return PyUnicode_DecodeUTF8(p + 1, n - 2, NULL)
        if k == J_STR_ESC:
            return _str_decode(PyBytes_FromStringAndSize(p, n))
        if k == J_ARRAY_STR:
            return _strs_decode(PyBytes_FromStringAndSize(p, n))
        if fk == F_FLOAT_OPT:
            return _float_of(p, n, k)
        return _int_of(p, n)

    @property
    def raw(self):
        """The payload's JSON, the bytes as they came off the wire."""
        return self._raw

    @property
    def extra(self):
        """The fields the schema does not know (decoded on first access)."""
        if self._exact:
            return {}
        if self._extra is None:
            known = self.__struct_encode_fields__
            values = _any_decode(self._raw)
            self._extra = {k: v for k, v in values.items() if k not in known}
            self._holds(self._extra)
        return self._extra

    def to_dict(self):
        """The schema's fields by wire name (``orderId``), absent optional ones as None:
        what ``msgspec.to_builtins`` gave for the Struct payloads (``extra`` not included)."""
        cdef int i
        out = {}
        for i, name in enumerate(self.__struct_encode_fields__):
            out[name] = self._get(i)
        return out

    def __eq__(self, other):
        cdef int i
        if type(other) is not type(self):
            return NotImplemented
        cdef Payload o = <Payload>other
        for i in range(self._schema.n):
            if self._get(i) != o._get(i):
                return False
        return True

    __hash__ = None

    def __repr__(self):
        cdef int i
        parts = []
        for i, name in enumerate(self.__struct_fields__):
            value = self._get(i)
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __reduce__(self):
        return (type(self).decode, (self._raw,))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return type(self).decode(self._raw)


cdef int _payload_traverse(Payload self, visitproc visit, void* arg) noexcept:
    """tp_traverse: the cached values that may be containers (``Schema.nested``) and
    ``extra`` (``_raw`` is an exact bytes)."""
    cdef int j, r
    cdef PyObject* value
    cdef const Schema* s = self._schema
    if s != NULL:
        for j in range(s.n_nested):
            value = self._cache[s.nested[j]]
            if value != NULL:
                r = visit(value, arg)
                if r:
                    return r
    return visit(<PyObject*>self._extra, arg)


cdef int _payload_clear(Payload self) noexcept:
    """tp_clear, on cyclic garbage: drop the cached values (a field read after this is
    decoded again from ``_raw``, which stays) and ``extra``."""
    cdef int i
    cdef PyObject* value
    for i in range(MAXF):
        value = self._cache[i]
        if value != NULL:
            self._cache[i] = NULL
            Py_XDECREF(value)
    self._extra = None
    return 0


cdef _own_gc_slots(type cls):
    """Cython's tp_traverse / tp_clear know only the object attributes, not the
    ``_cache`` array of borrowed-as-owned pointers: these replace them (before any
    instance exists). Order and Bet add no attributes of their own."""
    cdef PyTypeObject* t = <PyTypeObject*>cls
    # A static type (a heap type's traverse would have to visit the type too).
    assert PyType_IS_GC(t) and not t.tp_flags & Py_TPFLAGS_HEAPTYPE
    assert t.tp_basicsize == (<PyTypeObject*>Payload).tp_basicsize
    (<traverseproc*>&t.tp_traverse)[0] = <traverseproc>_payload_traverse
    (<inquiry*>&t.tp_clear)[0] = <inquiry>_payload_clear


cdef inline Payload _new_payload(type cls):
    """A blank ``cls``, untracked: tp_new tracks every new GC object, but until a
    container is cached (``_holds``) the collector has nothing to find in it."""
    cdef Payload obj = <Payload>cls.__new__(cls)
    PyObject_GC_UnTrack(<void*>obj)
    return obj


cdef Payload _scanned(type cls, const Schema* s, bytes raw):
    """A ``cls`` over ``raw`` (its JSON, whitespace around it allowed) when the scan takes
    it, else None."""
    cdef Payload obj = _new_payload(cls)
    cdef const char* base = PyBytes_AS_STRING(raw)
    cdef const char* e = base + PyBytes_GET_SIZE(raw)
    cdef const char* p
    obj._schema = s
    obj._raw = raw
    p = _scan_payload(s, _ws(base, e), e, base, obj._start, obj._len, obj._kind)
    if p == NULL or _ws(p, e) != e:
        return None
    obj._exact = True
    return obj


cdef Payload _from_struct(type cls, const Schema* s, struct, bytes raw):
    """A ``cls`` holding every value of the twin's ``struct`` (the slow path)."""
    cdef Payload obj = _new_payload(cls)
    cdef int i
    obj._schema = s
    obj._raw = raw
    for i, name in enumerate(cls.__struct_fields__):
        value = getattr(struct, name)
        Py_INCREF(value)
        obj._cache[i] = <PyObject*>value
        obj._holds(value)
    return obj


cdef Payload _decode_payload(type cls, const Schema* s, raw, lenient):
    cdef bytes b = raw if type(raw) is bytes else bytes(raw)
    cdef Payload obj = _scanned(cls, s, b)
    if obj is not None:
        return obj
    return _from_struct(cls, s, lenient(b), b)


cdef class Order(Payload):
    """``orders`` payload: a row of the orders table, decoded field by field on access."""

    __struct_fields__ = _ORDER_ATTRS
    __struct_encode_fields__ = _ORDER_WIRE

    @classmethod
    def decode(cls, raw):
        """An ``Order`` from the payload's JSON bytes; unknown fields go to ``extra``.
        Raises ``msgspec.ValidationError`` / ``msgspec.DecodeError`` off the schema."""
        return _decode_payload(Order, &ORDER_SCHEMA, raw, _LENIENT_ORDER)

    @property
    def order_id(self): return self._get(0)
    @property
    def request_uuid(self): return self._get(1)
    @property
    def client(self): return self._get(2)
    @property
    def client_name(self): return self._get(3)
    @property
    def fixture_id(self): return self._get(4)
    @property
    def outcome_id(self): return self._get(5)
    @property
    def player_id(self): return self._get(6)
    @property
    def order_price(self): return self._get(7)
    @property
    def order_stake(self): return self._get(8)
    @property
    def filled_stake(self): return self._get(9)
    @property
    def remaining_stake(self): return self._get(10)
    @property
    def order_status(self): return self._get(11)
    @property
    def status_reason(self): return self._get(12)
    @property
    def user_ref(self): return self._get(13)
    @property
    def test_order(self): return self._get(14)
    @property
    def accept_better_odds(self): return self._get(15)
    @property
    def accept_partial_stake(self): return self._get(16)
    @property
    def order_currency(self): return self._get(17)
    @property
    def back(self): return self._get(18)
    @property
    def allowed_bookmakers(self): return self._get(19)
    @property
    def odds_info(self): return self._get(20)
    @property
    def meta(self): return self._get(21)
    @property
    def expires_at(self): return self._get(22)
    @property
    def filled_at(self): return self._get(23)
    @property
    def created_at(self): return self._get(24)
    @property
    def updated_at(self): return self._get(25)


cdef class Bet(Payload):
    """``bets`` and ``settlements`` payload: a row of the bets table, decoded field by
    field on access."""

    __struct_fields__ = _BET_ATTRS
    __struct_encode_fields__ = _BET_WIRE

    @classmethod
    def decode(cls, raw):
        """A ``Bet`` from the payload's JSON bytes; unknown fields go to ``extra``.
        Raises ``msgspec.ValidationError`` / ``msgspec.DecodeError`` off the schema."""
        return _decode_payload(Bet, &BET_SCHEMA, raw, _LENIENT_BET)

    @property
    def bet_id(self): return self._get(0)
    @property
    def order_id(self): return self._get(1)
    @property
    def bookmaker(self): return self._get(2)
    @property
    def bookmaker_bet_id(self): return self._get(3)
    @property
    def bet_status(self): return self._get(4)
    @property
    def settlement_status(self): return self._get(5)
    @property
    def placed_stake(self): return self._get(6)
    @property
    def placed_price(self): return self._get(7)
    @property
    def placed_currency(self): return self._get(8)
    @property
    def account(self): return self._get(9)
    @property
    def request_uuid(self): return self._get(10)
    @property
    def user_ref(self): return self._get(11)
    @property
    def test_bet(self): return self._get(12)
    @property
    def client(self): return self._get(13)
    @property
    def client_name(self): return self._get(14)
    @property
    def sent_data(self): return self._get(15)
    @property
    def received_data(self): return self._get(16)
    @property
    def settlement_amount(self): return self._get(17)
    @property
    def settlement_reason(self): return self._get(18)
    @property
    def settled_at(self): return self._get(19)
    @property
    def decline_reason(self): return self._get(20)
    @property
    def bet_request_id(self): return self._get(21)
    @property
    def odds_info(self): return self._get(22)
    @property
    def meta(self): return self._get(23)
    @property
    def placed_at(self): return self._get(24)
    @property
    def created_at(self): return self._get(25)
    @property
    def updated_at(self): return self._get(26)


_own_gc_slots(Payload)
_own_gc_slots(Order)
_own_gc_slots(Bet)

_LENIENT_ORDER = msgspec.json.Decoder(_twin.LenientOrder).decode
_LENIENT_BET = msgspec.json.Decoder(_twin.LenientBet).decode


def order_from_struct(struct, bytes raw):
    """An ``Order`` with the values of a twin Struct (``oddswire.reference.tech55``)."""
    return _from_struct(Order, &ORDER_SCHEMA, struct, raw)


def bet_from_struct(struct, bytes raw):
    """A ``Bet`` with the values of a twin Struct (``oddswire.reference.tech55``)."""
    return _from_struct(Bet, &BET_SCHEMA, struct, raw)


# --- the envelope and the listener ----------------------------------------------------------

cdef enum:
    MAX_CHANNELS = 16
    # What a channel's payload becomes.
    P_DECODER = 0      # the client's decoder for the slice (msgspec, strict)
    P_ORDER = 1
    P_BET = 2
    ROUTE_PYTHON = 0   # the client's Python path (fan-out, coroutines, state channels)
    ROUTE_DIRECT = 1   # one plain function, called here
    ROUTE_NONE = 2     # nobody listens: seq, ack and the gate only


ctypedef struct Envelope:
    int channel          # index into the listener's channels, -1: absent
    bint is_data         # "type": "data" (exactly; escapes: refused)
    bint require_ack
    const char* event
    Py_ssize_t event_len
    uint8_t event_kind
    const char* seq
    Py_ssize_t seq_len
    uint8_t seq_kind
    const char* ts
    Py_ssize_t ts_len
    uint8_t ts_kind
    const char* payload
    Py_ssize_t payload_len
    uint8_t payload_kind
    # The payload matched against its schema during the envelope pass (the channel came
    # first, as it does on the wire), spans from `payload`.
    bint scanned
    uint32_t start[MAXF]
    uint32_t length[MAXF]
    uint8_t kinds[MAXF]


cdef inline bint _key_is(const char* key, Py_ssize_t n, const char* name,
                         Py_ssize_t m) noexcept nogil:
    return n == m and memcmp(key, name, m) == 0


cdef object _str_value(const char* p, Py_ssize_t n, uint8_t k):
    if k == J_NULL or k == J_MISSING:
        return None
    if k == J_STR:
        return PyUnicode_DecodeASCII(p + 1, n - 2, NULL)
    if k == J_STR_UTF8:
        return PyUnicode_DecodeUTF8(p + 1, n - 2, NULL)
    return _str_decode(PyBytes_FromStringAndSize(p, n))


cdef inline const Schema* _schema_of(int payload_kind) noexcept nogil:
    if payload_kind == P_ORDER:
        return &ORDER_SCHEMA
    if payload_kind == P_BET:
        return &BET_SCHEMA
    return NULL


cdef object _REFUSED = object()


cdef class Tech55Listener(FeedListener):
    """picows listener for the 55-tech stream (see ``oddswire.tech55`` and the module
    comment).

    Each whole message is scanned in place. A data message of one of ``channels`` (at
    most 16) gets its payload from ``payloads`` (aligned with ``channels``: ``Order`` or
    ``Bet`` for a lazily decoded payload, else a decoder called with the payload's bytes,
    refusing it with one of ``decode_errors``). A frame the scan or a decoder refuses, and
    every frame before ``logged_in``, goes to ``on_slow(frame: bytes)``.
    ``route(channel) -> (channel, mode, fn)`` (cached until ``invalidate()``): mode 0 for
    the client's Python path ``on_data(channel, event, payload, seq, ts, require_ack)``, 1
    for one plain function ``fn(event, payload, seq, ts)`` called here, 2 when nobody
    listens. Modes 1 and 2 are taken here only when ``seq`` is the next one of
    ``sequence`` (a ``SequenceTracker``: its ``last`` is advanced here); anything else
    goes to ``on_data``. Every decoded message is recorded (``receive_to_decoded``, and its
    ``ts`` in ``server_to_receive``; see ``FeedListener``). On that fast path:
    ``on_established()`` once, ``gate.touch()`` while ``gate.healthy`` is false,
    the callback (its exception to ``on_report(channel, exc)``; a non-None return to
    ``on_returned(channel, value, seq_or_None)``), then ``on_ack(seq)`` when ``reliable``
    and the message has ``requireAck``. Other keyword arguments are ``FeedListener``'s.
    """

    cdef object _route
    cdef object _on_data
    cdef object _on_slow
    cdef object _on_returned
    cdef object _on_ack
    cdef object _on_report
    cdef object _on_established
    cdef object _sequence
    cdef object _gate
    cdef object _decode_errors
    cdef tuple _channels
    cdef tuple _channel_bytes
    cdef list _decoders
    cdef list _routes
    cdef int _nchannels
    cdef const char* _chan_ptr[MAX_CHANNELS]
    cdef Py_ssize_t _chan_len[MAX_CHANNELS]
    cdef int _chan_payload[MAX_CHANNELS]
    cdef bint _established
    # The last event name (a handful recur): its JSON bytes, length and str.
    cdef bytes _event_raw
    cdef Py_ssize_t _event_len
    cdef object _event
    cdef public bint logged_in
    cdef readonly bint reliable
    cdef readonly uint64_t fast
    cdef readonly uint64_t slow

    def __init__(self, *, channels, payloads, decode_errors, route, on_data, on_slow,
                 on_returned, on_ack, on_report, on_established, sequence, gate,
                 bint reliable=False, **kwargs):
        FeedListener.__init__(self, **kwargs)
        cdef int i
        self._channels = tuple(channels)
        if len(self._channels) > MAX_CHANNELS or len(payloads) != len(self._channels):
            raise ValueError(f"at most {MAX_CHANNELS} channels, one payload type each")
        self._channel_bytes = tuple(c.encode() for c in self._channels)
        self._nchannels = len(self._channels)
        self._decoders = list(payloads)
        for i in range(self._nchannels):
            b = self._channel_bytes[i]
            self._chan_ptr[i] = PyBytes_AS_STRING(b)
            self._chan_len[i] = len(b)
            p = self._decoders[i]
            self._chan_payload[i] = (P_ORDER if p is Order else P_BET if p is Bet
                                     else P_DECODER)
        self._decode_errors = decode_errors
        self._route = route
        self._on_data = on_data
        self._on_slow = on_slow
        self._on_returned = on_returned
        self._on_ack = on_ack
        self._on_report = on_report
        self._on_established = on_established
        self._sequence = sequence
        self._gate = gate
        self._routes = [None] * self._nchannels
        self._event_raw = b""
        self._event_len = -1
        self.reliable = reliable

    def invalidate(self):
        """Forget the cached routes (the callbacks changed)."""
        self._routes = [None] * self._nchannels

    # --- the hot path -----------------------------------------------------------------

    cdef bint _scan(self, const char* data, Py_ssize_t size, Envelope* env) noexcept:
        """One pass over the message: True when it is a data message of a known channel
        whose payload (when an order / bet, and after the channel) fits its schema."""
        cdef const char* e = data + size
        cdef const char* p = _ws(data, e)
        cdef const char* key
        cdef const char* v
        cdef const Schema* schema
        cdef Py_ssize_t n
        cdef uint8_t k
        cdef int i
        env.channel = -1
        env.is_data = False
        env.require_ack = False
        env.event_kind = J_MISSING
        env.seq_kind = J_MISSING
        env.ts_kind = J_MISSING
        env.payload_kind = J_MISSING
        env.scanned = False
        if p >= e or p[0] != c'{':
            return False
        p = _ws(p + 1, e)
        if p < e and p[0] == c'}':
            return False
        while True:
            if p >= e or p[0] != c'"':
                return False
            key = p + 1
            p = _string(p, e, &k)
            if p == NULL or k != J_STR:
                return False
            n = p - 1 - key
            p = _ws(p, e)
            if p >= e or p[0] != c':':
                return False
            v = _ws(p + 1, e)
            if _key_is(key, n, b"payload", 7):
                schema = NULL if env.channel < 0 else _schema_of(self._chan_payload[env.channel])
                if schema != NULL and v < e and v[0] == c'{':
                    memset(env.kinds, 0, sizeof(env.kinds))
                    p = _scan_payload(schema, v, e, v, env.start, env.length, env.kinds)
                    k = J_OBJECT
                    env.scanned = True
                else:
                    p = _value(v, e, 1, &k)
                    env.scanned = False
                if p == NULL:
                    return False
                env.payload, env.payload_len, env.payload_kind = v, p - v, k
            else:
                p = _value(v, e, 1, &k)
                if p == NULL:
                    return False
                if _key_is(key, n, b"seq", 3):
                    if k != J_INT and k != J_NULL:
                        return False
                    env.seq, env.seq_len, env.seq_kind = v, p - v, k
                elif _key_is(key, n, b"ts", 2):
                    if k != J_INT and k != J_NULL:
                        return False
                    env.ts, env.ts_len, env.ts_kind = v, p - v, k
                elif _key_is(key, n, b"channel", 7):
                    if k != J_STR:
                        return False
                    i = self._channel_index(v + 1, p - v - 2)
                    if i < 0 or (env.channel >= 0 and i != env.channel):
                        return False  # unknown, or a second channel key: msgspec decides
                    env.channel = i
                elif _key_is(key, n, b"type", 4):
                    env.is_data = _key_is(v, p - v, b'"data"', 6)
                elif _key_is(key, n, b"event", 5):
                    if k != J_NULL and (k < J_STR or k > J_STR_ESC):
                        return False
                    env.event, env.event_len, env.event_kind = v, p - v, k
                elif _key_is(key, n, b"requireAck", 10):
                    if k != J_TRUE and k != J_FALSE:
                        return False
                    env.require_ack = k == J_TRUE
            p = _ws(p, e)
            if p >= e:
                return False
            if p[0] == c'}':
                break
            if p[0] != c',':
                return False
            p = _ws(p + 1, e)
        return _ws(p + 1, e) == e and env.is_data and env.channel >= 0

    cdef inline int _channel_index(self, const char* name, Py_ssize_t n) noexcept:
        cdef int i
        for i in range(self._nchannels):
            if _key_is(name, n, self._chan_ptr[i], self._chan_len[i]):
                return i
        return -1

    cdef object _payload(self, Envelope* env):
        """The message's payload, or _REFUSED (the slow path decides)."""
        cdef int kind = self._chan_payload[env.channel]
        cdef const Schema* schema = _schema_of(kind)
        cdef Payload obj
        if env.payload_kind == J_MISSING:
            return None
        if schema == NULL:
            try:
                return self._decoders[env.channel](
                    PyBytes_FromStringAndSize(env.payload, env.payload_len))
            except self._decode_errors:
                return _REFUSED
        if env.payload_kind != J_OBJECT:
            return _REFUSED
        obj = _new_payload(Order if kind == P_ORDER else Bet)
        obj._schema = schema
        obj._raw = PyBytes_FromStringAndSize(env.payload, env.payload_len)
        obj._exact = True
        if env.scanned:
            memcpy(obj._start, env.start, sizeof(env.start))
            memcpy(obj._len, env.length, sizeof(env.length))
            memcpy(obj._kind, env.kinds, sizeof(env.kinds))
        else:  # the payload came before the channel
            if _scan_payload(schema, PyBytes_AS_STRING(obj._raw),
                             PyBytes_AS_STRING(obj._raw) + env.payload_len,
                             PyBytes_AS_STRING(obj._raw), obj._start, obj._len,
                             obj._kind) == NULL:
                return _REFUSED
        return obj

    cdef int on_message(self, const char* data, Py_ssize_t size, bint last) except -1:
        cdef Envelope env
        if not self.logged_in or not self._scan(data, size, &env):
            self.slow += 1
            return self._call(self._on_slow, PyBytes_FromStringAndSize(data, size))
        try:
            payload = self._payload(&env)
            if payload is _REFUSED:
                self.slow += 1
                return self._call(self._on_slow, PyBytes_FromStringAndSize(data, size))
            if (env.event_kind == J_STR and env.event_len == self._event_len
                    and _same(env.event, PyBytes_AS_STRING(self._event_raw), env.event_len)):
                event = self._event  # the same event name as the last message's
            else:
                event = _str_value(env.event, env.event_len, env.event_kind)
                if env.event_kind == J_STR:
                    self._event_raw = PyBytes_FromStringAndSize(env.event, env.event_len)
                    self._event_len = env.event_len
                    self._event = event
            seq = None if env.seq_kind != J_INT else _int_of(env.seq, env.seq_len)
            ts = None if env.ts_kind != J_INT else _int_of(env.ts, env.ts_len)
            self._decoded()
            if ts is not None:
                self._stamp_ms(ts)
            self._data(env.channel, event, payload, seq, ts, env.require_ack)
        except Exception as exc:
            self._report(exc)
        return 0

    cdef int _data(self, int ch, object event, object payload, object seq, object ts,
                   bint require_ack) except -1:
        cdef object route = self._routes[ch]
        cdef int mode, overflow = 0
        cdef long long s, l
        if route is None:
            route = tuple(self._route(self._channels[ch]))
            self._routes[ch] = route
        channel = (<tuple>route)[0]
        mode = (<tuple>route)[1]
        if mode == ROUTE_PYTHON or seq is None:
            return self._python_path(channel, event, payload, seq, ts, require_ack)
        last = self._sequence.last
        if type(last) is not int:
            return self._python_path(channel, event, payload, seq, ts, require_ack)
        s = PyLong_AsLongLongAndOverflow(seq, &overflow)
        if overflow:
            return self._python_path(channel, event, payload, seq, ts, require_ack)
        l = PyLong_AsLongLongAndOverflow(last, &overflow)
        if overflow or l == LLONG_MAX or s != l + 1:
            return self._python_path(channel, event, payload, seq, ts, require_ack)
        self._sequence.last = seq
        self.fast += 1
        if not self._established:
            self._established = True
            self._on_established()
        if not self._gate.healthy:  # only the first message after a drop raises it
            self._gate.touch()
        cdef bint ack = self.reliable and require_ack
        if mode == ROUTE_DIRECT:
            try:
                ret = (<tuple>route)[2](event, payload, seq, ts)
            except Exception as exc:
                ret = None
                self._on_report(channel, exc)
            if ret is not None:
                self._on_returned(channel, ret, seq if ack else None)
                return 0
        if ack:
            self._on_ack(seq)
        return 0

    cdef int _stamp_ms(self, object ts) except -1:
        cdef int overflow = 0
        cdef long long ms = PyLong_AsLongLongAndOverflow(ts, &overflow)
        if not overflow:
            self._stamped(_ms_to_ns(ms))
        return 0

    cdef int _python_path(self, object channel, object event, object payload, object seq,
                          object ts, bint require_ack) except -1:
        self.slow += 1
        self._on_data(channel, event, payload, seq, ts, require_ack)
        return 0
