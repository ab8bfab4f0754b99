//! Python bindings of `crate::logs`: parse literal cells and negotiation logs without the GIL,
//! hand back NumPy columns and Arrow-layout string buffers (one crossing per column).

use std::path::PathBuf;

use numpy::{PyArray1, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySet, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::error::{CoreError, LogProblem, Place};
use crate::logs::batch::{parse_rows, CountCells, ParsedNegotiations, RowCells, StrColumn};
use crate::logs::csv::{read_many, split_only, CsvNegotiations};
use crate::logs::pylit::{self, Value};

/// Parses one Python literal (what `ast.literal_eval` accepts for negmas' cells) in Rust.
#[pyfunction]
pub fn parse_literal<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let value = pylit::parse(text)
        .map_err(|e| CoreError::log("<literal>", 0, Place::Line, "", e.kind, e.to_string()))?;
    to_python(py, &value)
}

fn to_python<'py>(py: Python<'py>, value: &Value<'_>) -> PyResult<Bound<'py, PyAny>> {
    let many = |items: &[Value<'_>]| -> PyResult<Vec<Bound<'py, PyAny>>> {
        items.iter().map(|v| to_python(py, v)).collect()
    };
    match value {
        Value::None => Ok(py.None().into_bound(py)),
        Value::Bool(b) => b.into_bound_py_any(py),
        Value::Int(i) => i.into_bound_py_any(py),
        Value::BigInt(digits) => py
            .get_type::<pyo3::types::PyInt>()
            .call1((digits.as_ref(),)),
        Value::Float(f) => f.into_bound_py_any(py),
        Value::Str(s) => s.as_ref().into_bound_py_any(py),
        Value::Tuple(items) => Ok(PyTuple::new(py, many(items)?)?.into_any()),
        Value::List(items) => Ok(PyList::new(py, many(items)?)?.into_any()),
        Value::Set(items) => Ok(PySet::new(py, many(items)?)?.into_any()),
        Value::Dict(pairs) => {
            let dict = PyDict::new(py);
            for (k, v) in pairs {
                dict.set_item(to_python(py, k)?, to_python(py, v)?)?;
            }
            Ok(dict.into_any())
        }
    }
}

/// Reads `negotiations.csv` files in parallel. Returns one dict of columns per file (see
/// `hrl.data.logs`); `keep` names plain columns to return as text, `counts` plain columns that
/// must hold counts (whole, non-negative, fitting i64, or empty).
#[pyfunction]
#[pyo3(signature = (paths, keep, *, counts = Vec::new(), skip_bad_rows = false))]
pub fn read_negotiations_csv<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    keep: Vec<String>,
    counts: Vec<String>,
    skip_bad_rows: bool,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let results = py.detach(|| read_many(&paths, &keep, &counts, skip_bad_rows));
    let mut out = Vec::with_capacity(results.len());
    for result in results {
        let CsvNegotiations {
            parsed,
            columns,
            n_rows,
            n_bytes,
        } = result?;
        let dict = parsed_to_dict(py, parsed)?;
        let plain = PyDict::new(py);
        for (name, column) in columns {
            plain.set_item(name, str_column(py, column)?)?;
        }
        dict.set_item("columns", plain)?;
        dict.set_item("n_rows", n_rows)?;
        dict.set_item("n_bytes", n_bytes)?;
        out.push(dict);
    }
    Ok(out)
}

/// The floor of `read_negotiations_csv` (for benchmarks): maps one CSV file and splits it into
/// records without parsing a cell, without the GIL. Returns `(bytes, records)`, header included.
#[pyfunction]
pub fn split_csv_records(py: Python<'_>, path: PathBuf) -> PyResult<(u64, usize)> {
    Ok(py.detach(|| split_only(&path))?)
}

/// Parses the `history` and `partners` cells of one table (e.g. a `negotiations.parquet`) given
/// as Arrow large-string buffers: UTF-8 `data` and int64 `offsets` (`n + 1` entries), and checks
/// the plain `counts` columns, given as `(name, data, offsets)` string buffers the same way
/// (whole, non-negative, fitting i64, or empty). Errors name the 1-based row (`i + 1`).
#[pyfunction]
#[pyo3(signature = (path, history, history_offsets, partners, partners_offsets, *, counts = Vec::new(), skip_bad_rows = false))]
#[allow(clippy::too_many_arguments)]
pub fn parse_negotiation_cells<'py>(
    py: Python<'py>,
    path: &str,
    history: &[u8],
    history_offsets: PyReadonlyArray1<'py, i64>,
    partners: &[u8],
    partners_offsets: PyReadonlyArray1<'py, i64>,
    counts: Vec<(String, Vec<u8>, PyReadonlyArray1<'py, i64>)>,
    skip_bad_rows: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let n = history_offsets.len().saturating_sub(1);
    let h_off = offsets("history_offsets", &history_offsets, n)?;
    let p_off = offsets("partners_offsets", &partners_offsets, n)?;
    let names: Vec<String> = counts.iter().map(|(name, _, _)| name.clone()).collect();
    let count_columns = counts
        .iter()
        .map(|(name, data, o)| {
            Ok((
                name.as_str(),
                data.as_slice(),
                offsets(&format!("counts[{name}] offsets"), o, n)?,
            ))
        })
        .collect::<Result<Vec<_>, CoreError>>()?;
    let parsed = py.detach(|| -> Result<ParsedNegotiations, CoreError> {
        let h = cells(history, h_off, "history", path)?;
        let p = cells(partners, p_off, "partners", path)?;
        let columns = count_columns
            .iter()
            .map(|&(name, data, o)| cells(data, o, name, path))
            .collect::<Result<Vec<_>, _>>()?;
        // Row-major, as CountCells wants it.
        let count_cells: Vec<&str> = (0..n)
            .flat_map(|i| columns.iter().map(move |c| c[i]))
            .collect();
        let rows: Vec<RowCells> = h
            .iter()
            .zip(&p)
            .enumerate()
            .map(|(i, (history, partners))| RowCells {
                history,
                partners,
                line: i as u64 + 1,
            })
            .collect();
        let counts = CountCells {
            names: &names,
            cells: &count_cells,
        };
        parse_rows(&rows, counts, path, Place::Row, skip_bad_rows)
    })?;
    parsed_to_dict(py, parsed)
}

