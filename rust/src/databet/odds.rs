//! DATA.BET replication state as plain Rust: parse a log line (strict JSON, borrowed
//! strings, typed fields read straight from the bytes) and apply it to an odds table whose
//! per-row columns live in a `ColumnStore` (numpy arrays under Python, Vecs under cargo test).
//!
//! `apply` is atomic per line: the whole line is parsed and checked before anything changes.

use std::borrow::Cow;
use std::ops::Range;

use ahash::AHashMap;
use smallvec::SmallVec;

use super::id::{Id, OddId};
use crate::json::{JResult, JsonError, MemberKey, Number, Parser, SkipError, NUMBER_OUT_OF_RANGE};

/// What a log line is, by its `event_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Snapshot,
    Added,
    Markets,
    BetStop,
    Fixture,
    Scores,
    GameState,
    Extensions,
    Rollback,
    Heartbeat,
    Unknown,
}

impl Kind {
    pub fn from_name(name: &str) -> Kind {
        match name {
            "sport_event_snapshot" => Kind::Snapshot,
            "sport_event_added" => Kind::Added,
            "markets_updated" => Kind::Markets,
            "bet_stop_updated" => Kind::BetStop,
            "fixture_updated" => Kind::Fixture,
            "competitor_scores_updated" => Kind::Scores,
            "game_state_updated" => Kind::GameState,
            "extensions_updated" => Kind::Extensions,
            "bets_rollback" => Kind::Rollback,
            "heartbeat" => Kind::Heartbeat,
            _ => Kind::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Snapshot => "sport_event_snapshot",
            Kind::Added => "sport_event_added",
            Kind::Markets => "markets_updated",
            Kind::BetStop => "bet_stop_updated",
            Kind::Fixture => "fixture_updated",
            Kind::Scores => "competitor_scores_updated",
            Kind::GameState => "game_state_updated",
            Kind::Extensions => "extensions_updated",
            Kind::Rollback => "bets_rollback",
            Kind::Heartbeat => "heartbeat",
            Kind::Unknown => "unknown",
        }
    }
}

/// Fixture statuses after which a sport event is over (ended, closed, cancelled, abandoned).
pub fn is_terminal(status: i8) -> bool {
    matches!(status, 3..=6)
}

// ------------------------------------------------------------------------------------------
// Parsing
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedOdd<'a> {
    pub id: Cow<'a, str>,
    pub value: f64,
    pub probability: f64,
    pub status: i8,
    pub is_active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedMarket<'a> {
    pub id: Cow<'a, str>,
    pub status: i8,
    pub type_id: i64,
    pub specifiers: Cow<'a, str>,
    pub odds: Range<usize>,
}

/// A log line, checked and typed; byte spans point into the line.
#[derive(Debug, Default)]
pub struct ParsedLog<'a> {
    pub kind: Option<Kind>,
    /// Span of the `event_type` string token (quotes included).
    pub event_type: Option<Range<usize>>,
    pub sport_event_id: Option<Cow<'a, str>>,
    pub sport_event_id_span: Option<Range<usize>>,
    pub sport_id: Option<Cow<'a, str>>,
    pub version: Option<Cow<'a, str>>,
    pub version_span: Option<Range<usize>>,
    pub timestamp_ns: Option<i64>,
    pub payload: Option<Range<usize>>,
    pub markets: Vec<ParsedMarket<'a>>,
    pub odds: Vec<ParsedOdd<'a>>,
    pub fixture: Option<Range<usize>>,
    pub fixture_status: Option<i8>,
    pub bet_stop: Option<bool>,
    pub scores: Option<Range<usize>>,
    pub game_state: Option<Range<usize>>,
    pub extensions: Option<Range<usize>>,
}

/// The capacity of a line's parsed markets and odds, kept by the table between lines so a
/// line allocates nothing to parse (`log` lends it to a line, `keep` takes it back).
#[derive(Default)]
pub struct Scratch {
    markets: Vec<ParsedMarket<'static>>,
    odds: Vec<ParsedOdd<'static>>,
}

/// An emptied Vec with its allocation, for elements that differ only in their lifetime.
macro_rules! recycle {
    ($v:expr, $t:ident) => {{
        let mut v = std::mem::ManuallyDrop::new($v);
        v.clear();
        // SAFETY: the Vec is empty, and `$t<'x>` has the same layout for every lifetime 'x.
        unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<$t<'_>>(), 0, v.capacity()) }
    }};
}

impl Scratch {
    /// An empty `ParsedLog` for one line, parsing into this scratch's capacity.
    #[inline(always)]
    pub fn log<'a>(&mut self) -> ParsedLog<'a> {
        ParsedLog {
            markets: recycle!(std::mem::take(&mut self.markets), ParsedMarket),
            odds: recycle!(std::mem::take(&mut self.odds), ParsedOdd),
            ..ParsedLog::default()
        }
    }

    /// Take back the capacity of a line's log once it is applied (or refused).
    #[inline(always)]
    pub fn keep(&mut self, log: ParsedLog<'_>) {
        self.markets = recycle!(log.markets, ParsedMarket);
        self.odds = recycle!(log.odds, ParsedOdd);
    }
}

impl ParsedLog<'_> {
    /// Forget what a payload set: a repeated key wins, as in a JSON object read into a map.
    fn clear_payload(&mut self) {
        self.markets.clear();
        (self.fixture, self.fixture_status, self.bet_stop) = (None, None, None);
        (self.scores, self.game_state, self.extensions) = (None, None, None);
    }

    /// Back to a fresh log, keeping the capacity.
    fn reset(&mut self) {
        let (mut markets, mut odds) = (std::mem::take(&mut self.markets), std::mem::take(&mut self.odds));
        markets.clear();
        odds.clear();
        *self = ParsedLog { markets, odds, ..ParsedLog::default() };
    }
}

/// A line that could not be applied: the message names the JSON path.
#[derive(Debug, Clone, PartialEq)]
pub struct LogError {
    pub message: String,
    pub offset: usize,
    pub field: Option<String>,
    pub sport_event_id: Option<String>,
    pub version: Option<String>,
}

fn with_path(e: JsonError, path: impl FnOnce() -> String) -> JsonError {
    // The innermost caller names the field; outer callers only prefix their part of the path.
    let p = path();
    match e.message.split_once(": ") {
        Some((inner, rest)) if inner.starts_with('.') || inner.starts_with('[') => {
            JsonError { message: format!("{p}{inner}: {rest}"), offset: e.offset }
        }
        _ => JsonError { message: format!("{p}: {}", e.message), offset: e.offset },
    }
}

/// Skip a value that stays readable through orjson after `apply` (the payload, side objects,
/// other keys of the line): a number orjson cannot read back is an error naming its path;
/// `at` is the path of the value itself (".extensions", or "" for the payload).
fn skip_kept(p: &mut Parser<'_>, depth: usize, at: impl FnOnce() -> String) -> JResult<()> {
    p.skip_value_exact(depth).map_err(|e| match e {
        SkipError::Json(e) => e,
        SkipError::Number { path, error } => {
            let path = at() + &path;
            if path.is_empty() {
                error
            } else {
                JsonError { message: format!("{path}: {}", error.message), offset: error.offset }
            }
        }
    })
}

fn key_path(key: &str) -> String {
    format!(".{key}")
}

/// Walk an object's members, calling `f` with each key (positioned at its value); anything
/// but an object (after white space) is an error saying what came instead.
#[inline]
fn object<'a>(p: &mut Parser<'a>, f: impl FnMut(&mut Parser<'a>, &str) -> JResult<()>) -> JResult<()> {
    p.ws();
    if p.peek() != Some(b'{') {
        return p.error(format!("expected an object, got {}", p.describe_next()));
    }
    p.members(f)
}

#[inline]
fn typed_err<T>(p: &Parser<'_>, field: &str, want: &str) -> JResult<T> {
    let got = p.describe_next();
    if field.is_empty() {
        // The value itself (a payload): the caller names its path.
        return p.error(format!("expected {want}, got {got}"));
    }
    p.error(format!(".{field}: expected {want}, got {got}"))
}

#[inline]
fn string_field<'a>(p: &mut Parser<'a>, field: &str) -> JResult<Cow<'a, str>> {
    if p.peek() != Some(b'"') {
        return typed_err(p, field, "a string");
    }
    p.string()
}

#[inline]
fn int_field(p: &mut Parser<'_>, field: &str) -> JResult<i64> {
    // A non-negative integer of up to 19 digits (a timestamp in ns has 19), read in place.
    let buf = p.buf;
    if let Some(w) = buf.get(p.pos..p.pos + 20) {
        let (mut v, mut n) = (0u64, 0);
        while n < 19 && w[n].is_ascii_digit() {
            v = v * 10 + u64::from(w[n] - b'0');
            n += 1;
        }
        let plain = n > 0 && !(n > 1 && w[0] == b'0') && !matches!(w[n], b'0'..=b'9' | b'.' | b'e' | b'E');
        if plain && v <= i64::MAX as u64 {
            p.pos += n;
            return Ok(v as i64);
        }
    }
    if !matches!(p.peek(), Some(b'-' | b'0'..=b'9')) {
        return typed_err(p, field, "an integer");
    }
    let start = p.pos;
    let n = p.number().map_err(|e| match e.message.as_str() {
        NUMBER_OUT_OF_RANGE => JsonError { message: format!(".{field}: {}", e.message), offset: e.offset },
        _ => e,
    })?;
    match n {
        Number::Int(v) => Ok(v),
        _ => {
            p.pos = start;
            typed_err(p, field, "an integer within i64")
        }
    }
}

