//! Broker compact arrays as plain Rust: `["t", "EURUSD", 1.08123, 1.08125, 1700000000000]`.
//!
//! `Schema`, the frame reader (`read_marker`, `read_typed`, `next_element`, `read_frame`)
//! and `BookCore`, the symbol rows of a quote book, are cargo-tested here; `CompactDecoder`
//! and `QuoteBook` in `broker` are thin PyO3 classes over them.

use std::borrow::Cow;

use ahash::AHashMap;
use smallvec::SmallVec;

use crate::fastnum;
use crate::json::{JsonError, Number, Parser};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Str,
    F64,
    I64,
    /// A timestamp: an integer in [0, 2**63-1].
    Ts,
    Bool,
    Json,
}

impl FieldType {
    pub fn parse(name: &str) -> Option<FieldType> {
        Some(match name {
            "str" => FieldType::Str,
            "f64" | "float" => FieldType::F64,
            "i64" | "int" => FieldType::I64,
            "ts" => FieldType::Ts,
            "bool" => FieldType::Bool,
            "json" => FieldType::Json,
            _ => return None,
        })
    }

    fn expected(self) -> &'static str {
        match self {
            FieldType::Str => "a string",
            FieldType::F64 => "a number",
            FieldType::I64 | FieldType::Ts => "an integer",
            FieldType::Bool => "a boolean",
            FieldType::Json => "a JSON value",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub marker: String,
    pub fields: Vec<(String, FieldType)>,
}

impl Schema {
    pub fn quote() -> Schema {
        Schema {
            marker: "t".into(),
            fields: vec![
                ("symbol".into(), FieldType::Str),
                ("bid".into(), FieldType::F64),
                ("ask".into(), FieldType::F64),
                ("ts".into(), FieldType::Ts),
            ],
        }
    }
}

/// A typed field as read from the frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<'a> {
    Str(Cow<'a, str>),
    F64(f64),
    I64(i64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    pub message: String,
    pub field: usize,
    pub offset: usize,
}

impl FrameError {
    pub fn at(field: usize, e: JsonError) -> FrameError {
        FrameError { message: e.message, field, offset: e.offset }
    }
}

pub type FResult<T> = Result<T, FrameError>;

fn fail<T>(p: &Parser, field: usize, message: String) -> FResult<T> {
    Err(FrameError { message, field, offset: p.pos })
}

/// Read a typed (non-JSON) field at the parser's position.
pub fn read_typed<'a>(p: &mut Parser<'a>, ty: FieldType, field: usize) -> FResult<Typed<'a>> {
    let wrong = |p: &Parser| fail(p, field, format!("expected {}, got {}", ty.expected(), p.describe_next()));
    match ty {
        FieldType::Str => match p.peek() {
            Some(b'"') => p.string().map(Typed::Str).map_err(|e| FrameError::at(field, e)),
            _ => wrong(p),
        },
        FieldType::Bool => match p.peek() {
            Some(b't' | b'f') => p.boolean().map(Typed::Bool).map_err(|e| FrameError::at(field, e)),
            _ => wrong(p),
        },
        FieldType::F64 | FieldType::I64 | FieldType::Ts => {
            if !matches!(p.peek(), Some(b'-' | b'0'..=b'9')) {
                return wrong(p);
            }
            let start = p.pos;
            let n = p.number().map_err(|e| FrameError::at(field, e))?;
            match (ty, n) {
                (FieldType::F64, Number::Int(v)) => Ok(Typed::F64(v as f64)),
                (FieldType::F64, Number::Float(v)) => Ok(Typed::F64(v)),
                (FieldType::F64, Number::BigInt(s)) => match s.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(Typed::F64(v)),
                    _ => Err(FrameError { message: "non-finite price".into(), field, offset: start }),
                },
                (_, Number::Int(v)) => {
                    if ty == FieldType::Ts && v < 0 {
                        Err(FrameError { message: format!("timestamp {v} outside [0, 2**63-1]"), field, offset: start })
                    } else {
                        Ok(Typed::I64(v))
                    }
                }
                (_, Number::BigInt(s)) => {
                    Err(FrameError { message: format!("integer {s} outside [-2**63, 2**63-1]"), field, offset: start })
                }
                (_, Number::Float(_)) => {
                    Err(FrameError { message: "expected an integer, got a float".into(), field, offset: start })
                }
            }
        }
        FieldType::Json => unreachable!("JSON fields are read by the caller"),
    }
}

