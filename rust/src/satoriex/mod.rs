//! PyO3 class over `market::MarketCore`: SatoriEx `MarketData`, the per-market prices in
//! numpy columns and the order books, updated straight from each message's bytes.

pub mod market;

use numpy::{PyArray2, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::column::Col;
use crate::errors::build;
use market::{BookStatus, Layout, MarketCore, MarketError, Outcome, PriceCols, PriceStore};

/// `apply` result codes (mirrored as constants in `oddswire.satoriex`).
pub const PRICE: u8 = 1;
pub const BOOK: u8 = 2;
pub const GAP: u8 = 3;
pub const CROSSED: u8 = 4;
pub const UNSYNCED: u8 = 5;

pub(crate) fn market_error(py: Python<'_>, e: &MarketError) -> PyErr {
    let kw = PyDict::new(py);
    let _ = kw.set_item("field", e.field.as_deref());
    build(py, "DecodeError", &e.to_string(), Some(&kw))
}

/// A market-data message as applied: what the C API (`crate::capi`) hands to the Cython
/// listener. `market` is borrowed: `MarketData` keeps its market id strings for its whole
/// life. Price fields are set for `PRICE`, `seq` for the book codes (the `got` of a gap).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MarketOut {
    pub row: i64,
    pub market: *mut pyo3::ffi::PyObject,
    pub mid: f64,
    pub best_bid: f64,
    pub best_ask: f64,
    pub ts: i64,
    pub seq: i64,
}

pub struct NumpyPrices {
    n: usize,
    mid: Col<f64>,
    best_bid: Col<f64>,
    best_ask: Col<f64>,
    ts: Col<i64>,
}

impl PriceStore for NumpyPrices {
    fn capacity(&self) -> usize {
        self.n
    }

    fn grow(&mut self, n: usize) {
        Python::attach(|py| {
            let k = self.n;
            self.mid.resize(py, n, k);
            self.best_bid.resize(py, n, k);
            self.best_ask.resize(py, n, k);
            self.ts.resize(py, n, k);
            self.n = n;
        })
    }

    fn cols(&mut self) -> PriceCols<'_> {
        let n = self.n;
        // SAFETY: each column holds `n` elements of an array this store owns.
        unsafe {
            PriceCols {
                mid: self.mid.slice(n),
                best_bid: self.best_bid.slice(n),
                best_ask: self.best_ask.slice(n),
                ts: self.ts.slice(n),
            }
        }
    }
}

fn levels_array<'py>(py: Python<'py>, levels: &[[f64; 2]]) -> Bound<'py, PyArray2<f64>> {
    let n = levels.len();
    let a = unsafe { PyArray2::<f64>::new(py, [n, 2], false) };
    // SAFETY: a fresh C-contiguous (n, 2) array.
    unsafe { std::slice::from_raw_parts_mut(a.data(), 2 * n) }.copy_from_slice(levels.as_flattened());
    a
}

/// SatoriEx market data: prices per market in numpy columns and an order book per market.
#[pyclass(module = "oddswire_native")]
pub struct MarketData {
    core: MarketCore<NumpyPrices>,
    ids: Vec<Py<PyString>>,
    last_row: i64,
    gap: (i64, i64),
}

impl MarketData {
    fn level_side<'py>(&self, py: Python<'py>, market_id: &str, bids: bool) -> Bound<'py, PyArray2<f64>> {
        match self.core.book(market_id) {
            Some(b) => levels_array(py, if bids { &b.bids } else { &b.asks }),
            None => levels_array(py, &[]),
        }
    }
}

const LAYOUT_KEYS: [&str; 12] = [
    "type",
    "price_type",
    "book_type",
    "market_id",
    "mid",
    "best_bid",
    "best_ask",
    "ts",
    "seq",
    "snapshot",
    "bids",
    "asks",
];

