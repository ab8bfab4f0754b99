//! L1 safety rules: caps, price bounds, cash budget and offer clipping for one agent-day of the
//! SCML 2025 Standard game (`scml.std.SCML2024StdWorld`, scml 0.8.4). Pure functions over plain
//! numbers and slices; `py/safety.rs` is the Python face.
//!
//! # The day's state (`SafetyState`)
//! Day `s = current_step` of a world of `N = n_steps` days (`0 <= s < N`), `L = n_lines`. The
//! delivery window is the days `s .. s + W - 1` where `W = supplies.len() = sales.len()`; it is
//! the negotiations' delivery-day issue `(s, min(s + horizon, N - 1))` (scml `_make_issues`), so
//! no contract, signed or negotiable, delivers outside it. Index `i` stands for day `s + i`.
//! - `inventory_input` (`I`): input units in stock now.
//! - `supplies[i]`: input units signed to arrive on day `s + i` (negotiated and exogenous).
//! - `sales[i]`: output units signed to be delivered on day `s + i` (negotiated and exogenous).
//! - `balance`, `committed_payables` (money owed for signed, undelivered supplies),
//!   `production_cost` (`c`, per unit), `trading_price_in/out`.
//! - issue ranges per side: buy = the input negotiations, sell = the output negotiations
//!   (quantity `(1, 3 L)` and unit price `(max(1, int(0.9 tp)), int(1.1 tp))` in Standard). A side
//!   the agent does not negotiate on (first level buys, last level sells) gets an empty range.
//!
//! # Rules (each number below is what `Limits::derive` computes)
//! World facts used (scml 0.8.4 `oneshot/ufun.py::from_offers`, `oneshot/world.py`):
//! (a) on day `t` the factory produces `min(inputs on hand, L, units due for sale on day t)`: it
//!     never produces ahead for later days; (b) output inventory does not serve sales (the world
//!     adds it to the day's *demand*), so a unit sold for day `t` must be produced on day `t`;
//! (c) signed contracts always execute unless a partner goes bankrupt (nullified); (d) the world
//! honours purchases only while the balance covers `unit price + c` per unit (`can_buy`), and a
//! negative balance is bankruptcy (`bankruptcy_limit = 0`); (e) leftover inventory is worth 0 at
//! the end.
//!
//! 1. **Buy caps** (never buy inputs that cannot be processed before the world ends). Each input
//!    unit needs one line-day on or after its arrival and before the last day `N - 1`; with
//!    `arr[t] = supplies[t] + reserved buys[t]` this is possible iff for every day `d`
//!    ```text
//!    slack(d) = L * (N - d) - [d == s] * I - sum_{t >= d} arr[t]  >=  0
//!    ```
//!    (Hall's condition for unit jobs with release days and a common deadline). Buying `q` for
//!    day `e` lowers `slack(d)` for every `d <= e`, so `buy_cap[e] = max(0, min_{s <= d <= e} slack(d))`.
//!    Beyond the window nothing is signed, so days after it never bind.
//! 2. **Sell caps** (never sell what cannot be produced by the delivery day from inputs actually
//!    available). By (a) and (b) the sales due on day `t` (`due[t] = sales[t] + reserved
//!    sells[t]`) must be produced that day, so `due[t] <= L`, from inputs that arrived by then:
//!    with `A(t) = I + sum_{k <= t} supplies[k]` (signed supplies only: open buy offers are *not*
//!    counted) and `B(t) = sum_{k <= t} due[k]`, we need `B(t) <= A(t)` for every `t`. Selling `q`
//!    more on day `e` raises `due[e]` and every `B(t)`, `t >= e`, so
//!    ```text
//!    sell_cap[e] = max(0, min(L - due[e], min_{t >= e} (A(t) - B(t))))
//!    ```
//!    Inputs are modelled as consumed when used; scml 0.8.4 never decrements input inventory, so
//!    the real world has at least the inputs assumed here (conservative).
//! 3. **Price bounds**, always inside the issue ranges (and `>= 1`):
//!    ```text
//!    buy:  [max(1, buy.p_lo),  min(buy.p_hi, floor(best_sell - c))],  best_sell = max(sell.p_hi, tp_out)
//!    sell: [max(1, sell.p_lo, ceil(cheapest_buy + c)), sell.p_hi],   cheapest_buy = min(buy.p_lo, tp_in)
//!    ```
//!    (`cheapest_buy = tp_in` when the agent has no buy range.) An input bought above `best_sell -
//!    c` loses money however it is sold; an output sold below `cheapest_buy + c` sells for less than
//!    its replacement cost. An empty interval means no safe price: every offer on that side clips
//!    to `None`.
//! 4. **Cash budget** (never commit to pay more than free cash): each unit bought costs its price
//!    plus the production cost (rule (d)), so
//!    ```text
//!    free_cash = balance - committed_payables - c * sum(supplies) - sum_{reserved buys} q (p + c)
//!    a buy (q, p) is affordable iff q (p + c) <= free_cash
//!    ```
//!    Money from signed sales is not counted (it arrives only on delivery and a partner may fail).
//! 5. **Reservations**: the day's outstanding own offers in concurrent negotiations may each be
//!    accepted, so `Limits::reserve` charges them as if signed: a buy adds to `arr` (rule 1) and
//!    spends cash (rule 4); a sell adds to `due` (rule 2). An offer never *adds* capacity: open buy
//!    offers do not count as inputs for rule 2.
//! 6. **Clipping** `clip(side, (q, t, p))`: `None` if `t` is outside the window, the price
//!    interval is empty or no safe quantity `>= max(1, q_lo)` exists; otherwise `p' = clamp(p, lo,
//!    hi)` and `q' = min(q, q_hi, cap_side[t], floor(free_cash / (p' + c)) for buys)`. A clipped
//!    offer is within every cap, bound and budget; clipping is idempotent and leaves a safe offer
//!    unchanged; `is_safe_to_accept(o) == (clip(o) == Some(o))`.
//! 7. **The per-round step** (`round_step`): derive the limits, reserve the open offers, then in
//!    order: an acceptance is kept if safe (and reserved) or else replaced by its clipped counter
//!    offer; a proposal is clipped; every offer that is kept is reserved before the next item, so
//!    the whole round together respects rules 1-4.
//! 8. **Audit** (`Limits::violations`, `audit`): which rules an offer breaks (over-buy, over-sell,
//!    over-spend, price out of range, quantity out of range, day out of window).

use crate::error::CoreError;
use crate::stock::{persistent_buy_caps, persistent_sell_caps, StockModel};

/// Which side of the market an offer is on, from the agent's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Buying inputs from a supplier (code 0).
    Buy,
    /// Selling outputs to a consumer (code 1).
    Sell,
}

