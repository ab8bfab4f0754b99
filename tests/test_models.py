"""L2/L3/L4 models: shapes, masks, distributions against torch.distributions, typed errors, NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Beta, Categorical, Normal

from hrl.config import L2Config, L3Config, L4Config, TrainConfig, config_from_dict, config_to_dict
from hrl.errors import ConfigError, DTypeError, NonFiniteError, ShapeError
from hrl.models import (
    COUNTER,
    THREAD_FEATURES,
    FeatureNormaliser,
    L2Manager,
    L3Action,
    L3Executor,
    L4Coordinator,
    MaskedCategorical,
    MaskedDiagGaussian,
    MaskedScaledBeta,
    ensure_finite,
    thread_features,
)
from hrl.models.l3 import with_follow_gate

torch.set_num_threads(1)


def l2_inputs(b: int = 5, cfg: L2Config | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    cfg = cfg or L2Config()
    g = torch.Generator().manual_seed(seed)
    w = cfg.history_days + 1
    mask = torch.arange(w).expand(b, w) >= torch.randint(0, w, (b, 1), generator=g)
    side = torch.tensor([[True, True, True, True], [False, False, True, True], [True, True, False, False]])
    return {
        "state": torch.randn(b, w, cfg.state_dim, generator=g),
        "state_mask": mask,
        "profile": torch.rand(b, cfg.horizon_bins, cfg.profile_channels, generator=g),
        "side_mask": side[torch.arange(b) % 3],
    }


def l3_inputs(b: int = 6, t: int = 7, cfg: L3Config | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    cfg = cfg or L3Config()
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, t + 1, (b,), generator=g)
    lengths[0] = 0
    day_mask = torch.rand(b, cfg.n_days, generator=g) < 0.5
    day_mask[:, 1] = True
    return {
        "history": torch.randn(b, t, 5, generator=g),
        "history_mask": torch.arange(t) < lengths.unsqueeze(1),
        "goal": torch.rand(b, 4, generator=g),
        "baseline": torch.rand(b, 3, generator=g),
        "context": torch.rand(b, cfg.context_dim, generator=g),
        "caps": torch.rand(b, cfg.n_days, generator=g) * 2 * day_mask,
        "prices": torch.tensor([0.9, 1.1]) + 0.05 * torch.rand(b, 2, generator=g),
        "day_mask": day_mask,
        "kind_mask": torch.tensor([False, True, True]).expand(b, 3).clone(),
    }


def l4_inputs(b: int = 3, k: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(k) < torch.tensor([k, 2, 1])[:b].unsqueeze(1)
    return torch.randn(b, k, L4Config().thread_dim, generator=g), mask


# --- sizes and shapes -------------------------------------------------------------------------


@pytest.mark.parametrize("model_cls", [L2Manager, L3Executor, L4Coordinator])
def test_default_models_are_small(model_cls: type[torch.nn.Module]) -> None:
    n = sum(p.numel() for p in model_cls().parameters())
    assert 5_000 < n < 100_000  # ~0.2-0.4 MB of float32 weights each


def test_l2_shapes_and_side_mask() -> None:
    torch.manual_seed(0)
    model, inputs = L2Manager(), l2_inputs()
    out = model(**inputs)
    goal = out.deterministic()
    assert goal.shape == (5, 4) and out.value.shape == (5,)
    side = inputs["side_mask"]
    assert torch.all(goal[~side] == 0)
    assert torch.all(goal[:, [0, 2]] >= 0)  # quantities are softplus
    sample = out.dist.sample(torch.Generator().manual_seed(1))
    assert torch.all(sample[~side] == 0) and torch.all(sample[side] != 0)
    # log_prob ignores whatever sits in masked components
    noisy = sample + torch.where(side, 0.0, 123.0)
    torch.testing.assert_close(out.log_prob(noisy), out.log_prob(sample))


def test_l2_distribution_matches_torch_normal() -> None:
    model, inputs = L2Manager(), l2_inputs()
    out = model(**inputs)
    action = out.dist.sample()
    normal = Normal(out.dist.mean, out.dist.log_std.exp())
    side = inputs["side_mask"]
    torch.testing.assert_close(out.log_prob(action), (normal.log_prob(action) * side).sum(-1))
    torch.testing.assert_close(out.entropy(), (normal.entropy() * side).sum(-1))


def test_l2_uses_history_and_ignores_padding_days() -> None:
    model, inputs = L2Manager(), l2_inputs()
    inputs["state_mask"][0] = torch.tensor([False, False, True, True, True, True])
    base = model(**inputs).deterministic()
    padded = dict(inputs, state=inputs["state"].clone())
    padded["state"][0, :2] = 99.0  # padding days: content must not matter
    torch.testing.assert_close(model(**padded).deterministic(), base)
    real = dict(inputs, state=inputs["state"].clone())
    real["state"][0, 3] += 1.0  # a real past day: it must matter
    assert not torch.allclose(model(**real).deterministic()[0], base[0])


def test_l3_shapes_masks_and_history_padding() -> None:
    torch.manual_seed(0)
    model, inputs = L3Executor(), l3_inputs()
    out = model(**inputs)
    action = out.deterministic()
    assert action.kind.shape == (6,) and action.delivery.shape == (6,) and action.fraction.shape == (6, 2)
    assert torch.all((action.fraction > 0) & (action.fraction < 1))
    assert out.value.shape == (6,) and out.features.shape == (6, L3Config().hidden)
    day_mask = inputs["day_mask"]
    assert torch.all(day_mask.gather(1, action.delivery[:, None]))
    assert torch.all(out.day.probs[~day_mask] == 0)
    assert torch.all(out.kind.probs[:, 0] == 0)  # accept masked
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        sample = out.sample(g)
        assert torch.all(day_mask.gather(1, sample.delivery[:, None])) and torch.all(sample.kind != 0)
        assert torch.all((sample.fraction >= 0) & (sample.fraction <= 1))
    # Padding content and extra padding slots do not change anything
    longer = dict(inputs)
    longer["history"] = torch.cat([inputs["history"], torch.full((6, 4, 5), 7.0)], 1)
    longer["history_mask"] = torch.cat([inputs["history_mask"], torch.zeros(6, 4, dtype=torch.bool)], 1)
    garbage = inputs["history"].masked_fill(~inputs["history_mask"].unsqueeze(-1), -5.0)
    for variant in (longer, dict(inputs, history=garbage)):
        other = model(**variant)
        torch.testing.assert_close(other.kind.logits, out.kind.logits)
        torch.testing.assert_close(other.fraction.mode(), out.fraction.mode())
    # An empty history (T = 0) works
    empty = dict(inputs, history=torch.zeros(6, 0, 5), history_mask=torch.zeros(6, 0, dtype=torch.bool))
    assert model(**empty).value.shape == (6,)
    # A real offer matters
    changed = dict(inputs, history=inputs["history"].clone())
    row = int(inputs["history_mask"].sum(1).argmax())
    changed["history"][row, 0] += 1.0
    assert not torch.allclose(model(**changed).kind.logits[row], out.kind.logits[row])
    # The box is an input, not just a mask: other caps or price bounds change the action
    for name in ("caps", "prices"):
        moved = model(**dict(inputs, **{name: inputs[name] * 1.5}))
        assert not torch.allclose(moved.fraction.mode(), out.fraction.mode())


def test_l3_log_prob_and_entropy_of_the_hierarchical_action() -> None:
    model, inputs = L3Executor(), l3_inputs(b=4)
    inputs["kind_mask"][:] = True
    out = model(**inputs)
    kind_d = Categorical(probs=out.kind.probs)
    day_d = Categorical(probs=out.day.probs)
    res_d = Beta(out.fraction.a, out.fraction.b)
    action = L3Action(torch.tensor([0, 1, 2, 1]), torch.tensor([1, 1, 1, 1]), torch.rand(4, 2) * 0.9 + 0.05)
    expected = kind_d.log_prob(action.kind) + (action.kind == COUNTER) * (
        day_d.log_prob(action.delivery) + res_d.log_prob(action.fraction).sum(-1)
    )
    torch.testing.assert_close(out.log_prob(action), expected)
    p_counter = out.kind.probs[:, COUNTER]
    ent = kind_d.entropy() + p_counter * (day_d.entropy() + res_d.entropy().sum(-1))
    torch.testing.assert_close(out.entropy(), ent)
    # Monte Carlo: entropy = -E[log p(a)] for the mixed discrete/continuous action
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([out.log_prob(out.sample(g)) for _ in range(4000)])
    torch.testing.assert_close(-draws.mean(0), out.entropy(), atol=0.08, rtol=0.0)


def test_l3_follow_gate_log_prob_entropy_and_its_start() -> None:
    """The gate's hierarchical action: log-prob and entropy in closed form (against torch's
    distributions and a Monte Carlo estimate); a gate added by with_follow_gate keeps every other
    output, follows L1 everywhere in deterministic play and explores with P = sigmoid(-bias)."""
    torch.manual_seed(3)
    plain, inputs = L3Executor(), l3_inputs(b=4)
    inputs["kind_mask"][:] = True
    model = with_follow_gate(plain, 2.0)
    out, before = model(**inputs), plain(**inputs)
    torch.testing.assert_close(out.kind.logits, before.kind.logits)
    torch.testing.assert_close(out.fraction.mode(), before.fraction.mode())
    assert out.follow is not None and torch.all(out.deterministic().follow == 1)
    torch.testing.assert_close(out.follow.probs[:, 1], torch.sigmoid(torch.full((4,), 2.0)))
    with torch.no_grad():  # a gate that depends on the state
        assert model.follow_head is not None
        model.follow_head.weight.normal_(0.0, 0.5)
    out = model(**inputs)
    assert out.follow is not None
    action = L3Action(
        torch.tensor([0, 1, 2, 1]),
        torch.tensor([1, 1, 1, 1]),
        torch.rand(4, 2) * 0.9 + 0.05,
        torch.tensor([0, 0, 1, 1]),
    )
    gate = Categorical(probs=out.follow.probs)
    own = Categorical(probs=out.kind.probs).log_prob(action.kind) + (action.kind == COUNTER) * (
        Categorical(probs=out.day.probs).log_prob(action.delivery)
        + Beta(out.fraction.a, out.fraction.b).log_prob(action.fraction).sum(-1)
    )
    expected = gate.log_prob(action.follow) + (action.follow == 0) * own
    torch.testing.assert_close(out.log_prob(action), expected)
    no_gate = L3Action(action.kind, action.delivery, action.fraction)
    torch.testing.assert_close(before.log_prob(no_gate), plain(**inputs).log_prob(no_gate))
    with pytest.raises(ShapeError, match="no follow gate"):
        before.log_prob(action)
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([out.log_prob(out.sample(g)) for _ in range(4000)])
    torch.testing.assert_close(-draws.mean(0), out.entropy(), atol=0.08, rtol=0.0)
    with pytest.raises(ConfigError, match="already"):
        with_follow_gate(model, 1.0)
    with pytest.raises(ConfigError, match="finite"):
        with_follow_gate(plain, float("nan"))


def test_l4_shapes_permutation_equivariance_and_padding() -> None:
    torch.manual_seed(0)
    model = L4Coordinator()
    threads, mask = l4_inputs()
    out = model(threads, mask)
    alpha = out.deterministic()
    assert alpha.shape == (3, 5) and out.value.shape == (3,) and out.features.shape == (3, 5, 32)
    cfg = model.config
    assert torch.all(alpha[mask] >= cfg.alpha_min) and torch.all(alpha[mask] <= 1.0)
    assert torch.all(alpha[~mask] == cfg.alpha_min)
    perm = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(model(threads[:1, perm], mask[:1, perm]).deterministic()[0], alpha[0, perm])
    padded = threads.clone()
    padded[~mask] = 50.0
    torch.testing.assert_close(model(padded, mask).deterministic(), alpha)
    # a day without threads stays finite
    empty = model(threads[:1], torch.zeros(1, 5, dtype=torch.bool))
    assert torch.isfinite(empty.value).all() and float(empty.log_prob(empty.alpha.sample()).detach()) == 0.0


def test_l4_distribution_matches_torch_beta() -> None:
    model = L4Coordinator()
    threads, mask = l4_inputs()
    out = model(threads, mask)
    low = model.config.alpha_min
    x = out.alpha.sample(torch.Generator().manual_seed(0))
    assert torch.all((x[mask] > low) & (x[mask] < 1.0))
    beta = Beta(out.alpha.a, out.alpha.b)
    scale = 1.0 - low
    per_thread = beta.log_prob(((x - low) / scale).clamp(1e-6, 1 - 1e-6)) - math.log(scale)
    expected = torch.where(mask, per_thread, 0.0).sum(-1)
    torch.testing.assert_close(out.log_prob(x), expected)
    torch.testing.assert_close(out.entropy(), ((beta.entropy() + math.log(scale)) * mask).sum(-1))
    torch.testing.assert_close(out.deterministic()[mask], (low + scale * beta.mean)[mask])


def test_masked_categorical_matches_torch_and_falls_back_when_all_masked() -> None:
    logits = torch.randn(4, 6)
    mask = torch.rand(4, 6) < 0.5
    mask[0] = False
    mask[1, 2] = True
    dist = MaskedCategorical(logits, mask)
    assert bool(dist.all_masked[0])
    torch.testing.assert_close(dist.probs[0], torch.full((6,), 1 / 6))
    ref = Categorical(logits=logits[1:].masked_fill(~mask[1:], -math.inf))
    torch.testing.assert_close(dist.entropy()[1:], ref.entropy())
    torch.testing.assert_close(dist.log_prob(torch.full((4,), 2))[1], ref.log_prob(torch.tensor(2))[0])
    counts = torch.stack([dist.sample(torch.Generator().manual_seed(s)) for s in range(200)])
    assert torch.all(mask[1:].gather(1, counts[:, 1:].T))


def test_gaussian_gradients_are_finite_under_masks() -> None:
    mean = torch.zeros(3, 4, requires_grad=True)
    log_std = torch.zeros(4, requires_grad=True)
    dist = MaskedDiagGaussian(mean, log_std, torch.tensor([True, False, True, False]).expand(3, 4))
    (dist.log_prob(torch.randn(3, 4)).sum() + dist.entropy().sum()).backward()
    assert mean.grad is not None and torch.isfinite(mean.grad).all()
    assert torch.all(mean.grad[:, [1, 3]] == 0)


def test_every_parameter_gets_a_finite_policy_gradient() -> None:
    l2, l3, l4 = L2Manager(), L3Executor(), L4Coordinator()
    o2, o3, o4 = l2(**l2_inputs()), l3(**l3_inputs()), l4(*l4_inputs())
    surrogate = (
        o2.log_prob(o2.dist.sample()).sum()
        + o3.log_prob(
            L3Action(
                torch.ones(6, dtype=torch.long),
                torch.ones(6, dtype=torch.long),
                torch.rand(6, 2) * 0.9 + 0.05,
            )
        ).sum()
        + o4.log_prob(o4.alpha.sample()).sum()
    )
    (surrogate + sum(o.entropy().sum() + o.value.sum() for o in (o2, o3, o4))).backward()
    for model in (l2, l3, l4):
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{type(model).__name__}.{name}"


def test_beta_sampling_with_a_generator_is_reproducible() -> None:
    dist = MaskedScaledBeta(torch.full((2, 3), 2.0), torch.full((2, 3), 5.0), 0.1, 1.0)
    a = dist.sample(torch.Generator().manual_seed(7))
    b = dist.sample(torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)
    many = MaskedScaledBeta(torch.full((20000,), 2.0), torch.full((20000,), 5.0), 0.1, 1.0).sample()
    assert abs(float(many.mean()) - (0.1 + 0.9 * 2 / 7)) < 0.01


# --- typed errors and non-finite values -------------------------------------------------------


def test_wrong_shapes_and_dtypes_raise_typed_errors_naming_the_argument() -> None:
    l2, inputs = L2Manager(), l2_inputs()
    with pytest.raises(ShapeError, match="state"):
        l2(**dict(inputs, state=inputs["state"][:, :3]))
    with pytest.raises(ShapeError, match="side_mask"):
        l2(**dict(inputs, side_mask=inputs["side_mask"][:2]))
    with pytest.raises(DTypeError, match="state_mask"):
        l2(**dict(inputs, state_mask=inputs["state_mask"].float()))
    l3, inputs3 = L3Executor(), l3_inputs()
    with pytest.raises(ShapeError, match="history"):
        l3(**dict(inputs3, history=inputs3["history"][..., :4]))
    with pytest.raises(ShapeError, match="day_mask"):
        l3(**dict(inputs3, day_mask=inputs3["day_mask"][:, :5]))
    with pytest.raises(ShapeError, match="caps"):
        l3(**dict(inputs3, caps=inputs3["caps"][:, :5]))
    with pytest.raises(ShapeError, match="prices"):
        l3(**dict(inputs3, prices=inputs3["prices"][:, :1]))
    holes = inputs3["history_mask"].clone()
    holes[:, 0] = False
    holes[:, 1] = True
    with pytest.raises(ShapeError, match="prefix"):
        l3(**dict(inputs3, history_mask=holes))
    threads, mask = l4_inputs()
    with pytest.raises(ShapeError, match="thread_mask"):
        L4Coordinator()(threads, mask[:, :3])


def test_non_finite_inputs_and_outputs_raise_non_finite_error() -> None:
    l2, inputs = L2Manager(), l2_inputs()
    bad = inputs["state"].clone()
    bad[1, 2, 3] = math.nan
    with pytest.raises(NonFiniteError) as info:
        l2(**dict(inputs, state=bad))
    assert info.value.argument == "state" and info.value.index == (1, 2, 3)
    l3 = L3Executor()
    with torch.no_grad():
        l3.value_head.bias.fill_(math.inf)  # corrupt weights: outputs become non-finite
    with pytest.raises(NonFiniteError, match="value"):
        l3(**l3_inputs())
    with pytest.raises(NonFiniteError) as info2:
        ensure_finite(ok=torch.zeros(3), x=torch.tensor([[0.0, 1.0], [math.inf, 0.0]]))
    assert info2.value.argument == "x" and info2.value.index == (1, 0)


# --- helpers and config -----------------------------------------------------------------------


def test_feature_normaliser_matches_numpy_over_chunked_masked_updates() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(500, 4)) * np.array([1, 10, 0.1, 1])
    keep = rng.random(500) < 0.8
    norm = FeatureNormaliser(4)
    for chunk in np.array_split(np.arange(500), 7):
        norm.update(torch.tensor(data[chunk]), torch.tensor(keep[chunk]))
    np.testing.assert_allclose(norm.mean.numpy(), data[keep].mean(0), rtol=1e-10)
    np.testing.assert_allclose(norm.var.numpy(), data[keep].var(0), rtol=1e-10)
    out = norm(torch.tensor(data[keep], dtype=torch.float32))
    np.testing.assert_allclose(out.mean(0).numpy(), 0.0, atol=1e-4)
    with pytest.raises(ShapeError):
        norm.update(torch.zeros(3, 5))


def test_thread_features_layout() -> None:
    inputs = l3_inputs()
    feats = thread_features(
        inputs["goal"], inputs["baseline"], inputs["context"], inputs["history"], inputs["history_mask"]
    )
    assert feats.shape == (6, len(THREAD_FEATURES)) == (6, L4Config().thread_dim)
    lengths = inputs["history_mask"].sum(1)
    row = int(lengths.argmax())
    torch.testing.assert_close(feats[row, 10:15], inputs["history"][row, int(lengths[row]) - 1])
    assert torch.all(feats[0, 10:16] == 0)  # row 0 has an empty history


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (L2Config, "hidden", 0),
        (L2Config, "init_log_std", 5.0),
        (L3Config, "n_days", -1),
        (L4Config, "heads", 3),
        (L4Config, "alpha_min", 1.0),
        (TrainConfig, "lr", 0.0),
        (TrainConfig, "val_fraction", 1.0),
        (TrainConfig, "lr_schedule", "linear"),
        (TrainConfig, "batch_size", 2.5),
    ],
)
def test_configs_reject_bad_values(cls: type, field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        cls(**{field: value})


def test_config_round_trip_and_unknown_fields() -> None:
    cfg = TrainConfig(lr=3e-4, epochs=7, grad_clip=None, log_dir="runs/x")
    assert config_from_dict(TrainConfig, config_to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="unknown"):
        config_from_dict(L2Config, {**config_to_dict(L2Config()), "bogus": 1})


# --- L1's box as the action space -------------------------------------------------------------


def test_box_decode_inverts_encode_and_stays_inside_the_caps() -> None:
    from hrl.models.box import decode, decode_round, encode, thread_caps

    rng = np.random.default_rng(0)
    n = 400
    q_lo = rng.integers(1, 3, n).astype(float)
    cap = q_lo + rng.integers(0, 30, n)
    p_lo = rng.integers(5, 20, n).astype(float)
    p_hi = p_lo + rng.integers(0, 6, n)
    q = rng.integers(0, 40, n).astype(float)
    p = rng.integers(0, 30, n).astype(float)
    frac, defined = encode(q, p, cap, q_lo, p_lo, p_hi)
    assert np.all((frac >= 0) & (frac <= 1)) and np.all(defined[:, 0] == (cap > q_lo))
    q2, p2 = decode(frac, cap, q_lo, p_lo, p_hi)
    np.testing.assert_array_equal(q2, np.clip(q, q_lo, cap))
    np.testing.assert_array_equal(p2, np.clip(p, p_lo, p_hi))
    # any fraction decodes inside the box
    qf, pf = decode(rng.random((n, 2)), cap, q_lo, p_lo, p_hi)
    assert np.all((qf >= q_lo) & (qf <= cap) & (pf >= p_lo) & (pf <= p_hi))
    # threads of one round on one side and day share the day's cap (after acceptances)
    group = np.zeros(6, np.int64)
    side = np.array([0, 0, 0, 0, 1, 0])
    day = np.array([2, 2, 2, 3, 2, 2])
    counter = np.array([True, True, True, True, True, False])
    alpha = np.array([1.0, 0.5, 0.5, 0.2, 0.3, 1.0])
    day_cap = np.array([20.0, 20, 20, 7, 9, 20])
    accepted = np.array([0, 0, 0, 0, 0, 4.0])
    caps = thread_caps(group, side, day, counter, alpha, day_cap, accepted)
    np.testing.assert_array_equal(caps, [8, 4, 4, 7, 9, 0])  # (20 - 4) split 2:1:1; alone: all
    full = np.ones((6, 2))
    qr, _ = decode_round(
        kind=np.where(counter, 1, 0),
        delivery=day,
        fraction=full,
        alpha=alpha,
        seller=side.astype(bool),
        caps=np.tile(day_cap[:, None], (1, 11)),
        box=np.tile([1.0, 10.0, 12.0], (6, 1)),
        accepted=accepted,
        accepted_offset=day,
    )
    assert qr[:3].sum() + 4 <= 20 and qr[5] == 0
