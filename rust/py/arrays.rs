//! Checked views of NumPy arguments: dtype, rank and C-contiguity errors become `CoreError`s
//! that name the argument.

use numpy::{Element, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::error::CoreError;

/// Borrows `obj` as a read-only C-contiguous 2-D array of `T` (`dtype` names `T` in errors).
pub fn matrix<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    dtype: &str,
) -> Result<PyReadonlyArray2<'py, T>, CoreError> {
    let array = obj
        .cast::<PyArray2<T>>()
        .map_err(|_| describe_mismatch(obj, arg, dtype))?;
    let view = array
        .try_readonly()
        .map_err(|e| CoreError::invalid(arg, format!("cannot borrow array: {e}")))?;
    if !view.is_c_contiguous() {
        return Err(CoreError::shape(
            arg,
            "a C-contiguous array",
            "a strided view",
        ));
    }
    Ok(view)
}

/// Checks that `array` has exactly `shape`.
pub fn expect_shape<T: Element>(
    array: &PyReadonlyArray2<T>,
    arg: &str,
    shape: [usize; 2],
) -> Result<(), CoreError> {
    let got = array.shape();
    if got == shape {
        Ok(())
    } else {
        Err(CoreError::shape(
            arg,
            format!("{shape:?}"),
            format!("{got:?}"),
        ))
    }
}

fn describe_mismatch(obj: &Bound<'_, PyAny>, arg: &str, dtype: &str) -> CoreError {
    let attr = |name: &str| {
        obj.getattr(name)
            .and_then(|a| a.str().map(|s| s.to_string()))
            .ok()
    };
    match (attr("dtype"), attr("ndim")) {
        (Some(got), Some(ndim)) if ndim == "2" => CoreError::DType {
            arg: arg.to_owned(),
            expected: dtype.to_owned(),
            got,
        },
        (Some(_), Some(ndim)) => CoreError::shape(arg, "a 2-D [T, N] array", format!("{ndim}-D")),
        _ => CoreError::DType {
            arg: arg.to_owned(),
            expected: format!("numpy.ndarray of {dtype}"),
            got: obj
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".to_owned()),
        },
    }
}