impl Side {
    /// `0 -> Buy`, `1 -> Sell`; anything else is an `InvalidArgument` naming `arg`.
    pub fn from_code(code: i64, arg: &str) -> Result<Self, CoreError> {
        match code {
            0 => Ok(Self::Buy),
            1 => Ok(Self::Sell),
            _ => Err(CoreError::invalid(
                arg,
                format!("side must be 0 (buy) or 1 (sell), got {code}"),
            )),
        }
    }

    /// The inverse of [`Side::from_code`].
    pub fn code(self) -> i64 {
        match self {
            Self::Buy => 0,
            Self::Sell => 1,
        }
    }
}

/// An SCML Standard offer: `(quantity, delivery day, unit price)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    pub quantity: i64,
    pub day: i64,
    pub price: i64,
}

impl Offer {
    pub fn new(quantity: i64, day: i64, price: i64) -> Self {
        Self {
            quantity,
            day,
            price,
        }
    }
}

/// An inclusive integer range `lo ..= hi` (empty when `lo > hi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: i64,
    pub hi: i64,
}

impl Range {
    pub fn new(lo: i64, hi: i64) -> Self {
        Self { lo, hi }
    }

    fn contains(self, x: i64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// One agent-day of plain numbers (see the module docs for each field's meaning and units).
#[derive(Debug, Clone, Copy)]
pub struct SafetyState<'a> {
    pub current_step: i64,
    pub n_steps: i64,
    pub n_lines: i64,
    pub inventory_input: i64,
    pub supplies: &'a [i64],
    pub sales: &'a [i64],
    pub balance: f64,
    pub committed_payables: f64,
    pub production_cost: f64,
    pub trading_price_in: f64,
    pub trading_price_out: f64,
    pub buy_quantity: Range,
    pub buy_price: Range,
    pub sell_quantity: Range,
    pub sell_price: Range,
    /// Input units expected but not signed per window day (empty: none). They back sales only
    /// in the exposure tier: counted, never taken as certain.
    pub expected_supplies: &'a [i64],
    /// How the world treats input stock (see `crate::stock`).
    pub stock_model: StockModel,
}

/// The largest quantity, price or day accepted (keeps every sum far from `i64` overflow).
pub const MAX_VALUE: i64 = 1 << 40;

/// Rules broken by one offer (see [`Limits::violations`]); all `false` iff the offer is safe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Violations {
    pub over_buy: bool,
    pub over_sell: bool,
    pub over_spend: bool,
    pub price_out_of_range: bool,
    pub quantity_out_of_range: bool,
    pub day_out_of_window: bool,
    /// Not a violation: a sale beyond what signed supply covers, within what expected supply
    /// covers (the exposure tier).
    pub exposure: bool,
}

impl Violations {
    pub fn any(&self) -> bool {
        self.over_buy
            || self.over_sell
            || self.over_spend
            || self.price_out_of_range
            || self.quantity_out_of_range
            || self.day_out_of_window
    }
}

/// Violation counts over many offers (see [`audit`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViolationCounts {
    pub n_offers: u64,
    pub n_unsafe: u64,
    pub over_buy: u64,
    pub over_sell: u64,
    pub over_spend: u64,
    pub price_out_of_range: u64,
    pub quantity_out_of_range: u64,
    pub day_out_of_window: u64,
    /// Offers in the exposure tier (not counted in `n_unsafe`).
    pub exposure: u64,
}

impl ViolationCounts {
    /// Adds one offer's violations.
    pub fn add(&mut self, v: Violations) {
        self.n_offers += 1;
        self.n_unsafe += u64::from(v.any());
        self.over_buy += u64::from(v.over_buy);
        self.over_sell += u64::from(v.over_sell);
        self.over_spend += u64::from(v.over_spend);
        self.price_out_of_range += u64::from(v.price_out_of_range);
        self.quantity_out_of_range += u64::from(v.quantity_out_of_range);
        self.day_out_of_window += u64::from(v.day_out_of_window);
        self.exposure += u64::from(v.exposure);
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &ViolationCounts) {
        self.n_offers += other.n_offers;
        self.n_unsafe += other.n_unsafe;
        self.over_buy += other.over_buy;
        self.over_sell += other.over_sell;
        self.over_spend += other.over_spend;
        self.price_out_of_range += other.price_out_of_range;
        self.quantity_out_of_range += other.quantity_out_of_range;
        self.day_out_of_window += other.day_out_of_window;
        self.exposure += other.exposure;
    }
}

/// The day's caps, bounds and budget, derived once from a [`SafetyState`] and updated by
/// reservations.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    first_day: i64,
    n_steps: i64,
    n_lines: i64,
    inventory_input: i64,
    model: StockModel,
    /// `supplies`: signed input arrivals (the sell caps count only these).
    signed_inputs: Vec<i64>,
    /// `supplies + expected_supplies`: what the exposure-tier sell caps count.
    expected_inputs: Vec<i64>,
    /// `arr`: signed plus reserved input arrivals (buy caps).
    arrivals: Vec<i64>,
    /// `due`: signed plus reserved sales.
    due: Vec<i64>,
    buy_caps: Vec<i64>,
    /// Sell caps with expected supply counted: what clipping enforces.
    sell_caps: Vec<i64>,
    /// Sell caps from signed supply only: beyond them a sale is exposure.
    hard_sell_caps: Vec<i64>,
    buy_quantity: Range,
    sell_quantity: Range,
    buy_price: Range,
    sell_price: Range,
    production_cost: f64,
    /// Balance minus money owed and minus the price of reserved buys (no production cost).
    money_left: f64,
    free_cash: f64,
}

fn check_int(arg: &str, x: i64, lo: i64) -> Result<(), CoreError> {
    if (lo..=MAX_VALUE).contains(&x) {
        Ok(())
    } else {
        Err(CoreError::invalid(
            arg,
            format!("must be in [{lo}, 2^40], got {x}"),
        ))
    }
}

fn check_finite(arg: &str, x: f64) -> Result<(), CoreError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(CoreError::NonFinite {
            arg: arg.to_owned(),
            index: Vec::new(),
            value: x,
        })
    }
}

fn check_range(arg: &str, r: Range) -> Result<(), CoreError> {
    if r.lo.abs() <= MAX_VALUE && r.hi.abs() <= MAX_VALUE {
        Ok(())
    } else {
        Err(CoreError::invalid(
            arg,
            format!("bounds must be within +-2^40, got ({}, {})", r.lo, r.hi),
        ))
    }
}

/// `floor(x)` as an integer clamped to `+-MAX_VALUE` (`x` finite).
fn floor_int(x: f64) -> i64 {
    x.floor().clamp(-(MAX_VALUE as f64), MAX_VALUE as f64) as i64
}

fn ceil_int(x: f64) -> i64 {
    x.ceil().clamp(-(MAX_VALUE as f64), MAX_VALUE as f64) as i64
}