#[inline]
fn status_field(p: &mut Parser<'_>, field: &str) -> JResult<i8> {
    // One digit and a delimiter: nearly every status on the wire.
    if let (Some(&d @ b'0'..=b'9'), Some(b',' | b'}' | b']' | b' ')) = (p.buf.get(p.pos), p.buf.get(p.pos + 1)) {
        p.pos += 1;
        return Ok((d - b'0') as i8);
    }
    let start = p.pos;
    let v = int_field(p, field)?;
    if !(0..=127).contains(&v) {
        p.pos = start;
        return p.error(format!(".{field}: status {v} out of range 0..127"));
    }
    Ok(v as i8)
}

#[inline]
fn bool_field(p: &mut Parser<'_>, field: &str) -> JResult<bool> {
    if !matches!(p.peek(), Some(b't' | b'f')) {
        return typed_err(p, field, "a boolean");
    }
    p.boolean()
}

const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// `"ddd.ddd"` with at most 15 digits, read in place: mantissa and power of ten are exact
/// doubles, so one division rounds correctly (Clinger). Anything else takes the general path.
#[inline(always)]
fn plain_decimal(buf: &[u8], start: usize) -> Option<(f64, usize)> {
    let mut i = start + 1;
    let mut m: u64 = 0;
    let mut digits = 0usize;
    let first = *buf.get(i)?;
    if !first.is_ascii_digit() || (first == b'0' && buf.get(i + 1).is_some_and(u8::is_ascii_digit)) {
        return None;
    }
    while let Some(&c @ b'0'..=b'9') = buf.get(i) {
        m = m * 10 + (c - b'0') as u64;
        digits += 1;
        i += 1;
        if digits > 15 {
            return None;
        }
    }
    let mut frac = 0;
    if buf.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&c @ b'0'..=b'9') = buf.get(i) {
            m = m * 10 + (c - b'0') as u64;
            digits += 1;
            frac += 1;
            i += 1;
            if digits > 15 {
                return None;
            }
        }
        if frac == 0 {
            return None;
        }
    }
    if buf.get(i) != Some(&b'"') {
        return None;
    }
    Some((m as f64 / POW10[frac], i + 1))
}

/// A decimal carried as a JSON string ("2.27"), parsed exactly to the nearest double.
#[inline]
fn decimal_field(p: &mut Parser<'_>, field: &str) -> JResult<f64> {
    if p.peek() == Some(b'"') {
        if let Some((v, end)) = plain_decimal(p.buf, p.pos) {
            p.pos = end;
            return Ok(v);
        }
    }
    let start = p.pos;
    let s = string_field(p, field)?;
    let mut q = Parser::new(s.as_bytes());
    let v = match q.number() {
        Ok(Number::Float(v)) => Some(v),
        Ok(Number::Int(v)) if v.unsigned_abs() < (1 << 53) => Some(v as f64),
        Ok(_) if q.pos == s.len() => s.parse::<f64>().ok(),
        Ok(_) | Err(_) => None,
    };
    match v {
        Some(v) if q.pos == s.len() && v.is_finite() => Ok(v),
        _ => {
            p.pos = start;
            p.error(format!(".{field}: expected a decimal string, got {s:?}"))
        }
    }
}

fn span_of<'a>(p: &mut Parser<'a>, field: &str, open: u8, want: &str) -> JResult<Range<usize>> {
    if p.peek() != Some(open) {
        return typed_err(p, field, want);
    }
    let start = p.pos;
    skip_kept(p, 1, || if field.is_empty() { String::new() } else { key_path(field) })?;
    Ok(start..p.pos)
}

#[inline]
fn parse_odd<'a>(p: &mut Parser<'a>) -> JResult<ParsedOdd<'a>> {
    let (mut id, mut value, mut status, mut active) = (None, None, None, None);
    let mut probability = f64::NAN;
    object(p, |p, key| {
        match key {
            "id" => id = Some(string_field(p, "id")?),
            "value" => value = Some(decimal_field(p, "value")?),
            "probability" => {
                if p.peek() == Some(b'n') {
                    p.literal(b"null")?;
                } else {
                    probability = decimal_field(p, "probability")?;
                }
            }
            "status" => status = Some(status_field(p, "status")?),
            "is_active" => active = Some(bool_field(p, "is_active")?),
            _ => skip_kept(p, 3, || key_path(key))?,
        }
        Ok(())
    })?;
    let missing = |f: &str| p.error(format!(".{f}: missing"));
    Ok(ParsedOdd {
        id: match id {
            Some(v) => v,
            None => return missing("id"),
        },
        value: match value {
            Some(v) => v,
            None => return missing("value"),
        },
        probability,
        status: match status {
            Some(v) => v,
            None => return missing("status"),
        },
        is_active: match active {
            Some(v) => v,
            None => return missing("is_active"),
        },
    })
}

// Compact fast path. Markets and odds as the feed writes them (no white space, known keys)
// are read with each key matched in place by two word compares; anything else (white space,
// another key, a value of another form, an error) returns None, and the caller reads that
// market again from its start with the general walker above, which says what is wrong. The
// fast path changes nothing but the parser position and what it pushes, so falling back
// after a partial read is exact.

const K_ID: MemberKey = MemberKey::new("id");
const K_VALUE: MemberKey = MemberKey::new("value");
const K_PROBABILITY: MemberKey = MemberKey::new("probability");
const K_STATUS: MemberKey = MemberKey::new("status");
const K_TEMPLATE: MemberKey = MemberKey::new("template");
const K_IS_ACTIVE: MemberKey = MemberKey::new("is_active");
const K_TYPE_ID: MemberKey = MemberKey::new("type_id");
const K_SPECIFIERS: MemberKey = MemberKey::new("specifiers");
const K_ODDS: MemberKey = MemberKey::new("odds");

/// A decimal string of at most 14 digits and no sign ("2.27", "0.5350", "12"), read in place
/// one byte at a time (prices are 3-5 digits: a loop beats eight-byte windows here). The
/// mantissa and the power of ten are exact doubles, so one division rounds correctly
/// (Clinger), giving `decimal_field`'s value; anything else is left to it.
#[inline(always)]
fn decimal_fast(p: &mut Parser<'_>) -> Option<f64> {
    // The quotes, up to 14 digits and the point fit in 17 bytes; a fixed window checks the
    // bounds once.
    let b: &[u8; 17] = p.buf.get(p.pos..p.pos + 17)?.try_into().ok()?;
    if b[0] != b'"' || (b[1] == b'0' && b[2].is_ascii_digit()) {
        return None;
    }
    let mut m = 0u64;
    let mut j = 1;
    while j < 16 && b[j].is_ascii_digit() {
        m = m * 10 + u64::from(b[j] - b'0');
        j += 1;
    }
    if j == 1 {
        return None;
    }
    let mut frac = 0;
    if b[j] == b'.' {
        j += 1;
        while j < 16 && b[j].is_ascii_digit() {
            m = m * 10 + u64::from(b[j] - b'0');
            j += 1;
            frac += 1;
        }
        if frac == 0 {
            return None;
        }
    }
    if b[j] != b'"' {
        return None;
    }
    p.pos += j + 1;
    Some(m as f64 / POW10[frac])
}

/// A status of one digit (what the feed sends).
#[inline(always)]
fn status_fast(p: &mut Parser<'_>) -> Option<i8> {
    match p.buf.get(p.pos) {
        Some(&d @ b'0'..=b'9') => {
            p.pos += 1;
            Some((d - b'0') as i8)
        }
        _ => None,
    }
}

#[inline(always)]
fn bool_fast(p: &mut Parser<'_>) -> Option<bool> {
    let b = p.buf.get(p.pos..p.pos + 5)?;
    if b[..4] == *b"true" {
        p.pos += 4;
        Some(true)
    } else if b == b"false" {
        p.pos += 5;
        Some(false)
    } else {
        None
    }
}

/// A string value without escapes or with them (`Parser::string` reads both).
#[inline(always)]
fn string_fast<'a>(p: &mut Parser<'a>) -> Option<Cow<'a, str>> {
    if p.peek() != Some(b'"') {
        return None;
    }
    p.string().ok()
}

/// A non-negative integer of up to 18 digits, no leading zero (a type id: a few digits).
#[inline(always)]
fn uint_fast(p: &mut Parser<'_>) -> Option<i64> {
    let buf = p.buf;
    let start = p.pos;
    let mut v = 0i64;
    let mut i = start;
    while let Some(&d @ b'0'..=b'9') = buf.get(i) {
        v = v * 10 + i64::from(d - b'0');
        i += 1;
        if i - start > 18 {
            return None;
        }
    }
    if i == start || (i - start > 1 && buf[start] == b'0') {
        return None;
    }
    p.pos = i;
    Some(v)
}

/// After a member: ',' (true, more follow) or '}' (false, the object ended).
#[inline(always)]
fn next_member(p: &mut Parser<'_>) -> Option<bool> {
    let c = p.peek()?;
    p.pos += 1;
    match c {
        b',' => Some(true),
        b'}' => Some(false),
        _ => None,
    }
}

