//! PyO3 classes over `games::GamesCore`: the BETCORE `GamesTable` with numpy columns, the
//! `GamesUpdate` an applied record returns and the `Game` view of one game.

pub mod games;

use numpy::{PyArray1, PyArrayMethods};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use smallvec::SmallVec;

use crate::column::Col;
use crate::errors::build;
use games::{EventCols, GameCols, GamesCore, GamesError, GamesStore};

/// Stored JSON decoded with orjson; a refusal (it cannot happen for what `apply` accepted)
/// is a `DecodeError` naming the object, with orjson's error as its cause.
fn loads<'py>(py: Python<'py>, raw: &[u8], field: &str, game_id: i64) -> PyResult<Bound<'py, PyAny>> {
    crate::errors::loads(py, raw, |e| {
        let kw = PyDict::new(py);
        let _ = kw.set_item("field", field);
        let err =
            build(py, "DecodeError", &format!("stored {field} of game {game_id} is not readable JSON"), Some(&kw));
        err.set_cause(py, Some(e));
        err
    })
}

fn games_error(py: Python<'_>, e: &GamesError) -> PyErr {
    let kw = PyDict::new(py);
    let _ = kw.set_item("field", e.field.as_deref());
    let message = match &e.field {
        Some(path) => format!("{path}: {} at byte {}", e.message, e.offset),
        None => format!("{} at byte {}", e.message, e.offset),
    };
    build(py, "DecodeError", &message, Some(&kw))
}

// ------------------------------------------------------------------------------------------
// numpy columns
// ------------------------------------------------------------------------------------------

pub struct NumpyStore {
    games_n: usize,
    events_n: usize,
    id: Col<i64>,
    typ: Col<i64>,
    state: Col<i8>,
    play_status: Col<i8>,
    round: Col<i64>,
    last_round_id: Col<i64>,
    start: Col<i64>,
    finish: Col<i64>,
    live: Col<bool>,
    betting_time: Col<f64>,
    maintenance: Col<bool>,
    ev_game: Col<i32>,
    ev_type: Col<i64>,
    coefficient: Col<f64>,
    blocked: Col<bool>,
}

impl NumpyStore {
    fn new(py: Python<'_>, games: usize, events: usize) -> Self {
        NumpyStore {
            games_n: games,
            events_n: events,
            id: Col::new(py, games, 0),
            typ: Col::new(py, games, 0),
            state: Col::new(py, games, 0),
            play_status: Col::new(py, games, 0),
            round: Col::new(py, games, 0),
            last_round_id: Col::new(py, games, 0),
            start: Col::new(py, games, 0),
            finish: Col::new(py, games, 0),
            live: Col::new(py, games, false),
            betting_time: Col::new(py, games, f64::NAN),
            maintenance: Col::new(py, games, false),
            ev_game: Col::new(py, events, -1),
            ev_type: Col::new(py, events, 0),
            coefficient: Col::new(py, events, f64::NAN),
            blocked: Col::new(py, events, false),
        }
    }

    fn game_views<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("id", self.id.view(py, n)?)?;
        d.set_item("type", self.typ.view(py, n)?)?;
        d.set_item("state", self.state.view(py, n)?)?;
        d.set_item("play_status", self.play_status.view(py, n)?)?;
        d.set_item("round", self.round.view(py, n)?)?;
        d.set_item("last_round_id", self.last_round_id.view(py, n)?)?;
        d.set_item("start", self.start.view(py, n)?)?;
        d.set_item("finish", self.finish.view(py, n)?)?;
        d.set_item("live", self.live.view(py, n)?)?;
        d.set_item("betting_time", self.betting_time.view(py, n)?)?;
        d.set_item("maintenance", self.maintenance.view(py, n)?)?;
        Ok(d)
    }

    fn event_views<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("game", self.ev_game.view(py, n)?)?;
        d.set_item("type", self.ev_type.view(py, n)?)?;
        d.set_item("coefficient", self.coefficient.view(py, n)?)?;
        d.set_item("blocked", self.blocked.view(py, n)?)?;
        Ok(d)
    }
}

