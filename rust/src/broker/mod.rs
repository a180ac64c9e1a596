//! The broker feed under Python: `CompactDecoder` decodes compact arrays into tuples and
//! `QuoteBook` keeps the last quote per symbol in numpy columns, both thin PyO3 classes over
//! the plain Rust of `compact` (schemas, the frame reader, `BookCore`).

pub mod compact;

use std::cell::{Cell, UnsafeCell};

use numpy::{PyArray1, PyArrayMethods};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::decode_error;
use crate::frame_bytes;
use crate::json::{JsonError, Number, Parser, WalkError, MAX_DEPTH};
use compact::{
    exact_prefix, next_element, read_exact_quote, read_frame, read_marker, read_typed, BookCore, ExactPrefix,
    ExactQuote, FResult, FieldType, FrameError, Schema, Slot, SymbolTable, Typed,
};

pub(crate) fn to_err(py: Python<'_>, e: FrameError) -> PyErr {
    decode_error(py, &format!("{} at byte {}", e.message, e.offset), Some(e.field))
}

/// A JSON-typed field as a Python object; invalid JSON is a `DecodeError` naming the field.
fn json_value(py: Python<'_>, p: &mut Parser, depth: usize, field: usize) -> PyResult<Py<PyAny>> {
    value(py, p, depth).map_err(|e| match e {
        ValueErr::Json(e) => to_err(py, FrameError::at(field, e)),
        ValueErr::Py(e) => e,
    })
}

/// Why `value` stopped: not strict JSON, or an error Python raised (passed on as it is).
enum ValueErr {
    Json(JsonError),
    Py(PyErr),
}

impl From<JsonError> for ValueErr {
    fn from(e: JsonError) -> Self {
        ValueErr::Json(e)
    }
}

impl From<PyErr> for ValueErr {
    fn from(e: PyErr) -> Self {
        ValueErr::Py(e)
    }
}

impl WalkError for ValueErr {}

fn value(py: Python<'_>, p: &mut Parser, depth: usize) -> Result<Py<PyAny>, ValueErr> {
    if depth > MAX_DEPTH {
        return Err(ValueErr::Json(JsonError { message: "nesting too deep".into(), offset: p.pos }));
    }
    Ok(match p.peek() {
        Some(b'"') => PyString::new(py, &p.string()?).into_any().unbind(),
        Some(b'-' | b'0'..=b'9') => match p.number()? {
            Number::Int(v) => v.into_pyobject(py).map_err(PyErr::from)?.into_any().unbind(),
            Number::Float(v) => PyFloat::new(py, v).into_any().unbind(),
            // Python refuses ints of more than sys.get_int_max_str_digits() digits (4300):
            // a DecodeError like the twin's, never a bare ValueErr.
            Number::BigInt(s) => py
                .get_type::<PyInt>()
                .call1((s,))
                .map_err(|err| {
                    let message = format!("invalid JSON: integer of {} digits: {}", s.len(), err.value(py));
                    decode_error(py, &message, None)
                })?
                .unbind(),
        },
        Some(b't' | b'f') => PyBool::new(py, p.boolean()?).to_owned().into_any().unbind(),
        Some(b'n') => {
            p.literal(b"null")?;
            py.None()
        }
        Some(b'[') => {
            let list = PyList::empty(py);
            p.elements(|p, _| -> Result<(), ValueErr> { Ok(list.append(value(py, p, depth + 1)?)?) })?;
            list.into_any().unbind()
        }
        Some(b'{') => {
            let dict = PyDict::new(py);
            p.members(|p, key| -> Result<(), ValueErr> {
                let v = value(py, p, depth + 1)?;
                Ok(dict.set_item(PyString::new(py, key), v)?)
            })?;
            dict.into_any().unbind()
        }
        _ => return Err(ValueErr::Json(JsonError { message: "expected a JSON value".into(), offset: p.pos })),
    })
}

const INTERN_LIMIT: usize = 65536;