/// One odd object at its '{'.
#[inline(always)]
fn parse_odd_fast<'a>(p: &mut Parser<'a>) -> Option<ParsedOdd<'a>> {
    p.pos += 1;
    let (mut id, mut value, mut status, mut active) = (None, None, None, None);
    let mut probability = f64::NAN;
    loop {
        let w = p.words16()?;
        // The first letter of the key picks the candidates: one or two compares.
        match (w.0 >> 8) as u8 {
            b'i' if K_ID.is_at(w) => {
                p.pos += K_ID.len;
                id = Some(string_fast(p)?);
            }
            b'i' if K_IS_ACTIVE.is_at(w) => {
                p.pos += K_IS_ACTIVE.len;
                active = Some(bool_fast(p)?);
            }
            b'v' if K_VALUE.is_at(w) => {
                p.pos += K_VALUE.len;
                value = Some(decimal_fast(p)?);
            }
            b'p' if K_PROBABILITY.is_at(w) => {
                p.pos += K_PROBABILITY.len;
                if p.buf.get(p.pos..p.pos + 4) == Some(b"null") {
                    p.pos += 4; // as the general path: null leaves what an earlier key set
                } else {
                    probability = decimal_fast(p)?;
                }
            }
            b's' if K_STATUS.is_at(w) => {
                p.pos += K_STATUS.len;
                status = Some(status_fast(p)?);
            }
            b't' if K_TEMPLATE.is_at(w) => {
                p.pos += K_TEMPLATE.len;
                string_fast(p)?;
            }
            _ => return None,
        }
        if !next_member(p)? {
            break;
        }
    }
    Some(ParsedOdd { id: id?, value: value?, probability, status: status?, is_active: active? })
}

/// One market object at its '{', its odds pushed onto `odds`.
#[inline]
fn parse_market_fast<'a>(p: &mut Parser<'a>, odds: &mut Vec<ParsedOdd<'a>>) -> Option<ParsedMarket<'a>> {
    p.pos += 1;
    let (mut id, mut status, mut range) = (None, None, None);
    let mut type_id = 0i64;
    let mut specifiers = Cow::Borrowed("");
    loop {
        let w = p.words16()?;
        if K_ID.is_at(w) {
            p.pos += K_ID.len;
            id = Some(string_fast(p)?);
        } else if K_STATUS.is_at(w) {
            p.pos += K_STATUS.len;
            status = Some(status_fast(p)?);
        } else if K_ODDS.is_at(w) {
            p.pos += K_ODDS.len;
            if p.peek()? != b'[' {
                return None;
            }
            p.pos += 1;
            let first = odds.len();
            if p.peek()? == b']' {
                p.pos += 1;
            } else {
                loop {
                    if p.peek()? != b'{' {
                        return None;
                    }
                    odds.push(parse_odd_fast(p)?);
                    let c = p.peek()?;
                    p.pos += 1;
                    match c {
                        b',' => {}
                        b']' => break,
                        _ => return None,
                    }
                }
            }
            range = Some(first..odds.len());
        } else if K_TYPE_ID.is_at(w) {
            p.pos += K_TYPE_ID.len;
            type_id = uint_fast(p)?;
        } else if K_SPECIFIERS.is_at(w) {
            p.pos += K_SPECIFIERS.len;
            specifiers = string_fast(p)?;
        } else {
            return None;
        }
        if !next_member(p)? {
            break;
        }
    }
    Some(ParsedMarket { id: id?, status: status?, type_id, specifiers, odds: range? })
}

fn parse_market<'a>(p: &mut Parser<'a>, odds: &mut Vec<ParsedOdd<'a>>) -> JResult<ParsedMarket<'a>> {
    let (mut id, mut status, mut range) = (None, None, None);
    let mut type_id = 0i64;
    let mut specifiers = Cow::Borrowed("");
    object(p, |p, key| {
        match key {
            "id" => id = Some(string_field(p, "id")?),
            "status" => status = Some(status_field(p, "status")?),
            "type_id" => type_id = int_field(p, "type_id")?,
            "specifiers" => specifiers = string_field(p, "specifiers")?,
            "odds" => {
                if p.peek() != Some(b'[') {
                    return typed_err(p, "odds", "an array");
                }
                let first = odds.len();
                p.elements(|p, i| {
                    let odd = parse_odd(p).map_err(|e| with_path(e, || format!(".odds[{i}]")))?;
                    odds.push(odd);
                    Ok(())
                })?;
                range = Some(first..odds.len());
            }
            _ => skip_kept(p, 2, || key_path(key))?,
        }
        Ok(())
    })?;
    let missing = |f: &str| p.error(format!(".{f}: missing"));
    Ok(ParsedMarket {
        id: match id {
            Some(v) => v,
            None => return missing("id"),
        },
        status: match status {
            Some(v) => v,
            None => return missing("status"),
        },
        type_id,
        specifiers,
        odds: match range {
            Some(v) => v,
            None => return missing("odds"),
        },
    })
}

fn parse_markets<'a>(p: &mut Parser<'a>, log: &mut ParsedLog<'a>, path: &str) -> JResult<()> {
    if p.peek() != Some(b'[') {
        return p.error(format!("{path}: expected an array, got {}", p.describe_next()));
    }
    let (markets, odds) = (&mut log.markets, &mut log.odds);
    markets.clear();
    p.elements(|p, i| {
        let (start, first) = (p.pos, odds.len());
        let fast = if p.peek() == Some(b'{') { parse_market_fast(p, odds) } else { None };
        let m = match fast {
            Some(m) => m,
            None => {
                p.pos = start;
                odds.truncate(first);
                parse_market(p, odds).map_err(|e| with_path(e, || format!("{path}[{i}]")))?
            }
        };
        markets.push(m);
        Ok(())
    })
}

fn fixture_status(buf: &[u8], span: &Range<usize>) -> JResult<i8> {
    let mut q = Parser { buf: &buf[..span.end], pos: span.start };
    let mut status = None;
    object(&mut q, |q, key| {
        if key == "status" {
            status = Some(status_field(q, "status")?);
        } else {
            q.skip_value(2)?;
        }
        Ok(())
    })?;
    match status {
        Some(s) => Ok(s),
        None => Err(JsonError { message: ".status: missing".into(), offset: span.start }),
    }
}

fn parse_payload<'a>(p: &mut Parser<'a>, log: &mut ParsedLog<'a>, kind: Kind) -> JResult<()> {
    let buf = p.buf;
    match kind {
        Kind::Snapshot | Kind::Added => object(p, |p, key| {
            match key {
                "fixture" => {
                    let s = span_of(p, "fixture", b'{', "an object")?;
                    log.fixture_status = Some(fixture_status(buf, &s).map_err(|e| with_path(e, || ".fixture".into()))?);
                    log.fixture = Some(s);
                }
                "markets" => parse_markets(p, log, ".markets")?,
                "bet_stop" => log.bet_stop = Some(bool_field(p, "bet_stop")?),
                "game_state" => log.game_state = Some(span_of(p, "game_state", b'{', "an object")?),
                "competitors_score" => log.scores = Some(span_of(p, "competitors_score", b'[', "an array")?),
                "extensions" => log.extensions = Some(span_of(p, "extensions", b'{', "an object")?),
                _ => skip_kept(p, 1, || key_path(key))?,
            }
            Ok(())
        })
        .and_then(|_| match log.fixture {
            None => p.error(".fixture: missing"),
            Some(_) => Ok(()),
        }),
        Kind::Markets => parse_markets(p, log, ""),
        Kind::BetStop => {
            object(p, |p, key| {
                match key {
                    "bet_stop" => log.bet_stop = Some(bool_field(p, "bet_stop")?),
                    _ => skip_kept(p, 1, || key_path(key))?,
                }
                Ok(())
            })?;
            match log.bet_stop {
                None => p.error(".bet_stop: missing"),
                Some(_) => Ok(()),
            }
        }
        Kind::Fixture => {
            let s = span_of(p, "", b'{', "an object")?;
            log.fixture_status = Some(fixture_status(buf, &s)?);
            log.fixture = Some(s);
            Ok(())
        }
        Kind::Scores => span_of(p, "", b'[', "an array").map(|s| log.scores = Some(s)),
        Kind::GameState => span_of(p, "", b'{', "an object").map(|s| log.game_state = Some(s)),
        Kind::Extensions => span_of(p, "", b'{', "an object").map(|s| log.extensions = Some(s)),
        Kind::Rollback => {
            let mut markets = false;
            object(p, |p, key| {
                if key == "markets" {
                    if p.peek() != Some(b'[') {
                        return typed_err(p, "markets", "an array");
                    }
                    markets = true;
                }
                skip_kept(p, 1, || key_path(key))
            })?;
            if markets {
                Ok(())
            } else {
                p.error(".markets: missing")
            }
        }
        Kind::Heartbeat | Kind::Unknown => skip_kept(p, 1, String::new),
    }
}

/// Parse and check one log line; nothing is applied.
pub fn parse_log(line: &[u8]) -> Result<ParsedLog<'_>, LogError> {
    let mut log = ParsedLog::default();
    parse_log_into(line, &mut log)?;
    Ok(log)
}

/// `parse_log` into the caller's (fresh) `ParsedLog`: the ~1.3 KB result is never copied.
#[inline]
pub fn parse_log_into<'a>(line: &'a [u8], log: &mut ParsedLog<'a>) -> Result<(), LogError> {
    if parse_top_fast(&mut Parser::new(line), log).is_some() {
        return Ok(());
    }
    // Read again from the start with the general walker, which says what is wrong.
    log.reset();
    let mut p = Parser::new(line);
    parse_top(&mut p, log).map_err(|e| log_error(line, log, e))
}

