//! What a number in a negotiation log may be: counts (quantities, delivery days, days, product
//! indices) are whole, non-negative and fit i64; unit prices are finite and non-negative.
//! Anything else is an impossible value, reported with its [`LogProblem`] kind.

use super::pylit::{self, Value};
use crate::error::LogProblem;

/// Why a number was refused: its kind and a message naming `what` and the value.
pub type Refusal = (LogProblem, String);

/// A count (`what` names it in the message): a whole, non-negative number that fits i64.
pub fn count(value: &Value<'_>, what: &str) -> Result<i64, Refusal> {
    match value {
        Value::Int(i) if *i >= 0 => Ok(*i),
        Value::Int(i) => Err((LogProblem::Negative, format!("{what} {i} is negative"))),
        Value::BigInt(digits) => Err((
            LogProblem::Overflow,
            format!("{what} {digits} does not fit a 64-bit integer"),
        )),
        Value::Float(f) => {
            if !f.is_finite() {
                Err((LogProblem::NonFinite, format!("{what} is {f}")))
            } else if *f < 0.0 {
                Err((LogProblem::Negative, format!("{what} {f} is negative")))
            } else if f.fract() != 0.0 {
                Err((
                    LogProblem::Syntax,
                    format!("{what} {f} is not a whole number"),
                ))
            } else if *f >= i64::MAX as f64 {
                Err((
                    LogProblem::Overflow,
                    format!("{what} {f} does not fit a 64-bit integer"),
                ))
            } else {
                Ok(*f as i64)
            }
        }
        _ => Err((LogProblem::Syntax, format!("{what} is not a number"))),
    }
}

/// A unit price (`what` names it in the message): finite and non-negative.
pub fn price(value: &Value<'_>, what: &str) -> Result<f64, Refusal> {
    match value {
        Value::Int(i) if *i < 0 => Err((LogProblem::Negative, format!("{what} {i} is negative"))),
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) if !f.is_finite() => Err((LogProblem::NonFinite, format!("{what} is {f}"))),
        Value::Float(f) if *f < 0.0 => {
            Err((LogProblem::Negative, format!("{what} {f} is negative")))
        }
        Value::Float(f) => Ok(*f),
        Value::BigInt(digits) => Err((
            LogProblem::Overflow,
            format!("{what} {digits} does not fit a 64-bit integer"),
        )),
        _ => Err((LogProblem::Syntax, format!("{what} is not a number"))),
    }
}

/// A plain numeric cell holding a count, as text (CSV, or a table column cast to strings):
/// empty is null; `NaN`/`inf` in any case are non-finite.
pub fn count_cell(text: &str, what: &str) -> Result<Option<i64>, Refusal> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    // Fast path: plain digits that fit.
    if text.len() < 19 && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(text.parse().ok());
    }
    let bare = text.trim_start_matches(['+', '-']);
    if ["nan", "inf", "infinity"]
        .iter()
        .any(|w| bare.eq_ignore_ascii_case(w))
    {
        return Err((LogProblem::NonFinite, format!("{what} is {text}")));
    }
    match pylit::parse(text) {
        Ok(value) => count(&value, what).map(Some),
        Err(_) => Err((
            LogProblem::Syntax,
            format!("{what} '{text}' is not a number"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind<T: std::fmt::Debug>(r: Result<T, Refusal>) -> LogProblem {
        r.unwrap_err().0
    }

    #[test]
    fn counts_are_whole_non_negative_and_fit_i64() {
        assert_eq!(count(&Value::Int(3), "q"), Ok(3));
        assert_eq!(count(&Value::Float(4.0), "q"), Ok(4));
        assert_eq!(kind(count(&Value::Int(-1), "q")), LogProblem::Negative);
        assert_eq!(kind(count(&Value::Float(-2.0), "q")), LogProblem::Negative);
        assert_eq!(
            kind(count(&Value::Float(f64::NAN), "q")),
            LogProblem::NonFinite
        );
        assert_eq!(
            kind(count(&Value::Float(f64::INFINITY), "q")),
            LogProblem::NonFinite
        );
        assert_eq!(kind(count(&Value::Float(1e19), "q")), LogProblem::Overflow);
        assert_eq!(kind(count(&Value::Float(1.5), "q")), LogProblem::Syntax);
        assert_eq!(kind(count(&Value::Bool(true), "q")), LogProblem::Syntax);
        let big = pylit::parse("9223372036854775808").unwrap();
        assert_eq!(kind(count(&big, "q")), LogProblem::Overflow);
    }

    #[test]
    fn prices_are_finite_and_non_negative() {
        assert_eq!(price(&Value::Int(3), "p"), Ok(3.0));
        assert_eq!(price(&Value::Float(0.5), "p"), Ok(0.5));
        assert_eq!(kind(price(&Value::Int(-3), "p")), LogProblem::Negative);
        assert_eq!(kind(price(&Value::Float(-0.5), "p")), LogProblem::Negative);
        assert_eq!(
            kind(price(&Value::Float(f64::NAN), "p")),
            LogProblem::NonFinite
        );
        assert_eq!(
            kind(price(&Value::Float(f64::NEG_INFINITY), "p")),
            LogProblem::NonFinite
        );
        let big = pylit::parse("99999999999999999999").unwrap();
        assert_eq!(kind(price(&big, "p")), LogProblem::Overflow);
    }

    #[test]
    fn count_cells_from_text() {
        assert_eq!(count_cell("", "d"), Ok(None));
        assert_eq!(count_cell("17", "d"), Ok(Some(17)));
        assert_eq!(count_cell("17.0", "d"), Ok(Some(17)));
        for (text, problem) in [
            ("nan", LogProblem::NonFinite),
            ("NaN", LogProblem::NonFinite),
            ("-inf", LogProblem::NonFinite),
            ("Infinity", LogProblem::NonFinite),
            ("-4", LogProblem::Negative),
            ("9223372036854775808", LogProblem::Overflow),
            ("1e30", LogProblem::Overflow),
            ("abc", LogProblem::Syntax),
            ("1.5", LogProblem::Syntax),
        ] {
            assert_eq!(kind(count_cell(text, "d")), problem, "{text}");
        }
    }
}