/// Strings seen before come back as the same `str` object (symbols repeat on every quote).
#[derive(Default)]
struct Interner {
    index: SymbolTable,
    strings: Vec<Py<PyString>>,
}

impl Interner {
    fn get(&mut self, py: Python<'_>, s: &str) -> Py<PyString> {
        match self.index.get(s) {
            Some(i) => self.strings[i as usize].clone_ref(py),
            None => self.add(py, s),
        }
    }

    /// `get` for the symbol of an exact quote, looked up by its inline key when it has one.
    #[inline(always)]
    fn get_quote(&mut self, py: Python<'_>, q: &ExactQuote<'_>) -> Py<PyString> {
        let found = match &q.key {
            Some(k) => self.index.get_key(k),
            None => self.index.get(q.symbol),
        };
        match found {
            Some(i) => self.strings[i as usize].clone_ref(py),
            None => self.add(py, q.symbol),
        }
    }

    #[cold]
    fn add(&mut self, py: Python<'_>, s: &str) -> Py<PyString> {
        let obj = PyString::new(py, s).unbind();
        if self.strings.len() < INTERN_LIMIT {
            self.index.insert(s, self.strings.len() as u32);
            self.strings.push(obj.clone_ref(py));
        }
        obj
    }
}

pub fn parse_schemas(schemas: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<Schema>> {
    let mut out = vec![Schema::quote()];
    let Some(schemas) = schemas else { return Ok(out) };
    for (marker, fields) in schemas.iter() {
        let marker: String = marker.extract()?;
        let mut parsed = Vec::new();
        for item in fields.try_iter()? {
            let (name, ty): (String, String) = item?.extract()?;
            let ty = FieldType::parse(&ty).ok_or_else(|| {
                crate::errors::config_error(&format!(
                    "schema {marker:?}: unknown field type {ty:?} (use str, f64, i64, ts, bool, json)"
                ))
            })?;
            parsed.push((name, ty));
        }
        out.retain(|s| s.marker != marker);
        out.push(Schema { marker, fields: parsed });
    }
    Ok(out)
}

/// State a frozen pyclass mutates with the GIL held: no atomic borrow flag per call, only a
/// plain `busy` flag so that a call re-entering the object (a finalizer run by a garbage
/// collection that one of its allocations triggered) is refused instead of aliasing it.
pub(crate) struct GilCell<T> {
    value: UnsafeCell<T>,
    busy: Cell<bool>,
}

// SAFETY: the value is only reached through `with` / `try_with`, which take a `Python`
// token: the GIL is held (the module does not declare itself free-threading safe, so a
// free-threaded interpreter re-enables the GIL on import), and `busy` refuses a nested use.
unsafe impl<T> Sync for GilCell<T> {}
unsafe impl<T: Send> Send for GilCell<T> {}

struct Release<'a>(&'a Cell<bool>);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl<T> GilCell<T> {
    pub(crate) fn new(value: T) -> Self {
        GilCell { value: UnsafeCell::new(value), busy: Cell::new(false) }
    }

    /// `f` on the value; a `RuntimeError` when it is in use further up the stack.
    #[inline(always)]
    pub(crate) fn with<R>(&self, py: Python<'_>, f: impl FnOnce(&mut T) -> R) -> PyResult<R> {
        self.try_with(py, f).ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("object already in use (re-entered from a finalizer?)")
        })
    }

    /// `f` on the value, or `None` when it is in use further up the stack.
    #[inline(always)]
    pub(crate) fn try_with<R>(&self, _py: Python<'_>, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self.busy.replace(true) {
            return None;
        }
        let _release = Release(&self.busy);
        // SAFETY: the GIL is held and `busy` was clear: no other reference to the value lives.
        Some(f(unsafe { &mut *self.value.get() }))
    }
}

/// Decode broker compact arrays into tuples.
#[pyclass(module = "oddswire_native", frozen)]
pub struct CompactDecoder {
    state: GilCell<DecoderState>,
}