/// The line's top level as the feed writes it (compact, known keys, `event_type` before
/// `payload`), each key matched in place; None on anything else, and on any error, for
/// `parse_top` to read the line again. Fills `log` exactly as `parse_top` would.
fn parse_top_fast<'a>(p: &mut Parser<'a>, log: &mut ParsedLog<'a>) -> Option<()> {
    if p.peek()? != b'{' {
        return None;
    }
    p.pos += 1;
    loop {
        let rest = p.buf.get(p.pos..p.pos + 18)?;
        // The first letter of the key picks the candidates; each is one fixed-size compare.
        match rest[1] {
            b's' if rest.starts_with(b"\"sport_event_id\":") => {
                p.pos += 17;
                let start = p.pos;
                log.sport_event_id = Some(string_fast(p)?);
                log.sport_event_id_span = Some(start..p.pos);
            }
            b's' if rest.starts_with(b"\"sport_id\":") => {
                p.pos += 11;
                log.sport_id = Some(string_fast(p)?);
            }
            b'v' if rest.starts_with(b"\"version\":") => {
                p.pos += 10;
                let start = p.pos;
                log.version = Some(string_fast(p)?);
                log.version_span = Some(start..p.pos);
            }
            b't' if rest.starts_with(b"\"timestamp_ns\":") => {
                p.pos += 15;
                log.timestamp_ns = Some(int_field(p, "timestamp_ns").ok()?);
            }
            b'e' if rest.starts_with(b"\"event_type\":") => {
                p.pos += 13;
                let start = p.pos;
                let name = string_fast(p)?;
                log.kind = Some(Kind::from_name(&name));
                log.event_type = Some(start..p.pos);
            }
            b'p' if rest.starts_with(b"\"payload\":") => {
                p.pos += 10;
                let kind = log.kind?;
                log.clear_payload();
                let start = p.pos;
                parse_payload(p, log, kind).ok()?;
                log.payload = Some(start..p.pos);
            }
            _ => return None,
        }
        match p.peek()? {
            b',' => p.pos += 1,
            b'}' => {
                p.pos += 1;
                break;
            }
            _ => return None,
        }
    }
    // What `parse_top` checks last; it words the errors.
    let ok = p.pos == p.buf.len()
        && (log.kind == Some(Kind::Heartbeat)
            || (log.sport_event_id.is_some()
                && log.version.is_some()
                && (log.payload.is_some() || log.kind == Some(Kind::Unknown))));
    ok.then_some(())
}

fn parse_top<'a>(p: &mut Parser<'a>, log: &mut ParsedLog<'a>) -> JResult<()> {
    let mut deferred = None;
    object(p, |p, key| {
        match key {
            "event_type" => {
                let start = p.pos;
                let name = string_field(p, "event_type")?;
                log.kind = Some(Kind::from_name(&name));
                log.event_type = Some(start..p.pos);
            }
            "sport_event_id" => {
                let start = p.pos;
                log.sport_event_id = Some(string_field(p, "sport_event_id")?);
                log.sport_event_id_span = Some(start..p.pos);
            }
            "sport_id" => log.sport_id = Some(string_field(p, "sport_id")?),
            "version" => {
                let start = p.pos;
                log.version = Some(string_field(p, "version")?);
                log.version_span = Some(start..p.pos);
            }
            "timestamp_ns" => log.timestamp_ns = Some(int_field(p, "timestamp_ns")?),
            "payload" => {
                log.clear_payload();
                let start = p.pos;
                match log.kind {
                    // The feed sends event_type before payload: parse it in the same pass.
                    Some(kind) => parse_payload(p, log, kind).map_err(at_payload)?,
                    None => {
                        skip_kept(p, 1, || ".payload".into())?;
                        deferred = Some(start);
                    }
                }
                log.payload = Some(start..p.pos);
            }
            _ => skip_kept(p, 1, || key_path(key))?,
        }
        Ok(())
    })?;
    p.ws();
    if p.pos != p.buf.len() {
        return p.error("trailing data after the log object");
    }
    let Some(kind) = log.kind else {
        return Err(JsonError { message: ".event_type: missing".into(), offset: 0 });
    };
    if let Some(start) = deferred {
        let mut q = Parser { buf: p.buf, pos: start };
        parse_payload(&mut q, log, kind).map_err(at_payload)?;
    }
    if kind != Kind::Heartbeat {
        if log.sport_event_id.is_none() {
            return Err(JsonError { message: ".sport_event_id: missing".into(), offset: 0 });
        }
        if log.version.is_none() {
            return Err(JsonError { message: ".version: missing".into(), offset: 0 });
        }
        if log.payload.is_none() && kind != Kind::Unknown {
            return Err(JsonError { message: ".payload: missing".into(), offset: 0 });
        }
    }
    Ok(())
}

fn at_payload(e: JsonError) -> JsonError {
    with_path(e, || ".payload".into())
}

fn log_error(line: &[u8], log: &ParsedLog<'_>, e: JsonError) -> LogError {
    let field = match e.message.split_once(": ") {
        Some((f, _)) if f.starts_with('.') => Some(f[1..].to_string()),
        _ => None,
    };
    let mut out = LogError {
        message: e.message,
        offset: e.offset,
        field,
        sport_event_id: log.sport_event_id.as_deref().map(str::to_string),
        version: log.version.as_deref().map(str::to_string),
    };
    if out.sport_event_id.is_none() || out.version.is_none() {
        // The error came before these keys: look them up leniently for the report.
        let (sid, ver) = identity(line);
        out.sport_event_id = out.sport_event_id.or(sid);
        out.version = out.version.or(ver);
    }
    out
}

/// The line's sport_event_id and version when its top level is readable, for error reports.
pub fn identity(line: &[u8]) -> (Option<String>, Option<String>) {
    let mut p = Parser::new(line);
    let (mut sid, mut ver) = (None, None);
    let _ = object(&mut p, |p, key| {
        match key {
            "sport_event_id" if p.peek() == Some(b'"') => sid = Some(p.string()?.into_owned()),
            "version" if p.peek() == Some(b'"') => ver = Some(p.string()?.into_owned()),
            _ => p.skip_value(1)?,
        }
        Ok(())
    });
    (sid, ver)
}

// ------------------------------------------------------------------------------------------
// The table
// ------------------------------------------------------------------------------------------

/// Mutable views of the per-row columns, all `capacity()` long.
pub struct Cols<'a> {
    pub value: &'a mut [f64],
    pub probability: &'a mut [f64],
    pub status: &'a mut [i8],
    pub is_active: &'a mut [bool],
    pub event: &'a mut [i32],
    pub market: &'a mut [i32],
}

/// Where the row columns live. Growth keeps the first `old` rows and fills the rest as free.
pub trait ColumnStore {
    fn capacity(&self) -> usize;
    fn grow(&mut self, new_capacity: usize);
    fn cols(&mut self) -> Cols<'_>;
}

#[derive(Default)]
pub struct VecStore {
    pub value: Vec<f64>,
    pub probability: Vec<f64>,
    pub status: Vec<i8>,
    pub is_active: Vec<bool>,
    pub event: Vec<i32>,
    pub market: Vec<i32>,
}

impl ColumnStore for VecStore {
    fn capacity(&self) -> usize {
        self.value.len()
    }
    fn grow(&mut self, n: usize) {
        self.value.resize(n, f64::NAN);
        self.probability.resize(n, f64::NAN);
        self.status.resize(n, -1);
        self.is_active.resize(n, false);
        self.event.resize(n, -1);
        self.market.resize(n, -1);
    }
    fn cols(&mut self) -> Cols<'_> {
        Cols {
            value: &mut self.value,
            probability: &mut self.probability,
            status: &mut self.status,
            is_active: &mut self.is_active,
            event: &mut self.event,
            market: &mut self.market,
        }
    }
}

/// An odd of a market and its row: 24 bytes, so four fit in 96 inline.
struct OddSlot {
    id: OddId,
    row: u32,
}

pub struct Market {
    pub id: Id,
    pub event: u32,
    pub status: i8,
    pub type_id: i64,
    pub specifiers: Id,
    /// The odds in place: a market has 2-4 of them nearly always.
    odds: SmallVec<[OddSlot; 4]>,
    /// The line that last wrote this market (a snapshot drops the markets it did not write).
    seen: u64,
}

pub struct Event {
    pub id: Box<str>,
    pub sport_id: Box<str>,
    pub status: i8,
    pub bet_stop: bool,
    pub fixture: Box<[u8]>,
    pub scores: Option<Box<[u8]>>,
    pub game_state: Option<Box<[u8]>>,
    pub extensions: Option<Box<[u8]>>,
    pub version: String,
    /// Log timestamp at which the fixture turned ended/closed/cancelled/abandoned.
    pub ended_at_ns: Option<i64>,
    /// Slots of this event's markets (found by id through `OddsCore::market_index`).
    markets: Vec<u32>,
}

/// What one applied line changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// False when the log names a sport event the table does not hold (nothing changed).
    pub known: bool,
    pub event: Option<u32>,
    pub rows_written: u32,
    pub rows_removed: u32,
    pub markets: u32,
}

pub struct OddsCore<S: ColumnStore> {
    pub store: S,
    by_id: AHashMap<Box<str>, u32>,
    /// (event slot, market id) -> market slot: one flat map for every event's markets.
    market_index: AHashMap<(u32, Id), u32>,
    events: Vec<Option<Event>>,
    free_events: Vec<u32>,
    markets: Vec<Option<Market>>,
    free_markets: Vec<u32>,
    free_rows: Vec<u32>,
    /// Rows ever handed out: the length of the column views.
    pub high: usize,
    pub live: usize,
    pub version: String,
    pub healthy: bool,
    /// Bumped per line applied: marks the markets a snapshot wrote.
    line_gen: u64,
    ended: Vec<u32>,
    pub retention_ns: Option<i64>,
    /// Parse capacity reused line after line.
    pub scratch: Scratch,
}