#[pymethods]
impl MarketData {
    #[new]
    #[pyo3(signature = (*, max_levels=1000, layout=None, capacity=16))]
    fn new(py: Python<'_>, max_levels: usize, layout: Option<&Bound<'_, PyDict>>, capacity: usize) -> PyResult<Self> {
        let mut l = Layout::default();
        if let Some(d) = layout {
            for (k, v) in d.iter() {
                let k: String = k.extract()?;
                let v: String = v.extract()?;
                let slot = match k.as_str() {
                    "type" => &mut l.type_key,
                    "price_type" => &mut l.price_type,
                    "book_type" => &mut l.book_type,
                    "market_id" => &mut l.market,
                    "mid" => &mut l.mid,
                    "best_bid" => &mut l.best_bid,
                    "best_ask" => &mut l.best_ask,
                    "ts" => &mut l.ts,
                    "seq" => &mut l.seq,
                    "snapshot" => &mut l.snapshot,
                    "bids" => &mut l.bids,
                    "asks" => &mut l.asks,
                    _ => {
                        return Err(crate::errors::config_error(&format!(
                            "unknown layout key {k:?}; known: {}",
                            LAYOUT_KEYS.join(", ")
                        )))
                    }
                };
                *slot = v;
            }
        }
        l.check().map_err(|m| crate::errors::config_error(&m))?;
        if max_levels == 0 {
            return Err(crate::errors::config_error("max_levels must be >= 1"));
        }
        let n = capacity.clamp(8, 1 << 30);
        let store = NumpyPrices {
            n,
            mid: Col::new(py, n, f64::NAN),
            best_bid: Col::new(py, n, f64::NAN),
            best_ask: Col::new(py, n, f64::NAN),
            ts: Col::new(py, n, i64::MIN),
        };
        Ok(MarketData { core: MarketCore::new(store, l, max_levels), ids: Vec::new(), last_row: -1, gap: (0, 0) })
    }

    /// Apply one message (bytes or str). A `price_update` or `orderbook` message updates the
    /// prices or the book and returns a code: 1 price, 2 book applied, 3 seq gap (not
    /// applied; `gap` holds `(expected, got)`), 4 applied and crossed, 5 ignored (the book
    /// waits for a snapshot); `last_row` / `last_market` name the market. Any other message
    /// returns None, unread past its `type` when that comes first. Atomic: a `DecodeError`
    /// (invalid JSON: `field` None; a layout mismatch: `field` names it) changes nothing.
    fn apply(&mut self, py: Python<'_>, frame: &Bound<'_, PyAny>) -> PyResult<Option<u8>> {
        let buf = crate::frame_bytes(frame)?;
        match self.apply_bytes(py, buf, None) {
            Ok(0) => Ok(None),
            Ok(code) => Ok(Some(code)),
            Err(e) => Err(market_error(py, &e)),
        }
    }

    /// The row of the market of the last applied message (-1 before the first).
    #[getter]
    fn last_row(&self) -> i64 {
        self.last_row
    }

    /// The market id of the last applied message (None before the first).
    #[getter]
    fn last_market(&self, py: Python<'_>) -> Option<Py<PyString>> {
        usize::try_from(self.last_row).ok().map(|r| self.ids[r].clone_ref(py))
    }

    /// `(expected, got)` of the last seq gap.
    #[getter]
    fn gap(&self) -> (i64, i64) {
        self.gap
    }

    /// `(mid, best_bid, best_ask, ts)` of a market, or None before its first price update.
    fn get(&mut self, market_id: &str) -> Option<(f64, f64, f64, i64)> {
        self.core.price(market_id)
    }

    /// The row of a market (in the price columns), or -1.
    fn row(&self, market_id: &str) -> i64 {
        self.core.row(market_id).map_or(-1, i64::from)
    }

    /// Market ids by row.
    fn market_ids(&self) -> Vec<String> {
        self.core.ids.clone()
    }

    fn __contains__(&self, market_id: &str) -> bool {
        self.core.row(market_id).is_some()
    }

    fn __len__(&self) -> usize {
        self.core.len()
    }

