//! oddswire.errors exceptions raised from Rust (imported once, lazily).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

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

/// A DATA.BET line that could not be applied; `index` is its position in an `apply_many` batch.
pub fn log_error(py: Python<'_>, e: &crate::databet::odds::LogError, index: Option<usize>) -> PyErr {
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
pub fn stored_json_error(
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
