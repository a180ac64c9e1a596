//! oddswire.errors exceptions raised from Rust (imported once, lazily), and the orjson reader
//! of stored JSON whose refusals become them.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyType};

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS.get_or_try_init(py, || py.import("oddswire.errors").map(|m| m.unbind())).map(|m| m.bind(py))
}

pub(crate) fn build(py: Python<'_>, name: &str, message: &str, kwargs: Option<&Bound<'_, PyDict>>) -> PyErr {
    match errors(py).and_then(|m| m.getattr(name)) {
        Ok(cls) => match cls.cast::<PyType>() {
            Ok(cls) => match cls.call((message,), kwargs) {
                Ok(exc) => PyErr::from_value(exc),
                Err(e) => e,
            },
            Err(e) => e.into(),
        },
        Err(e) => e,
    }
}

pub fn decode_error(py: Python<'_>, message: &str, field: Option<usize>) -> PyErr {
    let kw = PyDict::new(py);
    if let Some(f) = field {
        let _ = kw.set_item("field", f);
    }
    build(py, "DecodeError", message, Some(&kw))
}

pub fn config_error(message: &str) -> PyErr {
    Python::attach(|py| build(py, "ConfigError", message, None))
}

static ORJSON: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// Decode stored JSON with orjson. A refusal (a `ValueError`: `orjson.JSONDecodeError`) goes
/// through `refused`, which makes it a `DecodeError`: a user only sees `oddswire.errors` types.
pub(crate) fn loads<'py>(
    py: Python<'py>,
    raw: &[u8],
    refused: impl FnOnce(PyErr) -> PyErr,
) -> PyResult<Bound<'py, PyAny>> {
    let orjson = ORJSON.get_or_try_init(py, || py.import("orjson").map(|m| m.unbind()))?.bind(py);
    orjson.getattr(pyo3::intern!(py, "loads"))?.call1((PyBytes::new(py, raw),)).map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) {
            refused(e)
        } else {
            e
        }
    })
}
