//! The factory's day as scml runs it: input stock, production and shortfall over the delivery
//! window, and the largest sale or purchase a day can take without changing what that model says
//! is certain. Pure functions over plain integers; `safety.rs` builds L1's caps on them and
//! `py/safety.rs` exposes [`simulate`] as `hrl._core.simulate_stock` (oracle:
//! `hrl._reference.simulate_stock_reference`).
//!
//! # What scml 0.8.4 does at the end of day `t` (`oneshot/world.py::simulation_step`, `oneshot/ufun.py::from_offers`)
//! With `S_t` the input stock at the start of the day, `a_t` the input units delivered that day
//! (negotiated and exogenous), `d_t` the output units due that day and `L` the lines:
//! ```text
//! p_t      = min(S_t + a_t, L, d_t)            production (the ufun adds the whole stock to the inputs)
//! short_t  = d_t - p_t                          shortfall (penalised)
//! S_{t+1}  = S_t + max(0, a_t - p_t)           Persistent: only today's unused arrivals are added
//! S_{t+1}  = S_t + a_t - p_t                   Consumed: production uses stock up
//! ```
//! scml 0.8.4 runs [`StockModel::Persistent`]: stock is never decremented, so it can feed
//! production on every later day (storage is charged on it daily). [`StockModel::Consumed`] is the
//! textbook inventory and the guard L1 falls back to when the installed scml is outside the
//! verified range or an agent sees its stock fall. Purchases the world refuses for lack of cash
//! are not modelled here (L1's cash rule keeps them from happening).
//!
//! # Caps under the persistent model
//! Take the base run above with `h_t = S_t + a_t - min(L, d_t)` (spare input on day `t`; negative
//! when day `t` is already short), `r_t = max(0, min(L, S_t + a_t) - d_t)` (units day `t` can
//! still produce) and `carry_t = max(0, a_t - p_t)` (arrivals of day `t` that become stock).
//! - **Sell `q` more on day `e`.** Day `e` stays covered iff `q <= r_e`. It then uses
//!   `min(q, carry_e)` of the arrivals that would have become stock, and that stock is missing on
//!   every later day (on a covered day the carry does not depend on the stock, so the loss
//!   propagates unchanged); a later day `t` keeps its production iff the loss is `<= max(0, h_t)`.
//!   So `sell_cap[e] = r_e` when `carry_e <= H_e`, else `min(r_e, H_e)`, with
//!   `H_e = min_{t > e} max(0, h_t)`: the largest sale that adds no shortfall on any day.
//! - **Buy `q` more on day `e`.** Future sales are unknown, so the buy caps assume every day
//!   produces all it can (`L`): that gives the lowest stock `S^min_t` the window can have. Stock
//!   at or above `L` is never useful (it persists and the lines make at most `L` a day). A unit
//!   bought on day `e` raises that day's production only while `S^min_e + a_e + q <= L`, and
//!   becomes stock only beyond `L - a_e`; so with `room = max(0, L - S^min_W)` (the final lowest
//!   stock `S^min_W`):
//!   `buy_cap[e] = max(0, L - a_e) + room` when `room > 0`, else `max(0, L - S^min_e - a_e)`.
//!   Everything beyond the cap is certainly useless. On the world's last day nothing is stocked
//!   for later (`room` does not apply).

use crate::error::CoreError;

/// How the world treats input stock that production draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockModel {
    /// scml 0.8.4: stock is never used up (code 0).
    Persistent,
    /// Production uses stock up (code 1).
    Consumed,
}

impl StockModel {
    /// `0 -> Persistent`, `1 -> Consumed`; anything else is an `InvalidArgument` naming `arg`.
    pub fn from_code(code: i64, arg: &str) -> Result<Self, CoreError> {
        match code {
            0 => Ok(Self::Persistent),
            1 => Ok(Self::Consumed),
            _ => Err(CoreError::invalid(
                arg,
                format!("stock model must be 0 (persistent) or 1 (consumed), got {code}"),
            )),
        }
    }

    /// The inverse of [`StockModel::from_code`].
    pub fn code(self) -> i64 {
        match self {
            Self::Persistent => 0,
            Self::Consumed => 1,
        }
    }
}