impl SafetyState<'_> {
    fn validate(&self) -> Result<(), CoreError> {
        check_int("n_steps", self.n_steps, 1)?;
        check_int("n_lines", self.n_lines, 1)?;
        check_int("current_step", self.current_step, 0)?;
        if self.current_step >= self.n_steps {
            return Err(CoreError::invalid(
                "current_step",
                format!(
                    "must be < n_steps = {}, got {}",
                    self.n_steps, self.current_step
                ),
            ));
        }
        check_int("inventory_input", self.inventory_input, 0)?;
        let w = self.supplies.len();
        if w == 0 || (w as i64) > self.n_steps - self.current_step {
            return Err(CoreError::shape(
                "supplies",
                format!(
                    "1 ..= n_steps - current_step = {} days",
                    self.n_steps - self.current_step
                ),
                format!("{w} days"),
            ));
        }
        if self.sales.len() != w {
            return Err(CoreError::shape(
                "sales",
                format!("{w} days (as supplies)"),
                format!("{} days", self.sales.len()),
            ));
        }
        if !self.expected_supplies.is_empty() && self.expected_supplies.len() != w {
            return Err(CoreError::shape(
                "expected_supplies",
                format!("0 or {w} days (as supplies)"),
                format!("{} days", self.expected_supplies.len()),
            ));
        }
        for (name, values) in [
            ("supplies", self.supplies),
            ("sales", self.sales),
            ("expected_supplies", self.expected_supplies),
        ] {
            // The argument's name is formatted only for a bad value (this runs on every derive).
            if let Some(i) = values.iter().position(|&x| !(0..=MAX_VALUE).contains(&x)) {
                check_int(&format!("{name}[{i}]"), values[i], 0)?;
            }
        }
        for (name, x) in [
            ("balance", self.balance),
            ("committed_payables", self.committed_payables),
            ("production_cost", self.production_cost),
            ("trading_price_in", self.trading_price_in),
            ("trading_price_out", self.trading_price_out),
        ] {
            check_finite(name, x)?;
        }
        if self.production_cost < 0.0 {
            return Err(CoreError::invalid(
                "production_cost",
                format!("must be >= 0, got {}", self.production_cost),
            ));
        }
        for (name, r) in [
            ("buy_quantity", self.buy_quantity),
            ("buy_price", self.buy_price),
            ("sell_quantity", self.sell_quantity),
            ("sell_price", self.sell_price),
        ] {
            check_range(name, r)?;
        }
        Ok(())
    }
}

impl Limits {
    /// Validates `state` and derives every cap, bound and the budget (rules 1-4).
    pub fn derive(state: &SafetyState) -> Result<Self, CoreError> {
        state.validate()?;
        let c = state.production_cost;
        let sell_ref = (state.sell_price.hi as f64).max(state.trading_price_out);
        let buy_ref = if state.buy_price.lo >= 1 {
            (state.buy_price.lo as f64).min(state.trading_price_in)
        } else {
            state.trading_price_in
        };
        let buy_price = Range::new(
            state.buy_price.lo.max(1),
            state.buy_price.hi.min(floor_int(sell_ref - c)),
        );
        let sell_price = Range::new(
            state.sell_price.lo.max(1).max(ceil_int(buy_ref + c)),
            state.sell_price.hi,
        );
        let w = state.supplies.len();
        let expected_inputs = if state.expected_supplies.is_empty() {
            state.supplies.to_vec()
        } else {
            state
                .supplies
                .iter()
                .zip(state.expected_supplies)
                .map(|(&x, &e)| x.saturating_add(e))
                .collect()
        };
        let mut limits = Self {
            first_day: state.current_step,
            n_steps: state.n_steps,
            n_lines: state.n_lines,
            inventory_input: state.inventory_input,
            model: state.stock_model,
            signed_inputs: state.supplies.to_vec(),
            expected_inputs,
            arrivals: state.supplies.to_vec(),
            due: state.sales.to_vec(),
            buy_caps: vec![0; w],
            sell_caps: vec![0; w],
            hard_sell_caps: vec![0; w],
            buy_quantity: Range::new(state.buy_quantity.lo.max(1), state.buy_quantity.hi),
            sell_quantity: Range::new(state.sell_quantity.lo.max(1), state.sell_quantity.hi),
            buy_price,
            sell_price,
            production_cost: c,
            money_left: state.balance - state.committed_payables,
            free_cash: 0.0,
        };
        limits.refresh();
        Ok(limits)
    }

    /// Recomputes every cap and the free cash from the current arrivals and dues.
    fn refresh(&mut self) {
        match self.model {
            StockModel::Consumed => self.refresh_consumed_buy_caps(),
            StockModel::Persistent => {
                let last = usize::try_from(self.n_steps - 1 - self.first_day).ok();
                persistent_buy_caps(
                    self.inventory_input,
                    &self.arrivals,
                    self.n_lines,
                    last,
                    &mut self.buy_caps,
                );
            }
        }
        let mut caps = std::mem::take(&mut self.sell_caps);
        self.sell_caps_into(&self.expected_inputs, &mut caps);
        self.sell_caps = caps;
        let mut hard = std::mem::take(&mut self.hard_sell_caps);
        if self.expected_inputs == self.signed_inputs {
            hard.copy_from_slice(&self.sell_caps);
        } else {
            self.sell_caps_into(&self.signed_inputs, &mut hard);
        }
        self.hard_sell_caps = hard;
        // Rule 4: every unit bought or produced for a sale in the window costs `c`.
        let bought: i64 = self
            .arrivals
            .iter()
            .fold(0, |acc, &x| acc.saturating_add(x));
        let sold: i64 = self.due.iter().fold(0, |acc, &x| acc.saturating_add(x));
        self.free_cash = self.money_left - self.production_cost * bought.max(sold) as f64;
        // A sale beyond the units already costed (`bought - sold`) adds `c` a unit: the sell caps
        // carry that budget, so every sell rule lives in one number per day.
        if self.production_cost > 0.0 {
            let affordable = floor_int(self.free_cash.max(0.0) / self.production_cost);
            let budget = (bought - sold).max(0).saturating_add(affordable);
            for cap in self
                .sell_caps
                .iter_mut()
                .chain(self.hard_sell_caps.iter_mut())
            {
                *cap = (*cap).min(budget);
            }
        }
    }

    /// Consumed-stock rule 1: `buy_cap[e] = max(0, min_{d <= e} slack(d))`, suffix sums then a
    /// prefix minimum.
    fn refresh_consumed_buy_caps(&mut self) {
        let w = self.arrivals.len();
        let mut suffix = 0i64;
        for i in (0..w).rev() {
            suffix = suffix.saturating_add(self.arrivals[i]);
            let day = self.first_day + i as i64;
            let inventory = if i == 0 { self.inventory_input } else { 0 };
            self.buy_caps[i] = self
                .n_lines
                .saturating_mul(self.n_steps - day)
                .saturating_sub(inventory)
                .saturating_sub(suffix);
        }
        let mut running = i64::MAX;
        for cap in self.buy_caps.iter_mut() {
            running = running.min(*cap);
            *cap = running.max(0);
        }
    }