struct DecoderState {
    schemas: Vec<Schema>,
    interner: Interner,
    /// The exact-frame prefix of the first quote-shaped schema and its marker (interned).
    exact: Option<(ExactPrefix, Py<PyString>)>,
}

#[pymethods]
impl CompactDecoder {
    #[new]
    #[pyo3(signature = (schemas=None))]
    fn new(py: Python<'_>, schemas: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let schemas = parse_schemas(schemas)?;
        let mut interner = Interner::default();
        let exact = schemas.iter().find_map(|s| Some((exact_prefix(s)?, interner.get(py, &s.marker))));
        Ok(CompactDecoder { state: GilCell::new(DecoderState { schemas, interner, exact }) })
    }

    /// The schemas in force, marker -> [(field name, type)].
    #[getter]
    fn schemas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let schemas = self.state.with(py, |s| s.schemas.clone())?;
        for s in &schemas {
            let fields: Vec<(String, String)> =
                s.fields.iter().map(|(n, t)| (n.clone(), format!("{t:?}").to_lowercase())).collect();
            d.set_item(&s.marker, fields)?;
        }
        Ok(d)
    }

    /// Decode one frame into `(marker, *fields, *extras)`.
    fn decode<'py>(&self, py: Python<'py>, frame: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
        let buf = frame_bytes(frame)?;
        self.state.with(py, |s| s.decode(py, buf))?
    }
}

impl DecoderState {
    #[inline(always)]
    fn decode<'py>(&mut self, py: Python<'py>, buf: &[u8]) -> PyResult<Bound<'py, PyTuple>> {
        if let Some((prefix, marker)) = &self.exact {
            if let Some(q) = read_exact_quote(buf, prefix) {
                let symbol = self.interner.get_quote(py, &q);
                return quote_tuple(py, marker, symbol, &q);
            }
        }
        self.decode_general(py, buf)
    }

    /// An exact quote frame as a new tuple reference (NULL with the error set when an
    /// allocation failed); `None` for anything else.
    #[inline(always)]
    fn decode_exact(&mut self, py: Python<'_>, buf: &[u8]) -> Option<*mut ffi::PyObject> {
        let (prefix, marker) = self.exact.as_ref()?;
        let q = read_exact_quote(buf, prefix)?;
        let symbol = self.interner.get_quote(py, &q);
        Some(match quote_tuple(py, marker, symbol, &q) {
            Ok(t) => t.into_ptr(),
            Err(e) => {
                e.restore(py);
                std::ptr::null_mut()
            }
        })
    }

    fn decode_general<'py>(&mut self, py: Python<'py>, buf: &[u8]) -> PyResult<Bound<'py, PyTuple>> {
        let mut p = Parser::new(buf);
        let marker = read_marker(&mut p).map_err(|e| to_err(py, e))?;
        let mut items: Vec<Py<PyAny>> = Vec::with_capacity(6);
        items.push(self.interner.get(py, &marker).into_any());
        let mut field = 1;
        if let Some(schema) = self.schemas.iter().find(|s| s.marker == marker) {
            for (name, ty) in &schema.fields {
                if !next_element(&mut p, field).map_err(|e| to_err(py, e))? {
                    return Err(to_err(
                        py,
                        FrameError { message: format!("too few fields: {name} missing"), field, offset: p.pos },
                    ));
                }
                let obj = match ty {
                    FieldType::Json => json_value(py, &mut p, 0, field)?,
                    _ => match read_typed(&mut p, *ty, field).map_err(|e| to_err(py, e))? {
                        Typed::Str(s) => self.interner.get(py, &s).into_any(),
                        Typed::F64(v) => PyFloat::new(py, v).into_any().unbind(),
                        Typed::I64(v) => v.into_pyobject(py)?.into_any().unbind(),
                        Typed::Bool(v) => PyBool::new(py, v).to_owned().into_any().unbind(),
                    },
                };
                items.push(obj);
                field += 1;
            }
        }
        while next_element(&mut p, field).map_err(|e| to_err(py, e))? {
            items.push(json_value(py, &mut p, 0, field)?);
            field += 1;
        }
        PyTuple::new(py, items)
    }
}

