//! GAE(lambda) and discounted returns over time-major `[T, N]` slices (row `t`, column `n`,
//! flat index `t * N + n`; `T` steps of `N` parallel environments).
//!
//! Episode semantics:
//! - `terminated[t]`: the episode ended at step `t` by the rules of the game; nothing follows, the
//!   value after it is 0 and `next_values[t]` is ignored (a NaN there is harmless).
//! - `truncated[t]`: the trace was cut at step `t` (time limit, end of a rollout) but the episode
//!   would have gone on: bootstrap from `next_values[t]`.
//! - `terminated | truncated` cuts the trace: step `t` does not look at step `t + 1`.
//! - The last row `t = T - 1` is cut as well: it bootstraps unless terminated.
//!
//! GAE (Schulman et al. 2016):
//! ```text
//! delta_t = r_t + gamma * (terminated_t ? 0 : next_values_t) - values_t
//! A_t     = delta_t + gamma * lam * (cut_t ? 0 : A_{t+1})
//! R_t     = A_t + values_t                       (the lambda-return, the value target)
//! ```
//! Discounted returns with optional bootstrap values `b` (0 where none are given):
//! ```text
//! G_t = r_t + gamma * (terminated_t ? 0 : cut_t ? b_t : G_{t+1})
//! ```
//! Both are the backward linear recurrence `x_t = e_t + c_t * x_{t+1}`; [`scan_backward`] runs it
//! in cache-sized chunks: coefficients for a chunk are computed in a vectorisable pass, then the
//! scan runs across columns (vectorised over `N`) or, for a single column, in blocks of four steps
//! so that the loop-carried dependency is one multiply-add per four elements.

use crate::error::CoreError;

/// Time-major `[n_steps, n_envs]` rewards and episode flags, all of length `n_steps * n_envs`.
#[derive(Debug, Clone, Copy)]
pub struct Episodes<'a> {
    pub n_steps: usize,
    pub n_envs: usize,
    pub rewards: &'a [f32],
    pub terminated: &'a [bool],
    pub truncated: &'a [bool],
}

/// Value estimates for GAE: `values[t]` of the observation at step `t`, `next_values[t]` of the
/// observation that followed step `t` (both `[T, N]`).
#[derive(Debug, Clone, Copy)]
pub struct ValueEstimates<'a> {
    pub values: &'a [f32],
    pub next_values: &'a [f32],
}

/// Discount factor `gamma` and GAE's `lam`, both in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Discount {
    pub gamma: f32,
    pub lam: f32,
}

/// What to do when an input that is used holds NaN or infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NanPolicy {
    /// Return [`CoreError::NonFinite`] naming the first offending argument and index.
    Raise,
    /// Skip the check; non-finite inputs give non-finite outputs.
    Propagate,
}

/// Output buffers of [`compute_gae`], each `[T, N]`.
#[derive(Debug)]
pub struct GaeOutput<'a> {
    pub advantages: &'a mut [f32],
    pub returns: &'a mut [f32],
}

/// Elements per chunk of the coefficient buffers (16 KiB each: stays in L1/L2).
const CHUNK_ELEMS: usize = 4096;

impl<'a> Episodes<'a> {
    /// Checks that every slice holds `n_steps * n_envs` elements and that `n_envs >= 1`.
    pub fn new(
        n_steps: usize,
        n_envs: usize,
        rewards: &'a [f32],
        terminated: &'a [bool],
        truncated: &'a [bool],
    ) -> Result<Self, CoreError> {
        if n_envs == 0 {
            return Err(CoreError::shape("rewards", "[T, N] with N >= 1", "N = 0"));
        }
        let episodes = Self {
            n_steps,
            n_envs,
            rewards,
            terminated,
            truncated,
        };
        episodes.check_len("rewards", rewards.len())?;
        episodes.check_len("terminated", terminated.len())?;
        episodes.check_len("truncated", truncated.len())?;
        Ok(episodes)
    }

    fn len(&self) -> usize {
        self.n_steps * self.n_envs
    }

    fn check_len(&self, arg: &str, len: usize) -> Result<(), CoreError> {
        if len == self.len() {
            Ok(())
        } else {
            Err(CoreError::shape(
                arg,
                format!(
                    "[{}, {}] ({} elements)",
                    self.n_steps,
                    self.n_envs,
                    self.len()
                ),
                format!("{len} elements"),
            ))
        }
    }

