//! Decimal digits eight at a time (SWAR over a little-endian u64), and the numbers of an
//! exact quote frame read with them: prices and non-negative integers. What they cannot read
//! as `json::Parser::number` would is `None`, and the caller falls back to the general
//! reader; what they read matches it bit for bit (tested).

const ZEROS: u64 = 0x3030_3030_3030_3030;
const HI: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `buf[pos..pos + 8]`, little-endian; the caller checked the bounds.
#[inline(always)]
fn load8(buf: &[u8], pos: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&buf[pos..pos + 8]);
    u64::from_le_bytes(w)
}

/// High bit set in each byte of `w` that is not an ASCII digit.
#[inline(always)]
pub fn non_digits(w: u64) -> u64 {
    let x = w ^ ZEROS; // digits become 0..=9, every other byte a value >= 10
    (((x & !HI).wrapping_add(0x7676_7676_7676_7676)) | x) & HI
}

/// How many ASCII digits `w` starts with (0..=8), first byte lowest.
#[inline(always)]
pub fn leading_digits(w: u64) -> usize {
    (non_digits(w).trailing_zeros() / 8) as usize
}

/// The value of eight ASCII digits, the first in the lowest byte.
#[inline(always)]
pub fn eight_digits(w: u64) -> u64 {
    let v = w.wrapping_sub(ZEROS);
    let v = v.wrapping_mul(10).wrapping_add(v >> 8); // pairs
    let lo = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let hi = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    lo.wrapping_add(hi) >> 32
}

/// The value of the first `n` (1..=8) ASCII digits of `w`.
#[inline(always)]
pub fn first_digits(w: u64, n: usize) -> u64 {
    // Shift the digits to the top and fill the freed low bytes with '0's.
    let shift = 8 * (8 - n) as u32;
    eight_digits((w << shift) | (ZEROS & ((1u64 << shift) - 1)))
}

/// A run of digits at `buf[pos..]`: (value, count). At most `max` digits (<= 19) are
/// converted; a longer run reports its full count and a value that must not be used.
#[inline(always)]
pub fn digit_run(buf: &[u8], mut pos: usize, max: usize) -> (u64, usize) {
    let mut value = 0u64;
    let mut count = 0usize;
    while pos + 8 <= buf.len() {
        let w = load8(buf, pos);
        let n = leading_digits(w);
        if count + n <= max {
            value = if n == 8 {
                value.wrapping_mul(100_000_000).wrapping_add(eight_digits(w))
            } else if n > 0 {
                value.wrapping_mul(POW10_U64[n]).wrapping_add(first_digits(w, n))
            } else {
                value
            };
        }
        count += n;
        pos += n;
        if n < 8 {
            return (value, count);
        }
    }
    while let Some(&d @ b'0'..=b'9') = buf.get(pos) {
        if count < max {
            value = value * 10 + u64::from(d - b'0');
        }
        count += 1;
        pos += 1;
    }
    (value, count)
}

pub const POW10_U64: [u64; 16] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
];

const POW10_F64: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// A JSON number at `buf[pos..]` read as a price (an f64 field), and the position after
/// it: exactly what `json::Parser::number` gives for it (integers up to 15 digits as their
/// exact value, floats by Clinger's fast path or `str::parse`). `None` when it is not a
/// number, overflows, or is an integer of more than 15 digits: the general reader decides.
#[inline(always)]
pub fn short_price(buf: &[u8], pos: usize) -> Option<(f64, usize)> {
    let neg = buf.get(pos) == Some(&b'-');
    let start = pos + neg as usize;
    // The common case: an integer part and a fraction of 1 to 7 digits, one window each.
    if start + 16 <= buf.len() {
        let w0 = load8(buf, start);
        let k = leading_digits(w0);
        if k > 0 && k < 8 && (k == 1 || w0 as u8 != b'0') {
            let int = first_digits(w0, k);
            let sign = |v: f64| if neg { -v } else { v };
            match (w0 >> (8 * k)) as u8 {
                b'.' => {
                    let w1 = load8(buf, start + k + 1);
                    let m = leading_digits(w1);
                    if m > 0 && m < 8 && !matches!((w1 >> (8 * m)) as u8, b'e' | b'E') {
                        // At most 14 significant digits: Clinger's exact division.
                        let mantissa = int * POW10_U64[m] + first_digits(w1, m);
                        // Below 2^53: as i64 it converts in one instruction (a u64 takes six).
                        let v = (mantissa as i64) as f64 / POW10_F64[m];
                        return Some((sign(v), start + k + 1 + m));
                    }
                }
                b',' | b']' => {
                    // An integer: its exact i64 value as a double ("-0" is 0.0, as an integer).
                    let v = int as i64;
                    return Some(((if neg { -v } else { v }) as f64, start + k));
                }
                _ => {}
            }
        }
    }
    price_general(buf, pos)
}