impl GamesStore for NumpyStore {
    fn game_capacity(&self) -> usize {
        self.games_n
    }

    fn event_capacity(&self) -> usize {
        self.events_n
    }

    fn grow_games(&mut self, n: usize) {
        Python::attach(|py| {
            let k = self.games_n;
            self.id.resize(py, n, k);
            self.typ.resize(py, n, k);
            self.state.resize(py, n, k);
            self.play_status.resize(py, n, k);
            self.round.resize(py, n, k);
            self.last_round_id.resize(py, n, k);
            self.start.resize(py, n, k);
            self.finish.resize(py, n, k);
            self.live.resize(py, n, k);
            self.betting_time.resize(py, n, k);
            self.maintenance.resize(py, n, k);
            self.games_n = n;
        })
    }

    fn grow_events(&mut self, n: usize) {
        Python::attach(|py| {
            let k = self.events_n;
            self.ev_game.resize(py, n, k);
            self.ev_type.resize(py, n, k);
            self.coefficient.resize(py, n, k);
            self.blocked.resize(py, n, k);
            self.events_n = n;
        })
    }

    fn games(&mut self) -> GameCols<'_> {
        let n = self.games_n;
        // SAFETY: every column holds `games_n` elements of an array this store owns.
        unsafe {
            GameCols {
                id: self.id.slice(n),
                typ: self.typ.slice(n),
                state: self.state.slice(n),
                play_status: self.play_status.slice(n),
                round: self.round.slice(n),
                last_round_id: self.last_round_id.slice(n),
                start: self.start.slice(n),
                finish: self.finish.slice(n),
                live: self.live.slice(n),
                betting_time: self.betting_time.slice(n),
                maintenance: self.maintenance.slice(n),
            }
        }
    }

    fn events(&mut self) -> EventCols<'_> {
        let n = self.events_n;
        // SAFETY: every column holds `events_n` elements of an array this store owns.
        unsafe {
            EventCols {
                game: self.ev_game.slice(n),
                typ: self.ev_type.slice(n),
                coefficient: self.coefficient.slice(n),
                blocked: self.blocked.slice(n),
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Python classes
// ------------------------------------------------------------------------------------------

/// What one applied `WholeGamesInfoSubscribe` record carried: sequence id, server time,
/// betting time left, maintenance flag and the games it listed (in `wgi` order).
#[pyclass(module = "oddswire_native", frozen)]
pub struct GamesUpdate {
    #[pyo3(get)]
    sid: i64,
    #[pyo3(get)]
    tst: i64,
    #[pyo3(get)]
    bt: f64,
    #[pyo3(get)]
    im: bool,
    /// False: a redelivery no newer than the table's state, left out (the table unchanged).
    #[pyo3(get)]
    applied: bool,
    ids: SmallVec<[i64; 4]>,
}

#[pymethods]
impl GamesUpdate {
    #[getter]
    fn game_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.ids.iter())
    }

    fn __repr__(&self) -> String {
        let ids: Vec<String> = self.ids.iter().map(i64::to_string).collect();
        let comma = if ids.len() == 1 { "," } else { "" };
        format!(
            "GamesUpdate(sid={}, tst={}, bt={:?}, im={}, game_ids=({}{comma}))",
            self.sid,
            self.tst,
            self.bt,
            if self.im { "True" } else { "False" },
            ids.join(", ")
        )
    }
}

