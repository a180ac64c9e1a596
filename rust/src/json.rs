//! A strict RFC 8259 scanner over bytes for the compact-array hot path: typed fields are
//! read straight from the input with no intermediate value tree.

use std::borrow::Cow;

use crate::fastnum;

#[derive(Debug, Clone, PartialEq)]
pub struct JsonError {
    pub message: String,
    pub offset: usize,
}

pub type JResult<T> = Result<T, JsonError>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number<'a> {
    Int(i64),
    /// An integer outside i64, kept as its digits.
    BigInt(&'a str),
    Float(f64),
}

pub const MAX_DEPTH: usize = 512;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `x` that is '"', '\\' or below 0x20; exact up to the first
/// such byte (borrows only run upwards), which is all the scanner reads.
#[inline(always)]
fn special_bytes(x: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    zero(x ^ (LO * b'"' as u64)) | zero(x ^ (LO * b'\\' as u64)) | (x.wrapping_sub(LO * 0x20) & !x & HI)
}

/// An object member's key as compact JSON writes it, quotes and ':' included (`"id":`), as
/// two little-endian words: a member starts with it exactly when the 16 bytes there, masked,
/// equal these (`MemberKey::is_at`). Hot paths dispatch on keys with it instead of scanning
/// each key for its closing quote; keys of up to 13 bytes.
#[derive(Debug, Clone, Copy)]
pub struct MemberKey {
    lo: u64,
    hi: u64,
    lo_mask: u64,
    hi_mask: u64,
    /// Bytes from the opening quote to the value: the key's length + 3.
    pub len: usize,
}

impl MemberKey {
    pub const fn new(key: &str) -> MemberKey {
        let k = key.as_bytes();
        let len = k.len() + 3;
        assert!(len <= 16, "MemberKey holds keys of up to 13 bytes");
        let mut bytes = [0u8; 16];
        bytes[0] = b'"';
        let mut i = 0;
        while i < k.len() {
            bytes[i + 1] = k[i];
            i += 1;
        }
        bytes[k.len() + 1] = b'"';
        bytes[k.len() + 2] = b':';
        let (mut lo, mut hi) = (0u64, 0u64);
        i = 0;
        while i < 8 {
            lo |= (bytes[i] as u64) << (8 * i);
            hi |= (bytes[i + 8] as u64) << (8 * i);
            i += 1;
        }
        let lo_mask = if len >= 8 { u64::MAX } else { (1u64 << (8 * len)) - 1 };
        let hi_mask = if len <= 8 {
            0
        } else if len == 16 {
            u64::MAX
        } else {
            (1u64 << (8 * (len - 8))) - 1
        };
        MemberKey { lo, hi, lo_mask, hi_mask, len }
    }

    /// Whether the 16 bytes `words` (from `Parser::words16`) start with this key and its ':'.
    #[inline(always)]
    pub fn is_at(&self, words: (u64, u64)) -> bool {
        (words.0 & self.lo_mask) == self.lo && (words.1 & self.hi_mask) == self.hi
    }
}

