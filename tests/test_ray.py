"""The Ray backend on a real private Ray instance (2 CPUs, loopback only): values, errors, time
limits, a real world killed mid-run and retried once, shared objects, and a real collection whose
samples equal the local backend's. One instance serves the whole module (starting one costs
10-20 s here) and the last test checks that closing it stops every Ray process it started;
``test_ray_cluster.py`` covers clusters started with ``ray start``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psutil
import pytest
import ray

from conftest import tiny_config
from hrl.cli import main
from hrl.data import write_datasets
from hrl.data.collect import collect_world_archive, plan_worlds
from hrl.distributed import LocalExecutor, RayExecutor, Shared, make_executor
from hrl.errors import ConfigError

# Ray workers do not have tests/ on their path: send this module's functions by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def square(x: int) -> int:
    return x * x


def sleep_then(seconds: float, value: str) -> str:
    time.sleep(seconds)
    return value


def fail(message: str) -> None:
    raise RuntimeError(message)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_on_first_attempt(marker: str, value: int) -> int:
    if not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def world_killed_on_first_attempt(marker: str, plan: Any, run_id: str) -> dict[str, Any]:
    """``collect_world_archive``, but on the first attempt the worker process SIGKILLs itself
    when the world reaches day 3 (the fault is injected in this worker only)."""
    if not os.path.exists(marker):
        Path(marker).touch()
        import hrl.data.collect

        build_world = hrl.data.collect.build_world

        def build_then_die_on_day_3(spec: Any) -> Any:
            world = build_world(spec)
            step = world.step

            def step_or_die(*args: Any, **kwargs: Any) -> Any:
                if world.current_step == 3:
                    Path(marker + ".killed").write_text(str(world.current_step))
                    os.kill(os.getpid(), signal.SIGKILL)
                return step(*args, **kwargs)

            world.step = step_or_die
            return world

        hrl.data.collect.build_world = build_then_die_on_day_3
    return collect_world_archive(plan, "parquet", False, run_id)


def linear_policy_rollout(weights: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """A tiny rollout: a linear policy over seeded observations; reports what it received."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(16, weights["w"].shape[0]))
    actions = np.tanh(obs @ weights["w"] + weights["b"])
    return {
        "actions": actions.round(12).tolist(),
        "weights_writeable": bool(weights["w"].flags.writeable),
        "pid": os.getpid(),
    }


