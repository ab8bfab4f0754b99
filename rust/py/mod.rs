//! The only place that imports pyo3/numpy: thin wrappers over the pure kernels, one error
//! conversion, and the `hrl._core` module definition.

mod arrays;
mod errors;
mod gae;
mod logs;
mod replay;
mod safety;

use pyo3::prelude::*;

/// `hrl._core`: the compiled kernels. Use them through the `hrl` package, not directly.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(gae::compute_gae, m)?)?;
    m.add_function(wrap_pyfunction!(gae::discounted_returns, m)?)?;
    m.add_class::<safety::Limits>()?;
    m.add_function(wrap_pyfunction!(safety::derive_limits, m)?)?;
    m.add_function(wrap_pyfunction!(safety::round_step, m)?)?;
    m.add_function(wrap_pyfunction!(safety::audit_offers, m)?)?;
    m.add_function(wrap_pyfunction!(safety::simulate_stock, m)?)?;
    m.add_function(wrap_pyfunction!(replay::replay_micro, m)?)?;
    m.add_function(wrap_pyfunction!(logs::parse_literal, m)?)?;
    m.add_function(wrap_pyfunction!(logs::read_negotiations_csv, m)?)?;
    m.add_function(wrap_pyfunction!(logs::split_csv_records, m)?)?;
    m.add_function(wrap_pyfunction!(logs::parse_negotiation_cells, m)?)?;
    Ok(())
}
