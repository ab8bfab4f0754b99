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
    /// Malformed log content (maps to `hrl.errors.LogParseError`). `line` is 1-based, 0 if
    /// unknown: a physical line of a CSV file, or a row of a table (`place` says which);
    /// `column` names the column at fault ("" when not known).
    #[error("{}", log_place(path, *line, *place, column, reason))]
    LogParse {
        path: String,
        line: usize,
        place: Place,
        column: String,
        kind: LogProblem,
        reason: String,
    },
}

/// What `line` of a [`CoreError::LogParse`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A 1-based physical line of a text file (a CSV record's first line).
    Line,
    /// A 1-based row of a table (a parquet file).
    Row,
}

/// What is wrong with a log row; `--skip-bad-rows` counts skipped rows by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogProblem {
    /// The CSV record is malformed (unterminated quote, wrong number of fields).
    Csv,
    /// A cell is not valid UTF-8.
    Utf8,
    /// A cell is not the literal or number it should be (also: truncated).
    Syntax,
    /// The cells contradict each other (e.g. an offer's owner).
    Inconsistent,
    /// NaN or infinity in a numeric cell.
    NonFinite,
    /// A negative quantity, day or price.
    Negative,
    /// An integer that does not fit i64.
    Overflow,
    /// Anything else (a missing column, an unreadable file).
    File,
}

impl LogProblem {
    /// Every kind, in the order of [`LogProblem::index`].
    pub const ALL: [LogProblem; 8] = [
        LogProblem::Csv,
        LogProblem::Utf8,
        LogProblem::Syntax,
        LogProblem::Inconsistent,
        LogProblem::NonFinite,
        LogProblem::Negative,
        LogProblem::Overflow,
        LogProblem::File,
    ];

    /// The kind's name in reports and in `LogParseError.kind`.
    pub fn name(self) -> &'static str {
        match self {
            LogProblem::Csv => "csv",
            LogProblem::Utf8 => "utf8",
            LogProblem::Syntax => "syntax",
            LogProblem::Inconsistent => "inconsistent",
            LogProblem::NonFinite => "non_finite",
            LogProblem::Negative => "negative",
            LogProblem::Overflow => "overflow",
            LogProblem::File => "file",
        }
    }

    /// Position in [`LogProblem::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

fn log_place(path: &str, line: usize, place: Place, column: &str, reason: &str) -> String {
    let at = match place {
        Place::Line => format!("{path}:{line}:"),
        Place::Row => format!("{path}: row {line} (1-based):"),
    };
    if column.is_empty() {
        format!("{at} {reason}")
    } else {
        format!("{at} column '{column}': {reason}")
    }
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

    /// Shorthand for [`CoreError::LogParse`].
    pub fn log(
        path: &str,
        line: usize,
        place: Place,
        column: &str,
        kind: LogProblem,
        reason: impl Into<String>,
    ) -> Self {
        Self::LogParse {
            path: path.to_owned(),
            line,
            place,
            column: column.to_owned(),
            kind,
            reason: reason.into(),
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
