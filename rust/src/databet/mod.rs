//! PyO3 classes over `odds::OddsCore`: the DATA.BET `OddsTable` with numpy row columns,
//! the `Applied` result of one line and the `SportEvent` view of an event's side objects.

pub mod id;
pub mod odds;

use std::ops::Range;

use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySlice, PyString, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use crate::betcore::untracked;
use crate::errors::{build, loads};
use crate::frame_bytes;
use crate::json::Parser;
use odds::{parse_log_into, Cols, ColumnStore, Kind, LogError, OddsCore, Outcome};

/// A DATA.BET line that could not be applied; `index` is its position in an `apply_many` batch.
fn log_error(py: Python<'_>, e: &LogError, index: Option<usize>) -> PyErr {
    let kw = PyDict::new(py);
    let _ = kw.set_item("field", e.field.as_deref());
    let _ = kw.set_item("sport_event_id", e.sport_event_id.as_deref());
    let _ = kw.set_item("version", e.version.as_deref());
    let _ = kw.set_item("index", index);
    build(py, "DecodeError", &format!("{} at byte {}", e.message, e.offset), Some(&kw))
}

/// Stored JSON that orjson refused on read (`apply` refuses what it cannot read back, so this
/// is a second line of defence): a `DecodeError` naming the object, with orjson's error as
/// its `__cause__`.
fn stored_json_error(
    py: Python<'_>,
    cause: PyErr,
    field: &str,
    sport_event_id: Option<&str>,
    version: Option<&str>,
) -> PyErr {
    let kw = PyDict::new(py);
    let _ = kw.set_item("field", field);
    let _ = kw.set_item("sport_event_id", sport_event_id);
    let _ = kw.set_item("version", version);
    let err = build(py, "DecodeError", &format!("stored {field} is not readable JSON: {}", cause.value(py)), Some(&kw));
    err.set_cause(py, Some(cause));
    err
}

/// Data pointers of the numpy columns, refreshed whenever the arrays are reallocated.
struct ColPtrs {
    value: *mut f64,
    probability: *mut f64,
    status: *mut i8,
    is_active: *mut bool,
    event: *mut i32,
    market: *mut i32,
}
// SAFETY: the pointers are only dereferenced while attached to the interpreter, which owns
// the arrays; the table never hands them to another thread.
unsafe impl Send for ColPtrs {}
unsafe impl Sync for ColPtrs {}

/// Row columns as numpy arrays owned by the table. A growth allocates new arrays, so views
/// taken before it stay valid (and stale) rather than dangling.
pub struct NumpyStore {
    value: Py<PyArray1<f64>>,
    probability: Py<PyArray1<f64>>,
    status: Py<PyArray1<i8>>,
    is_active: Py<PyArray1<bool>>,
    event: Py<PyArray1<i32>>,
    market: Py<PyArray1<i32>>,
    ptrs: ColPtrs,
    capacity: usize,
}

fn filled<'py, T: numpy::Element + Copy>(
    py: Python<'py>,
    n: usize,
    v: T,
    old: Option<&Bound<'py, PyArray1<T>>>,
    keep: usize,
) -> Bound<'py, PyArray1<T>> {
    let a = unsafe { PyArray1::<T>::new(py, n, false) };
    // SAFETY: fresh, contiguous, n elements; `old` holds at least `keep`.
    unsafe {
        let dst = std::slice::from_raw_parts_mut(a.data(), n);
        if let Some(o) = old {
            dst[..keep].copy_from_slice(std::slice::from_raw_parts(o.data(), keep));
        }
        dst[keep..].fill(v);
    }
    a
}

impl NumpyStore {
    fn new(py: Python<'_>, n: usize) -> Self {
        let mut s = NumpyStore {
            value: filled(py, n, f64::NAN, None, 0).unbind(),
            probability: filled(py, n, f64::NAN, None, 0).unbind(),
            status: filled(py, n, -1i8, None, 0).unbind(),
            is_active: filled(py, n, false, None, 0).unbind(),
            event: filled(py, n, -1i32, None, 0).unbind(),
            market: filled(py, n, -1i32, None, 0).unbind(),
            ptrs: ColPtrs {
                value: std::ptr::null_mut(),
                probability: std::ptr::null_mut(),
                status: std::ptr::null_mut(),
                is_active: std::ptr::null_mut(),
                event: std::ptr::null_mut(),
                market: std::ptr::null_mut(),
            },
            capacity: n,
        };
        s.refresh(py);
        s
    }

