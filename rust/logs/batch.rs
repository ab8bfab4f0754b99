//! Many negotiations at once: `(history, partners)` cells in, columns out, rows in parallel.

use rayon::prelude::*;

use super::history::{parse_history, parse_partners, Offer};
use super::values;
use crate::error::{CoreError, LogProblem, Place};

/// A column of strings as one UTF-8 buffer and `n + 1` offsets (Arrow's large-string layout).
#[derive(Debug, Clone, PartialEq)]
pub struct StrColumn {
    pub data: Vec<u8>,
    pub offsets: Vec<i64>,
}

impl Default for StrColumn {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            offsets: vec![0],
        }
    }
}

impl StrColumn {
    pub fn push(&mut self, s: &str) {
        self.data.extend_from_slice(s.as_bytes());
        self.offsets.push(self.data.len() as i64);
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> &str {
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        std::str::from_utf8(&self.data[a..b]).unwrap_or("")
    }

    /// The columns of `parts` end to end (in parallel).
    pub(crate) fn concat(parts: &[&StrColumn]) -> StrColumn {
        let data: Vec<&[u8]> = parts.iter().map(|c| &c.data[..]).collect();
        let mut offsets: Vec<&[i64]> = vec![&[0]];
        let mut shifts = vec![0i64];
        let mut base = 0i64;
        for c in parts {
            offsets.push(&c.offsets[1..]);
            shifts.push(base);
            base += c.data.len() as i64;
        }
        StrColumn {
            data: concat(&data),
            offsets: concat_shifted(&offsets, &shifts),
        }
    }
}

/// `parts` end to end in one exactly sized vector, copied in parallel (a log's columns run to
/// hundreds of MB: no regrowth, and the pages are first touched by both cores).
pub(crate) fn concat<T: Copy + Default + Send + Sync>(parts: &[&[T]]) -> Vec<T> {
    fill_parts(parts, |i, dst| dst.copy_from_slice(parts[i]))
}

/// [`concat`], with `shifts[i]` added to every value of `parts[i]`.
pub(crate) fn concat_shifted<T>(parts: &[&[T]], shifts: &[T]) -> Vec<T>
where
    T: Copy + Default + Send + Sync + std::ops::Add<Output = T>,
{
    fill_parts(parts, |i, dst| {
        for (d, &s) in dst.iter_mut().zip(parts[i]) {
            *d = s + shifts[i];
        }
    })
}

/// A vector as long as `parts` together, its piece `i` (as long as `parts[i]`) filled by
/// `fill(i, piece)`, the pieces in parallel.
fn fill_parts<T, F>(parts: &[&[T]], fill: F) -> Vec<T>
where
    T: Copy + Default + Send + Sync,
    F: Fn(usize, &mut [T]) + Sync,
{
    let mut out = vec![T::default(); parts.iter().map(|p| p.len()).sum()];
    let mut rest = &mut out[..];
    let mut pieces = Vec::with_capacity(parts.len());
    for p in parts {
        let (head, tail) = rest.split_at_mut(p.len());
        pieces.push(head);
        rest = tail;
    }
    pieces
        .into_par_iter()
        .enumerate()
        .for_each(|(i, dst)| fill(i, dst));
    out
}

/// Why a row is bad: the column at fault ("" when it is the record itself), the kind, a message.
#[derive(Debug, Clone, PartialEq)]
pub struct RowError {
    pub column: String,
    pub kind: LogProblem,
    pub reason: String,
}

impl RowError {
    /// The error of row `line` of `path`.
    pub fn at(self, path: &str, line: u64, place: Place) -> CoreError {
        CoreError::log(
            path,
            line as usize,
            place,
            &self.column,
            self.kind,
            self.reason,
        )
    }
}

/// A row left out by `skip_bad_rows`, as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedRow {
    pub line: u64,
    pub error: RowError,
}

/// Checks a row's plain count cells ([`values::count_cell`]): `cells` yields the text of the
/// columns in `names`, in order (or why a cell has none).
pub fn check_counts<'c>(
    names: &[String],
    cells: impl IntoIterator<Item = Result<&'c str, RowError>>,
) -> Result<(), RowError> {
    for (name, cell) in names.iter().zip(cells) {
        values::count_cell(cell?, name).map_err(|(kind, reason)| RowError {
            column: name.clone(),
            kind,
            reason,
        })?;
    }
    Ok(())
}

