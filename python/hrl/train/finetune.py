"""``hrl finetune``: online PPO (L2) + MAPPO (L3/L4) in real SCML worlds, resumable.

One update = write the current bundle to ``OUT/policy.pt`` (atomically; workers load it from
disk) -> play ``worlds_per_update`` rollout worlds (:mod:`hrl.train.rollout`, through
:mod:`hrl.distributed`, or inline with ``workers = 0``) -> rewards (:mod:`hrl.train.rewards`)
-> PPO on L2, MAPPO on L3/L4 -> log -> checkpoint ``OUT/last.pt``.

Every ``eval_every`` updates a validation run (``eval_worlds`` fixed-seed worlds, the learners
play deterministically) gives ``val/mean_score``; the best bundle is kept in ``OUT/best.pt``;
when the metric falls more than ``rollback_threshold`` below the best, the weights roll back to
the best (optimiser state reset); after ``patience`` validations without improvement the run
stops early. Every ``snapshot_every`` updates the bundle is frozen into ``OUT/snapshots/`` and
joins the opponent pool. At the end ``OUT/bundle.pt`` is the best bundle by validation (the
last one when no validation ran).

``OUT/last.pt`` (kind ``"finetune"``, ``weights_only=True``-loadable) holds the models, the
critic, every optimiser, the counters (updates, worlds played), the history, the best metric,
snapshots, the RNG states and the update generator: re-running the same command resumes.
Normalisers of L2/L3/L4 stay frozen at their BC statistics (the critic's own are updated).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrl.errors import CheckpointError, ConfigError
from hrl.io import atomic_write_json
from hrl.models.critic import CentralCritic
from hrl.models.l3 import L3Executor
from hrl.models.l4 import L4Coordinator
from hrl.opponents import agent_name
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
from hrl.train.mappo import Episode, MAPPOConfig, build_multi_batch, mappo_update
from hrl.train.ppo import PPOConfig, l2_batch, ppo_update_l2, trajectory_gae
from hrl.train.rewards import RewardConfig, l2_rewards, l3_rewards, l4_rewards
from hrl.train.rollout import DEFAULT_POOL, RolloutResult, RolloutTask, plan_rollouts, run_rollout

__all__ = ["FINETUNE_KIND", "FinetuneConfig", "finetune"]

FINETUNE_KIND = "finetune"


@dataclass(frozen=True)
class FinetuneConfig:
    """``hrl finetune`` settings (written into ``OUT/config.json`` and every checkpoint).

    Attributes:
        bundle: the starting (pretrained) bundle; missing L3/L4 are created fresh (L3 with a
            baseline-near initialisation: ``end`` unlikely, small residuals).
        out: run folder. updates: total updates. worlds_per_update: rollout worlds per update.
        workers: worker processes (0: run worlds inline). n_learners: learners per world (1-2).
        n_steps, factories_per_level, n_levels: rollout world sizes.
        pool: opponent import paths. seed: base seed.
        eval_every, eval_worlds: validation period (updates) and size (0 worlds: none).
        rollback_threshold: roll back when val/mean_score < best - this.
        patience, min_delta: early stop after this many validations without a gain > min_delta.
        snapshot_every: freeze the bundle into the pool every N updates (0: never).
        timeout_s: per-world limit. ppo, mappo, rewards: the algorithms' settings.
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
    n_levels: int = 2
    pool: tuple[str, ...] = DEFAULT_POOL
    seed: int = 0
    eval_every: int = 2
    eval_worlds: int = 4
    rollback_threshold: float = 0.05
    patience: int = 4
    min_delta: float = 0.0
    snapshot_every: int = 5
    timeout_s: float = 900.0
    backend: str = "local"
    ray_address: str | None = None
    ppo: PPOConfig = field(default_factory=PPOConfig)
    mappo: MAPPOConfig = field(default_factory=MAPPOConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        if self.updates < 0 or self.worlds_per_update < 1 or self.workers < 0:
            raise ConfigError(f"FinetuneConfig: invalid counts in {self}")
        if self.backend not in ("local", "ray") or (self.backend == "ray" and self.workers == 0):
            raise ConfigError(f"backend: 'local' or 'ray' (with workers >= 1), got {self.backend!r}")


# ---------------------------------------------------------------------------------------------
def _baseline_near_l3(seed: int) -> L3Executor:
    """A fresh L3 that starts close to the L1 baseline: counter-offers with ~zero residual
    (which ARE the baseline's offers) or acceptances; ``end`` rare; small residual noise."""
    torch.manual_seed(seed)
    l3 = L3Executor()
    with torch.no_grad():
        l3.kind_head.weight.mul_(0.01)
        l3.kind_head.bias.copy_(torch.tensor([0.0, 1.0, -3.0]))
        l3.log_std.fill_(-2.5)
        l3.residual_head.weight.mul_(0.1)
    return l3.eval()


class _State:
    """Everything a checkpoint holds."""

    def __init__(self, cfg: FinetuneConfig) -> None:
        start = load_bundle(cfg.bundle)
        self.initial_layers = start.layers
        l3 = start.l3 if start.l3 is not None else _baseline_near_l3(cfg.seed)
        l4 = start.l4 if start.l4 is not None else L4Coordinator().eval()
        self.bundle = Bundle(l2=start.l2, l3=l3, l4=l4, extra=dict(start.extra))
        self.critic = CentralCritic()
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

    def _optimisers(self, cfg: FinetuneConfig) -> dict[str, torch.optim.Optimizer]:
        b = self.bundle
        assert b.l3 is not None and b.l4 is not None
        return {
            "l2": torch.optim.Adam(b.l2.parameters(), lr=cfg.ppo.lr),
            "l3": torch.optim.Adam(b.l3.parameters(), lr=cfg.mappo.lr_l3),
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


def _config_dict(cfg: FinetuneConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["n_steps"], d["factories_per_level"], d["pool"] = (
        list(cfg.n_steps),
        list(cfg.factories_per_level),
        list(cfg.pool),
    )
    return d


# ---------------------------------------------------------------------------------------------
def _run_rollout_in_worker(task: RolloutTask, bundles: dict[str, bytes]) -> RolloutResult:
    """:func:`run_rollout` in a worker process (local or Ray).

    ``bundles`` maps the task's bundle paths (the learners' bundle and the frozen snapshots) to
    their bytes, shared once per update through the executor (:meth:`Executor.share`: the Ray
    object store, or plain arguments locally); the worker writes them to its own temp folder, so
    rollouts also run on machines that cannot see the driver's files. Its result carries many
    small tensors; torch's default fd-passing strategy runs out of descriptors sending them
    ("received 0 items of ancdata"), so the worker (the sender) shares them through files.
    """
    torch.multiprocessing.set_sharing_strategy("file_system")  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory(prefix="hrl-rollout-") as folder:
        local = {}
        for i, (path, data) in enumerate(sorted(bundles.items())):
            local[path] = str(Path(folder) / f"bundle{i}.pt")
            Path(local[path]).write_bytes(data)
        task = dataclasses.replace(
            task,
            bundle_path=local[task.bundle_path],
            snapshots=tuple(local[s] for s in task.snapshots),
        )
        return run_rollout(task)


def _run_tasks(cfg: FinetuneConfig, tasks: list[RolloutTask]) -> list[RolloutResult]:
    if cfg.workers == 0:
        return [run_rollout(t) for t in tasks]
    from hrl.data.collect import WORKER_ENV
    from hrl.distributed import make_executor

    paths = {p for t in tasks for p in (t.bundle_path, *t.snapshots)}
    results: dict[str, RolloutResult] = {}
    with make_executor(
        cfg.backend,
        n_workers=cfg.workers,
        timeout_s=cfg.timeout_s,
        ray_address=cfg.ray_address,
        worker_env=WORKER_ENV,
    ) as ex:
        bundles = ex.share({p: Path(p).read_bytes() for p in paths})  # once per update
        for t in tasks:
            ex.submit(t.name, _run_rollout_in_worker, t, bundles)
        for r in ex.results():
            if r.ok:
                results[r.key] = r.value
    return [results[t.name] for t in tasks if t.name in results]


def _learn(state: _State, cfg: FinetuneConfig, results: list[RolloutResult]) -> dict[str, float]:
    """Rewards -> GAE -> PPO (L2) + MAPPO (L3/L4). Returns the scalars to log."""
    b = state.bundle
    assert b.l3 is not None and b.l4 is not None
    rw = cfg.rewards
    l2_steps, l2_adv, l2_ret = [], [], []
    episodes: list[Episode] = []
    logs: dict[str, list[float]] = {}

    def note(key: str, value: float) -> None:
        logs.setdefault(key, []).append(float(value))

    wins: dict[str, list[float]] = {}
    for res in results:
        for rec in res.learners.values():
            note("rollout/mean_score", rec.final_score)
            note("rollout/profit", rec.final_score - 1.0)
            note("rollout/shortfall", sum(d.shortfall_quantity for d in rec.days))
            note("rollout/fallback", float(rec.fallback_reason is not None))
            note("rollout/deals", float(len(rec.deals)))
            changed = [r.changed_by_l1.float().mean().item() for r in rec.transitions.rounds if len(r)]
            note("safety/clip_rate", float(np.mean(changed)) if changed else 0.0)
            for other, score in res.scores.items():
                kind = agent_name(res.agent_types[other])
                if other not in res.learners:
                    wins.setdefault(kind, []).append(float(rec.final_score > score))
            if not rec.transitions.l2:
                continue
            r2, terms2, term2 = l2_rewards(rec, rw)
            for k, v in terms2.items():
                note(f"reward/l2/{k}", float(v.mean()))
            note("reward/l2/total", float(r2.sum()))
            values = np.array([t.value for t in rec.transitions.l2])
            adv, ret = trajectory_gae(r2, values, term2, gamma=cfg.ppo.gamma, lam=cfg.ppo.lam)
            l2_steps += rec.transitions.l2
            l2_adv.append(adv)
            l2_ret.append(ret)
            if rec.transitions.n_thread_rounds:
                r3, terms3, last = l3_rewards(rec, rw)
                for k, v in terms3.items():
                    note(f"reward/l3/{k}", float(v.sum()))
                episodes.append(
                    Episode(
                        rounds=rec.transitions.rounds,
                        macro={t.day: t.state[-1] for t in rec.transitions.l2},
                        l3_reward=r3,
                        thread_last=last,
                        l4_reward=l4_rewards(rec, r2),
                        day_terminated=frozenset(t.day for i, t in enumerate(rec.transitions.l2) if term2[i]),
                    )
                )
    scalars = {k: float(np.mean(v)) for k, v in logs.items()}
    for kind, w in wins.items():
        scalars[f"rollout/win_rate/{kind}"] = float(np.mean(w))
    if l2_steps:
        batch = l2_batch(l2_steps, np.concatenate(l2_adv), np.concatenate(l2_ret))
        for key, val in ppo_update_l2(b.l2, state.optimisers["l2"], batch, cfg.ppo, state.generator).items():
            scalars[f"train/l2/{key}"] = val
    if episodes:
        multi = build_multi_batch(episodes, b.l3, b.l4, state.critic, cfg.mappo)
        opts = {k: state.optimisers[k] for k in ("l3", "l4", "critic")}
        for key, val in mappo_update(
            b.l3, b.l4, state.critic, opts, multi, cfg.mappo, state.generator
        ).items():
            scalars[f"train/{key}"] = val
    return scalars


def _validate(state: _State, cfg: FinetuneConfig, out: Path) -> float:
    path = out / "validation_policy.pt"
    save_bundle(state.bundle, path)
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
    scores = [rec.final_score for res in _run_tasks(cfg, tasks) for rec in res.learners.values()]
    return float(np.mean(scores)) if scores else float("nan")


def finetune(cfg: FinetuneConfig, *, stop_after: int | None = None) -> dict[str, Any]:
    """Run (or resume) fine-tuning; ``stop_after`` ends this call after that many updates
    (simulates an interruption). Returns a summary (counters, history, paths)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    state = _State(cfg)
    last = out / "last.pt"
    if last.is_file():
        payload = load_checkpoint(last, kind=FINETUNE_KIND)
        saved = payload["config"]
        mine = _config_dict(cfg)
        run_options = ("updates", "workers", "timeout_s", "backend", "ray_address")
        diff = [k for k in mine if k not in run_options and saved.get(k) != mine[k]]
        if diff:
            raise CheckpointError(f"{last}: resuming with another config (fields {diff})")
        state.restore(payload, str(last))
    atomic_write_json(out / "config.json", _config_dict(cfg))
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tensorboard"), purge_step=state.updates + 1)
    done_now = 0
    try:
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
            )
            results = _run_tasks(cfg, tasks)
            t1 = time.perf_counter()
            scalars = _learn(state, cfg, results) if results else {}
            state.updates += 1
            state.worlds += len(results)
            scalars["rollout/worlds"] = float(len(results))
            scalars["time/rollout_s"] = t1 - t0
            scalars["time/learn_s"] = time.perf_counter() - t1
            if cfg.eval_worlds and cfg.eval_every and state.updates % cfg.eval_every == 0:
                metric = _validate(state, cfg, out)
                scalars["val/mean_score"] = metric
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
            done_now += 1
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
        "finished": finished,
        "bundle": str(final) if finished else None,
        "history": state.history,
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


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