    fn refresh(&mut self, py: Python<'_>) {
        self.ptrs = ColPtrs {
            value: self.value.bind(py).data(),
            probability: self.probability.bind(py).data(),
            status: self.status.bind(py).data(),
            is_active: self.is_active.bind(py).data(),
            event: self.event.bind(py).data(),
            market: self.market.bind(py).data(),
        };
    }

    fn arrays<'py>(&self, py: Python<'py>) -> [(&'static str, Bound<'py, PyAny>); 6] {
        [
            ("value", self.value.bind(py).clone().into_any()),
            ("probability", self.probability.bind(py).clone().into_any()),
            ("status", self.status.bind(py).clone().into_any()),
            ("is_active", self.is_active.bind(py).clone().into_any()),
            ("event", self.event.bind(py).clone().into_any()),
            ("market", self.market.bind(py).clone().into_any()),
        ]
    }
}

impl ColumnStore for NumpyStore {
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn grow(&mut self, n: usize) {
        Python::attach(|py| {
            let k = self.capacity;
            self.value = filled(py, n, f64::NAN, Some(self.value.bind(py)), k).unbind();
            self.probability = filled(py, n, f64::NAN, Some(self.probability.bind(py)), k).unbind();
            self.status = filled(py, n, -1i8, Some(self.status.bind(py)), k).unbind();
            self.is_active = filled(py, n, false, Some(self.is_active.bind(py)), k).unbind();
            self.event = filled(py, n, -1i32, Some(self.event.bind(py)), k).unbind();
            self.market = filled(py, n, -1i32, Some(self.market.bind(py)), k).unbind();
            self.capacity = n;
            self.refresh(py);
        })
    }

    fn cols(&mut self) -> Cols<'_> {
        let n = self.capacity;
        // SAFETY: each pointer addresses `capacity` elements of an array this store owns.
        unsafe {
            Cols {
                value: std::slice::from_raw_parts_mut(self.ptrs.value, n),
                probability: std::slice::from_raw_parts_mut(self.ptrs.probability, n),
                status: std::slice::from_raw_parts_mut(self.ptrs.status, n),
                is_active: std::slice::from_raw_parts_mut(self.ptrs.is_active, n),
                event: std::slice::from_raw_parts_mut(self.ptrs.event, n),
                market: std::slice::from_raw_parts_mut(self.ptrs.market, n),
            }
        }
    }
}

type Span = Option<(u32, u32)>;

fn span(r: &Option<Range<usize>>) -> Span {
    r.as_ref().map(|r| (r.start as u32, r.end as u32))
}

/// What one applied DATA.BET line was and what it changed. Strings and the payload are
/// decoded from the line only when read.
#[pyclass(module = "oddswire_native", frozen)]
pub struct Applied {
    kind: Kind,
    line: Py<PyAny>,
    event_type: Span,
    sport_event_id: Span,
    version: Span,
    payload: Span,
    timestamp_ns: Option<i64>,
    outcome: Outcome,
}

impl Applied {
    fn bytes<'a>(&'a self, py: Python<'a>) -> &'a [u8] {
        frame_bytes(self.line.bind(py)).expect("checked on apply")
    }

    fn string(&self, py: Python<'_>, s: Span) -> PyResult<Option<Py<PyString>>> {
        let Some((a, b)) = s else { return Ok(None) };
        let buf = self.bytes(py);
        let mut p = Parser::new(&buf[..b as usize]);
        p.pos = a as usize;
        let s = p.string().expect("checked on apply");
        Ok(Some(PyString::new(py, &s).unbind()))
    }
}

