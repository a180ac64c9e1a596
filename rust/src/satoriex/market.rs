//! SatoriEx market data as plain Rust: read one WebSocket message (strict JSON, typed fields
//! straight from the bytes) and, for the two market-data types, update per-market prices
//! (columns in a `PriceStore`: numpy arrays under Python, Vecs under cargo test) and
//! per-market order books.
//!
//! The wire forms are *assumed* (DESIGN §5b), their names configurable through `Layout`:
//!
//! - `{"type":"price_update","market_id":M,"mid":x,"best_bid":b,"best_ask":a,"ts":ms}`
//!   (`mid` / `best_bid` / `best_ask` a number or null, read as NaN; `ts` an integer);
//! - `{"type":"orderbook","market_id":M,"seq":n,"snapshot":bool,"bids":[[price,size],...],
//!   "asks":[...]}` (`snapshot` absent means a delta; `bids` / `asks` absent mean no change;
//!   size 0 deletes a level; a snapshot replaces the book).
//!
//! Any other `type` returns `Outcome::Other` without reading the rest of the message when
//! `type` is its first member (the caller decodes those itself, once). `apply` is atomic: the
//! message is parsed into reused scratch buffers first, then applied by code that cannot
//! fail. A message that is not strict JSON is a syntax error (`layout` false) wherever a
//! layout problem was; otherwise the first layout problem of its type (in document order,
//! then a missing field in the order `market_id`, `mid`, `best_bid`, `best_ask`, `ts` or
//! `market_id`, `seq`) names the field.

use ahash::AHashMap;

use crate::json::{JsonError, Number, Parser};

// ------------------------------------------------------------------------------------------
// Layout and errors
// ------------------------------------------------------------------------------------------

/// The names of the assumed forms (DESIGN §5b defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub type_key: String,
    pub price_type: String,
    pub book_type: String,
    pub market: String,
    pub mid: String,
    pub best_bid: String,
    pub best_ask: String,
    pub ts: String,
    pub seq: String,
    pub snapshot: String,
    pub bids: String,
    pub asks: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            type_key: "type".into(),
            price_type: "price_update".into(),
            book_type: "orderbook".into(),
            market: "market_id".into(),
            mid: "mid".into(),
            best_bid: "best_bid".into(),
            best_ask: "best_ask".into(),
            ts: "ts".into(),
            seq: "seq".into(),
            snapshot: "snapshot".into(),
            bids: "bids".into(),
            asks: "asks".into(),
        }
    }
}

impl Layout {
    /// The field names (not the type values) must be distinct, and the two types differ.
    pub fn check(&self) -> Result<(), String> {
        let names = [
            &self.type_key,
            &self.market,
            &self.mid,
            &self.best_bid,
            &self.best_ask,
            &self.ts,
            &self.seq,
            &self.snapshot,
            &self.bids,
            &self.asks,
        ];
        for (i, a) in names.iter().enumerate() {
            if names[i + 1..].contains(a) {
                return Err(format!("field name {a:?} is used twice in the layout"));
            }
        }
        if self.price_type == self.book_type {
            return Err("price_type and book_type must differ".into());
        }
        Ok(())
    }
}

/// A message that could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct MarketError {
    pub message: String,
    pub offset: usize,
    /// The field that does not fit the assumed layout; None when the message is not JSON.
    pub field: Option<String>,
}

impl MarketError {
    /// True for a message that is valid JSON but does not fit the assumed layout.
    pub fn layout(&self) -> bool {
        self.field.is_some()
    }
}

impl std::fmt::Display for MarketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(name) => write!(f, "{name}: {} at byte {}", self.message, self.offset),
            None => write!(f, "{} at byte {}", self.message, self.offset),
        }
    }
}

impl From<JsonError> for MarketError {
    fn from(e: JsonError) -> Self {
        MarketError { message: format!("invalid JSON: {}", e.message), offset: e.offset, field: None }
    }
}

// ------------------------------------------------------------------------------------------
// Outcomes
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Price,
    Book,
}

/// What an order-book message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookStatus {
    /// Applied; the book is in sync.
    Applied,
    /// A delta whose `seq` is not the next one: not applied, the book waits for a snapshot.
    Gap { expected: i64, got: i64 },
    /// Applied, and the book is crossed (best bid >= best ask): it waits for a snapshot.
    Crossed,
    /// A delta for a book that waits for a snapshot: ignored.
    Unsynced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not a market-data message.
    Other,
    Price {
        row: u32,
    },
    Book {
        row: u32,
        status: BookStatus,
    },
}

