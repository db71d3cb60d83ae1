"""A small results database for the dashboard tests, built through the real harness.store.ingest.

Values are chosen so the expected leaderboard is known: on model `tiny`, lora and ia3 are
tied (paired t over seeds), zero_shot is far behind, full has one ok seed plus an oom and a failed run, prompt is an
ok run that recorded no metrics; model `gpu` has CUDA peaks (one fits a T4, one does not); suite
`qa` has a lower-is-better headline (perplexity).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from dashboard.synthetic import GIB, result
from harness import store
from harness.store import ingest

SUITE = "demo"
FAILED_TRACEBACK = 'Traceback (most recent call last):\n  File "train.py"\nRuntimeError: boom'


def fixture_results() -> list[dict]:
    out = []

    def add(**kw):
        out.append(result(suite=kw.pop("suite", SUITE), dataset=kw.pop("dataset", "rt"), **kw))

    for seed, acc in enumerate([0.80, 0.82, 0.84]):
        add(
            method="lora",
            model="tiny",
            seed=seed,
            metrics={"accuracy": acc, "macro_f1": acc - 0.01},
        )
    for seed, acc in enumerate([0.81, 0.79, 0.83]):  # paired with lora's seeds: no clear gap
        add(method="ia3", model="tiny", seed=seed, metrics={"accuracy": acc, "macro_f1": acc - 0.02},
            params={"target_modules": ["k_proj", "v_proj"]}, trainable_pct=0.04, peak_mem_bytes=GIB)  # fmt: skip
    for seed, acc in enumerate([0.50, 0.50, 0.51]):
        add(method="zero_shot", model="tiny", seed=seed, metrics={"accuracy": acc, "macro_f1": 0.4},
            params={}, trainable_pct=0.0, train_s=0.0, tokens_per_s=None)  # fmt: skip
    add(method="full", model="tiny", seed=0, metrics={"accuracy": 0.6, "macro_f1": 0.55},
        learning_rate=1e-5, trainable_pct=100.0, peak_mem_bytes=3 * GIB)  # fmt: skip
    add(method="full", model="tiny", seed=1, status="oom", reason="CUDA out of memory (synthetic)")
    add(method="full", model="tiny", seed=2, status="failed", reason="RuntimeError: boom",
        traceback=FAILED_TRACEBACK)  # fmt: skip
    add(method="prompt", model="tiny", seed=0, metrics=None)  # ok, but no metrics recorded
    for seed in (0, 1):
        add(method="lora", model="gpu", seed=seed, metrics={"accuracy": 0.9 + seed / 100},
            peak_mem_bytes=4 * GIB, mem_kind="cuda_max_allocated")  # fmt: skip
        add(method="full", model="gpu", seed=seed, metrics={"accuracy": 0.92},
            peak_mem_bytes=16 * GIB, mem_kind="cuda_max_allocated", trainable_pct=100.0)  # fmt: skip
    for method, ppl in (("lora", 12.0), ("full", 8.0)):
        add(suite="qa", dataset="chat", task="qa", method=method, model="tiny",
            metrics={"perplexity": ppl, "eval_loss": 2.0})  # fmt: skip
    return out


def build_fixture_db(db: Path) -> Path:
    for res in fixture_results():
        ingest(db, res, result_path=f"results/runs/{res['run_id']}/result.json")
    return db


def run_id_of(method: str, model: str, seed: int, suite: str = SUITE) -> str:
    """The run_id fixture_results gives a run (so tests can open it by id)."""
    for res in fixture_results():
        spec = res["run_info"]["spec"]
        if (spec["suite"], spec["method_key"], spec["model_key"], spec["seed"]) == (
            suite,
            method,
            model,
            seed,
        ):
            return res["run_id"]
    raise KeyError((suite, method, model, seed))


# What each page (AppTest name) shows over build_full_db with its default selections: the alerts
# (st.warning / st.error) it is expected to raise, anything else being a bug every user sees, and
# how many charts it draws.
EXPECTED_ALERTS = {"frontier": ["1 run(s) did not end ok; they are not on the plot."]}
EXPECTED_CHARTS = {"pareto": 1, "run": 4, "compare": 1, "tuning": 2, "frontier": 1}


def build_full_db(db: Path) -> Path:
    """The fixture runs, alignment runs (tests/frontier_fixtures.py), a real Optuna study and a
    repro check, all written by harness.store, so the file carries the store's schema_version and
    every dashboard page has something to draw."""
    import optuna
    from frontier_fixtures import build_store

    build_fixture_db(db)
    build_store(db, suite="rlhf_demo")  # a suite listed after the others
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="demo-lora", direction="maximize")
    for x in (0.2, 0.5, 0.9):
        study.enqueue_trial({"x": x})
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3)
    cell = SimpleNamespace(method_key="lora", model_key="tiny", dataset_key="rt")
    store.ingest_trials(db, SUITE, cell, study)
    store.ingest_expected_best(db, SUITE, cell, "accuracy", [0.7, 0.75, 0.8])
    store.record_repro(db, {
        "original_run_id": run_id_of("lora", "tiny", 0), "repro_dir": "results/repro/x",
        "suite": SUITE, "checked_at": "2026-01-01T00:00:00", "verdict": "reproduced",
        "tolerance": {"mode": "exact"}, "failures": [], "metric_deltas": {}, "env_differences": {},
    })  # fmt: skip
    return db
