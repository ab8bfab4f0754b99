//! The one conversion from [`CoreError`] to the Python exceptions of `hrl.errors`.

use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

use crate::error::CoreError;

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        Python::attach(|py| {
            let message = err.to_string();
            let (class, args) = match &err {
                CoreError::Shape { .. } => ("ShapeError", PyTuple::new(py, [message])),
                CoreError::DType { .. } => ("DTypeError", PyTuple::new(py, [message])),
                CoreError::InvalidArgument { .. } => {
                    ("InvalidArgumentError", PyTuple::new(py, [message]))
                }
                CoreError::NonFinite { arg, index, .. } => (
                    "NonFiniteError",
                    (
                        message,
                        arg,
                        PyTuple::new(py, index).unwrap_or_else(|_| PyTuple::empty(py)),
                    )
                        .into_pyobject(py)
                        .map(|t| t.into_any().cast_into::<PyTuple>().expect("a tuple")),
                ),
                CoreError::LogParse {
                    path,
                    line,
                    column,
                    kind,
                    ..
                } => (
                    "LogParseError",
                    (
                        message,
                        path,
                        *line,
                        (!column.is_empty()).then_some(column.as_str()),
                        kind.name(),
                    )
                        .into_pyobject(py)
                        .map(|t| t.into_any().cast_into::<PyTuple>().expect("a tuple")),
                ),
            };
            let class = py
                .import("hrl.errors")
                .and_then(|module| module.getattr(class))
                .and_then(|class| class.cast_into::<PyType>().map_err(PyErr::from));
            match (class, args) {
                (Ok(class), Ok(args)) => PyErr::from_type(class, args.unbind()),
                (Err(import_error), _) | (_, Err(import_error)) => import_error,
            }
        })
    }
}
