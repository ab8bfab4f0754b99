//! Criterion benchmarks of the pure-Rust GAE and returns kernels (no Python involved).
//! Run with `make bench` (`cargo bench --no-default-features --bench gae`).
//! Throughput is reported in elements (`T * N`) per second.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

use _core::gae::{
    compute_gae, discounted_returns, Discount, Episodes, GaeOutput, NanPolicy, ValueEstimates,
};

struct Batch {
    rewards: Vec<f32>,
    values: Vec<f32>,
    next_values: Vec<f32>,
    terminated: Vec<bool>,
    truncated: Vec<bool>,
}

/// Deterministic pseudo-random inputs with about 1% terminations and 1% truncations.
fn batch(len: usize) -> Batch {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut floats = |n: usize| (0..n).map(|_| next() - 0.5).collect::<Vec<f32>>();
    let rewards = floats(len);
    let values = floats(len);
    let next_values = floats(len);
    let flags: Vec<f32> = floats(2 * len);
    Batch {
        rewards,
        values,
        next_values,
        terminated: flags[..len].iter().map(|x| *x > 0.49).collect(),
        truncated: flags[len..].iter().map(|x| *x > 0.49).collect(),
    }
}

fn bench_gae(c: &mut Criterion) {
    let mut group = c.benchmark_group("gae");
    for &(t, n) in &[(2048usize, 64usize), (1_000_000, 1)] {
        let b = batch(t * n);
        let mut adv = vec![0.0f32; t * n];
        let mut ret = vec![0.0f32; t * n];
        group.throughput(Throughput::Elements((t * n) as u64));
        group.bench_with_input(
            BenchmarkId::new("compute_gae", format!("{t}x{n}")),
            &b,
            |bench, b| {
                let episodes =
                    Episodes::new(t, n, &b.rewards, &b.terminated, &b.truncated).unwrap();
                let estimates = ValueEstimates {
                    values: &b.values,
                    next_values: &b.next_values,
                };
                let discount = Discount::new(0.99, 0.95).unwrap();
                bench.iter(|| {
                    let out = GaeOutput {
                        advantages: &mut adv,
                        returns: &mut ret,
                    };
                    compute_gae(&episodes, estimates, discount, NanPolicy::Raise, out).unwrap();
                    black_box(&adv);
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("discounted_returns", format!("{t}x{n}")),
            &b,
            |bench, b| {
                let episodes =
                    Episodes::new(t, n, &b.rewards, &b.terminated, &b.truncated).unwrap();
                bench.iter(|| {
                    discounted_returns(
                        &episodes,
                        Some(&b.next_values),
                        0.99,
                        NanPolicy::Raise,
                        &mut ret,
                    )
                    .unwrap();
                    black_box(&ret);
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_gae);
criterion_main!(benches);