/// One row of input: the two literal cells and where the row came from.
#[derive(Debug, Clone, Copy)]
pub struct RowCells<'a> {
    pub history: &'a str,
    pub partners: &'a str,
    /// 1-based line (CSV) or row (parquet) number, for error messages.
    pub line: u64,
}

/// Offers, one entry per offer (see [`super::history::Event`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OfferColumns {
    /// Index of the negotiation among the kept rows.
    pub negotiation: Vec<u32>,
    /// Position of the offer within its negotiation (0, 1, ...).
    pub seq: Vec<u32>,
    pub round: Vec<i32>,
    /// Index (0/1) of the proposer in the negotiation's partners; the receiver is the other.
    pub proposer: Vec<u8>,
    pub has_offer: Vec<bool>,
    pub quantity: Vec<i64>,
    pub day: Vec<i64>,
    pub unit_price: Vec<f64>,
    pub response: Vec<u8>,
}

/// Parsed negotiations: one entry per kept row, plus their offers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedNegotiations {
    /// Index of each kept row among the input rows.
    pub row: Vec<u32>,
    pub line: Vec<u64>,
    pub partner0: StrColumn,
    pub partner1: StrColumn,
    pub n_rounds: Vec<i32>,
    pub n_offers: Vec<u32>,
    pub broken: Vec<bool>,
    pub timedout: Vec<bool>,
    pub has_agreement: Vec<bool>,
    pub agreement_quantity: Vec<i64>,
    pub agreement_day: Vec<i64>,
    pub agreement_unit_price: Vec<f64>,
    pub offers: OfferColumns,
    /// Rows skipped as malformed (only with `skip_bad_rows`), per [`LogProblem::index`].
    pub skipped_by_kind: [usize; LogProblem::ALL.len()],
    /// The first skipped rows, in file order.
    pub skipped_examples: Vec<SkippedRow>,
}

/// How many skipped rows are described in `skipped_examples`.
pub const MAX_EXAMPLES: usize = 10;
const CHUNK: usize = 512;

impl ParsedNegotiations {
    /// Rows skipped, all kinds.
    pub fn skipped(&self) -> usize {
        self.skipped_by_kind.iter().sum()
    }

    /// Counts a skipped row (and keeps it as an example while there is room).
    pub(crate) fn skip(&mut self, line: u64, error: RowError) {
        self.skipped_by_kind[error.kind.index()] += 1;
        if self.skipped_examples.len() < MAX_EXAMPLES {
            self.skipped_examples.push(SkippedRow { line, error });
        }
    }

    pub(crate) fn push_row(&mut self, row: u32, cells: &RowCells<'_>) -> Result<(), RowError> {
        fn in_column(column: &'static str) -> impl Fn(super::pylit::ParseError) -> RowError {
            move |e| RowError {
                column: column.to_owned(),
                kind: e.kind,
                reason: e.to_string(),
            }
        }
        let partners = parse_partners(cells.partners).map_err(in_column("partners"))?;
        let h = parse_history(cells.history, &partners).map_err(in_column("history"))?;
        let index = self.row.len() as u32;
        self.row.push(row);
        self.line.push(cells.line);
        self.partner0.push(&partners[0]);
        self.partner1.push(&partners[1]);
        self.n_rounds.push(h.n_rounds);
        self.n_offers.push(h.events.len() as u32);
        self.broken.push(h.broken);
        self.timedout.push(h.timedout);
        let a = h.agreement.unwrap_or(Offer {
            quantity: 0,
            day: 0,
            unit_price: 0.0,
        });
        self.has_agreement.push(h.agreement.is_some());
        self.agreement_quantity.push(a.quantity);
        self.agreement_day.push(a.day);
        self.agreement_unit_price.push(a.unit_price);
        let o = &mut self.offers;
        for (seq, e) in h.events.iter().enumerate() {
            let made = e.offer.unwrap_or(Offer {
                quantity: 0,
                day: 0,
                unit_price: 0.0,
            });
            o.negotiation.push(index);
            o.seq.push(seq as u32);
            o.round.push(e.round);
            o.proposer.push(e.proposer);
            o.has_offer.push(e.offer.is_some());
            o.quantity.push(made.quantity);
            o.day.push(made.day);
            o.unit_price.push(made.unit_price);
            o.response.push(e.response);
        }
        Ok(())
    }

