"""`hrl collect` on tiny real worlds: layout, manifest, both formats, resume, timeouts, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TINY_AGENTS, tiny_config
from hrl.cli import main
from hrl.data import load_logs
from hrl.data.collect import CollectConfig, collect_worlds, plan_worlds
from hrl.errors import ConfigError


def manifest_of(folder: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((folder / "manifest.json").read_text())


@pytest.mark.parametrize("fixture", ["parquet_collection", "csv_collection"])
def test_collection_layout_and_manifest(fixture: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(fixture)
    manifest = manifest_of(folder)
    ext = "parquet" if fixture.startswith("parquet") else "csv"
    assert manifest["summary"]["done"] == 2
    assert manifest["config"]["storage_format"] == ext
    for name, entry in manifest["worlds"].items():
        world = folder / name
        for table in ("negotiations", "actions", "negs", "contracts", "stats", "agents"):
            assert (world / f"{table}.{ext}").stat().st_size > 0, table
        assert not list(world.glob("negotiations/*")), "per-negotiation folders only behind the flag"
        assert entry["status"] == "done" and entry["duration_s"] > 0
        assert set(entry["scores"]) == set(entry["agent_types"])
        assert sorted(entry["agent_types"].values()) == sorted(entry["agents"])
        assert 6 <= entry["n_steps"] <= 8 and len(entry["agent_processes"]) == 6
        assert json.loads((world / "world.json").read_text())["scores"] == entry["scores"]
    assert not list(folder.glob("*.partial"))


def test_plans_are_reproducible_and_balanced() -> None:
    config = CollectConfig(n_worlds=20, agents=TINY_AGENTS, seed=3)
    plans = plan_worlds(config)
    assert plans == plan_worlds(config)
    assert plan_worlds(CollectConfig(n_worlds=5, agents=TINY_AGENTS, seed=3)) == plans[:5]
    for plan in plans:
        assert 2 <= plan.n_levels <= 4 and 50 <= plan.n_steps <= 200
        counts = [plan.agent_processes.count(level) for level in range(plan.n_levels)]
        assert all(4 <= c <= 8 for c in counts)
    uses = [sum(p.agents.count(a) for p in plans) for a in TINY_AGENTS]
    assert max(uses) - min(uses) <= len(plans)  # the deck deals everyone about equally


def test_resume_skips_finished_worlds_and_retries_timeouts(tmp_path: Path) -> None:
    out = tmp_path / "c"
    # Too short for a worker to even import scml: every world times out, and that is recorded.
    first = collect_worlds(tiny_config("parquet", n_worlds=1, world_timeout_s=0.5), out, progress=False)
    entry = first["worlds"]["w00000"]
    assert entry["status"] == "timeout" and "killed after 0.5 s" in entry["error"]
    assert not (out / "w00000").exists() and not list(out.glob("*.partial"))
    second = collect_worlds(tiny_config("parquet", n_worlds=1), out, progress=False)
    assert second["worlds"]["w00000"]["status"] == "done"
    stamp = (out / "w00000" / "world.json").stat().st_mtime_ns
    third = collect_worlds(tiny_config("parquet", n_worlds=1, world_timeout_s=0.5), out, progress=False)
    assert third["worlds"]["w00000"]["status"] == "done"  # skipped, not re-run (it would time out)
    assert (out / "w00000" / "world.json").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match=r"different settings.*seed"):
        collect_worlds(tiny_config("parquet", n_worlds=1, seed=6), out, progress=False)


def test_cli_collect_resumes_a_finished_collection(
    parquet_collection: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config("parquet")
    args = ["collect", "--out", str(parquet_collection), "--worlds", "2", "--seed", "5", "--no-progress"]
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
    assert main(args) == 0
    assert '"done": 2' in capsys.readouterr().out


def test_bad_collect_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="n_levels"):
        CollectConfig(n_levels=(1, 3))
    with pytest.raises(ConfigError, match="storage_format"):
        CollectConfig(storage_format="json")  # type: ignore[arg-type]
    assert main(["collect", "--n-steps", "a,b", "--worlds", "1"]) == 2


def test_negotiation_folders_only_behind_the_flag(tmp_path: Path) -> None:
    config = tiny_config("csv", n_worlds=1, n_steps=(3, 3), agents_per_level=(2, 2), negotiation_folders=True)
    manifest = collect_worlds(config, tmp_path, progress=False)
    assert manifest["worlds"]["w00000"]["status"] == "done"
    world = tmp_path / "w00000"
    assert (world / "negotiations").is_dir() and any((world / "negotiations").iterdir())
    tables = load_logs(tmp_path)  # the per-negotiation folders are not mistaken for worlds
    assert tables.worlds["world"].to_list() == ["w00000"] and tables.offers.height > 0
