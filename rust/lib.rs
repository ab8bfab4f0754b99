//! Rust core of `hrl`. Pure kernels live in the top-level modules and never import pyo3;
//! `py` (behind the default `python` feature) is the only place that talks to Python.

pub mod error;
pub mod gae;
pub mod logs;
pub mod replay;
pub mod safety;
pub mod stock;

#[cfg(feature = "python")]
mod py;
