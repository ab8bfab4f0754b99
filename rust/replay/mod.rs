//! The L1 replay of `hrl build` in one batched call: for each expert agent-day, the calls that
//! made its micro rows are rebuilt from the logged facts (the port of
//! `hrl.safety.from_logs.LogSafety.call`), `PenguinStyleBaseline` runs on each
//! ([`baseline`]), its decisions pass the L1 round step and the L1 bounds and acceptance
//! safety are read off the same limits (the port of `hrl.safety.replay.l1_view`). The Python
//! path (`micro_l1_columns(..., reference=True)`) is the oracle: the rows must be equal.
//!
//! Agent-days are independent and run in parallel (rayon).

pub mod baseline;
pub mod pyset;
pub mod rng;

use rayon::prelude::*;

use crate::error::CoreError;
use crate::safety::{self, Limits, Offer, Range, RoundItem, SafetyState, Side, Verdict};
use crate::stock::StockModel;
use baseline::{Baseline, Decision, Options, View};

pub use baseline::Options as BaselineOptions;

/// The call (0 = first proposals, `2r + 1` = round `r`'s responses) deciding `slot`.
pub fn call_of_slot(slot: i64) -> i64 {
    if slot <= 0 {
        0
    } else if slot % 2 != 0 {
        slot
    } else {
        slot + 1
    }
}

/// The per-day numbers of one agent-day (`from_logs._Day`; units as logged).
#[derive(Debug, Clone)]
pub struct DayFacts {
    pub n_steps: i64,
    pub n_lines: i64,
    pub inventory_input: i64,
    pub balance: f64,
    pub cost: f64,
    pub trading_price_in: f64,
    pub trading_price_out: f64,
    pub buy_quantity: Range,
    pub buy_price: Range,
    pub sell_quantity: Range,
    pub sell_price: Range,
    pub exo_in_quantity: i64,
    pub exo_in_total: f64,
    pub exo_out_quantity: i64,
    pub expected_supplies: Vec<i64>,
    pub stock_model: StockModel,
}

/// A negotiated contract signed on the day and delivering in its window.
#[derive(Debug, Clone, Copy)]
pub struct TodayContract {
    pub delivery: i64,
    pub quantity: i64,
    pub price: f64,
    pub side: Side,
    /// The first call at which the agent had seen its agreement.
    pub seen_from: i64,
}

/// One logged offer of a negotiation (`NegotiationView.offers`; `quantity` is `None` when
/// nothing was proposed, a missing day or price reads as 0).
#[derive(Debug, Clone, Copy)]
pub struct LoggedOffer {
    pub seq: i64,
    pub by_agent: bool,
    pub quantity: Option<i64>,
    pub day: Option<i64>,
    pub price: Option<f64>,
}

/// One negotiation of the day from the agent's side (`NegotiationView`).
#[derive(Debug, Clone)]
pub struct Negotiation {
    pub partner: usize,
    pub side: Side,
    pub end_slot: i64,
    pub end_by_agent: bool,
    pub offers: Vec<LoggedOffer>,
}

impl Negotiation {
    fn over_before(&self, call: i64) -> bool {
        if self.offers.is_empty() {
            call > 0
        } else if self.end_by_agent {
            call_of_slot(self.end_slot) < call
        } else {
            self.end_slot < call
        }
    }
}

/// A micro row to fill: its index in the output, its call, its partner (an id into
/// [`Names`]; `None` when not among them) and the actor's side.
#[derive(Debug, Clone, Copy)]
pub struct RowRequest {
    pub row: usize,
    pub call: i64,
    pub partner: Option<usize>,
    pub side: Side,
}

/// The agents' names (partner ids index them) and their Python `hash()`.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    pub names: &'a [String],
    pub hashes: &'a [i64],
}

/// Everything the replay needs of one agent-day.
#[derive(Debug, Clone)]
pub struct AgentDay {
    pub world: String,
    pub agent: String,
    pub day: i64,
    pub facts: DayFacts,
    /// Negotiated supplies, sales (per window day) and payables signed before the day.
    pub supplies: Vec<i64>,
    pub sales: Vec<i64>,
    pub payables: f64,
    pub today: Vec<TodayContract>,
    pub negotiations: Vec<Negotiation>,
    pub suppliers: Vec<usize>,
    pub consumers: Vec<usize>,
    pub rows: Vec<RowRequest>,
}