    /// Bid levels of a market as a fresh `(n, 2)` float64 array `[price, size]`, best first.
    fn bids<'py>(&self, py: Python<'py>, market_id: &str) -> Bound<'py, PyArray2<f64>> {
        self.level_side(py, market_id, true)
    }

    /// Ask levels, best (lowest) first.
    fn asks<'py>(&self, py: Python<'py>, market_id: &str) -> Bound<'py, PyArray2<f64>> {
        self.level_side(py, market_id, false)
    }

    /// `seq` of the last applied book message (None before a snapshot).
    fn seq(&self, market_id: &str) -> Option<i64> {
        self.core.book(market_id).and_then(|b| b.seq)
    }

    /// True while the market's book is a snapshot plus every delta since.
    fn synced(&self, market_id: &str) -> bool {
        self.core.book(market_id).is_some_and(|b| b.synced)
    }

    /// Make the market's book wait for a snapshot (deltas are ignored until then).
    fn desync(&mut self, market_id: &str) {
        self.core.desync(market_id)
    }

    /// Every book waits for a snapshot (after a reconnect).
    fn desync_all(&mut self) {
        self.core.desync_all()
    }

    /// Forget a market's price and book; True when it was known.
    fn reset(&mut self, market_id: &str) -> bool {
        self.core.reset(market_id)
    }

    /// Deltas ignored because their book waited for a snapshot.
    #[getter]
    fn ignored(&self) -> u64 {
        self.core.ignored
    }

    #[getter]
    fn max_levels(&self) -> usize {
        self.core.max_levels
    }

    /// The wire names in use (see `LAYOUT_KEYS` for the keys).
    #[getter]
    fn layout<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let l = &self.core.layout;
        let d = PyDict::new(py);
        for (k, v) in LAYOUT_KEYS.iter().zip([
            &l.type_key,
            &l.price_type,
            &l.book_type,
            &l.market,
            &l.mid,
            &l.best_bid,
            &l.best_ask,
            &l.ts,
            &l.seq,
            &l.snapshot,
            &l.bids,
            &l.asks,
        ]) {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Read-only view of the `mid` column over the market rows (NaN before a price).
    #[getter]
    fn mid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.core.store.mid.view(py, self.core.len())
    }

    #[getter]
    fn best_bid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.core.store.best_bid.view(py, self.core.len())
    }

    #[getter]
    fn best_ask<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.core.store.best_ask.view(py, self.core.len())
    }

    /// `ts` column (ms as sent; the minimum int64 before a price).
    #[getter]
    fn ts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.core.store.ts.view(py, self.core.len())
    }

    fn __repr__(&self) -> String {
        let synced = self.core.books.iter().filter(|b| b.synced).count();
        format!("MarketData(markets={}, books_synced={synced})", self.core.len())
    }
}

impl MarketData {
    /// `apply` on bytes: 0 for another type, else the result code (and, with `out`, what
    /// was applied; see `MarketOut`). Atomic, like `apply`.
    pub fn apply_bytes(&mut self, py: Python<'_>, buf: &[u8], out: Option<&mut MarketOut>) -> Result<u8, MarketError> {
        let (row, code) = match self.core.apply(buf)? {
            Outcome::Other => return Ok(0),
            Outcome::Price { row } => (row, PRICE),
            Outcome::Book { row, status } => (
                row,
                match status {
                    BookStatus::Applied => BOOK,
                    BookStatus::Gap { expected, got } => {
                        self.gap = (expected, got);
                        GAP
                    }
                    BookStatus::Crossed => CROSSED,
                    BookStatus::Unsynced => UNSYNCED,
                },
            ),
        };
        self.seen(py, row);
        if let Some(o) = out {
            let r = row as usize;
            o.row = i64::from(row);
            o.market = self.ids[r].as_ptr();
            if code == PRICE {
                (o.mid, o.best_bid, o.best_ask, o.ts) = self.core.price_at(r);
            } else if code == GAP {
                o.seq = self.gap.1;
            } else {
                o.seq = self.core.books[r].seq.unwrap_or(i64::MIN);
            }
        }
        Ok(code)
    }

    #[inline]
    fn seen(&mut self, py: Python<'_>, row: u32) {
        let r = row as usize;
        while self.ids.len() <= r {
            let id = &self.core.ids[self.ids.len()];
            self.ids.push(PyString::intern(py, id).unbind());
        }
        self.last_row = i64::from(row);
    }
}
