//! `hrl.safety.baseline.PenguinStyleBaseline` (`first_proposals`, `counter_all`) on one call
//! rebuilt from logs, ported rule for rule (see that module's docs for the rules). The port
//! keeps what decides the result besides the rules: the float arithmetic of the needs, the
//! order of the random draws ([`super::rng`]) and the iteration order of Python's sets of
//! partners ([`super::pyset`], from the partners' Python `hash()`).

use super::pyset::PySet;
use super::rng::{NpChoice, PyRandom};
use crate::safety::Range;

/// The baseline's options (`PenguinStyleBaseline.__init__`, as the replay resolves them).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub productivity: f64,
    pub today_share: f64,
    pub quirks: bool,
    pub stock_target: f64,
    /// A future day's buy offers spread `trunc(need / future_buy_divisor)` units (3: a third).
    pub future_buy_divisor: f64,
    /// The same for a future day's sell offers.
    pub future_sell_divisor: f64,
    /// Consumers whose offer got no response get future sell offers instead of an end.
    pub keep_selling: bool,
    /// Future sell offers: each partner its own later day with that day's whole need.
    pub own_sell_days: bool,
}

/// A decision of the baseline towards one partner: accept its offer or propose one; the
/// price is a float, as in Python (a conceding price is not whole).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Accept(i64, i64, f64),
    Offer(i64, i64, f64),
}

/// What the baseline reads of the agent (`LogAgent`): partners are ids into `hashes`.
pub struct View<'a> {
    pub step: i64,
    pub n_steps: i64,
    pub n_lines: i64,
    pub inventory: i64,
    pub suppliers: &'a [usize],
    pub consumers: &'a [usize],
    /// Negotiated supplies and sales signed per day of the window `step ..`.
    pub supplies: &'a [i64],
    pub sales: &'a [i64],
    /// Input issues (buying): quantity and unit-price ranges; output issues (selling).
    pub input_price: Range,
    pub output_price: Range,
    /// Partners whose negotiation still runs, in the dict's order.
    pub negotiators: &'a [usize],
    /// The partners' offers this call answers, in the dict's order: `(partner, (q, t, p))`.
    pub offers: &'a [(usize, (i64, i64, f64))],
    pub hashes: &'a [i64],
}

/// An insertion-ordered map partner -> value (a Python dict; re-assignment keeps the place).
struct Ordered<V>(Vec<(usize, V)>);

impl<V> Ordered<V> {
    fn new() -> Self {
        Self(Vec::new())
    }
    fn insert(&mut self, k: usize, v: V) {
        match self.0.iter_mut().find(|(x, _)| *x == k) {
            Some(slot) => slot.1 = v,
            None => self.0.push((k, v)),
        }
    }
    fn contains(&self, k: usize) -> bool {
        self.0.iter().any(|(x, _)| *x == k)
    }
    fn keys(&self) -> Vec<usize> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
}

/// The baseline running on one call, with its random streams seeded by the call (made on
/// first use: most calls draw nothing).
pub struct Baseline<'a> {
    opts: Options,
    view: &'a View<'a>,
    seed: u32,
    shuffle: Option<PyRandom>,
    choice: Option<NpChoice>,
}

impl<'a> Baseline<'a> {
    pub fn new(opts: Options, view: &'a View<'a>, seed: u32) -> Self {
        Self {
            opts,
            view,
            seed,
            shuffle: None,
            choice: None,
        }
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        let seed = self.seed;
        self.shuffle
            .get_or_insert_with(|| PyRandom::new(seed))
            .shuffle(items);
    }

    fn choice(&mut self, n: u32, size: usize) -> Vec<u32> {
        let seed = self.seed;
        self.choice
            .get_or_insert_with(|| NpChoice::new(seed))
            .choice(n, size)
    }

    fn is_supplier(&self, p: usize) -> bool {
        self.view.suppliers.contains(&p)
    }
    fn is_consumer(&self, p: usize) -> bool {
        self.view.consumers.contains(&p)
    }

    fn at(values: &[i64], step: i64, day: i64) -> i64 {
        let i = day - step;
        if i >= 0 && (i as usize) < values.len() {
            values[i as usize]
        } else {
            0
        }
    }
    fn supplies_at(&self, day: i64) -> i64 {
        Self::at(self.view.supplies, self.view.step, day)
    }
    fn sales_at(&self, day: i64) -> i64 {
        Self::at(self.view.sales, self.view.step, day)
    }

    fn plan(&self) -> f64 {
        self.view.n_lines as f64 * self.opts.productivity
    }

    /// `int(buy_plan - inventory - supplies(day))`.
    fn buy_need(&self, day: i64) -> i64 {
        let plan = self.view.n_lines as f64 * self.opts.stock_target;
        (plan - self.view.inventory as f64 - self.supplies_at(day) as f64).trunc() as i64
    }