/// Open the array and read the marker.
pub fn read_marker<'a>(p: &mut Parser<'a>) -> FResult<Cow<'a, str>> {
    p.ws();
    if p.peek() != Some(b'[') {
        return fail(p, 0, format!("expected an array, got {}", p.describe_next()));
    }
    p.pos += 1;
    p.ws();
    match p.peek() {
        Some(b']') => fail(p, 0, "empty array".into()),
        Some(b'"') => p.string().map_err(|e| FrameError::at(0, e)),
        _ => fail(p, 0, format!("marker must be a string, got {}", p.describe_next())),
    }
}

/// Move to the next element: true if there is one, false at the closing bracket.
pub fn next_element(p: &mut Parser, field: usize) -> FResult<bool> {
    p.ws();
    match p.peek() {
        Some(b',') => {
            p.pos += 1;
            p.ws();
            Ok(true)
        }
        Some(b']') => {
            p.pos += 1;
            p.ws();
            if p.pos != p.buf.len() {
                return fail(p, field, "data after the array".into());
            }
            Ok(false)
        }
        _ => fail(p, field, "expected ',' or ']'".into()),
    }
}

/// Plain-Rust decode of a frame's typed fields (the QuoteBook path and the cargo tests):
/// JSON-typed fields and values after the schema are validated and skipped.
pub type Fields<'a> = SmallVec<[Typed<'a>; 8]>;

pub fn read_frame<'a>(buf: &'a [u8], schema: &Schema) -> FResult<Option<Fields<'a>>> {
    let mut p = Parser::new(buf);
    let marker = read_marker(&mut p)?;
    if marker != schema.marker {
        return Ok(None);
    }
    let mut out = Fields::new();
    for (i, (name, ty)) in schema.fields.iter().enumerate() {
        let field = i + 1;
        if !next_element(&mut p, field)? {
            return fail(&p, field, format!("too few fields: {name} missing"));
        }
        if *ty == FieldType::Json {
            p.skip_value(0).map_err(|e| FrameError::at(field, e))?;
        } else {
            out.push(read_typed(&mut p, *ty, field)?);
        }
    }
    let mut field = schema.fields.len() + 1;
    while next_element(&mut p, field)? {
        p.skip_value(0).map_err(|e| FrameError::at(field, e))?;
        field += 1;
    }
    Ok(Some(out))
}

// ----------------------------------------------------------------------------------------
// The fast path: an exact quote frame

/// A quote read by `read_exact_quote`: what `read_frame` returns for the same frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExactQuote<'a> {
    pub symbol: &'a str,
    /// The symbol as a `SymbolTable` key, when it is short enough to be stored inline.
    pub key: Option<SymbolKey>,
    pub bid: f64,
    pub ask: f64,
    pub ts: i64,
}

/// The bytes every exact quote frame of a schema starts with (`["t","`): compared as one
/// masked u64 when they fit in eight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExactPrefix {
    bytes: Box<[u8]>,
    word: u64,
    mask: u64,
}