/// `short_price` for the rest: long digit runs, exponents, the end of the buffer.
#[inline(never)]
fn price_general(buf: &[u8], pos: usize) -> Option<(f64, usize)> {
    let neg = buf.get(pos) == Some(&b'-');
    let start = pos + neg as usize;
    let (int, int_len) = digit_run(buf, start, 19);
    let leading_zero = buf.get(start) == Some(&b'0');
    if int_len == 0 || (leading_zero && int_len > 1) {
        return None;
    }
    let mut end = start + int_len;
    let (mut frac, mut frac_len, mut float) = (0, 0, false);
    if buf.get(end) == Some(&b'.') {
        (frac, frac_len) = digit_run(buf, end + 1, 19);
        if frac_len == 0 {
            return None;
        }
        end += 1 + frac_len;
        float = true;
    }
    let mut exponent = false;
    if matches!(buf.get(end), Some(b'e' | b'E')) {
        end += 1;
        if matches!(buf.get(end), Some(b'+' | b'-')) {
            end += 1;
        }
        let (_, n) = digit_run(buf, end, 19);
        if n == 0 {
            return None;
        }
        end += n;
        float = true;
        exponent = true;
    }
    if !float {
        if int_len > 15 {
            return None;
        }
        let v = int as i64;
        return Some(((if neg { -v } else { v }) as f64, end));
    }
    // Significant digits as `Parser::number` counts them: a lone leading "0" is not one.
    let digits = if leading_zero { 0 } else { int_len } + frac_len;
    if !exponent && digits <= 15 {
        // Clinger: an exact mantissa < 2**53 over an exact power of ten rounds once.
        let v = (int * POW10_U64[frac_len] + frac) as f64 / POW10_F64[frac_len];
        return Some((if neg { -v } else { v }, end));
    }
    // SAFETY: the grammar above admitted only ASCII.
    let text = unsafe { std::str::from_utf8_unchecked(&buf[pos..end]) };
    let v: f64 = text.parse().ok()?;
    v.is_finite().then_some((v, end))
}

/// The non-negative integer whose digits fill `buf[pos..end]` exactly: 1 to 19 digits, no
/// leading zero before another digit, at most i64::MAX (a timestamp in ns has 19 digits).
/// `None` for anything else.
#[inline(always)]
pub fn uint_between(buf: &[u8], pos: usize, end: usize) -> Option<i64> {
    let n = end.checked_sub(pos)?;
    if n == 0 || n > 19 || end > buf.len() || (n > 1 && buf[pos] == b'0') {
        return None;
    }
    // Eight-byte windows ending where each group of digits ends, the first group short.
    let top = n - 8 * ((n - 1) / 8);
    if pos + top < 8 {
        let (v, len) = digit_run(buf, pos, 19);
        return (len == n && v <= i64::MAX as u64).then_some(v as i64);
    }
    let mut e = pos + top;
    let fill = if top == 8 { 0 } else { (1u64 << (8 * (8 - top))) - 1 };
    let w = (load8(buf, e - 8) & !fill) | (ZEROS & fill);
    if non_digits(w) != 0 {
        return None;
    }
    let mut value = eight_digits(w);
    while e < end {
        e += 8;
        let w = load8(buf, e - 8);
        if non_digits(w) != 0 {
            return None;
        }
        value = value * 100_000_000 + eight_digits(w);
    }
    (value <= i64::MAX as u64).then_some(value as i64)
}

const LO: u64 = 0x0101_0101_0101_0101;

/// High bit set in each byte of `w` that is not printable ASCII or is '"' or '\\'; exact up
/// to the first such byte (borrows only run upwards), which is all a scan reads.
#[inline(always)]
pub fn not_plain(w: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    zero(w ^ (LO * u64::from(b'"')))
        | zero(w ^ (LO * u64::from(b'\\')))
        | (w.wrapping_sub(LO * 0x20) & !w & HI)
        | (w & HI)
}

