//! BETCORE games table as plain Rust: read one SignalR hub record (strict JSON, typed fields
//! straight from the bytes, keys dispatched by bytes) and apply a `WholeGamesInfoSubscribe`
//! update to a table of games whose per-row columns live in a `GamesStore` (numpy arrays
//! under Python, Vecs under cargo test).
//!
//! `apply` is atomic per record: the record is parsed and checked into reused scratch
//! buffers first, then applied by code that cannot fail.
//!
//! Errors follow the order a JSON-first reader sees them: a record that is not strict
//! RFC 8259 JSON (depth limit included) is a syntax error (`field` None) wherever the first
//! schema problem was; otherwise the first schema problem in document order (a missing
//! required field is noticed at the end of its object) names its JSON path.

use std::fmt::Write as _;

use ahash::AHashMap;

use crate::json::{JsonError, Number, Parser, SkipError, WalkError, NUMBER_OUT_OF_RANGE};

/// The hub method BETCORE pushes game updates with.
pub const TARGET: &str = "WholeGamesInfoSubscribe";

/// Game states after which a game is over (finished, review, cancelled).
pub fn is_terminal(state: i8) -> bool {
    matches!(state, 3..=5)
}

// ------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------

/// A record that could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct GamesError {
    pub message: String,
    pub offset: usize,
    /// JSON path of the offending value (`arguments[0].wgi[2].e[5].c`); None when the record
    /// is not valid JSON or not an object.
    pub field: Option<String>,
}

impl std::fmt::Display for GamesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(path) => write!(f, "{path}: {} at byte {}", self.message, self.offset),
            None => write!(f, "{} at byte {}", self.message, self.offset),
        }
    }
}

#[derive(Debug)]
enum Fail {
    Syntax(JsonError),
    /// `path` is built while unwinding: ".wgi" + "[2]" + ".e" ...
    Schema {
        path: String,
        message: String,
        offset: usize,
    },
}

impl From<JsonError> for Fail {
    #[inline]
    fn from(e: JsonError) -> Self {
        Fail::Syntax(e)
    }
}

/// BETCORE's wording of a member key that is not a string.
impl WalkError for Fail {
    const KEY: &'static str = "expected a string key";
}

impl Fail {
    #[cold]
    fn at(self, segment: impl FnOnce() -> String) -> Fail {
        match self {
            Fail::Schema { path, message, offset } => Fail::Schema { path: segment() + &path, message, offset },
            s => s,
        }
    }
}

type R<T> = Result<T, Fail>;

#[cold]
fn schema<T>(p: &Parser<'_>, message: String) -> R<T> {
    Err(Fail::Schema { path: String::new(), message, offset: p.pos })
}

#[cold]
fn wrong<T>(p: &Parser<'_>, want: &str) -> R<T> {
    schema(p, format!("expected {want}, got {}", p.describe_next()))
}

#[cold]
fn syntax<T>(p: &Parser<'_>, message: &str) -> R<T> {
    Err(Fail::Syntax(JsonError { message: message.into(), offset: p.pos }))
}

#[cold]
fn missing(p: &Parser<'_>, name: &str) -> Fail {
    Fail::Schema { path: format!(".{name}"), message: "missing".into(), offset: p.pos }
}

/// Prefix a member's errors with its key.
#[inline(always)]
fn member<T>(r: R<T>, name: &'static str) -> R<T> {
    r.map_err(|e| e.at(|| format!(".{name}")))
}

// ------------------------------------------------------------------------------------------
// Typed values
// ------------------------------------------------------------------------------------------

#[inline]
fn is_number_start(p: &Parser<'_>) -> bool {
    matches!(p.peek(), Some(b'-' | b'0'..=b'9'))
}

#[inline]
fn int(p: &mut Parser<'_>) -> R<i64> {
    if !is_number_start(p) {
        return wrong(p, "an integer");
    }
    let start = p.pos;
    match p.number()? {
        Number::Int(v) => Ok(v),
        Number::BigInt(_) => {
            p.pos = start;
            schema(p, "integer outside i64".into())
        }
        Number::Float(_) => {
            p.pos = start;
            schema(p, "expected an integer, got a fraction or an exponent".into())
        }
    }
}

#[inline]
fn small(p: &mut Parser<'_>) -> R<i8> {
    // One digit and a delimiter: every state and play status on the wire.
    if let (Some(&d @ b'0'..=b'9'), Some(b',' | b'}' | b' ' | b'\n' | b'\r' | b'\t')) =
        (p.buf.get(p.pos), p.buf.get(p.pos + 1))
    {
        p.pos += 1;
        return Ok((d - b'0') as i8);
    }
    let start = p.pos;
    let v = int(p)?;
    if !(0..=127).contains(&v) {
        p.pos = start;
        return schema(p, format!("{v} out of range 0..127"));
    }
    Ok(v as i8)
}

#[inline]
fn float(p: &mut Parser<'_>) -> R<f64> {
    if !is_number_start(p) {
        return wrong(p, "a number");
    }
    let start = p.pos;
    match p.number()? {
        Number::Float(v) => Ok(v),
        Number::Int(v) => Ok(v as f64),
        Number::BigInt(s) => match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => {
                p.pos = start;
                schema(p, "number out of range".into())
            }
        },
    }
}

#[inline]
fn boolean(p: &mut Parser<'_>) -> R<bool> {
    if !matches!(p.peek(), Some(b't' | b'f')) {
        return wrong(p, "a boolean");
    }
    Ok(p.boolean()?)
}

/// A string decoded into `arena`; returns its span there.
#[inline]
fn text(p: &mut Parser<'_>, arena: &mut String) -> R<(u32, u32)> {
    if p.peek() != Some(b'"') {
        return wrong(p, "a string");
    }
    let s = p.string()?;
    let a = arena.len() as u32;
    arena.push_str(&s);
    Ok((a, arena.len() as u32))
}

/// A game edition: a string, or an integer kept as its decimal text.
fn edition(p: &mut Parser<'_>, arena: &mut String) -> R<(u32, u32)> {
    if p.peek() == Some(b'"') {
        return text(p, arena);
    }
    if !is_number_start(p) {
        return wrong(p, "a string or an integer");
    }
    let start = p.pos;
    let a = arena.len() as u32;
    match p.number()? {
        Number::Int(v) => {
            let _ = write!(arena, "{v}");
        }
        Number::BigInt(s) => arena.push_str(s),
        Number::Float(_) => {
            p.pos = start;
            return schema(p, "expected a string or an integer, got a fraction or an exponent".into());
        }
    }
    Ok((a, arena.len() as u32))
}

/// A datetime: an ISO-8601 string or Unix seconds (a JSON number), as ns since the epoch.
fn datetime(p: &mut Parser<'_>) -> R<i64> {
    let start = p.pos;
    match p.peek() {
        Some(b'"') => {
            let s = p.string()?;
            match parse_iso8601(s.as_bytes()) {
                Some(v) => Ok(v),
                None => {
                    p.pos = start;
                    schema(p, format!("expected an ISO-8601 datetime within 1677..2262, got {s:?}"))
                }
            }
        }
        Some(b'-' | b'0'..=b'9') => {
            p.number()?;
            match seconds_to_ns(&p.buf[start..p.pos]) {
                Some(v) => Ok(v),
                None => {
                    p.pos = start;
                    schema(p, "Unix seconds outside the ns range of i64 (1677..2262)".into())
                }
            }
        }
        _ => wrong(p, "an ISO-8601 string or Unix seconds"),
    }
}