fn kind_name(py: Python<'_>, k: Kind) -> Bound<'_, PyString> {
    macro_rules! i {
        ($s:literal) => {
            pyo3::intern!(py, $s).clone()
        };
    }
    match k {
        Kind::Snapshot => i!("sport_event_snapshot"),
        Kind::Added => i!("sport_event_added"),
        Kind::Markets => i!("markets_updated"),
        Kind::BetStop => i!("bet_stop_updated"),
        Kind::Fixture => i!("fixture_updated"),
        Kind::Scores => i!("competitor_scores_updated"),
        Kind::GameState => i!("game_state_updated"),
        Kind::Extensions => i!("extensions_updated"),
        Kind::Rollback => i!("bets_rollback"),
        Kind::Heartbeat => i!("heartbeat"),
        Kind::Unknown => i!("unknown"),
    }
}

#[pymethods]
impl Applied {
    /// The collector sees the line: a `bytes` / `str` subclass instance may carry a
    /// `__dict__` that points back here (an exact one is never tracked: see `apply_one`).
    /// No `__clear__`: such a cycle is broken by clearing the line's `__dict__`.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.line)
    }

    /// The line's `event_type` as sent (an event type this version does not know included).
    #[getter]
    fn event_type(&self, py: Python<'_>) -> PyResult<Py<PyString>> {
        if self.kind != Kind::Unknown {
            return Ok(kind_name(py, self.kind).unbind());
        }
        Ok(self.string(py, self.event_type)?.expect("event_type is required"))
    }

    /// False when the event type is one this version does not know (the line changed nothing).
    #[getter]
    fn known_type(&self) -> bool {
        self.kind != Kind::Unknown
    }

    #[getter]
    fn sport_event_id(&self, py: Python<'_>) -> PyResult<Option<Py<PyString>>> {
        self.string(py, self.sport_event_id)
    }

    #[getter]
    fn version(&self, py: Python<'_>) -> PyResult<Option<Py<PyString>>> {
        self.string(py, self.version)
    }

    #[getter]
    fn timestamp_ns(&self) -> Option<i64> {
        self.timestamp_ns
    }

    /// False when the line names a sport event the table does not hold: nothing changed,
    /// and the client should refetch that event.
    #[getter]
    fn known_event(&self) -> bool {
        self.outcome.known
    }

    #[getter]
    fn rows_written(&self) -> u32 {
        self.outcome.rows_written
    }

    #[getter]
    fn rows_removed(&self) -> u32 {
        self.outcome.rows_removed
    }

    #[getter]
    fn markets_changed(&self) -> u32 {
        self.outcome.markets
    }

    /// The line's payload decoded with orjson (each read decodes again).
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.payload {
            None => Ok(py.None().into_bound(py)),
            Some((a, b)) => loads(py, &self.bytes(py)[a as usize..b as usize], |e| {
                let text = |s: Span| self.string(py, s).ok().flatten().map(|s| s.bind(py).to_string());
                let (sid, ver) = (text(self.sport_event_id), text(self.version));
                stored_json_error(py, e, "payload", sid.as_deref(), ver.as_deref())
            }),
        }
    }

    #[getter]
    fn line(&self, py: Python<'_>) -> Py<PyAny> {
        self.line.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let q = |s: Option<Py<PyString>>| -> PyResult<String> {
            match s {
                None => Ok("None".to_string()),
                Some(s) => Ok(s.bind(py).repr()?.to_string()),
            }
        };
        let sid = q(self.string(py, self.sport_event_id)?)?;
        let ver = q(self.string(py, self.version)?)?;
        Ok(format!(
            "Applied({}, sport_event_id={}, version={}, known_event={}, rows_written={}, rows_removed={})",
            self.event_type(py)?.bind(py).repr()?,
            sid,
            ver,
            if self.outcome.known { "True" } else { "False" },
            self.outcome.rows_written,
            self.outcome.rows_removed
        ))
    }
}

/// One sport event's state: fixture, scores, game state and extensions as the feed sent
/// them (decoded with orjson when read), plus what the table derived from them.
#[pyclass(module = "oddswire_native", frozen)]
pub struct SportEvent {
    #[pyo3(get)]
    sport_event_id: String,
    #[pyo3(get)]
    sport_id: String,
    #[pyo3(get)]
    status: i8,
    #[pyo3(get)]
    bet_stop: bool,
    #[pyo3(get)]
    version: String,
    #[pyo3(get)]
    ended_at_ns: Option<i64>,
    #[pyo3(get)]
    market_ids: Vec<String>,
    fixture: Py<PyBytes>,
    scores: Option<Py<PyBytes>>,
    game_state: Option<Py<PyBytes>>,
    extensions: Option<Py<PyBytes>>,
}