    /// `min(n_lines, plan + inventory) - sales(day)`, as a float (before `max(0, .)`).
    fn sell_room(&self, day: i64) -> f64 {
        let ceiling = (self.view.n_lines as f64).min(self.plan() + self.view.inventory as f64);
        ceiling - self.sales_at(day) as f64
    }

    fn sell_need(&self, day: i64) -> i64 {
        let room = self.sell_room(day);
        if room > 0.0 {
            room.trunc() as i64
        } else {
            0
        }
    }

    fn spread(&mut self, total: i64, n: usize) -> Vec<i64> {
        let n_i = n as i64;
        if total < n_i {
            let mut ones: Vec<i64> = (0..n_i).map(|k| i64::from(k >= n_i - total)).collect();
            self.shuffle(&mut ones);
            return ones;
        }
        let mut out = vec![1i64; n];
        if total > n_i {
            for k in self.choice(n as u32, (total - n_i) as usize) {
                out[k as usize] += 1;
            }
        }
        out
    }

    fn today_split(&mut self, mut partners: Vec<usize>, need: i64) -> Vec<(usize, i64)> {
        self.shuffle(&mut partners);
        let k = ((self.opts.today_share * partners.len() as f64).trunc() as usize).max(1);
        partners.truncate(k);
        let q = self.spread(need, partners.len());
        partners.into_iter().zip(q).collect()
    }

    fn spread_today(&mut self, partners: &[usize]) -> Vec<(usize, i64)> {
        let mut quantities: Ordered<i64> = Ordered::new();
        for &p in partners {
            quantities.insert(p, 0);
        }
        let suppliers: Vec<usize> = partners
            .iter()
            .copied()
            .filter(|&p| self.is_supplier(p))
            .collect();
        let consumers: Vec<usize> = partners
            .iter()
            .copied()
            .filter(|&p| !self.is_supplier(p) && self.is_consumer(p))
            .collect();
        let s = self.view.step;
        let (buy, sell) = (self.buy_need(s), self.sell_need(s));
        if !suppliers.is_empty() && buy > 0 {
            for (p, q) in self.today_split(suppliers, buy) {
                quantities.insert(p, q);
            }
        }
        if !consumers.is_empty() && sell > 0 && self.sales_at(s) <= self.view.n_lines {
            for (p, q) in self.today_split(consumers, sell) {
                quantities.insert(p, q);
            }
        }
        quantities.0
    }

    fn future_offers(&mut self, partners: &[usize], buying: bool) -> Vec<(usize, (i64, i64, f64))> {
        if self.opts.own_sell_days && !buying {
            return self.own_day_sell_offers(partners);
        }
        let s = self.view.step;
        let n = partners.len() as f64;
        let (a, b) = ((n * 0.5).trunc() as usize, (n * 0.8).trunc() as usize);
        let groups = [&partners[..a], &partners[a..b], &partners[b..]];
        let mut offers = Vec::new();
        for (ahead, group) in groups.into_iter().enumerate() {
            let day = s + ahead as i64 + 1;
            if day >= self.view.n_steps {
                continue;
            }
            let need = if buying {
                (self.buy_need(day) as f64 / self.opts.future_buy_divisor).trunc() as i64
            } else {
                let tested = if self.opts.quirks {
                    day.min(s + 2)
                } else {
                    day
                };
                if self.sales_at(tested) > self.view.n_lines {
                    continue;
                }
                let room = self.sell_room(day);
                ((if room > 0.0 { room } else { 0.0 }) / self.opts.future_sell_divisor).trunc()
                    as i64
            };
            if need <= 0 || group.is_empty() {
                continue;
            }
            let q = self.spread(need, group.len());
            for (&p, q) in group.iter().zip(q) {
                if q > 0 {
                    offers.push((p, (q, day, self.best_price(p))));
                }
            }
        }
        offers
    }

    /// `own_day_sell_offers`: each partner in order its own later day with a sell need (up to
    /// the window's last day), offered that day's whole need at the best price.
    fn own_day_sell_offers(&self, partners: &[usize]) -> Vec<(usize, (i64, i64, f64))> {
        let s = self.view.step;
        let last = (s + self.view.sales.len() as i64 - 1).min(self.view.n_steps - 1);
        let mut offers = Vec::new();
        let mut day = s + 1;
        for &p in partners {
            while day <= last && self.sell_need(day) <= 0 {
                day += 1;
            }
            if day > last {
                break;
            }
            offers.push((p, (self.sell_need(day), day, self.best_price(p))));
            day += 1;
        }
        offers
    }