/// `(marker, symbol, bid, ask, ts)` built in place (`PyTuple_New` + `SET_ITEM`).
#[inline(always)]
fn quote_tuple<'py>(
    py: Python<'py>,
    marker: &Py<PyString>,
    symbol: Py<PyString>,
    q: &ExactQuote<'_>,
) -> PyResult<Bound<'py, PyTuple>> {
    // SAFETY: the GIL is held; each item is a new reference the tuple steals, and a tuple
    // whose later slots are still NULL is safe to release when an allocation fails.
    unsafe {
        let t = Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(5))?;
        let raw = t.as_ptr();
        ffi::PyTuple_SET_ITEM(raw, 0, marker.clone_ref(py).into_ptr());
        ffi::PyTuple_SET_ITEM(raw, 1, symbol.into_ptr());
        let items = [ffi::PyFloat_FromDouble(q.bid), ffi::PyFloat_FromDouble(q.ask), ffi::PyLong_FromLongLong(q.ts)];
        let failed = items.iter().any(|p| p.is_null());
        for (i, item) in items.into_iter().enumerate() {
            if !item.is_null() {
                ffi::PyTuple_SET_ITEM(raw, 2 + i as ffi::Py_ssize_t, item);
            }
        }
        if failed {
            return Err(PyErr::fetch(py));
        }
        // Only a str, floats and an int: no cycle can go through it, so the collector need
        // not visit it (CPython would untrack it at its first collection anyway).
        ffi::PyObject_GC_UnTrack(raw.cast());
        Ok(t.cast_into_unchecked())
    }
}

/// Last quote per symbol, in numpy columns that grow by doubling.
#[pyclass(module = "oddswire_native", frozen)]
pub struct QuoteBook {
    state: GilCell<BookState>,
}

pub(crate) struct BookState {
    core: BookCore,
    /// The symbol of each row, as `core` hands rows out.
    symbols: Vec<Py<PyString>>,
    /// One numpy column per typed field after the symbol; columns[i] matches schema field i+1.
    columns: Vec<Py<PyAny>>,
    /// Raw data pointers of `columns`, refreshed on growth (the arrays are owned here).
    ptrs: Vec<*mut u8>,
    capacity: usize,
    /// The prefix of an exact quote frame when the schema is a quote's shape.
    exact: Option<ExactPrefix>,
}

// SAFETY: the raw pointers point into numpy arrays owned by `columns`; they are only
// dereferenced with the GIL held (through GilCell), like the arrays themselves.
unsafe impl Send for BookState {}

/// A quote as written into the book: what the C API hands to the Cython listener.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QuoteOut {
    pub row: i64,
    /// Borrowed: the book keeps its symbol strings alive for its whole life.
    pub symbol: *mut pyo3::ffi::PyObject,
    pub bid: f64,
    pub ask: f64,
    pub ts: i64,
}

fn new_column(py: Python<'_>, ty: FieldType, n: usize) -> Py<PyAny> {
    match ty {
        FieldType::F64 => {
            let a = PyArray1::<f64>::zeros(py, n, false);
            unsafe { std::slice::from_raw_parts_mut(a.data(), n).fill(f64::NAN) };
            a.into_any().unbind()
        }
        FieldType::I64 | FieldType::Ts => PyArray1::<i64>::zeros(py, n, false).into_any().unbind(),
        FieldType::Bool => PyArray1::<bool>::zeros(py, n, false).into_any().unbind(),
        _ => unreachable!(),
    }
}

