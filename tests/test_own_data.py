"""The user's own data: the `files` source, the generic classification, instruction and
preference_pairs tasks, their checks (each bad input one clear error, nothing runs) and suites end
to end into DuckDB."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from harness import store
from harness.backends.data import DataLeakError, DataUnavailableError, load_splits
from harness.cli import main as cli
from harness.suite.suite_file import SuiteError, expand, load_suite
from harness.suite.tasks import task_for

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["billing", "login", "shipping", "bug", "feature"]
TRAINING = {"max_steps": 2, "batch_size": 2, "max_length": 128, "eval_batch_size": 8}


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def tickets(n_per_class: int = 8, classes: list[str] = CLASSES, start: int = 0) -> list[dict]:
    return [
        {"ticket": f"ticket {i} about {label} number {i * 7 + k}", "category": label}
        for k, label in enumerate(classes)
        for i in range(start, start + n_per_class)
    ]


def write_suite_file(
    folder: Path, datasets: dict, name: str = "own", methods: tuple[str, ...] = ("lora",),
    params: dict | None = None,
) -> Path:  # fmt: skip
    """A suite of `methods` on the tiny model; `params` go to every cell (an override)."""
    grid = {"methods": list(methods), "models": ["tiny"], "datasets": list(datasets)}
    if params:
        grid["overrides"] = [{"when": {"dataset": d}, "params": params} for d in datasets]
    data = {
        "name": name,
        "seeds": [0],
        "training": {**TRAINING, "timeout_s": 300},
        "models": {"tiny": {"asset": "tiny-random-llama"}},
        "datasets": datasets,
        "methods": {m: {} for m in methods},
        "grid": grid,
    }
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def tickets_dataset(**options) -> dict:
    return {
        "source": "files",
        "options": {"path": "tickets.csv", "columns": {"text": "ticket", "label": "category"},
                    **options},
        "task": "classification",
        "splits": {"train": 20, "validation": 5, "test": 10},
    }  # fmt: skip


# --------------------------------------------------------------------------- identity


def test_a_files_sha256_is_in_the_run_id_and_the_suite_folder_is_not(tmp_path):
    write_csv(tmp_path / "tickets.csv", tickets())
    suite = load_suite(write_suite_file(tmp_path, {"t": tickets_dataset()}))
    spec = expand(suite)[0]
    assert set(spec.dataset.options["sha256"]) == {"path"}
    assert "root" not in spec.resolved["dataset"]["options"]  # where it is read, not what

    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(tmp_path / "tickets.csv", moved / "tickets.csv")
    same = expand(load_suite(write_suite_file(moved, {"t": tickets_dataset()})))[0]
    assert same.run_id == spec.run_id  # another checkout, the same bytes: the same run

    rows = tickets()
    rows[0]["category"] = "login"
    write_csv(moved / "tickets.csv", rows)
    changed = expand(load_suite(write_suite_file(moved, {"t": tickets_dataset()})))[0]
    assert changed.run_id != spec.run_id  # a changed file is a different run


def test_a_pinned_sha256_that_no_longer_matches_is_refused(tmp_path):
    write_csv(tmp_path / "tickets.csv", tickets())
    dataset = tickets_dataset(sha256={"path": "0" * 64})
    with pytest.raises(SuiteError, match=r"tickets.csv \(path\) has sha256 .* the file changed"):
        load_suite(write_suite_file(tmp_path, {"t": dataset}))


def test_one_file_is_split_and_the_label_set_comes_from_the_data(tmp_path):
    write_csv(tmp_path / "tickets.csv", tickets())
    dataset = load_suite(write_suite_file(tmp_path, {"t": tickets_dataset()})).datasets["t"]
    splits = load_splits(dataset)
    assert splits.split_sizes == {"train": 20, "validation": 5, "test": 10}
    assert set(splits.train[0]) == {"text", "label"}
    assert task_for(dataset, splits.as_dict).labels == tuple(sorted(CLASSES))


def test_jsonl_and_parquet_read_like_csv(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = tickets()
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    write_csv(tmp_path / "tickets.csv", rows)
    suite = load_suite(
        write_suite_file(
            tmp_path,
            {
                "csv": tickets_dataset(),
                "jsonl": tickets_dataset(path="t.jsonl"),
                "parquet": tickets_dataset(path="t.parquet"),
            },
        )
    )
    fingerprints = {load_splits(d).fingerprint for d in suite.datasets.values()}
    assert len(fingerprints) == 1


def test_label_words_and_the_prompt_template_come_from_the_suite(tmp_path):
    from harness.models import load_tokenizer, resolve_model
    from harness.suite.spec import ModelSpec

    write_csv(tmp_path / "tickets.csv", tickets())
    dataset = tickets_dataset()
    dataset["task_options"] = {
        "labels": CLASSES,
        "label_words": {"bug": "defect"},
        "system": "Route it: {labels}.",
        "template": "Ticket: {text}\nTeam?",
    }
    spec = load_suite(write_suite_file(tmp_path, {"t": dataset})).datasets["t"]
    task = task_for(spec)
    tokenizer = load_tokenizer(resolve_model(ModelSpec(asset="tiny-random-llama")))
    example = task.to_example({"text": "app crashes", "label": "bug"}, tokenizer, 256)
    assert "Ticket: app crashes\nTeam?" in example["prompt"]
    assert "Route it: billing, login, shipping, defect, feature." in example["prompt"]
    assert example["completion"].strip() == "defect"


def test_sentiment_is_a_preset_with_its_old_prompt():
    """The prompt sentiment always built (system + "Movie review: ...\\nSentiment?"), so its runs
    mean what they meant."""
    from harness.backends.sft.tasks.prompting import format_prompt
    from harness.models import load_tokenizer, resolve_model
    from harness.suite.spec import DatasetSpec, ModelSpec

    tokenizer = load_tokenizer(resolve_model(ModelSpec(asset="tiny-random-llama")))
    spec = DatasetSpec(source="movie_reviews", task="sentiment")
    task = task_for(spec)
    assert task.labels == ("negative", "positive")
    old = format_prompt(
        tokenizer, "Answer with one word: positive or negative.", "Movie review: fine\nSentiment?"
    )
    assert task.prompt({"text": "fine", "label": "positive"}, tokenizer, 128) == old


# --------------------------------------------------------------------------- bad inputs


def _bad_missing_column(folder: Path) -> dict:
    write_csv(folder / "tickets.csv", [{"ticket": r["ticket"], "team": r["category"]}
                                       for r in tickets()])  # fmt: skip
    return {"t": tickets_dataset()}


def _bad_empty_file(folder: Path) -> dict:
    (folder / "tickets.csv").write_text("ticket,category\n")
    return {"t": tickets_dataset()}


def _bad_one_class(folder: Path) -> dict:
    write_csv(folder / "tickets.csv", tickets(40, ["billing"]))
    return {"t": tickets_dataset()}


def _bad_not_utf8(folder: Path) -> dict:
    rows = tickets()
    rows[3]["ticket"] = "facture réglée deux fois"
    write_csv(folder / "tickets.csv", rows, encoding="latin-1")
    return {"t": tickets_dataset()}


def _bad_split_too_small(folder: Path) -> dict:
    write_csv(folder / "train.csv", tickets(4))
    write_csv(folder / "test.csv", tickets(2, start=100))
    dataset = tickets_dataset()
    dataset["options"] = {"train": "train.csv", "test": "test.csv",
                          "columns": {"text": "ticket", "label": "category"}}  # fmt: skip
    dataset["splits"] = {"train": 30, "validation": 0, "test": 10}
    return {"t": dataset}


def _bad_duplicates_across_splits(folder: Path) -> dict:
    write_csv(folder / "train.csv", tickets(8))
    write_csv(folder / "test.csv", tickets(4, start=100) + tickets(8)[:1])
    dataset = tickets_dataset()
    dataset["options"] = {"train": "train.csv", "test": "test.csv",
                          "columns": {"text": "ticket", "label": "category"}}  # fmt: skip
    dataset["splits"] = {"train": 20, "validation": 0, "test": 10}
    return {"t": dataset}


BAD = {
    "missing column": (_bad_missing_column, r"tickets.csv has no column 'category' \(for label\); "
                       r"its columns are: ticket, team"),
    "empty file": (_bad_empty_file, r"tickets.csv \(options.path\) has no rows"),
    "one class": (_bad_one_class, r"column 'category' of .*tickets.csv holds one class \('billing'\)"),
    "not utf-8": (_bad_not_utf8, r"tickets.csv is not valid utf-8 \(byte 0xe9 on line 5\)"),
    "split too small": (_bad_split_too_small, r"splits.train asks for 30 examples but the train "
                        r"file has 20 distinct rows \(20 rows\): lower splits.train"),
    "duplicates across splits": (_bad_duplicates_across_splits,
                                 r"the train and test files share 1 'text' values"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_input_is_one_clear_error_and_nothing_runs(case, tmp_path, capsys):
    make, message = BAD[case]
    path = write_suite_file(tmp_path, make(tmp_path))
    results = tmp_path / "results"
    assert cli(["--results", str(results), "run", str(path)]) != 0
    out = capsys.readouterr()
    import re

    assert re.search(message, out.out + out.err), out.out + out.err
    assert not (results / "ftbench.duckdb").exists() or not _run_ids(results)


def test_the_split_size_and_leak_errors_name_what_there_is(tmp_path):
    """The two split errors above, read directly: what was asked, what the file has."""
    spec = load_suite(write_suite_file(tmp_path, _bad_split_too_small(tmp_path))).datasets["t"]
    with pytest.raises(
        DataUnavailableError, match="asks for 30 examples but the train file has 20"
    ):
        load_splits(spec)
    spec = load_suite(write_suite_file(tmp_path, _bad_duplicates_across_splits(tmp_path)))
    with pytest.raises(DataLeakError, match="share 1 'text' values, e.g. 'ticket 0 about billing"):
        load_splits(spec.datasets["t"])


def test_a_missing_file_names_the_path_and_the_suite_folder(tmp_path):
    with pytest.raises(SuiteError, match=r"datasets.t.options: file .*tickets.csv \(options.path"):
        load_suite(write_suite_file(tmp_path, {"t": tickets_dataset()}))


def _run_ids(results: Path) -> set[str]:
    with store.connect(results / "ftbench.duckdb", read_only=True) as con:
        return {r[0] for r in con.execute("SELECT run_id FROM runs").fetchall()}


# --------------------------------------------------------------------------- end to end


def test_own_files_run_end_to_end_into_duckdb_with_per_class_f1(tmp_path, capsys):
    """A 5-class CSV split for you, user-given train/test files whose test split has a class
    never seen in training (reported, not a crash) and an instruction JSONL, on the tiny model."""
    write_csv(tmp_path / "tickets.csv", tickets())
    write_csv(tmp_path / "train.csv", tickets(6, CLASSES[:4]))
    write_csv(tmp_path / "test.csv", tickets(2, CLASSES, start=100))
    pairs = [{"q": f"What is {a} plus 3?", "a": str(a + 3)} for a in range(20)]
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    given = tickets_dataset()
    given["options"] = {"train": "train.csv", "test": "test.csv",
                        "columns": {"text": "ticket", "label": "category"}}  # fmt: skip
    given["splits"] = {"train": 24, "validation": 0, "test": 10}
    datasets = {
        "tickets": tickets_dataset(),
        "given": given,
        "qa": {
            "source": "files",
            "options": {"path": "qa.jsonl", "columns": {"prompt": "q", "response": "a"}},
            "task": "instruction",
            "task_options": {"max_new_tokens": 3},
            "splits": {"train": 10, "validation": 0, "test": 5},
        },
    }
    path = write_suite_file(tmp_path, datasets)
    results = tmp_path / "results"
    assert cli(["--results", str(results), "run", str(path)]) == 0
    with store.connect(results / "ftbench.duckdb", read_only=True) as con:
        rows = con.execute(
            "SELECT r.dataset_key, r.status, m.name, m.value FROM runs r "
            "JOIN metrics m USING (run_id) WHERE m.split = 'test'"
        ).fetchall()
        checks = dict(
            con.execute(
                "SELECT r.dataset_key, d.checks FROM runs r JOIN data_checks d USING (run_id)"
            ).fetchall()
        )
    metrics = {(d, name): value for d, status, name, value in rows if status == "ok"}
    for label in CLASSES:
        assert 0.0 <= metrics[("tickets", f"f1/{label}")] <= 1.0
    assert metrics[("given", "f1/feature")] is not None  # the unseen class is scored
    assert json.loads(checks["given"])["test_labels_not_in_train"] == ["feature"]
    for name in ("eval_loss", "perplexity", "exact_match", "token_f1"):
        assert ("qa", name) in metrics

    capsys.readouterr()
    assert cli(["--results", str(results), "show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "F1 per class" in shown
    assert all(label in shown for label in CLASSES)
    assert "test classes never in train: 'feature'" in shown
    assert "exact_match" in shown and "token_f1" in shown


def test_the_shipped_example_suite_reads_its_files():
    suite = load_suite(ROOT / "suites" / "examples" / "own_data_tiny.yaml")
    for dataset in suite.datasets.values():
        assert load_splits(dataset).split_sizes["train"] > 0


def test_generated_answer_scores():
    from harness.backends.sft.tasks.instruction import exact_match, token_f1

    assert exact_match("The Paris.", "paris") == 1.0
    assert exact_match("Paris, France", "Paris") == 0.0
    assert token_f1("Paris France", "Paris") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("Rome", "Paris") == 0.0


def test_retrieval_pairs_from_a_file_keep_answers_in_one_split():
    """query -> answer pairs for the embedding backend: the `positive` group field keeps a shared
    answer out of two splits, as for the shipped retrieval sources."""
    suite = load_suite(ROOT / "suites" / "examples" / "own_retrieval.yaml")
    splits = load_splits(suite.datasets["faq"])
    assert splits.split_sizes == {"train": 36, "validation": 4, "test": 20}
    train_answers = {r["positive"] for r in splits.train}
    assert not train_answers & {r["positive"] for r in splits.test}


def test_bad_task_options_name_the_field(tmp_path):
    write_csv(tmp_path / "tickets.csv", tickets())
    dataset = {**tickets_dataset(), "task_options": {"template": "no placeholder"}}
    with pytest.raises(SuiteError, match=r"task_options.template must contain \{text\}"):
        load_suite(write_suite_file(tmp_path, {"t": dataset}))
    dataset = {
        **tickets_dataset(),
        "task_options": {"labels": ["a", "b"], "label_words": {"c": "x"}},
    }
    with pytest.raises(SuiteError, match=r"label_words names \['c'\], not in task_options.labels"):
        load_suite(write_suite_file(tmp_path, {"t": dataset}))
    path = write_suite_file(tmp_path, {"t": {**tickets_dataset(), "task": "qa",
                                             "task_options": {"x": 1}}})  # fmt: skip
    with pytest.raises(SuiteError, match="task 'qa' takes no task_options"):
        load_suite(path)


# --------------------------------------------------------------------------- preference pairs

PREFERENCE_METHODS = ("start", "dpo", "kto", "orpo", "simpo")
STAGE = {"max_steps": 2, "batch_size": 2}
POLICY_PARAMS = {"max_new_tokens": 4, "reward": STAGE, "judge": {**STAGE, "seed_offset": 1000}}


def preference_rows(prompts: int = 12) -> list[dict]:
    """Two pairs per prompt, in the user's column names (question, good, bad)."""
    return [
        {"question": f"Customer: order {i} is late.\nAgent:",
         "good": f" Sorry about order {i}, I will fix it now ({k}).", "bad": f" Not my problem ({k})."}
        for i in range(prompts)
        for k in range(2)
    ]  # fmt: skip


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def preference_dataset(**options) -> dict:
    return {
        "source": "files",
        "options": {"path": "prefs.jsonl",
                    "columns": {"prompt": "question", "chosen": "good", "rejected": "bad"},
                    **options},
        "task": "preference_pairs",
        # train: 6 prompts dealt into policy / reward / judge pairs (2 prompts, 4 pairs each)
        "splits": {"train": 12, "validation": 0, "test": 6},
    }  # fmt: skip