    /// Sell caps counting `inputs` as the arrivals: the persistent model (`crate::stock`), or
    /// consumed-stock rule 2 `max(0, min(L - due[e], min_{t >= e} (A(t) - B(t))))`.
    fn sell_caps_into(&self, inputs: &[i64], caps: &mut [i64]) {
        if self.model == StockModel::Persistent {
            persistent_sell_caps(self.inventory_input, inputs, &self.due, self.n_lines, caps);
            return;
        }
        let (mut a, mut b) = (self.inventory_input, 0i64);
        for i in 0..caps.len() {
            a = a.saturating_add(inputs[i]);
            b = b.saturating_add(self.due[i]);
            caps[i] = a.saturating_sub(b);
        }
        let mut running = i64::MAX;
        for i in (0..caps.len()).rev() {
            running = running.min(caps[i]);
            caps[i] = running.min(self.n_lines.saturating_sub(self.due[i])).max(0);
        }
    }

    /// First day of the delivery window (`current_step`).
    pub fn first_day(&self) -> i64 {
        self.first_day
    }

    /// Buy caps per day of the window (index 0 = today).
    pub fn buy_caps(&self) -> &[i64] {
        &self.buy_caps
    }

    /// Sell caps per day of the window (index 0 = today), expected supply counted.
    pub fn sell_caps(&self) -> &[i64] {
        &self.sell_caps
    }

    /// Sell caps from signed supply only (beyond them, up to [`Limits::sell_caps`], is exposure).
    pub fn hard_sell_caps(&self) -> &[i64] {
        &self.hard_sell_caps
    }

    /// How the limits model input stock.
    pub fn stock_model(&self) -> StockModel {
        self.model
    }

    /// The safe unit-price interval of a side (rule 3).
    pub fn price_bounds(&self, side: Side) -> Range {
        match side {
            Side::Buy => self.buy_price,
            Side::Sell => self.sell_price,
        }
    }

    /// The quantity issue range of a side, with `lo >= 1`.
    pub fn quantity_bounds(&self, side: Side) -> Range {
        match side {
            Side::Buy => self.buy_quantity,
            Side::Sell => self.sell_quantity,
        }
    }

    /// Money that may still be committed to buys (rule 4).
    pub fn free_cash(&self) -> f64 {
        self.free_cash
    }

    /// Production cost per unit (`c`).
    pub fn production_cost(&self) -> f64 {
        self.production_cost
    }

    fn window_index(&self, day: i64) -> Option<usize> {
        let i = day.checked_sub(self.first_day)?;
        if i >= 0 && (i as usize) < self.buy_caps.len() {
            Some(i as usize)
        } else {
            None
        }
    }

    /// Largest affordable quantity at unit price `p` (rule 4), `<= 0` when nothing is.
    fn cash_quantity(&self, p: i64, wanted: i64) -> i64 {
        let unit = p as f64 + self.production_cost;
        if wanted as f64 * unit <= self.free_cash {
            return wanted;
        }
        if self.free_cash < 0.0 {
            return 0;
        }
        let mut q = floor_int(self.free_cash / unit).min(wanted);
        while q > 0 && q as f64 * unit > self.free_cash {
            q -= 1;
        }
        q
    }

    /// Rule 6: the safe version of `offer`, or `None` when no safe quantity `>= 1` exists.
    pub fn clip(&self, side: Side, offer: Offer) -> Option<Offer> {
        let i = self.window_index(offer.day)?;
        let (prices, quantities, cap) = match side {
            Side::Buy => (self.buy_price, self.buy_quantity, self.buy_caps[i]),
            Side::Sell => (self.sell_price, self.sell_quantity, self.sell_caps[i]),
        };
        if prices.lo > prices.hi {
            return None;
        }
        let price = offer.price.clamp(prices.lo, prices.hi);
        let mut quantity = offer.quantity.min(quantities.hi).min(cap);
        if side == Side::Buy && quantity >= quantities.lo {
            quantity = self.cash_quantity(price, quantity);
        }
        if quantity < quantities.lo {
            return None;
        }
        Some(Offer::new(quantity, offer.day, price))
    }

    /// [`Limits::clip`], and when that finds no safe quantity on the offer's day, the same offer
    /// moved to the nearest window day that has one (the later day first on ties); `None` only
    /// when no day has room or no price is safe.
    pub fn clip_nearest_day(&self, side: Side, offer: Offer) -> Option<Offer> {
        if let Some(o) = self.clip(side, offer) {
            return Some(o);
        }
        let i = self.window_index(offer.day)? as i64;
        let w = self.buy_caps.len() as i64;
        (1..w).find_map(|k| {
            [i + k, i - k]
                .into_iter()
                .filter(|&j| (0..w).contains(&j))
                .find_map(|j| {
                    self.clip(
                        side,
                        Offer::new(offer.quantity, self.first_day + j, offer.price),
                    )
                })
        })
    }

    /// `true` iff `offer` breaks no rule, i.e. `clip(side, offer) == Some(offer)`.
    pub fn is_safe_to_accept(&self, side: Side, offer: Offer) -> bool {
        !self.violations(side, offer).any()
    }

    /// Which rules `offer` breaks (rule 8); nothing iff it is safe.
    pub fn violations(&self, side: Side, offer: Offer) -> Violations {
        let mut v = Violations::default();
        let (prices, quantities) = (self.price_bounds(side), self.quantity_bounds(side));
        v.price_out_of_range = !prices.contains(offer.price);
        v.quantity_out_of_range = !quantities.contains(offer.quantity);
        let Some(i) = self.window_index(offer.day) else {
            v.day_out_of_window = true;
            return v;
        };
        match side {
            Side::Buy => {
                v.over_buy = offer.quantity > self.buy_caps[i];
                let unit = offer.price as f64 + self.production_cost;
                v.over_spend = offer.quantity as f64 * unit > self.free_cash;
            }
            Side::Sell => {
                v.over_sell = offer.quantity > self.sell_caps[i];
                v.exposure = !v.over_sell && offer.quantity > self.hard_sell_caps[i];
            }
        }
        v
    }

    /// Rule 5: charge `offer` as if it were signed (caps and budget shrink; never below what is
    /// needed to report 0). Offers outside the window or with `quantity <= 0` change nothing.
    pub fn reserve(&mut self, side: Side, offer: Offer) {
        let Some(i) = self.window_index(offer.day) else {
            return;
        };
        let q = offer.quantity.clamp(0, MAX_VALUE);
        if q == 0 {
            return;
        }
        match side {
            Side::Buy => {
                self.arrivals[i] = self.arrivals[i].saturating_add(q).min(MAX_VALUE * 64);
                self.money_left -= q as f64 * offer.price.clamp(-MAX_VALUE, MAX_VALUE) as f64;
            }
            Side::Sell => self.due[i] = self.due[i].saturating_add(q).min(MAX_VALUE * 64),
        }
        self.refresh();
    }