const NO: i32 = -1;

impl<S: ColumnStore> OddsCore<S> {
    pub fn new(store: S) -> Self {
        OddsCore {
            store,
            by_id: AHashMap::new(),
            market_index: AHashMap::new(),
            events: Vec::new(),
            free_events: Vec::new(),
            markets: Vec::new(),
            free_markets: Vec::new(),
            free_rows: Vec::new(),
            high: 0,
            live: 0,
            version: String::new(),
            healthy: true,
            line_gen: 0,
            ended: Vec::new(),
            retention_ns: None,
            scratch: Scratch::default(),
        }
    }

    pub fn event_count(&self) -> usize {
        self.by_id.len()
    }

    pub fn event_slot(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    pub fn event(&self, slot: u32) -> Option<&Event> {
        self.events.get(slot as usize).and_then(|e| e.as_ref())
    }

    pub fn event_by_id(&self, id: &str) -> Option<&Event> {
        self.event_slot(id).and_then(|s| self.event(s))
    }

    pub fn market(&self, slot: u32) -> Option<&Market> {
        self.markets.get(slot as usize).and_then(|m| m.as_ref())
    }

    pub fn event_ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(|k| k.as_ref())
    }

    pub fn market_odds(&self, slot: u32) -> impl Iterator<Item = (&str, u32)> {
        self.market(slot).into_iter().flat_map(|m| m.odds.iter().map(|o| (o.id.as_str(), o.row)))
    }