/// A C-contiguous offsets array of `n + 1` entries.
fn offsets<'a>(
    arg: &str,
    array: &'a PyReadonlyArray1<'_, i64>,
    n: usize,
) -> Result<&'a [i64], CoreError> {
    if array.len() != n + 1 {
        return Err(CoreError::shape(
            arg,
            format!("({},)", n + 1),
            format!("({},)", array.len()),
        ));
    }
    array
        .as_slice()
        .map_err(|_| CoreError::shape(arg, "C-contiguous", "strided"))
}

/// Splits an Arrow string buffer into `&str` cells; bad offsets or UTF-8 are errors.
fn cells<'a>(
    data: &'a [u8],
    offsets: &[i64],
    arg: &str,
    path: &str,
) -> Result<Vec<&'a str>, CoreError> {
    offsets
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let (a, b) = (usize::try_from(w[0]), usize::try_from(w[1]));
            let bytes = match (a, b) {
                (Ok(a), Ok(b)) if a <= b && b <= data.len() => &data[a..b],
                _ => {
                    return Err(CoreError::invalid(
                        arg,
                        format!("offsets [{}, {}] outside the data buffer", w[0], w[1]),
                    ))
                }
            };
            std::str::from_utf8(bytes).map_err(|e| {
                CoreError::log(
                    path,
                    i + 1,
                    Place::Row,
                    arg,
                    LogProblem::Utf8,
                    format!("invalid UTF-8: {e}"),
                )
            })
        })
        .collect()
}

/// A string column as `(data, offsets)` NumPy arrays (uint8, int64) that own the Rust buffers
/// (no copy).
fn str_column(py: Python<'_>, column: StrColumn) -> PyResult<Bound<'_, PyTuple>> {
    let data = PyArray1::from_vec(py, column.data).into_any();
    let offsets = PyArray1::from_vec(py, column.offsets).into_any();
    PyTuple::new(py, [data, offsets])
}

fn parsed_to_dict(py: Python<'_>, p: ParsedNegotiations) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("skipped", p.skipped())?;
    d.set_item("row", PyArray1::from_vec(py, p.row))?;
    d.set_item("line", PyArray1::from_vec(py, p.line))?;
    d.set_item("partner0", str_column(py, p.partner0)?)?;
    d.set_item("partner1", str_column(py, p.partner1)?)?;
    d.set_item("n_rounds", PyArray1::from_vec(py, p.n_rounds))?;
    d.set_item("n_offers", PyArray1::from_vec(py, p.n_offers))?;
    d.set_item("broken", PyArray1::from_vec(py, p.broken))?;
    d.set_item("timedout", PyArray1::from_vec(py, p.timedout))?;
    d.set_item("has_agreement", PyArray1::from_vec(py, p.has_agreement))?;
    d.set_item(
        "agreement_quantity",
        PyArray1::from_vec(py, p.agreement_quantity),
    )?;
    d.set_item("agreement_day", PyArray1::from_vec(py, p.agreement_day))?;
    d.set_item(
        "agreement_unit_price",
        PyArray1::from_vec(py, p.agreement_unit_price),
    )?;
    let o = p.offers;
    d.set_item("offer_negotiation", PyArray1::from_vec(py, o.negotiation))?;
    d.set_item("offer_seq", PyArray1::from_vec(py, o.seq))?;
    d.set_item("offer_round", PyArray1::from_vec(py, o.round))?;
    d.set_item("offer_proposer", PyArray1::from_vec(py, o.proposer))?;
    d.set_item("offer_has_offer", PyArray1::from_vec(py, o.has_offer))?;
    d.set_item("offer_quantity", PyArray1::from_vec(py, o.quantity))?;
    d.set_item("offer_day", PyArray1::from_vec(py, o.day))?;
    d.set_item("offer_unit_price", PyArray1::from_vec(py, o.unit_price))?;
    d.set_item("offer_response", PyArray1::from_vec(py, o.response))?;
    let by_kind = PyDict::new(py);
    for kind in LogProblem::ALL {
        let n = p.skipped_by_kind[kind.index()];
        if n > 0 {
            by_kind.set_item(kind.name(), n)?;
        }
    }
    d.set_item("skipped_by_kind", by_kind)?;
    let examples = PyList::empty(py);
    for row in &p.skipped_examples {
        let example = PyDict::new(py);
        example.set_item("line", row.line)?;
        example.set_item("column", &row.error.column)?;
        example.set_item("kind", row.error.kind.name())?;
        example.set_item("reason", &row.error.reason)?;
        examples.append(example)?;
    }
    d.set_item("skipped_examples", examples)?;
    Ok(d)
}
