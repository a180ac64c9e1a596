//! Broker compact arrays: `["t", "EURUSD", 1.08123, 1.08125, 1700000000000]`.
//!
//! `Schema` and `read_frame` are plain Rust (cargo-tested); `CompactDecoder` and
//! `QuoteBook` are thin PyO3 classes over them.

use std::borrow::Cow;

use ahash::AHashMap;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use smallvec::SmallVec;

use crate::errors::decode_error;
use crate::json::{JsonError, Number, Parser, MAX_DEPTH};

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
    fn at(field: usize, e: JsonError) -> FrameError {
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
// Python side

pub(crate) fn frame_bytes<'a>(frame: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    if let Ok(b) = frame.cast::<pyo3::types::PyBytes>() {
        return Ok(b.as_bytes());
    }
    if let Ok(s) = frame.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes());
    }
    Err(pyo3::exceptions::PyTypeError::new_err("frame must be bytes or str"))
}

pub(crate) fn to_err(py: Python<'_>, e: FrameError) -> PyErr {
    decode_error(py, &format!("{} at byte {}", e.message, e.offset), Some(e.field))
}

fn json_value(py: Python<'_>, p: &mut Parser, depth: usize, field: usize) -> PyResult<Py<PyAny>> {
    if depth > MAX_DEPTH {
        return Err(to_err(py, FrameError { message: "nesting too deep".into(), field, offset: p.pos }));
    }
    let e = |py, err: JsonError| to_err(py, FrameError::at(field, err));
    Ok(match p.peek() {
        Some(b'"') => PyString::new(py, &p.string().map_err(|x| e(py, x))?).into_any().unbind(),
        Some(b'-' | b'0'..=b'9') => match p.number().map_err(|x| e(py, x))? {
            Number::Int(v) => v.into_pyobject(py)?.into_any().unbind(),
            Number::Float(v) => PyFloat::new(py, v).into_any().unbind(),
            // Python refuses ints of more than sys.get_int_max_str_digits() digits (4300):
            // a DecodeError like the twin's, never a bare ValueError.
            Number::BigInt(s) => py
                .get_type::<PyInt>()
                .call1((s,))
                .map_err(|err| {
                    let message = format!("invalid JSON: integer of {} digits: {}", s.len(), err.value(py));
                    decode_error(py, &message, None)
                })?
                .unbind(),
        },
        Some(b't' | b'f') => PyBool::new(py, p.boolean().map_err(|x| e(py, x))?).to_owned().into_any().unbind(),
        Some(b'n') => {
            p.literal(b"null").map_err(|x| e(py, x))?;
            py.None()
        }
        Some(b'[') => {
            p.pos += 1;
            let list = PyList::empty(py);
            p.ws();
            if p.peek() == Some(b']') {
                p.pos += 1;
            } else {
                loop {
                    p.ws();
                    list.append(json_value(py, p, depth + 1, field)?)?;
                    p.ws();
                    match p.peek() {
                        Some(b',') => p.pos += 1,
                        Some(b']') => {
                            p.pos += 1;
                            break;
                        }
                        _ => return Err(e(py, JsonError { message: "expected ',' or ']'".into(), offset: p.pos })),
                    }
                }
            }
            list.into_any().unbind()
        }
        Some(b'{') => {
            p.pos += 1;
            let dict = PyDict::new(py);
            p.ws();
            if p.peek() == Some(b'}') {
                p.pos += 1;
            } else {
                loop {
                    p.ws();
                    let key = p.string().map_err(|x| e(py, x))?;
                    p.ws();
                    if p.peek() != Some(b':') {
                        return Err(e(py, JsonError { message: "expected ':'".into(), offset: p.pos }));
                    }
                    p.pos += 1;
                    p.ws();
                    let value = json_value(py, p, depth + 1, field)?;
                    dict.set_item(PyString::new(py, &key), value)?;
                    p.ws();
                    match p.peek() {
                        Some(b',') => p.pos += 1,
                        Some(b'}') => {
                            p.pos += 1;
                            break;
                        }
                        _ => return Err(e(py, JsonError { message: "expected ',' or '}'".into(), offset: p.pos })),
                    }
                }
            }
            dict.into_any().unbind()
        }
        _ => return Err(e(py, JsonError { message: "expected a JSON value".into(), offset: p.pos })),
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
    schema: Schema,
    rows: AHashMap<Box<str>, u32>,
    symbols: Vec<Py<PyString>>,
    /// One numpy column per typed field after the symbol; columns[i] matches schema field i+1.
    columns: Vec<Py<PyAny>>,
    /// Raw data pointers of `columns`, refreshed on growth (the arrays are owned here).
    ptrs: Vec<*mut u8>,
    capacity: usize,
    /// Positions of bid, ask and ts among the typed fields after the symbol, when present.
    quote_fields: Option<[usize; 3]>,
    /// False: a quote for a symbol without a row (see `reserve`) changes nothing.
    admit_new: bool,
    rejected: u64,
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
        if schema.fields.first().map(|f| f.1) != Some(FieldType::Str) {
            return Err(crate::errors::config_error("QuoteBook schema: field 1 must be the symbol (str)"));
        }
        if schema.fields[1..].iter().any(|f| matches!(f.1, FieldType::Str | FieldType::Json)) {
            return Err(crate::errors::config_error(
                "QuoteBook schema: fields after the symbol must be f64, i64, ts or bool",
            ));
        }
        let capacity = capacity.max(1);
        let columns: Vec<Py<PyAny>> = schema.fields[1..].iter().map(|f| new_column(py, f.1, capacity)).collect();
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
        let mut book = QuoteBook {
            schema,
            rows: AHashMap::new(),
            symbols: Vec::new(),
            columns,
            ptrs: Vec::new(),
            capacity,
            quote_fields,
            admit_new,
            rejected: 0,
        };
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
        self.quote_fields.is_some()
    }

    /// Whether a quote for a symbol without a row creates one (True) or is rejected.
    #[getter]
    fn admit_new(&self) -> bool {
        self.admit_new
    }

    #[setter]
    fn set_admit_new(&mut self, value: bool) {
        self.admit_new = value;
    }

    /// Quotes rejected because their symbol had no row and ``admit_new`` was False.
    #[getter]
    fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Create rows for ``symbols`` (NaN prices, ts 0) so their quotes are admitted.
    fn reserve(&mut self, py: Python<'_>, symbols: &Bound<'_, PyAny>) -> PyResult<()> {
        if symbols.is_instance_of::<PyString>() {
            return Err(crate::errors::config_error("reserve() takes an iterable of symbols, not one string"));
        }
        for s in symbols.try_iter()? {
            let s = s?;
            let name: &str = s.cast::<PyString>()?.to_str()?;
            if !self.rows.contains_key(name) {
                self.new_row(py, name);
            }
        }
        Ok(())
    }

    /// The row of a symbol, or -1.
    fn row(&self, symbol: &str) -> i64 {
        self.rows.get(symbol).map_or(-1, |&r| r as i64)
    }

    #[getter]
    fn symbols<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.symbols.iter().map(|s| s.clone_ref(py)))
    }

    /// Column views of the live rows: valid until the next growth reallocates them.
    fn column<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let i = self.schema.fields[1..]
            .iter()
            .position(|f| f.0 == name)
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_string()))?;
        self.columns[i].bind(py).get_item(pyo3::types::PySlice::new(py, 0, self.symbols.len() as isize, 1))
    }

    #[getter]
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for f in &self.schema.fields[1..] {
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
        let r = self.symbols.len();
        if r == self.capacity {
            self.grow(py, self.capacity * 2);
        }
        self.rows.insert(symbol.into(), r as u32);
        self.symbols.push(PyString::intern(py, symbol).unbind());
        r
    }

    fn grow(&mut self, py: Python<'_>, new: usize) {
        let old = self.capacity;
        for (i, f) in self.schema.fields[1..].iter().enumerate() {
            self.columns[i] = grow_column(py, &self.columns[i], f.1, old, new);
        }
        self.capacity = new;
        self.refresh_ptrs(py);
    }

    fn refresh_ptrs(&mut self, py: Python<'_>) {
        self.ptrs = self
            .columns
            .iter()
            .zip(&self.schema.fields[1..])
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
        let fields = match read_frame(buf, &self.schema)? {
            None => return Ok(-1),
            Some(f) => f,
        };
        let Typed::Str(symbol) = &fields[0] else { unreachable!() };
        let row = match self.rows.get(symbol.as_ref()) {
            Some(&r) => r as usize,
            None if !self.admit_new => {
                self.rejected += 1;
                if let Some(out) = out {
                    out.row = -1;
                    out.symbol = std::ptr::null_mut();
                }
                return Ok(-2);
            }
            None => self.new_row(py, symbol),
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
            if let Some([b, a, t]) = self.quote_fields {
                let f = &fields[1..];
                out.bid = if let Typed::F64(v) = f[b] { v } else { f64::NAN };
                out.ask = if let Typed::F64(v) = f[a] { v } else { f64::NAN };
                out.ts = if let Typed::I64(v) = f[t] { v } else { 0 };
            }
        }
        Ok(row as i64)
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
}