def preference_suite(folder: Path, methods: tuple[str, ...] = PREFERENCE_METHODS) -> Path:
    return write_suite_file(
        folder, {"prefs": preference_dataset()}, name="prefs", methods=methods,
        params=POLICY_PARAMS,
    )  # fmt: skip


def test_every_alignment_task_names_a_registered_pair_source():
    from harness.backends.alignment.methods.preference_data import PAIR_SOURCES
    from harness.suite.tasks import TASKS

    tasks = [TASKS.get(n) for n in TASKS.names() if TASKS.get(n).backend == "alignment"]
    assert {t.pair_source for t in tasks} == {"start_samples", "data"}
    assert all(t.pair_source in PAIR_SOURCES for t in tasks)


def test_preference_rows_keep_a_prompts_pairs_in_one_partition(tmp_path):
    """The pairs of one prompt never straddle splits nor the policy/reward/judge partitions, and
    the reward models learn from prompt + response as the policy continues the prompt."""
    from harness.backends.alignment.task import PARTS, partitions

    write_jsonl(tmp_path / "prefs.jsonl", preference_rows())
    dataset = load_suite(preference_suite(tmp_path)).datasets["prefs"]
    parts = partitions(dataset, trial=False)
    assert parts.split_sizes == {"train": 12, "validation": 0, "test": 6,
                                 "policy": 4, "reward": 4, "judge": 4}  # fmt: skip
    owners = {}
    for name in (*PARTS, "held_out"):
        for record in getattr(parts, name):
            assert owners.setdefault(record["prompt"], name) == name
    task = task_for(dataset)
    chosen, rejected = task.reward_pairs(parts.reward[:1])[0]
    first = parts.reward[0]
    assert chosen == first["prompt"] + first["chosen"]
    assert rejected == first["prompt"] + first["rejected"]


