"""Embedding fine-tuning (harness/embedding): retrieval scoring per width, Matryoshka training,
leak-free retrieval splits, per-width storage and the Embeddings dashboard page."""

from __future__ import annotations

import random

import pytest
import torch
from test_methods import Snapshot

from harness import store
from harness.backends.data import DataLeakError, check_no_overlap, load_splits, make_splits
from harness.backends.embedding.backend import load_sentence_transformer
from harness.backends.embedding.evaluate import RetrievalSet, evaluate_at_dims, retrieval_set
from harness.backends.embedding.methods.base import TrainParams, check_dims
from harness.models import MODEL_ASSETS
from harness.plan.plan import make_plan
from harness.run.lifecycle import execute
from harness.store.browse import embedding_scores
from harness.suite.suite_file import Suite, SuiteError, expand, load_suite

DIMS = [384, 128, 32]


def _suite(**methods) -> dict:
    return {
        "name": "emb",
        "seeds": [0],
        "training": {
            "max_steps": 2, "batch_size": 8, "learning_rate": 1.0e-3, "max_length": 32,
            "eval_batch_size": 32, "timeout_s": 300,
        },
        "models": {"minilm": {"asset": "all-minilm-l6-v2"}},
        "datasets": {
            "qa": {
                "source": "chatterbot_retrieval",
                "options": {"categories": ["trivia"]},
                "task": "retrieval",
                "splits": {"train": 32, "validation": 8, "test": 24},
            }
        },
        "methods": methods,
        "grid": {"methods": list(methods), "models": ["minilm"], "datasets": ["qa"]},
    }  # fmt: skip


@pytest.fixture(scope="module")
def minilm():
    model = load_sentence_transformer(MODEL_ASSETS.get("all-minilm-l6-v2").resolve(), "cpu")
    model.max_seq_length = 32
    return model


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """One 2-step LoRA + MatryoshkaLoss run, the parameters as training began, and its result."""
    (spec,) = expand(Suite.model_validate(_suite(lora={"params": {
        "r": 4, "matryoshka_dims": DIMS, "eval_dims": DIMS}})))  # fmt: skip
    snap = Snapshot()
    out = execute(spec, tmp_path_factory.mktemp("lora"), extra_callbacks=[snap])
    return spec, snap, out


@pytest.mark.slow
def test_evaluator_scores_a_known_answer(minilm):
    texts = [
        "The Eiffel Tower is in Paris.", "Bananas are rich in potassium.",
        "Jupiter is the largest planet.", "Python is a programming language.",
        "The Nile flows through Egypt.", "Chess is played on 64 squares.",
    ]  # fmt: skip
    corpus = {f"d{i}": t for i, t in enumerate(texts)}
    queries = {f"q{i}": t for i, t in enumerate(texts)}  # each query is its own document
    perfect = RetrievalSet(queries, corpus, {f"q{i}": {f"d{i}"} for i in range(len(texts))})
    scores, widths = evaluate_at_dims(minilm, perfect, DIMS, batch_size=8)
    for dim in DIMS:
        assert scores[dim] == {"ndcg@10": 1.0, "mrr@10": 1.0, "recall@10": 1.0}
    assert widths == {d: d for d in DIMS}
    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    shuffled = RetrievalSet(queries, corpus, {f"q{i}": {f"d{j}"} for i, j in enumerate(order)})
    worse, _ = evaluate_at_dims(minilm, shuffled, DIMS, batch_size=8)
    assert all(worse[d]["mrr@10"] < 0.8 and worse[d]["ndcg@10"] < 0.9 for d in DIMS)


@pytest.mark.slow
def test_truncation_slices_what_encode_truncates(minilm):
    texts = ["a query about trains", "a document about railways", "something else"]
    data = RetrievalSet({"q0": texts[0]}, {"d0": texts[1], "d1": texts[2]}, {"q0": {"d0"}})
    scores, widths = evaluate_at_dims(minilm, data, [384, 64], batch_size=8)
    assert widths == {384: 384, 64: 64}
    full = minilm.encode(texts, convert_to_tensor=True)
    cut = minilm.encode(texts, convert_to_tensor=True, truncate_dim=64)
    assert full.shape[1] == 384 and cut.shape[1] == 64
    assert torch.allclose(full[:, :64], cut, atol=1e-5)


