"""Reading the store: the provenance gate, per-run scores and the one leaderboard computation.

`ftbench show`, `ftbench export` and the dashboard all rank with `leaderboard` (the dashboard only
formats its frame): mean ± std over seeds, a t interval and a trimmed mean
(harness/store/stats.py), cells with more than one diverged seed marked invalid and ranked last,
runs failing the provenance gate or a data check flagged, a per-run interval from the stored
per-example scores, each row's paired test against the leader (Holm-corrected), and whether the
peak memory fits the run's budget.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.store import stats
from harness.store.schema import (
    NOT_TRIAL,
    RUN_ISSUES_SQL,
    SchemaMismatchError,
    connect,
    ensure_tables,
    is_current,
)
from harness.suite.budget_profile import T4_USABLE_GB
from harness.suite.tasks import higher_is_better

# Systems-only runs (`weights: random`) measure memory and speed; their quality metrics are kept
# under this split, so no ranking (which reads `test`) ever sees them.
SYSTEMS_ONLY_SPLIT = "systems_only"
QUALITY_RUN = "coalesce(json_extract_string(r.config, '$.model.weights'), 'pretrained') <> 'random'"

# One row per leaderboard run (tuning trials and systems-only runs are never ranked) with its
# value of the metric ($metric, or each run's headline metric when NULL); every run is kept, so a
# failed run or one without the metric is counted, not silently dropped.
_SELECTED = (
    "suite = $suite AND ($dataset IS NULL OR dataset_key = $dataset) "
    "AND ($model IS NULL OR model_key = $model)"
)
_BUDGET = "json_extract_string(r.config, ['$.budget.profile', '$.budget.gpu_mem_gb'])"
# the order of run_scores' rows (ties on seed broken by run_id)
RUN_ORDER = ("dataset_key", "model_key", "method_key", "seed", "run_id")
RUN_SCORES_SQL = f"""
-- the gate's issues of the selected runs only (a filter DuckDB does not push into the CTE)
WITH issues AS (SELECT * FROM ({RUN_ISSUES_SQL}) WHERE {_SELECTED})
SELECT r.run_id, r.suite, r.dataset_key, r.model_key, r.method_key, r.method, r.task, r.seed,
       r.status, r.reason, coalesce(r.origin, 'run') AS origin, r.tune_trials,
       coalesce($metric, r.headline_metric) AS metric, m.value AS score, m.higher_is_better,
       r.trainable_pct, r.trainable_params, r.peak_mem_bytes, r.peak_mem_kind, r.train_s,
       r.total_s, r.steady_tokens_per_s, r.steady_samples_per_s,
       -- packed on a shared GPU by the Ray executor (gpus_per_run < 1): speed not comparable
       coalesce(TRY_CAST(json_extract(r.notes, '$.executor.gpus_per_run') AS DOUBLE) < 1, false)
           AS speed_shared,
       list_concat(i.provenance_issues, i.data_issues) AS issues,
       len(i.provenance_issues) + len(i.data_issues) AS n_issues,
       array_to_string(list_concat(i.provenance_issues, i.data_issues), '; ') AS issues_text,
       -- the suite's budget: both paths in one parse of the config (DuckDB computes the common
       -- expression once; each parse of 10,000 configs costs ~10 ms)
       {_BUDGET}[1] AS budget_profile, TRY_CAST({_BUDGET}[2] AS DOUBLE) AS budget_gb,
       e.ids AS example_ids, e.scores AS example_scores{{config}}
FROM runs r
LEFT JOIN metrics m
       ON m.run_id = r.run_id AND m.split = $split AND m.name = coalesce($metric, r.headline_metric)
LEFT JOIN examples e
       ON e.run_id = r.run_id AND e.split = $split AND e.metric = coalesce($metric, r.headline_metric)
LEFT JOIN issues i ON i.run_id = r.run_id
WHERE r.suite = $suite AND {NOT_TRIAL} AND {QUALITY_RUN}
  AND ($dataset IS NULL OR r.dataset_key = $dataset) AND ($model IS NULL OR r.model_key = $model)
