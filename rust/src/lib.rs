//! oddswire's Rust core: plain Rust structs (tested with `cargo test`) under thin PyO3
//! classes. Users import these through oddswire.codec / .broker / .databet.

use pyo3::prelude::*;

pub mod betcore;
pub mod broker;
pub mod capi;
mod column;
pub mod databet;
pub mod errors;
pub mod fastnum;
pub mod json;
pub mod satoriex;

/// The bytes of a frame or line passed as `bytes` or `str` (its UTF-8).
pub(crate) fn frame_bytes<'a>(frame: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    if let Ok(b) = frame.cast::<pyo3::types::PyBytes>() {
        return Ok(b.as_bytes());
    }
    if let Ok(s) = frame.cast::<pyo3::types::PyString>() {
        return Ok(s.to_str()?.as_bytes());
    }
    Err(pyo3::exceptions::PyTypeError::new_err("frame must be bytes or str"))
}

/// Ask the CPU to start loading `len` bytes at `ptr` into the cache, one line at a time:
/// a hint that never faults and reads nothing, so any address is allowed.
#[inline(always)]
pub(crate) fn prefetch(ptr: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for off in (0..len).step_by(64) {
        // SAFETY: PREFETCHT0 is a hint; it does not access memory architecturally.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.wrapping_add(off).cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (ptr, len);
}

pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

#[pymodule]
fn oddswire_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("BUILD_PROFILE", build_profile())?;
    m.add_class::<broker::CompactDecoder>()?;
    m.add_class::<broker::QuoteBook>()?;
    broker::install_fast_methods(m)?;
    m.add_class::<databet::OddsTable>()?;
    m.add_class::<databet::Applied>()?;
    m.add_class::<databet::SportEvent>()?;
    m.add_class::<betcore::GamesTable>()?;
    m.add_class::<betcore::GamesUpdate>()?;
    m.add_class::<betcore::Game>()?;
    m.add_class::<satoriex::MarketData>()?;
    capi::add_capsule(m)?;
    Ok(())
}