def test_dims_are_checked_against_the_model_width():
    params = TrainParams(matryoshka_dims=[512, 256])
    with pytest.raises(ValueError, match=r"methods.lora.params.matryoshka_dims: \[512\] exceed"):
        check_dims(params, 384, "methods.lora", "minilm")
    assert check_dims(TrainParams(), 384, "m", "x") == [384, 256, 128, 64, 32]
    assert check_dims(TrainParams(eval_dims=[64, 128]), 384, "m", "x") == [384, 128, 64]


def test_repeated_dims_are_a_suite_error(write_suite):
    data = _suite(full={"params": {"matryoshka_dims": [384, 128, 128]}})
    with pytest.raises(SuiteError, match="dims must not repeat"):
        load_suite(write_suite(data))


@pytest.mark.slow
def test_lora_run_trains_only_the_adapter_and_stores_base_and_tuned_per_width(lora_run, tmp_path):
    spec, snap, out = lora_run
    info = out.result.train_info
    assert info.status == "ok", info.reason
    assert list(info.metrics) == ["test"]
    assert set(info.metrics["test"]) == {"ndcg@10", "mrr@10", "recall@10"}
    after = dict(out.model.named_parameters())
    changed = {n for n, p in snap.before.items() if not torch.equal(p, after[n].detach())}
    assert changed and all("lora_" in n for n in changed), sorted(changed)[:5]
    trainable = {n for n, p in after.items() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert info.notes["loss"] == "MatryoshkaLoss(MNRL)"
    assert info.notes["scored_widths"] == {d: d for d in DIMS}
    rows = info.tables["embedding_metrics"].rows
    assert {(r["model_state"], r["dim"]) for r in rows} == {
        (state, d) for state in ("base", "tuned") for d in DIMS
    }
    assert all(r["share_of_full"] == 1.0 for r in rows if r["dim"] == 384 and r["value"])
    tuned_full = {
        r["name"]: r["value"] for r in rows if r["model_state"] == "tuned" and r["dim"] == 384
    }
    assert tuned_full == info.metrics["test"]
    # A test positive shared with train would be a leak: the lifecycle's overlap check says none.
    assert info.data_checks["group_overlap"] == {"positive": {"validation": 0, "test": 0}}

    db = tmp_path / "r.duckdb"
    store.ingest(db, out.result)
    with store.connect(db, read_only=True) as con:
        stored = con.execute(
            "SELECT model_state, count(*) FROM embedding_metrics GROUP BY ALL ORDER BY 1"
        ).fetchall()
    assert stored == [("base", 9), ("tuned", 9)]  # 3 widths x 3 metrics each
    table = embedding_scores(db, "emb")
    row = table[(table["metric"] == "ndcg@10") & (table["dim"] == 32)].iloc[0]
    assert row["method"] == "lora" and row["delta"] == pytest.approx(row["tuned"] - row["base"])
    assert store.export(db, tmp_path / "out.csv", "csv") == 3
    assert len((tmp_path / "out_embedding_metrics.csv").read_text().splitlines()) == 1 + 18


def test_retrieval_splits_keep_shared_positives_together():
    records = [
        {"anchor": f"q{i}", "positive": f"answer {i // 2}"} for i in range(40)
    ]  # every answer has two questions
    splits = make_splits(records, {"train": 20, "test": 10}, 0, "anchor", ("positive",))
    check_no_overlap(splits.as_dict(), "positive")
    train = {r["positive"] for r in splits.train}
    assert not train & {r["positive"] for r in splits.test}
    # Without the group field the same data leaks answers into train.
    leaky = make_splits(records, {"train": 20, "test": 10}, 0, "anchor")
    with pytest.raises(DataLeakError):
        check_no_overlap(leaky.as_dict(), "positive")


def test_chatterbot_retrieval_splits_do_not_leak():
    spec = (
        Suite.model_validate(_suite(base={}))
        .datasets["qa"]
        .model_copy(
            update={"options": {}, "splits": {"train": 600, "validation": 100, "test": 200}}
        )
    )
    splits = load_splits(spec)
    for field in ("anchor", "positive"):
        check_no_overlap(splits.as_dict(), field)
    data = retrieval_set(splits.train, splits.test)
    assert len(data.queries) == len({r["anchor"] for r in splits.test})
    assert set(data.corpus.values()) == {r["positive"] for r in splits.train + splits.test}


def _synthetic_embedding_run(method: str, base: dict[int, float], tuned: dict[int, float] | None):
    from dashboard.synthetic import result

    full = max(base)
    res = result(suite="emb", method=method, model="minilm", dataset="qa", task="retrieval",
                 headline="ndcg@10", metrics={"ndcg@10": (tuned or base)[full]})  # fmt: skip
    rows = []
    for state, scores in (("base", base), ("tuned", tuned or {})):
        for dim, value in scores.items():
            rows.append({"split": "test", "model_state": state, "dim": dim, "name": "ndcg@10",
                         "value": value, "share_of_full": value / scores[full]})  # fmt: skip
    from harness.backends.embedding.evaluate import EMBEDDING_METRICS

    res["train_info"]["tables"] = {"embedding_metrics": EMBEDDING_METRICS.with_rows(rows)}
    return res


def test_embeddings_page_compares_methods_at_a_chosen_width(tmp_path, monkeypatch):
    from test_dashboard import open_page

    db = tmp_path / "emb.duckdb"
    base = {384: 0.50, 128: 0.40, 32: 0.20}
    for res in (
        _synthetic_embedding_run("base", base, None),
        _synthetic_embedding_run("lora", base, {384: 0.60, 128: 0.55, 32: 0.45}),
        _synthetic_embedding_run("full", base, {384: 0.70, 128: 0.50, 32: 0.25}),
    ):
        store.ingest(db, res)
    at = open_page(db, "embeddings", monkeypatch)
    shown = at.dataframe[0].value
    assert shown["method"].tolist() == ["full", "lora", "base"]  # best tuned first, at full width
    assert at.sidebar.selectbox(key="emb_dim").value == 384
    at.sidebar.selectbox(key="emb_dim").set_value(32).run()
    shown = at.dataframe[0].value.set_index("method")
    assert shown.index.tolist() == ["lora", "full", "base"]  # Matryoshka-like lora wins at 32
    assert shown.loc["lora", "delta"] == pytest.approx(0.25)
    assert shown.loc["lora", "tuned share"] == pytest.approx(0.75)
    assert shown.loc["base", "base"] == pytest.approx(0.20) and shown["tuned"].isna()["base"]
    assert len(at.get("vega_lite_chart")) == 1


@pytest.mark.slow
def test_tuning_trials_score_on_validation_and_the_best_is_rerun_on_test(tmp_path, write_suite):
    from harness.tuning.study import tune_plan

    data = _suite(lora={"params": {"r": 4, "eval_dims": [384, 64]}, "search": {
        "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-3, "log": True}}})  # fmt: skip
    data["tune"] = {"trials": 2, "sampler": {"type": "random", "seed": 0}, "eval_every": 1}
    db = tmp_path / "ftbench.duckdb"
    tune_plan(make_plan(write_suite(data)), results_dir=tmp_path, db_path=db)
    with store.connect(db, read_only=True) as con:
        splits = con.execute(
            "SELECT DISTINCT r.origin, m.split, e.split FROM runs r JOIN metrics m USING (run_id) "
            "JOIN embedding_metrics e USING (run_id) ORDER BY 1"
        ).fetchall()
        trials = con.execute("SELECT state, intermediate FROM trials").fetchall()
    assert splits == [("trial", "validation", "validation"), ("tuned", "test", "test")]
    assert [state for state, _ in trials] == ["COMPLETE", "COMPLETE"]
    assert all('"1"' in intermediate for _, intermediate in trials)  # reported at step 1


def test_hard_negatives_train_as_a_third_column_and_join_the_corpus():
    from harness.backends.embedding.backend import train_rows

    train = [{"anchor": "q1", "positive": "p1", "negative": "n1"}]
    test = [{"anchor": "q2", "positive": "p2", "negative": "n2"}]
    assert list(train_rows(train)[0]) == ["anchor", "positive", "negative"]
    assert list(train_rows([*train, {"anchor": "q3", "positive": "p3"}])[0]) == [
        "anchor", "positive",
    ]  # fmt: skip
    data = retrieval_set(train, test)
    assert sorted(data.corpus.values()) == ["n1", "n2", "p1", "p2"]
    assert data.queries == {"q0": "q2"} and data.corpus[next(iter(data.relevant["q0"]))] == "p2"


def test_review_inverse_cloze_pairs_cut_the_first_sentence_from_its_review():
    from harness.backends.data import DATA_SOURCES, MovieReviewOptions, MovieReviews

    source = DATA_SOURCES.get("movie_reviews_retrieval")
    pairs = source.load(source.Options(max_words=60))
    reviews = {r["text"] for r in MovieReviews().load(MovieReviewOptions(subset="imdb"))}
    assert len(pairs) > 800
    for pair in pairs[:50]:
        assert f"{pair['anchor']} {pair['positive']}" in reviews
        assert len(pair["anchor"].split()) >= 5 and len(pair["positive"].split()) >= 15
