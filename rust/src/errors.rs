//! oddswire.errors exceptions raised from Rust (imported once, lazily).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

fn errors(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    ERRORS
        .get_or_try_init(py, || py.import("oddswire.errors").map(|m| m.unbind()))
        .map(|m| m.bind(py))
}

fn build(py: Python<'_>, name: &str, message: &str, kwargs: Option<&Bound<'_, PyDict>>) -> PyErr {
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
