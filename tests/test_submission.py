"""``hrl submission`` and the pure-Python L1 it plays with.

- The vendored copy's imports stay inside :data:`hrl.submission.vendor.MODULES`.
- The fallback L1 (``hrl.safety.fallback``) decides as the Rust path on every state of a real
  world played with the fallback forced on, and the same seeded world gives the same scores.
- Without the extension (or with ``HRL_FORCE_PURE_L1=1``) L1 warns once and runs in Python.
- A built submission, unzipped outside the repository, plays a 20-day world in a fresh
  interpreter that cannot import ``hrl`` (``PYTHONPATH`` = the unpacked folder only), against
  PenguinAgent and built-ins: it scores, raises nothing, and its models act.
- Bad input (missing, corrupt or version-1 bundle; an existing output; a bad name) is a typed
  error and leaves nothing behind.
- ``slow``: a fresh venv from the submission's ``requirements.txt`` alone plays it (network).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hrl import _core
from hrl.errors import CheckpointError, SubmissionError
from hrl.evaluate.compare import EVALUATION_WORLD_KWARGS
from hrl.opponents import BUILTINS, PENGUIN
from hrl.safety import backend, fallback
from hrl.submission import build_submission
from hrl.submission.build import package_name
from hrl.submission.isolated import BLOCKED_MESSAGE, run_isolated
from hrl.submission.vendor import MODULES, SOURCE, hrl_imports
from hrl.train.bundle import fresh_bundle, save_bundle
from hrl.train.checkpoint import load_checkpoint, save_checkpoint
from hrl.worlds import WorldSpec, build_world, run_world

HRL = "hrl.agent.hrl.LitaAgentHRL"
DRIVER = Path(__file__).with_name("submission_world.py")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small version-2 bundle (untrained L2 + L3 + L4)."""
    return save_bundle(fresh_bundle(0), tmp_path_factory.mktemp("bundle") / "bundle.pt")


