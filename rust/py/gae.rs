//! Python bindings of `crate::gae`: check shapes, release the GIL, return fresh arrays.

use numpy::{PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use super::arrays::{expect_shape, matrix};
use crate::error::CoreError;
use crate::gae::{self, Discount, Episodes, GaeOutput, NanPolicy, ValueEstimates};

type Matrix<'py> = Bound<'py, PyArray2<f32>>;

/// GAE(lambda) over time-major float32 `[T, N]` arrays; flags are bool `[T, N]`.
/// Returns `(advantages, returns)`, both float32 `[T, N]`. See `hrl.compute_gae`.
#[pyfunction]
#[pyo3(signature = (rewards, values, next_values, terminated, truncated, *, gamma, lam, check_finite = true))]
#[allow(clippy::too_many_arguments)]
pub fn compute_gae<'py>(
    py: Python<'py>,
    rewards: &Bound<'py, PyAny>,
    values: &Bound<'py, PyAny>,
    next_values: &Bound<'py, PyAny>,
    terminated: &Bound<'py, PyAny>,
    truncated: &Bound<'py, PyAny>,
    gamma: f32,
    lam: f32,
    check_finite: bool,
) -> PyResult<(Matrix<'py>, Matrix<'py>)> {
    let discount = Discount::new(gamma, lam)?;
    let rewards = matrix::<f32>(rewards, "rewards", "float32")?;
    let shape = [rewards.shape()[0], rewards.shape()[1]];
    let values = same_shape::<f32>(values, "values", "float32", shape)?;
    let next_values = same_shape::<f32>(next_values, "next_values", "float32", shape)?;
    let terminated = same_shape::<bool>(terminated, "terminated", "bool", shape)?;
    let truncated = same_shape::<bool>(truncated, "truncated", "bool", shape)?;
    let (advantages, returns) = (output(py, shape), output(py, shape));
    {
        let (mut adv_view, mut ret_view) = (advantages.readwrite(), returns.readwrite());
        let (adv, ret) = (slice_mut(&mut adv_view)?, slice_mut(&mut ret_view)?);
        let episodes = Episodes::new(
            shape[0],
            shape[1],
            slice(&rewards)?,
            slice(&terminated)?,
            slice(&truncated)?,
        )?;
        let estimates = ValueEstimates {
            values: slice(&values)?,
            next_values: slice(&next_values)?,
        };
        let policy = nan_policy(check_finite);
        py.detach(|| {
            gae::compute_gae(
                &episodes,
                estimates,
                discount,
                policy,
                GaeOutput {
                    advantages: adv,
                    returns: ret,
                },
            )
        })?;
    }
    Ok((advantages, returns))
}

/// Discounted returns over time-major `[T, N]` arrays, bootstrapping at cuts from `bootstrap`
/// (float32 `[T, N]` or None for zeros). Returns float32 `[T, N]`. See `hrl.discounted_returns`.
#[pyfunction]
#[pyo3(signature = (rewards, terminated, truncated, *, gamma, bootstrap = None, check_finite = true))]
pub fn discounted_returns<'py>(
    py: Python<'py>,
    rewards: &Bound<'py, PyAny>,
    terminated: &Bound<'py, PyAny>,
    truncated: &Bound<'py, PyAny>,
    gamma: f32,
    bootstrap: Option<&Bound<'py, PyAny>>,
    check_finite: bool,
) -> PyResult<Matrix<'py>> {
    let rewards = matrix::<f32>(rewards, "rewards", "float32")?;
    let shape = [rewards.shape()[0], rewards.shape()[1]];
    let terminated = same_shape::<bool>(terminated, "terminated", "bool", shape)?;
    let truncated = same_shape::<bool>(truncated, "truncated", "bool", shape)?;
    let bootstrap = bootstrap
        .map(|b| same_shape::<f32>(b, "bootstrap", "float32", shape))
        .transpose()?;
    let returns = output(py, shape);
    {
        let mut ret_view = returns.readwrite();
        let ret = slice_mut(&mut ret_view)?;
        let episodes = Episodes::new(
            shape[0],
            shape[1],
            slice(&rewards)?,
            slice(&terminated)?,
            slice(&truncated)?,
        )?;
        let bootstrap = bootstrap.as_ref().map(slice).transpose()?;
        let policy = nan_policy(check_finite);
        py.detach(|| gae::discounted_returns(&episodes, bootstrap, gamma, policy, ret))?;
    }
    Ok(returns)
}

/// A fresh C-contiguous float32 array that the kernels overwrite completely (every element is
/// written before any is read), so it is not zero-filled first.
fn output(py: Python<'_>, shape: [usize; 2]) -> Matrix<'_> {
    // SAFETY: f32 is plain data (no drop, every bit pattern valid) and both kernels write every
    // element of their output before reading it back (see `gae::scan_backward`).
    unsafe { PyArray2::<f32>::new(py, shape, false) }
}

fn same_shape<'py, T: numpy::Element>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    dtype: &str,
    shape: [usize; 2],
) -> Result<PyReadonlyArray2<'py, T>, CoreError> {
    let array = matrix::<T>(obj, arg, dtype)?;
    expect_shape(&array, arg, shape)?;
    Ok(array)
}

fn slice<'a, T: numpy::Element>(array: &'a PyReadonlyArray2<'_, T>) -> Result<&'a [T], CoreError> {
    array
        .as_slice()
        .map_err(|_| CoreError::shape("array", "C-contiguous", "strided"))
}

fn slice_mut<'a, T: numpy::Element>(
    array: &'a mut numpy::PyReadwriteArray2<'_, T>,
) -> Result<&'a mut [T], CoreError> {
    array
        .as_slice_mut()
        .map_err(|_| CoreError::shape("output", "C-contiguous", "strided"))
}

fn nan_policy(check_finite: bool) -> NanPolicy {
    if check_finite {
        NanPolicy::Raise
    } else {
        NanPolicy::Propagate
    }
}
