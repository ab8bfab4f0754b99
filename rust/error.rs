//! The one error type of the core. Every fallible kernel returns `Result<_, CoreError>`;
//! `py/errors.rs` maps each variant to exactly one `hrl.errors` exception class.

use thiserror::Error;

/// Everything that can go wrong inside the core, with enough context to name the argument,
/// index, file or line at fault.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// An array has the wrong shape or length (maps to `hrl.errors.ShapeError`).
    #[error("{arg}: expected shape {expected}, got {got}")]
    Shape {
        arg: String,
        expected: String,
        got: String,
    },
    /// An array has the wrong element type (maps to `hrl.errors.DTypeError`).
    #[error("{arg}: expected dtype {expected}, got {got}")]
    DType {
        arg: String,
        expected: String,
        got: String,
    },
    /// A NaN or infinity where only finite numbers are allowed (maps to `hrl.errors.NonFiniteError`).
    /// `index` is the position of the first offending element (row-major).
    #[error("{arg}: non-finite value {value} at index {index:?}")]
    NonFinite {
        arg: String,
        index: Vec<usize>,
        value: f64,
    },
    /// A scalar argument outside its domain (maps to `hrl.errors.InvalidArgumentError`).
    #[error("{arg}: {reason}")]
    InvalidArgument { arg: String, reason: String },
    /// Malformed log content (maps to `hrl.errors.LogParseError`); `line` is 1-based, 0 if unknown.
    #[error("{path}:{line}: {reason}")]
    LogParse {
        path: String,
        line: usize,
        reason: String,
    },
}

impl CoreError {
    /// Shorthand for [`CoreError::Shape`].
    pub fn shape(arg: &str, expected: impl Into<String>, got: impl Into<String>) -> Self {
        Self::Shape {
            arg: arg.to_owned(),
            expected: expected.into(),
            got: got.into(),
        }
    }

    /// Shorthand for [`CoreError::InvalidArgument`].
    pub fn invalid(arg: &str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            arg: arg.to_owned(),
            reason: reason.into(),
        }
    }
}
