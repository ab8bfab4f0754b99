"""``hrl finetune`` is reproducible by default: fresh processes with DIFFERENT hash seeds and the
default ``--workers 0`` give bit-identical updates (the CLI re-executes itself under
``PYTHONHASHSEED=0``), and a resume in a fresh process continues bit-identically.

(Without the re-exec, two processes with PYTHONHASHSEED 1 and 2 already differ in update 1's
rollout: scml/negmas iterate over sets of strings.) And a seeded world does not depend on how
fast the machine runs (negmas' mechanisms draw from their own RNG).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import hrl
from finetune_checks import assert_same_checkpoints
from hrl.opponents import BUILTINS, PENGUIN, load_agent_class
from hrl.train.bundle import Bundle, fresh_bundle, save_bundle
from hrl.train.finetune import _baseline_near_l3
from hrl.worlds import WorldSpec, run_world

RANDOM = BUILTINS[1]  # SyncRandomStdAgent: draws from Python's global random stream


class SlowRandomAgent(load_agent_class(RANDOM)):  # type: ignore[misc]
    """SyncRandomStdAgent that spends ``delay`` seconds in its first round (a loaded machine)."""

    delay = 0.0
    slept = False

    def counter_all(self, offers: Any, states: Any) -> Any:
        if not SlowRandomAgent.slept:
            SlowRandomAgent.slept = True
            time.sleep(SlowRandomAgent.delay)
        return super().counter_all(offers, states)


def test_a_seeded_world_does_not_depend_on_wall_clock_time() -> None:
    """negmas draws from the global random stream each time a negotiation's wall time crosses a
    whole second; with its own stream (hrl.seeding.isolate_mechanism_rng) a slow round changes
    nothing. The same agents (and ids) in both worlds; only the first round's duration differs."""
    spec = WorldSpec(
        agents=(f"{__name__}.SlowRandomAgent", PENGUIN, RANDOM, BUILTINS[2], RANDOM, PENGUIN),
        n_steps=3,
        n_processes=2,
        seed=4,
    )

    def scores(delay: float) -> dict[str, float]:
        SlowRandomAgent.delay, SlowRandomAgent.slept = delay, False
        out = run_world(spec).scores
        assert SlowRandomAgent.slept
        return out

    assert scores(0.0) == scores(1.1)


SMALL = ["--worlds-per-update", "1", "--n-steps", "5,5", "--factories-per-level", "3,3", "--eval-worlds", "0"]
SMALL += ["--pool", ",".join((PENGUIN, *BUILTINS))]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    b = fresh_bundle(3)
    path = tmp_path_factory.mktemp("repro") / "bundle.pt"
    save_bundle(Bundle(l2=b.l2, l3=_baseline_near_l3(3), l4=b.l4, extra={"source": "fresh"}), path)
    return path


def _finetune(bundle: Path, out: Path, updates: int, hash_seed: str, *extra: str) -> subprocess.Popen[str]:
    """Start ``python -m hrl.cli finetune`` in a fresh process whose own hash seed is ``hash_seed``."""
    src = str(Path(hrl.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONHASHSEED": hash_seed,
        "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
    }
    args = ["finetune", "--bundle", str(bundle), "--out", str(out), "--updates", str(updates), *SMALL, *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "hrl.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]


def test_two_fresh_processes_give_identical_updates(bundle: Path, tmp_path: Path) -> None:
    _wait(
        _finetune(bundle, tmp_path / "a", 1, "1"), _finetune(bundle, tmp_path / "b", 1, "2")
    )  # side by side
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert len(a["history"]) == 1 and a["history"][0]["train/l2/approx_kl"] > 0  # it did learn
    assert_same_checkpoints(a, b)


@pytest.mark.slow
def test_resume_in_a_fresh_process_is_bit_identical(bundle: Path, tmp_path: Path) -> None:
    _wait(_finetune(bundle, tmp_path / "full", 2, "1"), _finetune(bundle, tmp_path / "part", 1, "2"))
    _wait(_finetune(bundle, tmp_path / "part", 2, "3"))  # resumes from part/last.pt
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert_same_checkpoints(a, b)
