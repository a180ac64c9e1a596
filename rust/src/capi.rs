//! The C-level entry points of `oddswire_native`, published as the PyCapsule
//! `oddswire_native._C_API` so Cython code (the picows listener in `ext/`) can call the Rust
//! decoder with a pointer into the socket's read buffer: no `bytes` object, no argument
//! parsing, no method lookup. The struct layout is mirrored in `ext/oddswire/_wire.pxd`;
//! `abi_version` and `size` let the Cython side refuse a mismatched build.

use std::os::raw::c_int;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::broker::{to_err, QuoteBook, QuoteOut};
use crate::satoriex::{market_error, MarketData, MarketOut};

pub const ABI_VERSION: u32 = 3;

#[repr(C)]
pub struct NativeApi {
    pub abi_version: u32,
    pub size: u32,
    /// Decode the compact array at `buf[..len]` into `book` (a `QuoteBook`). Returns 1 and
    /// fills `out` for a quote, 0 for a frame with another marker (book unchanged), 2 for a
    /// quote whose symbol the book does not admit (book unchanged, `out.row` -1, `out.symbol`
    /// NULL), -1 with a Python exception set (a `DecodeError`; the book is unchanged).
    pub quote_apply:
        unsafe extern "C" fn(book: *mut ffi::PyObject, buf: *const u8, len: isize, out: *mut QuoteOut) -> c_int,
    /// 1 if `obj` is a `QuoteBook`, else 0.
    pub is_quote_book: unsafe extern "C" fn(obj: *mut ffi::PyObject) -> c_int,
    /// SatoriEx: apply the message at `buf[..len]` to `md` (a `MarketData`). Returns 0 for
    /// a message of another type (nothing changed, `out` untouched), else `apply`'s result
    /// code (1 price, 2 book, 3 gap, 4 crossed, 5 unsynced) with `out` filled (see
    /// `MarketOut`); -1 with a Python exception set (a `DecodeError`: nothing changed).
    pub market_apply:
        unsafe extern "C" fn(md: *mut ffi::PyObject, buf: *const u8, len: isize, out: *mut MarketOut) -> c_int,
    /// 1 if `obj` is a SatoriEx `MarketData`, else 0.
    pub is_market_data: unsafe extern "C" fn(obj: *mut ffi::PyObject) -> c_int,
}

/// # Safety
/// The caller holds the GIL, `book` is a live `QuoteBook` (checked once with
/// `is_quote_book`), `buf` is valid for `len` bytes and `out` for one write.
unsafe extern "C" fn quote_apply(book: *mut ffi::PyObject, buf: *const u8, len: isize, out: *mut QuoteOut) -> c_int {
    let py = unsafe { Python::assume_attached() };
    // Borrowed as it is: no reference count round trip, no borrow flag (QuoteBook is
    // frozen; its state is GIL-guarded).
    let book = unsafe { Bound::ref_from_ptr(py, &book).cast_unchecked::<QuoteBook>() }.get();
    let data = unsafe { std::slice::from_raw_parts(buf, len.max(0) as usize) };
    let out = unsafe { &mut *out };
    // An exact frame for a symbol with a row calls no Python API and cannot panic.
    match book.apply_exact(py, data, out) {
        Some(-2) => 2,
        Some(_) => 1,
        None => quote_apply_general(py, book, data, out),
    }
}

#[cold]
#[inline(never)]
fn quote_apply_general(py: Python<'_>, book: &QuoteBook, data: &[u8], out: &mut QuoteOut) -> c_int {
    let run = || -> PyResult<c_int> {
        match book.apply_bytes(py, data, Some(out))? {
            Ok(-1) => Ok(0),
            Ok(-2) => Ok(2),
            Ok(_) => Ok(1),
            Err(e) => Err(to_err(py, e)),
        }
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            e.restore(py);
            -1
        }
        Err(_) => {
            pyo3::exceptions::PySystemError::new_err("oddswire_native: panic in quote_apply").restore(py);
            -1
        }
    }
}

unsafe extern "C" fn is_quote_book(obj: *mut ffi::PyObject) -> c_int {
    let py = unsafe { Python::assume_attached() };
    let bound = unsafe { Bound::from_borrowed_ptr(py, obj) };
    bound.is_instance_of::<QuoteBook>() as c_int
}

/// # Safety
/// The caller holds the GIL, `md` is a live `MarketData` (checked once with
/// `is_market_data`), `buf` is valid for `len` bytes and `out` for one write.
unsafe extern "C" fn market_apply(md: *mut ffi::PyObject, buf: *const u8, len: isize, out: *mut MarketOut) -> c_int {
    let py = unsafe { Python::assume_attached() };
    let run = || -> PyResult<c_int> {
        let bound = unsafe { Bound::from_borrowed_ptr(py, md) };
        let cell = unsafe { bound.cast_unchecked::<MarketData>() };
        let mut m = cell.try_borrow_mut()?;
        let data = unsafe { std::slice::from_raw_parts(buf, len.max(0) as usize) };
        match m.apply_bytes(py, data, Some(unsafe { &mut *out })) {
            Ok(code) => Ok(c_int::from(code)),
            Err(e) => Err(market_error(py, &e)),
        }
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            e.restore(py);
            -1
        }
        Err(_) => {
            pyo3::exceptions::PySystemError::new_err("oddswire_native: panic in market_apply").restore(py);
            -1
        }
    }
}

unsafe extern "C" fn is_market_data(obj: *mut ffi::PyObject) -> c_int {
    let py = unsafe { Python::assume_attached() };
    let bound = unsafe { Bound::from_borrowed_ptr(py, obj) };
    bound.is_instance_of::<MarketData>() as c_int
}

pub fn add_capsule(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let api = NativeApi {
        abi_version: ABI_VERSION,
        size: std::mem::size_of::<NativeApi>() as u32,
        quote_apply,
        is_quote_book,
        market_apply,
        is_market_data,
    };
    let capsule = PyCapsule::new_with_value(m.py(), api, c"oddswire_native._C_API")?;
    m.add("_C_API", capsule)
}