/// One modelled day (see the module docs): units produced, units short, stock at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelDay {
    pub production: i64,
    pub shortfall: i64,
    pub stock_after: i64,
}

/// Runs the model over the window: `arrivals[i]` / `due[i]` are the input units delivered and the
/// output units due on the window's day `i`; writes one [`ModelDay`] per day to `out`.
pub fn simulate(
    model: StockModel,
    stock: i64,
    arrivals: &[i64],
    due: &[i64],
    n_lines: i64,
    out: &mut [ModelDay],
) -> Result<(), CoreError> {
    let w = arrivals.len();
    for (name, len) in [("due", due.len()), ("out", out.len())] {
        if len != w {
            return Err(CoreError::shape(
                name,
                format!("{w} days (as arrivals)"),
                format!("{len} days"),
            ));
        }
    }
    if stock < 0 {
        return Err(CoreError::invalid(
            "stock",
            format!("must be >= 0, got {stock}"),
        ));
    }
    if n_lines < 1 {
        return Err(CoreError::invalid(
            "n_lines",
            format!("must be >= 1, got {n_lines}"),
        ));
    }
    for (name, values) in [("arrivals", arrivals), ("due", due)] {
        if let Some(i) = values.iter().position(|&x| x < 0) {
            return Err(CoreError::invalid(
                &format!("{name}[{i}]"),
                format!("must be >= 0, got {}", values[i]),
            ));
        }
    }
    let mut s = stock;
    for ((&a, &d), day) in arrivals.iter().zip(due).zip(out.iter_mut()) {
        let p = s.saturating_add(a).min(n_lines).min(d);
        s = match model {
            StockModel::Persistent => s.saturating_add((a - p).max(0)),
            StockModel::Consumed => s.saturating_add(a) - p,
        };
        *day = ModelDay {
            production: p,
            shortfall: d - p,
            stock_after: s,
        };
    }
    Ok(())
}

/// Persistent-model sell caps (module docs): the largest extra sale per window day that adds
/// no modelled shortfall on any day. `arrivals`, `due` and `caps` have one entry per day.
pub fn persistent_sell_caps(
    stock: i64,
    arrivals: &[i64],
    due: &[i64],
    n_lines: i64,
    caps: &mut [i64],
) {
    // Forward pass: caps[i] holds the stock at the start of day i (no allocation per call).
    let mut s = stock;
    for i in 0..caps.len() {
        caps[i] = s;
        let p = s.saturating_add(arrivals[i]).min(n_lines).min(due[i]);
        s = s.saturating_add((arrivals[i] - p).max(0));
    }
    // Backward pass: `later` is H_i, the least spare input of the days after i.
    let mut later = i64::MAX;
    for i in (0..caps.len()).rev() {
        let (a, d) = (arrivals[i], due[i]);
        let on_hand = caps[i].saturating_add(a);
        let carry = (a - on_hand.min(n_lines).min(d)).max(0);
        let room = (on_hand.min(n_lines) - d).max(0);
        caps[i] = if carry > later { room.min(later) } else { room };
        later = later.min((on_hand - n_lines.min(d)).max(0));
    }
}