    fn index(&self, flat: usize) -> Vec<usize> {
        vec![flat / self.n_envs, flat % self.n_envs]
    }
}

impl Discount {
    /// Checks that `gamma` and `lam` are finite and inside `[0, 1]`.
    pub fn new(gamma: f32, lam: f32) -> Result<Self, CoreError> {
        for (arg, x) in [("gamma", gamma), ("lam", lam)] {
            if !(0.0..=1.0).contains(&x) {
                return Err(CoreError::invalid(
                    arg,
                    format!("must be in [0, 1], got {x}"),
                ));
            }
        }
        Ok(Self { gamma, lam })
    }
}

/// GAE(lambda) advantages and lambda-returns; see the module docs for the formulas.
///
/// Writes `out.advantages` and `out.returns` (`[T, N]` each). With [`NanPolicy::Raise`], a NaN or
/// infinity in a used input is reported as [`CoreError::NonFinite`] with its `(t, n)` index.
pub fn compute_gae(
    episodes: &Episodes,
    estimates: ValueEstimates,
    discount: Discount,
    nan_policy: NanPolicy,
    out: GaeOutput,
) -> Result<(), CoreError> {
    episodes.check_len("values", estimates.values.len())?;
    episodes.check_len("next_values", estimates.next_values.len())?;
    episodes.check_len("advantages", out.advantages.len())?;
    episodes.check_len("returns", out.returns.len())?;
    let coefficients = GaeCoefficients {
        episodes,
        estimates,
        gamma: discount.gamma,
        gamma_lam: discount.gamma * discount.lam,
    };
    let returns = out.returns;
    let mut saw_non_finite = false;
    scan_backward(&coefficients, episodes, out.advantages, |lo, advantages| {
        let target = &mut returns[lo..lo + advantages.len()];
        let values = &estimates.values[lo..lo + advantages.len()];
        for ((r, a), v) in target.iter_mut().zip(advantages).zip(values) {
            *r = a + v;
        }
        if nan_policy == NanPolicy::Raise {
            saw_non_finite |= any_non_finite(target);
        }
    });
    if saw_non_finite {
        let next_values_used = |flat: usize| !episodes.terminated[flat];
        return Err(
            locate_non_finite(episodes, "rewards", episodes.rewards, &|_| true)
                .or_else(|| locate_non_finite(episodes, "values", estimates.values, &|_| true))
                .or_else(|| {
                    locate_non_finite(
                        episodes,
                        "next_values",
                        estimates.next_values,
                        &next_values_used,
                    )
                })
                .unwrap_or_else(|| overflow_error(episodes, "returns", returns)),
        );
    }
    Ok(())
}

/// Discounted returns `G_t` (see the module docs), bootstrapping at cuts from `bootstrap`
/// (`[T, N]`; `None` means zeros), written to `out` (`[T, N]`).
pub fn discounted_returns(
    episodes: &Episodes,
    bootstrap: Option<&[f32]>,
    gamma: f32,
    nan_policy: NanPolicy,
    out: &mut [f32],
) -> Result<(), CoreError> {
    Discount::new(gamma, 0.0)?;
    if let Some(b) = bootstrap {
        episodes.check_len("bootstrap", b.len())?;
    }
    episodes.check_len("returns", out.len())?;
    let coefficients = ReturnCoefficients {
        episodes,
        bootstrap,
        gamma,
    };
    let mut saw_non_finite = false;
    scan_backward(&coefficients, episodes, out, |_, chunk| {
        if nan_policy == NanPolicy::Raise {
            saw_non_finite |= any_non_finite(chunk);
        }
    });
    if saw_non_finite {
        let bootstrap_used = |flat: usize| {
            let last_row = flat / episodes.n_envs + 1 == episodes.n_steps;
            !episodes.terminated[flat] && (last_row || episodes.truncated[flat])
        };
        let in_bootstrap =
            bootstrap.and_then(|b| locate_non_finite(episodes, "bootstrap", b, &bootstrap_used));
        return Err(
            locate_non_finite(episodes, "rewards", episodes.rewards, &|_| true)
                .or(in_bootstrap)
                .unwrap_or_else(|| overflow_error(episodes, "returns", out)),
        );
    }
    Ok(())
}

/// Coefficients `e`, `c` of the recurrence `x_t = e_t + c_t * x_{t+1}` for the flat range
/// `lo .. lo + e.len()` (whole rows).
trait Recurrence {
    fn coefficients(&self, lo: usize, e: &mut [f32], c: &mut [f32]);
}