// ------------------------------------------------------------------------------------------
// Stores
// ------------------------------------------------------------------------------------------

/// The per-market price columns.
pub struct PriceCols<'a> {
    pub mid: &'a mut [f64],
    pub best_bid: &'a mut [f64],
    pub best_ask: &'a mut [f64],
    pub ts: &'a mut [i64],
}

/// Where the price columns live; `grow(n)` keeps the first `capacity()` rows and fills the
/// rest with NaN / 0.
pub trait PriceStore {
    fn capacity(&self) -> usize;
    fn grow(&mut self, n: usize);
    fn cols(&mut self) -> PriceCols<'_>;
}

#[derive(Default)]
pub struct VecStore {
    pub mid: Vec<f64>,
    pub best_bid: Vec<f64>,
    pub best_ask: Vec<f64>,
    pub ts: Vec<i64>,
}

impl PriceStore for VecStore {
    fn capacity(&self) -> usize {
        self.mid.len()
    }

    fn grow(&mut self, n: usize) {
        self.mid.resize(n, f64::NAN);
        self.best_bid.resize(n, f64::NAN);
        self.best_ask.resize(n, f64::NAN);
        self.ts.resize(n, 0);
    }

    fn cols(&mut self) -> PriceCols<'_> {
        PriceCols { mid: &mut self.mid, best_bid: &mut self.best_bid, best_ask: &mut self.best_ask, ts: &mut self.ts }
    }
}

// ------------------------------------------------------------------------------------------
// Books
// ------------------------------------------------------------------------------------------

/// One market's order book: levels `[price, size]`, best first (bids descending, asks
/// ascending), at most `max_levels` per side (the worst are dropped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Book {
    pub bids: Vec<[f64; 2]>,
    pub asks: Vec<[f64; 2]>,
    /// `seq` of the last applied message (None before the first snapshot).
    pub seq: Option<i64>,
    /// A snapshot was applied and no gap or crossing since.
    pub synced: bool,
}

impl Book {
    pub fn crossed(&self) -> bool {
        match (self.bids.first(), self.asks.first()) {
            (Some(b), Some(a)) => b[0] >= a[0],
            _ => false,
        }
    }
}