    /// `parts` end to end (in order, in parallel): each part's `offers.negotiation` is shifted
    /// by the rows of the parts before it; `row` and `line` are taken as they are.
    pub(crate) fn concat(parts: Vec<ParsedNegotiations>) -> ParsedNegotiations {
        fn col<'p, T: Copy + Default + Send + Sync + 'p>(
            parts: &'p [ParsedNegotiations],
            f: impl Fn(&'p ParsedNegotiations) -> &'p [T],
        ) -> Vec<T> {
            concat(&parts.iter().map(f).collect::<Vec<_>>())
        }
        let p = &parts[..];
        let mut rows_before = Vec::with_capacity(p.len());
        let mut base = 0u32;
        for part in p {
            rows_before.push(base);
            base += part.row.len() as u32;
        }
        let mut skipped_by_kind = [0usize; LogProblem::ALL.len()];
        for part in p {
            for (total, add) in skipped_by_kind.iter_mut().zip(part.skipped_by_kind) {
                *total += add;
            }
        }
        let negotiation: Vec<&[u32]> = p.iter().map(|x| &x.offers.negotiation[..]).collect();
        ParsedNegotiations {
            row: col(p, |x| &x.row),
            line: col(p, |x| &x.line),
            partner0: StrColumn::concat(&p.iter().map(|x| &x.partner0).collect::<Vec<_>>()),
            partner1: StrColumn::concat(&p.iter().map(|x| &x.partner1).collect::<Vec<_>>()),
            n_rounds: col(p, |x| &x.n_rounds),
            n_offers: col(p, |x| &x.n_offers),
            broken: col(p, |x| &x.broken),
            timedout: col(p, |x| &x.timedout),
            has_agreement: col(p, |x| &x.has_agreement),
            agreement_quantity: col(p, |x| &x.agreement_quantity),
            agreement_day: col(p, |x| &x.agreement_day),
            agreement_unit_price: col(p, |x| &x.agreement_unit_price),
            offers: OfferColumns {
                negotiation: concat_shifted(&negotiation, &rows_before),
                seq: col(p, |x| &x.offers.seq),
                round: col(p, |x| &x.offers.round),
                proposer: col(p, |x| &x.offers.proposer),
                has_offer: col(p, |x| &x.offers.has_offer),
                quantity: col(p, |x| &x.offers.quantity),
                day: col(p, |x| &x.offers.day),
                unit_price: col(p, |x| &x.offers.unit_price),
                response: col(p, |x| &x.offers.response),
            },
            skipped_by_kind,
            skipped_examples: p
                .iter()
                .flat_map(|x| x.skipped_examples.iter().cloned())
                .take(MAX_EXAMPLES)
                .collect(),
        }
    }
}

/// Plain count columns of a table, checked row by row ([`check_counts`]).
#[derive(Debug, Clone, Copy)]
pub struct CountCells<'a> {
    pub names: &'a [String],
    /// Row-major: row `i`'s cells are `cells[i * names.len()..(i + 1) * names.len()]`.
    pub cells: &'a [&'a str],
}