def is_ray_process(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        if process.name() in ("gcs_server", "raylet") or process.name().startswith("ray::"):
            return True
        return any("/ray/" in arg for arg in process.cmdline())
    return False


def ray_processes() -> list[psutil.Process]:
    """Ray's processes below this one (not e.g. multiprocessing's resource tracker)."""
    return [p for p in psutil.Process().children(recursive=True) if is_ray_process(p)]


def alive(pids: list[int]) -> list[int]:
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
    return out


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[RayExecutor]:
    """A private Ray instance started the way ``hrl`` starts it; later executors reuse it."""
    owner = RayExecutor(n_workers=2)
    try:
        yield owner
    finally:
        owner.close()


def test_listens_on_loopback_only(ray_instance: RayExecutor) -> None:
    with make_executor("ray", n_workers=2) as ex:  # start the workers too
        ex.submit("a", square, 3)
        assert [r.value for r in ex.results()] == [9]
    pids = {p.pid for p in ray_processes()} | {os.getpid()}
    listening = [c for c in psutil.net_connections("inet") if c.status == "LISTEN" and c.pid in pids]
    assert len(listening) >= 3  # GCS, raylet, workers at least
    for conn in listening:
        assert conn.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1"), conn
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")


def test_values_errors_and_timeouts(ray_instance: RayExecutor) -> None:
    start = time.monotonic()
    with RayExecutor(n_workers=2, timeout_s=60) as ex:
        ex.submit("hung", sleep_then, 600.0, "never", timeout_s=15.0)
        ex.submit("err", fail, "boom")
        for i in range(4):
            ex.submit(f"sq{i}", square, i)
        results = list(ex.results())
    by_key = {r.key: r for r in results}
    assert len(results) == len(by_key) == 6
    assert {k: by_key[k].value for k in ("sq0", "sq1", "sq2", "sq3")} == {f"sq{i}": i * i for i in range(4)}
    assert by_key["err"].status == "error" and "RuntimeError: boom" in (by_key["err"].error or "")
    hung = by_key["hung"]
    assert hung.status == "timeout" and hung.value is None and "killed after 15 s" in (hung.error or "")
    assert results[-1].key == "hung"  # the others finished on the second CPU meanwhile
    assert time.monotonic() - start < 90


def test_lost_worker_is_retried_and_reported_once(ray_instance: RayExecutor, tmp_path: Path) -> None:
    with RayExecutor(n_workers=2, max_retries=1) as ex:
        ex.submit("flaky", die_on_first_attempt, str(tmp_path / "marker"), 42)
        ex.submit("dead", die)
        ex.submit("after", square, 7)
        results = list(ex.results())
        n_attempts = ex.n_attempts
    by_key = {r.key: r for r in results}
    assert len(results) == 3
    assert by_key["flaky"].status == "ok" and by_key["flaky"].value == 42 and by_key["flaky"].attempts == 2
    assert by_key["dead"].status == "crashed" and by_key["dead"].attempts == 2
    assert "WorkerCrashedError" in (by_key["dead"].error or "")
    assert by_key["after"].value == 49 and by_key["after"].attempts == 1
    assert n_attempts == 5
    with RayExecutor(n_workers=1, max_retries=0) as ex:
        ex.submit("flaky", die_on_first_attempt, str(tmp_path / "marker2"), 1)
        (result,) = ex.results()
    assert result.status == "crashed" and result.attempts == 1


def test_world_killed_mid_run_is_retried_and_counted_once(ray_instance: RayExecutor, tmp_path: Path) -> None:
    (plan,) = plan_worlds(tiny_config("parquet", n_worlds=1))
    marker = str(tmp_path / "marker")
    run_id = f"test-kill-{os.getpid()}"
    with RayExecutor(n_workers=2, max_retries=2, timeout_s=300) as ex:
        ex.submit(plan.name, world_killed_on_first_attempt, marker, plan, run_id)
        results = list(ex.results())
        assert ex.n_attempts == 2
    assert len(results) == 1
    (result,) = results
    assert result.status == "ok" and result.attempts == 2, result.error
    assert Path(marker + ".killed").read_text() == "3"  # the first attempt died on day 3 of 6-8
    assert result.value["result"]["n_steps"] == plan.n_steps
    assert len(result.value["archive"]) > 1000
    assert not (Path(tempfile.gettempdir()) / "hrl-collect" / run_id).exists()  # scratch cleaned up


def test_shared_weights_are_put_once_and_read_from_the_object_store(ray_instance: RayExecutor) -> None:
    rng = np.random.default_rng(0)
    weights = {"w": rng.normal(size=(64, 4)), "b": rng.normal(size=4)}
    outputs: dict[str, dict[str, Any]] = {}
    for backend in ("local", "ray"):
        with make_executor(backend, n_workers=2) as ex:
            handle = ex.share(weights)
            assert isinstance(handle, Shared)
            for seed in range(4):
                ex.submit(f"r{seed}", linear_policy_rollout, handle, seed)
            outputs[backend] = {r.key: r.value for r in ex.results() if r.ok}
            if backend == "ray":
                assert isinstance(handle.ref, ray.ObjectRef)
    assert len(outputs["ray"]) == len(outputs["local"]) == 4
    for key in outputs["local"]:
        assert outputs["ray"][key]["actions"] == outputs["local"][key]["actions"]
        assert outputs["local"][key]["weights_writeable"]  # pickled copy per task
        assert not outputs["ray"][key]["weights_writeable"]  # zero-copy view of the shared object
    with (
        RayExecutor(n_workers=1) as a,
        LocalExecutor(n_workers=1) as b,
        pytest.raises(ConfigError, match="Shared handle"),
    ):
        b.submit("x", linear_policy_rollout, a.share(weights), 0)


def _canonical(frame: pl.DataFrame) -> list[Any]:
    """The rows of a sample table as a sorted list, without timing columns, with negmas'
    negotiation ids (random ``uuid4`` values, not seeded) replaced by the grouping they define:
    each negotiation's rows become one sorted group."""
    timing = [c for c in frame.columns if c.endswith("_s") or "wall" in c or "duration" in c]
    frame = frame.drop(timing)
    if "negotiation_id" not in frame.columns:
        return sorted(json.dumps(row, sort_keys=True, default=str) for row in frame.to_dicts())
    groups: dict[str, list[str]] = {}
    for row in frame.to_dicts():
        key = row.pop("negotiation_id")
        groups.setdefault(key, []).append(json.dumps(row, sort_keys=True, default=str))
    return sorted(sorted(rows) for rows in groups.values())


def test_ray_collection_equals_local_and_resumes(
    ray_instance: RayExecutor, parquet_collection: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ray"
    config = tiny_config("parquet")
    args = [
        "collect",
        "--out",
        str(out),
        "--seed",
        "5",
        "--no-progress",
        "--backend",
        "ray",
        "--workers",
        "2",
    ]
    args += [
        "--agents",
        ",".join(config.agents),
        "--n-steps",
        "6,8",
        "--levels",
        "2",
        "--agents-per-level",
        "3",
    ]
    assert main([*args, "--worlds", "1"]) == 0
    first = out / "w00000" / "world.json"
    stamp = first.stat().st_mtime_ns
    assert main([*args, "--worlds", "2"]) == 0  # resumes: only w00001 runs
    assert first.stat().st_mtime_ns == stamp
    ray_manifest = json.loads((out / "manifest.json").read_text())
    local_manifest = json.loads((parquet_collection / "manifest.json").read_text())
    assert ray_manifest["summary"] == {
        "done": 2,
        "world_days_done": local_manifest["summary"]["world_days_done"],
    }
    assert ray_manifest["config"]["backend"] == "ray"
    for name, entry in ray_manifest["worlds"].items():
        local = local_manifest["worlds"][name]
        assert entry["attempts"] == 1
        for key in ("seed", "n_steps", "agents", "agent_types", "scores", "n_contracts_signed", "status"):
            assert entry[key] == local[key], (name, key)
        assert sorted(p.name for p in (out / name).iterdir()) == sorted(
            p.name for p in (parquet_collection / name).iterdir()
        )
    assert not list(out.glob("*.partial"))
    reports = {}
    for label, logs in (("local", parquet_collection), ("ray", out)):
        reports[label] = write_datasets(logs, tmp_path / f"samples-{label}")
    assert reports["ray"]["macro_rows"] == reports["local"]["macro_rows"] > 0
    assert reports["ray"]["micro_rows"] == reports["local"]["micro_rows"] > 0
    for table in ("macro", "micro"):
        local_frame = pl.read_parquet(tmp_path / "samples-local" / f"{table}.parquet")
        ray_frame = pl.read_parquet(tmp_path / "samples-ray" / f"{table}.parquet")
        assert ray_frame.columns == local_frame.columns
        assert _canonical(ray_frame) == _canonical(local_frame), table
    macro = {label: pl.read_parquet(tmp_path / f"samples-{label}" / "macro.parquet") for label in reports}
    assert macro["ray"].equals(macro["local"])  # no ids there: equal row for row


def test_closing_the_private_instance_stops_every_process_it_started(ray_instance: RayExecutor) -> None:
    """Runs last in this module: closes the module's instance (the fixture's close is then a no-op)."""
    started = [p.pid for p in ray_processes()]
    names = {p.name() for p in ray_processes()}
    assert {"gcs_server", "raylet"} <= names, names
    ray_instance.close()
    assert not ray.is_initialized()
    deadline = time.monotonic() + 15
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive(started)
    for pid in left:  # never leave them behind, even when the test fails
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"Ray processes still running after close(): {left}"


def test_rollouts_share_the_bundle_and_evaluation_matches_local_on_ray(
    ray_instance: RayExecutor, tmp_path: Path
) -> None:
    from hrl.evaluate import EvaluateConfig, run_evaluation
    from hrl.opponents import BUILTINS, PENGUIN
    from hrl.train.bundle import fresh_bundle, save_bundle
    from hrl.train.rollout import plan_rollouts
    from hrl.train.run_worlds import run_worlds

    bundle = tmp_path / "bundle.pt"
    save_bundle(fresh_bundle(1), bundle)
    tasks = plan_rollouts(
        bundle_path=str(bundle),
        n_worlds=2,
        seed=3,
        update=0,
        pool=(PENGUIN, *BUILTINS),
        n_learners=1,
        n_steps=(5, 5),
        factories_per_level=(3, 3),
    )
    # the bundle reaches the tasks through the object store only
    results, failures = run_worlds(tasks, phase="rollout", update=1, workers=2, backend="ray")
    assert len(results) == 2 and all(r.learners for r in results) and not failures
    assert all(len(rec.transitions.l2) == 5 for r in results for rec in r.learners.values())

    config = {
        "agents": ("hrl.agent.l1.LitaAgentL1",),
        "opponents": (PENGUIN,),
        "n_configs": 1,
        "n_rotations": 2,
        "n_steps": (5, 5),
        "n_levels": (2, 2),
        "agents_per_level": (2, 2),
        "n_workers": 2,
    }
    local = run_evaluation(EvaluateConfig(**config), tmp_path / "local", progress=False)  # type: ignore[arg-type]
    on_ray = run_evaluation(
        EvaluateConfig(**config, backend="ray"),  # type: ignore[arg-type]
        tmp_path / "ray",
        progress=False,
    )
    assert [(s.agent, s.official) for s in on_ray.summaries] == [
        (s.agent, s.official) for s in local.summaries
    ]