/// The L1 columns of one micro row (`hrl.safety.replay.micro_l1_columns`).
#[derive(Debug, Clone, PartialEq)]
pub struct RowOut {
    /// 0 `propose`, 1 `accept`, 2 `end`.
    pub kind: u8,
    /// `(q, t, p)`: the baseline's offer, or the end placeholder `(0, day, best safe price)`.
    pub offer: [i64; 3],
    pub day_mask: Vec<bool>,
    pub caps: Vec<i64>,
    pub accept_safe: bool,
    /// `q_min, q_max, p_min, p_max`.
    pub bounds: [i64; 4],
}

/// The bounds of one side (`hrl.safety.replay.L1Bounds`).
struct Bounds {
    day_mask: Vec<bool>,
    caps: Vec<i64>,
    q_min: i64,
    q_max: i64,
    p_min: i64,
    p_max: i64,
}

fn bounds(limits: &Limits, side: Side, day: i64, n_days: usize) -> Bounds {
    let (prices, quantities) = (limits.price_bounds(side), limits.quantity_bounds(side));
    let clipped: Vec<Option<Offer>> = (0..n_days as i64)
        .map(|k| limits.clip(side, Offer::new(quantities.hi.max(0), day + k, prices.lo)))
        .collect();
    let caps: Vec<i64> = clipped
        .iter()
        .map(|o| o.map_or(0, |o| o.quantity))
        .collect();
    let day_mask: Vec<bool> = clipped.iter().map(Option::is_some).collect();
    let q_max = clipped.iter().flatten().map(|o| o.quantity).max();
    Bounds {
        day_mask,
        caps,
        q_min: if q_max.is_some() {
            quantities.lo.max(1)
        } else {
            0
        },
        q_max: q_max.unwrap_or(0),
        p_min: prices.lo,
        p_max: prices.hi,
    }
}

fn accept_price(price: f64, side: Side) -> i64 {
    match side {
        Side::Buy => price.ceil() as i64,
        Side::Sell => price.floor() as i64,
    }
}

/// A call's result: the masked baseline action per partner, the bounds per side (buy, sell),
/// and per partner with an offer whether accepting it is safe.
struct CallView {
    actions: Vec<(usize, u8, [i64; 3])>,
    bounds: [Bounds; 2],
    accept_safe: Vec<(usize, bool)>,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

impl AgentDay {
    /// Checks the ids and the window (so the replay indexes nothing out of range).
    pub fn check(&self, names: Names<'_>) -> Result<(), CoreError> {
        let n = names.names.len();
        let bad = |what: &str, why: String| Err(CoreError::invalid(what, why));
        if names.hashes.len() != n {
            return bad(
                "hashes",
                format!("{} hashes for {n} names", names.hashes.len()),
            );
        }
        let w = self.supplies.len();
        if w == 0 || self.sales.len() != w {
            return bad(
                "supplies",
                format!("window of {w} supplies and {} sales", self.sales.len()),
            );
        }
        let ids = self.suppliers.iter().chain(&self.consumers);
        let ids = ids.chain(self.negotiations.iter().map(|v| &v.partner));
        if let Some(id) = ids
            .chain(self.rows.iter().filter_map(|r| r.partner.as_ref()))
            .find(|&&i| i >= n)
        {
            return bad("names", format!("partner id {id} with {n} names"));
        }
        if let Some(c) = self
            .today
            .iter()
            .find(|c| !(0..w as i64).contains(&(c.delivery - self.day)))
        {
            return bad(
                "today",
                format!(
                    "delivery {} outside the window of day {}",
                    c.delivery, self.day
                ),
            );
        }
        Ok(())
    }