    /// `(market id, market slot)` of each market of an event.
    pub fn market_slots<'s>(&'s self, e: &'s Event) -> impl Iterator<Item = (&'s str, u32)> + 's {
        e.markets.iter().map(|&s| (self.markets[s as usize].as_ref().expect("live market").id.as_str(), s))
    }

    /// The slot of one market of an event.
    pub fn market_slot(&self, event: &str, market: &str) -> Option<u32> {
        let ev = self.event_slot(event)?;
        self.market_index.get(&(ev, Id::new(market))).copied()
    }

    pub fn row(&self, event: &str, market: &str, odd: &str) -> Option<u32> {
        let m = self.market(self.market_slot(event, market)?)?;
        let odd = OddId::new(odd);
        m.odds.iter().find(|o| o.id == odd).map(|o| o.row)
    }

    /// (sport_event_id, market_id, odd_id) of a live row.
    pub fn key(&mut self, row: usize) -> Option<(&str, &str, &str)> {
        if row >= self.high {
            return None;
        }
        let c = self.store.cols();
        let (ms, es) = (c.market[row], c.event[row]);
        if ms < 0 {
            return None;
        }
        let m = self.markets[ms as usize].as_ref()?;
        let e = self.events[es as usize].as_ref()?;
        let o = m.odds.iter().find(|o| o.row as usize == row)?;
        Some((&e.id, m.id.as_str(), o.id.as_str()))
    }

    fn alloc_row(&mut self) -> u32 {
        if let Some(r) = self.free_rows.pop() {
            return r;
        }
        if self.high == self.store.capacity() {
            self.store.grow((self.high * 2).max(64));
        }
        self.high += 1;
        (self.high - 1) as u32
    }

    fn free_row(&mut self, row: u32) {
        let c = self.store.cols();
        let r = row as usize;
        c.value[r] = f64::NAN;
        c.probability[r] = f64::NAN;
        c.status[r] = -1;
        c.is_active[r] = false;
        c.event[r] = NO;
        c.market[r] = NO;
        self.free_rows.push(row);
        self.live -= 1;
    }

    /// Free a market's rows and slot and forget its id (the event's list is the caller's).
    fn free_market(&mut self, slot: u32) -> u32 {
        let m = self.markets[slot as usize].take().expect("live market");
        self.market_index.remove(&(m.event, m.id));
        let n = m.odds.len() as u32;
        for o in &m.odds {
            self.free_row(o.row);
        }
        self.free_markets.push(slot);
        n
    }

    fn alloc_market(&mut self, m: Market) -> u32 {
        match self.free_markets.pop() {
            Some(s) => {
                self.markets[s as usize] = Some(m);
                s
            }
            None => {
                self.markets.push(Some(m));
                (self.markets.len() - 1) as u32
            }
        }
    }

    /// Replace one market of an event with the parsed one (its odds exactly). Odds keep
    /// their rows by id; a new id takes the row of an odd that is gone (rows reused by
    /// position, so a reshaped market allocates nothing); the rest are freed in place.
    /// `known` is the market's slot when the caller already looked it up.
    fn put_market(
        &mut self,
        ev: u32,
        pm: &ParsedMarket<'_>,
        known: Option<u32>,
        odds: &[ParsedOdd<'_>],
        out: &mut Outcome,
    ) {
        let slot = match known.or_else(|| self.market_index.get(&(ev, Id::new(&pm.id))).copied()) {
            Some(s) => s,
            None => {
                let mid = Id::new(&pm.id);
                let s = self.alloc_market(Market {
                    id: mid.clone(),
                    event: ev,
                    status: 0,
                    type_id: 0,
                    specifiers: Id::default(),
                    odds: SmallVec::new(),
                    seen: 0,
                });
                self.market_index.insert((ev, mid), s);
                self.events[ev as usize].as_mut().unwrap().markets.push(s);
                s
            }
        };
        let new = &odds[pm.odds.clone()];
        let line_gen = self.line_gen;
        let m = self.markets[slot as usize].as_mut().unwrap();
        m.status = pm.status;
        m.type_id = pm.type_id;
        if m.specifiers.as_str() != pm.specifiers.as_ref() {
            m.specifiers = Id::new(&pm.specifiers);
        }
        m.seen = line_gen;
        // Nearly every update sends the same odds in the same order: write them in place.
        let same = m.odds.len() == new.len() && m.odds.iter().zip(new).all(|(o, po)| o.id.is(&po.id));
        if same {
            // The rows already name this event and market: only their values change (two
            // fewer column lines touched per market).
            let c = self.store.cols();
            for (o, po) in m.odds.iter().zip(new) {
                let r = o.row as usize;
                c.value[r] = po.value;
                c.probability[r] = po.probability;
                c.status[r] = po.status;
                c.is_active[r] = po.is_active;
            }
            out.rows_written += new.len() as u32;
            out.markets += 1;
            return;
        }
        self.reshape_market(ev, slot, new, out);
        out.markets += 1;
    }

    #[inline(always)]
    fn write_row(c: &mut Cols<'_>, r: usize, po: &ParsedOdd<'_>, ev: u32, slot: u32) {
        c.value[r] = po.value;
        c.probability[r] = po.probability;
        c.status[r] = po.status;
        c.is_active[r] = po.is_active;
        c.event[r] = ev as i32;
        c.market[r] = slot as i32;
    }

    /// A market whose odds changed shape. Odds keep their rows by id; a new id takes the row
    /// of an odd that is gone (rows reused by position, so a reshaped market allocates
    /// nothing); the rest are freed, and the list filtered in place.
    fn reshape_market(&mut self, ev: u32, slot: u32, new: &[ParsedOdd<'_>], out: &mut Outcome) {
        let ids: SmallVec<[OddId; 8]> = new.iter().map(|po| OddId::new(&po.id)).collect();
        let m = self.markets[slot as usize].as_mut().unwrap();
        let before = m.odds.len();
        // The odds this market had that the line keeps (by id); the others are gone.
        let mut kept: SmallVec<[bool; 8]> = m.odds.iter().map(|o| ids.contains(&o.id)).collect();
        let mut reuse = 0; // next gone odd whose row a new id may take
        for (po, id) in new.iter().zip(&ids) {
            let m = self.markets[slot as usize].as_mut().unwrap();
            let row = match m.odds.iter().position(|o| o.id == *id) {
                Some(j) => m.odds[j].row,
                None => {
                    while reuse < before && kept[reuse] {
                        reuse += 1;
                    }
                    if reuse < before {
                        // The gone odd's row now holds this one: one removed, one written.
                        kept[reuse] = true;
                        m.odds[reuse].id = id.clone();
                        out.rows_removed += 1;
                        m.odds[reuse].row
                    } else {
                        let row = self.alloc_row();
                        self.live += 1;
                        let m = self.markets[slot as usize].as_mut().unwrap();
                        m.odds.push(OddSlot { id: id.clone(), row });
                        row
                    }
                }
            };
            Self::write_row(&mut self.store.cols(), row as usize, po, ev, slot);
            out.rows_written += 1;
        }
        if kept.iter().any(|k| !k) {
            let m = self.markets[slot as usize].as_mut().unwrap();
            let mut j = 0;
            let mut freed: SmallVec<[u32; 8]> = SmallVec::new();
            m.odds.retain(|o| {
                let keep = j >= before || kept[j];
                j += 1;
                if !keep {
                    freed.push(o.row);
                }
                keep
            });
            for row in freed {
                self.free_row(row);
                out.rows_removed += 1;
            }
        }
    }

    fn new_event(&mut self, id: &str) -> u32 {
        let ev = Event {
            id: id.into(),
            sport_id: "".into(),
            status: 0,
            bet_stop: false,
            fixture: Box::new([]),
            scores: None,
            game_state: None,
            extensions: None,
            version: String::new(),
            ended_at_ns: None,
            markets: Vec::new(),
        };
        let slot = match self.free_events.pop() {
            Some(s) => {
                self.events[s as usize] = Some(ev);
                s
            }
            None => {
                self.events.push(Some(ev));
                (self.events.len() - 1) as u32
            }
        };
        self.by_id.insert(id.into(), slot);
        slot
    }

    /// Apply a parsed line; cannot fail, so a line is applied whole or (on parse error) not at all.
    pub fn apply_parsed(&mut self, line: &[u8], log: &ParsedLog<'_>) -> Outcome {
        let kind = log.kind.expect("parsed log has a kind");
        let mut out = Outcome::default();
        self.line_gen += 1;
        if kind == Kind::Heartbeat {
            out.known = true;
            return out;
        }
        let sid = log.sport_event_id.as_deref().expect("parsed log has an id");
        let span = |r: &Option<Range<usize>>| r.as_ref().map(|r| Box::<[u8]>::from(&line[r.clone()]));
        let slot = match (kind, self.event_slot(sid)) {
            (Kind::Snapshot | Kind::Added, Some(s)) => Some(s),
            (Kind::Snapshot | Kind::Added, None) => Some(self.new_event(sid)),
            (_, s) => s,
        };
        if let Some(v) = log.version.as_deref() {
            self.version.clear();
            self.version.push_str(v);
        }
        let Some(ev) = slot else {
            return out;
        };
        out.known = true;
        out.event = Some(ev);
        match kind {
            Kind::Snapshot | Kind::Added => {
                for pm in &log.markets {
                    self.put_market(ev, pm, None, &log.odds, &mut out);
                }
                // Markets the snapshot did not write are gone (the list is filtered in place).
                let gen = self.line_gen;
                let mut slots = std::mem::take(&mut self.events[ev as usize].as_mut().unwrap().markets);
                slots.retain(|&s| {
                    let keep = self.markets[s as usize].as_ref().unwrap().seen == gen;
                    if !keep {
                        out.rows_removed += self.free_market(s);
                    }
                    keep
                });
                let e = self.events[ev as usize].as_mut().unwrap();
                e.markets = slots;
                e.fixture = span(&log.fixture).unwrap_or_default();
                e.scores = span(&log.scores);
                e.game_state = span(&log.game_state);
                e.extensions = span(&log.extensions);
                e.bet_stop = log.bet_stop.unwrap_or(false);
                if let Some(s) = &log.sport_id {
                    if e.sport_id.as_ref() != s.as_ref() {
                        e.sport_id = s.as_ref().into();
                    }
                }
                self.set_status(ev, log.fixture_status.unwrap_or(0), log.timestamp_ns);
            }
            Kind::Markets => {
                // Look the line's markets up first and ask for their memory, so that their
                // cache misses overlap instead of following one another. (No market goes
                // away during an update: the slots stay valid; one the line adds is looked
                // up again by put_market, so a repeated id finds it.)
                let mut found: SmallVec<[Option<u32>; 8]> = SmallVec::new();
                for pm in &log.markets {
                    let slot = self.market_index.get(&(ev, Id::new(&pm.id))).copied();
                    if let Some(s) = slot {
                        let m = &self.markets[s as usize];
                        crate::prefetch((m as *const Option<Market>).cast(), std::mem::size_of::<Option<Market>>());
                    }
                    found.push(slot);
                }
                for (pm, slot) in log.markets.iter().zip(found) {
                    self.put_market(ev, pm, slot, &log.odds, &mut out);
                }
            }
            Kind::BetStop => self.events[ev as usize].as_mut().unwrap().bet_stop = log.bet_stop.unwrap(),
            Kind::Fixture => {
                self.events[ev as usize].as_mut().unwrap().fixture = span(&log.fixture).unwrap();
                self.set_status(ev, log.fixture_status.unwrap(), log.timestamp_ns);
            }
            Kind::Scores => self.events[ev as usize].as_mut().unwrap().scores = span(&log.scores),
            Kind::GameState => self.events[ev as usize].as_mut().unwrap().game_state = span(&log.game_state),
            Kind::Extensions => self.events[ev as usize].as_mut().unwrap().extensions = span(&log.extensions),
            Kind::Rollback | Kind::Unknown | Kind::Heartbeat => {}
        }
        if let Some(v) = log.version.as_deref() {
            let e = self.events[ev as usize].as_mut().unwrap();
            e.version.clear();
            e.version.push_str(v);
        }
        if let (Some(retention), Some(now)) = (self.retention_ns, log.timestamp_ns) {
            if !self.ended.is_empty() {
                self.evict_ended(now.saturating_sub(retention));
            }
        }
        out
    }

    fn set_status(&mut self, ev: u32, status: i8, ts: Option<i64>) {
        let e = self.events[ev as usize].as_mut().unwrap();
        let was = is_terminal(e.status) && e.ended_at_ns.is_some();
        e.status = status;
        if is_terminal(status) {
            if !was {
                e.ended_at_ns = Some(ts.unwrap_or(0));
                self.ended.push(ev);
            }
        } else {
            e.ended_at_ns = None;
        }
    }

    /// Parse and apply one line.
    pub fn apply(&mut self, line: &[u8]) -> Result<Outcome, LogError> {
        let mut log = self.scratch.log();
        let parsed = parse_log_into(line, &mut log);
        let out = parsed.map(|_| self.apply_parsed(line, &log));
        self.scratch.keep(log);
        out
    }

    /// Drop a sport event with all its markets and rows. True when it was there.
    pub fn remove_event(&mut self, id: &str) -> bool {
        let Some(slot) = self.by_id.remove(id) else {
            return false;
        };
        let ev = self.events[slot as usize].take().unwrap();
        for &m in &ev.markets {
            self.free_market(m);
        }
        self.free_events.push(slot);
        true
    }

    /// Evict events that ended (by their log timestamps) at or before `before_ns`.
    pub fn evict_ended(&mut self, before_ns: i64) -> usize {
        let mut evicted = 0;
        let ended = std::mem::take(&mut self.ended);
        let mut keep = Vec::with_capacity(ended.len());
        for slot in ended {
            let Some(e) = self.events[slot as usize].as_ref() else { continue };
            match e.ended_at_ns {
                None => continue, // reopened
                Some(t) if t <= before_ns => {
                    let id = e.id.clone();
                    self.remove_event(&id);
                    evicted += 1;
                }
                Some(_) => keep.push(slot),
            }
        }
        // A slot may have been reused by a new event after eviction; dedupe keeps it listed once.
        keep.sort_unstable();
        keep.dedup();
        self.ended = keep;
        evicted
    }

    /// Forget everything (a full resync rebuilds from `/all`); columns keep their capacity.
    pub fn clear(&mut self) {
        let ids: Vec<Box<str>> = self.by_id.keys().cloned().collect();
        for id in ids {
            self.remove_event(&id);
        }
        self.free_rows.clear();
        self.free_events.clear();
        self.free_markets.clear();
        self.events.clear();
        self.markets.clear();
        self.market_index.clear();
        self.ended.clear();
        self.high = 0;
        self.live = 0;
        self.version.clear();
    }

    pub fn get(&mut self, event: &str, market: &str, odd: &str) -> Option<(f64, f64, i8, bool)> {
        let r = self.row(event, market, odd)? as usize;
        let c = self.store.cols();
        Some((c.value[r], c.probability[r], c.status[r], c.is_active[r]))
    }

    fn event_open(e: &Event) -> bool {
        (e.status == 0 || e.status == 1) && !e.bet_stop
    }

    pub fn is_bettable(&mut self, event: &str, market: &str, odd: &str) -> bool {
        if !self.healthy {
            return false;
        }
        let Some(e) = self.event_by_id(event) else { return false };
        if !Self::event_open(e) {
            return false;
        }
        let Some(ms) = self.market_slot(event, market) else { return false };
        if self.markets[ms as usize].as_ref().unwrap().status != 0 {
            return false;
        }
        match self.get(event, market, odd) {
            Some((_, _, status, active)) => status == 0 && active,
            None => false,
        }
    }

    /// The spec's bettable rule for every row in `0..high` at once.
    pub fn bettable_into(&mut self, out: &mut [bool]) {
        if !self.healthy {
            out.fill(false);
            return;
        }
        let open_events: Vec<bool> = self.events.iter().map(|e| e.as_ref().is_some_and(Self::event_open)).collect();
        let open_markets: Vec<bool> = self
            .markets
            .iter()
            .map(|m| m.as_ref().is_some_and(|m| m.status == 0 && open_events[m.event as usize]))
            .collect();
        let c = self.store.cols();
        for (r, o) in out.iter_mut().enumerate() {
            let m = c.market[r];
            *o = m >= 0 && c.status[r] == 0 && c.is_active[r] && open_markets[m as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> OddsCore<VecStore> {
        OddsCore::new(VecStore::default())
    }

    #[test]
    fn a_market_with_its_odds_inline_stays_small() {
        // Cache lines per market touched by an update: keep the slot compact.
        assert_eq!(std::mem::size_of::<OddSlot>(), 24);
        assert!(std::mem::size_of::<Option<Market>>() <= 192, "{}", std::mem::size_of::<Option<Market>>());
    }

    fn snap(id: &str, version: &str, markets: &str) -> String {
        format!(
            r#"{{"sport_event_id":"{id}","sport_id":"football","version":"{version}","timestamp_ns":1,"event_type":"sport_event_snapshot","payload":{{"fixture":{{"status":1,"type":0}},"markets":{markets},"bet_stop":false,"game_state":{{}},"competitors_score":[],"extensions":{{}}}}}}"#
        )
    }

    const M1: &str = r#"{"id":"1","status":0,"type_id":1,"specifiers":"","odds":[{"id":"1","value":"2.27","probability":"0.417","status":0,"is_active":true},{"id":"2","value":"1.62","status":0,"is_active":true}]}"#;
    const M2: &str = r#"{"id":"18h1","status":0,"type_id":18,"specifiers":"total=1.5","odds":[{"id":"1","value":"3","status":0,"is_active":false}]}"#;

    #[test]
    fn snapshot_then_update_replaces_markets_and_odds() {
        let mut t = table();
        t.apply(snap("e1", "v1", &format!("[{M1},{M2}]")).as_bytes()).unwrap();
        assert_eq!(t.live, 3);
        assert_eq!(t.get("e1", "1", "1"), Some((2.27, 0.417, 0, true)));
        assert!(t.get("e1", "1", "2").unwrap().1.is_nan());
        assert!(t.is_bettable("e1", "1", "1"));
        assert!(!t.is_bettable("e1", "18h1", "1"));
        let upd = r#"{"sport_event_id":"e1","version":"v2","timestamp_ns":2,"event_type":"markets_updated","payload":[{"id":"1","status":0,"odds":[{"id":"2","value":"1.5","status":0,"is_active":true}]}]}"#;
        let o = t.apply(upd.as_bytes()).unwrap();
        assert_eq!((o.rows_written, o.rows_removed, o.markets), (1, 1, 1));
        assert_eq!(t.get("e1", "1", "1"), None);
        assert_eq!(t.live, 2);
        assert_eq!(t.version, "v2");
        // A re-snapshot without market 18h1 removes it; its row is reused.
        t.apply(snap("e1", "v3", &format!("[{M1}]")).as_bytes()).unwrap();
        assert_eq!(t.get("e1", "18h1", "1"), None);
        assert_eq!(t.live, 2);
        assert_eq!(t.high, 3);
    }

    fn upd_market(version: &str, market: &str) -> String {
        format!(
            r#"{{"sport_event_id":"e1","version":"{version}","event_type":"markets_updated","payload":[{market}]}}"#
        )
    }

    fn odds_of(t: &mut OddsCore<VecStore>, market: &str) -> Vec<(String, u32)> {
        let slot = t.market_slot("e1", market).unwrap();
        let mut v: Vec<(String, u32)> = t.market_odds(slot).map(|(k, r)| (k.to_string(), r)).collect();
        v.sort();
        v
    }

    #[test]
    fn reshaped_markets_reuse_their_rows_by_position() {
        let mut t = table();
        t.apply(snap("e1", "v1", &format!("[{M1}]")).as_bytes()).unwrap();
        let rows: Vec<u32> = odds_of(&mut t, "1").iter().map(|o| o.1).collect();
        // Odd "1" stays, "2" goes, "3" and "4" come: "3" takes the row of "2", "4" a new one.
        let m = r#"{"id":"1","status":0,"specifiers":"total=2.5","odds":[{"id":"3","value":"3","status":0,"is_active":true},{"id":"1","value":"1.5","status":0,"is_active":true},{"id":"4","value":"4","status":0,"is_active":true}]}"#;
        let o = t.apply(upd_market("v2", m).as_bytes()).unwrap();
        assert_eq!((o.rows_written, o.rows_removed, o.markets), (3, 1, 1));
        assert_eq!(odds_of(&mut t, "1"), [("1".into(), rows[0]), ("3".into(), rows[1]), ("4".into(), 2)]);
        assert_eq!((t.live, t.high), (3, 3));
        assert_eq!(t.get("e1", "1", "3").unwrap().0, 3.0);
        assert_eq!(t.key(rows[1] as usize), Some(("e1", "1", "3")));
        assert_eq!(t.market(t.market_slot("e1", "1").unwrap()).unwrap().specifiers.as_str(), "total=2.5");
        // Down to one odd: two rows freed in place, the market keeps the survivor's row.
        let m = r#"{"id":"1","status":0,"odds":[{"id":"4","value":"5","status":0,"is_active":true}]}"#;
        let o = t.apply(upd_market("v3", m).as_bytes()).unwrap();
        assert_eq!((o.rows_written, o.rows_removed), (1, 2));
        assert_eq!(odds_of(&mut t, "1"), [("4".into(), 2)]);
        assert_eq!((t.live, t.free_rows.len()), (1, 2));
        // A long id (boxed, not inline) and a repeated id map to one row.
        let long = "x".repeat(40);
        let m = format!(
            r#"{{"id":"{long}","status":0,"odds":[{{"id":"{long}","value":"2","status":0,"is_active":true}},{{"id":"{long}","value":"3","status":0,"is_active":true}}]}}"#
        );
        let o = t.apply(upd_market("v4", &m).as_bytes()).unwrap();
        assert_eq!((o.rows_written, o.rows_removed), (2, 0));
        assert_eq!(t.get("e1", &long, &long).unwrap().0, 3.0);
        assert_eq!(t.live, 2);
        // A re-snapshot drops both markets from the flat index.
        t.apply(snap("e1", "v5", "[]").as_bytes()).unwrap();
        assert_eq!((t.live, t.market_slot("e1", "1"), t.market_slot("e1", &long)), (0, None, None));
        assert!(t.market_index.is_empty());
    }

    #[test]
    fn bet_stop_and_health_gate_bettable() {
        let mut t = table();
        t.apply(snap("e1", "v1", &format!("[{M1}]")).as_bytes()).unwrap();
        let mut mask = vec![false; t.high];
        t.bettable_into(&mut mask);
        assert_eq!(mask, vec![true, true]);
        t.apply(
            br#"{"sport_event_id":"e1","version":"v2","event_type":"bet_stop_updated","payload":{"bet_stop":true}}"#,
        )
        .unwrap();
        t.bettable_into(&mut mask);
        assert_eq!(mask, vec![false, false]);
        assert!(!t.is_bettable("e1", "1", "1"));
        t.apply(
            br#"{"sport_event_id":"e1","version":"v3","event_type":"bet_stop_updated","payload":{"bet_stop":false}}"#,
        )
        .unwrap();
        t.healthy = false;
        t.bettable_into(&mut mask);
        assert_eq!(mask, vec![false, false]);
    }

    #[test]
    fn malformed_lines_change_nothing_and_name_the_line() {
        let mut t = table();
        t.apply(snap("e1", "v1", &format!("[{M1}]")).as_bytes()).unwrap();
        let bad = r#"{"sport_event_id":"e1","version":"v2","event_type":"markets_updated","payload":[{"id":"1","status":0,"odds":[{"id":"1","value":"2.0","status":0,"is_active":true},{"id":"2","value":2,"status":0,"is_active":true}]}]}"#;
        let e = t.apply(bad.as_bytes()).unwrap_err();
        assert_eq!(e.sport_event_id.as_deref(), Some("e1"));
        assert_eq!(e.version.as_deref(), Some("v2"));
        assert!(e.message.contains("payload[0].odds[1].value"), "{}", e.message);
        assert_eq!(t.get("e1", "1", "1"), Some((2.27, 0.417, 0, true)));
        assert_eq!(t.version, "v1");
        // The payload before the id: the identity is still reported.
        let e = t
            .apply(br#"{"event_type":"fixture_updated","payload":{"status":"x"},"sport_event_id":"e9","version":"v9"}"#)
            .unwrap_err();
        assert_eq!((e.sport_event_id.as_deref(), e.version.as_deref()), (Some("e9"), Some("v9")));
        assert!(t.apply(b"{\"event_type\":\"heartbeat\"").is_err());
        assert!(t.apply(br#"{"version":"v","payload":[]}"#).unwrap_err().message.contains("event_type"));
    }

    #[test]
    fn unknown_events_are_reported_and_version_advances() {
        let mut t = table();
        let o = t
            .apply(br#"{"sport_event_id":"nope","version":"v7","event_type":"markets_updated","payload":[]}"#)
            .unwrap();
        assert!(!o.known);
        assert_eq!(t.version, "v7");
    }

    #[test]
    fn ended_events_are_evicted_and_rows_reused() {
        let mut t = table();
        t.retention_ns = Some(100);
        t.apply(snap("e1", "v1", &format!("[{M1},{M2}]")).as_bytes()).unwrap();
        t.apply(br#"{"sport_event_id":"e1","version":"v2","timestamp_ns":1000,"event_type":"fixture_updated","payload":{"status":3}}"#).unwrap();
        assert_eq!(t.event_count(), 1);
        t.apply(br#"{"event_type":"heartbeat","timestamp_ns":5000}"#).unwrap();
        t.apply(snap("e2", "v3", &format!("[{M1}]")).as_bytes()).unwrap(); // ts 1: not yet
        assert_eq!(t.event_count(), 2);
        let late = r#"{"sport_event_id":"e2","version":"v4","timestamp_ns":1101,"event_type":"bet_stop_updated","payload":{"bet_stop":true}}"#;
        t.apply(late.as_bytes()).unwrap();
        assert_eq!(t.event_count(), 1);
        assert_eq!(t.live, 2);
        t.apply(snap("e3", "v5", &format!("[{M2}]")).as_bytes()).unwrap();
        assert_eq!(t.high, 5, "freed rows are reused");
    }

    #[test]
    fn numbers_orjson_cannot_read_back_are_refused_at_their_path() {
        let big = "1".repeat(400);
        let cases = [
            (snap_with("e1", &format!(r#""extensions":{{"a":[1,{{"b":{big}}}]}}"#)), "payload.extensions.a[1].b"),
            (snap_with("e1", r#""game_state":{"t":1e400}"#), "payload.game_state.t"),
            (snap_with("e1", r#""competitors_score":[-18446744073709551617]"#), "payload.competitors_score[0]"),
            (snap_with("e1", r#""other":{"x":18446744073709551616}"#), "payload.other.x"),
            (upd("extensions_updated", &format!(r#"{{"w":{big}}}"#)), "payload.w"),
            (upd("competitor_scores_updated", &format!("[{big}]")), "payload[0]"),
            (upd("odds_changed_v9", &big), "payload"),
            (upd("markets_updated", &format!(r#"[{{"id":"1","status":0,"odds":[],"x":[{big}]}}]"#)), "payload[0].x[0]"),
            (upd("markets_updated", r#"[{"id":"1","status":1e400,"odds":[]}]"#), "payload[0].status"),
            (upd("fixture_updated", &format!(r#"{{"status":1,"t":{big}}}"#)), "payload.t"),
            (format!(r#"{{"sport_event_id":"e1","version":"v2","event_type":"heartbeat","x":{big}}}"#), "x"),
            (
                format!(r#"{{"payload":{{"a":{big}}},"sport_event_id":"e1","version":"v2","event_type":"x"}}"#),
                "payload.a",
            ),
            (
                r#"{"sport_event_id":"e1","version":"v2","timestamp_ns":1e400,"event_type":"heartbeat"}"#.into(),
                "timestamp_ns",
            ),
        ];
        for (line, field) in cases {
            let mut t = table();
            t.apply(snap("e1", "v1", &format!("[{M1}]")).as_bytes()).unwrap();
            let e = t.apply(line.as_bytes()).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{}", e.message);
            assert_eq!(t.version, "v1");
        }
        // Within [-2**63, 2**64-1] integers are read back exactly: accepted.
        let mut t = table();
        t.apply(snap_with("e1", r#""extensions":{"a":18446744073709551615,"b":-9223372036854775808}"#).as_bytes())
            .unwrap();
    }

    fn snap_with(id: &str, members: &str) -> String {
        format!(
            r#"{{"sport_event_id":"{id}","version":"v2","event_type":"sport_event_snapshot","payload":{{"fixture":{{"status":1}},"markets":[],{members}}}}}"#
        )
    }

    fn upd(kind: &str, payload: &str) -> String {
        format!(r#"{{"sport_event_id":"e1","version":"v2","event_type":"{kind}","payload":{payload}}}"#)
    }

    fn same_odds(a: &[ParsedOdd<'_>], b: &[ParsedOdd<'_>]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                (&x.id, x.value.to_bits(), x.probability.to_bits(), x.status, x.is_active)
                    == (&y.id, y.value.to_bits(), y.probability.to_bits(), y.status, y.is_active)
            })
    }

    /// Whatever the compact fast path accepts, the general walker reads the same way: same
    /// market, odds (bit for bit) and end. Checked on markets as the feed writes them, cut at
    /// every byte, and with every byte replaced by each of the characters that matter.
    #[test]
    fn the_compact_fast_path_reads_exactly_what_the_general_walker_reads() {
        let markets = [
            M1,
            M2,
            r#"{"id":"589h14_1","status":0,"odds":[{"id":"1","value":"2.55","status":0,"is_active":true},{"id":"3","value":"3.21","status":0,"template":"{$competitor2}","is_active":false}],"type_id":589,"specifiers":"halfnr=1&total=1.5"}"#,
            r#"{"id":"20","status":1,"odds":[{"id":"1","value":"1.73","probability":"0.5350","status":0,"template":"draw","is_active":true},{"id":"2","value":"123456789012345","probability":null,"status":3,"is_active":true}],"type_id":20,"specifiers":""}"#,
            r#"{"id":"x\u00e9","status":0,"type_id":0,"specifiers":"a\"b","odds":[{"id":"\u0031","value":"0.5","probability":"1","probability":null,"status":0,"is_active":true,"id":"2"}],"odds":[]}"#,
        ];
        let replacements = b" \t\"\\0159-.e,:}]{[nxt\x01\xc3";
        let mut checked = 0;
        let mut agree = |text: &[u8]| {
            let mut buf = text.to_vec();
            buf.extend_from_slice(b"]}                ");
            let mut fast_odds = Vec::new();
            let mut p = Parser::new(&buf);
            if buf[0] != b'{' {
                return;
            }
            let Some(m) = parse_market_fast(&mut p, &mut fast_odds) else { return };
            let mut general_odds = Vec::new();
            let mut q = Parser::new(&buf);
            let g = parse_market(&mut q, &mut general_odds)
                .unwrap_or_else(|e| panic!("fast path accepted what the walker refuses ({e:?}): {text:?}"));
            assert_eq!((m, p.pos), (g, q.pos), "{:?}", String::from_utf8_lossy(text));
            assert!(same_odds(&fast_odds, &general_odds), "{:?}", String::from_utf8_lossy(text));
            checked += 1;
        };
        for m in markets {
            let m = m.as_bytes();
            agree(m);
            for cut in 0..m.len() {
                agree(&m[..cut]);
            }
            for i in 0..m.len() {
                for &r in replacements {
                    let mut v = m.to_vec();
                    v[i] = r;
                    agree(&v);
                    v.insert(i, r);
                    agree(&v);
                }
            }
        }
        assert!(checked > 1000, "{checked}");
        // The feed's own markets take the fast path.
        for m in &markets[..4] {
            let (text, mut odds) = (format!("{m}]}}"), Vec::new());
            assert!(parse_market_fast(&mut Parser::new(text.as_bytes()), &mut odds).is_some(), "{m}");
        }
    }

    /// A whole line read by `parse_log_into` (top-level fast path, then the walker) and by
    /// the walker alone: the same log, or the same error, for lines as the feed writes them,
    /// cut at every byte and with every byte replaced or inserted.
    #[test]
    fn the_top_level_fast_path_reads_exactly_what_the_walker_reads() {
        let general = |line: &[u8]| -> Result<String, LogError> {
            let mut log = ParsedLog::default();
            parse_top(&mut Parser::new(line), &mut log).map_err(|e| log_error(line, &log, e))?;
            Ok(format!("{log:?}"))
        };
        let both = |line: &[u8]| -> Result<String, LogError> {
            let mut scratch = Scratch::default();
            let mut log = scratch.log();
            parse_log_into(line, &mut log)?;
            Ok(format!("{log:?}"))
        };
        let lines = [
            snap("e1", "v1", &format!("[{M1},{M2}]")),
            upd_market("v2", M1),
            r#"{"sport_event_id":"e1","sport_id":"tennis","version":"v3","timestamp_ns":1795331358930669039,"event_type":"bet_stop_updated","payload":{"bet_stop":true}}"#.into(),
            r#"{"event_type":"heartbeat","timestamp_ns":5000}"#.into(),
            r#"{"sport_event_id":"e\u0031","version":"v4","timestamp_ns":7,"event_type":"fixture_updated","payload":{"status":3,"type":0}}"#.into(),
            r#"{"sport_event_id":"e1","version":"v5","event_type":"odds_changed_v9","payload":[1,{"a":null}]}"#.into(),
        ];
        let replacements = b" \"\\019-.e,:}]{[nx\xc3";
        let mut fast = 0;
        for line in &lines {
            let line = line.as_bytes();
            let mut check = |v: &[u8]| {
                assert_eq!(both(v), general(v), "{:?}", String::from_utf8_lossy(v));
                let mut log = ParsedLog::default();
                fast += parse_top_fast(&mut Parser::new(v), &mut log).is_some() as usize;
            };
            check(line);
            for cut in 0..line.len() {
                check(&line[..cut]);
            }
            for i in 0..line.len() {
                for &r in replacements {
                    let mut v = line.to_vec();
                    v[i] = r;
                    check(&v);
                    v.insert(i, r);
                    check(&v);
                }
            }
        }
        assert!(fast > 1000, "{fast}");
        for line in &lines {
            let mut log = ParsedLog::default();
            assert!(parse_top_fast(&mut Parser::new(line.as_bytes()), &mut log).is_some(), "{line}");
        }
    }

    #[test]
    fn decimals_are_exact_and_strict() {
        for (s, v) in [
            ("2.27", 2.27),
            ("1", 1.0),
            ("12.5", 12.5),
            ("0.1", 0.1),
            ("1e2", 100.0),
            ("0.30000000000000004", 0.30000000000000004),
            ("123456789.012345", 123456789.012345),
            ("9007199254740993", 9007199254740992.0),
            ("-1.5", -1.5),
            ("0.0001", 0.0001),
        ] {
            let line = format!(
                r#"{{"sport_event_id":"e","version":"v","event_type":"markets_updated","payload":[{{"id":"m","status":0,"odds":[{{"id":"o","value":"{s}","status":0,"is_active":true}}]}}]}}"#
            );
            let log = parse_log(line.as_bytes()).unwrap();
            assert_eq!(log.odds[0].value, v);
        }
        for s in ["", "1.", "abc", "1e999", " 1", "NaN", "0x10", "01", "1.2.3", ".5", "1 "] {
            let line = format!(
                r#"{{"sport_event_id":"e","version":"v","event_type":"markets_updated","payload":[{{"id":"m","status":0,"odds":[{{"id":"o","value":"{s}","status":0,"is_active":true}}]}}]}}"#
            );
            assert!(parse_log(line.as_bytes()).is_err(), "{s:?}");
        }
    }
}
