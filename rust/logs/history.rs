//! Offers out of a negotiation's `history` cell: one event per offer, in the order made, with the
//! proposer resolved to its owning agent and the receiver's response.
//!
//! The negmas trap: a negotiator's id is its *partner's* agent id, so `new_offers` entries
//! `(negotiator_id, offer)` name the receiver. The proposer is taken from the aligned
//! `new_offerer_agents` entry when present, else as the partner that is not the negotiator id;
//! when both are present they must agree.

use std::borrow::Cow;

use super::pylit::{ParseError, Parser, Result, Value};
use super::values;
use crate::error::LogProblem;

/// Response of the receiver to an offer.
pub mod response {
    /// Unknown: nothing after the offer tells (e.g. the log ends).
    pub const NONE: u8 = 0;
    /// Rejected with a counter-offer.
    pub const REJECT: u8 = 1;
    /// Accepted (the negotiation's agreement is this offer).
    pub const ACCEPT: u8 = 2;
    /// The receiver ended the negotiation.
    pub const END: u8 = 3;
    /// The negotiation timed out before the receiver answered.
    pub const TIMEOUT: u8 = 4;
    /// Names in code order (index = code).
    pub const NAMES: [&str; 5] = ["none", "reject", "accept", "end", "timeout"];
}

/// An SCML offer `(quantity, delivery_day, unit_price)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offer {
    pub quantity: i64,
    pub day: i64,
    pub unit_price: f64,
}

/// One offer made in a negotiation.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The mechanism round (`step` of the history entry) the offer was made in.
    pub round: i32,
    /// Index into the negotiation's partners of the agent that made the offer.
    pub proposer: u8,
    /// `None` when the negotiator proposed nothing.
    pub offer: Option<Offer>,
    /// See [`response`].
    pub response: u8,
}

/// What a `history` cell says about one negotiation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NegotiationHistory {
    pub events: Vec<Event>,
    /// Number of history entries (mechanism rounds logged).
    pub n_rounds: i32,
    pub agreement: Option<Offer>,
    pub broken: bool,
    pub timedout: bool,
}

/// Parses a `partners` cell (a list of agent ids).
pub fn parse_partners(cell: &str) -> Result<Vec<Cow<'_, str>>> {
    let mut parser = Parser::new(cell);
    let mut partners = Vec::with_capacity(2);
    parser.list(|p| {
        partners.push(p.string()?);
        Ok(())
    })?;
    parser.finish()?;
    Ok(partners)
}