pub struct Parser<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Parser<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Parser { buf, pos: 0 }
    }

    pub fn error<T>(&self, message: impl Into<String>) -> JResult<T> {
        Err(JsonError { message: message.into(), offset: self.pos })
    }

    #[inline(always)]
    pub fn ws(&mut self) {
        // Compact JSON has none: one compare (every white space byte is <= ' ') says so.
        match self.buf.get(self.pos) {
            Some(&c) if c <= b' ' => self.ws_run(),
            _ => {}
        }
    }

    #[cold]
    fn ws_run(&mut self) {
        while let Some(&c) = self.buf.get(self.pos) {
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// The 16 bytes at the position as two little-endian words (for `MemberKey::is_at`);
    /// None within 16 bytes of the end, where callers take their general path.
    #[inline(always)]
    pub fn words16(&self) -> Option<(u64, u64)> {
        let b = self.buf.get(self.pos..self.pos + 16)?;
        let (lo, hi) = b.split_at(8);
        Some((u64::from_le_bytes(lo.try_into().unwrap()), u64::from_le_bytes(hi.try_into().unwrap())))
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// What the next value is, for "expected X, got Y" messages.
    pub fn describe_next(&self) -> &'static str {
        match self.peek() {
            Some(b'"') => "a string",
            Some(b'-' | b'0'..=b'9') => "a number",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            Some(b'[') => "an array",
            Some(b'{') => "an object",
            None => "the end of input",
            Some(_) => "an invalid token",
        }
    }

    #[inline]
    pub fn literal(&mut self, word: &[u8]) -> JResult<()> {
        if self.buf[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.error("invalid literal")
        }
    }

    #[inline]
    pub fn boolean(&mut self) -> JResult<bool> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|_| true),
            Some(b'f') => self.literal(b"false").map(|_| false),
            _ => self.error("expected a boolean"),
        }
    }

    /// A string; borrowed from the input when it has no escapes.
    #[inline(always)]
    pub fn string(&mut self) -> JResult<Cow<'a, str>> {
        // Most keys, ids and skipped strings are plain printable ASCII: scan them sixteen
        // bytes at a time (eight near the end of the buffer) without a call; a backslash, control or non-ASCII byte (or the end of
        // the buffer) leaves the rest to the general scanner from the opening quote.
        let buf = self.buf;
        if buf.get(self.pos) == Some(&b'"') {
            let start = self.pos + 1;
            let mut at = start;
            while at + 16 <= buf.len() {
                let k = fastnum::first_not_plain16(buf, at);
                if k < 16 {
                    let end = at + k;
                    if buf[end] != b'"' {
                        return self.string_general();
                    }
                    self.pos = end + 1;
                    // SAFETY: every byte before the quote is printable ASCII (checked above).
                    return Ok(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(&buf[start..end]) }));
                }
                at += 16;
            }
            while at + 8 <= buf.len() {
                let m = fastnum::not_plain(u64::from_le_bytes(buf[at..at + 8].try_into().unwrap()));
                if m != 0 {
                    let end = at + (m.trailing_zeros() / 8) as usize;
                    if buf[end] != b'"' {
                        break;
                    }
                    self.pos = end + 1;
                    // SAFETY: every byte before the quote is printable ASCII (checked above).
                    return Ok(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(&buf[start..end]) }));
                }
                at += 8;
            }
        }
        self.string_general()
    }

    #[inline(never)]
    fn string_general(&mut self) -> JResult<Cow<'a, str>> {
        if self.peek() != Some(b'"') {
            return self.error(NOT_A_STRING);
        }
        self.pos += 1;
        let start = self.pos;
        let buf = self.buf;
        // Eight bytes at a time until a quote, backslash or control byte; UTF-8 is checked
        // only when a byte >= 0x80 was seen, since pure ASCII is valid UTF-8.
        let mut high = 0u64;
        loop {
            while self.pos + 8 <= buf.len() {
                let x = u64::from_le_bytes(buf[self.pos..self.pos + 8].try_into().unwrap());
                let m = special_bytes(x);
                if m != 0 {
                    let k = m.trailing_zeros() / 8;
                    high |= x & ((1u64 << (8 * k)) - 1) & HI;
                    self.pos += k as usize;
                    break;
                }
                high |= x & HI;
                self.pos += 8;
            }
            match buf.get(self.pos) {
                None => return self.error("unterminated string"),
                Some(b'"') => {
                    let raw = &buf[start..self.pos];
                    self.pos += 1;
                    if high == 0 {
                        // SAFETY: every byte is ASCII (checked above).
                        return Ok(Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(raw) }));
                    }
                    return match std::str::from_utf8(raw) {
                        Ok(s) => Ok(Cow::Borrowed(s)),
                        Err(e) => Err(JsonError {
                            message: "invalid UTF-8 in string".into(),
                            offset: start + e.valid_up_to(),
                        }),
                    };
                }
                Some(b'\\') => return self.string_escaped(start),
                Some(&c) if c < 0x20 => return self.error("control character in string"),
                Some(&c) => {
                    high |= (c & 0x80) as u64;
                    self.pos += 1;
                }
            }
        }
    }

    fn string_escaped(&mut self, start: usize) -> JResult<Cow<'a, str>> {
        let mut out: Vec<u8> = self.buf[start..self.pos].to_vec();
        loop {
            let c = match self.buf.get(self.pos) {
                None => return self.error("unterminated string"),
                Some(&c) => c,
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return match String::from_utf8(out) {
                        Ok(s) => Ok(Cow::Owned(s)),
                        Err(_) => Err(JsonError { message: "invalid UTF-8 in string".into(), offset: start }),
                    };
                }
                b'\\' => {
                    self.pos += 1;
                    let e = match self.buf.get(self.pos) {
                        None => return self.error("unterminated escape"),
                        Some(&e) => e,
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if !self.buf[self.pos..].starts_with(b"\\u") {
                                    return self.error("lone surrogate in string");
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return self.error("lone surrogate in string");
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return self.error("lone surrogate in string");
                            } else {
                                hi
                            };
                            let ch = char::from_u32(cp).expect("valid scalar value");
                            let mut tmp = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                        }
                        _ => {
                            self.pos -= 1;
                            return self.error("invalid escape in string");
                        }
                    }
                }
                c if c < 0x20 => return self.error("control character in string"),
                c => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn hex4(&mut self) -> JResult<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.buf.get(self.pos) {
                Some(&c @ b'0'..=b'9') => c - b'0',
                Some(&c @ b'a'..=b'f') => c - b'a' + 10,
                Some(&c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return self.error("invalid \\u escape"),
            };
            v = v * 16 + d as u32;
            self.pos += 1;
        }
        Ok(v)
    }

    /// A number by the RFC 8259 grammar; integers stay exact within i64.
    #[inline]
    pub fn number(&mut self) -> JResult<Number<'a>> {
        // One pass, digits eight at a time: the grammar check also yields the integer and
        // fraction values, so the common short decimal and integer cases never re-read them.
        let buf = self.buf;
        let start = self.pos;
        let neg = buf.get(self.pos) == Some(&b'-');
        if neg {
            self.pos += 1;
        }
        // Significant digits: a leading "0" is not one. Runs past 19 digits carry a value
        // that is not used (the text is parsed instead).
        let (int, int_digits) = match buf.get(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                (0, 0)
            }
            Some(b'1'..=b'9') => {
                let (v, n) = fastnum::digit_run(buf, self.pos, 19);
                self.pos += n;
                (v, n)
            }
            _ => return self.error("invalid number"),
        };
        let (mut frac_value, mut frac) = (0u64, 0usize);
        let mut is_float = false;
        if buf.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            (frac_value, frac) = fastnum::digit_run(buf, self.pos, 19);
            if frac == 0 {
                return self.error("invalid number: digit expected after '.'");
            }
            self.pos += frac;
            is_float = true;
        }
        let digits = int_digits + frac;
        let mut exponent = false;
        if matches!(buf.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(buf.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            let (_, n) = fastnum::digit_run(buf, self.pos, 19);
            if n == 0 {
                return self.error("invalid number: digit expected in exponent");
            }
            self.pos += n;
            is_float = true;
            exponent = true;
        }
        // SAFETY: the grammar above admitted only ASCII.
        let text = unsafe { std::str::from_utf8_unchecked(&buf[start..self.pos]) };
        if is_float {
            if !exponent && digits <= 15 {
                // Clinger's fast path: an exact mantissa < 2**53 over an exact power of ten
                // is one correctly rounded division.
                let v = (int * fastnum::POW10_U64[frac] + frac_value) as f64 / POW10[frac];
                return Ok(Number::Float(if neg { -v } else { v }));
            }
            let v: f64 = text.parse().expect("grammar-checked float");
            if !v.is_finite() {
                self.pos = start;
                return self.error(NUMBER_OUT_OF_RANGE);
            }
            return Ok(Number::Float(v));
        }
        if int_digits <= 19 {
            // 19 digits fit u64; only the i64 range check is left (timestamps in ns are 19).
            if int <= i64::MAX as u64 {
                return Ok(Number::Int(if neg { -(int as i64) } else { int as i64 }));
            }
            if neg && int == 1u64 << 63 {
                return Ok(Number::Int(i64::MIN));
            }
        }
        match text.parse::<i64>() {
            Ok(v) => Ok(Number::Int(v)),
            Err(_) => Ok(Number::BigInt(text)),
        }
    }

    /// Skip one value, checking it strictly.
    pub fn skip_value(&mut self, depth: usize) -> JResult<()> {
        let start = self.pos;
        if self.skip_flat::<false>(depth) {
            return Ok(());
        }
        self.pos = start;
        self.skip::<false>(depth).map_err(SkipError::into_json)
    }

    /// `skip_value` for JSON that is kept and decoded later with orjson: also refuses the
    /// numbers orjson cannot read back exactly (an integer outside [-2**63, 2**64-1]; a float
    /// that overflows, which `number` refuses anyway), reporting where the number is.
    pub fn skip_value_exact(&mut self, depth: usize) -> Result<(), SkipError> {
        let start = self.pos;
        if self.skip_flat::<true>(depth) {
            return Ok(());
        }
        self.pos = start;
        self.skip::<true>(depth)
    }

    /// `skip`'s fast path: one loop over the value with the open containers as bits (no
    /// recursion, no error values). True when the value is well-formed and every check `skip`
    /// makes passed; false on anything it would refuse, or on nesting past 64 levels here,
    /// and the caller walks the value again with `skip` from its start to report it.
    fn skip_flat<const EXACT: bool>(&mut self, depth: usize) -> bool {
        if depth + 64 > MAX_DEPTH {
            return false;
        }
        // Bit i of `objects` is set when the container at level i is an object.
        let (mut objects, mut level) = (0u64, 0u32);
        loop {
            // At a value.
            self.ws();
            match self.peek() {
                Some(b'"') => {
                    if self.string().is_err() {
                        return false;
                    }
                }
                Some(b'-' | b'0'..=b'9') => match self.number() {
                    Ok(Number::Int(_) | Number::Float(_)) => {}
                    Ok(Number::BigInt(digits)) if !EXACT || digits.parse::<u64>().is_ok() => {}
                    _ => return false,
                },
                Some(b't') if self.buf[self.pos..].starts_with(b"true") => self.pos += 4,
                Some(b'f') if self.buf[self.pos..].starts_with(b"false") => self.pos += 5,
                Some(b'n') if self.buf[self.pos..].starts_with(b"null") => self.pos += 4,
                Some(open @ (b'{' | b'[')) => {
                    self.pos += 1;
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                    } else {
                        if level == 64 {
                            return false;
                        }
                        if open == b'{' {
                            objects |= 1 << level;
                            if !self.key_colon() {
                                return false;
                            }
                        } else {
                            objects &= !(1 << level);
                        }
                        level += 1;
                        continue;
                    }
                }
                _ => return false,
            }
            // After a value: close what ends here, then on to the next value.
            loop {
                if level == 0 {
                    return true;
                }
                self.ws();
                let in_object = objects >> (level - 1) & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if in_object && !self.key_colon() {
                            return false;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {
                        self.pos += 1;
                        level -= 1;
                    }
                    Some(b']') if !in_object => {
                        self.pos += 1;
                        level -= 1;
                    }
                    _ => return false,
                }
            }
        }
    }

    /// A member's key and its ':' (for `skip_flat`): false when they are not there.
    #[inline(always)]
    fn key_colon(&mut self) -> bool {
        self.ws();
        if self.peek() != Some(b'"') || self.string().is_err() {
            return false;
        }
        self.ws();
        if self.peek() != Some(b':') {
            return false;
        }
        self.pos += 1;
        true
    }

    fn skip_error(&self, message: &str) -> SkipError {
        SkipError::Json(JsonError { message: message.into(), offset: self.pos })
    }

    fn skip<const EXACT: bool>(&mut self, depth: usize) -> Result<(), SkipError> {
        if depth > MAX_DEPTH {
            return Err(self.skip_error("nesting too deep"));
        }
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()).map_err(SkipError::Json),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                match self.number() {
                    Ok(Number::BigInt(digits)) if EXACT && digits.parse::<u64>().is_err() => {
                        Err(SkipError::Number { path: String::new(), error: out_of_range(start, digits) })
                    }
                    Ok(_) => Ok(()),
                    Err(e) if EXACT && e.message == NUMBER_OUT_OF_RANGE => {
                        Err(SkipError::Number { path: String::new(), error: e })
                    }
                    Err(e) => Err(SkipError::Json(e)),
                }
            }
            Some(b't' | b'f') => self.boolean().map(|_| ()).map_err(SkipError::Json),
            Some(b'n') => self.literal(b"null").map_err(SkipError::Json),
            Some(b'[') => self.elements(|p, i| p.skip::<EXACT>(depth + 1).map_err(|e| e.within(|| format!("[{i}]")))),
            Some(b'{') => self.members(|p, key| p.skip::<EXACT>(depth + 1).map_err(|e| e.within(|| format!(".{key}")))),
            _ => Err(self.skip_error("expected a JSON value")),
        }
    }

    /// Walk the members of the object the parser is at (its `{`, which the caller checked):
    /// `f` gets each key with the parser at the member's value, which it must consume.
    #[inline]
    pub fn members<E: WalkError>(
        &mut self,
        mut f: impl FnMut(&mut Parser<'a>, &str) -> Result<(), E>,
    ) -> Result<(), E> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let key = match self.string() {
                Ok(key) => key,
                Err(e) => return Err(key_error(e)),
            };
            self.ws();
            if self.peek() != Some(b':') {
                return Err(E::no_colon(self));
            }
            self.pos += 1;
            self.ws();
            f(self, &key)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(walk_error(self, "expected ',' or '}'")),
            }
        }
    }

    /// Walk the elements of the array the parser is at (its `[`, which the caller checked):
    /// `f` gets each index with the parser at the element, which it must consume.
    #[inline]
    pub fn elements<E: WalkError>(
        &mut self,
        mut f: impl FnMut(&mut Parser<'a>, usize) -> Result<(), E>,
    ) -> Result<(), E> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut i = 0;
        loop {
            self.ws();
            f(self, i)?;
            i += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(walk_error(self, "expected ',' or ']'")),
            }
        }
    }
}