impl ExactPrefix {
    fn new(bytes: Box<[u8]>) -> ExactPrefix {
        let mut w = [0u8; 8];
        let n = bytes.len().min(8);
        w[..n].copy_from_slice(&bytes[..n]);
        let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
        ExactPrefix { word: u64::from_le_bytes(w), mask, bytes }
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    #[inline(always)]
    pub fn starts(&self, buf: &[u8]) -> bool {
        if self.bytes.len() <= 8 && buf.len() >= 8 {
            let mut w = [0u8; 8];
            w.copy_from_slice(&buf[..8]);
            return u64::from_le_bytes(w) & self.mask == self.word;
        }
        buf.starts_with(&self.bytes)
    }
}

impl std::ops::Deref for ExactPrefix {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// The prefix of an exact quote frame of `schema`, when the schema is a quote's shape (str,
/// f64, f64, ts or i64) and its marker needs no escape; else `None`, and every frame takes
/// the general reader.
pub fn exact_prefix(schema: &Schema) -> Option<ExactPrefix> {
    let shape: Vec<FieldType> = schema.fields.iter().map(|f| f.1).collect();
    let quote_shape =
        matches!(shape.as_slice(), [FieldType::Str, FieldType::F64, FieldType::F64, FieldType::Ts | FieldType::I64]);
    let plain = |b: &u8| (0x20..0x80).contains(b) && *b != b'"' && *b != b'\\';
    if !quote_shape || !schema.marker.bytes().all(|b| plain(&b)) {
        return None;
    }
    Some(ExactPrefix::new([b"[\"", schema.marker.as_bytes(), b"\",\""].concat().into_boxed_slice()))
}

/// The quote in `buf` when it is exactly `[<marker>,"<symbol>",<price>,<price>,<ts>]` (the
/// frame begins with `prefix`, from `exact_prefix`): no whitespace, a symbol of printable
/// ASCII without escapes, prices of at most 15 significant digits without an exponent, a
/// timestamp up to i64::MAX, nothing after the `]`. Anything else is `None` and must
/// be read with `read_frame`, which gives the same result for every frame this accepts.
#[inline]
pub fn read_exact_quote<'a>(buf: &'a [u8], prefix: &ExactPrefix) -> Option<ExactQuote<'a>> {
    if !prefix.starts(buf) {
        return None;
    }
    let start = prefix.len();
    let close = fastnum::plain_ascii_string_end(buf, start)?;
    // SAFETY: plain_ascii_string_end admitted only printable ASCII.
    let symbol = unsafe { std::str::from_utf8_unchecked(&buf[start..close]) };
    let mut pos = close + 1;
    if buf.get(pos) != Some(&b',') {
        return None;
    }
    let (bid, end) = fastnum::short_price(buf, pos + 1)?;
    pos = end;
    if buf.get(pos) != Some(&b',') {
        return None;
    }
    let (ask, end) = fastnum::short_price(buf, pos + 1)?;
    pos = end;
    if buf.get(pos) != Some(&b',') {
        return None;
    }
    if buf.last() != Some(&b']') {
        return None;
    }
    let ts = fastnum::uint_between(buf, pos + 1, buf.len() - 1)?;
    // The frame goes on for at least 8 bytes after the symbol (`",0,0,0]`): its words
    // can be loaded whole, without a copy.
    let key = SymbolKey::within(buf, start, close - start);
    Some(ExactQuote { symbol, key, bid, ask, ts })
}

// ----------------------------------------------------------------------------------------
// Symbols to small integers

/// A symbol of at most 16 bytes as two little-endian words (zero past its end) and its
/// length: compared with two u64 compares instead of a `memcmp` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolKey {
    words: [u64; 2],
    len: u32,
}

#[inline(always)]
fn low_bytes(n: usize) -> u64 {
    if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    }
}