struct GaeCoefficients<'a> {
    episodes: &'a Episodes<'a>,
    estimates: ValueEstimates<'a>,
    gamma: f32,
    gamma_lam: f32,
}

impl Recurrence for GaeCoefficients<'_> {
    #[inline(always)]
    fn coefficients(&self, lo: usize, e: &mut [f32], c: &mut [f32]) {
        let hi = lo + e.len();
        let ep = self.episodes;
        let (r, v, nv) = (
            &ep.rewards[lo..hi],
            &self.estimates.values[lo..hi],
            &self.estimates.next_values[lo..hi],
        );
        let (term, trunc) = (&ep.terminated[lo..hi], &ep.truncated[lo..hi]);
        let c = &mut c[..e.len()];
        for k in 0..e.len() {
            let next = keep_unless(term[k], nv[k]);
            e[k] = r[k] + self.gamma * next - v[k];
            c[k] = keep_unless(term[k] | trunc[k], self.gamma_lam);
        }
    }
}

/// `x`, or `0.0` when `flag` is set, by masking bits: no branch and no multiply, so the loops
/// vectorise and a NaN in an ignored input stays ignored (NaN * 0 would be NaN).
#[inline(always)]
fn keep_unless(flag: bool, x: f32) -> f32 {
    f32::from_bits(x.to_bits() & u32::from(flag).wrapping_sub(1))
}

struct ReturnCoefficients<'a> {
    episodes: &'a Episodes<'a>,
    bootstrap: Option<&'a [f32]>,
    gamma: f32,
}

impl Recurrence for ReturnCoefficients<'_> {
    #[inline(always)]
    fn coefficients(&self, lo: usize, e: &mut [f32], c: &mut [f32]) {
        let hi = lo + e.len();
        let ep = self.episodes;
        let (r, term, trunc) = (
            &ep.rewards[lo..hi],
            &ep.terminated[lo..hi],
            &ep.truncated[lo..hi],
        );
        let c = &mut c[..e.len()];
        match self.bootstrap {
            Some(b) => {
                let b = &b[lo..hi];
                for k in 0..e.len() {
                    let bootstrapped = trunc[k] & !term[k];
                    e[k] = r[k] + keep_unless(!bootstrapped, self.gamma * b[k]);
                    c[k] = keep_unless(term[k] | trunc[k], self.gamma);
                }
            }
            None => {
                for k in 0..e.len() {
                    e[k] = r[k];
                    c[k] = keep_unless(term[k] | trunc[k], self.gamma);
                }
            }
        }
        // The last row is always a cut: bootstrap unless terminated.
        if hi == ep.len() {
            for k in (ep.len() - ep.n_envs).max(lo)..hi {
                if !(ep.terminated[k] | ep.truncated[k]) {
                    c[k - lo] = 0.0;
                    e[k - lo] += self.bootstrap.map_or(0.0, |b| self.gamma * b[k]);
                }
            }
        }
    }
}

/// Runs `x_t = e_t + c_t * x_{t+1}` (`x_T = 0`) backwards over all rows into `out`, a chunk of
/// whole rows at a time; `after_chunk(lo, out_chunk)` sees each finished chunk while it is hot.
/// On x86-64 CPUs with AVX2 (checked at run time) the same code is compiled for 8-lane vectors.
fn scan_backward<R: Recurrence>(
    recurrence: &R,
    episodes: &Episodes,
    out: &mut [f32],
    after_chunk: impl FnMut(usize, &[f32]),
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only feature `scan_backward_avx2` enables.
        return unsafe { scan_backward_avx2(recurrence, episodes, out, after_chunk) };
    }
    scan_backward_portable(recurrence, episodes, out, after_chunk)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_backward_avx2<R: Recurrence>(
    recurrence: &R,
    episodes: &Episodes,
    out: &mut [f32],
    after_chunk: impl FnMut(usize, &[f32]),
) {
    scan_backward_portable(recurrence, episodes, out, after_chunk)
}