/// The error type of a walk (`members`, `elements`): the walkers' own syntax errors are
/// `JsonError`s made into it. Two messages are worded per type, as each feed words them.
pub trait WalkError: From<JsonError> {
    /// The message of a member key that is not a string.
    const KEY: &'static str = NOT_A_STRING;

    /// A key not followed by ':' (the parser is at what came instead).
    #[cold]
    fn no_colon(p: &Parser<'_>) -> Self {
        walk_error(p, "expected ':'")
    }
}

#[cold]
fn walk_error<E: From<JsonError>>(p: &Parser<'_>, message: &str) -> E {
    E::from(JsonError { message: message.into(), offset: p.pos })
}

/// A key `string` refused; one that is not a string at all is worded by `E::KEY`.
#[cold]
fn key_error<E: WalkError>(e: JsonError) -> E {
    if e.message == NOT_A_STRING && E::KEY != NOT_A_STRING {
        return E::from(JsonError { message: E::KEY.into(), offset: e.offset });
    }
    E::from(e)
}

/// A bare `JsonError` (DATA.BET's lines) also says what came instead of the ':'.
impl WalkError for JsonError {
    #[cold]
    fn no_colon(p: &Parser<'_>) -> Self {
        JsonError { message: format!("expected ':', got {}", p.describe_next()), offset: p.pos }
    }
}