#[inline(always)]
fn word_at(buf: &[u8], pos: usize) -> Option<u64> {
    let w: [u8; 8] = buf.get(pos..pos + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

impl SymbolKey {
    pub const MAX_LEN: usize = 16;

    /// The key of `s`, or `None` when it is too long to be stored inline.
    pub fn of(s: &str) -> Option<SymbolKey> {
        if s.len() > Self::MAX_LEN {
            return None;
        }
        let mut b = [0u8; 16];
        b[..s.len()].copy_from_slice(s.as_bytes());
        let w0 = u64::from_le_bytes(b[..8].try_into().unwrap());
        let w1 = u64::from_le_bytes(b[8..].try_into().unwrap());
        Some(SymbolKey { words: [w0, w1], len: s.len() as u32 })
    }

    /// The key of `buf[start..start + len]`, read as whole words when the buffer holds the
    /// bytes after it (else as `of` would); `None` when too long.
    #[inline(always)]
    pub fn within(buf: &[u8], start: usize, len: usize) -> Option<SymbolKey> {
        if len > Self::MAX_LEN {
            return None;
        }
        let w0 = word_at(buf, start);
        let w1 = if len > 8 { word_at(buf, start + 8) } else { Some(0) };
        match (w0, w1) {
            (Some(w0), Some(w1)) => {
                Some(SymbolKey { words: [w0 & low_bytes(len), w1 & low_bytes(len.saturating_sub(8))], len: len as u32 })
            }
            _ => std::str::from_utf8(&buf[start..start + len]).ok().and_then(SymbolKey::of),
        }
    }

    #[inline(always)]
    fn hash(&self) -> u64 {
        let h = self.words[0] ^ self.words[1].rotate_left(29) ^ u64::from(self.len);
        let h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 32)
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot16 {
    key: SymbolKey,
    value: u32,
}

const EMPTY: u32 = u32::MAX;

/// Symbols to `u32` values: short symbols (`SymbolKey`) in an open-addressing table of
/// inline keys at most half full, longer ones in a hash map.
#[derive(Debug, Default)]
pub struct SymbolTable {
    slots: Vec<Slot16>,
    short: usize,
    long: AHashMap<Box<str>, u32>,
}

impl SymbolTable {
    pub fn len(&self) -> usize {
        self.short + self.long.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of a short symbol.
    #[inline(always)]
    pub fn get_key(&self, key: &SymbolKey) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = key.hash() as usize & mask;
        loop {
            let slot = &self.slots[i];
            if slot.value == EMPTY {
                return None;
            }
            if slot.key == *key {
                return Some(slot.value);
            }
            i = (i + 1) & mask;
        }
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        match SymbolKey::of(s) {
            Some(k) => self.get_key(&k),
            None => self.long.get(s).copied(),
        }
    }

    /// Set the value of `s` (`value` < u32::MAX).
    pub fn insert(&mut self, s: &str, value: u32) {
        assert!(value != EMPTY, "SymbolTable values are below u32::MAX");
        let Some(key) = SymbolKey::of(s) else {
            self.long.insert(s.into(), value);
            return;
        };
        if 2 * (self.short + 1) > self.slots.len() {
            self.rehash((2 * self.slots.len()).max(16));
        }
        if self.place(key, value) {
            self.short += 1;
        }
    }

    /// Store `key`: true when it is new.
    fn place(&mut self, key: SymbolKey, value: u32) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = key.hash() as usize & mask;
        loop {
            let slot = &mut self.slots[i];
            if slot.value == EMPTY {
                *slot = Slot16 { key, value };
                return true;
            }
            if slot.key == key {
                slot.value = value;
                return false;
            }
            i = (i + 1) & mask;
        }
    }

    fn rehash(&mut self, n: usize) {
        let empty = Slot16 { key: SymbolKey { words: [0; 2], len: 0 }, value: EMPTY };
        let old = std::mem::replace(&mut self.slots, vec![empty; n]);
        for s in old.into_iter().filter(|s| s.value != EMPTY) {
            self.place(s.key, s.value);
        }
    }
}

// ----------------------------------------------------------------------------------------
// The quote book's rows

/// The plain part of a quote book: its schema, a row per symbol (rows are handed out in
/// order, 0, 1, ...) and the admission rule. The rows' values live in columns the caller
/// keeps (numpy arrays under Python): `admit` says which row a quote read with `read_frame`
/// goes to.
#[derive(Debug)]
pub struct BookCore {
    pub schema: Schema,
    rows: SymbolTable,
    /// Positions of bid, ask and ts among the typed fields after the symbol, when present.
    pub quote_fields: Option<[usize; 3]>,
    /// False: a quote for a symbol without a row (see `insert`) changes nothing.
    pub admit_new: bool,
    /// Quotes refused because their symbol had no row and `admit_new` was false.
    pub rejected: u64,
}

/// Where `BookCore::admit` sends a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The symbol's row.
    Row(usize),
    /// A symbol without a row, admitted: the caller makes its row with `insert`.
    New,
    /// A symbol without a row, refused (`admit_new` false); counted in `rejected`.
    Rejected,
}

impl BookCore {
    /// A book over `schema`, whose first field must be the symbol (str) and the others
    /// f64, i64, ts or bool; the error is the message of the `ConfigError`.
    pub fn new(schema: Schema, admit_new: bool) -> Result<BookCore, &'static str> {
        if schema.fields.first().map(|f| f.1) != Some(FieldType::Str) {
            return Err("QuoteBook schema: field 1 must be the symbol (str)");
        }
        if schema.fields[1..].iter().any(|f| matches!(f.1, FieldType::Str | FieldType::Json)) {
            return Err("QuoteBook schema: fields after the symbol must be f64, i64, ts or bool");
        }
        let find =
            |name: &str, want: &[FieldType]| schema.fields[1..].iter().position(|f| f.0 == name && want.contains(&f.1));
        let quote_fields = match (
            find("bid", &[FieldType::F64]),
            find("ask", &[FieldType::F64]),
            find("ts", &[FieldType::Ts, FieldType::I64]),
        ) {
            (Some(b), Some(a), Some(t)) => Some([b, a, t]),
            _ => None,
        };
        Ok(BookCore { schema, rows: SymbolTable::default(), quote_fields, admit_new, rejected: 0 })
    }

    /// The typed fields after the symbol: one column each.
    pub fn value_fields(&self) -> &[(String, FieldType)] {
        &self.schema.fields[1..]
    }

    /// Rows handed out.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row of a symbol.
    pub fn row(&self, symbol: &str) -> Option<usize> {
        self.rows.get(symbol).map(|r| r as usize)
    }

    /// A row for a symbol that has none: the next one.
    pub fn insert(&mut self, symbol: &str) -> usize {
        let r = self.rows.len();
        self.rows.insert(symbol, r as u32);
        r
    }

    /// Where a quote for `symbol` goes.
    #[inline]
    pub fn admit(&mut self, symbol: &str) -> Slot {
        self.admit_found(self.rows.get(symbol))
    }

    /// `admit` for a symbol whose key the caller has (`read_exact_quote`).
    #[inline(always)]
    pub fn admit_quote(&mut self, q: &ExactQuote<'_>) -> Slot {
        let found = match &q.key {
            Some(k) => self.rows.get_key(k),
            None => self.rows.get(q.symbol),
        };
        self.admit_found(found)
    }

    #[inline(always)]
    fn admit_found(&mut self, found: Option<u32>) -> Slot {
        match found {
            Some(r) => Slot::Row(r as usize),
            None if !self.admit_new => {
                self.rejected += 1;
                Slot::Rejected
            }
            None => Slot::New,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(s: &str) -> FResult<Option<Fields<'_>>> {
        read_frame(s.as_bytes(), &Schema::quote())
    }

    #[test]
    fn reads_a_quote() {
        let got = quote(r#"["t","EURUSD",1.08123,1,1700000000000,"extra",[1]]"#).unwrap().unwrap();
        assert_eq!(
            got.into_vec(),
            vec![Typed::Str("EURUSD".into()), Typed::F64(1.08123), Typed::F64(1.0), Typed::I64(1_700_000_000_000),]
        );
        assert_eq!(quote(r#"["b",1]"#).unwrap(), None);
    }

    #[test]
    fn rejects_bad_frames_naming_the_field() {
        let field = |s: &str| quote(s).unwrap_err().field;
        assert_eq!(field(r#"{"t":1}"#), 0);
        assert_eq!(field(r#"[]"#), 0);
        assert_eq!(field(r#"[1,"x"]"#), 0);
        assert_eq!(field(r#"["t","X",1.0]"#), 3);
        assert_eq!(field(r#"["t","X",null,1,2]"#), 2);
        assert_eq!(field(r#"["t","X",1,"1",2]"#), 3);
        assert_eq!(field(r#"["t","X",1,1,-1]"#), 4);
        assert_eq!(field(r#"["t","X",1,1,1.7e12]"#), 4);
        assert_eq!(field(r#"["t","X",1,1,9223372036854775808]"#), 4);
        assert_eq!(field(r#"["t","X",1e400,1,2]"#), 2);
        assert_eq!(field(r#"["t","X",1,1,2,NaN]"#), 5);
        assert_eq!(field(r#"["t","X",1,1,2] x"#), 5);
        assert_eq!(field("\u{feff}[\"t\"]"), 0);
    }

    #[test]
    fn a_book_finds_rows_and_admits_by_its_rule() {
        let mut book = BookCore::new(Schema::quote(), true).unwrap();
        assert_eq!(book.quote_fields, Some([0, 1, 2]));
        assert_eq!(book.admit("EURUSD"), Slot::New);
        assert_eq!(book.insert("EURUSD"), 0);
        assert_eq!(book.insert("GBPUSD"), 1);
        assert_eq!(book.admit("EURUSD"), Slot::Row(0));
        book.admit_new = false;
        assert_eq!(book.admit("GBPUSD"), Slot::Row(1));
        assert_eq!(book.admit("USDJPY"), Slot::Rejected);
        assert_eq!((book.rejected, book.len(), book.row("GBPUSD"), book.row("USDJPY")), (1, 2, Some(1), None));
    }

    #[test]
    fn a_symbol_table_finds_short_and_long_symbols_by_key_and_by_name() {
        let mut t = SymbolTable::default();
        let names: Vec<String> = (0..1000)
            .map(|i| match i % 4 {
                0 => format!("S{i}"),
                1 => format!("EURUSD{i:0>10}"),
                2 => format!("A_LONG.SYMBOL/NAME-{i}"),
                _ => String::from_utf8(vec![b'A' + (i % 26) as u8; i % 17]).unwrap() + &i.to_string(),
            })
            .collect();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.get(n), None, "{n}");
            t.insert(n, i as u32);
        }
        t.insert(&names[3], 3); // again: no new entry
        assert_eq!(t.len(), names.len());
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.get(n), Some(i as u32), "{n}");
            // The key read in place from a frame is the key of the name.
            let frame = format!("[\"t\",\"{n}\",1,1,1]");
            let key = SymbolKey::within(frame.as_bytes(), 6, n.len());
            assert_eq!(key, SymbolKey::of(n), "{n}");
            // At the very end of a buffer (no whole words to load) too.
            assert_eq!(SymbolKey::within(n.as_bytes(), 0, n.len()), SymbolKey::of(n), "{n}");
            if let Some(k) = key {
                assert_eq!(t.get_key(&k), Some(i as u32), "{n}");
            }
        }
        // Keys differ by length even when the bytes agree up to a NUL.
        assert_ne!(SymbolKey::of("AB"), SymbolKey::of("AB\0"));
        assert_eq!(t.get("S0\0"), None);
        assert_eq!(SymbolTable::default().get_key(&SymbolKey::of("X").unwrap()), None);
    }

    #[test]
    fn a_book_schema_starts_with_the_symbol_and_holds_no_strings_after_it() {
        let schema = |fields: &[(&str, FieldType)]| Schema {
            marker: "t".into(),
            fields: fields.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
        };
        assert!(BookCore::new(schema(&[("bid", FieldType::F64)]), true).is_err());
        assert!(BookCore::new(schema(&[("s", FieldType::Str), ("x", FieldType::Json)]), true).is_err());
        let book = BookCore::new(schema(&[("s", FieldType::Str), ("bid", FieldType::F64)]), true).unwrap();
        assert_eq!(book.quote_fields, None);
    }

    /// Every exact frame reads as `read_frame` reads it; everything else falls back.
    fn exact_agrees(frame: &str) -> bool {
        let schema = Schema::quote();
        let prefix = exact_prefix(&schema).unwrap();
        let Some(q) = read_exact_quote(frame.as_bytes(), &prefix) else { return false };
        let general = read_frame(frame.as_bytes(), &schema).unwrap().unwrap().into_vec();
        let [Typed::Str(s), Typed::F64(b), Typed::F64(a), Typed::I64(t)] = general.as_slice() else {
            panic!("{frame}: {general:?}")
        };
        assert_eq!((q.symbol, q.bid.to_bits(), q.ask.to_bits(), q.ts), (&**s, b.to_bits(), a.to_bits(), *t), "{frame}");
        true
    }

    #[test]
    fn exact_quotes_take_the_fast_path_and_agree() {
        for frame in [
            r#"["t","EURUSD",1.08123,1.08125,1700000000000]"#,
            r#"["t","X",0,-0,0]"#,
            r#"["t","USDJPY",151.2,151.234,1763700000000000000]"#,
            r#"["t","BTCUSDT",65000,65000.5,1]"#,
            r#"["t","A_LONG.SYMBOL/NAME-2025",0.000012345,-1.5,123456789012345678]"#,
            r#"["t","",1.0000000,99999999999999.9,17]"#,
            r#"["t","EURUSD",1.1,1.2,9223372036854775807]"#,
            r#"["t","EURUSD",1e-5,1.2E+3,17]"#,
            r#"["t","EURUSD",1.0812300000000001,-1.0812300000000001,17]"#,
            r#"["t","EURUSD",12345678.5,1.12345678,1700000000000]"#,
            r#"["t","EURUSD",123456789012345,1,1700000000000]"#,
        ] {
            assert!(exact_agrees(frame), "{frame} fell back");
        }
    }

    #[test]
    fn other_frames_fall_back_to_the_general_reader() {
        for frame in [
            r#"["t", "EURUSD", 1.08123, 1.08125, 1700000000000]"#,
            r#" ["t","EURUSD",1.1,1.2,17]"#,
            r#"["t","EURUSD",1.1,1.2,17] "#,
            r#"["t","EURUSD",1.1,1.2,17,"extra"]"#,
            r#"["t","EURUSD",1.1,1.2]"#,
            r#"["t","EUR\"USD",1.1,1.2,17]"#,
            r#"["t","EURUSD\u0041",1.1,1.2,17]"#,
            "[\"t\",\"\u{e9}\",1.1,1.2,17]",
            r#"["t","EURUSD",1.1,1.2,9223372036854775808]"#,
            r#"["t","EURUSD",1.1,1.2,-17]"#,
            r#"["t","EURUSD",1.1,1.2,17.0]"#,
            r#"["t","EURUSD",01.1,1.2,17]"#,
            r#"["t","EURUSD",1.1,1.2,017]"#,
            r#"["t","EURUSD",1.,1.2,17]"#,
            r#"["t","EURUSD",null,1.2,17]"#,
            r#"["t","EURUSD",1.1,1.2,17]]"#,
            r#"["t","EURUSD",1e400,1.2,17]"#,
            r#"["t","EURUSD",1234567890123456,1.2,17]"#,
            r#"["t","EURUSD",1.1,1.2,]"#,
            r#"["t","EURUSD",1.1,1.2,17,]"#,
            r#"["b","EURUSD",1.1,1.2,17]"#,
            r#"["t","EURUSD"#,
            "",
        ] {
            assert!(!exact_agrees_or_errs(frame), "{frame} took the fast path");
        }
        // A quote schema with another marker has its own prefix; others have none.
        let mut schema = Schema::quote();
        schema.marker = "q".into();
        assert_eq!(&*exact_prefix(&schema).unwrap(), br#"["q",""#);
        schema.marker = "q\"".into();
        assert_eq!(exact_prefix(&schema), None);
        schema = Schema::quote();
        schema.fields.push(("vol".into(), FieldType::I64));
        assert_eq!(exact_prefix(&schema), None);
    }

    fn exact_agrees_or_errs(frame: &str) -> bool {
        let prefix = exact_prefix(&Schema::quote()).unwrap();
        read_exact_quote(frame.as_bytes(), &prefix).is_some()
    }

    #[test]
    fn every_truncation_of_an_exact_frame_falls_back() {
        let frame = br#"["t","EURUSD",1.08123,1.08125,1700000000000]"#;
        let prefix = exact_prefix(&Schema::quote()).unwrap();
        for n in 0..frame.len() {
            assert_eq!(read_exact_quote(&frame[..n], &prefix), None, "{n}");
        }
        assert!(read_exact_quote(frame, &prefix).is_some());
    }
}