#[inline(always)]
fn scan_backward_portable<R: Recurrence>(
    recurrence: &R,
    episodes: &Episodes,
    out: &mut [f32],
    mut after_chunk: impl FnMut(usize, &[f32]),
) {
    let n_envs = episodes.n_envs;
    let rows_per_chunk = (CHUNK_ELEMS / n_envs).max(1);
    let buffer_len = rows_per_chunk * n_envs;
    let mut e = vec![0.0f32; buffer_len];
    let mut c = vec![0.0f32; buffer_len];
    let mut carry = vec![0.0f32; n_envs];
    let mut hi_row = episodes.n_steps;
    while hi_row > 0 {
        let lo_row = hi_row.saturating_sub(rows_per_chunk);
        let (lo, hi) = (lo_row * n_envs, hi_row * n_envs);
        let (e, c) = (&mut e[..hi - lo], &mut c[..hi - lo]);
        recurrence.coefficients(lo, e, c);
        let out_chunk = &mut out[lo..hi];
        if n_envs == 1 {
            carry[0] = scan_single_column(e, c, carry[0], out_chunk);
        } else {
            scan_columns(e, c, &mut carry, out_chunk);
        }
        after_chunk(lo, out_chunk);
        hi_row = lo_row;
    }
}

/// One row at a time, vectorised across the `N = carry.len()` columns.
#[inline(always)]
fn scan_columns(e: &[f32], c: &[f32], carry: &mut [f32], out: &mut [f32]) {
    let n = carry.len();
    let rows = e
        .chunks_exact(n)
        .zip(c.chunks_exact(n))
        .zip(out.chunks_exact_mut(n));
    for ((e_row, c_row), out_row) in rows.rev() {
        for (((x, o), ek), ck) in carry.iter_mut().zip(out_row).zip(e_row).zip(c_row) {
            *x = ek + ck * *x;
            *o = *x;
        }
    }
}

/// A single column in blocks of four steps: within a block
/// `x_k = d_k + p_k * x_next` with `d`, `p` computed off the dependency chain, so the
/// loop-carried chain is one multiply-add per block. Returns the carry `x_0`.
#[inline(always)]
fn scan_single_column(e: &[f32], c: &[f32], mut x: f32, out: &mut [f32]) -> f32 {
    let blocks = e
        .rchunks_exact(4)
        .zip(c.rchunks_exact(4))
        .zip(out.rchunks_exact_mut(4));
    for ((eb, cb), ob) in blocks {
        let (d3, p3) = (eb[3], cb[3]);
        let (d2, p2) = (eb[2] + cb[2] * d3, cb[2] * p3);
        let (d1, p1) = (eb[1] + cb[1] * d2, cb[1] * p2);
        let (d0, p0) = (eb[0] + cb[0] * d1, cb[0] * p1);
        ob[3] = d3 + p3 * x;
        ob[2] = d2 + p2 * x;
        ob[1] = d1 + p1 * x;
        x = d0 + p0 * x;
        ob[0] = x;
    }
    let head = e.len() % 4;
    for k in (0..head).rev() {
        x = e[k] + c[k] * x;
        out[k] = x;
    }
    x
}

/// True when any element is NaN or +-inf (all exponent bits set); branch-free so it vectorises.
#[inline(always)]
fn any_non_finite(xs: &[f32]) -> bool {
    const EXPONENT: u32 = 0x7f80_0000;
    xs.iter().fold(0u32, |acc, x| {
        acc | u32::from(x.to_bits() & EXPONENT == EXPONENT)
    }) != 0
}

/// The first non-finite element of `xs` at a position where `used(flat)` holds, as an error.
fn locate_non_finite(
    episodes: &Episodes,
    arg: &str,
    xs: &[f32],
    used: &dyn Fn(usize) -> bool,
) -> Option<CoreError> {
    xs.iter()
        .enumerate()
        .find(|(flat, x)| !x.is_finite() && used(*flat))
        .map(|(flat, x)| CoreError::NonFinite {
            arg: arg.to_owned(),
            index: episodes.index(flat),
            value: f64::from(*x),
        })
}

