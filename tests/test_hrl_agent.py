"""LitaAgentHRL in tiny real SCML 2025 Standard worlds.

- untrained, L2-pretrained (real expert data) and fully pretrained (self-play data) bundles play
  with no world exception and every action safe (re-checked with the L1 reference rules);
- missing checkpoint / NaN weights: one warning, then pure LitaAgentL1;
- sample mode records well-formed transitions whose log-probs the models reproduce;
- the macro features in play equal the offline pipeline's (logged world -> hrl build);
- TrackedLitaAgentHRL rows match the micro schema, and the offline adapter turns them into
  exactly the L3 inputs the agent used.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch
from negmas.situated.save import save_stats

from hrl.agent.hrl import LitaAgentHRL, TrackedLitaAgentHRL
from hrl.config import TrainConfig
from hrl.data.datasets import write_datasets
from hrl.data.schema import MICRO_SCHEMA
from hrl.errors import ConfigError
from hrl.models.l3 import L3_ACTION, L3_INPUTS, L3Action
from hrl.opponents import BUILTINS, PENGUIN
from hrl.train.adapters import micro_tensors_from_frame
from hrl.train.bundle import fresh_bundle, load_bundle, save_bundle
from hrl.train.pretrain import PretrainConfig, pretrain
from hrl.worlds import WorldSpec, build_world
from test_l1_agent import check_round, n_exceptions

HRL = "hrl.agent.hrl.LitaAgentHRL"
TRACKED = "hrl.agent.hrl.TrackedLitaAgentHRL"


def play(
    agent: str,
    params: dict[str, Any],
    *,
    seed: int = 1,
    n_steps: int = 8,
    n_levels: int = 2,
    log_folder: Path | None = None,
    name: str = "world",
) -> tuple[Any, list[LitaAgentHRL]]:
    agents = (agent, PENGUIN, agent, *BUILTINS)
    controller = [{"controller_params": {"record": True, **params}} if a == agent else {} for a in agents]
    world_kwargs: dict[str, Any] = {}
    if log_folder is not None:
        world_kwargs = {"log_folder": str(log_folder), "storage_format": "parquet"}
    spec = WorldSpec(
        agents=agents,
        n_steps=n_steps,
        n_processes=n_levels,
        seed=seed,
        name=name,
        world_kwargs=world_kwargs,
        generate_kwargs={"agent_params": controller},
    )
    world = build_world(spec)
    while world.step():
        pass
    if log_folder is not None:
        save_stats(world, str(log_folder), storage_format="parquet")
    ours = [a._obj for a in world.agents.values() if isinstance(getattr(a, "_obj", None), LitaAgentHRL)]
    assert len(ours) == 2
    return world, ours


def assert_safe(
    world: Any, agents: list[LitaAgentHRL], *, min_model_rounds: int = 1, min_checked: int = 10
) -> None:
    assert n_exceptions(world) == 0
    checked = 0
    for agent in agents:
        assert agent.errors == []
        assert agent.rounds
        for call, masked, returned in agent.rounds:
            checked += check_round(call, masked, returned)
    assert checked >= min_checked
    assert sum(a.n_model_rounds for a in agents) >= min_model_rounds


@pytest.fixture(scope="module")
def fresh_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "fresh.pt"
    save_bundle(fresh_bundle(0), path)
    return path


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, fresh_path: Path) -> dict[str, Any]:
    """Two logged tiny worlds with TrackedLitaAgentHRL (untrained bundle), built into samples."""
    root = tmp_path_factory.mktemp("logged")
    logs = root / "logs"
    agents: dict[str, list[TrackedLitaAgentHRL]] = {}
    for i, seed in enumerate((1, 2)):
        name = f"w{i:05d}"
        world, ours = play(
            TRACKED, {"checkpoint": str(fresh_path)}, seed=seed, log_folder=logs / name, name=name
        )
        assert n_exceptions(world) == 0
        agents[name] = ours  # type: ignore[assignment]
    data = root / "data"
    write_datasets(logs, data)
    return {"root": root, "data": data, "agents": agents}


def test_untrained_bundle_plays_safely(fresh_path: Path) -> None:
    world, agents = play(HRL, {"checkpoint": str(fresh_path)})
    assert all(a.fallback_reason is None for a in agents)
    assert all(a.policy is not None and a.policy.bundle.layers == ("l2", "l3", "l4") for a in agents)
    assert_safe(world, agents, min_model_rounds=10)


def test_macro_features_in_play_equal_the_offline_pipeline(logged: dict[str, Any]) -> None:
    macro = pl.read_parquet(logged["data"] / "macro.parquet")
    compared = 0
    for name, agents in logged["agents"].items():
        for agent in agents:
            assert agent.macro_log, "the agent computed no macro state"
            rows = macro.filter((pl.col("world") == name) & (pl.col("agent") == agent.id)).sort("day")
            offline = {
                int(d): np.asarray(s, np.float32)
                for d, s in zip(rows["day"], rows["state_macro"], strict=True)
            }
            for day, obs in agent.macro_log.items():
                np.testing.assert_allclose(
                    obs.features, offline[day], rtol=1e-5, atol=1e-5, err_msg=f"{name} {agent.id} day {day}"
                )
                compared += 1
    assert compared >= 30


def test_tracked_rows_match_the_micro_schema_and_the_adapter(logged: dict[str, Any]) -> None:
    macro = pl.read_parquet(logged["data"] / "macro.parquet")
    for agents in logged["agents"].values():
        for agent in agents:
            frame = agent.micro_frame()
            assert frame.schema == pl.Schema(MICRO_SCHEMA)
            assert frame.height == len(agent.live_inputs) > 20
            assert frame["baseline_quantity"].null_count() == 0
            assert set(frame["action_kind"].cast(pl.String)) <= {"propose", "accept", "end"}
            # history strictly before the decision: its length is the decision's sequence number
            assert (frame["history_len"] == frame["decision_seq"]).all()
            tensors = micro_tensors_from_frame(frame, macro)
            live = agent.live_inputs
            for name in ("goal", "baseline", "context", "caps", "prices", "day_mask", "kind_mask"):
                got = getattr(tensors, name).numpy()
                want = np.stack([row[name] for row in live])
                if got.dtype == bool:
                    np.testing.assert_array_equal(got, want, err_msg=name)
                else:
                    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)
            lengths = tensors.history_mask.sum(1).numpy()
            for i, row in enumerate(live):
                assert lengths[i] == len(row["history"])
                np.testing.assert_allclose(
                    tensors.history[i, : lengths[i]].numpy(), row["history"], rtol=1e-5, atol=1e-6
                )


def test_pretrain_l2_on_real_data_then_play(logged: dict[str, Any], tmp_path: Path) -> None:
    train = TrainConfig(epochs=3, batch_size=64, progress=False, num_threads=1)
    # all three layers train on the expert samples `hrl build` makes (L1 baselines filled) ...
    full = pretrain(PretrainConfig(data=logged["data"], out=tmp_path / "all", train=train))
    assert set(full["metrics"]) == {"l2", "l3", "l4"}
    assert all(math.isfinite(full["metrics"][k]["best_val_loss"]) for k in ("l2", "l3", "l4"))
    # ... and refuse with a clear error when the baselines are missing
    nulled = tmp_path / "nulled"
    nulled.mkdir()
    shutil.copy(logged["data"] / "macro.parquet", nulled / "macro.parquet")
    micro = pl.read_parquet(logged["data"] / "micro.parquet")
    micro.with_columns(pl.lit(None, pl.Float64).alias("baseline_quantity")).write_parquet(
        nulled / "micro.parquet"
    )
    with pytest.raises(ConfigError, match="baseline"):
        pretrain(PretrainConfig(data=nulled, out=tmp_path / "refused", train=train))
    report = pretrain(PretrainConfig(data=logged["data"], out=tmp_path / "l2", layers=("l2",), train=train))
    metrics = report["metrics"]["l2"]
    assert metrics["epochs_run"] == 3 and metrics["rows"] > 30
    assert math.isfinite(metrics["best_val_loss"])
    assert {"q_buy/mae_zero", "q_sell/mae_nonzero", "p_sell/mae_traded"} <= set(metrics["best_val"])
    assert (tmp_path / "l2" / "metrics.json").is_file()
    bundle = load_bundle(tmp_path / "l2" / "bundle.pt")
    assert bundle.layers == ("l2",) and bundle.extra["trained"] == ["l2"]
    # re-running resumes from the checkpoint: nothing left to train, same weights
    again = pretrain(PretrainConfig(data=logged["data"], out=tmp_path / "l2", layers=("l2",), train=train))
    assert again["metrics"]["l2"]["epochs_run"] == 3
    reloaded = load_bundle(tmp_path / "l2" / "bundle.pt")
    for key, value in bundle.l2.state_dict().items():
        torch.testing.assert_close(value, reloaded.l2.state_dict()[key])
    world, agents = play(HRL, {"checkpoint": str(tmp_path / "l2" / "bundle.pt")}, seed=3)
    assert all(a.fallback_reason is None and len(a.macro_log) == 8 for a in agents)
    assert_safe(world, agents, min_model_rounds=0)


def test_pretrain_all_layers_on_self_play_samples_then_play(logged: dict[str, Any], tmp_path: Path) -> None:
    data = tmp_path / "selfplay"
    data.mkdir()
    shutil.copy(logged["data"] / "macro.parquet", data / "macro.parquet")
    frames = [a.micro_frame() for agents in logged["agents"].values() for a in agents]
    pl.concat(frames).write_parquet(data / "micro.parquet")
    train = TrainConfig(epochs=2, batch_size=64, progress=False, num_threads=1)
    report = pretrain(PretrainConfig(data=data, out=tmp_path / "out", train=train))
    assert set(report["metrics"]) == {"l2", "l3", "l4"}
    assert "kind/accuracy" in report["metrics"]["l3"]["best_val"]
    assert "alpha/mae" in report["metrics"]["l4"]["best_val"]
    world, agents = play(HRL, {"checkpoint": str(tmp_path / "out" / "bundle.pt")}, seed=4)
    assert all(a.fallback_reason is None for a in agents)
    assert all(a.policy is not None and a.policy.bundle.layers == ("l2", "l3", "l4") for a in agents)
    # cloned from an untrained policy's play, it mostly ends negotiations: few actions to check
    assert_safe(world, agents, min_model_rounds=10, min_checked=0)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and "falls back" in r.getMessage()]


def test_missing_checkpoint_falls_back_to_l1_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hrl.agent.hrl"):
        world, agents = play(HRL, {"checkpoint": str(tmp_path / "missing.pt")})
    assert len(_warnings(caplog)) == 2  # once per agent
    for agent in agents:
        assert agent.fallback_reason is not None and "CheckpointError" in agent.fallback_reason
        assert agent.policy is None
    assert_safe(world, agents, min_model_rounds=0)
    assert sum(a.n_model_rounds for a in agents) == 0


@pytest.mark.parametrize("layer", ["l2", "l3"])
def test_nan_weights_fall_back_to_l1_once(
    layer: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundle = fresh_bundle(1)
    with torch.no_grad():
        if layer == "l2":
            bundle.l2.goal_head.bias.fill_(float("nan"))
        else:
            assert bundle.l3 is not None
            bundle.l3.fraction_head.bias.fill_(float("inf"))
    path = save_bundle(bundle, tmp_path / "corrupt.pt")
    with caplog.at_level(logging.WARNING, logger="hrl.agent.hrl"):
        world, agents = play(HRL, {"checkpoint": str(path)})
    assert len(_warnings(caplog)) == 2
    for agent in agents:
        assert agent.fallback_reason is not None and "NonFiniteError" in agent.fallback_reason
        assert agent.policy is None
    # plays on as LitaAgentL1: every day after the fallback still decides, safely
    assert_safe(world, agents, min_model_rounds=0)
    assert sum(a.n_model_rounds for a in agents) == 0


def test_sample_mode_records_well_formed_transitions(fresh_path: Path) -> None:
    world, agents = play(TRACKED, {"checkpoint": str(fresh_path), "mode": "sample", "seed": 7}, n_steps=6)
    assert n_exceptions(world) == 0
    bundle = load_bundle(fresh_path)
    assert bundle.l3 is not None and bundle.l4 is not None
    for agent in agents:
        log = agent.transitions
        assert [t.day for t in log.l2] == list(range(6))  # one L2 record per day
        assert log.rounds and log.n_thread_rounds == len(agent.micro_rows)  # one row per thread-round
        for t in log.l2:
            assert math.isfinite(t.log_prob) and math.isfinite(t.value)
            with torch.no_grad():
                out = bundle.l2(t.state[None], t.state_mask[None], t.profile[None], t.side_mask[None])
            assert float(out.log_prob(t.goal[None])[0]) == pytest.approx(t.log_prob, abs=1e-4)
        for r in log.rounds:
            k = len(r)
            assert r.kind.shape == r.delivery.shape == r.l3_log_prob.shape == r.alpha.shape == (k,)
            assert r.history.shape[:2] == r.history_mask.shape and r.history.shape[0] == k
            assert r.changed_by_l1.dtype == torch.bool and r.changed_by_l1.shape == (k,)
            for tensor in (r.l3_log_prob, r.l3_value, r.l4_log_prob_elements, r.alpha):
                assert torch.isfinite(tensor).all()
            assert math.isfinite(r.l4_log_prob) and math.isfinite(r.l4_value)
            assert r.kind_mask[torch.arange(k), r.kind].all()  # the sampled kind was allowed
            with torch.no_grad():
                out3 = bundle.l3(*(getattr(r, name) for name in L3_INPUTS))
                lp3 = out3.log_prob(L3Action(*(getattr(r, name) for name in L3_ACTION)))
                out4 = bundle.l4(r.threads[None], torch.ones(1, k, dtype=torch.bool))
                lp4 = out4.alpha.log_prob_elements(r.alpha[None])[0]
            torch.testing.assert_close(lp3, r.l3_log_prob, atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(lp4, r.l4_log_prob_elements, atol=1e-3, rtol=1e-4)
        calls = {r.call for r in log.rounds}
        assert calls <= {"first_proposals", "counter_all"}


def test_bad_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="mode"):
        LitaAgentHRL(mode="greedy")  # type: ignore[arg-type]


def test_hrl_agents_are_exported_and_loadable_by_path() -> None:
    import hrl
    from hrl.opponents import load_agent_class

    assert hrl.LitaAgentHRL is LitaAgentHRL and hrl.TrackedLitaAgentHRL is TrackedLitaAgentHRL
    assert {"LitaAgentHRL", "TrackedLitaAgentHRL"} <= set(hrl.__all__)
    assert load_agent_class(HRL) is LitaAgentHRL and load_agent_class(TRACKED) is TrackedLitaAgentHRL


def test_pretrain_cli(logged: dict[str, Any], tmp_path: Path) -> None:
    from hrl.cli import main

    base = ["pretrain", "--data", str(logged["data"]), "--epochs", "2", "--no-progress", "--threads", "1"]
    assert main([*base, "--out", str(tmp_path / "all")]) == 0
    assert load_bundle(tmp_path / "all" / "bundle.pt").layers == ("l2", "l3", "l4")
    assert main([*base, "--out", str(tmp_path / "bad"), "--layers", "l4"]) == 2  # l4 needs l2: ConfigError
    assert not (tmp_path / "bad" / "bundle.pt").exists()
    assert main([*base, "--out", str(tmp_path / "l2"), "--layers", "l2"]) == 0
    assert load_bundle(tmp_path / "l2" / "bundle.pt").layers == ("l2",)


def test_the_packaged_bundle_is_the_documented_one_and_plays_its_models() -> None:
    """``LitaAgentHRL()`` with no checkpoint loads the packaged bundle (version 2, all three layers),
    whose provenance file names its bytes, and plays through its models, safely."""
    import hashlib
    import json

    from hrl.agent.hrl import DEFAULT_CHECKPOINT

    provenance = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text())
    assert provenance["sha256"] == hashlib.sha256(DEFAULT_CHECKPOINT.read_bytes()).hexdigest()
    assert (DEFAULT_CHECKPOINT.parent / provenance["comparison"]["file"]).is_file()
    assert load_bundle(DEFAULT_CHECKPOINT).layers == ("l2", "l3", "l4")
    world, agents = play(HRL, {}, seed=5)  # no checkpoint given: the packaged bundle
    assert all(a.policy is not None and a.fallback_reason is None for a in agents)
    assert_safe(world, agents, min_model_rounds=1)


def test_l3_actions_stay_inside_l1s_box_in_sample_and_deterministic_play(fresh_path: Path) -> None:
    """Actions are built inside L1's box, so the final mask rarely changes them. By construction
    the price (inside L1's safe interval) and the acceptances (jointly safe, ``accept_safety``) are
    never changed; quantities and days can still be, where a round's offers on other days or at
    buying prices above ``p_lo`` use up room the start-of-round caps counted (cross-day stock and
    cash). Targets over three real tiny worlds (2 and 3 levels), untrained bundle: <= 5% of L3's
    counter/accept decisions in sample mode, <= 1% deterministic (measured in docs/agent.md)."""
    from hrl.safety import CLIPPED, KEPT
    from hrl.safety import PROPOSE as L1_PROPOSE

    totals: dict[str, list[int]] = {}
    for mode in ("sample", "deterministic"):
        changed = acted = 0
        for seed, levels in ((6, 2), (7, 3), (8, 2)):
            world, agents = play(
                HRL, {"checkpoint": str(fresh_path), "mode": mode, "seed": 3}, seed=seed, n_levels=levels
            )
            assert_safe(world, agents, min_model_rounds=5)
            changed += sum(a.l1_changed for a in agents)
            acted += sum(a.l3_acted for a in agents)
            if mode == "sample":  # the records agree with the counters
                records = [r for a in agents for r in a.transitions.rounds]
                assert sum(int(r.changed_by_l1[r.kind != 2].sum()) for r in records) == sum(
                    a.l1_changed for a in agents
                )
            for agent in agents:
                for _, masked, _ in agent.rounds:
                    for (*_, p, _, kind), (*_, p2, verdict) in zip(masked.items, masked.results, strict=True):
                        if kind != L1_PROPOSE:
                            assert verdict == KEPT  # an acceptance L3 may choose is safe
                        elif verdict == CLIPPED:
                            assert p2 == p  # the price never leaves L1's interval
        totals[mode] = [changed, acted]
    print("clip rates (changed, decisions):", totals)
    assert totals["sample"][1] > 100 and totals["sample"][0] <= 0.05 * totals["sample"][1]
    assert (
        totals["deterministic"][1] > 500 and totals["deterministic"][0] <= 0.01 * totals["deterministic"][1]
    )


def _seat_scores(agent: str, params: dict[str, Any], seed: int = 4) -> list[float]:
    """Every factory's score in one seeded 8-day world with ``agent`` in two seats; the ids are
    type-blind, so two agents give the same world."""
    from hrl.evaluate.compare import EVALUATION_WORLD_KWARGS

    agents = (agent, PENGUIN, agent, *BUILTINS)
    controller = [{"controller_params": params} if a == agent else {} for a in agents]
    spec = WorldSpec(
        agents=agents,
        n_steps=8,
        n_processes=2,
        seed=seed,
        generate_kwargs={"agent_params": controller},
        world_kwargs=dict(EVALUATION_WORLD_KWARGS),
    )
    world = build_world(spec)
    while world.step():
        pass
    return [score for _, score in sorted(world.scores().items())]


def test_without_l3_the_agent_plays_l1s_decisions_and_layers_are_checked(fresh_path: Path) -> None:
    """Ablations: ``layers=("l2",)`` (L1+L2) plays exactly LitaAgentL1 in the same seeded world
    (L2's goal reaches the offers only through L3), so an L1+L2 row needs no tournament;
    ``layers=("l2", "l3")`` keeps L3 and drops L4."""
    from hrl.agent.variants import LitaAgentHRLWithoutL4

    l2_only = _seat_scores(HRL, {"checkpoint": str(fresh_path), "layers": ("l2",)})
    assert l2_only == _seat_scores("hrl.agent.l1.LitaAgentL1", {})
    no_l4 = LitaAgentHRLWithoutL4(checkpoint=str(fresh_path))
    assert no_l4.layers == ("l2", "l3")
    for bad in (("l3",), ("l2", "l4"), ("l2", "l5")):
        with pytest.raises(ConfigError, match="layers"):
            LitaAgentHRL(layers=bad)


def test_the_follow_gate_starts_at_l1_and_explores_in_rollouts(tmp_path: Path) -> None:
    """L3 with a fresh follow-L1 gate (zero weights, bias 2): deterministic play is exactly
    LitaAgentL1's (same scores in the same seeded world; every L3 decision follows, so none is
    counted as L3's); in sample mode both sides of the gate occur, the records hold the gate and
    their log-probs re-evaluate."""
    from hrl.models.l3 import with_follow_gate

    bundle = fresh_bundle(0)
    assert bundle.l3 is not None
    bundle.l3 = with_follow_gate(bundle.l3, 2.0).eval()
    path = save_bundle(bundle, tmp_path / "gated.pt")
    assert load_bundle(path).l3.config.follow_gate  # type: ignore[union-attr]
    for seed in (4, 5):
        assert _seat_scores(HRL, {"checkpoint": str(path)}, seed=seed) == _seat_scores(
            "hrl.agent.l1.LitaAgentL1", {}, seed=seed
        )

    world, agents = play(HRL, {"checkpoint": str(path), "mode": "sample", "seed": 3}, seed=6)
    assert_safe(world, agents, min_model_rounds=5)
    loaded = load_bundle(path)
    assert loaded.l3 is not None
    follow = torch.cat([r.follow for a in agents for r in a.transitions.rounds])
    assert 0.6 < float(follow.float().mean()) < 0.98  # sigmoid(2) = 0.88
    acted = sum(int(((r.kind != 2) & (r.follow == 0)).sum()) for a in agents for r in a.transitions.rounds)
    assert sum(a.l3_acted for a in agents) == acted
    for r in (r for a in agents for r in a.transitions.rounds):
        with torch.no_grad():
            out3 = loaded.l3(*(getattr(r, name) for name in L3_INPUTS))
            lp3 = out3.log_prob(L3Action(*(getattr(r, name) for name in L3_ACTION)))
        torch.testing.assert_close(lp3, r.l3_log_prob, atol=1e-4, rtol=1e-4)