def test_too_few_prompts_for_the_three_partitions_name_the_fix(tmp_path):
    from harness.backends.alignment.task import partitions

    write_jsonl(tmp_path / "prefs.jsonl", preference_rows())
    dataset = load_suite(preference_suite(tmp_path)).datasets["prefs"]
    dataset = dataset.model_copy(update={"splits": {"train": 4, "validation": 0, "test": 6}})
    with pytest.raises(ValueError, match=r"splits.train holds 2 distinct 'prompt' values, too "
                       r"few .* \(judge empty\): raise splits.train"):  # fmt: skip
        partitions(dataset, trial=False)


def _bad_pref_missing_column(folder: Path) -> None:
    write_jsonl(folder / "prefs.jsonl", [{**{k: v for k, v in r.items() if k != "bad"},
                                          "worse": r["bad"]} for r in preference_rows()])  # fmt: skip


def _bad_pref_empty_file(folder: Path) -> None:
    (folder / "prefs.jsonl").write_text("\n")


def _bad_pref_same_text(folder: Path) -> None:
    rows = preference_rows()
    rows[2]["bad"] = rows[2]["good"]
    write_jsonl(folder / "prefs.jsonl", rows)


PREFERENCE_BAD = {
    "missing column": (_bad_pref_missing_column, r"prefs.jsonl has no column 'bad' \(for "
                       r"rejected\); its columns are: question, good, worse"),
    "empty file": (_bad_pref_empty_file, r"prefs.jsonl \(options.path\) has no rows"),
    "chosen is rejected": (_bad_pref_same_text, r"column 'good' of .*prefs.jsonl row 3 is the same "
                           r"text as column 'bad' of .*prefs.jsonl \(' Sorry about order 1"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(PREFERENCE_BAD))
def test_each_bad_preference_file_is_one_clear_error_and_nothing_runs(case, tmp_path, capsys):
    make, message = PREFERENCE_BAD[case]
    make(tmp_path)
    results = tmp_path / "results"
    assert cli(["--results", str(results), "run", str(preference_suite(tmp_path, ("dpo",)))]) != 0
    out = capsys.readouterr()
    import re

    assert re.search(message, out.out + out.err), out.out + out.err
    assert not (results / "ftbench.duckdb").exists() or not _run_ids(results)


def test_preference_pairs_from_a_file_run_end_to_end_into_duckdb(tmp_path, capsys):
    """DPO, KTO, ORPO and SimPO train on the file's pairs (the policy partition's rows, as given)
    and are scored like every policy: a proxy and a separate judge trained on the file's other
    pairs, judge score, win rate and KL to the start on held-out prompts; the frontier shows."""
    from harness.backends.alignment.task import partitions
    from harness.suite.spec import config_hash

    write_jsonl(tmp_path / "prefs.jsonl", preference_rows())
    path = preference_suite(tmp_path)
    results = tmp_path / "results"
    assert cli(["--results", str(results), "run", str(path)]) == 0
    with store.connect(results / "ftbench.duckdb", read_only=True) as con:
        runs = {
            key: (status, json.loads(notes))
            for key, status, notes in con.execute(
                "SELECT method_key, status, notes FROM runs"
            ).fetchall()
        }
        metrics = {
            (key, name): value
            for key, name, value in con.execute(
                "SELECT r.method_key, m.name, m.value FROM runs r JOIN metrics m USING (run_id) "
                "WHERE m.split = 'test'"
            ).fetchall()
        }
    assert {k: status for k, (status, _) in runs.items()} == dict.fromkeys(
        ("reward_model", "judge", *PREFERENCE_METHODS), "ok"
    )
    for stage in ("reward_model", "judge"):
        assert 0.0 <= metrics[(stage, "reward_accuracy")] <= 1.0
    policy = partitions(load_suite(path).datasets["prefs"], trial=False).policy
    given = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in policy]
    for key in PREFERENCE_METHODS:
        for name in ("judge_score", "win_rate", "kl", "proxy_reward"):
            assert metrics[(key, name)] is not None, (key, name)
        if key == "start":
            continue
        notes = runs[key][1]
        assert notes["pair_source"].startswith("the dataset's (prompt, chosen, rejected) rows")
        assert (notes["pairs"], notes["prompts"]) == (4, 2)
        assert notes["pairs_sha256"] == config_hash(given)  # the file's rows, as given
        assert 0.0 <= notes["proxy_agreement"] <= 1.0
        assert metrics[(key, "kl")] != 0.0  # unlike `start`, the policy moved

    capsys.readouterr()
    assert cli(["--results", str(results), "show", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "Alignment frontier: judge_score vs KL" in shown
    assert all(key in shown for key in PREFERENCE_METHODS)


def test_the_shipped_preference_examples_read_their_file():
    from harness.backends.alignment.task import partitions

    for name in ("own_preferences", "own_preferences_tiny"):
        suite = load_suite(ROOT / "suites" / "examples" / f"{name}.yaml")
        parts = partitions(suite.datasets["support"], trial=False)
        assert parts.split_sizes == {"train": 56, "validation": 8, "test": 16,
                                     "policy": 20, "reward": 18, "judge": 18}  # fmt: skip
