//! Many negotiations at once: `(history, partners)` cells in, columns out, rows in parallel.

use rayon::prelude::*;

use super::history::{parse_history, parse_partners, Offer};
use super::pylit::ParseError;
use crate::error::CoreError;

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

    pub(crate) fn append(&mut self, other: &StrColumn) {
        let base = self.data.len() as i64;
        self.data.extend_from_slice(&other.data);
        self.offsets
            .extend(other.offsets[1..].iter().map(|o| o + base));
    }
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
    /// Rows skipped as malformed (only with `skip_bad_rows`).
    pub skipped: usize,
    /// `(line, reason)` of the first skipped rows.
    pub skipped_examples: Vec<(u64, String)>,
}

/// How many skipped rows are described in `skipped_examples`.
pub const MAX_EXAMPLES: usize = 10;
const CHUNK: usize = 512;

impl ParsedNegotiations {
    pub(crate) fn push_row(&mut self, row: u32, cells: &RowCells<'_>) -> Result<(), ParseError> {
        let partners = parse_partners(cells.partners).map_err(|e| ParseError {
            offset: e.offset,
            reason: format!("partners: {}", e.reason),
        })?;
        let h = parse_history(cells.history, &partners).map_err(|e| ParseError {
            offset: e.offset,
            reason: format!("history: {}", e.reason),
        })?;
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

    pub(crate) fn append(&mut self, mut other: ParsedNegotiations) {
        let base = self.row.len() as u32;
        self.row.append(&mut other.row);
        self.line.append(&mut other.line);
        self.partner0.append(&other.partner0);
        self.partner1.append(&other.partner1);
        self.n_rounds.append(&mut other.n_rounds);
        self.n_offers.append(&mut other.n_offers);
        self.broken.append(&mut other.broken);
        self.timedout.append(&mut other.timedout);
        self.has_agreement.append(&mut other.has_agreement);
        self.agreement_quantity
            .append(&mut other.agreement_quantity);
        self.agreement_day.append(&mut other.agreement_day);
        self.agreement_unit_price
            .append(&mut other.agreement_unit_price);
        let (o, mut x) = (&mut self.offers, other.offers);
        o.negotiation.extend(x.negotiation.iter().map(|n| n + base));
        o.seq.append(&mut x.seq);
        o.round.append(&mut x.round);
        o.proposer.append(&mut x.proposer);
        o.has_offer.append(&mut x.has_offer);
        o.quantity.append(&mut x.quantity);
        o.day.append(&mut x.day);
        o.unit_price.append(&mut x.unit_price);
        o.response.append(&mut x.response);
        self.skipped += other.skipped;
        let room = MAX_EXAMPLES.saturating_sub(self.skipped_examples.len());
        self.skipped_examples
            .extend(other.skipped_examples.into_iter().take(room));
    }
}

/// Parses every row (in parallel); a malformed row is an error naming `path` and its line,
/// or, with `skip_bad_rows`, is counted and left out.
pub fn parse_rows(
    rows: &[RowCells<'_>],
    path: &str,
    skip_bad_rows: bool,
) -> Result<ParsedNegotiations, CoreError> {
    let parts: Vec<Result<ParsedNegotiations, CoreError>> = rows
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let mut out = ParsedNegotiations::default();
            for (k, cells) in chunk.iter().enumerate() {
                if let Err(e) = out.push_row((c * CHUNK + k) as u32, cells) {
                    if !skip_bad_rows {
                        return Err(CoreError::LogParse {
                            path: path.to_owned(),
                            line: cells.line as usize,
                            reason: e.to_string(),
                        });
                    }
                    out.skipped += 1;
                    if out.skipped_examples.len() < MAX_EXAMPLES {
                        out.skipped_examples.push((cells.line, e.to_string()));
                    }
                }
            }
            Ok(out)
        })
        .collect();
    let mut all = ParsedNegotiations::default();
    for part in parts {
        all.append(part?);
    }
    Ok(all)
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

    const GOOD: &str =
        "[{'step': 0, 'new_offers': [('b', (1, 2, 3.5))], 'agreement': (1, 2, 3.5)}]";

    #[test]
    fn rows_become_columns_in_order_across_chunks() {
        let rows: Vec<RowCells> = (0..2000).map(|i| cells(GOOD, i + 2)).collect();
        let parsed = parse_rows(&rows, "x.csv", false).unwrap();
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
        match parse_rows(&rows, "w/negotiations.csv", false) {
            Err(CoreError::LogParse { path, line, reason }) => {
                assert_eq!((path.as_str(), line), ("w/negotiations.csv", 702));
                assert!(reason.contains("history: truncated"), "{reason}");
            }
            other => panic!("expected a LogParse error, got {other:?}"),
        }
        let parsed = parse_rows(&rows, "w", true).unwrap();
        assert_eq!(parsed.skipped, 2);
        assert_eq!(parsed.row.len(), 1498);
        assert!(!parsed.row.contains(&700) && !parsed.row.contains(&1200));
        assert_eq!(parsed.skipped_examples[0].0, 702);
        assert!(parsed.skipped_examples[1].1.starts_with("partners:"));
        assert_eq!(parsed.offers.negotiation.last(), Some(&1497));
    }
}
