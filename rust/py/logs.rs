//! Python bindings of `crate::logs`: parse literal cells and negotiation logs without the GIL,
//! hand back NumPy columns and Arrow-layout string buffers (one crossing per column).

use std::path::PathBuf;

use numpy::{PyArray1, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySet, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::error::CoreError;
use crate::logs::batch::{parse_rows, ParsedNegotiations, RowCells, StrColumn};
use crate::logs::csv::{read_many, CsvNegotiations};
use crate::logs::pylit::{self, Value};

/// Parses one Python literal (what `ast.literal_eval` accepts for negmas' cells) in Rust.
#[pyfunction]
pub fn parse_literal<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    let value = pylit::parse(text).map_err(|e| CoreError::LogParse {
        path: "<literal>".to_owned(),
        line: 0,
        reason: e.to_string(),
    })?;
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
/// `hrl.data.logs`); `keep` names plain columns to return as text.
#[pyfunction]
#[pyo3(signature = (paths, keep, *, skip_bad_rows = false))]
pub fn read_negotiations_csv<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    keep: Vec<String>,
    skip_bad_rows: bool,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let results = py.detach(|| read_many(&paths, &keep, skip_bad_rows));
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
        for (name, column) in &columns {
            plain.set_item(name, str_column(py, column)?)?;
        }
        dict.set_item("columns", plain)?;
        dict.set_item("n_rows", n_rows)?;
        dict.set_item("n_bytes", n_bytes)?;
        out.push(dict);
    }
    Ok(out)
}

/// Parses the `history` and `partners` cells of one table (e.g. a `negotiations.parquet`) given
/// as Arrow large-string buffers: UTF-8 `data` and int64 `offsets` (`n + 1` entries). Row `i`
/// is reported as line `i + 1`.
#[pyfunction]
#[pyo3(signature = (path, history, history_offsets, partners, partners_offsets, *, skip_bad_rows = false))]
pub fn parse_negotiation_cells<'py>(
    py: Python<'py>,
    path: &str,
    history: &[u8],
    history_offsets: PyReadonlyArray1<'py, i64>,
    partners: &[u8],
    partners_offsets: PyReadonlyArray1<'py, i64>,
    skip_bad_rows: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let n = history_offsets.len().saturating_sub(1);
    if partners_offsets.len() != n + 1 {
        return Err(CoreError::shape(
            "partners_offsets",
            format!("({},)", n + 1),
            format!("({},)", partners_offsets.len()),
        )
        .into());
    }
    let h_off = history_offsets
        .as_slice()
        .map_err(|_| CoreError::shape("history_offsets", "C-contiguous", "strided"))?;
    let p_off = partners_offsets
        .as_slice()
        .map_err(|_| CoreError::shape("partners_offsets", "C-contiguous", "strided"))?;
    let parsed = py.detach(|| -> Result<ParsedNegotiations, CoreError> {
        let h = cells(history, h_off, "history", path)?;
        let p = cells(partners, p_off, "partners", path)?;
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
        parse_rows(&rows, path, skip_bad_rows)
    })?;
    parsed_to_dict(py, parsed)
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
            std::str::from_utf8(bytes).map_err(|e| CoreError::LogParse {
                path: path.to_owned(),
                line: i + 1,
                reason: format!("{arg}: invalid UTF-8: {e}"),
            })
        })
        .collect()
}

fn str_column<'py>(py: Python<'py>, column: &StrColumn) -> PyResult<Bound<'py, PyTuple>> {
    let data = PyBytes::new(py, &column.data).into_any();
    let offsets = PyArray1::from_slice(py, &column.offsets).into_any();
    PyTuple::new(py, [data, offsets])
}

fn parsed_to_dict(py: Python<'_>, p: ParsedNegotiations) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("row", PyArray1::from_vec(py, p.row))?;
    d.set_item("line", PyArray1::from_vec(py, p.line))?;
    d.set_item("partner0", str_column(py, &p.partner0)?)?;
    d.set_item("partner1", str_column(py, &p.partner1)?)?;
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
    d.set_item("skipped", p.skipped)?;
    d.set_item("skipped_examples", p.skipped_examples)?;
    Ok(d)
}