fn grow_column(py: Python<'_>, col: &Py<PyAny>, ty: FieldType, old: usize, new: usize) -> Py<PyAny> {
    let fresh = new_column(py, ty, new);
    macro_rules! copy {
        ($t:ty) => {{
            let src = col.bind(py).cast::<PyArray1<$t>>().unwrap();
            let dst = fresh.bind(py).cast::<PyArray1<$t>>().unwrap();
            unsafe { std::ptr::copy_nonoverlapping(src.data(), dst.data(), old) };
        }};
    }
    match ty {
        FieldType::F64 => copy!(f64),
        FieldType::I64 | FieldType::Ts => copy!(i64),
        FieldType::Bool => copy!(bool),
        _ => unreachable!(),
    }
    fresh
}

#[pymethods]
impl QuoteBook {
    #[new]
    #[pyo3(signature = (schema=None, capacity=64, admit_new=true))]
    fn new(py: Python<'_>, schema: Option<&Bound<'_, PyAny>>, capacity: usize, admit_new: bool) -> PyResult<Self> {
        let schema = match schema {
            None => Schema::quote(),
            Some(fields) => {
                let d = PyDict::new(py);
                d.set_item("t", fields)?;
                parse_schemas(Some(&d))?.pop().unwrap()
            }
        };
        let exact = exact_prefix(&schema);
        let core = BookCore::new(schema, admit_new).map_err(crate::errors::config_error)?;
        let capacity = capacity.max(1);
        let columns: Vec<Py<PyAny>> = core.value_fields().iter().map(|f| new_column(py, f.1, capacity)).collect();
        let mut book = BookState { core, symbols: Vec::new(), columns, ptrs: Vec::new(), capacity, exact };
        book.refresh_ptrs(py);
        Ok(QuoteBook { state: GilCell::new(book) })
    }

    /// Decode a frame and write the quote into its row: the row, -1 for another marker
    /// (only the marker of such a frame is checked; decode it with CompactDecoder), or -2
    /// for a quote whose symbol the book does not admit (``admit_new`` False, no row).
    fn apply(&self, py: Python<'_>, frame: &Bound<'_, PyAny>) -> PyResult<i64> {
        let buf = frame_bytes(frame)?;
        match self.state.with(py, |s| s.apply_bytes(py, buf, None))? {
            Ok(row) => Ok(row),
            Err(e) => Err(to_err(py, e)),
        }
    }

    /// True when the schema has ``bid``, ``ask`` (f64) and ``ts`` fields, so quotes can be
    /// delivered as ``(symbol, bid, ask, ts)`` scalars.
    #[getter]
    fn has_quote_fields(&self, py: Python<'_>) -> PyResult<bool> {
        self.state.with(py, |s| s.core.quote_fields.is_some())
    }

    /// Whether a quote for a symbol without a row creates one (True) or is rejected.
    #[getter]
    fn admit_new(&self, py: Python<'_>) -> PyResult<bool> {
        self.state.with(py, |s| s.core.admit_new)
    }

    #[setter]
    fn set_admit_new(&self, py: Python<'_>, value: bool) -> PyResult<()> {
        self.state.with(py, |s| s.core.admit_new = value)
    }

    /// Quotes rejected because their symbol had no row and ``admit_new`` was False.
    #[getter]
    fn rejected(&self, py: Python<'_>) -> PyResult<u64> {
        self.state.with(py, |s| s.core.rejected)
    }

    /// Create rows for ``symbols`` (NaN prices, ts 0) so their quotes are admitted.
    fn reserve(&self, py: Python<'_>, symbols: &Bound<'_, PyAny>) -> PyResult<()> {
        if symbols.is_instance_of::<PyString>() {
            return Err(crate::errors::config_error("reserve() takes an iterable of symbols, not one string"));
        }
        // One item at a time, outside the state: iterating runs Python code.
        for s in symbols.try_iter()? {
            let s = s?;
            let name: &str = s.cast::<PyString>()?.to_str()?;
            self.state.with(py, |st| {
                if st.core.row(name).is_none() {
                    st.new_row(py, name);
                }
            })?;
        }
        Ok(())
    }