    fn replay_call(
        &self,
        names: Names<'_>,
        call: i64,
        opts: Options,
        n_days: usize,
    ) -> Result<CallView, CoreError> {
        let day = self.day;
        let f = &self.facts;
        // The state at the call (LogSafety.state / signed).
        let (mut supplies, mut sales, mut payables) =
            (self.supplies.clone(), self.sales.clone(), self.payables);
        for c in self.today.iter().filter(|c| c.seen_from <= call) {
            let i = (c.delivery - day) as usize;
            match c.side {
                Side::Buy => {
                    supplies[i] += c.quantity;
                    payables += c.quantity as f64 * c.price;
                }
                Side::Sell => sales[i] += c.quantity,
            }
        }
        let (signed_supplies, signed_sales) = (supplies.clone(), sales.clone());
        supplies[0] += f.exo_in_quantity;
        sales[0] += f.exo_out_quantity;
        let state = SafetyState {
            current_step: day,
            n_steps: f.n_steps,
            n_lines: f.n_lines,
            inventory_input: f.inventory_input,
            supplies: &supplies,
            sales: &sales,
            balance: f.balance,
            committed_payables: payables + f.exo_in_total,
            production_cost: f.cost,
            trading_price_in: f.trading_price_in,
            trading_price_out: f.trading_price_out,
            buy_quantity: f.buy_quantity,
            buy_price: f.buy_price,
            sell_quantity: f.sell_quantity,
            sell_price: f.sell_price,
            expected_supplies: &f.expected_supplies,
            stock_model: f.stock_model,
        };
        // What the agent had seen (LogSafety._make_call / open_offers).
        let mut negotiators: Vec<usize> = Vec::new();
        let mut offers: Vec<(usize, (i64, i64, f64))> = Vec::new();
        let mut open: Vec<(Side, Offer)> = Vec::new();
        for view in &self.negotiations {
            for o in &view.offers {
                if let (true, Some(q)) = (o.by_agent, o.quantity) {
                    if call_of_slot(o.seq) < call && call <= o.seq + 1 {
                        let price = o.price.unwrap_or(0.0).trunc() as i64;
                        open.push((view.side, Offer::new(q, o.day.unwrap_or(0), price)));
                    }
                }
            }
            if view.over_before(call) {
                continue;
            }
            if !negotiators.contains(&view.partner) {
                negotiators.push(view.partner);
            }
            for o in &view.offers {
                if let (false, Some(q)) = (o.by_agent, o.quantity) {
                    if o.seq < call && call_of_slot(o.seq + 1) == call {
                        let offer = (q, o.day.unwrap_or(0), o.price.unwrap_or(0.0));
                        match offers.iter_mut().find(|(p, _)| *p == view.partner) {
                            Some(slot) => slot.1 = offer,
                            None => offers.push((view.partner, offer)),
                        }
                    }
                }
            }
        }
        // The baseline (replay_call).
        let view = View {
            step: day,
            n_steps: f.n_steps,
            n_lines: f.n_lines,
            inventory: f.inventory_input,
            suppliers: &self.suppliers,
            consumers: &self.consumers,
            supplies: &signed_supplies,
            sales: &signed_sales,
            input_price: f.buy_price,
            output_price: f.sell_price,
            negotiators: &negotiators,
            offers: &offers,
            hashes: names.hashes,
        };
        let seed = rng::crc32(format!("{}|{}|{}|{}", self.world, self.agent, day, call).as_bytes());
        let mut baseline = Baseline::new(opts, &view, seed);
        let decisions = if call == 0 {
            baseline.first_proposals()
        } else {
            baseline.counter_all()
        };
        let side_of = |p: usize| {
            if self.suppliers.contains(&p) {
                Side::Buy
            } else {
                Side::Sell
            }
        };
        // The L1 mask (mask_decisions): acceptances first, each kind by day, then partner.
        let mut order: Vec<(usize, Decision)> = decisions;
        let key = |d: &Decision| match *d {
            Decision::Accept(_, t, _) => (false, t),
            Decision::Offer(_, t, _) => (true, t),
        };
        order.sort_by(|a, b| {
            key(&a.1)
                .cmp(&key(&b.1))
                .then_with(|| names.names[a.0].cmp(&names.names[b.0]))
        });
        let items: Vec<RoundItem> = order
            .iter()
            .map(|&(p, d)| {
                let side = side_of(p);
                match d {
                    Decision::Accept(q, t, price) => RoundItem {
                        side,
                        offer: Offer::new(q, t, accept_price(price, side)),
                        accept: true,
                    },
                    Decision::Offer(q, t, price) => RoundItem {
                        side,
                        offer: Offer::new(q, t, price.trunc() as i64),
                        accept: false,
                    },
                }
            })
            .collect();
        let mut verdicts = vec![(Verdict::Dropped, None); items.len()];
        if !items.is_empty() {
            safety::round_step(&state, &open, &items, &mut verdicts)?;
        }
        let mut actions = Vec::with_capacity(items.len());
        for ((&(p, _), item), (verdict, clipped)) in order.iter().zip(&items).zip(&verdicts) {
            match (verdict, clipped) {
                (Verdict::Kept, _) if item.accept => {
                    let o = item.offer;
                    actions.push((p, 1u8, [o.quantity, o.day, o.price]));
                }
                (Verdict::Dropped, _) | (_, None) => {}
                (_, Some(o)) => actions.push((p, 0u8, [o.quantity, o.day, o.price])),
            }
        }
        // The bounds and acceptance safety (l1_view, accept_safety).
        let mut limits = Limits::derive(&state)?;
        for &(side, offer) in &open {
            limits.reserve(side, offer);
        }
        let bounds = [
            bounds(&limits, Side::Buy, day, n_days),
            bounds(&limits, Side::Sell, day, n_days),
        ];
        let mut judged: Vec<&(usize, (i64, i64, f64))> = offers.iter().collect();
        judged.sort_by(|a, b| {
            (a.1 .1)
                .cmp(&b.1 .1)
                .then_with(|| names.names[a.0].cmp(&names.names[b.0]))
        });
        let mut accept_safe = Vec::with_capacity(judged.len());
        for &&(p, (q, t, price)) in &judged {
            let side = side_of(p);
            let offer = Offer::new(q, t, accept_price(price, side));
            let safe = limits.is_safe_to_accept(side, offer);
            if safe {
                limits.reserve(side, offer);
            }
            accept_safe.push((p, safe));
        }
        Ok(CallView {
            actions,
            bounds,
            accept_safe,
        })
    }