    /// Clips many offers independently against the same limits (no reservation between them).
    /// `offers` is row-major `[m, 4]` of `(quantity, day, price, side)`; writes `(quantity, day,
    /// price)` rows to `out` (`[m, 3]`, zeros where dropped) and `ok[k] = clip is Some`.
    pub fn clip_many(
        &self,
        offers: &[i64],
        out: &mut [i64],
        ok: &mut [bool],
    ) -> Result<(), CoreError> {
        let m = ok.len();
        if offers.len() != 4 * m {
            return Err(CoreError::shape(
                "offers",
                format!("[{m}, 4]"),
                format!("{} elements", offers.len()),
            ));
        }
        if out.len() != 3 * m {
            return Err(CoreError::shape(
                "out",
                format!("[{m}, 3]"),
                format!("{} elements", out.len()),
            ));
        }
        if let Some(k) = offers
            .chunks_exact(4)
            .position(|r| !(0..=1).contains(&r[3]))
        {
            return Err(CoreError::invalid(
                &format!("offers[{k}, 3]"),
                format!(
                    "side must be 0 (buy) or 1 (sell), got {}",
                    offers[4 * k + 3]
                ),
            ));
        }
        // A branch-light version of `clip` (same results, checked by the tests): per-side
        // parameters in tables indexed by the side code, caps interleaved per day, and the rare
        // over-budget case (a division) on the only data-dependent branch.
        let w = self.buy_caps.len();
        let caps: Vec<[i64; 2]> = self
            .buy_caps
            .iter()
            .zip(&self.sell_caps)
            .map(|(&b, &s)| [b, s])
            .collect();
        let p_lo = [self.buy_price.lo, self.sell_price.lo];
        let p_hi = [self.buy_price.hi, self.sell_price.hi];
        let q_lo = [self.buy_quantity.lo, self.sell_quantity.lo];
        let q_hi = [self.buy_quantity.hi, self.sell_quantity.hi];
        for ((row, dst), flag) in offers
            .chunks_exact(4)
            .zip(out.chunks_exact_mut(3))
            .zip(ok.iter_mut())
        {
            let (q, t, p, side) = (row[0], row[1], row[2], (row[3] & 1) as usize);
            let i = t.wrapping_sub(self.first_day);
            let in_window = (i as u64) < w as u64;
            let cap = caps[if in_window { i as usize } else { 0 }][side];
            let (lo, hi) = (p_lo[side], p_hi[side]);
            let price = p.min(hi).max(lo);
            let mut quantity = q.min(q_hi[side]).min(cap);
            // Non-short-circuit `&`: one rarely-taken branch instead of one per side.
            let over_budget = (side == 0)
                & (quantity >= q_lo[side])
                & (quantity as f64 * (price as f64 + self.production_cost) > self.free_cash);
            if over_budget {
                quantity = self.cash_quantity(price, quantity);
            }
            let keep = in_window & (lo <= hi) & (quantity >= q_lo[side]);
            let mask = -i64::from(keep);
            dst[0] = quantity & mask;
            dst[1] = t & mask;
            dst[2] = price & mask;
            *flag = keep;
        }
        Ok(())
    }
}

/// What the round step did with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Kept as given: a safe acceptance, or a proposal that needed no change (code 0).
    Kept,
    /// Replaced by its clipped version: a proposal clipped, or an unsafe acceptance turned into
    /// the clipped counter-offer (code 1).
    Clipped,
    /// No safe version exists: reject / end that negotiation (code 2).
    Dropped,
}

impl Verdict {
    pub fn code(self) -> i64 {
        match self {
            Self::Kept => 0,
            Self::Clipped => 1,
            Self::Dropped => 2,
        }
    }
}

/// One decision of a round: a proposal to clip or a partner's offer to accept-check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundItem {
    pub side: Side,
    pub offer: Offer,
    /// `true`: the agent wants to accept this partner offer; `false`: it proposes it.
    pub accept: bool,
}

/// Rule 7, the per-round L1 step in one call: derive the limits from `state`, reserve `open`
/// (the day's outstanding own offers that stay standing), then for each item in order keep it
/// (acceptance safe / proposal unchanged), clip it or drop it, reserving whatever is kept.
/// Writes one `(verdict, offer)` per item to `out` (the offer is `None` when dropped).
pub fn round_step(
    state: &SafetyState,
    open: &[(Side, Offer)],
    items: &[RoundItem],
    out: &mut [(Verdict, Option<Offer>)],
) -> Result<Limits, CoreError> {
    if out.len() != items.len() {
        return Err(CoreError::shape(
            "out",
            format!("{} rows", items.len()),
            format!("{} rows", out.len()),
        ));
    }
    let mut limits = Limits::derive(state)?;
    for &(side, offer) in open {
        limits.reserve(side, offer);
    }
    for (item, slot) in items.iter().zip(out.iter_mut()) {
        let clipped = limits.clip_nearest_day(item.side, item.offer);
        *slot = match clipped {
            Some(o) if o == item.offer => (Verdict::Kept, Some(o)),
            Some(o) => (Verdict::Clipped, Some(o)),
            None => (Verdict::Dropped, None),
        };
        if let Some(o) = clipped {
            limits.reserve(item.side, o);
        }
    }
    Ok(limits)
}

