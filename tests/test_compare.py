"""Seat-swap comparisons: planning, determinism, tiny real comparisons, resume, statistics with
hand-computed values, the sequential rule's coverage, and bad input."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scml.std import SCML2024StdWorld

from hrl.cli import main
from hrl.errors import ConfigError, InvalidArgumentError
from hrl.evaluate.compare import (
    COMPARISON_FILE,
    PLAYS_FILE,
    CompareConfig,
    ComparisonResult,
    parse_candidate,
    plan_comparison,
    run_comparison,
)
from hrl.evaluate.paired import (
    look_confidence,
    paired_comparison,
    planned_looks,
    t_interval,
    worlds_needed,
)
from hrl.evaluate.report import write_comparison_report
from hrl.opponents import BUILTINS, FINALISTS_2025, PENGUIN, load_agent_class
from hrl.seeding import seed_everything, seeded_uuid4
from hrl.worlds import FLOW_NAMES, build_world

RANDOM = BUILTINS[0]
FIELD = (PENGUIN, *BUILTINS)


def self_config(**overrides: object) -> CompareConfig:
    """PenguinAgent against itself under two labels: 3 worlds of 3 levels x 2 factories, 6 days."""
    fields: dict[str, object] = {
        "agents": (f"A={PENGUIN}", f"B={PENGUIN}"),
        "n_worlds": 3,
        "opponents": FIELD,
        "n_steps": (6, 6),
        "n_levels": (3, 3),
        "agents_per_level": (2, 2),
        "seed": 2,
        "n_workers": 1,
    }
    return CompareConfig(**(fields | overrides))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def self_comparison(tmp_path_factory: pytest.TempPathFactory) -> ComparisonResult:
    return run_comparison(self_config(), tmp_path_factory.mktemp("self"), progress=False)


# -- planning -----------------------------------------------------------------------------


def test_plans_rotate_the_seat_over_levels_and_do_not_depend_on_the_candidates() -> None:
    config = self_config(n_worlds=24, n_levels=(2, 4), agents_per_level=(1, 4))
    plans = plan_comparison(config)
    assert plans == plan_comparison(
        self_config(agents=(PENGUIN, RANDOM), n_worlds=24, n_levels=(2, 4), agents_per_level=(1, 4))
    )
    assert plan_comparison(config, 10) == plans[:10]  # later batches keep the earlier worlds
    for i, plan in enumerate(plans):
        processes = plan.world.agent_processes
        assert list(processes) == sorted(processes)  # scml places agents in list order
        assert plan.seat_level == i % plan.world.n_levels == processes[plan.seat]
        assert sum(plan.agents_per_level) == len(plan.world.agents)
        assert set(plan.world.agents) <= set(FIELD)
        agents = plan.spec(RANDOM).agents
        assert agents[plan.seat] == RANDOM
        assert [a for j, a in enumerate(agents) if j != plan.seat] == [
            a for j, a in enumerate(plan.world.agents) if j != plan.seat
        ]
    assert {p.level_label for p in plans} == {"first", "middle", "last"}


def test_positions_narrow_the_seats_and_keep_the_worlds() -> None:
    everywhere = plan_comparison(self_config(n_worlds=12, n_levels=(2, 4)))
    buyers = plan_comparison(self_config(n_worlds=12, n_levels=(2, 4), positions=("middle", "last")))
    assert [p.world for p in buyers] == [p.world for p in everywhere]
    assert {p.level_label for p in buyers} == {"middle", "last"}
    for i, plan in enumerate(buyers):
        levels = list(range(1, plan.world.n_levels))
        assert plan.seat_level == levels[i % len(levels)]
    assert "positions" not in self_config().world_fields()  # old runs resume
    assert self_config(positions=("last",)).world_fields()["positions"] == ["last"]
    with pytest.raises(ConfigError, match="2 levels has no middle"):
        self_config(n_levels=(2, 3), positions=("middle",))
    with pytest.raises(ConfigError, match="positions"):
        self_config(positions=("top",))


def test_the_world_is_the_same_whoever_sits_in_the_seat() -> None:
    (plan,) = plan_comparison(self_config(n_worlds=1))
    worlds = [build_world(plan.spec(path)) for path in (PENGUIN, RANDOM)]
    ids = [[a for a in w.agents if a not in ("SELLER", "BUYER")] for w in worlds]
    assert ids[0] == ids[1]  # type-blind ids: the seat keeps its name
    seat = ids[0][plan.seat]
    assert [type(w.agents[seat]._obj).__name__ for w in worlds] == ["PenguinAgent", "RandomStdAgent"]
    assert worlds[0].initial_balances == worlds[1].initial_balances
    assert worlds[0].profiles == worlds[1].profiles
    contracts = [
        [
            (c.annotation["seller"], c.annotation["buyer"], c.agreement)
            for day in w.exogenous_contracts.values()
            for c in day
        ]
        for w in worlds
    ]
    assert contracts[0] == contracts[1] and contracts[0]
    assert worlds[0].agents[seat].awi.level == plan.seat_level


def test_a_ready_configuration_is_played_instead_of_a_generated_one() -> None:
    (plan,) = plan_comparison(self_config(n_worlds=1, n_levels=(2, 2), n_steps=(4, 4)))
    spec = plan.spec(PENGUIN)
    seed_everything(spec.seed + 1)  # another draw of the same shape, as another tool would make it
    config = SCML2024StdWorld.generate(
        agent_types=[load_agent_class(a) for a in spec.agents],
        agent_processes=list(plan.world.agent_processes),
        n_steps=spec.n_steps,
        n_processes=spec.n_processes,
        **spec.generate_kwargs,
    )
    ready, generated = build_world(spec, config), build_world(spec)
    ids = [a for a in ready.agents if a not in ("SELLER", "BUYER")]
    assert [ready.initial_balances[a] for a in ids] == list(config["initial_balance"])
    n = len(ids)
    assert ready.profiles[:n] == config["profiles"][:n] and ready.profiles[:n] != generated.profiles[:n]
    assert ready.name == generated.name == spec.name


def test_contract_ids_are_seeded_inside_a_play_and_random_outside() -> None:
    original = uuid.uuid4
    with seeded_uuid4(7):
        first = [uuid.uuid4() for _ in range(3)]
    with seeded_uuid4(7):
        again = [uuid.uuid4() for _ in range(3)]
    assert first == again and len(set(first)) == 3 and all(u.version == 4 for u in first)
    assert uuid.uuid4 is original and uuid.uuid4() not in first


# -- tiny real comparisons ----------------------------------------------------------------


def test_an_agent_against_itself_differs_by_exactly_zero_everywhere(
    self_comparison: ComparisonResult,
) -> None:
    result = self_comparison
    assert not result.failed and result.n_exceptions == 0
    assert len(result.worlds) == 3
    for world in result.worlds:
        a, b = world.plays["A"], world.plays["B"]
        assert a.score - b.score == 0.0
        assert a.scores == b.scores  # every factory, not only the seat
        assert len(a.scores) == 6 and len(set(a.scores.values())) > 1
        assert a.shortfall_quantity == b.shortfall_quantity and a.shortfall_penalty == b.shortfall_penalty
    (pair,) = result.pairs
    assert (pair.a, pair.b, pair.n_pairs) == ("A", "B", 3)
    assert pair.mean_difference == pair.sd_difference == pair.ci_low == pair.ci_high == 0.0
    assert pair.t_ci_low == pair.t_ci_high == 0.0
    assert (pair.wins, pair.ties) == (0.0, 1.0)
    assert result.stopping.reason == "fixed" and result.stopping.separated == {"A vs B": False}
    means = {c.label: c.mean_score for c in result.candidates}
    assert means["A"] == means["B"]


def test_the_seat_lands_on_the_planned_level_and_a_batch_covers_every_level(
    self_comparison: ComparisonResult,
) -> None:
    levels = []
    for i, world in enumerate(self_comparison.worlds):
        assert world.seat_level == i % 3
        for play in world.plays.values():
            assert play.seat_level == world.seat_level  # read from the seat's AWI in the world
            assert play.seat_id.endswith(f"@{world.seat_level}")
        levels.append(world.level)
    assert levels == ["first", "middle", "last"]
    (pair,) = self_comparison.pairs
    assert {k: v.n for k, v in pair.by_level.items()} == {"first": 1, "middle": 1, "last": 1}


def test_resume_skips_finished_plays_and_reruns_missing_ones(self_comparison: ComparisonResult) -> None:
    out = Path(self_comparison.out_dir)
    plays = out / PLAYS_FILE
    before = json.loads(plays.read_text())["plays"]
    mtime = plays.stat().st_mtime_ns
    again = run_comparison(self_config(), out, progress=False)  # nothing to run: no worker started
    assert plays.stat().st_mtime_ns == mtime
    assert [w.plays for w in again.worlds] == [w.plays for w in self_comparison.worlds]

    manifest = json.loads(plays.read_text())
    del manifest["plays"]["w00001/B"]
    plays.write_text(json.dumps(manifest))
    resumed = run_comparison(self_config(n_workers=1), out, progress=False)
    after = json.loads(plays.read_text())["plays"]
    assert set(after) == set(before)
    for key, entry in after.items():  # only the missing play ran again (and gave the same world)
        assert (entry["wall_s"] == before[key]["wall_s"]) == (key != "w00001/B")
        assert entry["scores"] == before[key]["scores"]
    assert resumed.pairs == self_comparison.pairs

    with pytest.raises(ConfigError, match="seed"):
        run_comparison(self_config(seed=3), out, progress=False)


def test_sequential_rule_stops_at_the_world_budget_when_nothing_separates(
    self_comparison: ComparisonResult,
) -> None:
    config = self_config(n_worlds=1, until_separated=True, max_worlds=3)
    result = run_comparison(config, self_comparison.out_dir, progress=False)  # all plays exist
    stop = result.stopping
    assert (stop.rule, stop.reason, stop.planned_looks, stop.n_looks) == (
        "until_separated",
        "max_worlds",
        [1, 2, 3],
        3,
    )
    assert stop.look_confidence == pytest.approx(1 - 0.05 / 3)
    assert stop.intervals == {"A vs B": (0.0, 0.0)} and stop.separated == {"A vs B": False}
    stored = json.loads((Path(result.out_dir) / COMPARISON_FILE).read_text())
    assert stored["status"] == "done" and stored["stopping"]["reason"] == "max_worlds"


def test_plays_that_keep_their_logs_are_the_same_plays_and_can_be_audited(tmp_path: Path) -> None:
    from hrl.safety.audit import audit_logs

    result = run_comparison(self_config(n_worlds=2, log_plays=("A",)), tmp_path, progress=False)
    (pair,) = result.pairs
    assert pair.mean_difference == 0.0 and pair.sd_difference == 0.0  # A logged, B not: same plays
    logged = sorted(p.relative_to(tmp_path / "logs") for p in (tmp_path / "logs").glob("*/*"))
    assert [str(p) for p in logged] == ["w00000/A", "w00001/A"]
    report = audit_logs(tmp_path / "logs")
    assert report.n_worlds == 2
    assert {row["type"] for row in report.by_agent.values()} >= {"PenguinAgent"}
    with pytest.raises(ConfigError, match="log_plays"):
        self_config(log_plays=("C",))


def test_penguin_beats_random_on_the_same_seats_from_the_cli(tmp_path: Path) -> None:
    common = [
        "compare",
        "--agent",
        PENGUIN,
        "--agent",
        f"Random={RANDOM}",
        "--opponents",
        ",".join(FIELD),
        "--n-steps",
        "10",
        "--levels",
        "2",
        "--agents-per-level",
        "2",
        "--seed",
        "3",
        "--workers",
        "1",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert main([*common, "--worlds", "6"]) == 0
    stored = json.loads((tmp_path / COMPARISON_FILE).read_text())
    (pair,) = stored["pairs"]
    assert (pair["a"], pair["b"], pair["n_pairs"]) == ("PenguinAgent", "Random", 6)
    assert pair["ci_low"] > 0 and pair["t_ci_low"] > 0
    assert pair["wins"] > 0.5
    assert {w["level"] for w in stored["worlds"]} == {"first", "last"}
    for world in stored["worlds"]:
        seat = {label: play["seat_id"] for label, play in world["plays"].items()}
        assert len(set(seat.values())) == 1
    text = (tmp_path / "comparison.md").read_text()
    assert "PenguinAgent - Random" in text and "![differences](differences.png)" in text
    assert (tmp_path / "differences.png").stat().st_size > 1000

    # The sequential rule on the same worlds (already played): looks after 3 and 6 worlds.
    assert main([*common, "--worlds", "3", "--until-separated", "--max-worlds", "6"]) == 0
    stop = json.loads((tmp_path / COMPARISON_FILE).read_text())["stopping"]
    # (Whether the first look already separates depends on the worlds drawn; both looks are planned.)
    assert stop["reason"] == "separated" and stop["planned_looks"] == [3, 6] and stop["n_looks"] in (1, 2)
    low, high = stop["intervals"]["PenguinAgent vs Random"]
    assert 0 < low < high and stop["look_confidence"] == pytest.approx(0.975)


@pytest.mark.slow
def test_ray_backend_plays_the_same_worlds_as_the_local_one(
    self_comparison: ComparisonResult, tmp_path: Path
) -> None:
    result = run_comparison(self_config(backend="ray"), tmp_path, progress=False)
    assert [w.plays["A"].scores for w in result.worlds] == [
        w.plays["A"].scores for w in self_comparison.worlds
    ]


# -- statistics ---------------------------------------------------------------------------


def test_paired_statistics_match_hand_computed_values() -> None:
    a = [1.0, 1.2, 0.9, 1.1]
    b = [0.8, 1.2, 1.0, 0.7]  # differences 0.2, 0.0, -0.1, 0.4
    pair = paired_comparison("A", "B", a, b, ["first", "last", "first", "middle"], n_resamples=4000, seed=1)
    assert pair.n_pairs == 4
    assert pair.mean_difference == pytest.approx(0.125)
    sd = math.sqrt((0.075**2 + 0.125**2 + 0.225**2 + 0.275**2) / 3)
    assert pair.sd_difference == pytest.approx(sd)
    half = 3.182446305284263 * sd / 2  # t_{3, 0.975} * sd / sqrt(4)
    assert (pair.t_ci_low, pair.t_ci_high) == pytest.approx((0.125 - half, 0.125 + half))
    assert -0.1 <= pair.ci_low <= 0.125 <= pair.ci_high <= 0.4
    assert (pair.wins, pair.ties) == (0.5, 0.25)
    first, middle, last = (pair.by_level[k] for k in ("first", "middle", "last"))
    assert (first.n, first.mean_difference) == (2, pytest.approx(0.05))
    assert -0.1 <= first.ci_low <= first.ci_high <= 0.2  # type: ignore[operator]
    assert middle.n == 1 and middle.mean_difference == middle.ci_low == middle.ci_high == pytest.approx(0.4)
    assert (last.n, last.mean_difference) == (1, 0.0)
    assert pair.sd_a == pytest.approx(np.std(a, ddof=1)) and pair.sd_b == pytest.approx(np.std(b, ddof=1))
    assert pair.worlds_needed == math.ceil((1.959963984540054 * sd / 0.03) ** 2)
    assert pair.worlds_needed_unpaired == math.ceil(
        1.959963984540054**2 * (np.var(a, ddof=1) + np.var(b, ddof=1)) / 0.03**2
    )
    empty = paired_comparison("A", "B", [1.0], [0.5], ["last"])
    assert empty.by_level["first"].n == 0 and empty.by_level["first"].mean_difference is None
    assert empty.sd_difference is None and empty.t_ci_low is None and empty.worlds_needed is None


def test_bootstrap_and_t_intervals_agree_on_a_large_normal_sample() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(1.0, 0.3, size=400)
    b = a - rng.normal(0.05, 0.1, size=400)
    pair = paired_comparison("A", "B", a, b, ["first"] * 400, seed=2)
    assert pair.t_ci_low is not None and pair.t_ci_high is not None
    assert pair.ci_low == pytest.approx(pair.t_ci_low, abs=0.003)
    assert pair.ci_high == pytest.approx(pair.t_ci_high, abs=0.003)
    assert pair.t_ci_low < 0.05 < pair.t_ci_high


def test_worlds_needed_and_looks() -> None:
    assert worlds_needed(0.3, 0.03) == 385  # (1.96 * 10)^2 = 384.1
    assert worlds_needed(math.hypot(0.3, 0.3), 0.03) == 769
    assert worlds_needed(0.0, 0.03) == 1
    assert planned_looks(10, 35) == [10, 20, 30, 35]
    assert planned_looks(5, 5) == [5]
    assert look_confidence(0.95, 4) == pytest.approx(0.9875)
    assert t_interval([1.0]) is None
    with pytest.raises(InvalidArgumentError):
        planned_looks(10, 5)
    with pytest.raises(InvalidArgumentError):
        worlds_needed(0.3, 0.0)


def _miss_rate(diffs: np.ndarray, true_mean: float, looks: list[int], confidence: float) -> float:
    """Share of rows whose t-interval at ``confidence`` misses ``true_mean`` at any look."""
    missed = np.zeros(diffs.shape[0], dtype=bool)
    for n in looks:
        x = diffs[:, :n]
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(axis=1, ddof=1) / math.sqrt(n)
        missed |= np.abs(x.mean(axis=1) - true_mean) > half
    return float(missed.mean())


@pytest.mark.parametrize("distribution", ["normal", "heavy-tailed", "skewed"])
def test_sequential_intervals_keep_95_percent_coverage_under_repeated_looks(distribution: str) -> None:
    rng = np.random.default_rng(11)
    trials, looks = 4000, planned_looks(10, 60)  # 6 looks
    if distribution == "normal":
        diffs, true_mean = rng.normal(0.05, 0.3, size=(trials, 60)), 0.05
    elif distribution == "heavy-tailed":  # Student t with 5 degrees of freedom
        diffs, true_mean = 0.2 * rng.standard_t(5, size=(trials, 60)), 0.0
    else:  # gamma with shape 6: skewness 0.82
        diffs, true_mean = rng.gamma(6.0, 0.1, size=(trials, 60)) - 0.6, 0.0
    spent = _miss_rate(diffs, true_mean, looks, look_confidence(0.95, len(looks)))
    naive = _miss_rate(diffs, true_mean, looks, 0.95)
    assert spent <= 0.06  # 0.05 plus ~3 standard errors of 4000 trials
    assert naive > 0.08  # peeking at plain 95% intervals six times loses the coverage


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"agents": (PENGUIN,)}, "agents"),
        ({"agents": (PENGUIN, "no.such.Agent")}, "agents"),
        ({"agents": (PENGUIN, f"PenguinAgent={RANDOM}")}, "agents"),
        ({"agents": (PENGUIN, "bad label=x.Y")}, "agents"),
        ({"opponents": (PENGUIN, "scml.nothing.Here")}, "opponents"),
        ({"opponents": ()}, "opponents"),
        ({"n_worlds": 0}, "n_worlds"),
        ({"n_steps": (10, 5)}, "n_steps"),
        ({"n_levels": (1, 3)}, "n_levels"),
        ({"agents_per_level": (0, 2)}, "agents_per_level"),
        ({"confidence": 1.0}, "confidence"),
        ({"until_separated": True}, "max_worlds"),
        ({"until_separated": True, "max_worlds": 2}, "max_worlds"),
        ({"until_separated": True, "max_worlds": 9, "max_minutes": 0.0}, "max_minutes"),
        ({"max_worlds": 9}, "max_worlds"),
        ({"n_workers": 0}, "n_workers"),
        ({"backend": "dask"}, "backend"),
        ({"ray_address": "auto"}, "ray_address"),
    ],
)
def test_bad_input_raises_config_error_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}\b"):
        self_config(**overrides)


def test_candidates_parse_with_and_without_labels() -> None:
    assert parse_candidate(PENGUIN).label == "PenguinAgent"
    assert parse_candidate(f" L1 = {FINALISTS_2025[0]} ").path == FINALISTS_2025[0]
    for text in ("=x.Y", "A=", "a/b=x.Y"):
        with pytest.raises(ConfigError, match=r"^agents:"):
            parse_candidate(text)


def test_cli_reports_bad_input_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--agent", PENGUIN, "--out", str(tmp_path)]) == 2
    assert "agents: need at least 2" in capsys.readouterr().err
    assert (
        main(["compare", "--agent", PENGUIN, "--agent", RANDOM, "--levels", "two", "--out", str(tmp_path)])
        == 2
    )
    assert "--levels" in capsys.readouterr().err


def test_report_of_a_finished_comparison_can_be_written_elsewhere(
    self_comparison: ComparisonResult, tmp_path: Path
) -> None:
    report = write_comparison_report(self_comparison, out_dir=tmp_path)
    text = report.read_text()
    assert "| A - B | 3 | +0.000 |" in text and "stopped because **fixed**" in text
    assert (tmp_path / "differences.png").exists()


def test_each_candidate_reports_where_its_score_came_from_per_position(
    self_comparison: ComparisonResult, tmp_path: Path
) -> None:
    for candidate in self_comparison.candidates:
        plays = [w.plays[candidate.label] for w in self_comparison.worlds]
        assert list(candidate.flows) == ["all", "first", "middle", "last"]
        overall = candidate.flows["all"]
        assert overall["n_worlds"] == 3 and overall["score"] == pytest.approx(candidate.mean_score)
        assert overall["sold"] == pytest.approx(np.mean([p.flows["sold"] for p in plays]))
        for world in self_comparison.worlds:
            play, row = world.plays[candidate.label], candidate.flows[world.level]
            assert row["n_worlds"] == 1 and row["score"] == play.score
            # a seat that did not go bankrupt: the shares add up to its score
            net = row["sales"] - sum(row[t] for t in FLOW_NAMES[1:])
            assert 1 + net == pytest.approx(play.score, abs=1e-9)
    # the first level buys only exogenous supplies, the last sells only exogenous demand
    first = self_comparison.candidates[0].flows["first"]
    assert first["purchases"] > 0 and first["bought"] > 0
    text = write_comparison_report(self_comparison, out_dir=tmp_path).read_text()
    assert "## Where the score comes from" in text and "| A | first | 1 |" in text
