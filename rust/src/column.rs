//! A numpy column owned by a table under Python, with its data pointer: the feeds' PyO3
//! layers (BETCORE's games table, SatoriEx's prices) keep their per-row columns in these.

use numpy::{Element, PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PySlice;

/// One numpy column and its data pointer (refreshed when the array is reallocated).
pub(crate) struct Col<T: Element + Copy> {
    arr: Py<PyArray1<T>>,
    ptr: *mut T,
    fill: T,
}

// SAFETY: the pointer is only dereferenced while attached to the interpreter, which owns the
// array; the table never hands it to another thread.
unsafe impl<T: Element + Copy> Send for Col<T> {}
unsafe impl<T: Element + Copy> Sync for Col<T> {}

impl<T: Element + Copy> Col<T> {
    pub(crate) fn new(py: Python<'_>, n: usize, fill: T) -> Self {
        let mut c = Col { arr: unsafe { PyArray1::<T>::new(py, 0, false) }.unbind(), ptr: std::ptr::null_mut(), fill };
        c.resize(py, n, 0);
        c
    }

    /// A new array of `n` elements: the first `keep` copied, the rest free.
    pub(crate) fn resize(&mut self, py: Python<'_>, n: usize, keep: usize) {
        let a = unsafe { PyArray1::<T>::new(py, n, false) };
        // SAFETY: fresh, contiguous, n elements; the old array holds at least `keep`.
        unsafe {
            let dst = std::slice::from_raw_parts_mut(a.data(), n);
            if keep > 0 {
                dst[..keep].copy_from_slice(std::slice::from_raw_parts(self.arr.bind(py).data(), keep));
            }
            dst[keep..].fill(self.fill);
        }
        self.ptr = a.data();
        self.arr = a.unbind();
    }

    /// SAFETY: `n` is the array's length, and the slice is not kept past a resize.
    pub(crate) unsafe fn slice<'a>(&self, n: usize) -> &'a mut [T] {
        std::slice::from_raw_parts_mut(self.ptr, n)
    }

    /// A read-only view of the first `n` elements.
    pub(crate) fn view<'py>(&self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyAny>> {
        let v = self.arr.bind(py).get_item(PySlice::new(py, 0, n as isize, 1))?;
        v.getattr(pyo3::intern!(py, "flags"))?.setattr(pyo3::intern!(py, "writeable"), false)?;
        Ok(v)
    }
}