/// A copy of one game's state; results, hands and dealer are decoded with orjson when read.
#[pyclass(module = "oddswire_native", frozen)]
pub struct Game {
    #[pyo3(get)]
    id: i64,
    #[pyo3(get, name = "type")]
    typ: i64,
    #[pyo3(get)]
    edition: String,
    #[pyo3(get)]
    state: i8,
    #[pyo3(get)]
    play_status: i8,
    #[pyo3(get)]
    round: i64,
    #[pyo3(get)]
    last_round_id: i64,
    #[pyo3(get)]
    start: i64,
    #[pyo3(get)]
    finish: i64,
    #[pyo3(get)]
    betting_time: f64,
    #[pyo3(get)]
    maintenance: bool,
    #[pyo3(get)]
    ended_at_ns: Option<i64>,
    results: Box<[u8]>,
    hands: Box<[u8]>,
    dealer: Box<[u8]>,
    events: Vec<(i64, f64, bool, String)>,
}

impl Game {
    fn list<'py>(&self, py: Python<'py>, raw: &[u8], field: &str) -> PyResult<Bound<'py, PyAny>> {
        if raw.is_empty() {
            return Ok(PyList::empty(py).into_any());
        }
        loads(py, raw, field, self.id)
    }
}

#[pymethods]
impl Game {
    /// `r` as sent (a list; [] when absent or null).
    #[getter]
    fn results<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.list(py, &self.results, "results")
    }

    /// `h` as sent (a list; [] when absent or null).
    #[getter]
    fn hands<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.list(py, &self.hands, "hands")
    }

    /// `di` as sent (a dict), or None.
    #[getter]
    fn dealer<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.dealer.is_empty() {
            return Ok(py.None().into_bound(py));
        }
        loads(py, &self.dealer, "dealer", self.id)
    }

    /// `(event_type, coefficient, blocked, short_number)` per coefficient, in the order of
    /// the last update.
    #[getter]
    fn events(&self) -> Vec<(i64, f64, bool, String)> {
        self.events.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Game({}, type={}, edition='{}', state={}, play_status={}, round={}, events={})",
            self.id,
            self.typ,
            self.edition.replace('\\', "\\\\").replace('\'', "\\'"),
            self.state,
            self.play_status,
            self.round,
            self.events.len()
        )
    }
}

/// The BETCORE games table: one row per game and one per coefficient, in numpy columns.
#[pyclass(module = "oddswire_native")]
pub struct GamesTable {
    core: GamesCore<NumpyStore>,
}

/// A new instance that the cycle collector does not track: it holds no Python references,
/// so it can never be part of a cycle, and many kept alive never slow a collection down.
pub(crate) fn untracked<T: pyo3::PyClass + Into<pyo3::PyClassInitializer<T>>>(
    py: Python<'_>,
    value: T,
) -> PyResult<Bound<'_, T>> {
    let obj = Bound::new(py, value)?;
    // SAFETY: a live object of a GC type; untracking twice (again in dealloc) is a no-op.
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(obj.as_ptr().cast()) };
    Ok(obj)
}

impl GamesTable {
    fn apply_bytes<'py>(&mut self, py: Python<'py>, buf: &[u8]) -> PyResult<Option<Bound<'py, GamesUpdate>>> {
        match self.core.apply(buf) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let u = &self.core.scratch;
                let ids = u.wgi().iter().map(|g| g.id).collect();
                let applied = !self.core.skipped;
                untracked(py, GamesUpdate { sid: u.sid, tst: u.tst, bt: u.bt, im: u.im, applied, ids }).map(Some)
            }
            Err(e) => Err(games_error(py, &e)),
        }
    }
}

#[pymethods]
impl GamesTable {
    #[new]
    #[pyo3(signature = (capacity=64, retention_s=None))]
    fn new(py: Python<'_>, capacity: usize, retention_s: Option<f64>) -> PyResult<Self> {
        let mut core = GamesCore::new(NumpyStore::new(py, capacity.clamp(8, 1 << 30), capacity.clamp(16, 1 << 30)));
        core.retention_ns = match retention_s {
            None => None,
            Some(s) if s >= 0.0 && s.is_finite() => Some((s * 1e9) as i64),
            Some(_) => return Err(crate::errors::config_error("retention_s must be a finite number >= 0")),
        };
        Ok(GamesTable { core })
    }