/// All inputs were finite but an output was not: the recurrence overflowed `f32`.
fn overflow_error(episodes: &Episodes, arg: &str, out: &[f32]) -> CoreError {
    locate_non_finite(episodes, arg, out, &|_| true).unwrap_or_else(|| {
        CoreError::invalid(arg, "non-finite output could not be located".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward f64 loop, the in-crate oracle (Python has its own in `_reference.py`).
    fn naive_gae(
        ep: &Episodes,
        v: &[f32],
        nv: &[f32],
        gamma: f64,
        lam: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let (t_len, n, r, term, trunc) = (
            ep.n_steps,
            ep.n_envs,
            ep.rewards,
            ep.terminated,
            ep.truncated,
        );
        let mut adv = vec![0.0f64; t_len * n];
        // Scale of the sums behind each advantage, sum_k prod(c) |delta_k|: f32 rounding error
        // grows with it, not with |A_t| (which cancellation can make small).
        let mut scale = vec![0.0f64; t_len * n];
        for j in 0..n {
            let (mut last, mut last_scale) = (0.0f64, 0.0f64);
            for t in (0..t_len).rev() {
                let i = t * n + j;
                let next = if term[i] { 0.0 } else { f64::from(nv[i]) };
                let delta = f64::from(r[i]) + gamma * next - f64::from(v[i]);
                let keep = if term[i] || trunc[i] { 0.0 } else { 1.0 };
                last = delta + gamma * lam * keep * last;
                last_scale = delta.abs() + f64::from(v[i]).abs() + gamma * lam * keep * last_scale;
                adv[i] = last;
                scale[i] = last_scale;
            }
        }
        (adv, scale)
    }

    struct Rng(u64);
    impl Rng {
        fn next_f32(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 40) as f32 / (1u64 << 24) as f32
        }
        fn vec(&mut self, len: usize) -> Vec<f32> {
            (0..len).map(|_| self.next_f32() * 2.0 - 1.0).collect()
        }
        fn flags(&mut self, len: usize, density: f32) -> Vec<bool> {
            (0..len).map(|_| self.next_f32() < density).collect()
        }
    }

    fn run_gae(
        ep: &Episodes,
        v: &[f32],
        nv: &[f32],
        d: Discount,
    ) -> Result<(Vec<f32>, Vec<f32>), CoreError> {
        let mut adv = vec![0.0; ep.len()];
        let mut ret = vec![0.0; ep.len()];
        compute_gae(
            ep,
            ValueEstimates {
                values: v,
                next_values: nv,
            },
            d,
            NanPolicy::Raise,
            GaeOutput {
                advantages: &mut adv,
                returns: &mut ret,
            },
        )?;
        Ok((adv, ret))
    }

    #[test]
    fn matches_naive_loop_over_grid() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for &t_len in &[1usize, 3, 5, 200, 5000] {
            for &n in &[1usize, 7] {
                for &density in &[0.0f32, 0.1, 1.0] {
                    for &(gamma, lam) in
                        &[(0.0, 0.0), (0.5, 0.95), (0.95, 1.0), (1.0, 1.0), (1.0, 0.5)]
                    {
                        let len = t_len * n;
                        let (r, v, nv) = (rng.vec(len), rng.vec(len), rng.vec(len));
                        let (term, trunc) = (rng.flags(len, density), rng.flags(len, density));
                        let ep = Episodes::new(t_len, n, &r, &term, &trunc).unwrap();
                        let (adv, ret) =
                            run_gae(&ep, &v, &nv, Discount::new(gamma, lam).unwrap()).unwrap();
                        let (want, scale) =
                            naive_gae(&ep, &v, &nv, f64::from(gamma), f64::from(lam));
                        for i in 0..len {
                            let tol = 1e-6 * (1.0 + scale[i]);
                            assert!(
                                (f64::from(adv[i]) - want[i]).abs() <= tol,
                                "adv {i}: {} vs {}",
                                adv[i],
                                want[i]
                            );
                            let want_ret = want[i] + f64::from(v[i]);
                            assert!((f64::from(ret[i]) - want_ret).abs() <= tol, "ret {i}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn constant_value_function_and_unit_rewards() {
        // V = 1 everywhere, r = 1, gamma = 0.5, no cuts but the end: delta = 1 + 0.5 - 1 = 0.5 and
        // A_t = 0.5 * sum_{k < T - t} (gamma * lam)^k.
        let t_len = 6;
        let r = vec![1.0f32; t_len];
        let v = vec![1.0f32; t_len];
        let flags = vec![false; t_len];
        let ep = Episodes::new(t_len, 1, &r, &flags, &flags).unwrap();
        let (adv, _) = run_gae(&ep, &v, &v, Discount::new(0.5, 0.5).unwrap()).unwrap();
        for (t, a) in adv.iter().enumerate() {
            let want: f32 = (0..t_len - t).map(|k| 0.5 * 0.25f32.powi(k as i32)).sum();
            assert!((a - want).abs() < 1e-6, "t={t}: {a} vs {want}");
        }
    }

    #[test]
    fn truncation_bootstraps_and_termination_does_not() {
        let r = [0.0f32; 2];
        let v = [0.0f32; 2];
        let nv = [10.0f32; 2];
        let term = [true, false];
        let trunc = [false, true];
        let ep = Episodes::new(1, 2, &r, &term, &trunc).unwrap();
        let (adv, _) = run_gae(&ep, &v, &nv, Discount::new(0.9, 1.0).unwrap()).unwrap();
        assert_eq!(adv[0], 0.0);
        assert!((adv[1] - 9.0).abs() < 1e-6);
        let mut g = [0.0f32; 2];
        discounted_returns(&ep, Some(&nv), 0.9, NanPolicy::Raise, &mut g).unwrap();
        assert_eq!(g[0], 0.0);
        assert!((g[1] - 9.0).abs() < 1e-6);
    }

    #[test]
    fn lambda_one_equals_monte_carlo_returns_minus_values() {
        let mut rng = Rng(7);
        for &n in &[1usize, 3] {
            let t_len = 300;
            let len = t_len * n;
            let r = rng.vec(len);
            let v = rng.vec(len);
            let (term, trunc) = (rng.flags(len, 0.05), rng.flags(len, 0.05));
            // Consistent next values: the next row's value inside a trace, free values at cuts.
            let mut nv = rng.vec(len);
            for i in 0..len - n {
                if !(term[i] || trunc[i]) {
                    nv[i] = v[i + n];
                }
            }
            let ep = Episodes::new(t_len, n, &r, &term, &trunc).unwrap();
            let (adv, _) = run_gae(&ep, &v, &nv, Discount::new(0.97, 1.0).unwrap()).unwrap();
            let mut g = vec![0.0f32; len];
            discounted_returns(&ep, Some(&nv), 0.97, NanPolicy::Raise, &mut g).unwrap();
            for i in 0..len {
                assert!((adv[i] - (g[i] - v[i])).abs() < 1e-4, "i={i}");
            }
        }
    }

    #[test]
    fn returns_without_bootstrap_are_plain_sums() {
        let r = [1.0f32, 2.0, 3.0, 4.0, 5.0];
        let term = [false, true, false, false, false];
        let trunc = [false; 5];
        let ep = Episodes::new(5, 1, &r, &term, &trunc).unwrap();
        let mut g = [0.0f32; 5];
        discounted_returns(&ep, None, 0.5, NanPolicy::Raise, &mut g).unwrap();
        assert_eq!(g, [2.0, 2.0, 3.0 + 0.5 * 4.0 + 0.25 * 5.0, 4.0 + 2.5, 5.0]);
    }

    #[test]
    fn shape_and_argument_errors() {
        let r = [0.0f32; 4];
        let f = [false; 4];
        assert!(matches!(
            Episodes::new(2, 3, &r, &f, &f),
            Err(CoreError::Shape { .. })
        ));
        assert!(matches!(
            Episodes::new(4, 0, &r, &f, &f),
            Err(CoreError::Shape { .. })
        ));
        let ep = Episodes::new(2, 2, &r, &f, &f).unwrap();
        let short = [0.0f32; 3];
        let err = run_gae(&ep, &short, &r, Discount::new(0.9, 0.9).unwrap()).unwrap_err();
        assert!(matches!(err, CoreError::Shape { ref arg, .. } if arg == "values"));
        assert!(matches!(
            Discount::new(1.5, 0.9),
            Err(CoreError::InvalidArgument { .. })
        ));
        assert!(matches!(
            Discount::new(0.9, f32::NAN),
            Err(CoreError::InvalidArgument { .. })
        ));
    }

    #[test]
    fn nan_is_located_or_ignored_when_unused() {
        let r = [0.0f32, 0.0, f32::NAN, 0.0];
        let v = [0.0f32; 4];
        let f = [false; 4];
        let ep = Episodes::new(2, 2, &r, &f, &f).unwrap();
        let err = run_gae(&ep, &v, &v, Discount::new(0.9, 0.9).unwrap()).unwrap_err();
        assert!(
            matches!(err, CoreError::NonFinite { ref arg, ref index, .. } if arg == "rewards" && index == &[1, 0])
        );
        // A NaN next value at a terminal step is never read.
        let r = [0.0f32; 4];
        let nv = [0.0f32, f32::NAN, 0.0, 0.0];
        let term = [false, true, false, false];
        let ep = Episodes::new(2, 2, &r, &term, &f).unwrap();
        assert!(run_gae(&ep, &v, &nv, Discount::new(0.9, 0.9).unwrap()).is_ok());
    }
}