impl SportEvent {
    fn decode<'py>(&self, py: Python<'py>, field: &str, raw: Option<&Py<PyBytes>>) -> PyResult<Bound<'py, PyAny>> {
        match raw {
            None => Ok(py.None().into_bound(py)),
            Some(b) => loads(py, b.bind(py).as_bytes(), |e| {
                stored_json_error(py, e, field, Some(&self.sport_event_id), Some(&self.version))
            }),
        }
    }
}

#[pymethods]
impl SportEvent {
    #[getter]
    fn fixture<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.decode(py, "fixture", Some(&self.fixture))
    }
    #[getter]
    fn scores<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.decode(py, "scores", self.scores.as_ref())
    }
    #[getter]
    fn game_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.decode(py, "game_state", self.game_state.as_ref())
    }
    #[getter]
    fn extensions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.decode(py, "extensions", self.extensions.as_ref())
    }
    /// The raw JSON of one side object: "fixture", "scores", "game_state" or "extensions".
    fn raw(&self, py: Python<'_>, name: &str) -> PyResult<Option<Py<PyBytes>>> {
        Ok(match name {
            "fixture" => Some(self.fixture.clone_ref(py)),
            "scores" => self.scores.as_ref().map(|b| b.clone_ref(py)),
            "game_state" => self.game_state.as_ref().map(|b| b.clone_ref(py)),
            "extensions" => self.extensions.as_ref().map(|b| b.clone_ref(py)),
            _ => return Err(pyo3::exceptions::PyKeyError::new_err(name.to_string())),
        })
    }
    fn __repr__(&self) -> String {
        format!(
            "SportEvent({:?}, sport_id={:?}, status={}, bet_stop={}, markets={}, version={:?})",
            self.sport_event_id,
            self.sport_id,
            self.status,
            if self.bet_stop { "True" } else { "False" },
            self.market_ids.len(),
            self.version
        )
    }
}

/// Ask the CPU for the first cache lines of a bytes line (a hint: nothing is read here).
fn prefetch_frame(obj: &Bound<'_, PyAny>) {
    if let Ok(b) = obj.cast::<PyBytes>() {
        let data = b.as_bytes();
        crate::prefetch(data.as_ptr(), data.len().min(512));
    }
}

/// The replicated DATA.BET state: one row per live odd, in numpy columns.
#[pyclass(module = "oddswire_native")]
pub struct OddsTable {
    core: OddsCore<NumpyStore>,
}

impl OddsTable {
    /// Apply one line and say what it changed; the table keeps nothing of the line.
    fn apply_line(&mut self, py: Python<'_>, line: &Bound<'_, PyAny>, index: Option<usize>) -> PyResult<Outcome> {
        let buf = frame_bytes(line)?;
        self.core.apply(buf).map_err(|e| log_error(py, &e, index))
    }

    fn apply_one<'py>(
        &mut self,
        py: Python<'py>,
        line: &Bound<'py, PyAny>,
        index: Option<usize>,
    ) -> PyResult<Bound<'py, Applied>> {
        let buf = frame_bytes(line)?;
        let mut log = self.core.scratch.log();
        if let Err(e) = parse_log_into(buf, &mut log) {
            self.core.scratch.keep(log);
            return Err(log_error(py, &e, index));
        }
        let outcome = self.core.apply_parsed(buf, &log);
        let applied = Applied {
            kind: log.kind.expect("parsed"),
            line: line.clone().unbind(),
            event_type: span(&log.event_type),
            sport_event_id: span(&log.sport_event_id_span),
            version: span(&log.version_span),
            payload: span(&log.payload),
            timestamp_ns: log.timestamp_ns,
            outcome,
        };
        self.core.scratch.keep(log);
        // An exact bytes or str holds no references, so the result can never be part of a
        // cycle: untracked, a batch of them costs the collector nothing. (A subclass instance
        // may carry a __dict__ that points back, so it stays tracked, and __traverse__
        // shows the collector the line.)
        if line.is_exact_instance_of::<PyBytes>() || line.is_exact_instance_of::<PyString>() {
            untracked(py, applied)
        } else {
            Bound::new(py, applied)
        }
    }

    fn view<'py>(&self, py: Python<'py>, a: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        a.get_item(PySlice::new(py, 0, self.core.high as isize, 1))
    }
}