/// The message of a float that overflows a double.
pub const NUMBER_OUT_OF_RANGE: &str = "number out of range";

/// The message of a value that should be a string and is not.
const NOT_A_STRING: &str = "expected a string";

fn out_of_range(offset: usize, digits: &str) -> JsonError {
    let n = digits.trim_start_matches('-').len();
    JsonError { message: format!("integer of {n} digits outside [-2**63, 2**64-1]"), offset }
}

/// Why `skip_value_exact` refused a value.
#[derive(Debug, Clone, PartialEq)]
pub enum SkipError {
    /// Not strict JSON.
    Json(JsonError),
    /// A number orjson cannot read back, at `path` inside the skipped value (".a[2]", or ""
    /// for the value itself).
    Number { path: String, error: JsonError },
}

impl From<JsonError> for SkipError {
    #[inline]
    fn from(e: JsonError) -> Self {
        SkipError::Json(e)
    }
}

impl WalkError for SkipError {}

impl SkipError {
    fn within(self, segment: impl FnOnce() -> String) -> SkipError {
        match self {
            SkipError::Number { path, error } => SkipError::Number { path: segment() + &path, error },
            e => e,
        }
    }

    /// As a `JsonError`; a number's message is prefixed with its path (".a[2]: integer ...").
    pub fn into_json(self) -> JsonError {
        match self {
            SkipError::Json(e) => e,
            SkipError::Number { path, error } if path.is_empty() => error,
            SkipError::Number { path, error } => {
                JsonError { message: format!("{path}: {}", error.message), offset: error.offset }
            }
        }
    }
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// Exact conversion of a short decimal (at most 15 significant digits, no exponent): the
/// mantissa and the power of ten are both exact doubles, so one IEEE division is correctly
/// rounded (Clinger 1990). Prices like 1.08123 never reach the general parser.
#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> JResult<Number<'_>> {
        let mut p = Parser::new(s.as_bytes());
        let n = p.number()?;
        if p.pos != s.len() {
            return p.error("trailing");
        }
        Ok(n)
    }

    #[test]
    fn numbers_follow_rfc8259() {
        assert_eq!(num("0"), Ok(Number::Int(0)));
        assert_eq!(num("-0"), Ok(Number::Int(0)));
        assert_eq!(num("9223372036854775807"), Ok(Number::Int(i64::MAX)));
        assert_eq!(num("-9223372036854775808"), Ok(Number::Int(i64::MIN)));
        assert_eq!(num("9223372036854775808"), Ok(Number::BigInt("9223372036854775808")));
        assert_eq!(num("1.5"), Ok(Number::Float(1.5)));
        assert_eq!(num("10843E-4"), Ok(Number::Float(1.0843)));
        assert_eq!(num("1e-400"), Ok(Number::Float(0.0)));
        assert_eq!(num("-1.08123"), Ok(Number::Float(-1.08123)));
        assert_eq!(num("0.1"), Ok(Number::Float(0.1)));
        assert_eq!(num("123456789012.345"), Ok(Number::Float(123456789012.345)));
        assert_eq!(num("1.2345678901234567"), Ok(Number::Float(1.2345678901234567)));
        for bad in ["01", ".5", "1.", "+1", "1e", "0x1A", "NaN", "Infinity", "-", "1e400"] {
            assert!(num(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn member_keys_match_exactly_their_compact_member() {
        let at = |s: &str| {
            let mut b = s.as_bytes().to_vec();
            b.resize(b.len().max(16), b' ');
            let p = Parser::new(&b);
            p.words16().unwrap()
        };
        let keys = ["id", "value", "status", "is_active", "probability", "template", "odds", "x", "thirteen_byte"];
        for k in keys {
            let key = MemberKey::new(k);
            assert_eq!(key.len, k.len() + 3);
            for other in keys {
                for tail in ["1", "\"1\"", "{}"] {
                    let member = format!("\"{other}\":{tail}");
                    assert_eq!(key.is_at(at(&member)), k == other, "{k} vs {member}");
                }
            }
            // A longer key, a shorter one, white space, a missing colon: no match.
            for near in [format!("\"{k}x\":1"), format!("\"{k}\" :1"), format!("\"{k}\"1"), format!("{k}\":1")] {
                assert!(!key.is_at(at(&near)), "{k} vs {near}");
            }
            if k.len() > 1 {
                assert!(!key.is_at(at(&format!("\"{}\":1", &k[..k.len() - 1]))));
            }
        }
        // Near the end of the buffer there are no words: the caller's general path.
        assert_eq!(Parser::new(b"\"id\":1}").words16(), None);
    }

    #[test]
    fn strings_are_strict() {
        let s = |x: &str| Parser::new(x.as_bytes()).string().map(|c| c.into_owned());
        assert_eq!(s(r#""abc""#).unwrap(), "abc");
        assert_eq!(s(r#""a\u00e9\ud83d\ude00\/""#).unwrap(), "a\u{e9}\u{1F600}/");
        assert!(s(r#""\ud800""#).is_err());
        assert!(s(r#""\udc00x""#).is_err());
        assert!(s("\"a\tb\"").is_err());
        assert!(s(r#""\x""#).is_err());
        assert!(Parser::new(b"\"\xed\xa0\x80\"").string().is_err());
        assert!(s(r#""abc"#).is_err());
    }

    #[test]
    fn skip_value_checks_structure() {
        let ok = |x: &str| {
            let mut p = Parser::new(x.as_bytes());
            p.skip_value(0).is_ok() && p.pos == x.len()
        };
        assert!(ok(r#"{"a":[1,2,{"b":null}],"c":true}"#));
        assert!(!ok(r#"{"a":1,}"#));
        assert!(!ok(r#"[1 2]"#));
        assert!(!ok(&"[".repeat(MAX_DEPTH + 2)));
    }

    #[test]
    fn walkers_visit_every_member_and_element() {
        let text = r#" {"a" : [1, {"x":2}] , "b":{}, "c":[]}"#;
        let mut p = Parser::new(text.as_bytes());
        p.ws();
        let mut seen = Vec::new();
        let r: JResult<()> = p.members(|p, key| {
            seen.push(key.to_string());
            if p.peek() == Some(b'[') {
                p.elements(|p, i| {
                    seen.push(format!("{key}[{i}]"));
                    p.skip_value(1)
                })
            } else {
                p.skip_value(1)
            }
        });
        r.unwrap();
        assert_eq!(p.pos, text.len());
        assert_eq!(seen, ["a", "a[0]", "a[1]", "b", "c"]);
    }

    #[test]
    fn walker_errors_are_worded_by_their_type() {
        let walk = |s: &str| -> JResult<()> { Parser::new(s.as_bytes()).members(|p, _| p.skip_value(1)) };
        let skip = |s: &str| Parser::new(s.as_bytes()).skip_value(0).unwrap_err();
        for (text, plain, skipped) in [
            (r#"{"a" 1}"#, "expected ':', got a number", "expected ':'"),
            (r#"{1:1}"#, "expected a string", "expected a string"),
            (r#"{"a":1 "b":2}"#, "expected ',' or '}'", "expected ',' or '}'"),
            (r#"{"a":1,}"#, "expected a string", "expected a string"),
        ] {
            assert_eq!(walk(text).unwrap_err().message, plain, "{text}");
            assert_eq!(skip(text).message, skipped, "{text}");
            assert_eq!(walk(text).unwrap_err().offset, skip(text).offset, "{text}");
        }
        let elements = |s: &str| -> JResult<()> { Parser::new(s.as_bytes()).elements(|p, _| p.skip_value(1)) };
        assert_eq!(elements("[1 2]").unwrap_err(), JsonError { message: "expected ',' or ']'".into(), offset: 3 });
        assert_eq!(elements("[1,]").unwrap_err().message, "expected a JSON value");
    }
}