    /// The L1 columns of this agent-day's rows, as `(row, columns)`.
    pub fn replay(
        &self,
        names: Names<'_>,
        opts: Options,
        n_days: usize,
    ) -> Result<Vec<(usize, RowOut)>, CoreError> {
        let mut calls: Vec<(i64, CallView)> = Vec::new();
        let mut out = Vec::with_capacity(self.rows.len());
        for r in &self.rows {
            let k = match calls.iter().position(|(c, _)| *c == r.call) {
                Some(k) => k,
                None => {
                    calls.push((r.call, self.replay_call(names, r.call, opts, n_days)?));
                    calls.len() - 1
                }
            };
            let view = &calls[k].1;
            let b = &view.bounds[side_index(r.side)];
            let action = r
                .partner
                .and_then(|p| view.actions.iter().find(|(x, _, _)| *x == p));
            let (kind, offer) = match action {
                Some(&(_, kind, offer)) => (kind, offer),
                None => {
                    let price = if r.side == Side::Buy {
                        b.p_min
                    } else {
                        b.p_max
                    };
                    (2, [0, self.day, price])
                }
            };
            let accept_safe = r
                .partner
                .and_then(|p| view.accept_safe.iter().find(|(x, _)| *x == p))
                .is_some_and(|(_, s)| *s);
            out.push((
                r.row,
                RowOut {
                    kind,
                    offer,
                    day_mask: b.day_mask.clone(),
                    caps: b.caps.clone(),
                    accept_safe,
                    bounds: [b.q_min, b.q_max, b.p_min, b.p_max],
                },
            ));
        }
        Ok(out)
    }
}

/// Replays every agent-day (in parallel) and returns the rows' columns by row index
/// (`n_rows` entries; rows no agent-day asks for stay `None`).
pub fn replay_micro(
    days: &[AgentDay],
    names: Names<'_>,
    opts: Options,
    n_rows: usize,
    n_days: usize,
) -> Result<Vec<Option<RowOut>>, CoreError> {
    let parts: Vec<Vec<(usize, RowOut)>> = days
        .par_iter()
        .map(|d| d.check(names).and_then(|()| d.replay(names, opts, n_days)))
        .collect::<Result<_, _>>()?;
    let mut out: Vec<Option<RowOut>> = vec![None; n_rows];
    for (row, cols) in parts.into_iter().flatten() {
        if row >= n_rows {
            return Err(CoreError::invalid(
                "rows",
                format!("row {row} >= n_rows {n_rows}"),
            ));
        }
        out[row] = Some(cols);
    }
    Ok(out)
}