/// Names of an offer's fields in errors: `[tuple, quantity, delivery day, unit price]`.
type OfferNames = [&'static str; 4];
const OFFER: OfferNames = [
    "offer",
    "offer quantity",
    "offer delivery day",
    "offer unit price",
];
const AGREEMENT: OfferNames = [
    "agreement",
    "agreement quantity",
    "agreement delivery day",
    "agreement unit price",
];

/// Reads an offer tuple, or `None`. Quantities and delivery days must be whole, non-negative
/// and fit i64, unit prices finite and non-negative ([`values`]).
fn offer(p: &mut Parser<'_>, names: &OfferNames) -> Result<Option<Offer>> {
    if p.none() {
        return Ok(None);
    }
    let at = p.offset();
    if let Some(made) = p.plain_triple() {
        return Ok(Some(Offer {
            quantity: made.0,
            day: made.1,
            unit_price: made.2,
        }));
    }
    let value = p.value()?;
    let [q, t, u] = value.items().unwrap_or(&[]) else {
        return Err(ParseError::syntax(
            at,
            format!(
                "expected an {} (quantity, delivery_day, unit_price) or None",
                names[0]
            ),
        ));
    };
    let refused = |(kind, reason)| ParseError {
        offset: at,
        kind,
        reason,
    };
    Ok(Some(Offer {
        quantity: values::count(q, names[1]).map_err(refused)?,
        day: values::count(t, names[2]).map_err(refused)?,
        unit_price: values::price(u, names[3]).map_err(refused)?,
    }))
}

fn boolean(p: &mut Parser<'_>) -> Result<bool> {
    let at = p.offset();
    match p.value()? {
        Value::Bool(b) => Ok(b),
        Value::None => Ok(false),
        _ => Err(ParseError::syntax(at, "expected True/False")),
    }
}

/// Parses a `history` cell of a bilateral negotiation between `partners`.
pub fn parse_history(cell: &str, partners: &[Cow<'_, str>]) -> Result<NegotiationHistory> {
    if partners.len() != 2 {
        return Err(ParseError {
            offset: 0,
            kind: LogProblem::Inconsistent,
            reason: format!(
                "only bilateral negotiations are supported, got {} partners",
                partners.len()
            ),
        });
    }
    let mut out = NegotiationHistory::default();
    let mut parser = Parser::new(cell);
    let mut new_offers: Vec<(Cow<'_, str>, Option<Offer>)> = Vec::new();
    let mut offerers: Vec<Option<Cow<'_, str>>> = Vec::new();
    parser.list(|p| {
        new_offers.clear();
        offerers.clear();
        let mut round: Option<i64> = None;
        let start = p.offset();
        p.dict(|p, key| match key {
            "step" => {
                let at = p.offset();
                match p.value()? {
                    Value::Int(i) if i >= 0 => {
                        round = Some(i);
                        Ok(())
                    }
                    Value::Int(i) => Err(ParseError {
                        offset: at,
                        kind: LogProblem::Negative,
                        reason: format!("'step' {i} is negative"),
                    }),
                    _ => Err(ParseError::syntax(at, "'step' is not an int")),
                }
            }
            "new_offers" => p.list(|p| {
                let mut id = None;
                let mut made = None;
                let mut index = 0;
                p.list(|p| {
                    match index {
                        0 => id = Some(p.string()?),
                        1 => made = Some(offer(p, &OFFER)?),
                        _ => return Err(p.error("new_offers entry has more than 2 items")),
                    }
                    index += 1;
                    Ok(())
                })?;
                match (id, made) {
                    (Some(id), Some(made)) => {
                        new_offers.push((id, made));
                        Ok(())
                    }
                    _ => Err(p.error("new_offers entry is not (negotiator_id, offer)")),
                }
            }),
            "new_offerer_agents" => {
                if p.none() {
                    return Ok(());
                }
                p.list(|p| {
                    offerers.push(if p.none() { None } else { Some(p.string()?) });
                    Ok(())
                })
            }
            "agreement" => {
                out.agreement = offer(p, &AGREEMENT)?;
                Ok(())
            }
            "broken" => {
                out.broken = boolean(p)?;
                Ok(())
            }
            "timedout" => {
                out.timedout = boolean(p)?;
                Ok(())
            }
            _ => p.skip_value(),
        })?;
        let round =
            round.ok_or_else(|| ParseError::syntax(start, "history entry without 'step'"))?;
        let round = i32::try_from(round).map_err(|_| ParseError {
            offset: start,
            kind: LogProblem::Overflow,
            reason: format!("'step' {round} out of range"),
        })?;
        out.n_rounds += 1;
        let aligned = offerers.len() == new_offers.len();
        for (k, (negotiator, made)) in new_offers.iter().enumerate() {
            let by_partner_rule = partners
                .iter()
                .position(|a| a == negotiator)
                .map(|i| 1 - i as u8);
            let by_offerer = if aligned {
                offerers[k]
                    .as_ref()
                    .and_then(|o| partners.iter().position(|a| a == o))
                    .map(|i| i as u8)
            } else {
                None
            };
            let proposer = match (by_partner_rule, by_offerer) {
                (Some(a), Some(b)) if a != b => {
                    return Err(ParseError {
                        offset: start,
                        kind: LogProblem::Inconsistent,
                        reason: format!(
                            "owner mismatch: negotiator '{negotiator}' belongs to '{}' by the partner rule \
                             but new_offerer_agents names '{}'",
                            partners[a as usize], partners[b as usize]
                        ),
                    })
                }
                (Some(a), _) | (None, Some(a)) => a,
                (None, None) => {
                    return Err(ParseError {
                        offset: start,
                        kind: LogProblem::Inconsistent,
                        reason: format!(
                            "cannot tell who made an offer: negotiator '{negotiator}' is not a partner"
                        ),
                    })
                }
            };
            out.events.push(Event {
                round,
                proposer,
                offer: *made,
                response: response::NONE,
            });
        }
        Ok(())
    })?;
    parser.finish()?;
    set_responses(&mut out);
    Ok(out)
}

/// An offer is rejected when its receiver makes a later offer; the last offer is accepted when
/// it is the agreement, else answered by the end (broken) or the timeout.
fn set_responses(h: &mut NegotiationHistory) {
    let n = h.events.len();
    let mut next_by = [usize::MAX; 2];
    for i in (0..n).rev() {
        let proposer = h.events[i].proposer as usize;
        let receiver = 1 - proposer;
        h.events[i].response = if next_by[receiver] != usize::MAX {
            response::REJECT
        } else if i + 1 == n {
            match (h.agreement, h.events[i].offer) {
                (Some(a), Some(o)) if a == o => response::ACCEPT,
                _ if h.timedout => response::TIMEOUT,
                _ if h.broken => response::END,
                _ => response::NONE,
            }
        } else {
            response::NONE
        };
        next_by[proposer] = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partners() -> Vec<Cow<'static, str>> {
        vec![Cow::Borrowed("04Gr@1"), Cow::Borrowed("02Ra@0")]
    }

    const FAILED: &str = "[{'running': True, 'step': 0, 'agreement': None, 'broken': False, 'timedout': False, \
        'left_negotiators': set(), 'threads': {}, 'new_offers': [('02Ra@0', (7, 4, 14)), ('04Gr@1', (1, 3, 16))], \
        'new_offerer_agents': ['04Gr@1', '02Ra@0'], 'new_data': [('02Ra@0', None)]}, \
        {'step': 1, 'agreement': None, 'broken': False, 'timedout': False, 'new_offers': [('02Ra@0', (2, 4, 14))], \
        'new_offerer_agents': ['04Gr@1']}, \
        {'step': 2, 'agreement': None, 'broken': True, 'timedout': False, 'new_offers': [], 'new_offerer_agents': []}]";

    #[test]
    fn proposer_is_the_owner_not_the_negotiator_id() {
        let h = parse_history(FAILED, &partners()).unwrap();
        assert_eq!(h.n_rounds, 3);
        assert!(h.broken && !h.timedout && h.agreement.is_none());
        let owners: Vec<u8> = h.events.iter().map(|e| e.proposer).collect();
        // ('02Ra@0', ...) is 04Gr@1's negotiator (named after its partner): proposer index 0.
        assert_eq!(owners, vec![0, 1, 0]);
        let responses: Vec<u8> = h.events.iter().map(|e| e.response).collect();
        assert_eq!(
            responses,
            vec![response::REJECT, response::REJECT, response::END]
        );
        assert_eq!(
            h.events[2].offer,
            Some(Offer {
                quantity: 2,
                day: 4,
                unit_price: 14.0
            })
        );
        assert_eq!(h.events[2].round, 1);
    }

    #[test]
    fn agreement_and_timeout() {
        let ok = "[{'step': 0, 'agreement': (3, 0, 14), 'broken': False, 'timedout': False, \
                  'new_offers': [('02Ra@0', (3, 0, 14))], 'new_offerer_agents': ['04Gr@1']}]";
        let h = parse_history(ok, &partners()).unwrap();
        assert_eq!(h.events[0].response, response::ACCEPT);
        assert_eq!(h.events[0].proposer, 0);
        let late = ok
            .replace("'timedout': False", "'timedout': True")
            .replace("(3, 0, 14), 'b", "None, 'b");
        assert_eq!(
            parse_history(&late, &partners()).unwrap().events[0].response,
            response::TIMEOUT
        );
        // Without new_offerer_agents the partner rule alone decides.
        let bare = "[{'step': 0, 'new_offers': [('04Gr@1', None)]}]";
        let h = parse_history(bare, &partners()).unwrap();
        assert_eq!((h.events[0].proposer, h.events[0].offer), (1, None));
    }

    #[test]
    fn inconsistent_or_malformed_histories_are_errors() {
        let mismatch = "[{'step': 0, 'new_offers': [('02Ra@0', (1, 1, 1))], 'new_offerer_agents': ['02Ra@0']}]";
        assert!(parse_history(mismatch, &partners())
            .unwrap_err()
            .reason
            .contains("owner mismatch"));
        let stranger = "[{'step': 0, 'new_offers': [('X', (1, 1, 1))]}]";
        assert!(parse_history(stranger, &partners()).is_err());
        for bad in [
            "[{'new_offers': []}]",
            "[{'step': 'a'}]",
            "[{'step': 0, 'new_offers': [('02Ra@0', (1, 1))]}]",
            "[{'step': 0, 'new_offers': [('02Ra@0', (1, 1, 1), 3)]}]",
            "[{'step': 0, 'broken': 3}]",
            &FAILED[..FAILED.len() - 5],
        ] {
            assert!(parse_history(bad, &partners()).is_err(), "{bad}");
        }
        assert!(parse_history("[]", &partners()[..1]).is_err());
        assert_eq!(parse_partners("['a', 'b']").unwrap(), vec!["a", "b"]);
        assert!(parse_partners("['a', ").is_err());
    }
}