/// Parses every row (in parallel); a malformed row (in its literal cells or in `counts`) is an
/// error naming `path`, its row (`place`) and column, or, with `skip_bad_rows`, is counted and
/// left out.
pub fn parse_rows(
    rows: &[RowCells<'_>],
    counts: CountCells<'_>,
    path: &str,
    place: Place,
    skip_bad_rows: bool,
) -> Result<ParsedNegotiations, CoreError> {
    let width = counts.names.len();
    let parts: Vec<Result<ParsedNegotiations, CoreError>> = rows
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let mut out = ParsedNegotiations::default();
            for (k, cells) in chunk.iter().enumerate() {
                let i = c * CHUNK + k;
                let row_counts = counts.cells.get(i * width..(i + 1) * width).unwrap_or(&[]);
                let outcome = check_counts(counts.names, row_counts.iter().map(|c| Ok(*c)))
                    .and_then(|()| out.push_row(i as u32, cells));
                if let Err(e) = outcome {
                    if !skip_bad_rows {
                        return Err(e.at(path, cells.line, place));
                    }
                    out.skip(cells.line, e);
                }
            }
            Ok(out)
        })
        .collect();
    Ok(ParsedNegotiations::concat(
        parts.into_iter().collect::<Result<Vec<_>, _>>()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(history: &'static str, line: u64) -> RowCells<'static> {
        RowCells {
            history,
            partners: "['a', 'b']",
            line,
        }
    }

    const NO_COUNTS: CountCells<'static> = CountCells {
        names: &[],
        cells: &[],
    };

    const GOOD: &str =
        "[{'step': 0, 'new_offers': [('b', (1, 2, 3.5))], 'agreement': (1, 2, 3.5)}]";

    #[test]
    fn rows_become_columns_in_order_across_chunks() {
        let rows: Vec<RowCells> = (0..2000).map(|i| cells(GOOD, i + 2)).collect();
        let parsed = parse_rows(&rows, NO_COUNTS, "x.csv", Place::Line, false).unwrap();
        assert_eq!(parsed.row, (0..2000).collect::<Vec<u32>>());
        assert_eq!(parsed.offers.negotiation, (0..2000).collect::<Vec<u32>>());
        assert_eq!(parsed.partner1.get(1999), "b");
        assert_eq!(parsed.offers.proposer[7], 0);
        assert_eq!(parsed.offers.unit_price[7], 3.5);
        assert_eq!(
            parsed.offers.response[7],
            super::super::history::response::ACCEPT
        );
    }

    #[test]
    fn bad_rows_raise_with_line_or_are_skipped_and_counted() {
        let mut rows: Vec<RowCells> = (0..1500).map(|i| cells(GOOD, i + 2)).collect();
        rows[700] = cells("[{'step': 0, 'new_offers': [('b', (1, 2", 702);
        rows[1200] = RowCells {
            history: GOOD,
            partners: "['a'",
            line: 1202,
        };
        match parse_rows(&rows, NO_COUNTS, "w/negotiations.csv", Place::Row, false) {
            Err(CoreError::LogParse {
                path,
                line,
                column,
                kind,
                reason,
                ..
            }) => {
                assert_eq!((path.as_str(), line), ("w/negotiations.csv", 702));
                assert_eq!((column.as_str(), kind), ("history", LogProblem::Syntax));
                assert!(reason.contains("truncated"), "{reason}");
            }
            other => panic!("expected a LogParse error, got {other:?}"),
        }
        let parsed = parse_rows(&rows, NO_COUNTS, "w", Place::Row, true).unwrap();
        assert_eq!(parsed.skipped(), 2);
        assert_eq!(parsed.row.len(), 1498);
        assert!(!parsed.row.contains(&700) && !parsed.row.contains(&1200));
        assert_eq!(parsed.skipped_examples[0].line, 702);
        assert_eq!(parsed.skipped_examples[1].error.column, "partners");
        assert_eq!(parsed.offers.negotiation.last(), Some(&1497));
    }

    #[test]
    fn impossible_values_are_errors_of_their_kind_and_column() {
        let names = vec!["sim_step".to_owned()];
        let rows: Vec<RowCells> = (0..3).map(|i| cells(GOOD, i + 1)).collect();
        let mut count_cells = vec!["0", "-1", "2"];
        let counts = CountCells {
            names: &names,
            cells: &count_cells,
        };
        let err = parse_rows(&rows, counts, "p", Place::Row, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "p: row 2 (1-based): column 'sim_step': sim_step -1 is negative"
        );
        count_cells[1] = "1";
        let bad = [
            ("(nan, 2, 3.5)", LogProblem::NonFinite),
            ("(1, -2, 3.5)", LogProblem::Negative),
            ("(1, 2, -3.5)", LogProblem::Negative),
            ("(1, 2, inf)", LogProblem::NonFinite),
            ("(9223372036854775808, 2, 3.5)", LogProblem::Overflow),
        ];
        for (offer, problem) in bad {
            let history = GOOD.replacen("(1, 2, 3.5)", offer, 1);
            let mut rows: Vec<RowCells> = (0..3).map(|i| cells(GOOD, i + 1)).collect();
            rows[2].history = &history;
            let counts = CountCells {
                names: &names,
                cells: &count_cells,
            };
            match parse_rows(&rows, counts, "p", Place::Row, false) {
                Err(CoreError::LogParse {
                    line, column, kind, ..
                }) => assert_eq!((line, column.as_str(), kind), (3, "history", problem)),
                other => panic!("{offer}: {other:?}"),
            }
            let kept = parse_rows(&rows, counts, "p", Place::Row, true).unwrap();
            assert_eq!(kept.skipped_by_kind[problem.index()], 1, "{offer}");
            assert_eq!(kept.row, vec![0, 1]);
        }
    }
}