    fn price_range(&self, p: usize) -> Range {
        let input = if self.view.negotiators.contains(&p) {
            self.is_supplier(p)
        } else {
            !self.is_consumer(p)
        };
        if input {
            self.view.input_price
        } else {
            self.view.output_price
        }
    }

    fn best_price(&self, p: usize) -> f64 {
        let r = self.price_range(p);
        (if self.is_supplier(p) { r.lo } else { r.hi }) as f64
    }

    fn conceding_price(&self, p: usize) -> f64 {
        let r = self.price_range(p);
        let (lo, hi) = (r.lo as f64, r.hi as f64);
        if self.is_consumer(p) {
            if lo > hi * 0.7 {
                lo
            } else {
                hi * 0.7
            }
        } else if hi < lo * 1.2 {
            hi
        } else {
            lo * 1.2
        }
    }

    fn acceptable_price(&self, p: usize, price: f64) -> bool {
        let r = self.price_range(p);
        if self.is_consumer(p) {
            price >= r.lo as f64
        } else {
            self.is_supplier(p) && price <= r.hi as f64
        }
    }

    /// `first_proposals`: opening offers per partner.
    pub fn first_proposals(&mut self) -> Vec<(usize, Decision)> {
        let mut out: Ordered<Decision> = Ordered::new();
        self.offer_today_or_later(self.view.negotiators, false, &mut out);
        out.0
    }

    /// Today's needs spread over `partners` (at the best price, or the conceding one), the
    /// partners left out offered future days (the shared tail of `first_proposals` and of
    /// `counter_all` without an acceptable subset).
    fn offer_today_or_later(
        &mut self,
        partners: &[usize],
        conceding: bool,
        out: &mut Ordered<Decision>,
    ) {
        let s = self.view.step;
        let (mut later_s, mut later_c) = (Vec::new(), Vec::new());
        for (p, q) in self.spread_today(partners) {
            if q > 0 {
                let price = if conceding {
                    self.conceding_price(p)
                } else {
                    self.best_price(p)
                };
                out.insert(p, Decision::Offer(q, s, price));
            } else if self.is_supplier(p) {
                later_s.push(p);
            } else if self.is_consumer(p) {
                later_c.push(p);
            }
        }
        self.offer_later(&later_s, &later_c, out);
    }

    /// Future offers to `suppliers` (buying), then to `consumers` (selling).
    fn offer_later(
        &mut self,
        suppliers: &[usize],
        consumers: &[usize],
        out: &mut Ordered<Decision>,
    ) {
        for (partners, buying) in [(suppliers, true), (consumers, false)] {
            for (p, (q, t, price)) in self.future_offers(partners, buying) {
                out.insert(p, Decision::Offer(q, t, price));
            }
        }
    }

    fn sells_today(&self) -> bool {
        let open = self.sales_at(self.view.step) <= self.view.n_lines;
        if self.opts.quirks {
            self.sales_at(i64::from(open)) != 0
        } else {
            open
        }
    }

    fn offer_of(&self, p: usize) -> Option<(i64, i64, f64)> {
        self.view
            .offers
            .iter()
            .find(|(x, _)| *x == p)
            .map(|(_, o)| *o)
    }