ORDER BY {", ".join(f"r.{c}" for c in RUN_ORDER)}
"""

GROUP_KEYS = ["dataset", "model", "metric"]  # one ranking per dataset, model and metric
CUDA_KINDS = frozenset({"cuda_max_allocated"})


def run_scores(
    db_path: Path | str,
    suite: str,
    *,
    dataset: str | None = None,
    model: str | None = None,
    metric: str | None = None,
    split: str = "test",
    with_config: bool = False,
):
    """One row per leaderboard run of a suite with its score (see RUN_SCORES_SQL)."""
    params = {"suite": suite, "dataset": dataset, "model": model, "metric": metric, "split": split}
    # the configs only when asked: the largest column, a third of the query's time
    return _read(
        db_path, RUN_SCORES_SQL.replace("{config}", ", r.config" if with_config else ""), params
    )


def _read(db_path: Path | str, sql: str, params: dict[str, Any]):
    """One query on a current file, as a frame."""
    for _ in range(2):  # one open when the file is current (each open costs ~20 ms)
        with connect(db_path, read_only=True) as con:
            if is_current(con):
                return con.execute(sql, params).df()
        ensure_tables(db_path)
    raise SchemaMismatchError(f"{db_path}: could not bring the schema up to date")


METRIC_MEANS_SQL = f"""
SELECT r.dataset_key AS dataset, r.model_key AS model,
       CASE WHEN r.origin = 'tuned' THEN r.method_key || ' (tuned)' ELSE r.method_key END AS entry,
       m.name AS metric, avg(m.value) AS mean, count(*) AS n
FROM runs r JOIN metrics m ON m.run_id = r.run_id
WHERE r.suite = $suite AND r.status = 'ok' AND m.split = $split AND starts_with(m.name, $prefix)
  AND coalesce(r.origin, 'run') <> 'trial' AND {QUALITY_RUN} AND m.value IS NOT NULL
