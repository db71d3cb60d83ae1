"""The leaderboard's two paths agree: cells grouped in DuckDB (`leaderboard` without a filter,
CELLS_SQL) and the same runs grouped in pandas (`summarize` over `run_scores`, the path the
dashboard's filter takes and the definition the leaderboard had before). Every column, every
dtype, every bit of every number, on a small store built through the real ingest that holds
each kind of row the leaderboard distinguishes."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from dashboard.synthetic import GIB, result
from harness import store
from tests.dashboard_fixtures import fixture_results


def _variant(res: dict, run_id: str, *, spec=None, info=None, meta=None) -> dict:
    res = copy.deepcopy(res)
    res["run_id"] = run_id
    res["run_info"]["spec"].update(spec or {})
    res["train_info"].update(info or {})
    res["meta_info"].update(meta or {})
    return res


def _examples(correct: list[float]) -> dict:
    return {
        "test": {"ids": [f"{i:016x}" for i in range(len(correct))], "scores": {"accuracy": correct}}
    }


def _store_results() -> list[dict]:
    out = fixture_results()  # ties, oom/failed, ok without metrics, CUDA peaks, lower is better
    kw = {"suite": "mix", "dataset": "d", "model": "m"}
    for seed, acc in enumerate([0.70, 0.72, 0.71, 0.74, 0.69, 0.73]):  # 6 seeds: trimmed mean
        base = result(method="lora", seed=seed, metrics={"accuracy": acc}, **kw)
        out.append(base)
        # a tuned re-run of the same cell: its own entry, 'lora (tuned, 20 trials)'
        out.append(_variant(base, f"tuned{seed}", spec={"tuned": {"trials": 20}},
                            info={"metrics": {"test": {"accuracy": acc + 0.05}}}))  # fmt: skip
        # a tuning trial and a systems-only run: never ranked
        out.append(_variant(base, f"trial{seed}", spec={"trial": True}))
        model = {**base["run_info"]["spec"]["model"], "weights": "random"}
        out.append(_variant(base, f"sys{seed}", spec={"model": model}))
    for seed, acc in enumerate([0.60, 0.62, 0.61]):  # CPU and CUDA peaks in one cell, Ray-packed
        kind = "cuda_max_allocated" if seed else "cpu_peak_rss"
        base = result(method="ia3", seed=seed, metrics={"accuracy": acc}, mem_kind=kind,
                      peak_mem_bytes=(seed + 1) * GIB, **kw)  # fmt: skip
        notes = {"synthetic": True, "executor": {"gpus_per_run": 0.5}}
        out.append(_variant(base, f"ia3{seed}", info={"notes": notes}))
    for seed in range(3):  # two diverged seeds: invalid, ranked last
        status = "diverged" if seed else "ok"
        out.append(result(method="adalora", seed=seed, status=status,
                          metrics={"accuracy": 0.9} if seed == 0 else None, **kw))  # fmt: skip
    # a custom budget, a dirty tree and a data check that failed: flagged, with its issues
    base = result(method="dora", seed=0, metrics={"accuracy": 0.65}, mem_kind="cuda_max_allocated",
                  peak_mem_bytes=10 * GIB, **kw)  # fmt: skip
    budget = {"profile": "custom", "gpu_mem_gb": 8}
    checks = {"issues": ["test overlap 2%", "a; b"], "overlap": {"test": 0.02}}
    out.append(_variant(base, "dora0", spec={"budget": budget}, info={"data_checks": checks},
                        meta={"git_dirty": True}))  # fmt: skip
    out.append(result(method="dora", seed=1, status="timeout", reason="slow", **kw))
    # one seed with per-example scores: McNemar against the leader; two seeds of a cell with
    # them: the per-run interval over the per-example means
    leader = [1.0] * 80 + [0.0] * 20
    other = [1.0] * 60 + [0.0] * 40
    kx = {"suite": "ex", "dataset": "d", "model": "m"}
    out.append(_variant(result(method="a", metrics={"accuracy": 0.8}, **kx), "exa",
                        info={"examples": _examples(leader)}))  # fmt: skip
    out.append(_variant(result(method="b", metrics={"accuracy": 0.6}, **kx), "exb",
                        info={"examples": _examples(other)}))  # fmt: skip
    for seed in (0, 1):
        scores = [0.25 * ((i + seed) % 5) for i in range(50)]  # continuous: t, not Wilson
        out.append(_variant(result(method="c", seed=seed, metrics={"accuracy": 0.5}, **kx),
                            f"exc{seed}", info={"examples": {"test": {
                                "ids": [f"{i:016x}" for i in range(50)],
                                "scores": {"accuracy": scores}}}}))  # fmt: skip
    out.append(result(method="d", metrics={"accuracy": 0.55}, **kx))  # no examples stored
    return out


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("board") / "board.duckdb"
    for res in _store_results():
        store.ingest(path, res)
    return path


SELECTIONS = [
    {"suite": "demo"},
    {"suite": "demo", "dataset": "rt", "model": "tiny", "metric": "accuracy"},
    {"suite": "demo", "metric": "macro_f1"},
    {"suite": "qa"},
    {"suite": "qa", "metric": "eval_loss"},
    {"suite": "mix"},
    {"suite": "mix", "model": "m", "metric": "accuracy"},
    {"suite": "ex"},
    {"suite": "nosuch"},
]


@pytest.mark.parametrize("selection", SELECTIONS, ids=lambda s: "-".join(map(str, s.values())))
def test_the_duckdb_path_equals_the_pandas_path(db, selection):
    suite, rest = selection["suite"], {k: v for k, v in selection.items() if k != "suite"}
    fast = store.leaderboard(db, suite, **rest)
    previous = store.summarize(store.run_scores(db, suite, **rest))
    pd.testing.assert_frame_equal(fast, previous, check_exact=True)
    # the dashboard's filter (any `where`) takes the pandas path: the same table when it keeps all
    filtered = store.leaderboard(db, suite, **rest, where=lambda runs: runs)
    pd.testing.assert_frame_equal(filtered, previous, check_exact=True)


def test_the_store_holds_every_kind_of_row_the_comparison_needs(db):
    """The comparison above means something only if the store has these rows."""
    mix = store.leaderboard(db, "mix").set_index("entry")
    assert mix.loc["lora (tuned, 20 trials)", "n"] == 6 and mix.loc["lora", "n"] == 6
    assert mix.loc["lora", "trimmed_mean"] == mix.loc["lora", "trimmed_mean"]  # not NaN
    assert "trial" not in set(mix["origin"]) and mix.loc["lora", "runs"] == 6  # no trial, no sys
    assert mix.loc["ia3", "mem_kind"] == "cpu_peak_rss, cuda_max_allocated"
    assert bool(mix.loc["ia3", "speed_shared"]) and mix.loc["ia3", "ci_method"]
    assert not mix.loc["adalora", "valid"] and mix.loc["adalora", "vs_leader"] == "invalid"
    assert mix.loc["adalora", "not_ok"] == "diverged 2"
    dora = mix.loc["dora"]
    assert dora["flagged"] == 1 and dora["not_ok"] == "timeout 1" and dora["budget_gb"] == 8.0
    assert dora["budget_fit"] is False and "dirty tree" in dora["issues"]
    assert "a" in dora["issues"].split("; ")  # an issue text holding '; ' splits, as before
    assert set(mix["vs_leader"]) >= {"leader", "tied"} or "behind" in set(mix["vs_leader"])
    ex = store.leaderboard(db, "ex").set_index("entry")
    assert ex.loc["b", "test"] == "McNemar exact, 100 examples"
    assert ex.loc["c", "ex_method"] == "t" and ex.loc["c", "ex_n"] == 50
    assert ex.loc["d", "ex_n"] == 0
    demo = store.leaderboard(db, "demo", dataset="rt", model="tiny").set_index("entry")
    assert (
        demo.loc["full", "not_ok"] == "failed 1 · oom 1"
        and demo.loc["prompt", "ok_without_metric"] == 1
    )
    assert store.leaderboard(db, "nosuch").empty