    /// The row of a symbol, or -1.
    fn row(&self, py: Python<'_>, symbol: &str) -> PyResult<i64> {
        self.state.with(py, |s| s.core.row(symbol).map_or(-1, |r| r as i64))
    }

    #[getter]
    fn symbols<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let symbols = self.state.with(py, |s| s.symbols.iter().map(|s| s.clone_ref(py)).collect::<Vec<_>>())?;
        PyList::new(py, symbols)
    }

    /// Column views of the live rows: valid until the next growth reallocates them.
    fn column<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let (col, len) = self
            .state
            .with(py, |s| {
                let i = s.core.value_fields().iter().position(|f| f.0 == name)?;
                Some((s.columns[i].clone_ref(py), s.symbols.len()))
            })?
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_string()))?;
        col.into_bound(py).get_item(pyo3::types::PySlice::new(py, 0, len as isize, 1))
    }

    #[getter]
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let names: Vec<String> =
            self.state.with(py, |s| s.core.value_fields().iter().map(|f| f.0.clone()).collect())?;
        for name in names {
            d.set_item(&name, self.column(py, &name)?)?;
        }
        Ok(d)
    }

    #[getter]
    fn bid<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.column(py, "bid")
    }

    #[getter]
    fn ask<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.column(py, "ask")
    }

    #[getter]
    fn ts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.column(py, "ts")
    }

    #[getter]
    fn capacity(&self, py: Python<'_>) -> PyResult<usize> {
        self.state.with(py, |s| s.capacity)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.state.with(py, |s| s.symbols.len())
    }
}

impl QuoteBook {
    /// `BookState::apply_exact` for the C API: `None` when the frame is not exact, its
    /// symbol needs a new row, or the book is in use further up the stack (the caller then
    /// takes the general path, which reports that).
    #[inline(always)]
    pub(crate) fn apply_exact(&self, py: Python<'_>, buf: &[u8], out: &mut QuoteOut) -> Option<i64> {
        self.state.try_with(py, |s| s.apply_exact(buf, Some(out))).flatten()
    }

    /// `BookState::apply_bytes` with the GIL held; a `RuntimeError` when re-entered.
    pub(crate) fn apply_bytes(&self, py: Python<'_>, buf: &[u8], out: Option<&mut QuoteOut>) -> PyResult<FResult<i64>> {
        self.state.with(py, |s| s.apply_bytes(py, buf, out))
    }
}

impl BookState {
    /// A fresh row for `symbol`; its typed fields keep their empty values (NaN, 0, false).
    fn new_row(&mut self, py: Python<'_>, symbol: &str) -> usize {
        if self.core.len() == self.capacity {
            self.grow(py, self.capacity * 2);
        }
        let r = self.core.insert(symbol);
        self.symbols.push(PyString::intern(py, symbol).unbind());
        r
    }

    fn grow(&mut self, py: Python<'_>, new: usize) {
        let old = self.capacity;
        for (i, f) in self.core.value_fields().iter().enumerate() {
            self.columns[i] = grow_column(py, &self.columns[i], f.1, old, new);
        }
        self.capacity = new;
        self.refresh_ptrs(py);
    }

    fn refresh_ptrs(&mut self, py: Python<'_>) {
        self.ptrs = self
            .columns
            .iter()
            .zip(self.core.value_fields())
            .map(|(c, f)| {
                let c = c.bind(py);
                // SAFETY: every column is a 1-d contiguous array of its field's type (new_column).
                unsafe {
                    match f.1 {
                        FieldType::F64 => c.cast_unchecked::<PyArray1<f64>>().data() as *mut u8,
                        FieldType::I64 | FieldType::Ts => c.cast_unchecked::<PyArray1<i64>>().data() as *mut u8,
                        FieldType::Bool => c.cast_unchecked::<PyArray1<bool>>().data() as *mut u8,
                        _ => unreachable!(),
                    }
                }
            })
            .collect();
    }