    /// Apply one SignalR hub record (bytes-like or str, without the 0x1E). A
    /// `WholeGamesInfoSubscribe` invocation updates the table and returns a `GamesUpdate`;
    /// any other hub message returns None. Atomic: a `DecodeError` leaves the table unchanged.
    fn apply<'py>(&mut self, py: Python<'py>, record: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, GamesUpdate>>> {
        if let Ok(b) = record.cast::<PyBytes>() {
            return self.apply_bytes(py, b.as_bytes());
        }
        if let Ok(s) = record.cast::<PyString>() {
            return match s.to_str() {
                Ok(s) => self.apply_bytes(py, s.as_bytes()),
                Err(_) => Err(games_error(
                    py,
                    &GamesError { message: "invalid JSON: lone surrogate in str".into(), offset: 0, field: None },
                )),
            };
        }
        let buf = PyBuffer::<u8>::get(record).map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err("record must be bytes, bytearray, memoryview or str")
        })?;
        if !buf.is_c_contiguous() {
            return Err(pyo3::exceptions::PyTypeError::new_err("record buffer must be contiguous"));
        }
        // SAFETY: a contiguous buffer of len_bytes bytes, held (and so kept alive) until the
        // end of this call; apply runs nothing that could resize it.
        let bytes = unsafe { std::slice::from_raw_parts(buf.buf_ptr() as *const u8, buf.len_bytes()) };
        self.apply_bytes(py, bytes)
    }

    /// One game's state, or None.
    fn game<'py>(&mut self, py: Python<'py>, game_id: i64) -> PyResult<Option<Bound<'py, Game>>> {
        let Some(row) = self.core.row(game_id) else { return Ok(None) };
        let row = row as usize;
        let c = self.core.store.games();
        let (typ, state, play_status, round, last_round_id, start, finish, betting_time, maintenance) = (
            c.typ[row],
            c.state[row],
            c.play_status[row],
            c.round[row],
            c.last_round_id[row],
            c.start[row],
            c.finish[row],
            c.betting_time[row],
            c.maintenance[row],
        );
        let g = self.core.game(game_id).expect("live row");
        let (edition, ended_at_ns) = (g.edition.clone(), g.ended_at_ns);
        let (results, hands, dealer) =
            (g.results.as_slice().into(), g.hands.as_slice().into(), g.dealer.as_slice().into());
        let listed: Vec<(i64, u32, String)> = g.events.iter().map(|e| (e.typ, e.row, g.sn(e).to_string())).collect();
        let ev = self.core.store.events();
        let events =
            listed.into_iter().map(|(t, r, sn)| (t, ev.coefficient[r as usize], ev.blocked[r as usize], sn)).collect();
        let game = Game {
            id: game_id,
            typ,
            edition,
            state,
            play_status,
            round,
            last_round_id,
            start,
            finish,
            betting_time,
            maintenance,
            ended_at_ns,
            results,
            hands,
            dealer,
            events,
        };
        untracked(py, game).map(Some)
    }

    /// `(coefficient, blocked)` of one event of one game, or None.
    fn get(&mut self, game_id: i64, event_type: i64) -> Option<(f64, bool)> {
        self.core.get(game_id, event_type)
    }

    /// Game Active (2), play status BettingTime (1), betting time left (`bt > 0`) and no
    /// maintenance in the update that last carried the game, event not blocked, feed healthy.
    fn is_bettable(&mut self, game_id: i64, event_type: i64) -> bool {
        self.core.is_bettable(game_id, event_type)
    }

    /// The bettable rule for every coefficient row at once (free rows are False).
    fn bettable_mask<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        let n = self.core.event_high;
        let a = PyArray1::<bool>::zeros(py, n, false);
        // SAFETY: a fresh contiguous array of n elements.
        let out = unsafe { std::slice::from_raw_parts_mut(a.data(), n) };
        self.core.bettable_into(out);
        a
    }

    /// Read-only views of the per-game columns over the rows handed out so far: `id`,
    /// `type`, `state`, `play_status`, `round`, `last_round_id`, `start`, `finish` (ns),
    /// `live`, `betting_time`, `maintenance`. A growth reallocates the columns: views taken
    /// before it keep the old values; take new views after applying.
    #[getter]
    fn games<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.core.store.game_views(py, self.core.game_high)
    }

    /// Read-only views of the per-coefficient columns: `game` (game row, -1 free), `type`,
    /// `coefficient`, `blocked`. Valid until the next growth, like `games`.
    #[getter]
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.core.store.event_views(py, self.core.event_high)
    }

    /// The game row of a game, or -1.
    fn row(&self, game_id: i64) -> i64 {
        self.core.row(game_id).map_or(-1, i64::from)
    }

    /// The coefficient row of one event of one game, or -1.
    fn event_row(&self, game_id: i64, event_type: i64) -> i64 {
        self.core.event_row(game_id, event_type).map_or(-1, i64::from)
    }

    /// `(game_id, event_type)` of a live coefficient row, or None.
    fn event_key(&mut self, row: usize) -> Option<(i64, i64)> {
        self.core.event_key(row)
    }

    /// The live game ids, ascending.
    fn game_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.core.ids().collect();
        ids.sort_unstable();
        ids
    }

    fn __contains__(&self, game_id: i64) -> bool {
        self.core.row(game_id).is_some()
    }

    /// `im` of the last update (False before the first).
    #[getter]
    fn maintenance(&self) -> bool {
        self.core.im
    }

    /// `bt` of the last update (None before the first).
    #[getter]
    fn betting_time(&self) -> Option<f64> {
        self.core.bt
    }

    /// `sId` of the last update (None before the first).
    #[getter]
    fn sid(&self) -> Option<i64> {
        self.core.sid
    }

    /// `tst` of the last update, ns since the epoch (None before the first).
    #[getter]
    fn tst(&self) -> Option<i64> {
        self.core.tst
    }

    /// True: an update whose `sId` and `tst` are both at or before the last applied
    /// update's (a redelivery) is left out, so it cannot roll newer state back; `apply`
    /// returns its `GamesUpdate` with `applied` False. False (the default): every update is
    /// applied. `BetcoreClient` sets it.
    #[getter]
    fn skip_redeliveries(&self) -> bool {
        self.core.skip_redeliveries
    }

    #[setter]
    fn set_skip_redeliveries(&mut self, v: bool) {
        self.core.skip_redeliveries = v;
    }

    /// The feed-health flag: False makes every coefficient unbettable.
    #[getter]
    fn healthy(&self) -> bool {
        self.core.healthy
    }

    #[setter]
    fn set_healthy(&mut self, v: bool) {
        self.core.healthy = v;
    }

    /// Game rows handed out (the length of the `games` views).
    #[getter]
    fn rows(&self) -> usize {
        self.core.game_high
    }

    /// Coefficient rows handed out (the length of the `events` views).
    #[getter]
    fn event_rows(&self) -> usize {
        self.core.event_high
    }

    /// Live coefficient rows.
    #[getter]
    fn event_count(&self) -> usize {
        self.core.live_events
    }

    /// Evict games that turned finished, review or cancelled at or before `before_ns`
    /// (update time); returns how many.
    fn evict_finished(&mut self, before_ns: i64) -> usize {
        self.core.evict_finished(before_ns)
    }

    /// Drop one game and its coefficients. True when it was there.
    fn remove(&mut self, game_id: i64) -> bool {
        self.core.remove(game_id)
    }

    /// Forget every game and the last update (sid, tst, bt, im); `healthy` is kept.
    fn clear(&mut self) {
        self.core.clear()
    }

    /// Live games.
    fn __len__(&self) -> usize {
        self.core.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "GamesTable(games={}, coefficients={}, sid={}, healthy={})",
            self.core.len(),
            self.core.live_events,
            self.core.sid.map_or_else(|| "None".to_owned(), |s| s.to_string()),
            if self.core.healthy { "True" } else { "False" }
        )
    }
}
