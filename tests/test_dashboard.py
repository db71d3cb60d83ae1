"""Dashboard: stats, data layer, every page through Streamlit's AppTest, and a concurrent writer."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dashboard_fixtures import FAILED_TRACEBACK, build_fixture_db, run_id_of
from streamlit.testing.v1 import AppTest

from dashboard import data, stats, tables
from harness import store

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
PAGES = {
    "leaderboard": "views/leaderboard.py",
    "pareto": "views/pareto.py",
    "run": "views/run_detail.py",
    "compare": "views/compare.py",
    "tuning": "views/tuning.py",
    "embeddings": "views/embeddings.py",
    "frontier": "views/frontier.py",
    "repro": "views/reproducibility.py",
    "memory": "views/memory.py",
}
TITLES = {
    "leaderboard": "Leaderboard",
    "pareto": "Pareto",
    "run": "Run detail",
    "compare": "Compare runs",
    "tuning": "Tuning",
    "embeddings": "Embeddings",
    "frontier": "Alignment frontier",
    "repro": "Reproducibility",
    "memory": "Memory",
}


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory) -> Path:
    return build_fixture_db(tmp_path_factory.mktemp("dash") / "fixture.duckdb")


def open_page(db: Path, page: str, monkeypatch, **query: str) -> AppTest:
    """The app on `page`, as a browser opening `/<page>?<query>` would see it."""
    monkeypatch.setenv("FTBENCH_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=60)
    if page == "leaderboard":
        at.query_params.update(query)
    at.run()
    if page != "leaderboard":
        at.switch_page(PAGES[page])
        at.query_params.clear()  # a fresh URL: what the first page wrote there does not carry over
        at.query_params.update(query)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == [TITLES[page]]
    return at


def texts(at: AppTest) -> str:
    parts = [
        e.value
        for kind in ("info", "warning", "error", "caption", "markdown")
        for e in getattr(at, kind)
    ]
    parts += [e.value for e in at.subheader]
    return "\n".join(str(p) for p in parts)


# --- stats ---------------------------------------------------------------------------------------


def test_filter_parser_accepts_the_documented_syntax():
    clauses = stats.parse_filter(" method=lora|ia3 , model~SMOL,status!=ok, dataset!~rt ")
    assert clauses == [
        stats.Clause("method", "=", ("lora", "ia3")),
        stats.Clause("model", "~", ("SMOL",)),
        stats.Clause("status", "!=", ("ok",)),
        stats.Clause("dataset", "!~", ("rt",)),
    ]
    assert stats.parse_filter("") == [] and stats.parse_filter(None) == []
    frame = pd.DataFrame({
        "method_key": ["lora", "ia3", "full", "lora"],
        "model_key": ["SmolLM2-135m", "smollm2", "qwen", "qwen"],
        "status": ["ok", "ok", "ok", "oom"],
    })  # fmt: skip
    got = stats.apply_filter(frame, stats.parse_filter("method=lora|ia3,model~smol"))
    assert got.index.tolist() == [0, 1]
    assert stats.apply_filter(frame, stats.parse_filter("status!=ok")).index.tolist() == [3]
    assert stats.apply_filter(frame, stats.parse_filter("model!~smol")).index.tolist() == [2, 3]


@pytest.mark.parametrize(
    "junk",
    [
        "__import__('os').system('true')",
        "method=lora; DROP TABLE runs",
        "method=lora' OR '1'='1",
        "method",
        "method=",
        "method=lora,,model=x",
        "method=lora,",
        "nosuchfield=1",
        "method=lo ra",
        "method=a|",
        "config.training=1",
        "x" * 501,
    ],
)
def test_filter_parser_rejects_junk(junk):
    with pytest.raises(stats.FilterError):
        stats.parse_filter(junk)


def test_filter_on_a_missing_column_is_a_filter_error():
    with pytest.raises(stats.FilterError, match="suite"):
        stats.apply_filter(pd.DataFrame({"method_key": ["a"]}), stats.parse_filter("suite=x"))


# --- tables and data layer -----------------------------------------------------------------------


def test_leaderboard_table_from_the_fixture(fixture_db):
    scores = data.run_scores(fixture_db, "demo", "rt", "accuracy", "tiny")
    assert len(scores) == 13 and scores["score"].isna().sum() == 3  # oom, failed, ok-without-metric
    board = data.leaderboard(fixture_db, "demo", "rt", "tiny", "accuracy").set_index("method")
    assert board.index.tolist() == ["lora", "ia3", "full", "zero_shot", "prompt"]
    assert board.loc["lora", "vs_leader"] == "leader" and board.loc["ia3", "vs_leader"] == "tied"
    assert (
        board.loc["zero_shot", "vs_leader"] == "" and board.loc["prompt", "vs_leader"] == "no data"
    )
    lora = board.loc["lora"]
    assert (
        lora["mean"] == pytest.approx(0.82)
        and lora["std"] == pytest.approx(0.02)
        and lora["n"] == 3
    )
    assert lora["ci_low"] <= 0.82 <= lora["ci_high"]
    full = board.loc["full"]
    assert (full["n"], full["runs"], full["not_ok"]) == (1, 3, "failed 1 · oom 1")
    assert math.isnan(full["ci_low"]) and math.isnan(full["ci_high"])  # n=1: no interval
    assert full["vs_leader"] == "no CI"
    assert board.loc["prompt", "ok_without_metric"] == 1
    assert board["budget_fit"].isna().all()  # CPU peaks never claim to fit a GPU
    assert {tables.budget_fit_text(r.budget_fit, r.mem_kind, r.budget_gb)
            for r in board.itertuples()} <= {"n/a (CPU)", "–"}  # fmt: skip
    gpu = data.leaderboard(fixture_db, "demo", "rt", "gpu", "accuracy")
    # The runs' budget is a T4 (15 GB = 15e9 bytes usable): 16 GiB is over, 4 GiB fits.
    assert dict(zip(gpu["method"], gpu["budget_fit"], strict=True)) == {"full": False, "lora": True}
    assert {r.method: tables.budget_fit_text(r.budget_fit, r.mem_kind, r.budget_gb)
            for r in gpu.itertuples()} == {"full": "❌ > 15.0 GB", "lora": "✅ fits"}  # fmt: skip


def test_lower_is_better_metric_ranks_ascending(fixture_db):
    choices = data.suite_choices(fixture_db, "qa")["metrics"]
    assert not choices.set_index("metric").loc["perplexity", "higher_is_better"]
    board = data.leaderboard(fixture_db, "qa", "chat", None, "perplexity")
    assert board["method"].tolist() == ["full", "lora"]


def test_pareto_points_and_config_diff(fixture_db):
    board = data.pareto(fixture_db, "demo", "rt", "accuracy", None)
    points = tables.pareto_points(board, True, "peak_mem_gib").set_index(["method", "model"])
    assert points.loc[("ia3", "tiny"), "on_frontier"] and points.loc[("lora", "gpu"), "on_frontier"]
    # ia3 on tiny (1 GiB, 0.81) beats zero_shot (2 GiB, 0.50) and full (3 GiB, 0.60) on both axes.
    assert not points.loc[("zero_shot", "tiny"), "on_frontier"]
    assert not points.loc[("full", "tiny"), "on_frontier"]
    assert "k_proj" in points.loc[("ia3", "tiny"), "config"]
    ids = [run_id_of("lora", "tiny", 0), run_id_of("full", "tiny", 0)]
    diff = tables.config_diff(data.run_configs(fixture_db, ids))
    assert "training.learning_rate" in diff.index and "suite" not in diff.index
    assert diff.loc["training.learning_rate", ids[1]] == "1e-05"
    assert (
        "suite" in tables.config_diff(data.run_configs(fixture_db, ids), only_differing=False).index
    )


def test_data_layer_edge_cases(fixture_db, tmp_path):
    assert data.run_detail(fixture_db, "no-such-run") is None
    assert data.optional_table(fixture_db, "repro_checks").empty  # created, no rows
    # A backend's result table exists once a run of that backend declared it.
    assert data.optional_table(fixture_db, "embedding_metrics") is None
    with pytest.raises(ValueError):
        data.optional_table(fixture_db, "runs; DROP TABLE runs")
    with pytest.raises(data.DatabaseMissingError):
        data.overview(tmp_path / "missing.duckdb")
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    with pytest.raises(data.DataError):
        data.overview(junk)
    assert data.resolve_db(["--db", "a.duckdb"], {"FTBENCH_DB": "b.duckdb"}) == Path("a.duckdb")
    assert data.resolve_db(["--db=c.duckdb"], {}) == Path("c.duckdb")
    assert data.resolve_db(["-q"], {"FTBENCH_DB": "b.duckdb"}) == Path("b.duckdb")
    assert data.resolve_db([], {}) == data.DEFAULT_DB


# --- pages (AppTest) -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_without_a_database(page, tmp_path, monkeypatch):
    at = open_page(tmp_path / "absent.duckdb", page, monkeypatch)
    assert "No results database at" in texts(at)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_with_an_empty_database(page, tmp_path, monkeypatch):
    db = tmp_path / "empty.duckdb"
    with store.connect(db):  # the schema, no runs
        pass
    at = open_page(db, page, monkeypatch)
    assert "holds no runs yet" in texts(at) or "yet —" in texts(at)


def test_leaderboard_page(fixture_db, monkeypatch):
    at = open_page(fixture_db, "leaderboard", monkeypatch)
    assert [s.value for s in at.sidebar.selectbox][:2] == ["demo", "rt"]
    at.sidebar.selectbox(key="lb_model").set_value("tiny").run()
    assert not at.exception
    board = at.dataframe[0].value
    assert board["method"].tolist() == ["lora", "ia3", "full", "zero_shot", "prompt"]
    assert board.set_index("method").loc["ia3", "vs_leader"] == "tied"
    assert {b.label for b in at.get("download_button")} == {"Download CSV", "Download Parquet"}
    body = texts(at)
    assert (
        "Fewer than 3 seeds" in body
        and "failed 1 · oom 1" in body
        and "recorded no `accuracy`" in body
    )
    # A filter narrows the rows; junk is explained and ignored, never evaluated.
    at.sidebar.text_input(key="lb_filter").set_value("method=lora|zero_shot").run()
    assert at.dataframe[0].value["method"].tolist() == ["lora", "zero_shot"]
    at.sidebar.text_input(key="lb_filter").set_value("__import__('os')").run()
    assert not at.exception and len(at.dataframe[0].value) == 5
    assert "Filter ignored" in at.sidebar.error[0].value


def test_leaderboard_other_metric_and_suite(fixture_db, monkeypatch):
    at = open_page(fixture_db, "leaderboard", monkeypatch, suite="qa")
    assert at.dataframe[0].value["method"].tolist() == ["full", "lora"]  # perplexity: lower first
    assert "lower is better" in texts(at)


def test_the_url_selects_the_view(fixture_db, monkeypatch):
    at = open_page(
        fixture_db, "leaderboard", monkeypatch, suite="demo", model="tiny", metric="macro_f1"
    )
    assert [s.value for s in at.sidebar.selectbox] == ["demo", "rt", "tiny", "macro_f1"]
    assert at.dataframe[0].value["method"].tolist()[0] == "lora"
    at = open_page(fixture_db, "pareto", monkeypatch, model="nope")
    assert "Unknown model `nope`" in texts(at) and len(at.dataframe) == 1  # falls back, goes on


def test_unknown_suite_is_explained(fixture_db, monkeypatch):
    at = open_page(fixture_db, "leaderboard", monkeypatch, suite="nope")
    assert "Unknown suite `nope`" in texts(at) and "demo" in texts(at)


def test_pareto_page(fixture_db, monkeypatch):
    at = open_page(fixture_db, "pareto", monkeypatch)
    frontier = at.dataframe[0].value
    assert {"ia3", "lora"} <= set(frontier["method"])
    assert len(at.get("vega_lite_chart")) == 1
    for axis in ("train time (s)", "trainable params (%)"):
        at.sidebar.radio(key="pareto_cost").set_value(axis).run()
        assert not at.exception and len(at.dataframe) == 1


def test_run_detail_page_shows_a_failed_run(fixture_db, monkeypatch):
    at = open_page(fixture_db, "run", monkeypatch, run=run_id_of("full", "tiny", 2))
    body = texts(at)
    assert "RuntimeError: boom" in body and "recorded no metrics" in body
    assert any(FAILED_TRACEBACK in c.value for c in at.code)
    assert "No provenance recorded" in body and "No training curve" in body


def test_run_detail_page_shows_an_ok_run(fixture_db, monkeypatch):
    run_id = run_id_of("lora", "tiny", 1)
    at = open_page(fixture_db, "run", monkeypatch, run=run_id)
    assert at.dataframe[0].value.set_index("name").loc["accuracy", "value"] == pytest.approx(0.82)
    assert len(at.get("vega_lite_chart")) == 4  # loss, learning_rate, grad_norm, step_s
    assert f"results/runs/{run_id}/result.json" in texts(at)
    assert [m.label for m in at.metric][:2] == ["Peak memory", "Train"]
    at = open_page(fixture_db, "run", monkeypatch, run=run_id_of("prompt", "tiny", 0))
    assert "an ok run without metrics" in texts(at)
    at = open_page(fixture_db, "run", monkeypatch, run="not-a-run")
    assert "No run `not-a-run`" in texts(at)


def test_compare_page(fixture_db, monkeypatch):
    at = open_page(fixture_db, "compare", monkeypatch)
    ids = [
        run_id_of("lora", "tiny", 0),
        run_id_of("full", "tiny", 0),
        run_id_of("prompt", "tiny", 0),
    ]
    at.multiselect(key="cmp_runs").set_value(ids).run()
    assert not at.exception
    diff = at.dataframe[0].value
    assert "training.learning_rate" in diff.index and "suite" not in diff.index
    assert "highlighted" in texts(at) and "No metrics recorded for: prompt" in texts(at)
    assert len(at.get("vega_lite_chart")) == 1
    at.multiselect(key="cmp_runs").set_value(ids[:1]).run()
    assert "Pick at least two runs" in texts(at)


def test_optional_table_pages_show_rows_once_the_table_exists(fixture_db, tmp_path, monkeypatch):
    db = tmp_path / "with_trials.duckdb"
    db.write_bytes(fixture_db.read_bytes())
    with duckdb.connect(str(db)) as con:
        # Only the columns the page reads (store v2 creates the full table; v1 has none).
        con.execute(
            "CREATE TABLE IF NOT EXISTS trials "
            "(study_name VARCHAR, number INTEGER, state VARCHAR, value DOUBLE)"
        )
        con.execute(
            "INSERT INTO trials (study_name, number, state, value) VALUES "
            "('demo-lora', 0, 'COMPLETE', 0.7), ('demo-lora', 1, 'PRUNED', 0.6), "
            "('demo-lora', 2, 'FAIL', NULL)"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS repro_checks "
            "(original_run_id VARCHAR, repro_dir VARCHAR, verdict VARCHAR)"
        )
        con.execute(
            "INSERT INTO repro_checks (original_run_id, repro_dir, verdict) VALUES "
            "('a', 'x', 'reproduced'), ('b', 'y', 'differs')"
        )
        con.execute("CREATE TABLE IF NOT EXISTS embedding_metrics (run_id VARCHAR)")  # empty
    at = open_page(db, "tuning", monkeypatch)
    assert len(at.dataframe[0].value) == 3 and "3 trials (1 complete, 1 pruned, 1 fail)" in texts(
        at
    )
    assert len(at.get("vega_lite_chart")) == 1
    at = open_page(db, "repro", monkeypatch)
    assert len(at.dataframe[0].value) == 2 and "differs 1 · reproduced 1" in texts(at)
    at = open_page(db, "embeddings", monkeypatch)
    assert "No embedding metrics yet" in texts(at) and "empty" in texts(at)


def test_tuned_reruns_are_separate_entries_and_trials_are_left_out():
    from harness.store.queries import entries

    scores = pd.DataFrame({
        "method_key": ["lora", "lora", "ia3"],
        "origin": ["run", "tuned", "run"],
        "tune_trials": [None, 20, None],
    })  # fmt: skip
    assert entries(scores).tolist() == ["lora", "lora (tuned, 20 trials)", "ia3"]


@pytest.mark.skipif(store.SCHEMA_VERSION < 2, reason="runs.origin arrives with store schema v2")
def test_origin_from_the_store(tmp_path):
    from dashboard.synthetic import result

    db = tmp_path / "tuned.duckdb"
    plain = result(method="lora", metrics={"accuracy": 0.7})
    tuned = result(method="lora", seed=1, metrics={"accuracy": 0.8})
    tuned["run_info"]["spec"]["tuned"] = {"trials": 20}
    trial = result(method="lora", seed=2, metrics={"accuracy": 0.9})
    trial["run_info"]["spec"]["trial"] = {"number": 0}
    for res in (plain, tuned, trial):
        store.ingest(db, res)
    board = data.leaderboard(db, "synthetic", "rt", "tiny", "accuracy")
    assert board["entry"].tolist() == ["lora (tuned, 20 trials)", "lora"]  # no trial entry
    assert "lora (trial)" in {ui_label.split(" · ")[3] for ui_label in _labels(db)}


def _labels(db: Path) -> list[str]:
    from dashboard import ui

    return [ui.run_label(r) for r in data.runs_index(db).itertuples()]


# --- a writer and readers at once ----------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    import time
    from dashboard.synthetic import result
    from harness.store import ingest
    for seed in range(int(sys.argv[2])):
        ingest(sys.argv[1], result(suite="live", method=f"m{seed % 4}", seed=seed, metrics={"accuracy": 0.5}))
        time.sleep(0.05)  # a real run takes minutes between ingests; readers get in between
    """
)


def test_reads_while_the_runner_ingests(tmp_path):
    """Readers polling hard (far harder than the cached dashboard does) never fail and never see
    half an ingest, and the writer (harness.store, retrying on the lock) finishes every run."""
    db = tmp_path / "live.duckdb"
    n = 20
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(n)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    reads, seen = 0, []
    deadline = time.monotonic() + 90
    while writer.poll() is None and time.monotonic() < deadline:
        try:
            info = data.overview(db)
        except data.DatabaseMissingError:  # the writer has not created the file yet
            time.sleep(0.02)
            continue
        if info["runs"]:
            scores = data.run_scores(db, "live", "rt", "accuracy", "tiny")
            assert scores["score"].notna().all()  # one ingest is one transaction: never half a run
            seen.append(len(scores))
        reads += 1
        time.sleep(0.02)
    _, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert reads > 5 and seen == sorted(seen) and seen, (reads, seen)
    assert data.overview(db)["runs"] == n