/// Set one level of a side; `desc` for bids. Size 0 deletes.
#[inline]
fn set_level(side: &mut Vec<[f64; 2]>, price: f64, size: f64, desc: bool) {
    let found = side.binary_search_by(|l| {
        let o = l[0].partial_cmp(&price).expect("finite prices");
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    match found {
        Ok(i) => {
            if size == 0.0 {
                side.remove(i);
            } else {
                side[i][1] = size;
            }
        }
        Err(i) => {
            if size != 0.0 {
                side.insert(i, [price, size]);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Parsing
// ------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Scratch {
    kind: Option<Kind>,
    market: String,
    has_market: bool,
    mid: Option<f64>,
    best_bid: Option<f64>,
    best_ask: Option<f64>,
    ts: Option<i64>,
    seq: Option<i64>,
    snapshot: bool,
    bids: Vec<[f64; 2]>,
    asks: Vec<[f64; 2]>,
    /// First layout problem of a field both types share, of a price field, of a book field.
    bad_common: Option<MarketError>,
    bad_price: Option<MarketError>,
    bad_book: Option<MarketError>,
}

impl Scratch {
    fn reset(&mut self) {
        self.kind = None;
        self.market.clear();
        self.has_market = false;
        self.mid = None;
        self.best_bid = None;
        self.best_ask = None;
        self.ts = None;
        self.seq = None;
        self.snapshot = false;
        self.bids.clear();
        self.asks.clear();
        self.bad_common = None;
        self.bad_price = None;
        self.bad_book = None;
    }
}

#[derive(Clone, Copy)]
enum Field {
    Type,
    Market,
    Mid,
    BestBid,
    BestAsk,
    Ts,
    Seq,
    Snapshot,
    Bids,
    Asks,
    Other,
}

type Bad = (&'static str, usize);

fn price_value(p: &mut Parser<'_>) -> Result<f64, Bad> {
    let at = p.pos;
    match p.peek() {
        Some(b'n') => p.literal(b"null").map(|_| f64::NAN).map_err(|_| ("expected a number or null", at)),
        _ => match p.number() {
            Ok(Number::Int(v)) => Ok(v as f64),
            Ok(Number::Float(v)) => Ok(v),
            Ok(Number::BigInt(s)) => big(s).ok_or(("expected a number or null", at)),
            Err(_) => Err(("expected a number or null", at)),
        },
    }
}

/// An integer outside i64 as the nearest double, when finite.
fn big(digits: &str) -> Option<f64> {
    digits.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn int_value(p: &mut Parser<'_>) -> Result<i64, Bad> {
    let at = p.pos;
    match p.number() {
        Ok(Number::Int(v)) => Ok(v),
        Ok(Number::BigInt(_)) => Err(("integer out of range", at)),
        _ => Err(("expected an integer", at)),
    }
}

fn finite(p: &mut Parser<'_>) -> Result<f64, Bad> {
    let at = p.pos;
    match p.number() {
        Ok(Number::Int(v)) => Ok(v as f64),
        Ok(Number::Float(v)) => Ok(v),
        Ok(Number::BigInt(s)) => big(s).ok_or(("expected a number", at)),
        Err(_) => Err(("expected a number", at)),
    }
}

/// `[[price, size], ...]` with finite prices and sizes >= 0.
fn levels(p: &mut Parser<'_>, out: &mut Vec<[f64; 2]>) -> Result<(), Bad> {
    out.clear();
    if p.peek() != Some(b'[') {
        return Err(("expected an array of [price, size] levels", p.pos));
    }
    p.pos += 1;
    p.ws();
    if p.peek() == Some(b']') {
        p.pos += 1;
        return Ok(());
    }
    loop {
        p.ws();
        let at = p.pos;
        if p.peek() != Some(b'[') {
            return Err(("a level must be a [price, size] array", at));
        }
        p.pos += 1;
        p.ws();
        let price = finite(p)?;
        p.ws();
        if p.peek() != Some(b',') {
            return Err(("a level must be a [price, size] array", at));
        }
        p.pos += 1;
        p.ws();
        let size_at = p.pos;
        let size = finite(p)?;
        if size < 0.0 {
            return Err(("a size must be >= 0", size_at));
        }
        p.ws();
        if p.peek() != Some(b']') {
            return Err(("a level must be a [price, size] array", at));
        }
        p.pos += 1;
        out.push([price, size]);
        p.ws();
        match p.peek() {
            Some(b',') => p.pos += 1,
            Some(b']') => {
                p.pos += 1;
                return Ok(());
            }
            _ => return Err(("expected ',' or ']'", p.pos)),
        }
    }
}

// ------------------------------------------------------------------------------------------
// The core
// ------------------------------------------------------------------------------------------

pub struct MarketCore<S: PriceStore> {
    pub layout: Layout,
    pub store: S,
    pub max_levels: usize,
    rows: AHashMap<String, u32>,
    pub ids: Vec<String>,
    pub books: Vec<Book>,
    scratch: Scratch,
    /// Deltas ignored because their book waited for a snapshot.
    pub ignored: u64,
}

impl<S: PriceStore> MarketCore<S> {
    pub fn new(store: S, layout: Layout, max_levels: usize) -> Self {
        MarketCore {
            layout,
            store,
            max_levels: max_levels.max(1),
            rows: AHashMap::new(),
            ids: Vec::new(),
            books: Vec::new(),
            scratch: Scratch::default(),
            ignored: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn row(&self, market: &str) -> Option<u32> {
        self.rows.get(market).copied()
    }

    pub fn book(&self, market: &str) -> Option<&Book> {
        self.row(market).map(|r| &self.books[r as usize])
    }

    /// `(mid, best_bid, best_ask, ts)` of a market that had a price update.
    pub fn price(&mut self, market: &str) -> Option<(f64, f64, f64, i64)> {
        let r = self.row(market)? as usize;
        let c = self.store.cols();
        if c.ts[r] == i64::MIN {
            return None;
        }
        Some((c.mid[r], c.best_bid[r], c.best_ask[r], c.ts[r]))
    }

    /// `(mid, best_bid, best_ask, ts)` at a row, as stored (ts the minimum i64 before a price).
    pub fn price_at(&mut self, row: usize) -> (f64, f64, f64, i64) {
        let c = self.store.cols();
        (c.mid[row], c.best_bid[row], c.best_ask[row], c.ts[row])
    }

    /// The book waits for a snapshot (after a reconnect, or a resubscribe asked for one).
    pub fn desync(&mut self, market: &str) {
        if let Some(r) = self.row(market) {
            self.books[r as usize].synced = false;
        }
    }

    pub fn desync_all(&mut self) {
        for b in &mut self.books {
            b.synced = false;
        }
    }

    /// Forget a market's book and price (its row is kept for reuse by the same id).
    pub fn reset(&mut self, market: &str) -> bool {
        let Some(r) = self.row(market) else { return false };
        let r = r as usize;
        self.books[r] = Book::default();
        let c = self.store.cols();
        c.mid[r] = f64::NAN;
        c.best_bid[r] = f64::NAN;
        c.best_ask[r] = f64::NAN;
        c.ts[r] = i64::MIN;
        true
    }

    fn intern(&mut self, market: &str) -> u32 {
        if let Some(&r) = self.rows.get(market) {
            return r;
        }
        let r = self.ids.len();
        if r >= self.store.capacity() {
            self.store.grow((2 * r).max(8));
        }
        let c = self.store.cols();
        c.mid[r] = f64::NAN;
        c.best_bid[r] = f64::NAN;
        c.best_ask[r] = f64::NAN;
        c.ts[r] = i64::MIN;
        self.ids.push(market.to_owned());
        self.books.push(Book::default());
        self.rows.insert(market.to_owned(), r as u32);
        r as u32
    }

    fn field(l: &Layout, key: &str) -> Field {
        if key == l.type_key {
            Field::Type
        } else if key == l.market {
            Field::Market
        } else if key == l.mid {
            Field::Mid
        } else if key == l.best_bid {
            Field::BestBid
        } else if key == l.best_ask {
            Field::BestAsk
        } else if key == l.ts {
            Field::Ts
        } else if key == l.seq {
            Field::Seq
        } else if key == l.snapshot {
            Field::Snapshot
        } else if key == l.bids {
            Field::Bids
        } else if key == l.asks {
            Field::Asks
        } else {
            Field::Other
        }
    }

    /// Parse one message into the scratch buffers; Ok(false) for another type.
    fn parse(&mut self, buf: &[u8]) -> Result<bool, MarketError> {
        self.scratch.reset();
        Self::parse_into(&self.layout, buf, &mut self.scratch)
    }

    fn parse_into(layout: &Layout, buf: &[u8], s: &mut Scratch) -> Result<bool, MarketError> {
        let mut p = Parser::new(buf);
        p.ws();
        if p.peek() != Some(b'{') {
            // Not an object: not market data (the caller reports what it is); a syntax
            // error still wins.
            p.skip_value(0)?;
            p.ws();
            if p.pos != buf.len() {
                return Err(JsonError { message: "trailing data after the JSON value".into(), offset: p.pos }.into());
            }
            return Ok(false);
        }
        p.pos += 1;
        p.ws();
        let mut typed = false; // a string `type` was seen
        let mut first = true;
        if p.peek() == Some(b'}') {
            p.pos += 1;
        } else {
            loop {
                p.ws();
                if p.peek() != Some(b'"') {
                    return Err(JsonError { message: "expected a string key".into(), offset: p.pos }.into());
                }
                let key = p.string()?;
                p.ws();
                if p.peek() != Some(b':') {
                    return Err(JsonError { message: "expected ':'".into(), offset: p.pos }.into());
                }
                p.pos += 1;
                p.ws();
                let start = p.pos;
                let field = Self::field(layout, &key);
                let bad: Option<Bad> = match field {
                    Field::Type => {
                        if p.peek() == Some(b'"') {
                            let t = p.string()?;
                            typed = true;
                            s.kind = if *t == *layout.price_type {
                                Some(Kind::Price)
                            } else if *t == *layout.book_type {
                                Some(Kind::Book)
                            } else {
                                None
                            };
                            if first && s.kind.is_none() {
                                return Ok(false); // fast path: someone else's message
                            }
                        } else {
                            typed = false;
                            s.kind = None;
                            p.skip_value(1)?;
                        }
                        None
                    }
                    Field::Market => {
                        if p.peek() == Some(b'"') {
                            let m = p.string()?;
                            s.market.clear();
                            s.market.push_str(&m);
                            s.has_market = true;
                            None
                        } else {
                            Some(("expected a string", start))
                        }
                    }
                    Field::Mid => price_value(&mut p).map(|v| s.mid = Some(v)).err(),
                    Field::BestBid => price_value(&mut p).map(|v| s.best_bid = Some(v)).err(),
                    Field::BestAsk => price_value(&mut p).map(|v| s.best_ask = Some(v)).err(),
                    Field::Ts => int_value(&mut p).map(|v| s.ts = Some(v)).err(),
                    Field::Seq => int_value(&mut p).map(|v| s.seq = Some(v)).err(),
                    Field::Snapshot => match p.peek() {
                        Some(b't' | b'f') => {
                            p.boolean().map(|v| s.snapshot = v).map_err(|_| ("expected a boolean", start)).err()
                        }
                        _ => Some(("expected a boolean", start)),
                    },
                    Field::Bids => levels(&mut p, &mut s.bids).err(),
                    Field::Asks => levels(&mut p, &mut s.asks).err(),
                    Field::Other => {
                        p.skip_value(1)?;
                        None
                    }
                };
                if let Some((message, offset)) = bad {
                    // Rescan the value strictly: invalid JSON wins over a layout problem.
                    p.pos = start;
                    p.skip_value(1)?;
                    let name = match field {
                        Field::Market => &layout.market,
                        Field::Mid => &layout.mid,
                        Field::BestBid => &layout.best_bid,
                        Field::BestAsk => &layout.best_ask,
                        Field::Ts => &layout.ts,
                        Field::Seq => &layout.seq,
                        Field::Snapshot => &layout.snapshot,
                        Field::Bids => &layout.bids,
                        _ => &layout.asks,
                    };
                    let e = MarketError { message: message.into(), offset, field: Some(name.clone()) };
                    let slot = match field {
                        Field::Market => &mut s.bad_common,
                        Field::Mid | Field::BestBid | Field::BestAsk | Field::Ts => &mut s.bad_price,
                        _ => &mut s.bad_book,
                    };
                    if slot.is_none() {
                        *slot = Some(e);
                    }
                }
                first = false;
                p.ws();
                match p.peek() {
                    Some(b',') => p.pos += 1,
                    Some(b'}') => {
                        p.pos += 1;
                        break;
                    }
                    _ => return Err(JsonError { message: "expected ',' or '}'".into(), offset: p.pos }.into()),
                }
            }
        }
        p.ws();
        if p.pos != buf.len() {
            return Err(JsonError { message: "trailing data after the JSON value".into(), offset: p.pos }.into());
        }
        let Some(kind) = s.kind.filter(|_| typed) else { return Ok(false) };
        let end = buf.len();
        let missing = |name: &str| MarketError { message: "missing".into(), offset: end, field: Some(name.to_owned()) };
        // The first layout problem in document order among this type's fields.
        let specific = if kind == Kind::Price { s.bad_price.take() } else { s.bad_book.take() };
        let first_bad = match (s.bad_common.take(), specific) {
            (Some(a), Some(b)) => Some(if a.offset <= b.offset { a } else { b }),
            (a, b) => a.or(b),
        };
        if let Some(e) = first_bad {
            return Err(e);
        }
        if !s.has_market {
            return Err(missing(&layout.market));
        }
        match kind {
            Kind::Price => {
                for (have, name) in [
                    (s.mid.is_some(), &layout.mid),
                    (s.best_bid.is_some(), &layout.best_bid),
                    (s.best_ask.is_some(), &layout.best_ask),
                    (s.ts.is_some(), &layout.ts),
                ] {
                    if !have {
                        return Err(missing(name));
                    }
                }
            }
            Kind::Book => {
                if s.seq.is_none() {
                    return Err(missing(&layout.seq));
                }
            }
        }
        Ok(true)
    }

    /// Apply one message (see the module docs).
    pub fn apply(&mut self, buf: &[u8]) -> Result<Outcome, MarketError> {
        if !self.parse(buf)? {
            return Ok(Outcome::Other);
        }
        let market = std::mem::take(&mut self.scratch.market);
        let row = self.intern(&market);
        self.scratch.market = market;
        let r = row as usize;
        let s = &self.scratch;
        match s.kind {
            Some(Kind::Price) => {
                let c = self.store.cols();
                c.mid[r] = s.mid.unwrap_or(f64::NAN);
                c.best_bid[r] = s.best_bid.unwrap_or(f64::NAN);
                c.best_ask[r] = s.best_ask.unwrap_or(f64::NAN);
                c.ts[r] = s.ts.unwrap_or(0);
                Ok(Outcome::Price { row })
            }
            _ => {
                let seq = s.seq.unwrap_or(0);
                let max = self.max_levels;
                let book = &mut self.books[r];
                let status = if s.snapshot {
                    book.bids.clear();
                    book.asks.clear();
                    for l in &s.bids {
                        set_level(&mut book.bids, l[0], l[1], true);
                    }
                    for l in &s.asks {
                        set_level(&mut book.asks, l[0], l[1], false);
                    }
                    book.seq = Some(seq);
                    book.synced = true;
                    BookStatus::Applied
                } else if !book.synced {
                    self.ignored += 1;
                    BookStatus::Unsynced
                } else {
                    let expected = book.seq.map_or(seq, |q| q.wrapping_add(1));
                    if seq != expected {
                        book.synced = false;
                        BookStatus::Gap { expected, got: seq }
                    } else {
                        for l in &s.bids {
                            set_level(&mut book.bids, l[0], l[1], true);
                        }
                        for l in &s.asks {
                            set_level(&mut book.asks, l[0], l[1], false);
                        }
                        book.seq = Some(seq);
                        BookStatus::Applied
                    }
                };
                book.bids.truncate(max);
                book.asks.truncate(max);
                let status = if status == BookStatus::Applied && book.crossed() {
                    book.synced = false;
                    BookStatus::Crossed
                } else {
                    status
                };
                Ok(Outcome::Book { row, status })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> MarketCore<VecStore> {
        MarketCore::new(VecStore::default(), Layout::default(), 1000)
    }

    fn book(m: &str, seq: i64, snap: bool, bids: &str, asks: &str) -> String {
        format!(r#"{{"type":"orderbook","market_id":"{m}","seq":{seq},"snapshot":{snap},"bids":{bids},"asks":{asks}}}"#)
    }

    #[test]
    fn other_types_return_early() {
        let mut c = core();
        assert_eq!(c.apply(br#"{"type":"trade","market_id":"m","oops""#).unwrap(), Outcome::Other);
        assert_eq!(c.apply(br#"{"market_id":"m","type":"trade"}"#).unwrap(), Outcome::Other);
        assert!(c.apply(br#"{"market_id":"m","type":"trade""#).is_err());
        assert_eq!(c.apply(b"[1,2]").unwrap(), Outcome::Other);
        assert_eq!(c.apply(br#"{"type":5,"market_id":"m"}"#).unwrap(), Outcome::Other);
        assert!(c.is_empty());
    }

    #[test]
    fn price_updates() {
        let mut c = core();
        let m = br#"{"type":"price_update","market_id":"mkt_a","mid":0.5,"best_bid":0.49,"best_ask":0.51,"ts":1700000000000}"#;
        assert_eq!(c.apply(m).unwrap(), Outcome::Price { row: 0 });
        assert_eq!(c.price("mkt_a"), Some((0.5, 0.49, 0.51, 1700000000000)));
        assert_eq!(c.price_at(0), (0.5, 0.49, 0.51, 1700000000000));
        let n = br#"{"ts":5,"best_ask":null,"best_bid":1,"mid":1,"market_id":"mkt_a","type":"price_update"}"#;
        c.apply(n).unwrap();
        let (mid, b, a, ts) = c.price("mkt_a").unwrap();
        assert_eq!((mid, b, ts), (1.0, 1.0, 5));
        assert!(a.is_nan());
        assert_eq!(c.price("nope"), None);
    }

    #[test]
    fn layout_problems_name_the_field() {
        let mut c = core();
        let e = c
            .apply(br#"{"type":"price_update","market_id":"m","mid":"x","best_bid":1,"best_ask":1,"ts":1}"#)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("mid"));
        let e = c.apply(br#"{"type":"price_update","market_id":"m","mid":1,"best_bid":1,"best_ask":1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("ts"));
        let e = c.apply(br#"{"type":"orderbook","market_id":"m","bids":[[1]]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("bids"));
        // A price field on a book message is not its business.
        assert!(c.apply(br#"{"type":"orderbook","market_id":"m","seq":1,"snapshot":true,"mid":"x"}"#).is_ok());
        // Invalid JSON wins over a layout problem.
        let e = c.apply(br#"{"type":"orderbook","market_id":7,"seq":1,"bids":[[1,2],]}"#).unwrap_err();
        assert_eq!(e.field, None);
        let e = c.apply(br#"{"type":"orderbook","market_id":7,"seq":1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("market_id"));
        let e = c.apply(br#"{"type":"orderbook","market_id":"m","seq":1,"asks":[[1,-1]]}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("asks"));
    }

    #[test]
    fn snapshots_deltas_gaps_and_crossings() {
        let mut c = core();
        let o = c.apply(book("m", 5, false, "[[1,1]]", "[]").as_bytes()).unwrap();
        assert_eq!(o, Outcome::Book { row: 0, status: BookStatus::Unsynced });
        c.apply(book("m", 10, true, "[[0.4,1],[0.45,2],[0.3,0]]", "[[0.6,1],[0.55,3]]").as_bytes()).unwrap();
        let b = c.book("m").unwrap();
        assert_eq!(b.bids, vec![[0.45, 2.0], [0.4, 1.0]]);
        assert_eq!(b.asks, vec![[0.55, 3.0], [0.6, 1.0]]);
        assert!(b.synced);
        let o = c.apply(book("m", 11, false, "[[0.45,0],[0.42,5]]", "[[0.57,1]]").as_bytes()).unwrap();
        assert_eq!(o, Outcome::Book { row: 0, status: BookStatus::Applied });
        let b = c.book("m").unwrap();
        assert_eq!(b.bids, vec![[0.42, 5.0], [0.4, 1.0]]);
        assert_eq!(b.asks, vec![[0.55, 3.0], [0.57, 1.0], [0.6, 1.0]]);
        let o = c.apply(book("m", 13, false, "[]", "[]").as_bytes()).unwrap();
        assert_eq!(o, Outcome::Book { row: 0, status: BookStatus::Gap { expected: 12, got: 13 } });
        assert!(!c.book("m").unwrap().synced);
        c.apply(book("m", 20, true, "[[0.5,1]]", "[[0.6,1]]").as_bytes()).unwrap();
        let o = c.apply(book("m", 21, false, "[[0.7,1]]", "[]").as_bytes()).unwrap();
        assert_eq!(o, Outcome::Book { row: 0, status: BookStatus::Crossed });
        assert!(!c.book("m").unwrap().synced);
    }

    #[test]
    fn max_levels_keeps_the_best() {
        let mut c = MarketCore::new(VecStore::default(), Layout::default(), 2);
        c.apply(book("m", 1, true, "[[1,1],[2,1],[3,1]]", "[[5,1],[4,1],[6,1]]").as_bytes()).unwrap();
        let b = c.book("m").unwrap();
        assert_eq!(b.bids, vec![[3.0, 1.0], [2.0, 1.0]]);
        assert_eq!(b.asks, vec![[4.0, 1.0], [5.0, 1.0]]);
    }

    #[test]
    fn configurable_names() {
        let layout = Layout { market: "m".into(), book_type: "book".into(), ..Layout::default() };
        let mut c = MarketCore::new(VecStore::default(), layout, 10);
        let o = c.apply(br#"{"type":"book","m":"x","seq":1,"snapshot":true,"bids":[[1,1]]}"#).unwrap();
        assert_eq!(o, Outcome::Book { row: 0, status: BookStatus::Applied });
        assert_eq!(c.apply(br#"{"type":"orderbook","m":"x"}"#).unwrap(), Outcome::Other);
    }

    #[test]
    fn rows_grow() {
        let mut c = core();
        for i in 0..100 {
            let m =
                format!(r#"{{"type":"price_update","market_id":"m{i}","mid":{i},"best_bid":0,"best_ask":1,"ts":{i}}}"#);
            c.apply(m.as_bytes()).unwrap();
        }
        assert_eq!(c.len(), 100);
        assert_eq!(c.price("m42").unwrap().0, 42.0);
        assert!(c.reset("m42"));
        assert_eq!(c.price("m42"), None);
    }
}
