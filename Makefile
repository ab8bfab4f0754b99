# The commands people and CI use. `make run` and `make test` do all the set-up on a fresh
# machine (a virtual environment in .venv, every dependency, the extension in release mode);
# repeated runs reuse what is installed and only rebuild the extension when Rust sources change.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SCML_AGENTS := scml-agents==0.5.2
RUST_SOURCES := Cargo.toml $(wildcard Cargo.lock) $(shell find rust -name '*.rs')
export VIRTUAL_ENV := $(abspath $(VENV))
export PYO3_PYTHON := $(abspath $(BIN)/python)

.PHONY: setup run test test-slow bench bench-data bench-distributed bench-eval lint format clean

## setup: virtual environment, dependencies and the release build of the extension
setup: $(VENV)/.hrl-extension

# Dependencies come straight from pyproject.toml (runtime + dev + the `ray` extra, which the Ray
# tests need). scml-agents is installed without its declared dependencies: the Standard agents we
# use import none of them.
$(VENV)/.hrl-dependencies: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
		o = p['optional-dependencies']; \
		print('\n'.join(p['dependencies'] + o['dev'] + o['ray']))" > $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet -r $(VENV)/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps $(SCML_AGENTS)
	touch $@

$(VENV)/.hrl-extension: $(VENV)/.hrl-dependencies $(RUST_SOURCES) pyproject.toml
	$(BIN)/maturin develop --release --quiet
	touch $@

## run: the main job
run: setup
	$(BIN)/hrl run

## test: Rust unit tests (no Python needed) and the pytest suite (fast; `slow` excluded)
test: setup
	cargo test --no-default-features
	$(BIN)/python -m pytest

## test-slow: the real-tournament tests too
test-slow: setup
	$(BIN)/python -m pytest -m ""

## bench: pytest-benchmark (Python API vs NumPy and numba loops) and criterion (pure Rust)
bench: setup
	mkdir -p runs/bench
	$(BIN)/python -m pytest benches -o addopts="" --benchmark-only --benchmark-save-data --benchmark-json=runs/bench/gae.json
	cargo bench --no-default-features --bench gae
	$(BIN)/python benches/safety_ratios.py runs/bench/gae.json
	cargo bench --no-default-features --bench safety

## bench-data: the data pipeline benchmark (real logs collected under /tmp, a generated ~1 GB
## negotiations.csv, hrl collect vs scml's anac2024_std, hrl build of 50 worlds x 50 days with the
## Rust and the Python L1 replay; the 50 worlds are collected once, ~10 min, and kept in /tmp);
## results in runs/bench/data.json
bench-data: setup
	rm -rf /tmp/hrl-bench-logs
	$(BIN)/hrl collect --worlds 4 --out /tmp/hrl-bench-logs --format csv --n-steps 30,40 --levels 2,3 \
		--agents-per-level 4,5 --workers 2 --seed 11 --no-progress
	$(BIN)/python benches/bench_data.py --out runs/bench/data.json parse --logs /tmp/hrl-bench-logs
	$(BIN)/python benches/bench_data.py --out runs/bench/data.json collect
	$(BIN)/hrl collect --worlds 50 --out /tmp/hrl-bench-build-logs --n-steps 50,50 --levels 2,3 \
		--agents-per-level 4,5 --workers 2 --seed 41 --no-progress
	$(BIN)/python benches/bench_data.py --out runs/bench/data.json build --logs /tmp/hrl-bench-build-logs

## bench-distributed: world-days/s of `hrl collect` with 1 and 2 workers on the local and Ray
## backends, and each backend's per-task overhead; results in runs/bench/distributed.json
bench-distributed: setup
	$(BIN)/python benches/bench_distributed.py --out runs/bench/distributed.json

## bench-eval: world-days/s of the `hrl compare` world path (no logs, synchronous
## calls, no wall-clock limits) against scml's anac2024_std on the same world configurations, with
## PenguinAgent and the 2025 finalists in every world; results in runs/bench/eval_worlds.json
bench-eval: setup
	$(BIN)/python benches/bench_eval_worlds.py --out runs/bench/eval_worlds.json

## lint: ruff, mypy, the extension's stubs, clippy and rustfmt
lint: setup
	$(BIN)/ruff check python tests benches
	$(BIN)/ruff format --check python tests benches
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest hrl._core
	cargo clippy --all-targets -- -D warnings
	cargo fmt --check

format: setup
	$(BIN)/ruff format python tests benches
	$(BIN)/ruff check --fix python tests benches
	cargo fmt

clean:
	rm -rf $(VENV) target runs python/hrl/_core*.so