    /// An exact quote frame (`read_exact_quote`) for a symbol that has a row, or is
    /// refused: the row (out filled), or -2 (out.row -1, symbol NULL). `None` for anything
    /// else, with nothing changed. Calls no Python API.
    #[inline(always)]
    fn apply_exact(&mut self, buf: &[u8], out: Option<&mut QuoteOut>) -> Option<i64> {
        let q = read_exact_quote(buf, self.exact.as_ref()?)?;
        let row = match self.core.admit_quote(&q) {
            Slot::Row(r) => r,
            Slot::New => return None,
            Slot::Rejected => {
                if let Some(out) = out {
                    out.row = -1;
                    out.symbol = std::ptr::null_mut();
                }
                return Some(-2);
            }
        };
        // SAFETY: row < capacity == len of every column; an exact schema's columns are
        // f64, f64 and i64 (ts or i64), in that order (exact_prefix checked the shape).
        unsafe {
            *(self.ptrs[0] as *mut f64).add(row) = q.bid;
            *(self.ptrs[1] as *mut f64).add(row) = q.ask;
            *(self.ptrs[2] as *mut i64).add(row) = q.ts;
        }
        if let Some(out) = out {
            out.row = row as i64;
            out.symbol = self.symbols[row].as_ptr();
            if let Some([b, a, _]) = self.core.quote_fields {
                let prices = [q.bid, q.ask];
                out.bid = prices[b];
                out.ask = prices[a];
                out.ts = q.ts;
            }
        }
        Some(row as i64)
    }

    /// Decode one frame and write it into its row: the row, -1 for another marker, -2 for
    /// a refused symbol. Atomic: a bad frame changes nothing. With `out`, the quote is also
    /// reported there.
    pub fn apply_bytes(&mut self, py: Python<'_>, buf: &[u8], mut out: Option<&mut QuoteOut>) -> FResult<i64> {
        if let Some(row) = self.apply_exact(buf, out.as_deref_mut()) {
            return Ok(row);
        }
        let fields = match read_frame(buf, &self.core.schema)? {
            None => return Ok(-1),
            Some(f) => f,
        };
        let Typed::Str(symbol) = &fields[0] else { unreachable!() };
        let row = match self.core.admit(symbol) {
            Slot::Row(r) => r,
            Slot::Rejected => {
                if let Some(out) = out {
                    out.row = -1;
                    out.symbol = std::ptr::null_mut();
                }
                return Ok(-2);
            }
            Slot::New => self.new_row(py, symbol),
        };
        for (ptr, value) in self.ptrs.iter().zip(&fields[1..]) {
            // SAFETY: row < capacity == len of every column, and each pointer's element type
            // matches its schema field (new_column); the arrays are owned by self.columns.
            unsafe {
                match value {
                    Typed::F64(v) => *(*ptr as *mut f64).add(row) = *v,
                    Typed::I64(v) => *(*ptr as *mut i64).add(row) = *v,
                    Typed::Bool(v) => *(*ptr as *mut bool).add(row) = *v,
                    Typed::Str(_) => unreachable!(),
                }
            }
        }
        if let Some(out) = out {
            out.row = row as i64;
            out.symbol = self.symbols[row].as_ptr();
            if let Some([b, a, t]) = self.core.quote_fields {
                let f = &fields[1..];
                out.bid = if let Typed::F64(v) = f[b] { v } else { f64::NAN };
                out.ask = if let Typed::F64(v) = f[a] { v } else { f64::NAN };
                out.ts = if let Typed::I64(v) = f[t] { v } else { 0 };
            }
        }
        Ok(row as i64)
    }
}

// ----------------------------------------------------------------------------------------
// `QuoteBook.apply` and `CompactDecoder.decode` as METH_O C functions: CPython calls them
// with the frame directly, without PyO3's argument parsing and trampoline (about a fifth
// of a fast-path call). An exact frame is handled here; anything else goes through the
// PyO3 methods above, which own the errors.