@pytest.fixture(scope="module")
def built(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_submission(bundle, tmp_path_factory.mktemp("built") / "out", name="LitaAgentHRL")


def _module(rel: str) -> str:
    return "hrl." + rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def test_the_vendored_modules_import_only_each_other() -> None:
    shipped = {_module(rel) for rel in MODULES} | {"hrl", "hrl.train"}
    for rel in MODULES:
        outside = {
            m for m in hrl_imports(SOURCE / rel) if m not in shipped and m.rpartition(".")[0] not in shipped
        }
        assert not outside, (rel, outside)


def test_package_names() -> None:
    assert package_name("LitaAgentHRL") == "lita_agent_hrl"
    assert package_name("MyAgent2") == "my_agent2"
    for bad in ("lita", "Lita-Agent", "Lita Agent", ""):
        with pytest.raises(SubmissionError, match="class name"):
            package_name(bad)


def test_forced_fallback_warns_once_and_runs_in_python() -> None:
    """``HRL_FORCE_PURE_L1=1``; a missing extension is the submission test's case (its copy of
    hrl has no ``_core``; ``hrl`` itself needs the extension for ``compute_gae``)."""
    code = (
        "import logging; logging.basicConfig(level=logging.WARNING)\n"
        "import hrl.safety, hrl.safety.backend as b, hrl.safety.world_model\n"
        "from hrl.safety.fallback import Limits\n"
        "s = hrl.safety.SafetyState(0, 5, 2, 0, (0,), (0,), 10.0, 0.0, 1.0, 2.0, 4.0, (1, 3), (1, 3),"
        " (1, 3), (3, 5))\n"
        "print(b.NAME, type(hrl.safety.derive_limits(s)) is Limits)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env({"HRL_FORCE_PURE_L1": "1"}),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["python", "True"]
    assert done.stderr.count("L1 runs on the pure-Python fallback") == 1, done.stderr


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("HRL_")} | extra


def _recorded(world: Any) -> list[Any]:
    agents = [a._obj for a in world.agents.values() if hasattr(getattr(a, "_obj", None), "rounds")]
    for agent in agents:
        agent.record = True
    return agents


def _same_limits(state: Any) -> None:
    rust, pure = _core.derive_limits(state), fallback.derive_limits(state)
    for name in (
        "buy_caps",
        "sell_caps",
        "hard_sell_caps",
        "buy_price",
        "sell_price",
        "free_cash",
        "stock_model",
    ):
        assert getattr(rust, name) == getattr(pure, name), (name, state)


def test_the_fallback_decides_as_rust_in_a_real_world(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRL_CHECKPOINT", str(bundle))
    spec = WorldSpec(
        agents=(HRL, PENGUIN, "hrl.agent.l1.LitaAgentL1", *BUILTINS[:2], HRL),
        n_steps=12,
        n_processes=2,
        seed=4,
        world_kwargs=EVALUATION_WORLD_KWARGS,
    )
    with monkeypatch.context() as patch:
        patch.setattr(backend, "kernels", fallback)
        world = build_world(spec)
        agents = _recorded(world)
        while world.step():
            pass
    rounds = [(masked, agent) for agent in agents for _, masked, _ in agent.rounds]
    assert len(rounds) > 50 and all(getattr(a, "policy", True) is not None for a in agents)
    for masked, _ in rounds:
        # The rows the fallback returned during play are what Rust returns on the same inputs.
        opened = np.array(masked.open_offers, dtype=np.int64).reshape(-1, 4)
        items = np.array(masked.items, dtype=np.int64).reshape(-1, 5)
        rows = _core.round_step(masked.state, opened, items).tolist()
        assert [tuple(r) for r in rows] == [tuple(r) for r in masked.results]
        _same_limits(masked.state)
    # The same seeded world, once per path: the same play, to the last contract.
    with monkeypatch.context() as patch:
        patch.setattr(backend, "kernels", fallback)
        pure = run_world(spec)
    rust = run_world(spec)
    assert pure.scores == rust.scores and pure.n_contracts_signed == rust.n_contracts_signed


def test_a_submission_plays_without_the_repository(built: Any, tmp_path: Path) -> None:
    assert built.class_path == "lita_agent_hrl.LitaAgentHRL" and built.zip_path.is_file()
    assert [c.rule for c in built.checks if c.status == "fail"] == []
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(built.zip_path) as archive:
        archive.extractall(unpacked)
    assert sorted(p.name for p in unpacked.iterdir()) == ["lita_agent_hrl"]
    pkg = unpacked / "lita_agent_hrl"
    for name in (
        "__init__.py",
        "agent.py",
        "requirements.txt",
        "README.md",
        "MANIFEST.json",
        "weights/bundle.pt",
    ):
        assert (pkg / name).is_file(), name
    assert not list(pkg.rglob("*.so"))
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    done = run_isolated(
        DRIVER.read_text(),
        path=unpacked,
        blocked=("hrl",),
        cwd=cwd,
        timeout=300,
        args=("lita_agent_hrl", "LitaAgentHRL", "20"),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["hrl_importable"] is False
    assert len(result["ours"]) == 2 and result["exceptions"] == 0
    assert all(math.isfinite(result["scores"][aid]) for aid in result["ours"])
    assert all(result["policy"].values()) and not any(result["fallback"].values())
    assert sum("L1 runs on the pure-Python fallback" in w for w in result["warnings"]) == 1
    assert result["calls"] > 50 and result["max_ms"] < 20_000  # the league's 20 s per round


def test_the_isolated_interpreter_cannot_import_hrl(tmp_path: Path) -> None:
    done = run_isolated("import hrl", path=tmp_path, blocked=("hrl",), cwd=tmp_path, timeout=60)
    assert done.returncode != 0 and BLOCKED_MESSAGE in done.stderr


def _nothing_left(parent: Path, before: set[str]) -> None:
    assert {p.name for p in parent.iterdir()} == before


def test_bad_bundles_are_typed_errors_and_write_nothing(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bundle.read_bytes()[:5000])
    payload = load_checkpoint(bundle, kind="bundle")
    old = save_checkpoint(
        tmp_path / "v1.pt",
        {k: payload[k] for k in ("kind", "models", "model_classes", "model_configs")} | {"bundle_version": 1},
    )
    before = {p.name for p in tmp_path.iterdir()}
    for bad, match in ((tmp_path / "missing.pt", "no such"), (corrupt, "corrupt"), (old, "bundle version 1")):
        with pytest.raises(CheckpointError, match=match):
            build_submission(bad, out)
        _nothing_left(tmp_path, before)


def test_an_existing_output_needs_force(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SubmissionError, match="--force"):
        build_submission(bundle, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    # --force replaces it (the import check is the slow part, covered above: skipped here).
    monkeypatch.setattr("hrl.submission.build.check_folder", lambda folder, **_: [])
    made = build_submission(bundle, out, force=True, name="MyAgent")
    assert made.class_path == "my_agent.MyAgent"
    assert sorted(p.name for p in out.iterdir()) == ["my_agent", "my_agent.zip"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_broken_rule_fails_the_build_and_writes_nothing(
    built: Any, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = built.checks
    assert {c.rule: c.status for c in checks} == {
        "agent_class": "pass",
        "dependencies": "pass",
        "scml_version": "pass",
        "size": "pass",
        "time_limits": "info",
    }
    monkeypatch.setattr("hrl.submission.rules.ALLOWED", ("negmas", "numpy", "scml"))
    monkeypatch.setattr("hrl.submission.rules._agent_class", lambda *a: checks[0])
    with pytest.raises(SubmissionError, match="dependencies"):
        build_submission(bundle, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_fresh_venv_from_the_requirements_alone_plays_the_submission(built: Any, tmp_path: Path) -> None:
    """Needs the network (PyPI and PyTorch's CPU index); not run in CI (``make test-slow``)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(built.folder / "requirements.txt")],
        check=True,
        timeout=1800,
    )
    code = (
        "from scml.std import SCML2024StdWorld\n"
        "from scml.std.agents import GreedyStdAgent, RandomStdAgent\n"
        "from lita_agent_hrl import LitaAgentHRL\n"
        "w = SCML2024StdWorld(**SCML2024StdWorld.generate(agent_types=[LitaAgentHRL, GreedyStdAgent, "
        "RandomStdAgent, LitaAgentHRL], agent_processes=[0, 0, 1, 1], n_steps=20, n_processes=2))\n"
        "w.run()\nprint(sum(len(v) for v in w.agent_exceptions.values()))\n"
    )
    done = subprocess.run(
        [str(python), "-c", code],
        cwd=tmp_path,
        env=_env({"PYTHONPATH": str(built.folder.parent)}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.split()[-1] == "0"
