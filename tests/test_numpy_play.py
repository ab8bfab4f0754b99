"""The NumPy play path (hrl.models.numpy_play) against the torch models' deterministic outputs.

Weights are drawn far from their initial scale and the normalisers get non-trivial statistics, so
every layer matters; inputs cover empty and full histories, rows with no allowed day or kind, and
one-thread rounds. Continuous outputs must agree to float32 rounding, discrete choices exactly.
With weights this large, 40 GRU steps amplify rounding: both float32 paths then differ from a
float64 evaluation by up to ~1e-5 (measured), hence ``TOL``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrl.agent.policy import HRLPolicy
from hrl.config import L3Config
from hrl.errors import NonFiniteError, ShapeError
from hrl.models import COUNTER, L2Manager, L3Executor, L4Coordinator, thread_features
from hrl.models.numpy_play import NumpyL2, NumpyL3, NumpyL4, numpy_thread_features
from hrl.train.bundle import Bundle, fresh_bundle

TOL = {"rtol": 1e-4, "atol": 2e-5}


def _scramble(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Parameters ~ N(0, 0.5), normaliser statistics random (mean N(0,1), var in [0.1, 4])."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
        for name, buf in model.named_buffers():
            if name.endswith("normaliser.mean"):
                buf.copy_(torch.randn(buf.shape, generator=gen, dtype=buf.dtype))
            elif name.endswith("normaliser.var"):
                buf.copy_(0.1 + 3.9 * torch.rand(buf.shape, generator=gen, dtype=buf.dtype))
    return model.eval()


def _l3_inputs(rng: np.random.Generator, k: int, t: int, cfg: L3Config) -> list[np.ndarray]:
    lengths = rng.integers(0, t + 1, k) if t else np.zeros(k, np.int64)
    history = rng.normal(size=(k, t, 5)).astype(np.float32)
    mask = np.arange(t) < lengths[:, None]
    history[~mask] = 0.0
    day_mask = rng.random((k, cfg.n_days)) < 0.5
    day_mask[0] = False  # a thread with no allowed day
    kind_mask = rng.random((k, 3)) < 0.7
    kind_mask[-1] = False  # and one with no allowed kind
    return [
        history,
        mask,
        rng.normal(size=(k, 4)).astype(np.float32),
        rng.normal(size=(k, 3)).astype(np.float32),
        rng.random((k, cfg.context_dim)).astype(np.float32),
        (rng.random((k, cfg.n_days)) * 2).astype(np.float32),
        (0.8 + 0.4 * rng.random((k, 2))).astype(np.float32),
        day_mask,
        kind_mask,
    ]


@pytest.mark.parametrize("follow_gate", [False, True])
@pytest.mark.parametrize("gru_layers", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_l3_matches_torch(seed: int, gru_layers: int, follow_gate: bool) -> None:
    cfg = L3Config(gru_layers=gru_layers, follow_gate=follow_gate)
    model = _scramble(L3Executor(cfg), seed)
    rng = np.random.default_rng(seed)
    if model.follow_head is not None:  # centre the gate on these inputs: both of its sides occur
        with torch.inference_mode():
            probe = model(*(torch.from_numpy(a) for a in _l3_inputs(np.random.default_rng(99), 12, 13, cfg)))
            assert probe.follow is not None
            model.follow_head.bias -= probe.follow.logits[:, 1].median()
    fast = NumpyL3(model)
    follows = []
    for k, t in [(1, 0), (1, 7), (6, 40), (12, 13)]:
        arrays = _l3_inputs(rng, k, t, cfg)
        kind, day, fraction, follow = fast.act(*arrays)
        with torch.inference_mode():
            want = model(*(torch.from_numpy(a) for a in arrays)).deterministic()
        np.testing.assert_array_equal(kind, want.kind.numpy())
        np.testing.assert_array_equal(day, want.delivery.numpy())
        np.testing.assert_allclose(fraction, want.fraction.numpy(), **TOL)
        if follow_gate:
            assert want.follow is not None
            np.testing.assert_array_equal(follow, want.follow.numpy())
        else:
            assert want.follow is None and not follow.any()
        follows.append(follow)
    if follow_gate:
        assert 0 < np.concatenate(follows).mean() < 1


@pytest.mark.parametrize("seed", range(4))
def test_l4_and_thread_features_match_torch(seed: int) -> None:
    model = _scramble(L4Coordinator(), seed)
    fast = NumpyL4(model)
    rng = np.random.default_rng(100 + seed)
    for k, t in [(1, 0), (2, 5), (9, 40)]:
        h, hm, g, b, c = _l3_inputs(rng, k, t, L3Config())[:5]
        threads = numpy_thread_features(g, b, c, h, hm)
        with torch.inference_mode():
            want_threads = thread_features(*(torch.from_numpy(a) for a in (g, b, c, h, hm)))
            want = model(want_threads.unsqueeze(0), torch.ones(1, k, dtype=torch.bool)).deterministic()[0]
        np.testing.assert_array_equal(threads, want_threads.numpy())
        np.testing.assert_allclose(fast.alpha(threads), want.numpy(), **TOL)


@pytest.mark.parametrize("seed", range(4))
def test_l2_matches_torch(seed: int) -> None:
    model = _scramble(L2Manager(), seed)
    fast = NumpyL2(model)
    cfg = model.config
    rng = np.random.default_rng(200 + seed)
    for padded in range(cfg.history_days + 1):
        state = rng.normal(size=(cfg.history_days + 1, cfg.state_dim)).astype(np.float32)
        state_mask = np.arange(cfg.history_days + 1) >= padded
        profile = rng.random((cfg.horizon_bins, cfg.profile_channels)).astype(np.float32)
        side_mask = rng.random(4) < 0.6
        goal = fast.goal(state, state_mask, profile, side_mask)
        with torch.inference_mode():
            args = (torch.from_numpy(a).unsqueeze(0) for a in (state, state_mask, profile, side_mask))
            want = model(*args).deterministic()[0]
        np.testing.assert_allclose(goal, want.numpy(), **TOL)


def test_deterministic_policy_plays_the_torch_modes() -> None:
    """HRLPolicy's play path (NumPy) gives the torch models' deterministic actions."""
    bundle = fresh_bundle(3)
    for model in (bundle.l2, bundle.l3, bundle.l4):
        _scramble(model, 3)
    policy = HRLPolicy(bundle, mode="deterministic")
    arrays = _l3_inputs(np.random.default_rng(3), 8, 20, bundle.l3.config)
    step = policy.act_round(*arrays)
    assert step.record is None
    with torch.inference_mode():
        tensors = [torch.from_numpy(a) for a in arrays]
        want = bundle.l3(*tensors).deterministic()
        threads = thread_features(*tensors[2:5], tensors[0], tensors[1])
        alpha = bundle.l4(threads.unsqueeze(0), torch.ones(1, 8, dtype=torch.bool)).deterministic()[0]
    np.testing.assert_array_equal(step.kind, want.kind.numpy())
    np.testing.assert_array_equal(step.day, want.delivery.numpy())
    assert (step.kind == COUNTER).sum() >= 2  # so L4 ran
    np.testing.assert_allclose(step.alpha, alpha.numpy(), **TOL)
    one = [a[:1] for a in arrays]
    one[-1][:] = [False, True, False]  # a lone counter-offer: alpha has no effect, L4 is skipped
    np.testing.assert_array_equal(policy.act_round(*one).alpha, np.ones(1, np.float32))
    l3_only = HRLPolicy(Bundle(l2=bundle.l2, l3=bundle.l3, l4=None, extra={}), mode="deterministic")
    np.testing.assert_array_equal(l3_only.act_round(*arrays).alpha, np.ones(8, np.float32))


def test_bad_inputs_raise_typed_errors() -> None:
    fast = NumpyL3(L3Executor().eval())
    arrays = _l3_inputs(np.random.default_rng(0), 3, 4, L3Config())
    with pytest.raises(ShapeError, match="caps"):
        fast.act(*arrays[:5], arrays[5][:, :3], *arrays[6:])
    arrays[2][1, 2] = np.nan
    with pytest.raises(NonFiniteError, match="goal"):
        fast.act(*arrays)
    holes = _l3_inputs(np.random.default_rng(1), 3, 4, L3Config())
    holes[1][0] = [False, True, False, False]
    with pytest.raises(ShapeError, match="prefix"):
        fast.act(*holes)


def test_l3_continues_threads_from_known_prefixes() -> None:
    """Rounds of growing histories (as in a negotiation day): the prefix-state cache gives what
    a fresh model (no cache) gives, and it is used."""
    cfg = L3Config(gru_layers=2)
    model = _scramble(L3Executor(cfg), 7)
    live = NumpyL3(model)
    rng = np.random.default_rng(7)
    full = _l3_inputs(rng, 5, 30, cfg)
    offers = full[0]
    for length in range(0, 31, 2):
        arrays = list(full)
        arrays[0] = np.ascontiguousarray(offers[:, :length])
        arrays[1] = np.ones((5, length), bool)
        arrays[1][0] = False  # one thread without history
        arrays[0][0] = 0.0
        got = live.act(*arrays)
        want = NumpyL3(model).act(*arrays)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, **TOL)
        with torch.inference_mode():
            torch_action = model(*(torch.from_numpy(a) for a in arrays)).deterministic()
        np.testing.assert_array_equal(got[0], torch_action.kind.numpy())
        np.testing.assert_allclose(got[2], torch_action.fraction.numpy(), **TOL)
    lengths = arrays[1].sum(-1)
    known, _ = live.prefixes.start(arrays[0], lengths)
    np.testing.assert_array_equal(known, lengths)  # the last round's threads are all known now
    shorter = live.prefixes.start(arrays[0][:, :-1].copy(), lengths - 1)[0]
    np.testing.assert_array_equal(shorter, np.maximum(lengths - 2, 0))  # and so are the round before's