/// # Safety
/// Called by CPython with the GIL held; `slf` is a `QuoteBook` (the method descriptor
/// checks it) and `frame` a live object.
unsafe extern "C" fn quote_book_apply(slf: *mut ffi::PyObject, frame: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let py = unsafe { Python::assume_attached() };
    let book = unsafe { Bound::ref_from_ptr(py, &slf).cast_unchecked::<QuoteBook>() }.get();
    if unsafe { ffi::PyBytes_CheckExact(frame) } != 0 {
        let buf = unsafe {
            std::slice::from_raw_parts(ffi::PyBytes_AsString(frame) as *const u8, ffi::PyBytes_Size(frame) as usize)
        };
        if let Some(row) = book.state.try_with(py, |s| s.apply_exact(buf, None)).flatten() {
            return unsafe { ffi::PyLong_FromLongLong(row) };
        }
    }
    let frame = unsafe { Bound::ref_from_ptr(py, &frame) };
    to_python(py, || book.apply(py, frame).map(|row| unsafe { ffi::PyLong_FromLongLong(row) }))
}

/// # Safety
/// As `quote_book_apply`, for a `CompactDecoder`.
unsafe extern "C" fn compact_decode(slf: *mut ffi::PyObject, frame: *mut ffi::PyObject) -> *mut ffi::PyObject {
    let py = unsafe { Python::assume_attached() };
    let decoder = unsafe { Bound::ref_from_ptr(py, &slf).cast_unchecked::<CompactDecoder>() }.get();
    if unsafe { ffi::PyBytes_CheckExact(frame) } != 0 {
        let buf = unsafe {
            std::slice::from_raw_parts(ffi::PyBytes_AsString(frame) as *const u8, ffi::PyBytes_Size(frame) as usize)
        };
        if let Some(t) = decoder.state.try_with(py, |s| s.decode_exact(py, buf)).flatten() {
            return t;
        }
    }
    let frame = unsafe { Bound::ref_from_ptr(py, &frame) };
    to_python(py, || decoder.decode(py, frame).map(Bound::into_ptr))
}

/// The result of `f` as CPython wants it: a new reference, or NULL with the error set.
#[inline(always)]
fn to_python(py: Python<'_>, f: impl FnOnce() -> PyResult<*mut ffi::PyObject>) -> *mut ffi::PyObject {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(obj)) => obj,
        Ok(Err(e)) => {
            e.restore(py);
            std::ptr::null_mut()
        }
        Err(_) => {
            pyo3::exceptions::PySystemError::new_err("oddswire_native: panic in a broker method").restore(py);
            std::ptr::null_mut()
        }
    }
}

/// Replace the PyO3 `apply` / `decode` with the METH_O functions above.
pub fn install_fast_methods(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let install = |ty: Bound<'_, pyo3::types::PyType>,
                   name: &'static std::ffi::CStr,
                   meth: ffi::PyCFunction,
                   doc: &'static std::ffi::CStr|
     -> PyResult<()> {
        // Leaked once per import: a method definition must outlive its type.
        let def = Box::leak(Box::new(ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: meth },
            ml_flags: ffi::METH_O,
            ml_doc: doc.as_ptr(),
        }));
        // SAFETY: the GIL is held, `def` lives for ever, `ty` is a live type object.
        let descr = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(ty.as_type_ptr(), def))? };
        ty.setattr(name.to_str().expect("ASCII name"), descr)
    };
    install(
        py.get_type::<QuoteBook>(),
        c"apply",
        quote_book_apply,
        c"apply($self, frame, /)\n--\n\nDecode a frame and write the quote into its row: the row, -1 for another marker\n(only the marker of such a frame is checked; decode it with CompactDecoder), or -2\nfor a quote whose symbol the book does not admit (``admit_new`` False, no row).",
    )?;
    install(
        py.get_type::<CompactDecoder>(),
        c"decode",
        compact_decode,
        c"decode($self, frame, /)\n--\n\nDecode one frame into ``(marker, *fields, *extras)``.",
    )
}