GROUP BY ALL ORDER BY dataset, model, entry, metric
"""


def metric_means(db_path: Path | str, suite: str, prefix: str, split: str = "test"):
    """Mean of every metric whose name starts with `prefix` (e.g. `f1/`, a classifier's per-class
    F1), per dataset, model, entry and metric, over the ok runs of a suite."""
    ensure_tables(db_path)
    params = {"suite": suite, "prefix": prefix, "split": split}
    with connect(db_path, read_only=True) as con:
        return con.execute(METRIC_MEANS_SQL, params).df()


def entries(runs) -> Any:
    """The leaderboard entry of each run: its method key, or 'lora (tuned, 20 trials)' for the
    re-runs of a tuned cell (a different entry from the same method at its suite defaults)."""
    trials = runs["tune_trials"].astype("Int64").astype("string").fillna("?")
    tuned = runs["method_key"] + " (tuned, " + trials + " trials)"
    return tuned.where(runs["origin"] == "tuned", runs["method_key"])


def leaderboard(
    db_path: Path | str,
    suite: str,
    *,
    dataset: str | None = None,
    model: str | None = None,
    metric: str | None = None,
    where: Callable[[Any], Any] | None = None,
):
    """One row per entry (method, or tuned method) of each dataset, model and metric (the
    headline metric of each run when `metric` is None), best first; `where` narrows the runs
    first (the dashboard's filter). See `summarize` for the columns.

    Without `where` the runs are grouped into cells in DuckDB (CELLS_SQL: one row per cell, not
    one per run, 10,000 runs of a dataset x model in a fraction of the time); with it, in pandas
    (`summarize`). Both hand the same cells to one finishing step, and a test holds the two
    equal on a real store."""
    if where is not None:
        runs = run_scores(db_path, suite, dataset=dataset, model=model, metric=metric)
        return summarize(where(runs))
    params = {
        "suite": suite, "dataset": dataset, "model": model, "metric": metric, "split": "test"
    }  # fmt: skip
    cells = _read(db_path, CELLS_SQL, params)
    return summarize(cells.iloc[:0]) if cells.empty else _board(*_cells_of_lists(cells))


def summarize(runs):
    """The leaderboard of a run_scores frame.

    Per entry: mean, std, n (ok runs with a value), the seed interval ci_low/ci_high (Student t,
    2+ seeds; ci_method names it), trimmed mean (5+ seeds), diverged seeds and validity
    (harness/store/stats.py), runs (every status), not_ok (status counts), ok_without_metric,
    flagged runs and their issues, trainable %, the largest peak memory and whether it fits the
    run's budget, mean train time, and steady-state tokens/s and samples/s (after the warm-up
    steps, harness/runs/speed.py), and speed_shared (a run was packed with others on one GPU, so its
    speed is not comparable).

    From the stored per-example scores (NaN where a run has none): ex_n examples, ex_se and the
    per-run interval ex_low/ex_high (ex_method: Wilson for correct/incorrect, t otherwise; over
    several seeds, of the per-example mean over seeds), shown even for one seed.

    Within each dataset / model / metric: valid cells first, then by mean in the metric's
    direction (missing last); `rank` counts the ranked rows. Each other row is tested against
    the leader, paired (stats.compare): diff (row - leader) with diff_low/diff_high, p_raw,
    p_value (Holm-corrected over the ranking's rows), test (which one), and vs_leader
    (`leader`, `ahead` / `tied` / `behind` from the corrected test, `no test`, `no data` or
    `invalid`).
    """
    import pandas as pd

    if runs.empty:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    runs = runs.rename(columns={"dataset_key": "dataset", "model_key": "model"})
    runs = runs.assign(entry=entries(runs))
    if "example_ids" not in runs.columns:  # a frame built without the examples join
        runs = runs.assign(example_ids=None, example_scores=None)
    return _board(*_cells_of_runs(runs))


# The leaderboard's cells in DuckDB: RUN_SCORES_SQL (the one selection of leaderboard runs)
# grouped by dataset, model, metric and entry (a tuned entry per trial count, see `entries`),
# with what `_cells_of_runs` takes from the runs in pandas: firsts in (seed, run_id) order, counts,
# and each cell's numbers as lists in that order, so the means and standard deviations come from
# the very pandas aggregations over the very same values (equal to the last bit).
_ORDER = "ORDER BY pos"  # within a cell: by seed, then run_id
CELLS_SQL = f"""
WITH run_rows AS (
    SELECT *, status = 'ok' AS ok, status = 'ok' AND score IS NOT NULL AS scored,
        row_number() OVER (ORDER BY {", ".join(RUN_ORDER)}) AS pos  -- the run's run_scores row
    FROM ({RUN_SCORES_SQL.replace("{config}", "")})
    WHERE dataset_key IS NOT NULL AND model_key IS NOT NULL AND metric IS NOT NULL
      AND method_key IS NOT NULL
)
SELECT dataset_key AS dataset, model_key AS model, metric, method_key,
    first(origin {_ORDER}) FILTER (WHERE origin IS NOT NULL) AS origin,
    max(tune_trials) AS tune_trials,
    first(higher_is_better {_ORDER}) FILTER (WHERE higher_is_better IS NOT NULL)
        AS higher_is_better,
    first(task {_ORDER}) FILTER (WHERE task IS NOT NULL) AS task,
    count(*) AS runs,
    count(*) FILTER (WHERE status = 'diverged') AS diverged,
    count(*) FILTER (WHERE ok AND score IS NULL) AS ok_without_metric,
    count(*) FILTER (WHERE ok AND n_issues > 0) AS flagged,
    max(peak_mem_bytes) FILTER (WHERE ok) AS peak_mem_bytes,
    coalesce(bool_or(speed_shared) FILTER (WHERE ok), false) AS speed_shared,
    first(budget_profile {_ORDER}) FILTER (WHERE ok AND budget_profile IS NOT NULL)
        AS budget_profile,
    first(budget_gb {_ORDER}) FILTER (WHERE ok AND budget_gb IS NOT NULL) AS budget_gb,
    list_distinct(list(peak_mem_kind) FILTER (WHERE ok)) AS mem_kinds,
    list(status) FILTER (WHERE status <> 'ok') AS not_ok_statuses,
    list_distinct(flatten(list(string_split(issues_text, '; ')) FILTER (WHERE ok AND n_issues > 0)))
        AS issue_items,
    list(pos {_ORDER}) FILTER (WHERE scored) AS scored_pos,
    list(pos {_ORDER}) FILTER (WHERE ok) AS ok_pos,
    list(seed {_ORDER}) FILTER (WHERE scored) AS seeds,
    list(score {_ORDER}) FILTER (WHERE scored) AS scores,
    list(example_ids {_ORDER}) FILTER (WHERE scored) AS example_ids,
    list(example_scores {_ORDER}) FILTER (WHERE scored) AS example_scores,
    list(trainable_pct {_ORDER}) FILTER (WHERE ok) AS trainable_pct,
    list(train_s {_ORDER}) FILTER (WHERE ok) AS train_s,
    list(steady_tokens_per_s {_ORDER}) FILTER (WHERE ok) AS steady_tokens_per_s,
    list(steady_samples_per_s {_ORDER}) FILTER (WHERE ok) AS steady_samples_per_s
FROM run_rows
GROUP BY dataset_key, model_key, metric, method_key, origin = 'tuned',
    CASE WHEN origin = 'tuned' THEN tune_trials END
"""
_SCORED = ["scored_pos", "seed", "score", "example_ids", "example_scores"]
_OK_MEANS = {
    "trainable_pct": "trainable_pct", "train_s": "train_s",
    "tokens_per_s": "steady_tokens_per_s", "samples_per_s": "steady_samples_per_s",
}  # fmt: skip
_OK = ["ok_pos", *_OK_MEANS.values()]
_LISTS = ["mem_kinds", "not_ok_statuses", "issue_items", *_SCORED, *_OK]
_CELL_COLUMNS = [
    *GROUP_KEYS, "entry", "method", "origin", "tune_trials", "higher_is_better", "task", "runs",
    "diverged", "ok_without_metric", "flagged", "peak_mem_bytes", "speed_shared",
    "budget_profile", "budget_gb", "mem_kind", "not_ok", "issues",
]  # fmt: skip


def _cells_of_lists(cells):
    """CELLS_SQL's frame as `_cells_of_runs` returns it: the cells (index 0.., sorted by dataset,
    model, metric and entry), the scored runs and the ok runs, in order, with their `_cell`."""
    import numpy as np
    import pandas as pd

    cells = cells.rename(columns={"scores": "score", "seeds": "seed"})
    for column in _LISTS:  # a list over no rows is NULL
        cells[column] = [v if isinstance(v, np.ndarray) else np.empty(0) for v in cells[column]]
    cells = cells.assign(entry=entries(cells), method=cells["method_key"])
    cells = cells.sort_values([*GROUP_KEYS, "entry"], kind="stable", ignore_index=True)
    cells = cells.assign(
        mem_kind=[_joined(k, ", ") for k in cells["mem_kinds"]],
        not_ok=_texts([_not_ok_text(Counter(s)) for s in cells["not_ok_statuses"]], cells.index),
        issues=_texts([_joined(i, "; ") for i in cells["issue_items"]], cells.index),
    )

    def long(columns: list[str]) -> pd.DataFrame:
        """The runs of the cells, one row each, in run_scores' order (so a groupby meets the
        values in the same layout: pandas sums sorted groups another way than unsorted ones)."""
        index = np.repeat(cells.index.to_numpy(), cells[columns[0]].map(len).to_numpy())
        out = {"_cell": index}
        for column in columns:
            if column in ("example_ids", "example_scores"):  # lists of lists (or NULL): as objects
                flat = np.empty(len(index), dtype=object)
                flat[:] = [x for v in cells[column] for x in _nulls_as_none(v)]
                out[column] = flat
            else:  # numbers; NULL reads as NaN, as in run_scores
                values = [np.ma.filled(v.astype(float), np.nan) for v in cells[column]]
                out[column] = np.concatenate(values) if values else np.empty(0)
        frame = pd.DataFrame(out)
        return frame.iloc[np.argsort(frame.pop(columns[0]), kind="stable")]

    scored, ok = long(_SCORED), long(_OK)
    return cells[_CELL_COLUMNS], scored, ok


def _nulls_as_none(values) -> list:
    """A list DuckDB returned (NULL elements masked) with None for its NULLs."""
    import numpy as np

    masked = np.ma.getmaskarray(values)
    if masked.all():  # runs without per-example scores
        return [None] * len(masked)
    return [None if m else x for x, m in zip(np.ma.getdata(values), masked, strict=True)]


def _cells_of_runs(runs):
    """A run_scores frame grouped into cells in pandas (the dashboard's filtered path): the
    cells, the scored runs and the ok runs with their `_cell` (see `_cells_of_lists`)."""
    # one integer code per cell: every aggregation groups by it (factorising the four string keys
    # once, not once per aggregation); rows with a NULL key (no metric) rank nowhere
    code = runs.groupby([*GROUP_KEYS, "entry"], sort=True).ngroup()
    runs = runs.assign(_cell=code)[code >= 0]
    keys = "_cell"
    ok = runs["status"] == "ok"
    scored = ok & runs["score"].notna()
    if "n_issues" not in runs.columns:  # a frame built by hand
        runs = runs.assign(n_issues=runs["issues"].map(len))
    if "issues_text" not in runs.columns:
        runs = runs.assign(issues_text=runs["issues"].map("; ".join))
    flagged = ok & (runs["n_issues"] > 0)
    runs = runs.assign(
        _diverged=runs["status"] == "diverged", _missing=ok & runs["score"].isna(), _flag=flagged
    )
    cells = runs.groupby(keys, sort=True).agg(
        dataset=("dataset", "first"), model=("model", "first"), metric=("metric", "first"),
        entry=("entry", "first"), method=("method_key", "first"), origin=("origin", "first"),
        tune_trials=("tune_trials", "max"), higher_is_better=("higher_is_better", "first"),
        task=("task", "first"), runs=("status", "size"), diverged=("_diverged", "sum"),
        ok_without_metric=("_missing", "sum"), flagged=("_flag", "sum"),
    )  # fmt: skip
    agg = runs[ok].groupby(keys).agg(
        peak_mem_bytes=("peak_mem_bytes", "max"), speed_shared=("speed_shared", "any"),
        budget_profile=("budget_profile", "first"), budget_gb=("budget_gb", "first"),
    ).reindex(cells.index)  # fmt: skip
    kinds = runs[ok].dropna(subset=["peak_mem_kind"]).groupby(keys)["peak_mem_kind"].unique()
    statuses = runs[~ok].groupby([keys, "status"]).size()
    not_ok: dict[int, Counter] = {}
    for (key, status), count in statuses.items():
        not_ok.setdefault(key, Counter())[status] = count
    items: dict[int, set[str]] = {}
    distinct = runs[flagged].groupby([keys, "issues_text"], sort=False).size()  # few per cell
    for key, text in distinct.index:
        items.setdefault(key, set()).update(text.split("; "))
    cells = cells.assign(
        **{c: agg[c] for c in ("peak_mem_bytes", "budget_profile", "budget_gb")},
        speed_shared=agg["speed_shared"].fillna(False).astype(bool),
        mem_kind=[_joined(kinds.get(k, ()), ", ") for k in cells.index],
        not_ok=_texts([_not_ok_text(not_ok.get(k, Counter())) for k in cells.index], cells.index),
        issues=_texts([_joined(items.get(k, ()), "; ") for k in cells.index], cells.index),
    ).reset_index(drop=True)  # the index is the cell code: 0, 1, ...
    return cells[_CELL_COLUMNS], runs[scored], runs[ok]


def _joined(items, sep: str) -> str:
    """Distinct items, sorted and joined ('' for none)."""
    return sep.join(sorted({str(i) for i in items if isinstance(i, str)}))


def _texts(texts: list[str], index):
    """Strings as an object column (as the leaderboard has always had them)."""
    import pandas as pd

    return pd.Series(texts, index=index, dtype=object)


def _not_ok_text(counts: Counter) -> str:
    """'failed 1 · oom 2' for the runs of a cell that are not ok."""
    return " · ".join(f"{status} {count}" for status, count in sorted(counts.items()))


def _board(cells, scored, ok):
    """The leaderboard of cells (one row per dataset / model / metric / entry, index 0..) and
    their scored and ok runs (`_cell` their row in cells): the statistics of each cell, then
    each ranking ordered and tested against its leader (see `summarize`)."""
    import numpy as np
    import pandas as pd

    if cells.empty:
        return pd.DataFrame(columns=LEADERBOARD_COLUMNS)
    board = _statistics(cells, scored, ok)
    ordered = []
    for _, group in board.groupby(GROUP_KEYS, sort=True):
        up = group["higher_is_better"].dropna()
        up = bool(up.iloc[0]) if len(up) else True  # a descriptive metric ranks high first
        key = group["mean"] if up else -group["mean"]
        group = group.assign(_invalid=~group["valid"].astype(bool), _key=key)
        group = group.sort_values(
            ["_invalid", "_key"], ascending=[True, False], na_position="last", kind="stable"
        )
        ranked = group["mean"].notna().to_numpy()
        group["rank"] = np.where(ranked, np.cumsum(ranked), None)
        ordered.append(group.assign(**_against_leader(group, up)))
    return pd.concat(ordered, ignore_index=True)[LEADERBOARD_COLUMNS]


def _statistics(cells, scored, ok):
    """The per-entry columns of `summarize` from the cells and their runs, aggregated with
    groupby over the cell code (no Python loop over runs), plus `_seeds` and `_examples` for the
    paired tests."""
    import numpy as np

    keys = "_cell"
    score = scored.groupby(keys)["score"].agg(["count", "mean", "std", "sum", "min", "max"])
    score = score.reindex(cells.index)
    n = score["count"].fillna(0).astype(int)
    low, high = stats.t_intervals(n, score["mean"], score["std"])
    trim = (score["sum"] - score["min"] - score["max"]) / (n - 2)
    means = ok.groupby(keys).agg(**{c: (run, "mean") for c, run in _OK_MEANS.items()})
    means = means.reindex(cells.index)
    board = cells.assign(
        n=n, mean=score["mean"], std=score["std"].where(n > 1), ci_low=low, ci_high=high,
        ci_method=np.where(n > 1, stats.SEED_METHOD, ""),
        trimmed_mean=trim.where(n >= stats.MIN_TRIMMED_SEEDS),
        valid=cells["diverged"] <= stats.MAX_DIVERGED,
        **{c: means[c] for c in _OK_MEANS},
        peak_mem_bytes=cells["peak_mem_bytes"].astype("Int64"),
    )  # fmt: skip
    board["peak_mem_gib"] = board["peak_mem_bytes"] / 2**30
    limits = [
        _budget(p, gb) for p, gb in zip(cells["budget_profile"], cells["budget_gb"], strict=True)
    ]
    board["budget_gb"] = np.asarray(limits) / 1e9
    board["budget_fit"] = [
        budget_fit(peak, set(kind.split(", ")) if kind else set(), limit)
        for peak, kind, limit in zip(
            board["peak_mem_bytes"], board["mem_kind"], limits, strict=True
        )
    ]
    missing = board["higher_is_better"].isna()
    board["higher_is_better"] = [
        higher_is_better(task, metric) if gap else bool(up)
        for task, metric, up, gap in zip(
            board["task"], board["metric"], board["higher_is_better"], missing, strict=True
        )
    ]
    for column in ("tune_trials",):
        board[column] = board[column].astype("Int64")
    seeds, examples = _per_cell(scored, keys)
    board["_seeds"] = [seeds.get(k, {}) for k in cells.index]
    board["_examples"] = [examples.get(k, {}) for k in cells.index]
    interval = [
        stats.example_interval(_example_means(e)) if e else None for e in board["_examples"]
    ]
    board["ex_n"] = [i.n if i else 0 for i in interval]
    for column in ("se", "low", "high"):
        board[f"ex_{column}"] = [getattr(i, column) if i else math.nan for i in interval]
    board["ex_method"] = [i.method if i else "" for i in interval]
    return board


def _per_cell(scored, keys) -> tuple[dict, dict]:
    """Per cell: {seed: score} of its scored runs, and seed -> {example id: score} when every
    one of them stored per-example scores (a partial set would describe other runs than the
    mean)."""
    seed_of = scored["seed"].astype(int).to_numpy()
    score_of = scored["score"].to_numpy(dtype=float)
    ids_of, values_of = scored["example_ids"].to_numpy(), scored["example_scores"].to_numpy()
    has = [
        hasattr(i, "__len__") and hasattr(v, "__len__")
        for i, v in zip(ids_of, values_of, strict=True)
    ]
    seeds, examples = {}, {}
    for key, rows in scored.groupby(keys, sort=False).indices.items():
        seeds[key] = dict(zip(seed_of[rows].tolist(), score_of[rows].tolist(), strict=True))
        if all(has[i] for i in rows):  # NULL lists read as NaN, NA or None
            examples[key] = {
                int(seed_of[i]): dict(zip(ids_of[i], values_of[i], strict=True)) for i in rows
            }
    return seeds, examples


LEADERBOARD_COLUMNS = [
    *GROUP_KEYS, "method", "origin", "tune_trials", "entry", "higher_is_better", "rank",
    "mean", "std", "n", "runs", "ci_low", "ci_high", "ci_method", "ex_n", "ex_se", "ex_low",
    "ex_high", "ex_method", "vs_leader", "diff", "diff_low", "diff_high", "p_raw", "p_value",
    "test", "trimmed_mean", "diverged", "valid", "not_ok", "ok_without_metric", "flagged",
    "issues", "trainable_pct", "peak_mem_bytes", "peak_mem_gib", "mem_kind", "budget_fit",
    "budget_gb", "train_s", "tokens_per_s", "samples_per_s", "speed_shared",
]  # fmt: skip


def _example_means(examples: dict[int, dict[str, float]]) -> list[float]:
    """Per example id scored in every seed: its mean over the seeds (one seed: its scores)."""
    per_seed = list(examples.values())
    common = set(per_seed[0]).intersection(*per_seed[1:])
    return [sum(s[i] for s in per_seed) / len(per_seed) for i in sorted(common)]


def _against_leader(group, up: bool) -> dict[str, list]:
    """The paired test of each row against the leader (the first ranked valid row), then Holm's
    correction over the tests of this ranking and the verdicts."""
    rows = group.to_dict("records")
    lead = next((r for r in rows if r["valid"] and not math.isnan(r["mean"])), None)
    tests: list[stats.Paired | None] = []
    for r in rows:
        if lead is None or r is lead or not r["valid"] or math.isnan(r["mean"]):
            tests.append(None)
        else:
            tests.append(
                stats.compare(r["_seeds"], lead["_seeds"], r["_examples"], lead["_examples"])
            )
    nan = math.nan
    adjusted = stats.holm([t.p if t else nan for t in tests])
    verdicts = []
    for r, t, p in zip(rows, tests, adjusted, strict=True):
        if not r["valid"]:
            verdicts.append("invalid")
        elif lead is None or math.isnan(r["mean"]):
            verdicts.append("no data")
        elif r is lead:
            verdicts.append("leader")
        else:
            verdicts.append(stats.verdict(t.diff, p, up) if t else "no test")
    return {
        "vs_leader": verdicts,
        "diff": [t.diff if t else nan for t in tests],
        "diff_low": [t.low if t else nan for t in tests],
        "diff_high": [t.high if t else nan for t in tests],
        "p_raw": [t.p if t else nan for t in tests],
        "p_value": adjusted,
        "test": [t.test if t else "" for t in tests],
    }


def rank_tests(board) -> list[tuple[str, Any]]:
    """Across datasets and models (Demšar 2006): per metric, the entries ranked in every
    dataset x model cell of the leaderboard (valid, with a mean), their average ranks, the
    Friedman test and the Nemenyi critical difference (stats.RankTest); metrics with fewer than
    2 cells or 3 such entries are left out."""
    out = []
    if board.empty:
        return out
    usable = board[board["valid"].astype(bool) & board["mean"].notna()]
    for metric, rows in usable.groupby("metric", sort=True):
        table = rows.pivot_table(index=["dataset", "model"], columns="entry", values="mean")
        table = table.dropna(axis=1)  # an entry missing from one cell cannot be ranked in it
        up = rows["higher_is_better"].dropna()
        test = stats.friedman(
            table.to_numpy(), list(table.columns), bool(up.iloc[0]) if len(up) else True
        )
        if test is not None:
            out.append((str(metric), test))
    return out


def _budget(profile, gb) -> float:
    """The budget the runs were held to, in bytes: their suite's, else a T4's usable 15 GB."""

    custom = profile == "custom" and gb is not None and gb == gb
    return (gb if custom else T4_USABLE_GB) * 1e9


def budget_fit(peak: float, kinds: set[str], limit: float) -> bool | None:
    """Whether the CUDA peak fits the budget; None when unknown: no peak, or a CPU RSS peak,
    which says nothing about fitting a GPU (views say which, from mem_kind)."""
    if not kinds or peak != peak or not kinds <= CUDA_KINDS:
        return None
    return bool(peak <= limit)


def run_issues(db_path: Path | str, suite: str | None = None):
    """Per run: provenance_issues, data_issues (lists) and provenance_ok / data_ok."""
    ensure_tables(db_path)
    where = "WHERE suite = $suite" if suite else ""
    with connect(db_path, read_only=True) as con:
        return con.execute(
            f"SELECT *, len(provenance_issues) = 0 AS provenance_ok, "
            f"len(data_issues) = 0 AS data_ok FROM ({RUN_ISSUES_SQL}) {where} ORDER BY run_id",
            {"suite": suite} if suite else {},
        ).df()


def repro_history(db_path: Path | str, suite: str | None = None):
    """Every stored repro check (newest first), optionally of one suite."""
    ensure_tables(db_path)
    where = "WHERE suite = $suite" if suite else ""
    with connect(db_path, read_only=True) as con:
        return con.execute(
            f"SELECT * FROM repro_checks {where} ORDER BY checked_at DESC",
            {"suite": suite} if suite else {},
        ).df()