/// A value kept as raw JSON for orjson to decode when read (`open` is `[` or `{`), or null.
/// Numbers orjson cannot read back exactly are refused at their path.
fn kept(p: &mut Parser<'_>, depth: usize, open: u8, want: &str) -> R<Option<(usize, usize)>> {
    match p.peek() {
        Some(b'n') => {
            p.literal(b"null")?;
            Ok(None)
        }
        Some(c) if c == open => {
            let start = p.pos;
            p.skip_value_exact(depth).map_err(|e| match e {
                SkipError::Json(e) => Fail::Syntax(e),
                // An overflowing float is not JSON a strict reader accepts anywhere.
                SkipError::Number { error, .. } if error.message == NUMBER_OUT_OF_RANGE => Fail::Syntax(error),
                SkipError::Number { path, error } => {
                    Fail::Schema { path, message: error.message, offset: error.offset }
                }
            })?;
            Ok(Some((start, p.pos)))
        }
        _ => wrong(p, want),
    }
}

// ------------------------------------------------------------------------------------------
// Dates
// ------------------------------------------------------------------------------------------

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = (if y >= 0 { y } else { y - 399 }) / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)` as ns since the epoch; None if malformed, not a
/// calendar date or time, or outside the i64 ns range.
pub fn parse_iso8601(s: &[u8]) -> Option<i64> {
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || s[10] != b'T' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let (h, mi, sec) = (digits(&s[11..13])?, digits(&s[14..16])?, digits(&s[17..19])?);
    let mut i = 19;
    let mut frac = 0i64;
    if s[i] == b'.' {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        frac = digits(&s[start..i])? * 10i64.pow((9 - n) as u32);
    }
    let offset = match *s.get(i)? {
        b'Z' if s.len() == i + 1 => 0,
        sign @ (b'+' | b'-') if s.len() == i + 6 && s[i + 3] == b':' => {
            let (oh, om) = (digits(&s[i + 1..i + 3])?, digits(&s[i + 4..i + 6])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    i64::try_from(secs as i128 * 1_000_000_000 + frac as i128).ok()
}

/// A JSON number of Unix seconds (grammar-checked text) as ns, exactly: floor(x * 1e9).
/// None outside the i64 range.
pub fn seconds_to_ns(text: &[u8]) -> Option<i64> {
    let (neg, t) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    let int_end = t.iter().position(|c| !c.is_ascii_digit()).unwrap_or(t.len());
    let (int_part, mut rest) = t.split_at(int_end);
    let mut frac_part: &[u8] = &[];
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().position(|c| !c.is_ascii_digit()).unwrap_or(rest.len() - 1);
        frac_part = &rest[1..1 + n];
        rest = &rest[1 + n..];
    }
    let mut exp: i64 = 0;
    if matches!(rest.first(), Some(b'e' | b'E')) {
        let mut e = &rest[1..];
        let eneg = e.first() == Some(&b'-');
        if matches!(e.first(), Some(b'+' | b'-')) {
            e = &e[1..];
        }
        for &c in e {
            exp = (exp * 10 + (c - b'0') as i64).min(1 << 40);
        }
        if eneg {
            exp = -exp;
        }
    }
    // value = D * 10^scale, D the digits of int_part ++ frac_part.
    let scale = 9 + exp - frac_part.len() as i64;
    let all = int_part.iter().chain(frac_part.iter()).copied();
    let lead = all.clone().take_while(|&c| c == b'0').count();
    let n = int_part.len() + frac_part.len() - lead;
    if n == 0 {
        return Some(0);
    }
    let sig = all.skip(lead); // n significant digits, the first nonzero
    let (q, inexact): (u128, bool) = if scale >= 0 {
        if n as i64 + scale > 20 {
            return None;
        }
        let mut q = 0u128;
        for c in sig {
            q = q * 10 + (c - b'0') as u128;
        }
        (q * 10u128.pow(scale as u32), false)
    } else {
        let drop = -scale;
        if drop >= n as i64 {
            (0, true)
        } else {
            let keep = n - drop as usize;
            if keep > 20 {
                return None;
            }
            let mut q = 0u128;
            let mut inexact = false;
            for (k, c) in sig.enumerate() {
                if k < keep {
                    q = q * 10 + (c - b'0') as u128;
                } else if c != b'0' {
                    inexact = true;
                }
            }
            (q, inexact)
        }
    };
    let v = if neg { -(q as i128) - inexact as i128 } else { q as i128 };
    i64::try_from(v).ok()
}

// ------------------------------------------------------------------------------------------
// Parsing a record into reused scratch buffers
// ------------------------------------------------------------------------------------------

/// One parsed `wgi` entry; spans point into the record (raw JSON) or `Parsed::text`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PGame {
    pub id: i64,
    pub typ: i64,
    pub edition: (u32, u32),
    pub state: i8,
    pub play_status: i8,
    pub round: i64,
    pub last_round_id: i64,
    pub start: i64,
    pub finish: i64,
    pub results: Option<(usize, usize)>,
    pub hands: Option<(usize, usize)>,
    pub dealer: Option<(usize, usize)>,
    pub events: (u32, u32),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PEvent {
    pub typ: i64,
    pub coefficient: f64,
    pub blocked: bool,
    pub sn: (u32, u32),
}

/// A parsed `WholeGamesInfoSubscribe` payload. Kept by the table and reused record after
/// record, so steady-state parsing allocates nothing.
#[derive(Debug, Default)]
pub struct Parsed {
    pub sid: i64,
    pub tst: i64,
    pub bt: f64,
    pub im: bool,
    /// Every parsed game; `wgi` is the range of the last `wgi` member (a repeated key wins).
    pub games: Vec<PGame>,
    pub wgi: (usize, usize),
    pub events: Vec<PEvent>,
    /// Decoded editions and short numbers.
    pub text: String,
}

impl Parsed {
    fn clear(&mut self) {
        self.games.clear();
        self.events.clear();
        self.text.clear();
        self.wgi = (0, 0);
    }

    pub fn wgi(&self) -> &[PGame] {
        &self.games[self.wgi.0..self.wgi.1]
    }

    pub fn text(&self, span: (u32, u32)) -> &str {
        &self.text[span.0 as usize..span.1 as usize]
    }
}

// Nesting levels (the record's object is level 0), for the depth limit of skipped values.
const L_TOP: usize = 1;
const L_ARGS: usize = 2;
const L_PAYLOAD: usize = 3;
const L_GAME: usize = 5;
const L_EVENT: usize = 7;

fn parse_event(p: &mut Parser<'_>, out: &mut Parsed) -> R<()> {
    if p.peek() != Some(b'{') {
        return wrong(p, "an object");
    }
    let mut ev = PEvent { typ: 0, coefficient: 0.0, blocked: false, sn: (0, 0) };
    let mut seen = 0u8;
    let arena = &mut out.text;
    p.members(|p, key| {
        match key.as_bytes() {
            b"t" => {
                ev.typ = member(int(p), "t")?;
                seen |= 1;
            }
            b"c" => {
                ev.coefficient = member(float(p), "c")?;
                seen |= 2;
            }
            b"b" => {
                ev.blocked = member(boolean(p), "b")?;
                seen |= 4;
            }
            b"sn" => {
                ev.sn = member(text(p, arena), "sn")?;
                seen |= 8;
            }
            b"p" => match p.peek() {
                Some(b'[') => p.skip_value(L_EVENT)?,
                Some(b'n') => p.literal(b"null")?,
                _ => return member(wrong(p, "an array or null"), "p"),
            },
            _ => p.skip_value(L_EVENT)?,
        }
        Ok(())
    })?;
    if seen != 15 {
        let name = ["t", "c", "b", "sn"][(!seen).trailing_zeros() as usize];
        return Err(missing(p, name));
    }
    out.events.push(ev);
    Ok(())
}

const GAME_FIELDS: [&str; 11] = ["i", "t", "ge", "lrId", "s", "ps", "cr", "sdt", "fdt", "e", "di"];

fn parse_game(p: &mut Parser<'_>, out: &mut Parsed) -> R<()> {
    if p.peek() != Some(b'{') {
        return wrong(p, "an object");
    }
    let mut g = PGame::default();
    let mut seen = 0u16;
    p.members(|p, key| {
        match key.as_bytes() {
            b"i" => {
                g.id = member(int(p), "i")?;
                seen |= 1;
            }
            b"t" => {
                g.typ = member(int(p), "t")?;
                seen |= 2;
            }
            b"ge" => {
                g.edition = member(edition(p, &mut out.text), "ge")?;
                seen |= 4;
            }
            b"lrId" => {
                g.last_round_id = member(int(p), "lrId")?;
                seen |= 8;
            }
            b"s" => {
                g.state = member(small(p), "s")?;
                seen |= 16;
            }
            b"ps" => {
                g.play_status = member(small(p), "ps")?;
                seen |= 32;
            }
            b"cr" => {
                g.round = member(int(p), "cr")?;
                seen |= 64;
            }
            b"sdt" => {
                g.start = member(datetime(p), "sdt")?;
                seen |= 128;
            }
            b"fdt" => {
                g.finish = member(datetime(p), "fdt")?;
                seen |= 256;
            }
            b"e" => {
                if p.peek() != Some(b'[') {
                    return member(wrong(p, "an array"), "e");
                }
                let first = out.events.len() as u32;
                member(p.elements(|p, i| parse_event(p, out).map_err(|e| e.at(|| format!("[{i}]")))), "e")?;
                g.events = (first, out.events.len() as u32);
                seen |= 512;
            }
            b"di" => {
                g.dealer = member(kept(p, L_GAME, b'{', "an object or null"), "di")?;
                seen |= 1024;
            }
            b"r" => g.results = member(kept(p, L_GAME, b'[', "an array or null"), "r")?,
            b"h" => g.hands = member(kept(p, L_GAME, b'[', "an array or null"), "h")?,
            _ => p.skip_value(L_GAME)?,
        }
        Ok(())
    })?;
    if seen != 2047 {
        return Err(missing(p, GAME_FIELDS[(!seen).trailing_zeros() as usize]));
    }
    out.games.push(g);
    Ok(())
}

const PAYLOAD_FIELDS: [&str; 5] = ["sId", "tst", "im", "bt", "wgi"];

fn parse_payload(p: &mut Parser<'_>, out: &mut Parsed) -> R<()> {
    if p.peek() != Some(b'{') {
        return wrong(p, "an object");
    }
    let mut seen = 0u8;
    p.members(|p, key| {
        match key.as_bytes() {
            b"sId" => {
                out.sid = member(int(p), "sId")?;
                seen |= 1;
            }
            b"tst" => {
                out.tst = member(datetime(p), "tst")?;
                seen |= 2;
            }
            b"im" => {
                out.im = member(boolean(p), "im")?;
                seen |= 4;
            }
            b"bt" => {
                out.bt = member(float(p), "bt")?;
                seen |= 8;
            }
            b"wgi" => {
                if p.peek() != Some(b'[') {
                    return member(wrong(p, "an array"), "wgi");
                }
                let first = out.games.len();
                member(p.elements(|p, i| parse_game(p, out).map_err(|e| e.at(|| format!("[{i}]")))), "wgi")?;
                out.wgi = (first, out.games.len());
                seen |= 16;
            }
            _ => p.skip_value(L_PAYLOAD)?,
        }
        Ok(())
    })?;
    if seen != 31 {
        return Err(missing(p, PAYLOAD_FIELDS[(!seen).trailing_zeros() as usize]));
    }
    Ok(())
}

/// `arguments`: the payload is its first element; the others are checked and skipped.
fn parse_arguments(p: &mut Parser<'_>, out: &mut Parsed) -> R<()> {
    out.clear();
    let r = (|| {
        if p.peek() != Some(b'[') {
            return wrong(p, "an array");
        }
        let mut n = 0;
        p.elements(|p, i| {
            n += 1;
            if i == 0 {
                parse_payload(p, out).map_err(|e| e.at(|| "[0]".into()))
            } else {
                Ok(p.skip_value(L_ARGS)?)
            }
        })?;
        if n == 0 {
            return Err(Fail::Schema { path: "[0]".into(), message: "missing".into(), offset: p.pos - 1 });
        }
        Ok(())
    })();
    member(r, "arguments")
}

#[derive(Clone, Copy, PartialEq)]
enum TypeVal {
    Missing,
    Int(i64),
    Big,
    NotInt(usize),
}

/// The outcome of the top-level walk. `Ok(true)`: a games update parsed into `out`.
fn parse_top(p: &mut Parser<'_>, out: &mut Parsed) -> R<bool> {
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(Fail::Schema { path: String::new(), message: "expected a JSON object".into(), offset: p.pos });
    }
    let mut ty = TypeVal::Missing;
    let mut is_target = false;
    // Where the last `arguments` starts, and its parse if it came after type and target.
    let mut args: Option<(usize, Option<R<()>>)> = None;
    p.members(|p, key| {
        match key.as_bytes() {
            b"type" => {
                let start = p.pos;
                ty = if is_number_start(p) {
                    match p.number()? {
                        Number::Int(v) => TypeVal::Int(v),
                        Number::BigInt(_) => TypeVal::Big,
                        Number::Float(_) => TypeVal::NotInt(start),
                    }
                } else {
                    p.skip_value(L_TOP)?;
                    TypeVal::NotInt(start)
                };
            }
            b"target" => {
                is_target = if p.peek() == Some(b'"') {
                    p.string()? == TARGET
                } else {
                    p.skip_value(L_TOP)?;
                    false
                };
            }
            b"arguments" => {
                let start = p.pos;
                if ty == TypeVal::Int(1) && is_target {
                    // The usual order (type, target, arguments): parse in the same pass.
                    match parse_arguments(p, out) {
                        Ok(()) => args = Some((start, Some(Ok(())))),
                        Err(Fail::Syntax(e)) => return Err(Fail::Syntax(e)),
                        Err(e) => {
                            // Kept for the end (a later key may make this no games update);
                            // the rest of the value must still be strict JSON.
                            p.pos = start;
                            p.skip_value(L_TOP)?;
                            args = Some((start, Some(Err(e))));
                        }
                    }
                } else {
                    p.skip_value(L_TOP)?;
                    args = Some((start, None));
                }
            }
            _ => p.skip_value(L_TOP)?,
        }
        Ok(())
    })?;
    p.ws();
    if p.pos != p.buf.len() {
        return syntax(p, "trailing data after the message");
    }
    match ty {
        TypeVal::Missing => return Err(Fail::Schema { path: ".type".into(), message: "missing".into(), offset: 0 }),
        TypeVal::NotInt(at) => {
            return Err(Fail::Schema { path: ".type".into(), message: "expected an integer".into(), offset: at })
        }
        TypeVal::Int(1) if is_target => {}
        _ => return Ok(false),
    }
    match args {
        None => Err(Fail::Schema { path: ".arguments".into(), message: "missing".into(), offset: 0 }),
        Some((_, Some(r))) => r.map(|_| true),
        Some((start, None)) => {
            let mut q = Parser { buf: p.buf, pos: start };
            parse_arguments(&mut q, out).map(|_| true)
        }
    }
}

/// Parse one hub record. `Ok(true)`: a games update, now in `out`; `Ok(false)`: another
/// valid hub message (an object with an integer `type`), nothing to apply.
pub fn parse_record(buf: &[u8], out: &mut Parsed) -> Result<bool, GamesError> {
    let mut p = Parser::new(buf);
    match parse_top(&mut p, out) {
        Ok(v) => Ok(v),
        Err(Fail::Syntax(e)) => {
            Err(GamesError { message: format!("invalid JSON: {}", e.message), offset: e.offset, field: None })
        }
        Err(Fail::Schema { path, message, offset }) => {
            // A JSON-first reader reports invalid JSON anywhere before any schema problem.
            let mut q = Parser::new(buf);
            q.ws();
            let valid = q.skip_value(0).map(|_| q.ws());
            if let Err(e) = valid {
                return Err(GamesError {
                    message: format!("invalid JSON: {}", e.message),
                    offset: e.offset,
                    field: None,
                });
            }
            if q.pos != buf.len() {
                return Err(GamesError { message: "invalid JSON: trailing data".into(), offset: q.pos, field: None });
            }
            let field = path.strip_prefix('.').unwrap_or(&path).to_string();
            Err(GamesError { message, offset, field: if field.is_empty() { None } else { Some(field) } })
        }
    }
}

// ------------------------------------------------------------------------------------------
// The table
// ------------------------------------------------------------------------------------------

/// Mutable views of the per-game columns, all `game_capacity()` long.
pub struct GameCols<'a> {
    pub id: &'a mut [i64],
    pub typ: &'a mut [i64],
    pub state: &'a mut [i8],
    pub play_status: &'a mut [i8],
    pub round: &'a mut [i64],
    pub last_round_id: &'a mut [i64],
    pub start: &'a mut [i64],
    pub finish: &'a mut [i64],
    pub live: &'a mut [bool],
    pub betting_time: &'a mut [f64],
    pub maintenance: &'a mut [bool],
}

/// Mutable views of the per-coefficient columns, all `event_capacity()` long.
pub struct EventCols<'a> {
    pub game: &'a mut [i32],
    pub typ: &'a mut [i64],
    pub coefficient: &'a mut [f64],
    pub blocked: &'a mut [bool],
}

/// Where the columns live. Growth keeps the rows handed out and fills the rest as free
/// (zeros, NaN betting time and coefficient, game -1).
pub trait GamesStore {
    fn game_capacity(&self) -> usize;
    fn event_capacity(&self) -> usize;
    fn grow_games(&mut self, n: usize);
    fn grow_events(&mut self, n: usize);
    fn games(&mut self) -> GameCols<'_>;
    fn events(&mut self) -> EventCols<'_>;
}

#[derive(Default)]
pub struct VecStore {
    pub id: Vec<i64>,
    pub typ: Vec<i64>,
    pub state: Vec<i8>,
    pub play_status: Vec<i8>,
    pub round: Vec<i64>,
    pub last_round_id: Vec<i64>,
    pub start: Vec<i64>,
    pub finish: Vec<i64>,
    pub live: Vec<bool>,
    pub betting_time: Vec<f64>,
    pub maintenance: Vec<bool>,
    pub ev_game: Vec<i32>,
    pub ev_type: Vec<i64>,
    pub coefficient: Vec<f64>,
    pub blocked: Vec<bool>,
}

impl GamesStore for VecStore {
    fn game_capacity(&self) -> usize {
        self.id.len()
    }
    fn event_capacity(&self) -> usize {
        self.ev_game.len()
    }
    fn grow_games(&mut self, n: usize) {
        self.id.resize(n, 0);
        self.typ.resize(n, 0);
        self.state.resize(n, 0);
        self.play_status.resize(n, 0);
        self.round.resize(n, 0);
        self.last_round_id.resize(n, 0);
        self.start.resize(n, 0);
        self.finish.resize(n, 0);
        self.live.resize(n, false);
        self.betting_time.resize(n, f64::NAN);
        self.maintenance.resize(n, false);
    }
    fn grow_events(&mut self, n: usize) {
        self.ev_game.resize(n, -1);
        self.ev_type.resize(n, 0);
        self.coefficient.resize(n, f64::NAN);
        self.blocked.resize(n, false);
    }
    fn games(&mut self) -> GameCols<'_> {
        GameCols {
            id: &mut self.id,
            typ: &mut self.typ,
            state: &mut self.state,
            play_status: &mut self.play_status,
            round: &mut self.round,
            last_round_id: &mut self.last_round_id,
            start: &mut self.start,
            finish: &mut self.finish,
            live: &mut self.live,
            betting_time: &mut self.betting_time,
            maintenance: &mut self.maintenance,
        }
    }
    fn events(&mut self) -> EventCols<'_> {
        EventCols {
            game: &mut self.ev_game,
            typ: &mut self.ev_type,
            coefficient: &mut self.coefficient,
            blocked: &mut self.blocked,
        }
    }
}

/// One coefficient of a game: its event type, row, and short number (a span of `Game::sn`).
#[derive(Debug, Clone, Copy)]
pub struct EvSlot {
    pub typ: i64,
    pub row: u32,
    sn: (u32, u32),
    /// Index in the update's list of the entry that wrote this slot (while replacing).
    src: u32,
}

const TAKEN: u32 = u32::MAX;

/// A game's state that is not in the columns. Slots are reused with their buffers.
#[derive(Default)]
pub struct Game {
    pub id: i64,
    pub live: bool,
    pub edition: String,
    /// Raw JSON as sent; empty when absent or null.
    pub results: Vec<u8>,
    pub hands: Vec<u8>,
    pub dealer: Vec<u8>,
    /// Coefficients in the order of the last update (first appearance of each type).
    pub events: Vec<EvSlot>,
    index: AHashMap<i64, u32>,
    sn: String,
    /// `tst` of the update in which the game turned finished, review or cancelled.
    pub ended_at_ns: Option<i64>,
}

impl Game {
    pub fn sn(&self, e: &EvSlot) -> &str {
        &self.sn[e.sn.0 as usize..e.sn.1 as usize]
    }
    pub fn event(&self, typ: i64) -> Option<&EvSlot> {
        self.index.get(&typ).map(|&k| &self.events[k as usize])
    }
}

fn copy_span(dst: &mut Vec<u8>, buf: &[u8], span: Option<(usize, usize)>) {
    dst.clear();
    if let Some((a, b)) = span {
        dst.extend_from_slice(&buf[a..b]);
    }
}

pub struct GamesCore<S: GamesStore> {
    pub store: S,
    by_id: AHashMap<i64, u32>,
    games: Vec<Game>,
    free_games: Vec<u32>,
    free_events: Vec<u32>,
    /// Rows ever handed out: the lengths of the column views.
    pub game_high: usize,
    pub event_high: usize,
    pub live_events: usize,
    pub healthy: bool,
    pub sid: Option<i64>,
    pub tst: Option<i64>,
    pub bt: Option<f64>,
    pub im: bool,
    /// Leave out updates no newer than the last applied one (`is_redelivery`).
    pub skip_redeliveries: bool,
    /// The last `apply` parsed a games update and left it out.
    pub skipped: bool,
    pub retention_ns: Option<i64>,
    /// Lower bound of the live games' `ended_at_ns` (i64::MAX: none).
    earliest_end: i64,
    pub scratch: Parsed,
    list_scratch: Vec<EvSlot>,
    index_scratch: AHashMap<i64, u32>,
    open_scratch: Vec<bool>,
}

impl<S: GamesStore> GamesCore<S> {
    pub fn new(store: S) -> Self {
        GamesCore {
            store,
            by_id: AHashMap::new(),
            games: Vec::new(),
            free_games: Vec::new(),
            free_events: Vec::new(),
            game_high: 0,
            event_high: 0,
            live_events: 0,
            healthy: true,
            sid: None,
            tst: None,
            bt: None,
            im: false,
            skip_redeliveries: false,
            skipped: false,
            retention_ns: None,
            earliest_end: i64::MAX,
            scratch: Parsed::default(),
            list_scratch: Vec::new(),
            index_scratch: AHashMap::new(),
            open_scratch: Vec::new(),
        }
    }

    /// Parse and apply one record. `Ok(true)`: a games update (its games are
    /// `self.scratch.wgi()`), applied unless `self.skipped`; `Ok(false)`: another hub
    /// message, nothing changed.
    pub fn apply(&mut self, buf: &[u8]) -> Result<bool, GamesError> {
        let mut parsed = std::mem::take(&mut self.scratch);
        let r = parse_record(buf, &mut parsed);
        self.skipped = false;
        if r == Ok(true) {
            self.skipped = self.skip_redeliveries && self.is_redelivery(&parsed);
            if !self.skipped {
                self.apply_parsed(buf, &parsed);
            }
        }
        self.scratch = parsed;
        r
    }

    /// An update no newer than the last applied one (`sId` and `tst` both at or before
    /// it): a redelivery, which must not roll newer state back. A lower `sId` with a later
    /// `tst` is a counter restart, and applied.
    pub fn is_redelivery(&self, u: &Parsed) -> bool {
        matches!((self.sid, self.tst), (Some(sid), Some(tst)) if u.sid <= sid && u.tst <= tst)
    }

    /// Apply a parsed update; cannot fail, so a record is applied whole or not at all.
    pub fn apply_parsed(&mut self, buf: &[u8], u: &Parsed) {
        for pg in u.wgi() {
            let row = match self.by_id.get(&pg.id) {
                Some(&r) => r,
                None => self.alloc_game(pg.id),
            };
            let r = row as usize;
            let c = self.store.games();
            c.typ[r] = pg.typ;
            c.state[r] = pg.state;
            c.play_status[r] = pg.play_status;
            c.round[r] = pg.round;
            c.last_round_id[r] = pg.last_round_id;
            c.start[r] = pg.start;
            c.finish[r] = pg.finish;
            c.betting_time[r] = u.bt;
            c.maintenance[r] = u.im;
            let mut g = std::mem::take(&mut self.games[r]);
            g.edition.clear();
            g.edition.push_str(u.text(pg.edition));
            copy_span(&mut g.results, buf, pg.results);
            copy_span(&mut g.hands, buf, pg.hands);
            copy_span(&mut g.dealer, buf, pg.dealer);
            self.put_events(row, &mut g, &u.events[pg.events.0 as usize..pg.events.1 as usize], u);
            if is_terminal(pg.state) {
                if g.ended_at_ns.is_none() {
                    g.ended_at_ns = Some(u.tst);
                    self.earliest_end = self.earliest_end.min(u.tst);
                }
            } else {
                g.ended_at_ns = None;
            }
            self.games[r] = g;
        }
        self.sid = Some(u.sid);
        self.tst = Some(u.tst);
        self.bt = Some(u.bt);
        self.im = u.im;
        if let Some(retention) = self.retention_ns {
            let cutoff = u.tst.saturating_sub(retention);
            if self.earliest_end <= cutoff {
                self.evict_finished(cutoff);
            }
        }
    }

    fn write_event(&mut self, row: u32, game: u32, e: &PEvent) {
        let c = self.store.events();
        let r = row as usize;
        c.game[r] = game as i32;
        c.typ[r] = e.typ;
        c.coefficient[r] = e.coefficient;
        c.blocked[r] = e.blocked;
    }

    /// Replace a game's coefficients with `list` (a repeated event type: the last one wins,
    /// at the place of the first). Rows of types still listed are kept; rows of types no
    /// longer listed are freed before new types take rows, so they are reused at once.
    fn put_events(&mut self, game_row: u32, g: &mut Game, list: &[PEvent], u: &Parsed) {
        g.sn.clear();
        if g.events.len() == list.len() && g.events.iter().zip(list).all(|(a, b)| a.typ == b.typ) {
            // Same types in the same order (the usual case): write in place.
            for (k, e) in list.iter().enumerate() {
                let a = g.sn.len() as u32;
                g.sn.push_str(u.text(e.sn));
                g.events[k].sn = (a, g.sn.len() as u32);
                let row = g.events[k].row;
                self.write_event(row, game_row, e);
            }
            return;
        }
        let mut new_list = std::mem::take(&mut self.list_scratch);
        let mut new_index = std::mem::take(&mut self.index_scratch);
        new_list.clear();
        new_index.clear();
        for (src, e) in list.iter().enumerate() {
            let a = g.sn.len() as u32;
            g.sn.push_str(u.text(e.sn));
            let sn = (a, g.sn.len() as u32);
            if let Some(&k) = new_index.get(&e.typ) {
                let slot = &mut new_list[k as usize];
                (slot.sn, slot.src) = (sn, src as u32);
                continue;
            }
            let row = match g.index.get(&e.typ) {
                Some(&k) => std::mem::replace(&mut g.events[k as usize].row, TAKEN),
                None => TAKEN,
            };
            new_index.insert(e.typ, new_list.len() as u32);
            new_list.push(EvSlot { typ: e.typ, row, sn, src: src as u32 });
        }
        for k in 0..g.events.len() {
            let row = g.events[k].row;
            if row != TAKEN {
                self.free_event(row);
            }
        }
        for slot in &mut new_list {
            if slot.row == TAKEN {
                slot.row = self.alloc_event();
            }
            self.write_event(slot.row, game_row, &list[slot.src as usize]);
        }
        std::mem::swap(&mut g.events, &mut new_list);
        std::mem::swap(&mut g.index, &mut new_index);
        self.list_scratch = new_list;
        self.index_scratch = new_index;
    }

    fn alloc_event(&mut self) -> u32 {
        self.live_events += 1;
        if let Some(r) = self.free_events.pop() {
            return r;
        }
        if self.event_high == self.store.event_capacity() {
            self.store.grow_events((self.event_high * 2).max(16));
        }
        self.event_high += 1;
        (self.event_high - 1) as u32
    }

    fn free_event(&mut self, row: u32) {
        let c = self.store.events();
        let r = row as usize;
        c.game[r] = -1;
        c.typ[r] = 0;
        c.coefficient[r] = f64::NAN;
        c.blocked[r] = false;
        self.free_events.push(row);
        self.live_events -= 1;
    }

    fn alloc_game(&mut self, id: i64) -> u32 {
        let row = match self.free_games.pop() {
            Some(r) => r,
            None => {
                if self.game_high == self.store.game_capacity() {
                    self.store.grow_games((self.game_high * 2).max(8));
                }
                self.game_high += 1;
                if self.games.len() < self.game_high {
                    self.games.push(Game::default());
                }
                (self.game_high - 1) as u32
            }
        };
        let g = &mut self.games[row as usize];
        g.id = id;
        g.live = true;
        g.ended_at_ns = None;
        let c = self.store.games();
        c.id[row as usize] = id;
        c.live[row as usize] = true;
        self.by_id.insert(id, row);
        row
    }

    fn free_game(&mut self, row: u32) {
        let mut g = std::mem::take(&mut self.games[row as usize]);
        for e in g.events.drain(..) {
            self.free_event(e.row);
        }
        g.index.clear();
        g.sn.clear();
        g.edition.clear();
        g.results.clear();
        g.hands.clear();
        g.dealer.clear();
        g.live = false;
        g.ended_at_ns = None;
        self.by_id.remove(&g.id);
        self.games[row as usize] = g;
        let c = self.store.games();
        let r = row as usize;
        c.id[r] = 0;
        c.typ[r] = 0;
        c.state[r] = 0;
        c.play_status[r] = 0;
        c.round[r] = 0;
        c.last_round_id[r] = 0;
        c.start[r] = 0;
        c.finish[r] = 0;
        c.live[r] = false;
        c.betting_time[r] = f64::NAN;
        c.maintenance[r] = false;
        self.free_games.push(row);
    }

    /// Drop one game and its coefficient rows. True when it was there.
    pub fn remove(&mut self, id: i64) -> bool {
        match self.by_id.get(&id) {
            Some(&row) => {
                self.free_game(row);
                true
            }
            None => false,
        }
    }

    /// Evict the games that turned finished, review or cancelled at or before `before_ns`
    /// (update time); returns how many.
    pub fn evict_finished(&mut self, before_ns: i64) -> usize {
        let mut n = 0;
        let mut earliest = i64::MAX;
        for row in 0..self.game_high {
            let g = &self.games[row];
            match g.ended_at_ns {
                Some(t) if g.live && t <= before_ns => {
                    self.free_game(row as u32);
                    n += 1;
                }
                Some(t) if g.live => earliest = earliest.min(t),
                _ => {}
            }
        }
        self.earliest_end = earliest;
        n
    }

    /// Forget every game and the last update; columns keep their capacity.
    pub fn clear(&mut self) {
        for row in 0..self.game_high {
            if self.games[row].live {
                self.free_game(row as u32);
            }
        }
        self.free_games.clear();
        self.free_events.clear();
        self.game_high = 0;
        self.event_high = 0;
        self.earliest_end = i64::MAX;
        self.sid = None;
        self.tst = None;
        self.bt = None;
        self.im = false;
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    pub fn row(&self, id: i64) -> Option<u32> {
        self.by_id.get(&id).copied()
    }

    pub fn game(&self, id: i64) -> Option<&Game> {
        self.row(id).map(|r| &self.games[r as usize])
    }

    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.by_id.keys().copied()
    }

    /// The game and event type of a live coefficient row.
    pub fn event_key(&mut self, row: usize) -> Option<(i64, i64)> {
        if row >= self.event_high {
            return None;
        }
        let c = self.store.events();
        let g = c.game[row];
        if g < 0 {
            return None;
        }
        let t = c.typ[row];
        Some((self.games[g as usize].id, t))
    }

    pub fn event_row(&self, id: i64, typ: i64) -> Option<u32> {
        self.game(id)?.event(typ).map(|e| e.row)
    }

    /// `(coefficient, blocked)` of one event of one game.
    pub fn get(&mut self, id: i64, typ: i64) -> Option<(f64, bool)> {
        let r = self.event_row(id, typ)? as usize;
        let c = self.store.events();
        Some((c.coefficient[r], c.blocked[r]))
    }

    fn game_open(c: &GameCols<'_>, r: usize) -> bool {
        c.live[r] && c.state[r] == 2 && c.play_status[r] == 1 && !c.maintenance[r] && c.betting_time[r] > 0.0
    }

    /// Active, betting time, not in maintenance, time left, not blocked, feed healthy.
    pub fn is_bettable(&mut self, id: i64, typ: i64) -> bool {
        if !self.healthy {
            return false;
        }
        let Some(grow) = self.row(id) else { return false };
        let Some(erow) = self.event_row(id, typ) else { return false };
        if !Self::game_open(&self.store.games(), grow as usize) {
            return false;
        }
        !self.store.events().blocked[erow as usize]
    }

    /// The bettable rule for every coefficient row in `0..event_high` at once.
    pub fn bettable_into(&mut self, out: &mut [bool]) {
        if !self.healthy {
            out.fill(false);
            return;
        }
        let mut open = std::mem::take(&mut self.open_scratch);
        open.clear();
        let gc = self.store.games();
        open.extend((0..self.game_high).map(|r| Self::game_open(&gc, r)));
        let c = self.store.events();
        for (r, o) in out.iter_mut().enumerate() {
            let g = c.game[r];
            *o = g >= 0 && open[g as usize] && !c.blocked[r];
        }
        self.open_scratch = open;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> GamesCore<VecStore> {
        GamesCore::new(VecStore::default())
    }

    fn ev(t: i64, c: &str, b: bool) -> String {
        format!(r#"{{"t":{t},"p":[],"c":{c},"b":{b},"sn":"0{t}"}}"#)
    }

    fn game(i: i64, s: i8, ps: i8, events: &[String]) -> String {
        format!(
            r#"{{"i":{i},"t":3,"ge":"PB{i}","s":{s},"ps":{ps},"cr":1,"sdt":"2025-06-19T15:56:50.529Z","fdt":1750348790.529,"r":[{{"v":"3c"}}],"h":[],"e":[{}],"vs":2,"lrId":{},"di":null}}"#,
            events.join(","),
            i - 1
        )
    }

    fn update(sid: i64, tst: i64, bt: f64, im: bool, games: &[String]) -> String {
        format!(
            r#"{{"type":1,"target":"WholeGamesInfoSubscribe","arguments":[{{"wgi":[{}],"tst":{tst},"bt":{bt},"im":{im},"sId":{sid}}}]}}"#,
            games.join(",")
        )
    }

    fn err(rec: &str) -> GamesError {
        let mut out = Parsed::default();
        parse_record(rec.as_bytes(), &mut out).unwrap_err()
    }

    fn field(rec: &str) -> Option<String> {
        err(rec).field
    }

    #[test]
    fn iso_dates() {
        let ns = |s: &str| parse_iso8601(s.as_bytes());
        assert_eq!(ns("2025-06-19T15:56:50.529Z"), Some(1_750_348_610_529_000_000));
        assert_eq!(ns("2025-06-19T15:57:18.6120782Z"), Some(1_750_348_638_612_078_200));
        assert_eq!(ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(ns("1970-01-01T00:00:00.000000001Z"), Some(1));
        assert_eq!(ns("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(ns("1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(ns("1969-12-31T23:59:59.5Z"), Some(-500_000_000));
        assert_eq!(ns("2024-02-29T00:00:00Z"), Some(1_709_164_800_000_000_000));
        assert_eq!(ns("2262-04-11T23:47:16.854775807Z"), Some(i64::MAX));
        assert_eq!(ns("1677-09-21T00:12:43.145224192Z"), Some(i64::MIN));
        for bad in [
            "2025-06-19T15:56:50.Z",
            "2025-06-19T15:56:50.1234567890Z",
            "2025-06-19T15:56:50",
            "2025-06-19 15:56:50Z",
            "2025-02-29T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-06-19T24:00:00Z",
            "2025-06-19T15:60:00Z",
            "2025-06-19T15:56:60Z",
            "2025-06-19T15:56:50+1:00",
            "2025-06-19T15:56:50+24:00",
            "2025-06-19T15:56:50z",
            "2262-04-11T23:47:16.854775808Z",
            "0000-01-01T00:00:00Z",
            "2025-06-1aT15:56:50Z",
            "2025-06-19T15:56:50ZZ",
        ] {
            assert_eq!(ns(bad), None, "{bad}");
        }
    }

    #[test]
    fn unix_seconds_are_exact() {
        let ns = |s: &str| seconds_to_ns(s.as_bytes());
        assert_eq!(ns("1750348610.529"), Some(1_750_348_610_529_000_000));
        assert_eq!(ns("1750348610"), Some(1_750_348_610_000_000_000));
        assert_eq!(ns("0"), Some(0));
        assert_eq!(ns("-0.0"), Some(0));
        assert_eq!(ns("1.0000000001"), Some(1_000_000_000));
        assert_eq!(ns("-1.0000000001"), Some(-1_000_000_001));
        assert_eq!(ns("1e-400"), Some(0));
        assert_eq!(ns("-1e-400"), Some(-1));
        assert_eq!(ns("17503486.10529e2"), Some(1_750_348_610_529_000_000));
        assert_eq!(ns("0.000000001"), Some(1));
        assert_eq!(ns("9223372036.854775807"), Some(i64::MAX));
        assert_eq!(ns("9223372036.854775808"), None);
        assert_eq!(ns("-9223372036.854775808"), Some(i64::MIN));
        assert_eq!(ns("-9223372036.8547758081"), None);
        assert_eq!(ns("9223372037"), None);
        assert_eq!(ns("1e300"), None);
        assert_eq!(ns("0e999999999999"), Some(0));
        assert_eq!(ns("1e-999999999999"), Some(0));
        assert_eq!(ns(&format!("0.{}1", "0".repeat(500))), Some(0));
    }

    #[test]
    fn applies_an_update_with_keys_in_any_order() {
        let mut t = table();
        let g = game(10, 2, 1, &[ev(1, "5.5", false), ev(2, "1000.0", true)]);
        let rec = update(7, 1_000, 1.0, false, &[g]);
        assert_eq!(t.apply(rec.as_bytes()), Ok(true));
        assert_eq!((t.sid, t.tst, t.bt, t.im), (Some(7), Some(1_000_000_000_000), Some(1.0), false));
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(10, 1), Some((5.5, false)));
        assert_eq!(t.get(10, 2), Some((1000.0, true)));
        assert!(t.is_bettable(10, 1) && !t.is_bettable(10, 2) && !t.is_bettable(10, 3));
        let gm = t.game(10).unwrap();
        assert_eq!(gm.edition, "PB10");
        assert_eq!(gm.results, br#"[{"v":"3c"}]"#);
        assert!(gm.dealer.is_empty());
        assert_eq!(gm.sn(&gm.events[1]), "02");
        let c = t.store.games();
        assert_eq!((c.start[0], c.finish[0]), (1_750_348_610_529_000_000, 1_750_348_790_529_000_000));
        assert_eq!(c.last_round_id[0], 9);
        // Arguments before target and type, escaped keys, unknown members, whitespace.
        let rec2 = format!(
            " {{\"arguments\" : [ {{\"sId\":8,\"x\":{{\"deep\":[1,2]}},\"b\\u0074\":0,\"im\":true,\"tst\":\"1970-01-01T00:00:02Z\",\"wgi\":[{}]}}, 5 ] ,\"target\":\"WholeGamesInfo\\u0053ubscribe\",\"type\":1}}\n",
            game(11, 2, 1, &[ev(1, "2", false)])
        );
        assert_eq!(t.apply(rec2.as_bytes()), Ok(true));
        assert_eq!((t.sid, t.tst, t.bt, t.im), (Some(8), Some(2_000_000_000), Some(0.0), true));
        assert_eq!(t.len(), 2);
        assert!(!t.is_bettable(11, 1), "maintenance and bt 0");
        assert!(t.is_bettable(10, 1), "the maintenance flag is the one of the game's own update");
    }

    #[test]
    fn other_hub_messages_change_nothing() {
        let mut t = table();
        for rec in [
            r#"{"type":6}"#,
            r#"{"type":7,"error":"bye","allowReconnect":true}"#,
            r#"{"type":1,"target":"Other","arguments":[{"wgi":5}]}"#,
            r#"{"type":3,"invocationId":"1","result":null}"#,
            r#"{"type":2,"target":"WholeGamesInfoSubscribe","arguments":[1]}"#,
            r#"{"type":99999999999999999999999,"x":1}"#,
            r#"{"type":1,"target":5,"arguments":7}"#,
            r#"{"type":1,"target":"WholeGamesInfoSubscribe","arguments":[{}],"target":"x"}"#,
        ] {
            assert_eq!(t.apply(rec.as_bytes()), Ok(false), "{rec}");
        }
        assert_eq!((t.len(), t.sid), (0, None));
    }

    #[test]
    fn errors_name_the_path_and_syntax_wins() {
        let g = |e: &[String]| game(1, 2, 1, e);
        let c_bad =
            update(1, 1, 1.0, false, &[g(&[ev(1, "1", false)]), g(&[ev(1, "1", false), ev(2, "\"x\"", false)])]);
        assert_eq!(field(&c_bad).as_deref(), Some("arguments[0].wgi[1].e[1].c"));
        assert_eq!(field(&format!("{c_bad} x")), None, "invalid JSON after the schema error");
        let trunc = &c_bad[..c_bad.len() - 3];
        assert_eq!(field(trunc), None);
        assert_eq!(field(r#"{"x":1}"#).as_deref(), Some("type"));
        assert_eq!(field(r#"{"type":"1"}"#).as_deref(), Some("type"));
        assert_eq!(field(r#"{"type":1.0}"#).as_deref(), Some("type"));
        assert_eq!(field(r#"[1]"#), None);
        assert_eq!(field("\u{feff}{\"type\":6}"), None);
        assert_eq!(field(r#"{"type":6,"x":NaN}"#), None);
        assert_eq!(field(r#"{"type":6,"x":"\ud800"}"#), None);
        assert_eq!(field(r#"{"type":6,"x":1e400}"#), None);
        let t = r#""type":1,"target":"WholeGamesInfoSubscribe""#;
        assert_eq!(field(&format!("{{{t}}}")).as_deref(), Some("arguments"));
        assert_eq!(field(&format!(r#"{{{t},"arguments":{{}}}}"#)).as_deref(), Some("arguments"));
        assert_eq!(field(&format!(r#"{{{t},"arguments":[]}}"#)).as_deref(), Some("arguments[0]"));
        assert_eq!(field(&format!(r#"{{{t},"arguments":["s"]}}"#)).as_deref(), Some("arguments[0]"));
        assert_eq!(field(&format!(r#"{{"arguments":[{{"wgi":[]}}],{t}}}"#)).as_deref(), Some("arguments[0].sId"));
        let payload = |body: &str| format!(r#"{{{t},"arguments":[{body}]}}"#);
        assert_eq!(field(&payload(r#"{"wgi":[],"sId":1,"tst":0,"im":false}"#)).as_deref(), Some("arguments[0].bt"));
        assert_eq!(
            field(&payload(r#"{"wgi":[],"sId":1,"tst":"x","im":false,"bt":1}"#)).as_deref(),
            Some("arguments[0].tst")
        );
        assert_eq!(
            field(&payload(r#"{"wgi":[],"sId":1.5,"tst":0,"im":false,"bt":1}"#)).as_deref(),
            Some("arguments[0].sId")
        );
        assert_eq!(field(&payload(r#"{"wgi":[],"sId":1,"tst":0,"im":0,"bt":1}"#)).as_deref(), Some("arguments[0].im"));
        let one = |gm: &str| payload(&format!(r#"{{"wgi":[{gm}],"sId":1,"tst":0,"im":false,"bt":1}}"#));
        let full = game(1, 2, 1, &[ev(1, "1", false)]);
        assert!(parse_record(one(&full).as_bytes(), &mut Parsed::default()).is_ok());
        for (from, to, path) in [
            (r#""s":2"#, r#""s":200"#, "arguments[0].wgi[0].s"),
            (r#""s":2"#, r#""s":-1"#, "arguments[0].wgi[0].s"),
            (r#""s":2,"#, "", "arguments[0].wgi[0].s"),
            (r#""ge":"PB1""#, r#""ge":1.5"#, "arguments[0].wgi[0].ge"),
            (r#""ge":"PB1""#, r#""ge":650351"#, ""),
            (r#""di":null"#, r#""di":[]"#, "arguments[0].wgi[0].di"),
            (r#","di":null"#, "", "arguments[0].wgi[0].di"),
            (r#""r":[{"v":"3c"}]"#, r#""r":{}"#, "arguments[0].wgi[0].r"),
            (r#""r":[{"v":"3c"}]"#, r#""r":[{"v":18446744073709551616}]"#, "arguments[0].wgi[0].r[0].v"),
            (r#""r":[{"v":"3c"}]"#, r#""r":[{"v":18446744073709551615}]"#, ""),
            (r#""r":[{"v":"3c"}]"#, r#""r":null"#, ""),
            (r#""r":[{"v":"3c"}],"#, "", ""),
            (r#""p":[]"#, r#""p":{}"#, "arguments[0].wgi[0].e[0].p"),
            (r#""p":[],"#, "", ""),
            (r#","sn":"01""#, "", "arguments[0].wgi[0].e[0].sn"),
            (r#""b":false"#, r#""b":null"#, "arguments[0].wgi[0].e[0].b"),
            (r#""i":1"#, r#""i":9223372036854775808"#, "arguments[0].wgi[0].i"),
            (r#""fdt":1750348790.529"#, r#""fdt":1e20"#, "arguments[0].wgi[0].fdt"),
            (r#""sdt":"2025-06-19T15:56:50.529Z""#, r#""sdt":true"#, "arguments[0].wgi[0].sdt"),
        ] {
            assert!(full.contains(from), "{from}");
            let rec = one(&full.replacen(from, to, 1));
            let got = parse_record(rec.as_bytes(), &mut Parsed::default());
            if path.is_empty() {
                assert!(got.is_ok(), "{from} -> {to}: {got:?}");
            } else {
                assert_eq!(got.unwrap_err().field.as_deref(), Some(path), "{from} -> {to}");
            }
        }
        // A missing field is noticed at the end of its object: an earlier bad type wins.
        let two = one(&full.replacen(r#""i":1,"#, "", 1).replacen(r#""t":3"#, r#""t":"x""#, 1));
        assert_eq!(field(&two).as_deref(), Some("arguments[0].wgi[0].t"));
        // The depth limit: 512 nested levels are fine, 513 are not JSON we accept.
        let deep =
            |n: usize| one(&full.replacen(r#""vs":2"#, &format!(r#""vs":{}{}"#, "[".repeat(n), "]".repeat(n)), 1));
        assert!(parse_record(deep(508).as_bytes(), &mut Parsed::default()).is_ok());
        assert_eq!(field(&deep(509)), None);
        assert_eq!(err(&deep(509)).message, "invalid JSON: nesting too deep");
        // The walkers' syntax errors, in BETCORE's wording.
        assert_eq!(err(r#"{"type":1,2:3}"#).message, "invalid JSON: expected a string key");
        assert_eq!(err(r#"{"type" 1}"#).message, "invalid JSON: expected ':'");
        assert_eq!(err(&payload(r#"{"wgi":[1 2]}"#)).message, "invalid JSON: expected ',' or ']'");
    }

    #[test]
    fn a_bad_record_changes_nothing() {
        let mut t = table();
        t.apply(update(1, 1, 1.0, false, &[game(1, 2, 1, &[ev(1, "2", false), ev(2, "3", false)])]).as_bytes())
            .unwrap();
        let good = game(1, 5, 2, &[ev(3, "4", true)]);
        let bad = game(2, 2, 1, &[ev(1, "true", false)]);
        let e = t.apply(update(2, 2, 0.0, true, &[good, bad]).as_bytes()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("arguments[0].wgi[1].e[0].c"));
        assert_eq!((t.sid, t.len(), t.live_events), (Some(1), 1, 2));
        assert_eq!(t.get(1, 1), Some((2.0, false)));
        assert_eq!(t.get(1, 3), None);
        assert!(t.is_bettable(1, 2));
    }

    #[test]
    fn events_are_replaced_and_rows_reused() {
        let mut t = table();
        let evs = |ts: &[i64]| ts.iter().map(|&k| ev(k, "1.5", false)).collect::<Vec<_>>();
        t.apply(update(1, 1, 1.0, false, &[game(1, 2, 1, &evs(&[1, 2, 3]))]).as_bytes()).unwrap();
        let r2 = t.event_row(1, 2).unwrap();
        t.apply(update(2, 2, 1.0, false, &[game(1, 2, 1, &evs(&[4, 2]))]).as_bytes()).unwrap();
        assert_eq!(t.event_row(1, 2), Some(r2), "a listed type keeps its row");
        assert_eq!((t.get(1, 1), t.get(1, 3)), (None, None));
        assert_eq!((t.live_events, t.event_high), (2, 3));
        let order: Vec<i64> = t.game(1).unwrap().events.iter().map(|e| e.typ).collect();
        assert_eq!(order, [4, 2]);
        // A repeated type: the last one wins, at the place of the first.
        let list = [ev(7, "1", false), ev(8, "2", false), ev(7, "3", true)];
        t.apply(update(3, 3, 1.0, false, &[game(1, 2, 1, &list)]).as_bytes()).unwrap();
        assert_eq!(t.get(1, 7), Some((3.0, true)));
        let g = t.game(1).unwrap();
        assert_eq!(g.events.iter().map(|e| (e.typ, g.sn(e))).collect::<Vec<_>>(), [(7, "07"), (8, "08")]);
        assert_eq!(t.live_events, 2);
        // Games not in an update are kept.
        t.apply(update(4, 4, 1.0, false, &[game(2, 2, 1, &evs(&[1]))]).as_bytes()).unwrap();
        assert_eq!((t.len(), t.live_events), (2, 3));
        let mut mask = vec![false; t.event_high];
        t.bettable_into(&mut mask);
        let keys: Vec<_> = (0..t.event_high).filter(|&r| mask[r]).map(|r| t.event_key(r).unwrap()).collect();
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&(1, 8)) && keys.contains(&(2, 1)));
        t.healthy = false;
        t.bettable_into(&mut mask);
        assert!(!mask.iter().any(|&b| b) && !t.is_bettable(1, 8));
    }

    #[test]
    fn finished_games_are_evicted_after_retention() {
        let mut t = table();
        t.retention_ns = Some(10_000_000_000);
        let e = [ev(1, "2", false)];
        t.apply(update(1, 100, 1.0, false, &[game(1, 2, 1, &e), game(2, 2, 1, &e)]).as_bytes()).unwrap();
        t.apply(update(2, 105, 1.0, false, &[game(1, 3, 2, &e)]).as_bytes()).unwrap();
        assert_eq!(t.game(1).unwrap().ended_at_ns, Some(105_000_000_000));
        t.apply(update(3, 110, 1.0, false, &[game(1, 4, 2, &e)]).as_bytes()).unwrap();
        assert_eq!(t.game(1).unwrap().ended_at_ns, Some(105_000_000_000), "kept from the first end");
        t.apply(update(4, 114, 1.0, false, &[game(2, 2, 1, &e)]).as_bytes()).unwrap();
        assert_eq!(t.len(), 2);
        t.apply(update(5, 115, 1.0, false, &[game(2, 2, 1, &e)]).as_bytes()).unwrap();
        assert_eq!(t.len(), 1);
        assert!(t.game(1).is_none() && t.get(1, 1).is_none());
        t.apply(update(6, 116, 1.0, false, &[game(3, 2, 1, &e)]).as_bytes()).unwrap();
        assert_eq!((t.game_high, t.event_high), (2, 2), "freed rows are reused");
        t.apply(update(7, 117, 1.0, false, &[game(3, 5, 1, &e)]).as_bytes()).unwrap();
        assert_eq!(t.evict_finished(116_000_000_000), 0);
        assert_eq!(t.evict_finished(117_000_000_000), 1);
        assert!(t.remove(2) && !t.remove(2));
        assert_eq!((t.len(), t.live_events), (0, 0));
        t.clear();
        assert_eq!((t.game_high, t.event_high, t.sid), (0, 0, None));
    }
}
