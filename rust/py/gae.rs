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
    let steps = EpisodeArrays::extract(rewards, terminated, truncated)?;
    let values = same_shape::<f32>(values, "values", "float32", steps.shape)?;
    let next_values = same_shape::<f32>(next_values, "next_values", "float32", steps.shape)?;
    let (advantages, returns) = (output(py, steps.shape), output(py, steps.shape));
    {
        let (mut adv_view, mut ret_view) = (advantages.readwrite(), returns.readwrite());
        let out = GaeOutput {
            advantages: slice_mut(&mut adv_view)?,
            returns: slice_mut(&mut ret_view)?,
        };
        let episodes = steps.episodes()?;
        let estimates = ValueEstimates {
            values: slice(&values)?,
            next_values: slice(&next_values)?,
        };
        let policy = nan_policy(check_finite);
        py.detach(|| gae::compute_gae(&episodes, estimates, discount, policy, out))?;
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
    let steps = EpisodeArrays::extract(rewards, terminated, truncated)?;
    let bootstrap = bootstrap
        .map(|b| same_shape::<f32>(b, "bootstrap", "float32", steps.shape))
        .transpose()?;
    let returns = output(py, steps.shape);
    {
        let mut ret_view = returns.readwrite();
        let ret = slice_mut(&mut ret_view)?;
        let episodes = steps.episodes()?;
        let bootstrap = bootstrap.as_ref().map(slice).transpose()?;
        let policy = nan_policy(check_finite);
        py.detach(|| gae::discounted_returns(&episodes, bootstrap, gamma, policy, ret))?;
    }
    Ok(returns)
}

/// Checked views of the rewards and episode flags shared by both kernels.
struct EpisodeArrays<'py> {
    shape: [usize; 2],
    rewards: PyReadonlyArray2<'py, f32>,
    terminated: PyReadonlyArray2<'py, bool>,
    truncated: PyReadonlyArray2<'py, bool>,
}

impl<'py> EpisodeArrays<'py> {
    /// float32 `[T, N]` rewards and bool flags of the same shape.
    fn extract(
        rewards: &Bound<'py, PyAny>,
        terminated: &Bound<'py, PyAny>,
        truncated: &Bound<'py, PyAny>,
    ) -> Result<Self, CoreError> {
        let rewards = matrix::<f32>(rewards, "rewards", "float32")?;
        let shape = [rewards.shape()[0], rewards.shape()[1]];
        Ok(Self {
            shape,
            rewards,
            terminated: same_shape::<bool>(terminated, "terminated", "bool", shape)?,
            truncated: same_shape::<bool>(truncated, "truncated", "bool", shape)?,
        })
    }

    fn episodes(&self) -> Result<Episodes<'_>, CoreError> {
        Episodes::new(
            self.shape[0],
            self.shape[1],
            slice(&self.rewards)?,
            slice(&self.terminated)?,
            slice(&self.truncated)?,
        )
    }
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