#[pymethods]
impl OddsTable {
    #[new]
    #[pyo3(signature = (capacity=1024, retention_s=None))]
    fn new(py: Python<'_>, capacity: usize, retention_s: Option<f64>) -> PyResult<Self> {
        let mut core = OddsCore::new(NumpyStore::new(py, capacity.max(64)));
        core.retention_ns = match retention_s {
            None => None,
            Some(s) if s >= 0.0 && s.is_finite() => Some((s * 1e9) as i64),
            Some(_) => return Err(crate::errors::config_error("retention_s must be a finite number >= 0")),
        };
        Ok(OddsTable { core })
    }

    /// Apply one log line (bytes, as it came off the wire); atomic: a `DecodeError` leaves
    /// the table unchanged.
    fn apply<'py>(&mut self, py: Python<'py>, line: &Bound<'py, PyAny>) -> PyResult<Bound<'py, Applied>> {
        self.apply_one(py, line, None)
    }

    /// Apply lines in order. On a bad line the ones before it stay applied and the
    /// `DecodeError` carries `.index` and `.applied` (their results). With `results=False`
    /// no `Applied` is built: the call returns how many lines it applied, and `.applied` on
    /// an error is that count too.
    #[pyo3(signature = (lines, *, results=true))]
    fn apply_many<'py>(
        &mut self,
        py: Python<'py>,
        lines: &Bound<'py, PyAny>,
        results: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        // A batch in a list (a backlog, a recording) is often cold in the cache: start loading
        // the next line while this one is applied. Only a list is looked ahead into, so an
        // iterator is never advanced past a line that fails.
        let list = lines.cast::<PyList>().ok().filter(|_| lines.is_exact_instance_of::<PyList>());
        let prefetch_after = |i: usize| {
            if let Some(l) = list {
                if i + 1 < l.len() {
                    if let Ok(next) = l.get_item(i + 1) {
                        prefetch_frame(&next);
                    }
                }
            }
        };
        if !results {
            let mut n = 0usize;
            for line in lines.try_iter()? {
                prefetch_after(n);
                if let Err(e) = self.apply_line(py, &line?, Some(n)) {
                    let _ = e.value(py).setattr("applied", n);
                    return Err(e);
                }
                n += 1;
            }
            return Ok(n.into_pyobject(py)?.into_any());
        }
        let out = PyList::empty(py);
        for (i, line) in lines.try_iter()?.enumerate() {
            prefetch_after(i);
            match self.apply_one(py, &line?, Some(i)) {
                Ok(a) => out.append(a)?,
                Err(e) => {
                    let _ = e.value(py).setattr("applied", &out);
                    return Err(e);
                }
            }
        }
        Ok(out.into_any())
    }

    /// `(value, probability, status, is_active)` of one odd, or None.
    fn get(&mut self, sport_event_id: &str, market_id: &str, odd_id: &str) -> Option<(f64, f64, i8, bool)> {
        self.core.get(sport_event_id, market_id, odd_id)
    }

    /// The row of one odd in the columns, or -1.
    fn row(&self, sport_event_id: &str, market_id: &str, odd_id: &str) -> i64 {
        self.core.row(sport_event_id, market_id, odd_id).map_or(-1, |r| r as i64)
    }

    /// `(sport_event_id, market_id, odd_id)` of a live row, or None for a free one.
    fn key(&mut self, row: usize) -> Option<(String, String, String)> {
        self.core.key(row).map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    }

    fn is_bettable(&mut self, sport_event_id: &str, market_id: &str, odd_id: &str) -> bool {
        self.core.is_bettable(sport_event_id, market_id, odd_id)
    }

    /// The bettable rule for every row at once (free rows are False).
    fn bettable_mask<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        let n = self.core.high;
        let a = PyArray1::<bool>::zeros(py, n, false);
        // SAFETY: a fresh contiguous array of n elements.
        let out = unsafe { std::slice::from_raw_parts_mut(a.data(), n) };
        self.core.bettable_into(out);
        a
    }

    /// Views of the row columns (`value`, `probability`, `status`, `is_active`, `event`,
    /// `market`) over the rows handed out so far. A growth reallocates: take new views after
    /// applying, or look rows up with `row`.
    #[getter]
    fn odds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, a) in self.core.store.arrays(py) {
            d.set_item(name, self.view(py, a)?)?;
        }
        Ok(d)
    }

    /// Version of the last applied log ("" before the first).
    #[getter]
    fn version(&self) -> &str {
        &self.core.version
    }

    /// The feed-health flag: False makes every row unbettable.
    #[getter]
    fn healthy(&self) -> bool {
        self.core.healthy
    }

    #[setter]
    fn set_healthy(&mut self, v: bool) {
        self.core.healthy = v;
    }

    #[getter]
    fn rows(&self) -> usize {
        self.core.high
    }

    #[getter]
    fn capacity(&self) -> usize {
        self.core.store.capacity
    }

    #[getter]
    fn event_count(&self) -> usize {
        self.core.event_count()
    }

    fn sport_event_ids(&self) -> Vec<String> {
        self.core.event_ids().map(str::to_string).collect()
    }

    fn __contains__(&self, sport_event_id: &str) -> bool {
        self.core.event_slot(sport_event_id).is_some()
    }

    /// One sport event's state, or None.
    fn event(&self, py: Python<'_>, sport_event_id: &str) -> Option<SportEvent> {
        let e = self.core.event_by_id(sport_event_id)?;
        let b = |r: &Option<Box<[u8]>>| r.as_ref().map(|r| PyBytes::new(py, r).unbind());
        let mut market_ids: Vec<String> = self.core.market_slots(e).map(|(k, _)| k.to_string()).collect();
        market_ids.sort_unstable();
        Some(SportEvent {
            sport_event_id: e.id.to_string(),
            sport_id: e.sport_id.to_string(),
            status: e.status,
            bet_stop: e.bet_stop,
            version: e.version.to_string(),
            ended_at_ns: e.ended_at_ns,
            market_ids,
            fixture: PyBytes::new(py, &e.fixture).unbind(),
            scores: b(&e.scores),
            game_state: b(&e.game_state),
            extensions: b(&e.extensions),
        })
    }

    /// `(status, type_id, specifiers, {odd_id: row})` of one market, or None.
    fn market<'py>(
        &self,
        py: Python<'py>,
        sport_event_id: &str,
        market_id: &str,
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        let Some(slot) = self.core.market_slot(sport_event_id, market_id) else { return Ok(None) };
        let m = self.core.market(slot).expect("live market");
        let rows = PyDict::new(py);
        for (id, row) in self.core.market_odds(slot) {
            rows.set_item(id, row)?;
        }
        Ok(Some(PyTuple::new(
            py,
            [
                m.status.into_pyobject(py)?.into_any(),
                m.type_id.into_pyobject(py)?.into_any(),
                PyString::new(py, m.specifiers.as_str()).into_any(),
                rows.into_any(),
            ],
        )?))
    }

    /// Evict events whose fixture ended at or before `before_ns` (log time); returns how many.
    fn evict_ended(&mut self, before_ns: i64) -> usize {
        self.core.evict_ended(before_ns)
    }

    /// Drop one sport event and its rows. True when it was there.
    fn remove_event(&mut self, sport_event_id: &str) -> bool {
        self.core.remove_event(sport_event_id)
    }

    /// Forget every event and the version (before a full resync).
    fn clear(&mut self) {
        self.core.clear()
    }

    /// Live odds rows.
    fn __len__(&self) -> usize {
        self.core.live
    }

    fn __repr__(&self) -> String {
        format!(
            "OddsTable(events={}, odds={}, rows={}, version={:?}, healthy={})",
            self.core.event_count(),
            self.core.live,
            self.core.high,
            self.core.version,
            if self.core.healthy { "True" } else { "False" }
        )
    }
}