/// Counts the rules broken by `offers` (rule 8) against the limits of `state`. With `sequential`,
/// each offer is reserved after it is checked (as it was, safe or not), so later offers are
/// judged against what earlier ones claimed; otherwise each is judged alone.
pub fn audit(
    state: &SafetyState,
    offers: &[(Side, Offer)],
    sequential: bool,
) -> Result<ViolationCounts, CoreError> {
    let mut limits = Limits::derive(state)?;
    let mut counts = ViolationCounts::default();
    for &(side, offer) in offers {
        counts.add(limits.violations(side, offer));
        if sequential {
            limits.reserve(side, offer);
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stock::{simulate, ModelDay};
    use proptest::prelude::*;

    /// A plain owned state for tests.
    #[derive(Debug, Clone)]
    struct Owned {
        s: i64,
        n: i64,
        l: i64,
        inv: i64,
        supplies: Vec<i64>,
        sales: Vec<i64>,
        balance: f64,
        payables: f64,
        cost: f64,
        tp_in: f64,
        tp_out: f64,
        bq: Range,
        bp: Range,
        sq: Range,
        sp: Range,
        expected: Vec<i64>,
        model: StockModel,
    }

    impl Owned {
        fn view(&self) -> SafetyState<'_> {
            SafetyState {
                current_step: self.s,
                n_steps: self.n,
                n_lines: self.l,
                inventory_input: self.inv,
                supplies: &self.supplies,
                sales: &self.sales,
                balance: self.balance,
                committed_payables: self.payables,
                production_cost: self.cost,
                trading_price_in: self.tp_in,
                trading_price_out: self.tp_out,
                buy_quantity: self.bq,
                buy_price: self.bp,
                sell_quantity: self.sq,
                sell_price: self.sp,
                expected_supplies: &self.expected,
                stock_model: self.model,
            }
        }
    }

    fn simple() -> Owned {
        Owned {
            s: 5,
            n: 10,
            l: 10,
            inv: 3,
            supplies: vec![4, 0, 6, 0, 0],
            sales: vec![5, 2, 0, 8, 0],
            balance: 1000.0,
            payables: 100.0,
            cost: 2.0,
            tp_in: 10.0,
            tp_out: 20.0,
            bq: Range::new(1, 30),
            bp: Range::new(9, 11),
            sq: Range::new(1, 30),
            sp: Range::new(18, 22),
            expected: Vec::new(),
            model: StockModel::Consumed,
        }
    }

    /// Rule 1 by brute force: greedy earliest-first processing finishes by day N - 1.
    fn buy_feasible(st: &Owned, arrivals: &[i64]) -> bool {
        let mut backlog = st.inv;
        for day in st.s..st.n {
            let i = (day - st.s) as usize;
            backlog += arrivals.get(i).copied().unwrap_or(0);
            backlog = (backlog - st.l).max(0);
        }
        backlog == 0
    }

    /// Rule 2 by simulation: every day's sales produced that day from inputs on hand.
    fn sell_feasible(st: &Owned, due: &[i64]) -> bool {
        let mut stock = st.inv;
        for (i, &d) in due.iter().enumerate() {
            stock += st.supplies[i];
            if d > st.l || d > stock {
                return false;
            }
            stock -= d;
        }
        true
    }

    /// The largest `q` (searched linearly up to `limit`) with `ok(q)` true, given monotonicity.
    fn largest(limit: i64, ok: impl Fn(i64) -> bool) -> i64 {
        (0..=limit).take_while(|&q| ok(q)).last().unwrap_or(0)
    }

    #[test]
    fn caps_match_brute_force_on_a_hand_example() {
        let st = simple();
        let limits = Limits::derive(&st.view()).unwrap();
        // Sells: stock after each day = 3+4-5=2, 2-2=0, 0+6-0=6, 6-8 < 0 (already short on day 8).
        // Day 8 is infeasible, so every day up to it has cap 0; day 9 has min(10, A-B) = -2 -> 0.
        assert_eq!(limits.sell_caps(), &[0, 0, 0, 0, 0]);
        // Buys: slack(d) = 10 (10 - d) - [d = 5] 3 - sum_{t >= d} arr: d=5: 50-3-10 = 37,
        // d=6: 40-6 = 34, d=7: 30-6 = 24, d=8: 20, d=9: 10.
        assert_eq!(limits.buy_caps(), &[37, 34, 24, 20, 10]);
        for (i, &cap) in limits.buy_caps().iter().enumerate() {
            let want = largest(200, |q| {
                let mut arr = st.supplies.clone();
                arr[i] += q;
                buy_feasible(&st, &arr)
            });
            assert_eq!(cap, want, "day index {i}");
        }
        // Prices: buy hi = min(11, floor(max(22, 20) - 2)) = 11; sell lo = max(18, ceil(9 + 2)) = 18.
        assert_eq!(limits.price_bounds(Side::Buy), Range::new(9, 11));
        assert_eq!(limits.price_bounds(Side::Sell), Range::new(18, 22));
        // Cash: 1000 - 100 - 2 * max(10 bought, 15 sold) = 870.
        assert_eq!(limits.free_cash(), 870.0);
    }

    #[test]
    fn sell_caps_on_a_feasible_example() {
        let mut st = simple();
        st.sales = vec![5, 2, 0, 3, 0];
        let limits = Limits::derive(&st.view()).unwrap();
        // A - B per day: 2, 0, 6, 3, 3 -> suffix minima 0, 0, 3, 3, 3; line limits 5, 8, 10, 7, 10.
        assert_eq!(limits.sell_caps(), &[0, 0, 3, 3, 3]);
    }

    #[test]
    fn margins_bound_prices() {
        let mut st = simple();
        st.cost = 15.0;
        let limits = Limits::derive(&st.view()).unwrap();
        // buy hi = min(11, floor(22 - 15)) = 7 < 9: no safe buy price; sell lo = ceil(9 + 15) = 24 > 22.
        assert!(limits.clip(Side::Buy, Offer::new(1, 5, 9)).is_none());
        assert!(limits.clip(Side::Sell, Offer::new(1, 9, 22)).is_none());
    }

    #[test]
    fn cash_limits_buys() {
        let mut st = simple();
        // free cash = 220 - 100 - 2 * max(10, 15) = 90; unit cost 10 + 2 = 12 -> 7 units.
        st.balance = 220.0;
        let limits = Limits::derive(&st.view()).unwrap();
        let clipped = limits.clip(Side::Buy, Offer::new(20, 6, 10)).unwrap();
        assert_eq!(clipped, Offer::new(7, 6, 10));
        assert!(limits.is_safe_to_accept(Side::Buy, clipped));
        assert!(
            limits
                .violations(Side::Buy, Offer::new(8, 6, 10))
                .over_spend
        );
    }

    #[test]
    fn round_step_reserves_in_order() {
        let mut st = simple();
        st.sales = vec![0; 5];
        st.balance = 10_000.0;
        let items = [
            RoundItem {
                side: Side::Sell,
                offer: Offer::new(6, 5, 20),
                accept: true,
            },
            RoundItem {
                side: Side::Sell,
                offer: Offer::new(6, 5, 20),
                accept: false,
            },
            RoundItem {
                side: Side::Sell,
                offer: Offer::new(1, 5, 20),
                accept: false,
            },
        ];
        let mut out = [(Verdict::Dropped, None); 3];
        round_step(&st.view(), &[], &items, &mut out).unwrap();
        // Inputs for today: 3 + 4 = 7: the acceptance of 6 is safe, the next proposal gets 1, the
        // last one has no room today or tomorrow (A - B = 0) and moves to day 7 (6 more arrive).
        assert_eq!(out[0], (Verdict::Kept, Some(Offer::new(6, 5, 20))));
        assert_eq!(out[1], (Verdict::Clipped, Some(Offer::new(1, 5, 20))));
        assert_eq!(out[2], (Verdict::Clipped, Some(Offer::new(1, 7, 20))));
        // An open offer claims the same capacity first: the acceptance becomes a counter-offer
        // for day 7.
        let open = [(Side::Sell, Offer::new(7, 5, 20))];
        round_step(&st.view(), &open, &items[..1], &mut out[..1]).unwrap();
        assert_eq!(out[0], (Verdict::Clipped, Some(Offer::new(6, 7, 20))));
        // Nothing anywhere: dropped.
        let open = [(Side::Sell, Offer::new(13, 7, 20))];
        round_step(&st.view(), &open, &items[..1], &mut out[..1]).unwrap();
        assert_eq!(out[0], (Verdict::Dropped, None));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let mut st = simple();
        st.sales.pop();
        assert!(matches!(
            Limits::derive(&st.view()),
            Err(CoreError::Shape { .. })
        ));
        let mut st = simple();
        st.s = 10;
        assert!(matches!(
            Limits::derive(&st.view()),
            Err(CoreError::InvalidArgument { .. })
        ));
        let mut st = simple();
        st.balance = f64::NAN;
        assert!(matches!(
            Limits::derive(&st.view()),
            Err(CoreError::NonFinite { .. })
        ));
        let mut st = simple();
        st.supplies[1] = -1;
        assert!(matches!(
            Limits::derive(&st.view()),
            Err(CoreError::InvalidArgument { .. })
        ));
        let mut st = simple();
        st.supplies = vec![0; 6];
        st.sales = vec![0; 6];
        assert!(matches!(
            Limits::derive(&st.view()),
            Err(CoreError::Shape { .. })
        ));
        assert!(Side::from_code(2, "side").is_err());
        let limits = Limits::derive(&simple().view()).unwrap();
        let mut out = [0i64; 3];
        let mut ok = [false; 1];
        assert!(limits.clip_many(&[1, 5, 10, 7], &mut out, &mut ok).is_err());
        assert!(limits.clip_many(&[1, 5, 10], &mut out, &mut ok).is_err());
    }

    fn range(
        lo: std::ops::RangeInclusive<i64>,
        width: std::ops::RangeInclusive<i64>,
    ) -> impl Strategy<Value = Range> {
        (lo, width).prop_map(|(lo, w)| Range::new(lo, lo + w))
    }

    prop_compose! {
        fn states()(n in 1i64..60)(
            n in Just(n),
            s in 0..n,
            l in 1i64..15,
            inv in 0i64..40,
            horizon in 0i64..12,
            balance in -200.0f64..3000.0,
            payables in 0.0f64..500.0,
            cost in 0.0f64..12.0,
            tp_in in 1.0f64..30.0,
            tp_out in 1.0f64..40.0,
            bq in range(0..=2, 0..=30),
            bp in range(0..=25, -2..=8),
            sq in range(0..=2, 0..=30),
            sp in range(0..=35, -2..=8),
            seed in any::<u64>(),
            persistent in any::<bool>(),
        ) -> Owned {
            let w = (horizon + 1).min(n - s) as usize;
            let mut x = seed | 1;
            let mut next = move |m: i64| {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                (x % (m as u64 + 1)) as i64
            };
            let supplies = (0..w).map(|_| if next(2) == 0 { next(12) } else { 0 }).collect();
            let sales = (0..w).map(|_| if next(2) == 0 { next(12) } else { 0 }).collect();
            let expected = if next(2) == 0 { (0..w).map(|_| next(6)).collect() } else { Vec::new() };
            let model = if persistent { StockModel::Persistent } else { StockModel::Consumed };
            Owned { s, n, l, inv, supplies, sales, balance, payables, cost, tp_in, tp_out, bq, bp, sq, sp, expected, model }
        }
    }

    fn sides() -> impl Strategy<Value = Side> {
        prop_oneof![Just(Side::Buy), Just(Side::Sell)]
    }

    fn offers() -> impl Strategy<Value = (Side, Offer)> {
        (sides(), -2i64..40, 0i64..70, -3i64..45)
            .prop_map(|(side, q, t, p)| (side, Offer::new(q, t, p)))
    }

    /// Every rule checked from scratch on the *augmented* state (signed + kept offers).
    fn within_everything(st: &Owned, limits: &Limits, side: Side, o: Offer) -> bool {
        if o.day < st.s || o.day >= st.s + st.supplies.len() as i64 {
            return false;
        }
        let i = (o.day - st.s) as usize;
        let prices = limits.price_bounds(side);
        let quantities = limits.quantity_bounds(side);
        let in_bounds =
            prices.contains(o.price) && quantities.contains(o.quantity) && o.quantity >= 1;
        in_bounds
            && match side {
                Side::Buy => {
                    o.quantity <= limits.buy_caps()[i]
                        && o.quantity as f64 * (o.price as f64 + st.cost) <= limits.free_cash()
                }
                Side::Sell => o.quantity <= limits.sell_caps()[i],
            }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn caps_match_brute_force(st in states()) {
            let limits = Limits::derive(&st.view()).unwrap();
            let big = st.l * st.n + st.inv + 10;
            // Sells beyond the units already costed need `c` each from free cash (rule 4).
            let budget = if st.cost > 0.0 {
                let costed = st.supplies.iter().sum::<i64>() - st.sales.iter().sum::<i64>();
                costed.max(0) + (limits.free_cash().max(0.0) / st.cost).floor() as i64
            } else {
                i64::MAX
            };
            if st.model == StockModel::Persistent {
                // Hard sell caps: the largest sale adding no modelled shortfall (crate::stock).
                let short = |due: &[i64]| {
                    let mut out = vec![ModelDay::default(); due.len()];
                    simulate(StockModel::Persistent, st.inv, &st.supplies, due, st.l, &mut out).unwrap();
                    out.iter().map(|d| d.shortfall).sum::<i64>()
                };
                let base = short(&st.sales);
                for i in 0..st.supplies.len() {
                    let want = largest(3 * st.l + 1, |q| {
                        let mut due = st.sales.clone();
                        due[i] += q;
                        short(&due) == base
                    });
                    prop_assert_eq!(limits.hard_sell_caps()[i], want.min(budget), "day index {}", i);
                    // (No claim that sell_caps >= hard caps: expected arrivals can lower a cap,
                    // since a sale then uses arrivals the model would have stocked; docs/l1.md.)
                    if st.expected.is_empty() {
                        prop_assert_eq!(limits.sell_caps()[i], limits.hard_sell_caps()[i]);
                    }
                }
                return Ok(());
            }
            if !st.expected.is_empty() {
                return Ok(());
            }
            for i in 0..st.supplies.len() {
                if buy_feasible(&st, &st.supplies) {
                    let want_buy = largest(big, |q| {
                        let mut arr = st.supplies.clone();
                        arr[i] += q;
                        buy_feasible(&st, &arr)
                    });
                    prop_assert_eq!(limits.buy_caps()[i], want_buy);
                }
                let mut tail_ok = true;
                // Selling more on day e cannot fix or worsen earlier days or other days' line
                // limits: compare with the simulation where those hold.
                let prefix_ok = sell_feasible(&st, &st.sales[..i]);
                let lines_ok = st.sales.iter().enumerate().all(|(t, &d)| t == i || d <= st.l);
                if prefix_ok && lines_ok {
                    let want_sell = largest(big, |q| {
                        let mut due = st.sales.clone();
                        due[i] += q;
                        sell_feasible(&st, &due)
                    });
                    tail_ok = limits.sell_caps()[i] == want_sell.min(budget);
                }
                prop_assert!(tail_ok, "sell cap {} day index {}", limits.sell_caps()[i], i);
            }
        }

        #[test]
        fn clipped_offers_are_within_everything_and_stable((st, (side, o)) in (states(), offers())) {
            let limits = Limits::derive(&st.view()).unwrap();
            let o = Offer::new(o.quantity, st.s + o.day % (st.supplies.len() as i64 + 2) - 1, o.price);
            match limits.clip(side, o) {
                Some(c) => {
                    prop_assert!(within_everything(&st, &limits, side, c));
                    prop_assert!(c.quantity <= o.quantity);
                    prop_assert_eq!(c.day, o.day);
                    prop_assert_eq!(limits.clip(side, c), Some(c));
                    prop_assert!(limits.is_safe_to_accept(side, c));
                    prop_assert_eq!(limits.is_safe_to_accept(side, o), c == o);
                }
                None => prop_assert!(!limits.is_safe_to_accept(side, o)),
            }
            prop_assert_eq!(limits.is_safe_to_accept(side, o), within_everything(&st, &limits, side, o));
        }

        #[test]
        fn reservations_add_up((st, items) in (states(), proptest::collection::vec((offers(), any::<bool>()), 0..30))) {
            let w = st.supplies.len() as i64;
            let items: Vec<RoundItem> = items
                .into_iter()
                .map(|((side, o), accept)| RoundItem {
                    side,
                    offer: Offer::new(o.quantity, st.s + o.day % w, o.price),
                    accept,
                })
                .collect();
            let mut out = vec![(Verdict::Dropped, None); items.len()];
            let start = Limits::derive(&st.view()).unwrap();
            round_step(&st.view(), &[], &items, &mut out).unwrap();
            // Re-derive from a state where every kept offer is signed: the rules must still hold
            // wherever they held before the round.
            let mut supplies = st.supplies.clone();
            let mut sales = st.sales.clone();
            let mut spent = 0.0;
            let consumed = st.model == StockModel::Consumed;
            for (item, (_, kept)) in items.iter().zip(&out) {
                if let Some(o) = kept {
                    // Consumed stock: caps only shrink as offers are reserved. (Persistent buy
                    // caps grow with sales, which raise the day's useful production.)
                    if consumed {
                        prop_assert!(within_everything(&st, &start, item.side, *o));
                    }
                    let i = (o.day - st.s) as usize;
                    match item.side {
                        Side::Buy => {
                            supplies[i] += o.quantity;
                            spent += o.quantity as f64 * (o.price as f64 + st.cost);
                        }
                        Side::Sell => sales[i] += o.quantity,
                    }
                }
            }
            // Cash: with the kept offers signed, free cash is not below where it started (or 0).
            let money: f64 = items.iter().zip(&out).filter_map(|(item, (_, kept))| match (item.side, kept) {
                (Side::Buy, Some(o)) => Some(o.quantity as f64 * o.price as f64),
                _ => None,
            }).sum();
            let after = Owned { supplies: supplies.clone(), sales: sales.clone(), payables: st.payables + money, ..st.clone() };
            let after = Limits::derive(&after.view()).unwrap();
            prop_assert!(after.free_cash() >= start.free_cash().min(0.0) - 1e-6, "{} < {}", after.free_cash(), start.free_cash());
            prop_assert!(spent >= money);
            // Kept buys are not inputs yet (rule 5): the sells must fit the signed (and expected)
            // supplies alone.
            let inputs: Vec<i64> = if st.expected.is_empty() {
                st.supplies.clone()
            } else {
                st.supplies.iter().zip(&st.expected).map(|(a, e)| a + e).collect()
            };
            if consumed {
                if buy_feasible(&st, &st.supplies) {
                    prop_assert!(buy_feasible(&st, &supplies));
                }
                let with_expected = Owned { supplies: inputs.clone(), ..st.clone() };
                if sell_feasible(&with_expected, &st.sales) {
                    prop_assert!(sell_feasible(&with_expected, &sales));
                }
            } else {
                let run = |arr: &[i64], due: &[i64]| {
                    let mut out = vec![ModelDay::default(); due.len()];
                    simulate(StockModel::Persistent, st.inv, arr, due, st.l, &mut out).unwrap();
                    (out.iter().map(|d| d.shortfall).sum::<i64>(), out.last().map_or(st.inv, |d| d.stock_after))
                };
                // No sale adds shortfall.
                prop_assert_eq!(run(&inputs, &sales).0, run(&inputs, &st.sales).0);
            }
            // The verdicts agree with a from-scratch sequential clip.
            let mut limits = start.clone();
            for (item, (verdict, kept)) in items.iter().zip(&out) {
                let c = limits.clip_nearest_day(item.side, item.offer);
                prop_assert_eq!(*kept, c);
                prop_assert_eq!(*verdict == Verdict::Kept, c == Some(item.offer));
                if let Some(c) = c { limits.reserve(item.side, c); }
            }
        }

        #[test]
        fn batched_clip_equals_single((st, offers) in (states(), proptest::collection::vec(offers(), 0..40))) {
            let limits = Limits::derive(&st.view()).unwrap();
            let flat: Vec<i64> = offers.iter().flat_map(|(side, o)| [o.quantity, st.s + o.day % 15, o.price, side.code()]).collect();
            let mut out = vec![0i64; 3 * offers.len()];
            let mut ok = vec![false; offers.len()];
            limits.clip_many(&flat, &mut out, &mut ok).unwrap();
            for (k, row) in flat.chunks_exact(4).enumerate() {
                let side = Side::from_code(row[3], "side").unwrap();
                let want = limits.clip(side, Offer::new(row[0], row[1], row[2]));
                prop_assert_eq!(ok[k], want.is_some());
                if let Some(w) = want {
                    prop_assert_eq!(&out[3 * k..3 * k + 3], &[w.quantity, w.day, w.price]);
                }
            }
        }

        #[test]
        fn audit_counts_match_violations((st, offers) in (states(), proptest::collection::vec(offers(), 0..20)), sequential in any::<bool>()) {
            let counts = audit(&st.view(), &offers, sequential).unwrap();
            let mut limits = Limits::derive(&st.view()).unwrap();
            let mut unsafe_count = 0;
            for &(side, o) in &offers {
                unsafe_count += u64::from(!limits.is_safe_to_accept(side, o));
                if sequential { limits.reserve(side, o); }
            }
            prop_assert_eq!(counts.n_offers, offers.len() as u64);
            prop_assert_eq!(counts.n_unsafe, unsafe_count);
        }
    }
}
