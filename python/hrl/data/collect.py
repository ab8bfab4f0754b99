"""``hrl collect``: run SCML 2025 Standard worlds through :mod:`hrl.distributed` and keep their logs.

Worlds are generated the way ``scml.utils.anac2024_std`` generates official tournament worlds
(``SCML2024StdWorld.generate`` with the official negotiation limits: 20 rounds, 60 s per
negotiation, 20 s per round, 900 s per world, ``negotiation_speed=None``), with 2-4 production
levels, 4-8 agents per level and 50-200 days drawn per world (all overridable). Participants fill
the factories from a shuffled deck so every participant plays about equally often.

Output (``out_dir``, by default ``tournament_history/hrl_data_<timestamp>_std/``)::

    manifest.json        config, and per world: seed, plan, agent types, status, duration, scores
    w00000/ ...          one folder per finished world: negmas' tables (parquet or CSV),
                         params.json, agents.json, world.json (the world's result)

A world runs in a ``<name>.partial`` folder renamed when complete, and ``manifest.json`` is
rewritten atomically after every world, so an interrupted run leaves nothing half-written. Running
the same command again resumes: finished worlds are skipped, failed ones are tried again.

With ``backend="ray"`` each world runs as a Ray task in a scratch folder of the node that runs it
and comes back to the driver as a gzipped tar archive (:func:`collect_world_archive`), which the
driver unpacks into ``<name>.partial`` and renames, so no shared storage is needed and the
output is the same as with the local backend.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from negmas.situated.save import save_stats
from tqdm.auto import tqdm

from hrl.distributed import make_executor
from hrl.errors import ConfigError
from hrl.io import atomic_write_json
from hrl.opponents import DEFAULT_OPPONENTS
from hrl.seeding import derive_seed, seeded_uuid4
from hrl.worlds import WorldResult, WorldSpec, build_world, summarize_world

__all__ = [
    "NEGOTIATION_FOLDERS",
    "OFFICIAL_GENERATE_KWARGS",
    "CollectConfig",
    "WorldPlan",
    "check_world_ranges",
    "collect_world",
    "collect_world_archive",
    "collect_worlds",
    "default_out_dir",
    "plan_worlds",
    "run_logged_world",
]

MANIFEST = "manifest.json"
WORKER_ENV = {"PYTHONHASHSEED": "0"}


def checkpoint_env() -> dict[str, str]:
    """The driver's ``HRL_CHECKPOINT*`` variables (which bundle each LitaAgentHRL variant plays),
    passed on to the processes running worlds: local workers inherit them anyway, Ray tasks only
    see what the executor passes. The paths must be readable where the worlds run."""
    return {k: v for k, v in os.environ.items() if k.startswith("HRL_CHECKPOINT")}


"""Environment of the processes that run worlds: scml/negmas iterate over sets of strings, so a
world is reproducible only under a fixed hash seed (set when the interpreter starts)."""
MANIFEST_VERSION = 1

OFFICIAL_GENERATE_KWARGS: dict[str, Any] = {
    "time_limit": 60 * 15,
    "neg_time_limit": 60,
    "neg_hidden_time_limit": 60,
    "neg_n_steps": 20,
    "neg_step_time_limit": 20,
    "negotiation_speed": None,
    "start_negotiations_immediately": False,
    "n_lines": 10,
}
"""World parameters ``scml.utils.anac_config_generator`` sets for official Standard worlds."""

StorageFormat = Literal["parquet", "csv"]


@dataclass(frozen=True)
class CollectConfig:
    """What to collect. Fields that shape the worlds (all but the run options) must stay the
    same when a collection is resumed.

    Attributes:
        n_worlds: number of worlds.
        agents: import paths of the participants (default: ``hrl.opponents.DEFAULT_OPPONENTS``).
        n_steps: inclusive range of simulated days, drawn per world.
        n_levels: inclusive range of production levels, drawn per world.
        agents_per_level: inclusive range of factories per level, drawn per world and level.
        seed: base seed; world ``i`` gets ``derive_seed(seed, "world", i)``.
        storage_format: ``"parquet"`` (negmas' default) or ``"csv"`` (the ``negotiations.csv``
            family).
        negotiation_folders: also write negmas' per-negotiation folders and ``ufuns.csv``
            (``fast=False``; ~3 MB per world-day, 4-5x slower).
        n_workers: run option: worlds run at the same time.
        world_timeout_s: run option: a world running longer is killed and recorded as ``timeout``.
        max_worlds_per_worker: run option: worker processes are replaced after this many worlds.
        backend: run option: ``"local"`` (process pool) or ``"ray"`` (see :mod:`hrl.distributed`).
        ray_address: run option, Ray only: ``None`` (a private Ray instance on this machine),
            ``"auto"`` or ``"HOST:PORT"`` (an existing cluster).
        max_retries: run option, Ray only: runs of a world again after its worker or node was lost.
    """

    n_worlds: int = 10
    agents: tuple[str, ...] = DEFAULT_OPPONENTS
    n_steps: tuple[int, int] = (50, 200)
    n_levels: tuple[int, int] = (2, 4)
    agents_per_level: tuple[int, int] = (4, 8)
    seed: int = 0
    storage_format: StorageFormat = "parquet"
    negotiation_folders: bool = False
    n_workers: int = 1
    world_timeout_s: float | None = 3600.0
    max_worlds_per_worker: int | None = 4
    backend: str = "local"
    ray_address: str | None = None
    max_retries: int = 2

    def __post_init__(self) -> None:
        if self.n_worlds < 1:
            raise ConfigError(f"n_worlds: must be >= 1, got {self.n_worlds}")
        if not self.agents:
            raise ConfigError("agents: need at least one participant")
        check_world_ranges(self.n_steps, self.n_levels, self.agents_per_level)
        if self.storage_format not in ("parquet", "csv"):
            raise ConfigError(f"storage_format: 'parquet' or 'csv', got {self.storage_format!r}")
        if self.backend not in ("local", "ray"):
            raise ConfigError(f"backend: 'local' or 'ray', got {self.backend!r}")
        if self.ray_address is not None and self.backend != "ray":
            raise ConfigError("ray_address: only with backend='ray'")

    def world_fields(self) -> dict[str, Any]:
        """The fields that decide which worlds are run (compared on resume)."""
        run_options = {"n_workers", "world_timeout_s", "max_worlds_per_worker", "n_worlds"}
        run_options |= {"backend", "ray_address", "max_retries"}
        return {k: v for k, v in _jsonable(dataclasses.asdict(self)).items() if k not in run_options}


@dataclass(frozen=True)
class WorldPlan:
    """One planned world: everything needed to build it again."""

    index: int
    name: str
    seed: int
    n_steps: int
    n_levels: int
    agents: tuple[str, ...]
    agent_processes: tuple[int, ...]


def plan_worlds(config: CollectConfig) -> list[WorldPlan]:
    """The worlds of ``config``, drawn reproducibly from ``config.seed``.

    World ``i`` depends only on the seed, ``i`` and the world fields, so raising ``n_worlds``
    later keeps the first worlds.
    """
    plans = []
    for index in range(config.n_worlds):
        seed = derive_seed(config.seed, "world", index)
        rng = np.random.default_rng(seed)
        n_levels = int(rng.integers(config.n_levels[0], config.n_levels[1] + 1))
        per_level = rng.integers(config.agents_per_level[0], config.agents_per_level[1] + 1, size=n_levels)
        n_steps = int(rng.integers(config.n_steps[0], config.n_steps[1] + 1))
        processes = tuple(level for level, n in enumerate(per_level) for _ in range(int(n)))
        deck: list[str] = []
        agents = []
        for _ in processes:
            if not deck:
                deck = [config.agents[i] for i in rng.permutation(len(config.agents))]
            agents.append(deck.pop())
        plans.append(
            WorldPlan(
                index=index,
                name=f"w{index:05d}",
                seed=seed,
                n_steps=n_steps,
                n_levels=n_levels,
                agents=tuple(agents),
                agent_processes=processes,
            )
        )
    return plans


def default_out_dir(root: str | Path = "tournament_history") -> Path:
    """``<root>/hrl_data_<YYYYmmdd-HHMMSS>_std``."""
    return Path(root) / f"hrl_data_{datetime.now().strftime('%Y%m%d-%H%M%S')}_std"


def collect_world(
    plan: WorldPlan, out_dir: str, storage_format: str, negotiation_folders: bool
) -> dict[str, Any]:
    """Run one planned world and write its logs to ``out_dir/<plan.name>`` (runs in a worker).

    Returns the world's :class:`hrl.worlds.WorldResult` as a dict.
    """
    spec = WorldSpec(
        agents=plan.agents,
        n_steps=plan.n_steps,
        n_processes=plan.n_levels,
        seed=plan.seed,
        name=plan.name,
        world_kwargs={
            "storage_format": storage_format,
            **(NEGOTIATION_FOLDERS if negotiation_folders else {}),
        },
        agent_processes=plan.agent_processes,
        generate_kwargs=OFFICIAL_GENERATE_KWARGS,
    )
    return dataclasses.asdict(run_logged_world(spec, Path(out_dir) / plan.name))


NEGOTIATION_FOLDERS: dict[str, Any] = {
    "fast": False,
    "compact": False,
    "no_logs": False,
    "log_negotiations": True,
}
"""World options that also write one folder per negotiation (negmas' own offer logs)."""


def run_logged_world(spec: WorldSpec, final: Path) -> WorldResult:
    """Run ``spec``'s world with its logs written to ``final`` (what ``hrl audit`` and the parser read).

    The world runs in ``<final>.partial``, renamed to ``final`` once the tables, the stats and
    ``world.json`` (the :class:`~hrl.worlds.WorldResult`) are written, so an interrupted run
    leaves nothing half-written. ``spec.world_kwargs`` may set ``storage_format`` and the
    :data:`NEGOTIATION_FOLDERS` options; ``log_folder`` is set here. Contract ids are seeded as
    in :func:`hrl.worlds.run_world`, so the logged play is the same play.
    """
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    kwargs = {"storage_format": "parquet", **spec.world_kwargs, "log_folder": str(partial)}
    spec = dataclasses.replace(spec, world_kwargs=kwargs)
    with seeded_uuid4(spec.seed):
        world = build_world(spec)
        # negmas rewrites its growing negs/actions tables after every day; write them once at the end.
        save_extra = world._save_extra
        world._save_extra = lambda: None
        start = time.perf_counter()
        while world.step():
            pass
        duration = time.perf_counter() - start
    world._save_extra = save_extra
    world._save_extra()
    save_stats(world, str(partial), storage_format=kwargs["storage_format"])
    result = summarize_world(spec, world, duration)
    atomic_write_json(partial / "world.json", dataclasses.asdict(result))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return result


def collect_world_archive(
    plan: WorldPlan, storage_format: str, negotiation_folders: bool, run_id: str
) -> dict[str, Any]:
    """Run one planned world in a scratch folder of this machine and return it (runs in a Ray task).

    Returns ``{"result": <collect_world's result>, "archive": <gzipped tar of the world folder>}``.
    The scratch folder (``<tmp>/hrl-collect/<run_id>/``) is removed afterwards; one left by a
    killed attempt on the same machine is removed when the world is tried again.
    """
    scratch = Path(tempfile.gettempdir()) / "hrl-collect" / run_id / plan.name
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        result = collect_world(plan, str(scratch), storage_format, negotiation_folders)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
            tar.add(scratch / plan.name, arcname=".")
        return {"result": result, "archive": buffer.getvalue()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            scratch.parent.rmdir()  # the run's folder, once no other world of the run is in it


def _unpack_world(out: Path, name: str, archive: bytes) -> None:
    """Write a world returned by :func:`collect_world_archive` to ``out/name`` (via ``.partial``).

    Extraction uses tarfile's ``data`` filter: no absolute paths, links or paths leaving the folder.
    """
    partial = out / f"{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(partial, filter="data")
    final = out / name
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)


def collect_worlds(
    config: CollectConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    plans: Sequence[WorldPlan] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the collection of ``config`` into ``out_dir``; returns the manifest.

    Args:
        config: what to collect and how to run it.
        out_dir: the collection folder (give the same one to resume).
        progress: show a progress bar.
        plans: run these worlds instead of ``plan_worlds(config)`` (e.g. an evaluation
            tournament's rotations); the caller keeps them reproducible for resume.

    Raises:
        ConfigError: ``out_dir`` holds a collection made with different world fields.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(out, config)
    plans = plan_worlds(config) if plans is None else list(plans)
    for stale in out.glob("*.partial"):
        shutil.rmtree(stale, ignore_errors=True)
    entries: dict[str, Any] = manifest["worlds"]
    todo = [p for p in plans if not _finished(out, entries, p)]
    for plan in todo:
        entries[plan.name] = _plan_entry(plan) | {"status": "pending"}
    atomic_write_json(out / MANIFEST, manifest)
    remaining_days = sum(p.n_steps for p in todo)
    days_done = 0
    start = time.monotonic()
    bar = tqdm(
        total=len(plans), initial=len(plans) - len(todo), desc="worlds", unit="world", disable=not progress
    )
    with make_executor(
        config.backend,
        n_workers=config.n_workers,
        timeout_s=config.world_timeout_s,
        max_tasks_per_worker=config.max_worlds_per_worker,
        ray_address=config.ray_address,
        max_retries=config.max_retries,
        worker_env=WORKER_ENV | checkpoint_env(),
    ) as executor:
        by_name = {p.name: p for p in todo}
        run_id = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        for plan in todo:
            if config.backend == "ray":
                executor.submit(
                    plan.name,
                    collect_world_archive,
                    plan,
                    config.storage_format,
                    config.negotiation_folders,
                    run_id,
                )
            else:
                executor.submit(
                    plan.name,
                    collect_world,
                    plan,
                    str(out),
                    config.storage_format,
                    config.negotiation_folders,
                )
        for result in executor.results():
            plan = by_name[result.key]
            entry = entries[plan.name]
            value = result.value
            if result.ok and config.backend == "ray":
                try:
                    _unpack_world(out, plan.name, value["archive"])
                    value = value["result"]
                except (tarfile.TarError, OSError) as error:
                    result = dataclasses.replace(
                        result, status="error", value=None, error=f"unpacking the returned world: {error}"
                    )
            entry["status"] = "done" if result.ok else result.status
            entry["wall_s"] = round(result.duration_s, 3)
            entry["attempts"] = result.attempts
            if result.ok:
                entry |= {
                    k: value[k] for k in ("scores", "agent_types", "n_contracts_signed", "n_exceptions")
                }
                entry["duration_s"] = value["duration_s"]
                entry.pop("error", None)
            else:
                entry["error"] = result.error
                shutil.rmtree(out / f"{plan.name}.partial", ignore_errors=True)
            atomic_write_json(out / MANIFEST, manifest)
            days_done += plan.n_steps
            remaining_days -= plan.n_steps
            rate = days_done / max(time.monotonic() - start, 1e-9)
            bar.set_postfix_str(f"{rate:.2f} world-days/s, ETA {_hms(remaining_days / rate if rate else 0)}")
            bar.update(1)
    bar.close()
    manifest["summary"] = _summary(entries)
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _finished(out: Path, entries: dict[str, Any], plan: WorldPlan) -> bool:
    entry = entries.get(plan.name, {})
    return bool(entry.get("status") == "done" and (out / plan.name / "world.json").exists())


def _load_manifest(out: Path, config: CollectConfig) -> dict[str, Any]:
    path = out / MANIFEST
    fresh = {"version": MANIFEST_VERSION, "config": _jsonable(dataclasses.asdict(config)), "worlds": {}}
    if not path.exists():
        return fresh
    try:
        old = json.loads(path.read_text())
        previous = CollectConfig(**{k: _untuple(v) for k, v in old["config"].items()})
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{path}: not a manifest of `hrl collect` ({error})") from error
    if previous.world_fields() != config.world_fields():
        changed = sorted(k for k, v in config.world_fields().items() if previous.world_fields().get(k) != v)
        raise ConfigError(
            f"{out}: holds a collection with different settings ({', '.join(changed)}); use a new --out"
        )
    old["config"] = fresh["config"]
    return dict(old)


def _plan_entry(plan: WorldPlan) -> dict[str, Any]:
    return {
        "seed": plan.seed,
        "n_steps": plan.n_steps,
        "n_levels": plan.n_levels,
        "agents": list(plan.agents),
        "agent_processes": list(plan.agent_processes),
    }


def _summary(entries: dict[str, Any]) -> dict[str, Any]:
    statuses = [e["status"] for e in entries.values()]
    counts: dict[str, Any] = {s: statuses.count(s) for s in sorted(set(statuses))}
    counts["world_days_done"] = sum(e["n_steps"] for e in entries.values() if e["status"] == "done")
    return counts


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _untuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _hms(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def check_world_ranges(
    n_steps: tuple[int, int], n_levels: tuple[int, int], agents_per_level: tuple[int, int]
) -> None:
    """Check the inclusive ranges worlds are drawn from (days >= 1, levels >= 2, factories >= 1).

    Raises:
        ConfigError: a range with ``low > high`` or below its minimum; names the field.
    """
    for name, (low, high), minimum in (
        ("n_steps", n_steps, 1),
        ("n_levels", n_levels, 2),
        ("agents_per_level", agents_per_level, 1),
    ):
        if not minimum <= low <= high:
            raise ConfigError(f"{name}: need {minimum} <= low <= high, got ({low}, {high})")


def parse_range(text: str, name: str) -> tuple[int, int]:
    """``"50,200"`` -> ``(50, 200)``; ``"100"`` -> ``(100, 100)``."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError as error:
        raise ConfigError(f"{name}: expected 'LOW,HIGH' or 'N', got {text!r}") from error
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) != 2:
        raise ConfigError(f"{name}: expected 'LOW,HIGH' or 'N', got {text!r}")
    return parts[0], parts[1]


def split_agents(text: str | Sequence[str]) -> tuple[str, ...]:
    """Comma-separated import paths or agent specs -> tuple. Commas inside a spec's JSON
    arguments (``a.B{"x": 1, "y": 2}``, :func:`hrl.opponents.split_agent_spec`) do not split."""
    if not isinstance(text, str):
        return tuple(a.strip() for a in text if a.strip())
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char == "{") - (char == "}")
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return tuple(a.strip() for a in items if a.strip())