/// Persistent-model buy caps (module docs): per window day, the largest extra purchase whose
/// last unit is not certainly useless. `last_day_index` is the window index of the world's last
/// day, if the window reaches it (nothing is stocked for later there).
pub fn persistent_buy_caps(
    stock: i64,
    arrivals: &[i64],
    n_lines: i64,
    last_day_index: Option<usize>,
    caps: &mut [i64],
) {
    // Lowest stock the window can leave: every day produces all it can (L).
    let mut s = stock;
    for (i, &a) in arrivals.iter().enumerate() {
        caps[i] = s; // the lowest stock at the start of day i, kept for the second pass
        s = s.saturating_add((a - n_lines).max(0));
    }
    let room = (n_lines - s).max(0);
    for (i, cap) in caps.iter_mut().enumerate() {
        let a = arrivals[i];
        let produce = (n_lines - *cap - a).max(0);
        *cap = if room > 0 && Some(i) != last_day_index {
            (n_lines - a).max(0).saturating_add(room)
        } else {
            produce
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn total_shortfall(model: StockModel, stock: i64, a: &[i64], d: &[i64], l: i64) -> i64 {
        let mut out = vec![ModelDay::default(); a.len()];
        simulate(model, stock, a, d, l, &mut out).unwrap();
        out.iter().map(|x| x.shortfall).sum()
    }

    #[test]
    fn persistent_stock_is_never_used_up() {
        // 10 lines, 4 in stock, nothing arrives, 4 due every day: the stock serves every day.
        let mut out = vec![ModelDay::default(); 3];
        simulate(
            StockModel::Persistent,
            4,
            &[0, 0, 0],
            &[4, 4, 4],
            10,
            &mut out,
        )
        .unwrap();
        assert!(out
            .iter()
            .all(|d| d.production == 4 && d.shortfall == 0 && d.stock_after == 4));
        simulate(
            StockModel::Consumed,
            4,
            &[0, 0, 0],
            &[4, 4, 4],
            10,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.iter().map(|d| d.shortfall).collect::<Vec<_>>(),
            vec![0, 4, 4]
        );
    }

    #[test]
    fn unused_arrivals_become_stock() {
        let mut out = vec![ModelDay::default(); 2];
        simulate(StockModel::Persistent, 1, &[7, 0], &[3, 12], 10, &mut out).unwrap();
        assert_eq!(
            out[0],
            ModelDay {
                production: 3,
                shortfall: 0,
                stock_after: 5
            }
        );
        assert_eq!(
            out[1],
            ModelDay {
                production: 5,
                shortfall: 7,
                stock_after: 5
            }
        );
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let mut out = vec![ModelDay::default(); 2];
        assert!(matches!(
            simulate(StockModel::Persistent, -1, &[0, 0], &[0, 0], 3, &mut out),
            Err(CoreError::InvalidArgument { .. })
        ));
        assert!(matches!(
            simulate(StockModel::Persistent, 0, &[0, 0], &[0], 3, &mut out),
            Err(CoreError::Shape { .. })
        ));
        assert!(StockModel::from_code(2, "m").is_err());
    }

    fn window() -> impl Strategy<Value = (i64, i64, Vec<i64>, Vec<i64>)> {
        (1i64..12, 1usize..9).prop_flat_map(|(l, w)| {
            (
                Just(l),
                0i64..3 * l,
                proptest::collection::vec(0i64..2 * l, w),
                proptest::collection::vec(0i64..2 * l, w),
            )
        })
    }

    proptest! {
        #[test]
        fn sell_caps_are_the_largest_sale_adding_no_shortfall((l, stock, a, d) in window()) {
            let mut caps = vec![0; a.len()];
            persistent_sell_caps(stock, &a, &d, l, &mut caps);
            let base = total_shortfall(StockModel::Persistent, stock, &a, &d, l);
            for e in 0..a.len() {
                let short_with = |q: i64| {
                    let mut more = d.clone();
                    more[e] += q;
                    total_shortfall(StockModel::Persistent, stock, &a, &more, l)
                };
                let largest = (0..=3 * l).take_while(|&q| short_with(q) == base).last().unwrap();
                prop_assert_eq!(caps[e], largest, "day {}", e);
            }
        }

        #[test]
        fn buy_caps_end_where_units_become_certainly_useless((l, stock, a, _d) in window()) {
            let mut caps = vec![0; a.len()];
            persistent_buy_caps(stock, &a, l, None, &mut caps);
            // The max-production model: every day could sell L.
            let full = vec![l; a.len()];
            let run = |arr: &[i64]| {
                let mut out = vec![ModelDay::default(); arr.len()];
                simulate(StockModel::Persistent, stock, arr, &full, l, &mut out).unwrap();
                out
            };
            for e in 0..a.len() {
                // Unit k is useful iff it raises day e's production or lifts a final stock below L.
                let useful = |k: i64| {
                    let (mut lo, mut hi) = (a.clone(), a.clone());
                    lo[e] += k - 1;
                    hi[e] += k;
                    let (lo, hi) = (run(&lo), run(&hi));
                    let (s_lo, s_hi) = (lo.last().unwrap().stock_after, hi.last().unwrap().stock_after);
                    hi[e].production > lo[e].production || (s_hi > s_lo && s_hi <= l)
                };
                let want = (1..=4 * l + 1).filter(|&k| useful(k)).max().unwrap_or(0);
                prop_assert_eq!(caps[e], want, "day {}", e);
            }
        }
    }
}
