"""GAE and discounted returns: Rust kernels against the NumPy oracle, analytic cases, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import hrl
from hrl import _core
from hrl._reference import compute_gae_reference, discounted_returns_reference
from hrl.errors import DTypeError, InvalidArgumentError, NonFiniteError, ShapeError

# float32 kernels against a float64 oracle: rounding grows with the magnitude of the sums behind
# each entry, not with the entry itself (cancellation can make that small), so the tolerance is
# relative to that magnitude. f32 epsilon is 6e-8; a few roundings per step over <= 200 steps.
RTOL_OF_SCALE = 2e-6


def make_batch(rng: np.random.Generator, t: int, n: int, density: float) -> dict[str, np.ndarray]:
    return {
        "rewards": rng.normal(size=(t, n)).astype(np.float32),
        "values": rng.normal(size=(t, n)).astype(np.float32),
        "next_values": rng.normal(size=(t, n)).astype(np.float32),
        "terminated": rng.random((t, n)) < density,
        "truncated": rng.random((t, n)) < density,
    }


def magnitude(batch: dict[str, np.ndarray], gamma: float, lam: float) -> np.ndarray:
    """Discounted sum of |terms| behind each advantage: the oracle on absolute values."""
    abs_terms = np.abs(batch["rewards"]) + gamma * np.abs(batch["next_values"]) + np.abs(batch["values"])
    zeros = np.zeros_like(abs_terms)
    scale, _ = compute_gae_reference(
        abs_terms, zeros, zeros, batch["terminated"], batch["truncated"], gamma=gamma, lam=lam
    )
    return scale + np.abs(batch["values"])


def assert_gae_matches_reference(batch: dict[str, np.ndarray], gamma: float, lam: float) -> None:
    advantages, returns = hrl.compute_gae(**batch, gamma=gamma, lam=lam)
    want_adv, want_ret = compute_gae_reference(**batch, gamma=gamma, lam=lam)
    tol = RTOL_OF_SCALE * (1.0 + magnitude(batch, gamma, lam))
    assert advantages.dtype == returns.dtype == np.float32
    assert np.all(np.abs(advantages - want_adv) <= tol)
    assert np.all(np.abs(returns - want_ret) <= tol)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.95, 1.0])
@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95, 1.0])
@pytest.mark.parametrize("t", [1, 3, 200])
@pytest.mark.parametrize("n", [1, 7])
@pytest.mark.parametrize("density", [0.0, 0.1, 1.0])
def test_gae_matches_reference_on_grid(gamma: float, lam: float, t: int, n: int, density: float) -> None:
    rng = np.random.default_rng([t, n, int(density * 10), int(gamma * 100), int(lam * 100)])
    assert_gae_matches_reference(make_batch(rng, t, n, density), gamma, lam)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.95, 1.0])
@pytest.mark.parametrize("t", [1, 3, 200])
@pytest.mark.parametrize("n", [1, 7])
@pytest.mark.parametrize("density", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("bootstrapped", [False, True])
def test_returns_match_reference_on_grid(
    gamma: float, t: int, n: int, density: float, bootstrapped: bool
) -> None:
    batch = make_batch(np.random.default_rng([t, n, int(density * 10), int(gamma * 100)]), t, n, density)
    bootstrap = batch["next_values"] if bootstrapped else None
    flags = {"terminated": batch["terminated"], "truncated": batch["truncated"]}
    got = hrl.discounted_returns(batch["rewards"], **flags, gamma=gamma, bootstrap=bootstrap)
    want = discounted_returns_reference(batch["rewards"], **flags, gamma=gamma, bootstrap=bootstrap)
    tol = RTOL_OF_SCALE * (1.0 + magnitude(batch, gamma, 1.0))
    assert np.all(np.abs(got - want) <= tol)


finite_floats = st.floats(-1e3, 1e3, width=32)


@st.composite
def batches(draw: st.DrawFn) -> dict[str, np.ndarray]:
    t, n = draw(st.integers(1, 60)), draw(st.integers(1, 6))
    floats = hnp.arrays(np.float32, (t, n), elements=finite_floats)
    flags = hnp.arrays(np.bool_, (t, n))
    return {
        "rewards": draw(floats),
        "values": draw(floats),
        "next_values": draw(floats),
        "terminated": draw(flags),
        "truncated": draw(flags),
    }


@settings(max_examples=200, deadline=None)
@given(batch=batches(), gamma=st.floats(0.0, 1.0), lam=st.floats(0.0, 1.0))
def test_gae_matches_reference_on_generated_inputs(
    batch: dict[str, np.ndarray], gamma: float, lam: float
) -> None:
    assert_gae_matches_reference(batch, np.float32(gamma).item(), np.float32(lam).item())


def test_constant_value_function_with_unit_rewards() -> None:
    # V = 1, r = 1, no cut but the end: delta = 1 + gamma - 1 = gamma, A_t = gamma * sum_k (gamma lam)^k.
    t, gamma, lam = 10, 0.9, 0.8
    ones = np.ones((t, 1), np.float32)
    flags = np.zeros((t, 1), bool)
    advantages, returns = hrl.compute_gae(ones, ones, ones, flags, flags, gamma=gamma, lam=lam)
    remaining = np.arange(t, 0, -1)
    want = gamma * (1 - (gamma * lam) ** remaining) / (1 - gamma * lam)
    np.testing.assert_allclose(advantages[:, 0], want, rtol=1e-6)
    np.testing.assert_allclose(returns[:, 0], want + 1.0, rtol=1e-6)


def test_truncation_bootstraps_from_next_values_and_termination_does_not() -> None:
    rewards = np.zeros((1, 2), np.float32)
    next_values = np.full((1, 2), 10.0, np.float32)
    terminated = np.array([[True, False]])
    truncated = np.array([[False, True]])
    advantages, _ = hrl.compute_gae(rewards, rewards, next_values, terminated, truncated, gamma=0.9, lam=0.7)
    np.testing.assert_allclose(advantages, [[0.0, 9.0]])
    returns = hrl.discounted_returns(rewards, terminated, truncated, gamma=0.9, bootstrap=next_values)
    np.testing.assert_allclose(returns, [[0.0, 9.0]])


def test_a_cut_stops_the_trace() -> None:
    rewards = np.array([1.0, 100.0], np.float32)
    zeros = np.zeros(2, np.float32)
    no = np.zeros(2, bool)
    cut_after_first = np.array([True, False])
    advantages, _ = hrl.compute_gae(rewards, zeros, zeros, no, cut_after_first, gamma=1.0, lam=1.0)
    np.testing.assert_allclose(advantages, [1.0, 100.0])
    advantages, _ = hrl.compute_gae(rewards, zeros, zeros, no, no, gamma=1.0, lam=1.0)
    np.testing.assert_allclose(advantages, [101.0, 100.0])


@pytest.mark.parametrize("n", [1, 5])
def test_lambda_one_equals_monte_carlo_returns_minus_values(n: int) -> None:
    rng = np.random.default_rng(n)
    batch = make_batch(rng, 400, n, 0.05)
    values, next_values = batch["values"], batch["next_values"].copy()
    continues = ~(batch["terminated"] | batch["truncated"])
    next_values[:-1][continues[:-1]] = values[1:][continues[:-1]]  # consistent inside each trace
    batch["next_values"] = next_values
    advantages, _ = hrl.compute_gae(**batch, gamma=0.97, lam=1.0)
    flags = {"terminated": batch["terminated"], "truncated": batch["truncated"]}
    mc = hrl.discounted_returns(batch["rewards"], **flags, gamma=0.97, bootstrap=next_values)
    np.testing.assert_allclose(advantages, mc - values, atol=2e-4)


def test_last_row_bootstrap_vector() -> None:
    rewards = np.ones((3, 2), np.float32)
    no = np.zeros((3, 2), bool)
    returns = hrl.discounted_returns(rewards, no, no, gamma=0.5, bootstrap=np.array([8.0, 0.0]))
    np.testing.assert_allclose(returns[:, 0], [1 + 0.5 + 0.25 + 0.125 * 8, 1 + 0.5 + 0.25 * 8, 1 + 0.5 * 8])
    np.testing.assert_allclose(returns[:, 1], [1.75, 1.5, 1.0])
    one_d = hrl.discounted_returns(rewards[:, 0], no[:, 0], no[:, 0], gamma=0.5, bootstrap=8.0)
    np.testing.assert_allclose(one_d, returns[:, 0])


def test_float64_and_strided_inputs_are_converted() -> None:
    rng = np.random.default_rng(3)
    batch = make_batch(rng, 50, 4, 0.1)
    want = hrl.compute_gae(**batch, gamma=0.99, lam=0.95)
    wide = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in batch.items()}
    strided = {k: np.repeat(v, 2, axis=1)[:, ::2] for k, v in wide.items()}
    assert not strided["rewards"].flags.c_contiguous
    for got, expected in zip(hrl.compute_gae(**strided, gamma=0.99, lam=0.95), want, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_one_dimensional_inputs_give_one_dimensional_outputs() -> None:
    batch = make_batch(np.random.default_rng(5), 30, 1, 0.1)
    two_d = hrl.compute_gae(**batch, gamma=0.9, lam=0.9)
    one_d = hrl.compute_gae(**{k: v[:, 0] for k, v in batch.items()}, gamma=0.9, lam=0.9)
    for a, b in zip(one_d, two_d, strict=True):
        assert a.shape == (30,)
        np.testing.assert_array_equal(a, b[:, 0])


def test_empty_trajectory() -> None:
    batch = make_batch(np.random.default_rng(0), 0, 3, 0.0)
    advantages, returns = hrl.compute_gae(**batch, gamma=0.9, lam=0.9)
    assert advantages.shape == returns.shape == (0, 3)


def good_batch() -> dict[str, np.ndarray]:
    return make_batch(np.random.default_rng(1), 4, 3, 0.2)


@pytest.mark.parametrize("argument", ["values", "next_values", "terminated", "truncated"])
def test_mismatched_shapes_raise_shape_error_naming_the_argument(argument: str) -> None:
    batch = good_batch()
    batch[argument] = batch[argument][:, :2]
    with pytest.raises(ShapeError, match=argument):
        hrl.compute_gae(**batch, gamma=0.9, lam=0.9)


def test_three_dimensional_input_is_a_shape_error() -> None:
    batch = good_batch()
    batch["rewards"] = batch["rewards"][..., None]
    with pytest.raises(ShapeError, match="rewards"):
        hrl.compute_gae(**batch, gamma=0.9, lam=0.9)


@pytest.mark.parametrize(
    ("argument", "bad"),
    [
        ("terminated", lambda a: a.astype(np.float32)),
        ("truncated", lambda a: a.astype(np.int64)),
        ("rewards", lambda a: a.astype(np.complex64)),
        ("values", lambda a: a.astype(str)),
    ],
)
def test_wrong_dtypes_raise_dtype_error(argument: str, bad) -> None:  # type: ignore[no-untyped-def]
    batch = good_batch()
    batch[argument] = bad(batch[argument])
    with pytest.raises(DTypeError, match=argument):
        hrl.compute_gae(**batch, gamma=0.9, lam=0.9)


def test_the_core_itself_rejects_wrong_dtype_shape_and_layout() -> None:
    batch = good_batch()
    with pytest.raises(DTypeError, match="rewards"):
        _core.compute_gae(**{**batch, "rewards": batch["rewards"].astype(np.float64)}, gamma=0.9, lam=0.9)
    with pytest.raises(ShapeError, match="values"):
        _core.compute_gae(**{**batch, "values": np.zeros((4, 2), np.float32)}, gamma=0.9, lam=0.9)
    strided = np.zeros((4, 6), np.float32)[:, ::2]
    with pytest.raises(ShapeError, match="contiguous"):
        _core.compute_gae(**{**batch, "next_values": strided}, gamma=0.9, lam=0.9)
    with pytest.raises(DTypeError, match="rewards"):
        _core.discounted_returns([1.0], batch["terminated"], batch["truncated"], gamma=0.9)  # type: ignore[arg-type]


@pytest.mark.parametrize(("gamma", "lam"), [(-0.1, 0.5), (1.01, 0.5), (0.9, 2.0), (float("nan"), 0.9)])
def test_discount_outside_unit_interval_is_invalid(gamma: float, lam: float) -> None:
    with pytest.raises(InvalidArgumentError):
        hrl.compute_gae(**good_batch(), gamma=gamma, lam=lam)


@pytest.mark.parametrize("argument", ["rewards", "values", "next_values"])
def test_nan_raises_with_argument_and_index(argument: str) -> None:
    batch = good_batch()
    batch["terminated"][:] = False
    batch[argument][2, 1] = np.nan
    with pytest.raises(NonFiniteError, match=argument) as info:
        hrl.compute_gae(**batch, gamma=0.9, lam=0.9)
    assert info.value.argument == argument
    assert info.value.index == (2, 1)


def test_nan_policy_propagate_and_unused_nan() -> None:
    batch = good_batch()
    batch["rewards"][1, 0] = np.inf
    advantages, _ = hrl.compute_gae(**batch, gamma=0.9, lam=0.9, check_finite=False)
    assert not np.isfinite(advantages[1, 0])
    batch = good_batch()
    batch["terminated"][0, 0] = True
    batch["next_values"][0, 0] = np.nan  # a terminal step's next value is never read
    advantages, _ = hrl.compute_gae(**batch, gamma=0.9, lam=0.9)
    assert np.all(np.isfinite(advantages))


def test_bootstrap_nan_and_shape_errors() -> None:
    batch = good_batch()
    flags = {"terminated": np.zeros((4, 3), bool), "truncated": np.zeros((4, 3), bool)}
    bootstrap = np.zeros((4, 3), np.float32)
    bootstrap[3, 2] = np.nan
    with pytest.raises(NonFiniteError, match="bootstrap"):
        hrl.discounted_returns(batch["rewards"], **flags, gamma=0.9, bootstrap=bootstrap)
    with pytest.raises(ShapeError, match="bootstrap"):
        hrl.discounted_returns(batch["rewards"], **flags, gamma=0.9, bootstrap=np.zeros(2))


def test_errors_are_hrl_errors_and_pickle_with_their_fields() -> None:
    error = NonFiniteError("x: NaN at [1, 2]", "x", (1, 2))
    clone = pickle.loads(pickle.dumps(error))
    assert isinstance(clone, hrl.errors.HrlError) and isinstance(clone, ValueError)
    assert (str(clone), clone.argument, clone.index) == (str(error), "x", (1, 2))
    parse = pickle.loads(pickle.dumps(hrl.errors.LogParseError("bad cell", "a/b.csv", 7)))
    assert (parse.path, parse.line) == ("a/b.csv", 7)
