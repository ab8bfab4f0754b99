//! `negotiations.csv` reader: records in, parsed offers and the requested plain columns out.

use std::path::Path;

use rayon::prelude::*;

use super::batch::{parse_rows, ParsedNegotiations, RowCells, StrColumn, MAX_EXAMPLES};
use crate::error::CoreError;

/// One parsed `negotiations.csv`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsvNegotiations {
    pub parsed: ParsedNegotiations,
    /// The requested plain columns (as text; a missing column is all empty), kept rows only.
    pub columns: Vec<(String, StrColumn)>,
    /// Data rows in the file (kept + skipped).
    pub n_rows: usize,
    /// Bytes read.
    pub n_bytes: u64,
}

fn parse_error(path: &str, line: u64, reason: impl Into<String>) -> CoreError {
    CoreError::LogParse {
        path: path.to_owned(),
        line: line as usize,
        reason: reason.into(),
    }
}

/// Reads one `negotiations.csv` (as written by negmas with `storage_format="csv"`).
///
/// `keep` names plain columns to return as text. The `history` and `partners` columns must exist.
pub fn read_negotiations_csv(
    path: &Path,
    keep: &[String],
    skip_bad_rows: bool,
) -> Result<CsvNegotiations, CoreError> {
    let name = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| parse_error(&name, 0, format!("cannot read: {e}")))?;
    let n_bytes = bytes.len() as u64;
    let mut out = CsvNegotiations {
        n_bytes,
        columns: keep
            .iter()
            .map(|k| (k.clone(), StrColumn::default()))
            .collect(),
        ..Default::default()
    };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        // negmas writes an empty file for a world without negotiations.
        return Ok(out);
    }
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes.as_slice());
    let header = reader
        .headers()
        .map_err(|e| parse_error(&name, 1, format!("bad header: {e}")))?
        .clone();
    let find = |col: &str| header.iter().position(|h| h == col);
    let history = find("history").ok_or_else(|| parse_error(&name, 1, "no 'history' column"))?;
    let partners = find("partners").ok_or_else(|| parse_error(&name, 1, "no 'partners' column"))?;
    let kept_index: Vec<Option<usize>> = keep.iter().map(|k| find(k)).collect();

    let mut records = Vec::new();
    let mut skipped = 0usize;
    let mut examples = Vec::new();
    for result in reader.records() {
        match result {
            Ok(record) => records.push(record),
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                if !skip_bad_rows {
                    return Err(parse_error(
                        &name,
                        line,
                        format!("malformed CSV record: {e}"),
                    ));
                }
                skipped += 1;
                if examples.len() < MAX_EXAMPLES {
                    examples.push((line, format!("malformed CSV record: {e}")));
                }
                if matches!(e.kind(), ::csv::ErrorKind::Io(_)) {
                    break;
                }
            }
        }
    }
    out.n_rows = records.len() + skipped;
    let cells: Vec<RowCells> = records
        .iter()
        .map(|r| RowCells {
            history: r.get(history).unwrap_or(""),
            partners: r.get(partners).unwrap_or(""),
            line: r.position().map_or(0, |p| p.line()),
        })
        .collect();
    let mut parsed = parse_rows(&cells, &name, skip_bad_rows)?;
    for &row in &parsed.row {
        let record = &records[row as usize];
        for ((_, column), index) in out.columns.iter_mut().zip(&kept_index) {
            column.push(index.and_then(|i| record.get(i)).unwrap_or(""));
        }
    }
    parsed.skipped += skipped;
    let mut all_examples = examples;
    all_examples.append(&mut parsed.skipped_examples);
    all_examples.sort_by_key(|(line, _)| *line);
    all_examples.truncate(MAX_EXAMPLES);
    parsed.skipped_examples = all_examples;
    out.parsed = parsed;
    Ok(out)
}

/// Reads many files in parallel (see [`read_negotiations_csv`]); results keep the input order.
pub fn read_many(
    paths: &[std::path::PathBuf],
    keep: &[String],
    skip_bad_rows: bool,
) -> Vec<Result<CsvNegotiations, CoreError>> {
    paths
        .par_iter()
        .map(|p| read_negotiations_csv(p, keep, skip_bad_rows))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEADER: &str = "index,id,partners,history,sim_step\n";

    fn row(i: usize) -> String {
        format!(
            "{i},n{i},\"['a', 'b']\",\"[{{'step': 0, 'new_offers': [('b', (1, 2, 3))], 'agreement': None}}]\",{i}\n"
        )
    }

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("hrl-csv-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("negotiations.csv");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path
    }

    #[test]
    fn reads_rows_and_requested_columns() {
        let text = format!("{HEADER}{}{}", row(0), row(1));
        let path = write("ok", &text);
        let keep = vec!["id".to_owned(), "sim_step".to_owned(), "absent".to_owned()];
        let out = read_negotiations_csv(&path, &keep, false).unwrap();
        assert_eq!(out.n_rows, 2);
        assert_eq!(out.columns[0].1.get(1), "n1");
        assert_eq!(out.columns[1].1.get(0), "0");
        assert_eq!(out.columns[2].1.get(0), "");
        assert_eq!(out.parsed.line, vec![2, 3]);
        assert_eq!(out.parsed.offers.proposer, vec![0, 0]);
        let empty = write("empty", "");
        assert_eq!(
            read_negotiations_csv(&empty, &keep, false).unwrap().n_rows,
            0
        );
    }

    #[test]
    fn truncated_and_ragged_files_are_errors_with_lines() {
        let full = format!("{HEADER}{}{}{}", row(0), row(1), row(2));
        let cut = &full[..full.len() - 30];
        let path = write("cut", cut);
        match read_negotiations_csv(&path, &[], false) {
            Err(CoreError::LogParse { line, .. }) => assert_eq!(line, 4),
            other => panic!("{other:?}"),
        }
        let skipped = read_negotiations_csv(&path, &[], true).unwrap();
        assert_eq!((skipped.parsed.skipped, skipped.parsed.row.len()), (1, 2));
        let ragged = format!("{HEADER}{}1,2\n{}", row(0), row(2));
        let path = write("ragged", &ragged);
        match read_negotiations_csv(&path, &[], false) {
            Err(CoreError::LogParse { line, reason, .. }) => {
                assert_eq!(line, 3);
                assert!(reason.contains("malformed CSV"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let out = read_negotiations_csv(&path, &["id".to_owned()], true).unwrap();
        assert_eq!(out.n_rows, 3);
        assert_eq!(out.parsed.skipped, 1);
        assert_eq!(out.columns[0].1.get(1), "n2");
        let nohist = write("nohist", "a,b\n1,2\n");
        assert!(read_negotiations_csv(&nohist, &[], false).is_err());
        let missing = std::path::Path::new("/nonexistent/negotiations.csv");
        assert!(read_negotiations_csv(missing, &[], false).is_err());
    }
}
