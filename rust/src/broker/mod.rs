//! The broker feed under Python: `CompactDecoder` decodes compact arrays into tuples and
//! `QuoteBook` keeps the last quote per symbol in numpy columns, both thin PyO3 classes over
//! the plain Rust of `compact` (schemas, the frame reader, `BookCore`).

pub mod compact;

use ahash::AHashMap;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::decode_error;
use crate::frame_bytes;
use crate::json::{JsonError, Number, Parser, WalkError, MAX_DEPTH};
use compact::{
    next_element, read_frame, read_marker, read_typed, BookCore, FResult, FieldType, FrameError, Schema, Slot, Typed,
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
    map: AHashMap<Box<str>, Py<PyString>>,
}

impl Interner {
    fn get(&mut self, py: Python<'_>, s: &str) -> Py<PyString> {
        if let Some(v) = self.map.get(s) {
            return v.clone_ref(py);
        }
        let obj = PyString::new(py, s).unbind();
        if self.map.len() < INTERN_LIMIT {
            self.map.insert(s.into(), obj.clone_ref(py));
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

/// Decode broker compact arrays into tuples.
#[pyclass(module = "oddswire_native")]
pub struct CompactDecoder {
    schemas: Vec<Schema>,
    interner: Interner,
}

#[pymethods]
impl CompactDecoder {
    #[new]
    #[pyo3(signature = (schemas=None))]
    fn new(schemas: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Ok(CompactDecoder { schemas: parse_schemas(schemas)?, interner: Interner::default() })
    }

    /// The schemas in force, marker -> [(field name, type)].
    #[getter]
    fn schemas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for s in &self.schemas {
            let fields: Vec<(String, String)> =
                s.fields.iter().map(|(n, t)| (n.clone(), format!("{t:?}").to_lowercase())).collect();
            d.set_item(&s.marker, fields)?;
        }
        Ok(d)
    }

    /// Decode one frame into `(marker, *fields, *extras)`.
    fn decode<'py>(&mut self, py: Python<'py>, frame: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
        let buf = frame_bytes(frame)?;
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

/// Last quote per symbol, in numpy columns that grow by doubling.
#[pyclass(module = "oddswire_native")]
pub struct QuoteBook {
    core: BookCore,
    /// The symbol of each row, as `core` hands rows out.
    symbols: Vec<Py<PyString>>,
    /// One numpy column per typed field after the symbol; columns[i] matches schema field i+1.
    columns: Vec<Py<PyAny>>,
    /// Raw data pointers of `columns`, refreshed on growth (the arrays are owned here).
    ptrs: Vec<*mut u8>,
    capacity: usize,
}

// SAFETY: the raw pointers point into numpy arrays owned by `columns`; they are only
// dereferenced with the GIL held (every method takes `py`), like the arrays themselves.
unsafe impl Send for QuoteBook {}
unsafe impl Sync for QuoteBook {}

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
        let core = BookCore::new(schema, admit_new).map_err(crate::errors::config_error)?;
        let capacity = capacity.max(1);
        let columns: Vec<Py<PyAny>> = core.value_fields().iter().map(|f| new_column(py, f.1, capacity)).collect();
        let mut book = QuoteBook { core, symbols: Vec::new(), columns, ptrs: Vec::new(), capacity };
        book.refresh_ptrs(py);
        Ok(book)
    }

    /// Decode a frame and write the quote into its row: the row, -1 for another marker
    /// (only the marker of such a frame is checked; decode it with CompactDecoder), or -2
    /// for a quote whose symbol the book does not admit (``admit_new`` False, no row).
    fn apply(&mut self, py: Python<'_>, frame: &Bound<'_, PyAny>) -> PyResult<i64> {
        let buf = frame_bytes(frame)?;
        match self.apply_bytes(py, buf, None) {
            Ok(row) => Ok(row),
            Err(e) => Err(to_err(py, e)),
        }
    }

    /// True when the schema has ``bid``, ``ask`` (f64) and ``ts`` fields, so quotes can be
    /// delivered as ``(symbol, bid, ask, ts)`` scalars.
    #[getter]
    fn has_quote_fields(&self) -> bool {
        self.core.quote_fields.is_some()
    }

    /// Whether a quote for a symbol without a row creates one (True) or is rejected.
    #[getter]
    fn admit_new(&self) -> bool {
        self.core.admit_new
    }

    #[setter]
    fn set_admit_new(&mut self, value: bool) {
        self.core.admit_new = value;
    }

    /// Quotes rejected because their symbol had no row and ``admit_new`` was False.
    #[getter]
    fn rejected(&self) -> u64 {
        self.core.rejected
    }

    /// Create rows for ``symbols`` (NaN prices, ts 0) so their quotes are admitted.
    fn reserve(&mut self, py: Python<'_>, symbols: &Bound<'_, PyAny>) -> PyResult<()> {
        if symbols.is_instance_of::<PyString>() {
            return Err(crate::errors::config_error("reserve() takes an iterable of symbols, not one string"));
        }
        for s in symbols.try_iter()? {
            let s = s?;
            let name: &str = s.cast::<PyString>()?.to_str()?;
            if self.core.row(name).is_none() {
                self.new_row(py, name);
            }
        }
        Ok(())
    }

    /// The row of a symbol, or -1.
    fn row(&self, symbol: &str) -> i64 {
        self.core.row(symbol).map_or(-1, |r| r as i64)
    }

    #[getter]
    fn symbols<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.symbols.iter().map(|s| s.clone_ref(py)))
    }

    /// Column views of the live rows: valid until the next growth reallocates them.
    fn column<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let i = self
            .core
            .value_fields()
            .iter()
            .position(|f| f.0 == name)
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_string()))?;
        self.columns[i].bind(py).get_item(pyo3::types::PySlice::new(py, 0, self.symbols.len() as isize, 1))
    }

    #[getter]
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for f in self.core.value_fields() {
            d.set_item(&f.0, self.column(py, &f.0)?)?;
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
    fn capacity(&self) -> usize {
        self.capacity
    }

    fn __len__(&self) -> usize {
        self.symbols.len()
    }
}

impl QuoteBook {
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

    /// Decode one frame and write it into its row: the row, or -1 for another marker.
    /// Atomic: a bad frame changes nothing. With `out`, the quote is also reported there.
    pub fn apply_bytes(&mut self, py: Python<'_>, buf: &[u8], out: Option<&mut QuoteOut>) -> FResult<i64> {
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
