"""The local executor: results in completion order, errors/timeouts/crashes become results, recycling."""

from __future__ import annotations

import os
import time

import pytest

from hrl.distributed import LocalExecutor, make_executor
from hrl.errors import ConfigError


def square(x: int) -> int:
    return x * x


def sleep_then(seconds: float, value: str) -> str:
    time.sleep(seconds)
    return value


def fail(message: str) -> None:
    raise RuntimeError(message)


def die(code: int) -> None:
    os._exit(code)


def pid() -> int:
    return os.getpid()


def many_tensors(n: int) -> list:
    import torch

    return [torch.full((3,), float(i)) for i in range(n)]


def test_values_come_back_for_every_task() -> None:
    with make_executor(n_workers=2) as ex:
        for i in range(6):
            ex.submit(f"t{i}", square, i)
        results = {r.key: r for r in ex.results()}
    assert {k: r.value for k, r in results.items()} == {f"t{i}": i * i for i in range(6)}
    assert all(r.ok and r.error is None for r in results.values())


def test_hung_task_is_killed_and_does_not_block_the_others() -> None:
    start = time.monotonic()
    with LocalExecutor(n_workers=2, timeout_s=60) as ex:
        ex.submit("hung", sleep_then, 600.0, "never", timeout_s=5.0)
        for i in range(3):
            ex.submit(f"quick{i}", sleep_then, 0.1, f"v{i}")
        results = list(ex.results())
    by_key = {r.key: r for r in results}
    assert by_key["hung"].status == "timeout" and by_key["hung"].value is None
    assert "killed after 5 s" in (by_key["hung"].error or "")
    assert [by_key[f"quick{i}"].value for i in range(3)] == ["v0", "v1", "v2"]
    assert results[-1].key == "hung"  # the quick ones finished while the hung one was still running
    assert time.monotonic() - start < 30


def test_errors_and_crashes_are_results_and_the_pool_recovers() -> None:
    with LocalExecutor(n_workers=1) as ex:
        ex.submit("err", fail, "boom")
        ex.submit("crash", die, 3)
        ex.submit("after", square, 7)
        by_key = {r.key: r for r in ex.results()}
    assert by_key["err"].status == "error" and "RuntimeError: boom" in (by_key["err"].error or "")
    assert by_key["crash"].status == "crashed" and "code 3" in (by_key["crash"].error or "")
    assert by_key["after"].value == 49


def test_workers_are_recycled_after_max_tasks() -> None:
    with LocalExecutor(n_workers=1, max_tasks_per_worker=2) as ex:
        for i in range(5):
            ex.submit(f"p{i}", pid)
        pids = [r.value for r in sorted(ex.results(), key=lambda r: r.key)]
        started = ex.n_workers_started
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert started == 3


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="n_workers"):
        LocalExecutor(n_workers=0)
    with pytest.raises(ConfigError, match="backend"):
        make_executor("nowhere")
    with LocalExecutor() as ex:
        ex.submit("a", square, 1)
        with pytest.raises(ConfigError, match="already submitted"):
            ex.submit("a", square, 2)


def string_hash(text: str) -> int:
    return hash(text)


def test_worker_env_fixes_the_hash_seed_of_the_workers() -> None:
    import subprocess
    import sys

    expected = subprocess.run(
        [sys.executable, "-c", "print(hash('abcdef'))"],
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    before = os.environ.get("PYTHONHASHSEED")
    with LocalExecutor(n_workers=2, max_tasks_per_worker=1, worker_env={"PYTHONHASHSEED": "0"}) as ex:
        for i in range(3):
            ex.submit(f"h{i}", string_hash, "abcdef")
        values = {r.value for r in ex.results()}
    assert values == {int(expected)}
    assert os.environ.get("PYTHONHASHSEED") == before


def test_the_ray_backend_without_ray_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    with pytest.raises(ConfigError, match=r"hrl\[ray\]"):
        make_executor("ray")
    with pytest.raises(ConfigError, match="ray_address"):
        make_executor("local", ray_address="auto")
    code = "import sys, hrl.distributed, hrl.data.collect, hrl.cli; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ray_options_without_the_ray_backend_are_refused() -> None:
    from hrl.cli import main
    from hrl.data.collect import CollectConfig

    with pytest.raises(ConfigError, match="ray_address"):
        CollectConfig(ray_address="auto")
    with pytest.raises(ConfigError, match="backend"):
        CollectConfig(backend="dask")
    assert main(["collect", "--worlds", "1", "--ray-address", "auto"]) == 2
    with pytest.raises(ConfigError, match="ray_address"):
        make_executor("ray", ray_address="no-port")


def test_results_holding_more_tensors_than_the_kernel_maps_come_back() -> None:
    """A rollout result of a 100-day world holds tens of thousands of tensors; sent through
    torch's shared-memory pickling each would be one mapping in the receiver, past
    vm.max_map_count (65,530 by default), and the receive failed with ENOMEM."""
    n = 70_000
    with LocalExecutor(n_workers=1, timeout_s=300) as ex:
        ex.submit("many", many_tensors, n)
        (result,) = list(ex.results())
    assert result.ok, result.error
    assert len(result.value) == n and float(result.value[-1][0]) == n - 1
