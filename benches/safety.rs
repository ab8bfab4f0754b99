//! Criterion benchmarks of the pure-Rust L1 safety kernels (no Python involved).
//! Run with `make bench` (`cargo bench --no-default-features --bench safety`).
//! - `round_step/<horizon>x<offers>`: the whole per-round step (derive caps for every delivery
//!   day, reserve 5 open offers, keep/clip/drop every offer of the round), per round.
//! - `clip_one`: one offer against derived limits.
//! - `clip_many/<m>`: `m` offers clipped independently; throughput in offers per second.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

use _core::safety::{round_step, Limits, Offer, Range, RoundItem, SafetyState, Side, Verdict};
use _core::stock::StockModel;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: i64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as i64
    }
}

struct Day {
    supplies: Vec<i64>,
    sales: Vec<i64>,
}

fn day(horizon: usize, rng: &mut Rng) -> Day {
    Day {
        supplies: (0..=horizon).map(|_| rng.below(8)).collect(),
        sales: (0..=horizon).map(|_| rng.below(6)).collect(),
    }
}

fn state(d: &Day) -> SafetyState<'_> {
    SafetyState {
        current_step: 10,
        n_steps: 200,
        n_lines: 10,
        inventory_input: 4,
        supplies: &d.supplies,
        sales: &d.sales,
        balance: 5000.0,
        committed_payables: 300.0,
        production_cost: 3.0,
        trading_price_in: 10.0,
        trading_price_out: 22.0,
        buy_quantity: Range::new(1, 30),
        buy_price: Range::new(9, 11),
        sell_quantity: Range::new(1, 30),
        sell_price: Range::new(19, 24),
        expected_supplies: &[],
        stock_model: StockModel::Persistent,
    }
}

fn offers(n: usize, horizon: i64, rng: &mut Rng) -> Vec<(Side, Offer)> {
    (0..n)
        .map(|_| {
            let side = if rng.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let price = if side == Side::Buy { 8 } else { 18 } + rng.below(6);
            (
                side,
                Offer::new(1 + rng.below(8), 10 + rng.below(horizon + 1), price),
            )
        })
        .collect()
}

fn bench_safety(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut group = c.benchmark_group("safety");
    for &(horizon, n) in &[(10usize, 5usize), (10, 30), (40, 5), (40, 30)] {
        let d = day(horizon, &mut rng);
        let open = offers(5, horizon as i64, &mut rng);
        let items: Vec<RoundItem> = offers(n, horizon as i64, &mut rng)
            .into_iter()
            .enumerate()
            .map(|(k, (side, offer))| RoundItem {
                side,
                offer,
                accept: k % 3 == 0,
            })
            .collect();
        let mut out = vec![(Verdict::Dropped, None); n];
        group.bench_function(
            BenchmarkId::new("round_step", format!("{horizon}x{n}")),
            |b| {
                b.iter(|| {
                    let limits = round_step(&state(&d), &open, &items, &mut out).unwrap();
                    black_box((&out, limits));
                })
            },
        );
    }
    let d = day(10, &mut rng);
    let limits = Limits::derive(&state(&d)).unwrap();
    let one = Offer::new(5, 12, 10);
    group.bench_function("clip_one", |b| {
        b.iter(|| black_box(limits.clip(black_box(Side::Buy), black_box(one))))
    });
    for &m in &[256usize, 4096] {
        let flat: Vec<i64> = offers(m, 10, &mut rng)
            .into_iter()
            .flat_map(|(side, o)| [o.quantity, o.day, o.price, side.code()])
            .collect();
        let mut out = vec![0i64; 3 * m];
        let mut ok = vec![false; m];
        group.throughput(Throughput::Elements(m as u64));
        group.bench_with_input(BenchmarkId::new("clip_many", m), &flat, |b, flat| {
            b.iter(|| {
                limits.clip_many(flat, &mut out, &mut ok).unwrap();
                black_box(&out);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_safety);
criterion_main!(benches);