    /// `counter_all`: responses per partner (partners missing see their negotiation end).
    pub fn counter_all(&mut self) -> Vec<(usize, Decision)> {
        let view = self.view;
        let s = view.step;
        let hashes = view.hashes;
        let mut responses: Ordered<Decision> = Ordered::new();
        for everyone in [view.suppliers, view.consumers] {
            if everyone.is_empty() {
                continue;
            }
            let needs = if self.is_supplier(everyone[0]) {
                self.buy_need(s)
            } else if self.sells_today() {
                self.sell_need(s)
            } else {
                0
            };
            let partners = PySet::from_adds(
                hashes,
                everyone
                    .iter()
                    .copied()
                    .filter(|&p| self.offer_of(p).is_some()),
            );
            let mut today: Ordered<(i64, i64, f64)> = Ordered::new();
            let mut later: Ordered<(i64, i64, f64)> = Ordered::new();
            for p in partners.items() {
                let Some(offer) = self.offer_of(p) else {
                    continue;
                };
                if !self.acceptable_price(p, offer.2) {
                    continue;
                }
                if offer.1 == s {
                    today.insert(p, offer);
                } else {
                    later.insert(p, offer);
                }
            }
            let today_partners = PySet::from_adds(
                hashes,
                partners.items().into_iter().filter(|&p| today.contains(p)),
            );
            let mut taken: Vec<(i64, i64)> = Vec::new();
            for &(p, offer) in &later.0 {
                let day = offer.1;
                let need = if self.is_supplier(p) {
                    self.buy_need(day)
                } else {
                    self.sell_need(day)
                };
                let already = taken.iter().find(|(d, _)| *d == day).map_or(0, |(_, q)| *q);
                if offer.0 + already <= need {
                    responses.insert(p, Decision::Accept(offer.0, offer.1, offer.2));
                    match taken.iter_mut().find(|(d, _)| *d == day) {
                        Some(slot) => slot.1 += offer.0,
                        None => taken.push((day, offer.0)),
                    }
                }
            }
            let threshold = if s == 0 {
                1.0
            } else {
                0.1 * view.n_lines as f64
            };
            let chosen = choose_subset(&today_partners.items(), &today, needs, threshold);
            if let (Some(chosen), true) = (chosen, needs > 0) {
                for &p in &chosen {
                    let (q, t, price) = today
                        .0
                        .iter()
                        .find(|(x, _)| *x == p)
                        .map(|(_, o)| *o)
                        .unwrap_or_default();
                    responses.insert(p, Decision::Accept(q, t, price));
                }
                let left = PySet::copy(&today_partners.difference_seq(&chosen));
                let answered = PySet::from_dict_keys(hashes, &responses.keys());
                let rest = left.minus(&answered).items();
                let suppliers: Vec<usize> = rest
                    .iter()
                    .copied()
                    .filter(|&p| self.is_supplier(p))
                    .collect();
                let consumers: Vec<usize> = rest
                    .iter()
                    .copied()
                    .filter(|&p| self.is_consumer(p))
                    .collect();
                self.offer_later(&suppliers, &consumers, &mut responses);
                continue;
            }
            let waiting = PySet::from_adds(
                hashes,
                everyone
                    .iter()
                    .copied()
                    .filter(|&p| !responses.contains(p) && view.negotiators.contains(&p)),
            );
            self.offer_today_or_later(&waiting.items(), true, &mut responses);
        }
        if self.opts.keep_selling {
            let unanswered: Vec<usize> = view
                .offers
                .iter()
                .map(|&(p, _)| p)
                .filter(|&p| {
                    !responses.contains(p) && self.is_consumer(p) && view.negotiators.contains(&p)
                })
                .collect();
            for (p, (q, t, price)) in self.future_offers(&unanswered, false) {
                responses.insert(p, Decision::Offer(q, t, price));
            }
        }
        responses.0
    }
}

/// `_choose_subset`: among the subsets of `partners` (Python's `combinations` order, by size),
/// the first closest at-or-above `needs` if within `threshold`, else the first closest below
/// (and, as in PenguinAgent, the full set when no subset was found); `None` when that is empty.
fn choose_subset(
    partners: &[usize],
    today: &Ordered<(i64, i64, f64)>,
    needs: i64,
    threshold: f64,
) -> Option<Vec<usize>> {
    let q: Vec<i64> = partners
        .iter()
        .map(|&p| {
            today
                .0
                .iter()
                .find(|(x, _)| *x == p)
                .map_or(0, |(_, o)| o.0)
        })
        .collect();
    let n = partners.len();
    let (mut above, mut above_diff): (Option<Vec<usize>>, f64) = (None, f64::INFINITY);
    let (mut below, mut below_diff): (Option<Vec<usize>>, f64) = (None, f64::INFINITY);
    let mut idx: Vec<usize> = Vec::with_capacity(n);
    for r in 0..=n {
        // combinations(range(n), r) in lexicographic order.
        idx.clear();
        idx.extend(0..r);
        loop {
            let offered: i64 = idx.iter().map(|&i| q[i]).sum();
            let diff = (offered - needs).abs() as f64;
            if offered >= needs {
                if diff < above_diff && needs > 0 {
                    above = Some(idx.clone());
                    above_diff = diff;
                }
            } else if diff < below_diff && offered > 0 {
                below = Some(idx.clone());
                below_diff = diff;
            }
            // Next combination.
            let mut i = r;
            let advanced = loop {
                if i == 0 {
                    break false;
                }
                i -= 1;
                if idx[i] != i + n - r {
                    idx[i] += 1;
                    for j in i + 1..r {
                        idx[j] = idx[j - 1] + 1;
                    }
                    break true;
                }
            };
            if !advanced {
                break;
            }
        }
    }
    let full: Vec<usize> = (0..n).collect();
    let pick = |found: Option<Vec<usize>>| found.unwrap_or_else(|| full.clone());
    let above = pick(above);
    if above_diff <= threshold && !above.is_empty() {
        return Some(above.into_iter().map(|i| partners[i]).collect());
    }
    let below = pick(below);
    if !below.is_empty() {
        return Some(below.into_iter().map(|i| partners[i]).collect());
    }
    None
}
