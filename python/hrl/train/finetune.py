"""``hrl finetune``: online PPO (L2) + MAPPO (L3/L4) in real SCML worlds, resumable.

One update = write the current bundle to ``OUT/policy.pt`` (atomically; workers load it from
disk) -> play ``worlds_per_update`` rollout worlds (:mod:`hrl.train.rollout`, through
:mod:`hrl.distributed`, or inline with ``workers = 0``) -> rewards (:mod:`hrl.train.rewards`)
-> PPO on L2, MAPPO on L3/L4 -> log -> checkpoint ``OUT/last.pt``.

Every ``eval_every`` updates a validation run (``eval_worlds`` fixed-seed worlds, the learners
play deterministically) gives ``val/mean_score``; with ``validate_vs_l1`` it is instead a
seat-swap comparison (:mod:`hrl.evaluate.compare`, in ``OUT/validation/``) of the bundle against
LitaAgentL1 in the same seats of ``eval_worlds`` fixed worlds, and the metric is the mean paired
difference ``val/vs_l1`` (LitaAgentL1's plays are played once and reused by every validation).
The best bundle is kept in ``OUT/best.pt``;
when the metric falls more than ``rollback_threshold`` below the best, the weights roll back to
the best (optimiser state reset); after ``patience`` validations without improvement the run
stops early. Every ``snapshot_every`` updates the bundle is frozen into ``OUT/snapshots/`` and
joins the opponent pool. At the end ``OUT/bundle.pt`` is the best bundle by validation (the
last one when no validation ran).

``OUT/last.pt`` (kind ``"finetune"``, ``weights_only=True``-loadable) holds the models, the
critic, every optimiser, the counters (updates, worlds played), the history, the best metric,
snapshots, the RNG states and the update generator: re-running the same command resumes.
Normalisers of L2/L3/L4 stay frozen at their BC statistics (the critic's own are updated).
The checkpoint also holds every failed world and one row per learner-world (level, score, reward
sums), written to ``OUT/failures.json`` and ``OUT/learners.json``.

Failures: a rollout or validation world that raises, crashes or times out is logged with its
error and counted (``rollout/failed_worlds``, ``val/failed_worlds``, the summary's
``failed_worlds``); more than ``max_failed_share`` of an update's worlds failing stops the run
with :class:`~hrl.errors.RolloutError` (the last checkpoint stays; re-running resumes).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrl.errors import CheckpointError, ConfigError, RolloutError
from hrl.io import atomic_write_json
from hrl.models.critic import CentralCritic
from hrl.models.l3 import L3Executor, with_follow_gate
from hrl.models.l4 import L4Coordinator
from hrl.seeding import seed_everything
from hrl.train.bundle import Bundle, load_bundle, save_bundle
from hrl.train.checkpoint import (
    get_rng_state,
    load_checkpoint,
    load_state,
    model_entry,
    save_checkpoint,
    set_rng_state,
)
from hrl.train.learn import learn, learner_rows
from hrl.train.mappo import MAPPOConfig
from hrl.train.ppo import PPOConfig
from hrl.train.rewards import RewardConfig
from hrl.train.rollout import DEFAULT_POOL, RolloutResult, RolloutTask, plan_rollouts
from hrl.train.run_worlds import WorldFailure, check_failures, run_worlds
from hrl.train.world_view import WORLD_DIM

__all__ = ["FINETUNE_KIND", "FinetuneConfig", "finetune", "planned_world_days"]

FINETUNE_KIND = "finetune"


@dataclass(frozen=True)
class FinetuneConfig:
    """``hrl finetune`` settings (written into ``OUT/config.json`` and every checkpoint).

    Attributes:
        bundle: the starting (pretrained) bundle; missing L3/L4 are created fresh (L3 with a
            baseline-near initialisation: ``end`` unlikely, fractions mid-box).
        out: run folder. updates: total updates. worlds_per_update: rollout worlds per update.
        workers: worker processes (0: run worlds inline). n_learners: learners per world (1-2).
        n_steps, factories_per_level, n_levels: rollout world sizes (inclusive ranges drawn
            per world); the learners sit on every level (:mod:`hrl.train.placement`).
        pool: opponent import paths. seed: base seed.
        eval_every, eval_worlds: validation period (updates) and size (0 worlds: none).
        validate_vs_l1: validate by a seat-swap comparison against LitaAgentL1 (metric
            ``val/vs_l1``, the mean paired score difference) instead of the learners' mean score.
        rollback_threshold: roll back when the validation metric < best - this.
        patience, min_delta: early stop after this many validations without a gain > min_delta.
        snapshot_every: freeze the bundle into the pool every N updates (0: never).
        timeout_s: per-world limit. max_failed_share: the run stops with
            :class:`~hrl.errors.RolloutError` when more than this share of an update's rollout
            (or validation) worlds fail; failed worlds are logged and counted either way.
        ppo, mappo, rewards: the algorithms' settings.
        follow_l1: add L3's follow-L1 gate with this bias when the starting bundle's L3 has none
            (:func:`hrl.models.l3.with_follow_gate`: ``P(follow) = sigmoid(follow_l1)`` on every
            thread at the start; > 0 starts from exactly LitaAgentL1's play); None: as it is.
            With it, the starting bundle is validated as update 0 and is the first ``best.pt``.
        paired: play every rollout world a second time with LitaAgentL1 in the learners' seats
            and reward the learners by the difference (:mod:`hrl.train.rollout`: the rewards of
            a world add up to ``score - paired_score``, the seat-swap difference, not
            ``score - 1``); twice the simulated days per update.
        backend, ray_address: where rollout worlds run (:func:`hrl.distributed.make_executor`);
            the bundles travel to the workers once per update through ``Executor.share``.
    """

    bundle: str
    out: str
    updates: int = 10
    worlds_per_update: int = 4
    workers: int = 0
    n_learners: int = 1
    n_steps: tuple[int, int] = (15, 30)
    factories_per_level: tuple[int, int] = (4, 5)
    n_levels: tuple[int, int] = (2, 2)
    pool: tuple[str, ...] = DEFAULT_POOL
    seed: int = 0
    eval_every: int = 2
    eval_worlds: int = 4
    validate_vs_l1: bool = False
    rollback_threshold: float = 0.05
    patience: int = 4
    min_delta: float = 0.0
    snapshot_every: int = 5
    timeout_s: float = 900.0
    max_failed_share: float = 0.25
    backend: str = "local"
    ray_address: str | None = None
    ppo: PPOConfig = field(default_factory=PPOConfig)
    mappo: MAPPOConfig = field(default_factory=MAPPOConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    follow_l1: float | None = None
    paired: bool = False

    def __post_init__(self) -> None:
        if self.follow_l1 is not None and not math.isfinite(self.follow_l1):
            raise ConfigError(f"follow_l1: must be a finite bias, got {self.follow_l1!r}")
        if self.updates < 0 or self.worlds_per_update < 1 or self.workers < 0:
            raise ConfigError(f"FinetuneConfig: invalid counts in {self}")
        if self.backend not in ("local", "ray") or (self.backend == "ray" and self.workers == 0):
            raise ConfigError(f"backend: 'local' or 'ray' (with workers >= 1), got {self.backend!r}")
        if not 0.0 <= self.max_failed_share <= 1.0:
            raise ConfigError(f"max_failed_share: must be in [0, 1], got {self.max_failed_share}")


def planned_world_days(cfg: FinetuneConfig) -> int:
    """The simulated days a whole run of ``cfg`` plays: every update's rollout worlds (their
    lengths are drawn from ``(seed, update)``, so this is exact) and the validation worlds (the
    learners' plays, and with ``validate_vs_l1`` LitaAgentL1's once; ``paired`` doubles the
    rollout worlds' days)."""
    days = 0
    for update in range(cfg.updates):
        tasks = plan_rollouts(
            bundle_path="",
            n_worlds=cfg.worlds_per_update,
            seed=cfg.seed,
            update=update,
            pool=cfg.pool,
            n_learners=cfg.n_learners,
            n_steps=cfg.n_steps,
            factories_per_level=cfg.factories_per_level,
            n_levels=cfg.n_levels,
        )
        days += sum(t.n_steps for t in tasks) * (2 if cfg.paired else 1)
    validations = cfg.updates // cfg.eval_every if cfg.eval_worlds and cfg.eval_every else 0
    if validations:
        per_world = sum(cfg.n_steps) / 2  # the expected length: validation worlds are planned elsewhere
        plays = validations + (1 if cfg.validate_vs_l1 else 0)
        days += round(plays * cfg.eval_worlds * per_world)
    return days


# ---------------------------------------------------------------------------------------------
def _baseline_near_l3(seed: int) -> L3Executor:
    """A fresh L3 that counters or accepts, ``end`` rare, fractions around the middle of L1's box."""
    torch.manual_seed(seed)
    l3 = L3Executor()
    with torch.no_grad():
        l3.kind_head.weight.mul_(0.01)
        l3.kind_head.bias.copy_(torch.tensor([0.0, 1.0, -3.0]))
        l3.fraction_head.weight.mul_(0.1)
    return l3.eval()


class _State:
    """Everything a checkpoint holds."""

    def __init__(self, cfg: FinetuneConfig) -> None:
        start = load_bundle(cfg.bundle)
        self.initial_layers = start.layers
        l3 = start.l3 if start.l3 is not None else _baseline_near_l3(cfg.seed)
        if cfg.follow_l1 is not None and not l3.config.follow_gate:
            l3 = with_follow_gate(l3, cfg.follow_l1).eval()
        l4 = start.l4 if start.l4 is not None else L4Coordinator().eval()
        self.bundle = Bundle(l2=start.l2, l3=l3, l4=l4, extra=dict(start.extra))
        self.critic = CentralCritic(world_dim=WORLD_DIM)
        self.optimisers = self._optimisers(cfg)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.updates = 0
        self.worlds = 0
        self.history: list[dict[str, float]] = []
        self.best_metric: float | None = None
        self.best_update = -1
        self.bad_evals = 0
        self.stopped_early = False
        self.snapshots: list[str] = []
        self.failures: list[WorldFailure] = []
        self.learners: list[dict[str, Any]] = []

    def _optimisers(self, cfg: FinetuneConfig) -> dict[str, torch.optim.Optimizer]:
        b = self.bundle
        assert b.l3 is not None and b.l4 is not None
        return {
            "l2": torch.optim.Adam(b.l2.parameters(), lr=cfg.ppo.lr),
            "l3": torch.optim.Adam(_l3_param_groups(b.l3, cfg.mappo), lr=cfg.mappo.lr_l3),
            "l4": torch.optim.Adam(b.l4.parameters(), lr=cfg.mappo.lr_l4),
            "critic": torch.optim.Adam(self.critic.parameters(), lr=cfg.mappo.lr_critic),
        }

    def payload(self, cfg: FinetuneConfig) -> dict[str, Any]:
        models, classes, configs = {}, {}, {}
        for name in ("l2", "l3", "l4"):
            model = getattr(self.bundle, name)
            classes[name], configs[name] = model_entry(model)
            models[name] = model.state_dict()
        return {
            "kind": FINETUNE_KIND,
            "models": models,
            "model_classes": classes,
            "model_configs": configs,
            "critic": self.critic.state_dict(),
            "optimisers": {k: o.state_dict() for k, o in self.optimisers.items()},
            "generator": self.generator.get_state(),
            "rng": get_rng_state(),
            "counters": {
                "updates": self.updates,
                "worlds": self.worlds,
                "best_update": self.best_update,
                "bad_evals": self.bad_evals,
                "stopped_early": self.stopped_early,
            },
            "best_metric": self.best_metric,
            "history": self.history,
            "snapshots": self.snapshots,
            "failures": [dataclasses.asdict(f) for f in self.failures],
            "learners": self.learners,
            "config": _config_dict(cfg),
            "extra": {"bundle_extra": self.bundle.extra, "initial_layers": list(self.initial_layers)},
        }

    def restore(self, payload: dict[str, Any], where: str) -> None:
        for name in ("l2", "l3", "l4"):
            load_state(getattr(self.bundle, name), payload["models"][name], where=f"{where} [{name}]")
        self.critic.load_state_dict(payload["critic"])
        for key, opt in self.optimisers.items():
            opt.load_state_dict(payload["optimisers"][key])
        self.generator.set_state(payload["generator"])
        set_rng_state(payload["rng"])
        c = payload["counters"]
        self.updates, self.worlds = int(c["updates"]), int(c["worlds"])
        self.best_update, self.bad_evals = int(c["best_update"]), int(c["bad_evals"])
        self.stopped_early = bool(c["stopped_early"])
        self.best_metric = payload["best_metric"]
        self.history = list(payload["history"])
        self.snapshots = list(payload["snapshots"])
        self.failures = [WorldFailure(**f) for f in payload["failures"]]
        self.learners = list(payload["learners"])


def _l3_param_groups(l3: L3Executor, mappo: MAPPOConfig) -> list[dict[str, Any]]:
    """L3's optimiser groups: one (every weight at ``lr_l3``), or, with ``mappo.lr_gate`` and a
    follow-L1 gate, two (the gate head at ``lr_gate``, the rest at ``lr_l3``)."""
    if mappo.lr_gate is None or l3.follow_head is None:
        return [{"params": list(l3.parameters())}]
    gate = list(l3.follow_head.parameters())
    rest = [p for p in l3.parameters() if all(p is not g for g in gate)]
    return [{"params": rest}, {"params": gate, "lr": mappo.lr_gate}]


def _saved_config(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config with the fields added since it was written at their defaults (so a
    run written before a new setting existed resumes when that setting is left at its default)."""
    defaults = _config_dict(FinetuneConfig(bundle=saved.get("bundle", ""), out=saved.get("out", "")))
    merged = defaults | saved
    for key, value in defaults.items():
        if isinstance(value, dict) and isinstance(saved.get(key), dict):
            merged[key] = value | saved[key]
    return merged


def _config_dict(cfg: FinetuneConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    for key in ("n_steps", "factories_per_level", "n_levels", "pool"):
        d[key] = list(getattr(cfg, key))
    return d


def _run(
    state: _State, cfg: FinetuneConfig, out: Path, tasks: list[RolloutTask], phase: str
) -> list[RolloutResult]:
    """Run the tasks, record and log their failures (``OUT/failures.json``), stop the run when
    too many failed (:func:`hrl.train.run_worlds.check_failures`)."""
    results, failures = run_worlds(
        tasks,
        phase=phase,
        update=state.updates + 1,
        workers=cfg.workers,
        backend=cfg.backend,
        ray_address=cfg.ray_address,
        timeout_s=cfg.timeout_s,
    )
    if failures:
        state.failures += failures
        atomic_write_json(out / "failures.json", [dataclasses.asdict(f) for f in state.failures])
    check_failures(failures, len(tasks), cfg.max_failed_share, phase)
    return results


def _failure_counts(state: _State) -> dict[str, int]:
    counts = {"rollout": 0, "validation": 0}
    for f in state.failures:
        counts[f.phase] = counts.get(f.phase, 0) + 1
    return counts


def _validate(state: _State, cfg: FinetuneConfig, out: Path) -> tuple[float, dict[str, float]]:
    """The validation metric and the scalars to log."""
    path = out / "validation_policy.pt"
    save_bundle(state.bundle, path)
    if cfg.validate_vs_l1:
        return _validate_vs_l1(state, cfg, out, path)
    n_failed = len(state.failures)
    tasks = plan_rollouts(
        bundle_path=str(path),
        n_worlds=cfg.eval_worlds,
        seed=cfg.seed + 7919,
        update=0,
        pool=cfg.pool,
        n_learners=cfg.n_learners,
        n_steps=cfg.n_steps,
        factories_per_level=cfg.factories_per_level,
        n_levels=cfg.n_levels,
    )
    tasks = [dataclasses.replace(t, mode="deterministic") for t in tasks]
    results = _run(state, cfg, out, tasks, "validation")
    metric = float(np.mean([rec.final_score for res in results for rec in res.learners.values()]))
    return metric, {"val/mean_score": metric, "val/failed_worlds": float(len(state.failures) - n_failed)}


def _validate_vs_l1(
    state: _State, cfg: FinetuneConfig, out: Path, path: Path
) -> tuple[float, dict[str, float]]:
    """The bundle at ``path`` against LitaAgentL1 in the same seats (``OUT/validation/``; the
    bundle plays under the label ``u<update>``, so L1's plays of these worlds are reused)."""
    from hrl.agent.variants import FINETUNED_ENV
    from hrl.evaluate.compare import CompareConfig, run_comparison

    label = f"u{state.updates:04d}"
    config = CompareConfig(
        agents=(f"{label}=hrl.agent.variants.LitaAgentHRLFinetuned", "L1=hrl.agent.l1.LitaAgentL1"),
        n_worlds=cfg.eval_worlds,
        opponents=cfg.pool,
        n_steps=cfg.n_steps,
        n_levels=cfg.n_levels,
        agents_per_level=cfg.factories_per_level,
        seed=cfg.seed + 7919,
        n_workers=max(cfg.workers, 1),
        world_timeout_s=cfg.timeout_s,
        backend=cfg.backend,
        ray_address=cfg.ray_address,
    )
    before = os.environ.get(FINETUNED_ENV)
    os.environ[FINETUNED_ENV] = str(path.resolve())  # the candidate's bundle, inherited by the workers
    try:
        result = run_comparison(config, out / "validation", progress=False)
    except ConfigError as error:  # no world that both finished
        raise RolloutError(f"validation: {error}", phase="validation", total=cfg.eval_worlds) from error
    finally:
        if before is None:
            os.environ.pop(FINETUNED_ENV, None)
        else:
            os.environ[FINETUNED_ENV] = before
    failed = result.failed
    if len(failed) > cfg.max_failed_share * 2 * cfg.eval_worlds:
        raise RolloutError(
            f"validation: {len(failed)} of {2 * cfg.eval_worlds} plays failed",
            phase="validation",
            failed=tuple(failed.items()),
            total=2 * cfg.eval_worlds,
        )
    pair = result.pairs[0]
    mine = next(c for c in result.candidates if c.label == label)
    l1 = next(c for c in result.candidates if c.label == "L1")
    return pair.mean_difference, {
        "val/vs_l1": pair.mean_difference,
        "val/vs_l1_ci_low": pair.ci_low,
        "val/vs_l1_ci_high": pair.ci_high,
        "val/mean_score": mine.mean_score,
        "val/l1_mean_score": l1.mean_score,
        "val/failed_worlds": float(len(failed)),
    }


def finetune(
    cfg: FinetuneConfig,
    *,
    stop_after: int | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) fine-tuning; ``stop_after`` ends this call after that many updates
    (simulates an interruption); ``on_checkpoint(update)`` is called after each update's
    checkpoint is written (e.g. to mirror it, :mod:`hrl.milestones`). Returns a summary
    (counters, history, paths)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    state = _State(cfg)
    last = out / "last.pt"
    if last.is_file():
        payload = load_checkpoint(last, kind=FINETUNE_KIND)
        saved = _saved_config(payload["config"])
        mine = _config_dict(cfg)
        run_options = (
            "updates",
            "patience",
            "workers",
            "timeout_s",
            "backend",
            "ray_address",
            "max_failed_share",
        )
        diff = [k for k in mine if k not in run_options and saved.get(k) != mine[k]]
        if diff:
            raise CheckpointError(f"{last}: resuming with another config (fields {diff})")
        state.restore(payload, str(last))
    atomic_write_json(out / "config.json", _config_dict(cfg))
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tensorboard"), purge_step=state.updates + 1)
    done_now = 0
    try:
        if cfg.follow_l1 is not None and state.updates == 0 and state.best_metric is None:
            _validate_start(state, cfg, out, writer)
        while state.updates < cfg.updates and not state.stopped_early:
            if stop_after is not None and done_now >= stop_after:
                break
            t0 = time.perf_counter()
            policy = out / "policy.pt"
            save_bundle(state.bundle, policy)
            tasks = plan_rollouts(
                bundle_path=str(policy),
                n_worlds=cfg.worlds_per_update,
                seed=cfg.seed,
                update=state.updates,
                pool=cfg.pool,
                snapshots=tuple(state.snapshots),
                n_learners=cfg.n_learners,
                n_steps=cfg.n_steps,
                factories_per_level=cfg.factories_per_level,
                n_levels=cfg.n_levels,
                paired=cfg.paired,
            )
            n_failed = len(state.failures)
            results = _run(state, cfg, out, tasks, "rollout")
            t1 = time.perf_counter()
            b = state.bundle
            scalars = learn(
                b,
                state.critic,
                state.optimisers,
                state.generator,
                results,
                ppo=cfg.ppo,
                mappo=cfg.mappo,
                rewards=cfg.rewards,
            )
            state.learners += learner_rows(results, cfg.rewards, state.updates + 1)
            state.updates += 1
            state.worlds += len(results)
            scalars["rollout/worlds"] = float(len(results))
            scalars["rollout/failed_worlds"] = float(len(state.failures) - n_failed)
            scalars["time/rollout_s"] = t1 - t0
            scalars["time/learn_s"] = time.perf_counter() - t1
            if cfg.eval_worlds and cfg.eval_every and state.updates % cfg.eval_every == 0:
                metric, logged = _validate(state, cfg, out)
                scalars |= logged
                if state.best_metric is None or metric > state.best_metric + cfg.min_delta:
                    state.best_metric, state.best_update, state.bad_evals = metric, state.updates, 0
                    save_bundle(_tagged(state, "finetune-best"), out / "best.pt")
                else:
                    state.bad_evals += 1
                    if metric < state.best_metric - cfg.rollback_threshold:
                        _rollback(state, cfg, out / "best.pt")
                        scalars["val/rollback"] = 1.0
                    if state.bad_evals >= cfg.patience:
                        state.stopped_early = True
            if cfg.snapshot_every and state.updates % cfg.snapshot_every == 0:
                snap = out / "snapshots" / f"u{state.updates:04d}.pt"
                save_bundle(_tagged(state, "finetune-snapshot"), snap)
                state.snapshots.append(str(snap))
            scalars["update"] = float(state.updates)
            scalars["worlds_played"] = float(state.worlds)
            state.history.append(scalars)
            for key, value in scalars.items():
                if np.isfinite(value):
                    writer.add_scalar(key, value, state.updates)
            writer.flush()
            save_checkpoint(last, state.payload(cfg))
            atomic_write_json(out / "learners.json", state.learners)
            done_now += 1
            if on_checkpoint is not None:
                on_checkpoint(state.updates)
    finally:
        writer.close()
    finished = state.updates >= cfg.updates or state.stopped_early
    final = out / "bundle.pt"
    if finished:
        if (out / "best.pt").is_file():
            best = load_bundle(out / "best.pt")
            save_bundle(best, final)
        else:
            save_bundle(_tagged(state, "finetune"), final)
    summary = {
        "updates": state.updates,
        "worlds": state.worlds,
        "best_metric": state.best_metric,
        "best_update": state.best_update,
        "stopped_early": state.stopped_early,
        "failed_worlds": _failure_counts(state),
        "failures": [
            {"phase": f.phase, "update": f.update, "world": f.name, "status": f.status, "error": f.summary}
            for f in state.failures
        ],
        "finished": finished,
        "bundle": str(final) if finished else None,
        "history": state.history,
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


def _validate_start(state: _State, cfg: FinetuneConfig, out: Path, writer: Any) -> None:
    """Validate the starting bundle as update 0 (a run with the follow-L1 gate starts at L1's own
    play, so the floor itself becomes the best bundle to beat and to roll back to)."""
    if not (cfg.eval_worlds and cfg.eval_every):
        return
    metric, logged = _validate(state, cfg, out)
    state.best_metric, state.best_update = metric, 0
    save_bundle(_tagged(state, "finetune-best"), out / "best.pt")
    scalars = {**logged, "update": 0.0, "worlds_played": 0.0}
    state.history.append(scalars)
    for key, value in scalars.items():
        if np.isfinite(value):
            writer.add_scalar(key, value, 0)
    writer.flush()
    save_checkpoint(out / "last.pt", state.payload(cfg))


def _tagged(state: _State, source: str) -> Bundle:
    b = state.bundle
    extra = {**b.extra, "source": source, "finetune_updates": state.updates, "finetune_worlds": state.worlds}
    return Bundle(l2=b.l2, l3=b.l3, l4=b.l4, extra=extra)


def _rollback(state: _State, cfg: FinetuneConfig, best: Path) -> None:
    """Restore the best weights and start the optimisers afresh."""
    saved = load_bundle(best)
    for name in ("l2", "l3", "l4"):
        model = getattr(saved, name)
        if model is not None:
            getattr(state.bundle, name).load_state_dict(model.state_dict())
    state.optimisers = state._optimisers(cfg)