/// Where the first byte of `buf[at..at + 16]` that `not_plain` flags is (0..16), or 16 when
/// there is none; the caller checked the bounds. SSE2 (always there on x86_64) compares the
/// sixteen bytes at once: '"', '\\', and below 0x20 or from 0x80 up (one signed compare).
#[inline(always)]
pub fn first_not_plain16(buf: &[u8], at: usize) -> usize {
    let b: &[u8; 16] = buf[at..at + 16].try_into().unwrap();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads the 16 bytes of `b`.
        let mask = unsafe {
            let v = _mm_loadu_si128(b.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            let control_or_high = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control_or_high)) as u32
        };
        (mask | 1 << 16).trailing_zeros() as usize
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        match not_plain(word(0)) {
            0 => 8 + (not_plain(word(8)).trailing_zeros() / 8) as usize,
            m => (m.trailing_zeros() / 8) as usize,
        }
    }
}

/// The position of the '"' closing a JSON string whose contents start at `buf[pos]`, when
/// every byte before it is printable ASCII other than '\\' (no escape, no UTF-8 to check).
/// `None` otherwise, or when there is no closing quote.
#[inline(always)]
pub fn plain_ascii_string_end(buf: &[u8], mut pos: usize) -> Option<usize> {
    while pos + 8 <= buf.len() {
        let m = not_plain(load8(buf, pos));
        if m != 0 {
            let end = pos + (m.trailing_zeros() / 8) as usize;
            return (buf[end] == b'"').then_some(end);
        }
        pos += 8;
    }
    while let Some(&c) = buf.get(pos) {
        if c == b'"' {
            return Some(pos);
        }
        if !(0x20..0x80).contains(&c) || c == b'\\' {
            return None;
        }
        pos += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixteen_byte_scan_finds_what_the_eight_byte_one_finds() {
        // Every byte value at every position of a plain window, and two flagged bytes.
        let flagged = |c: u8| not_plain(u64::from_le_bytes([c, b'a', b'a', b'a', b'a', b'a', b'a', b'a'])) & 0x80 != 0;
        for pos in 0..16 {
            for c in 0..=255u8 {
                let mut b = *b"abcdefghijklmnop";
                b[pos] = c;
                assert_eq!(first_not_plain16(&b, 0), if flagged(c) { pos } else { 16 }, "{c:#x} at {pos}");
                if pos < 15 {
                    b[15] = b'"';
                    assert_eq!(first_not_plain16(&b, 0), if flagged(c) { pos } else { 15 });
                }
            }
        }
        assert!(flagged(b'"') && flagged(b'\\') && flagged(0x1f) && flagged(0x80) && !flagged(0x7f) && !flagged(b' '));
        let text = b"xx{\"gin:9d34f61f-7446-4f99\xc3\xa9\"}";
        assert_eq!(first_not_plain16(text, 4), 16);
        assert_eq!(first_not_plain16(text, 14), 12);
    }
    use crate::json::{Number, Parser};

    fn word(s: &str) -> u64 {
        let mut w = [b'x'; 8];
        w[..s.len()].copy_from_slice(s.as_bytes());
        u64::from_le_bytes(w)
    }

    #[test]
    fn eight_digits_at_a_time() {
        assert_eq!(eight_digits(word("12345678")), 12_345_678);
        assert_eq!(eight_digits(word("00000000")), 0);
        assert_eq!(eight_digits(word("99999999")), 99_999_999);
        assert_eq!(leading_digits(word("123,x")), 3);
        assert_eq!(leading_digits(word("12345678")), 8);
        assert_eq!(leading_digits(word("/:09\u{0}")), 0);
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'1', b'1', b'1', b'1', b'1', b'1', b'1']);
            assert_eq!(leading_digits(w) == 8, b.is_ascii_digit(), "byte {b}");
        }
        assert_eq!(first_digits(word("123,5678"), 3), 123);
        assert_eq!(first_digits(word("9"), 1), 9);
    }

    /// The general parser's reading of `s` as a price (f64 field), for comparison.
    fn general(s: &str) -> (f64, usize) {
        let mut p = Parser::new(s.as_bytes());
        let v = match p.number().unwrap() {
            Number::Int(v) => v as f64,
            Number::Float(v) => v,
            Number::BigInt(_) => unreachable!(),
        };
        (v, p.pos)
    }

    #[test]
    fn prices_match_the_general_parser_bit_for_bit() {
        let cases = [
            "1.08123,2,3]",
            "0,",
            "-0,",
            "-0.0,",
            "0.000001]",
            "65000]",
            "151.234,",
            "123456789012.345,",
            "0.123456789012345,",
            "-1.5,",
            "99999999999999.9,",
            "1.0000000,",
            "12345678,",
            "123456789012345]",
            "4.2",
            "7",
            "1e5,",
            "1.5E-3,",
            "-2.5e+300,",
            "1.0812300000000001,1,2]",
            "0.1234567890123456789,",
            "12345678.1234567,1,2]",
            "1.5,1,1700000000000]",
            "-0.5,1.25,1700000000000]",
            "0.7,1,2]",
            "1.1234567,1.12345678,1700000000000]",
            "12345678.5,1,1700000000000]",
            "7,1,1700000000000]",
            "-7]1,1700000000000]",
            "1e5x",
        ];
        for s in cases {
            let (v, end) = short_price(s.as_bytes(), 0).unwrap_or_else(|| panic!("{s} refused"));
            let (w, wend) = general(s);
            assert_eq!((v.to_bits(), end), (w.to_bits(), wend), "{s}");
        }
        for s in [
            "01,",
            "01.5,1,1700000000000]",
            "-,",
            ",",
            "1.,",
            "1.,1,1700000000000]",
            ".5,",
            "+1,",
            "-x",
            "",
            "1e,",
            "1e400,",
            "1234567890123456,",
            "00,1,1700000000000]",
        ] {
            assert_eq!(short_price(s.as_bytes(), 0), None, "{s}");
        }
    }

    #[test]
    fn integers_between_bounds_up_to_i64_max() {
        let at = |s: &str| {
            let pad = "[\"t\",\"EURUSD\",1,2,";
            let buf = format!("{pad}{s}]");
            uint_between(buf.as_bytes(), pad.len(), buf.len() - 1)
        };
        for s in ["0", "7", "1700000000000", "123456789012345678", "9223372036854775807", "12345678", "123456789"] {
            assert_eq!(at(s), Some(s.parse().unwrap()), "{s}");
        }
        for s in ["9223372036854775808", "12345678901234567890", "-1", "01", "1.0", "1e3", "", "12a45678", "1234567a9"]
        {
            assert_eq!(at(s), None, "{s}");
        }
        // Near the start of the buffer: read digit by digit.
        assert_eq!(uint_between(b"12]", 0, 2), Some(12));
        assert_eq!(uint_between(b"1x]", 0, 2), None);
    }

    #[test]
    fn every_length_and_offset_of_a_digit_run_reads_alike() {
        let digits = "1234567890123456789";
        for len in 1..=19 {
            for pad in 0..12 {
                let s = format!("{}{}]", " ".repeat(pad), &digits[..len]);
                let want: i64 = digits[..len].parse().unwrap();
                assert_eq!(uint_between(s.as_bytes(), pad, pad + len), Some(want), "{s}");
                let p = format!("{}{}.5,1,1700000000000]", " ".repeat(pad), &digits[..len]);
                let (v, end) = short_price(p.as_bytes(), pad).unwrap_or_else(|| panic!("{p}"));
                let (w, wend) = general(&p[pad..]);
                assert_eq!((v.to_bits(), end - pad), (w.to_bits(), wend), "{p}");
            }
        }
    }

    #[test]
    fn plain_strings_end_at_their_quote() {
        let end = |s: &str| plain_ascii_string_end(s.as_bytes(), 0);
        assert_eq!(end("EURUSD\",1"), Some(6));
        assert_eq!(end("\""), Some(0));
        assert_eq!(end("A_LONGER.SYMBOL-2025\",1.0,2.0,3]"), Some(20));
        assert_eq!(end("EUR\\\"USD\",1"), None);
        assert_eq!(end("EUR\tUSD\",1"), None);
        assert_eq!(end("\u{e9}\",1.0,2.0,3]"), None);
        assert_eq!(end("EURUSD"), None);
        assert_eq!(end("EURUSD_LONGER"), None);
        for b in 0..=255u8 {
            let s = [b'A', b, b'B', b'B', b'B', b'B', b'B', b'B', b'B', b'"'];
            let want = match b {
                b'"' => Some(1),
                b'\\' => None,
                0x20..=0x7f => Some(9),
                _ => None,
            };
            assert_eq!(plain_ascii_string_end(&s, 0), want, "byte {b}");
        }
    }
}
