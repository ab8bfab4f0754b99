"""The main job: typed presets, a tiny real end-to-end run, and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hrl import pipeline
from hrl.errors import ConfigError
from hrl.opponents import load_agent_class
from hrl.pipeline import STAGES, load_preset, run_pipeline

TINY = """
[collect]
worlds = 2
n_steps = [5, 6]
levels = [2, 2]
agents_per_level = [3, 4]
agents = ["scml_agents.scml2024.standard.team_penguin.penguinagent.PenguinAgent",
          "scml.std.agents.greedy.GreedyStdAgent", "scml.std.agents.rand.SyncRandomStdAgent"]
workers = 2

[pretrain]
epochs = 2

[finetune]
updates = 1
worlds_per_update = 1
n_steps = [5, 6]
workers = 0
eval_every = 1
eval_worlds = 0

[evaluate]
configs = 1
rotations = 2
n_steps = [5, 5]
levels = [2, 2]
agents_per_level = [4, 4]
workers = 2
"""


def test_packaged_presets_load_and_bad_presets_are_config_errors(tmp_path: Path) -> None:
    quick, full = load_preset("quick"), load_preset("full")
    assert quick.collect.worlds < full.collect.worlds
    assert full.collect.worlds >= 150 and full.collect.n_steps == (50, 150)  # issue 15's minimum
    assert full.finetune.updates >= 100 and full.finetune.worlds_per_update >= 4
    assert full.finetune.validate_vs_l1 and full.finetune.n_learners == 2
    # early stop may not cut the run below its 100 updates
    f = full.finetune
    assert f.patience * f.eval_every >= f.updates
    assert pipeline._finetune_config(full, tmp_path).patience == f.patience
    for path in full.collect.agents:
        load_agent_class(path)  # every collected agent exists
    assert "hrl.agent.l1.LitaAgentL1" in full.collect.agents and "LitaAgentL1" in full.build.experts
    for text, message in (
        ("[collect]\nworlds = 'many'\n", "expected int"),
        ("[collect]\nspeed = 3\n", "unknown fields"),
        ("[colect]\n", "unknown sections"),
        ("[collect\n", "preset"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_preset(str(bad))
    with pytest.raises(ConfigError, match="not a packaged preset"):
        load_preset("nope")
    quota = tmp_path / "quota.toml"
    quota.write_text(
        TINY.replace("workers = 2\n\n[pretrain]", "workers = 2\nquota_world_days = 9\n\n[pretrain]")
    )
    with pytest.raises(ConfigError, match=r"\[collect\] plans 1[0-2] world-days, over its quota 9"):
        load_preset(str(quota))
    quota.write_text(
        TINY.replace("workers = 2\n\n[pretrain]", "workers = 2\nquota_world_days = 12\n\n[pretrain]")
    )
    assert load_preset(str(quota)).collect.quota_world_days == 12


def test_tiny_run_end_to_end_then_resume_after_kill(tmp_path: Path) -> None:
    preset_file = tmp_path / "tiny.toml"
    preset_file.write_text(TINY)
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "hrl.cli", "run", "--preset", str(preset_file), "--out", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    stages = run / "stages.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill the job as soon as the first stage is recorded
        if stages.exists() and json.loads(stages.read_text())["stages"].get("collect"):
            break
        assert process.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    record = json.loads(stages.read_text())
    assert record["stages"]["collect"]["status"] == "done"
    collected = {p: p.stat().st_mtime_ns for p in (run / "collect").glob("w*/world.json")}
    assert len(collected) == 2

    milestone = tmp_path / "milestone"
    final = run_pipeline(load_preset(str(preset_file)), run, milestones=milestone)  # resume in-process
    assert {k for k, v in final["stages"].items() if v["status"] == "done"} == set(STAGES)
    assert {p: p.stat().st_mtime_ns for p in (run / "collect").glob("w*/world.json")} == collected
    assert (run / "data" / "macro.parquet").exists() and (run / "data" / "micro.parquet").exists()
    assert final["stages"]["finetune"]["updates"] == 1 and (run / "finetune" / "bundle.pt").is_file()
    report = Path(final["stages"]["evaluate"]["report"])
    assert report.exists() and "(ours)" in report.read_text()
    # each stage's planned world-days are the days its worlds really ran
    played = [json.loads(p.read_text())["n_steps"] for p in (run / "collect").glob("w*/world.json")]
    assert final["stages"]["collect"]["world_days"] == sum(played)
    evaluated = json.loads((run / "evaluate" / "evaluation.json").read_text())["worlds"]
    assert final["stages"]["evaluate"]["world_days"] == sum(w["n_steps"] for w in evaluated)
    learners = json.loads((run / "finetune" / "learners.json").read_text())
    assert final["stages"]["finetune"]["world_days"] == sum(row["n_steps"] for row in learners)

    # the milestone mirrors the resumable state (not the logs, samples or per-update policies)
    mirrored = {p.relative_to(milestone).as_posix() for p in milestone.rglob("*") if p.is_file()}
    assert {"stages.json", "pretrain/bundle.pt", "finetune/last.pt", "finetune/bundle.pt"} <= mirrored
    assert not any(m.startswith(("collect/", "data/")) or m.endswith("policy.pt") for m in mirrored)
    assert (milestone / "finetune" / "last.pt").read_bytes() == (run / "finetune" / "last.pt").read_bytes()
    fresh = tmp_path / "fresh"  # a fresh machine: the run continues from the milestone alone
    again = run_pipeline(load_preset(str(preset_file)), fresh, milestones=milestone)
    assert again["stages"] == json.loads(json.dumps(final["stages"]))  # as stages.json holds it
    assert (fresh / "finetune" / "bundle.pt").read_bytes() == (run / "finetune" / "bundle.pt").read_bytes()

    other = tmp_path / "other.toml"
    other.write_text(TINY.replace("worlds = 2", "worlds = 3"))
    with pytest.raises(ConfigError, match="another preset"):
        run_pipeline(load_preset(str(other)), run)


def test_stages_whose_outputs_are_missing_run_again(tmp_path: Path) -> None:
    """A milestone holds no logs or samples: a run restored from one before pretraining finished
    collects and builds again; once the BC bundle is there, nothing before fine-tuning reruns."""
    from hrl.pipeline import _stale

    done = {"status": "done"}
    record = {"stages": {"collect": done, "build": done}}
    assert _stale(record, tmp_path) == ["build", "collect"]
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / "bundle.pt").write_bytes(b"x")
    record = {"stages": {"collect": done, "build": done, "pretrain": done}}
    assert _stale(record, tmp_path) == []
    assert _stale({"stages": dict.fromkeys(STAGES, done)}, tmp_path) == []
