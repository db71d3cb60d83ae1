"""The hub path of `make bench suite=peft_t4`, offline: hub models pinned by revision and hub
datasets with column mapping, loaded from a local Hugging Face cache (tests/hub_cache.py) with
HF_HUB_OFFLINE=1, through the same plan, run subprocesses, provenance and lock as on a GPU machine.

The models are tiny random stand-ins saved under the real hub ids of suites/peft_t4.yaml, so the
budget verdicts come from the architecture catalogue (the real shapes) while the runs train the
stand-ins for two steps. What a test here cannot check is listed in NOT_COVERED, and
test_every_hub_input_of_the_t4_suites_is_covered_or_listed keeps that list honest.
"""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import duckdb
import pytest
import yaml
from hub_cache import DatasetShape, HubCache, add_dataset, add_snapshot, build_tiny_model, point_ref
from hub_cache import commit_hash as make_commit

from harness.backends.data import DataUnavailableError, HubDataset, HubOptions
from harness.cli import main as cli
from harness.models import ModelUnavailableError, resolve_model
from harness.plan.lock import LockError, write_lock
from harness.plan.plan import make_plan
from harness.suite.spec import ModelSpec

ROOT = Path(__file__).resolve().parent.parent
PEFT_T4 = ROOT / "suites" / "peft_t4.yaml"

# Base models ship no chat template and no pad token (the stand-in copies that).
BASE_MODELS = {"meta-llama/Llama-2-7b-hf"}

# One cell per method of peft_t4 (two for `full`), spread so every model and dataset is used;
# full fine-tuning of Llama-2-7B does not fit a T4 even after the budget's adjustments.
CELLS = [
    ("zero_shot", "smollm2-135m", "imdb"),
    ("full", "smollm2-135m", "sst2"),
    ("freeze", "qwen2.5-0.5b", "dolly"),
    ("lora", "qwen2.5-0.5b", "imdb"),
    ("dora", "smollm2-360m", "sst2"),
    ("ia3", "tinyllama-1.1b", "dolly"),
    ("prompt", "smollm2-360m", "imdb"),
    ("prefix", "tinyllama-1.1b", "sst2"),
    ("qlora", "llama-2-7b", "dolly"),
    ("full", "llama-2-7b", "imdb"),
]
OVER_BUDGET = {("full", "llama-2-7b", "imdb")}

# What these offline tests cannot check, per shipped T4 suite; every hub model and dataset of a
# suite whose runs are not covered is named (test_every_hub_input_of_the_t4_suites_is_...).
NOT_COVERED = {
    "peft_t4": "real weights, tokenizers and chat templates; fp16 on a GPU; the download itself "
    "and gated access with a real token (the messages are tested against a stand-in hub)",
    "rlhf_t4": "the alignment backend (PPO, DPO, KTO, reward model, judge) on hub inputs: "
    "HuggingFaceTB/SmolLM2-360M-Instruct as policy, Qwen/Qwen2.5-0.5B-Instruct as judge, "
    "lvwerra/distilbert-imdb as the independent judge (its code path is tested on a local "
    "classifier: tests/test_judges.py), stanfordnlp/imdb openings",
    "embed_t4": "the embedding backend (sentence-transformers) on hub inputs: "
    "BAAI/bge-base-en-v1.5 on philschmid/finanical-rag-embedding-dataset",
}


def _dataset_shapes() -> dict[str, DatasetShape]:
    """IMDB, SST-2 and Dolly as the hub has them (configs, splits, column names and types), with
    rows from the offline corpora; the unlabelled splits carry label -1 like the real ones."""
    from harness.backends.data import (
        ChatterbotOptions,
        ChatterbotQA,
        MovieReviewOptions,
        MovieReviews,
    )

    def reviews(subset: str) -> list[dict]:
        rows = MovieReviews().load(MovieReviewOptions(subset=subset, max_words=40))
        random.Random(0).shuffle(rows)  # the file lists one label first
        return [{"text": r["text"], "label": int(r["label"] == "positive")} for r in rows[:90]]

    imdb, rt = reviews("imdb"), reviews("rotten_tomatoes")
    sst2 = [{"idx": i, "sentence": r["text"], "label": r["label"]} for i, r in enumerate(rt)]
    qa = ChatterbotQA().load(ChatterbotOptions(categories=["computers", "science", "history"]))
    dolly = [
        {
            "instruction": r["question"],
            "context": "",
            "response": r["answer"],
            "category": "open_qa",
        }
        for r in qa[:40]
    ]
    return {
        "stanfordnlp/imdb": DatasetShape(
            "plain_text",
            {"text": "string", "label": ["neg", "pos"]},
            {
                "train": imdb[:40],
                "test": imdb[40:80],
                "unsupervised": [{**r, "label": -1} for r in imdb[80:]],
            },
        ),
        "stanfordnlp/sst2": DatasetShape(
            "default",
            {"idx": "int32", "sentence": "string", "label": ["negative", "positive"]},
            {
                "train": sst2[:40],
                "validation": sst2[40:70],
                "test": [{**r, "label": -1} for r in sst2[70:]],
            },
        ),
        "databricks/databricks-dolly-15k": DatasetShape(
            "default",
            {
                "instruction": "string",
                "context": "string",
                "response": "string",
                "category": "string",
            },
            {"train": dolly},
        ),
    }


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> HubCache:
    """The cache: every model and dataset of peft_t4 under its hub id, refs/main -> a commit."""
    from harness.models import MODEL_ASSETS
    from harness.models.architectures import architecture_name, catalogue

    cache = HubCache(tmp_path_factory.mktemp("hf"))
    tokenizer = Path(MODEL_ASSETS.get("tiny-random-llama").resolve().location)
    suite = yaml.safe_load(PEFT_T4.read_text())
    for seed, model in enumerate(suite["models"].values()):
        model_type = catalogue()[architecture_name(ModelSpec(**model))]["config"]["model_type"]
        out = cache.root / "build" / model["hub"]
        build_tiny_model(model_type, tokenizer, out, seed)
        if model["hub"] in BASE_MODELS:
            _as_base_model(out)
        commit = cache.commits[model["hub"]] = make_commit(model["hub"], "1")
        add_snapshot(cache.hub, "model", model["hub"], out, commit)
    for path, shape in _dataset_shapes().items():
        commit = cache.commits[path] = make_commit(path, "1")
        add_dataset(cache.hub, cache.datasets, path, shape, commit)
    return cache


def _as_base_model(folder: Path) -> None:
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("pad_token", None)
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


@pytest.fixture
def offline_hub(hub, monkeypatch) -> HubCache:
    hub.activate(monkeypatch)
    yield hub
    from harness.models.offline import hub_reachable

    hub_reachable.cache_clear()


def t4_suite_dict() -> dict:
    """suites/peft_t4.yaml as shipped (methods, models, dataset options and columns, budget and
    adjust, fp16), with fewer steps and examples, one seed and only the CELLS."""
    suite = yaml.safe_load(PEFT_T4.read_text())
    suite["name"] = "peft_t4_offline"
    suite["seeds"] = [0]
    suite.pop("tune")
    suite["training"].update(max_steps=2, batch_size=2, max_length=96, eval_batch_size=8)
    suite["training"]["timeout_s"] = 300
    for dataset in suite["datasets"].values():
        dataset["splits"] = {"train": 8, "validation": 4, "test": 8}
    grid = suite["grid"]
    grid["exclude"] = [
        {"method": method, "model": model, "dataset": dataset}
        for method in grid["methods"]
        for model in grid["models"]
        for dataset in grid["datasets"]
        if (method, model, dataset) not in CELLS
    ]
    return suite


@pytest.fixture(scope="module")
def t4_run(hub, tmp_path_factory):
    """The suite run once through `ftbench run`, offline, from the fixture cache."""
    tmp = tmp_path_factory.mktemp("t4")
    path = tmp / "peft_t4_offline.yaml"
    path.write_text(yaml.safe_dump(t4_suite_dict(), sort_keys=False))
    with pytest.MonkeyPatch.context() as monkeypatch:
        hub.activate(monkeypatch)
        plan = make_plan(path)
        assert cli(["--results", str(tmp / "results"), "run", str(path)]) == 0
    from harness.models.offline import hub_reachable

    hub_reachable.cache_clear()
    return path, plan, tmp / "results"


def _cell(spec) -> tuple[str, str, str]:
    return spec.method_key, spec.model_key, spec.dataset_key


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_the_plan_sees_the_cached_hub_inputs_and_takes_t4_verdicts_from_the_catalogue(t4_run):
    _, plan, _ = t4_run
    assert sorted(_cell(r.spec) for r in plan.runs) == sorted(CELLS)
    assert [r.unavailable for r in plan.runs] == [None] * len(CELLS)
    over = {_cell(r.spec) for r in plan.runs if r.over_budget}
    assert over == OVER_BUDGET
    for run in plan.runs:  # the real shapes (7B: billions of parameters), not the stand-ins
        assert run.fitted.estimate.architecture.startswith("catalogue:")
    by_cell = {_cell(r.spec): r for r in plan.runs}
    llama_qlora = by_cell[("qlora", "llama-2-7b", "dolly")].fitted.verdict.predicted_bytes
    assert llama_qlora > 3e9  # a 7B model in 4 bits, far above the stand-in's few kB


def test_every_run_is_ok_or_over_budget_as_planned(t4_run):
    _, plan, results = t4_run
    rows = _rows(
        results / "ftbench.duckdb",
        "SELECT method_key, model_key, dataset_key, status, reason FROM runs",
    )
    statuses = {(m, mo, d): (s, why) for m, mo, d, s, why in rows}
    assert set(statuses) == set(CELLS)
    for cell, (status, reason) in statuses.items():
        assert status == ("over_budget" if cell in OVER_BUDGET else "ok"), (cell, reason)
    metrics = _rows(
        results / "ftbench.duckdb",
        "SELECT r.dataset_key, m.name FROM metrics m JOIN runs r USING (run_id) "
        "WHERE m.split = 'test'",
    )
    assert {"accuracy", "eval_loss"} <= {n for d, n in metrics if d in ("imdb", "sst2")}
    assert "perplexity" in {n for d, n in metrics if d == "dolly"}
    # Llama-2-7b-hf's tokenizer has no pad token (its stand-in neither): EOS stands in for it.
    pad_is_eos = _rows(
        results / "ftbench.duckdb",
        "SELECT r.model_key, d.pad_is_eos FROM data_checks d JOIN runs r USING (run_id)",
    )
    assert {key for key, is_eos in pad_is_eos if is_eos} == {"llama-2-7b"}


def test_provenance_records_the_hub_id_and_the_snapshot_commit(t4_run, hub):
    path, _, results = t4_run
    suite = yaml.safe_load(path.read_text())
    rows = _rows(
        results / "ftbench.duckdb",
        "SELECT r.run_id, r.model_key, p.model_id, p.model_revision, p.model_source, "
        "p.dataset_fingerprint, p.model_revision_requested "
        "FROM provenance p JOIN runs r USING (run_id)",
    )
    assert len(rows) == len(CELLS) - len(OVER_BUDGET)
    for run_id, key, model_id, revision, source, fingerprint, requested in rows:
        hub_id = suite["models"][key]["hub"]
        assert (model_id, revision, source) == (hub_id, hub.commits[hub_id], "hub")
        assert requested == "main"
        assert fingerprint
        meta = json.loads((results / "runs" / run_id / "result.json").read_text())["meta_info"]
        assert meta["model_revision_requested"] == "main"


def test_lock_pins_the_snapshot_commit_and_refuses_a_changed_snapshot(t4_run, hub, monkeypatch):
    path, _, results = t4_run
    hub.activate(monkeypatch)
    lock_path = write_lock(make_plan(path), path.with_suffix(".lock.json"))
    inputs = json.loads(lock_path.read_text())["inputs"]
    smollm = "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert inputs["models"]["smollm2-135m"]["hub_commit"] == hub.commits[smollm]
    assert inputs["models"]["smollm2-135m"]["model_revision"] == "main"
    assert all(d["fingerprint"] for d in inputs["datasets"].values())
    # Unchanged inputs: the locked runs are the finished ones, nothing runs again.
    assert cli(["--results", str(results), "run", str(lock_path)]) == 0

    # A new download of `main` moves refs/main to another snapshot: the lock refuses, naming it.
    snapshot = hub.hub / "models--HuggingFaceTB--SmolLM2-135M-Instruct" / "snapshots"
    newer = make_commit(smollm, "2")
    add_snapshot(hub.hub, "model", smollm, snapshot / hub.commits[smollm], newer)
    try:
        with pytest.raises(LockError) as err:
            make_plan(lock_path)
        message = str(err.value)
        assert f"models.smollm2-135m.hub_commit: locked {hub.commits[smollm]!r}" in message
        assert newer in message and "re-create the lock" in message
        assert "qwen" not in message  # only what changed is named
    finally:
        point_ref(hub.hub, "model", smollm, hub.commits[smollm])


def test_a_revision_can_be_a_commit_and_a_missing_one_lists_what_is_cached(offline_hub):
    repo = "Qwen/Qwen2.5-0.5B-Instruct"
    commit = offline_hub.commits[repo]
    assert resolve_model(ModelSpec(hub=repo, revision=commit)).revision == commit
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model(ModelSpec(hub=repo, revision="v2.0"))
    message = str(err.value)
    assert "no revision 'v2.0'" in message and f"main -> {commit[:12]}" in message
    assert f"hf download {repo} --revision v2.0" in message


def test_an_uncatalogued_hub_model_takes_its_shape_from_the_cached_config(offline_hub):
    from harness.models.architectures import architecture_config

    repo = "someone/tiny-qwen"
    snapshot = offline_hub.hub / "models--Qwen--Qwen2.5-0.5B-Instruct" / "snapshots"
    add_snapshot(
        offline_hub.hub,
        "model",
        repo,
        snapshot / offline_hub.commits["Qwen/Qwen2.5-0.5B-Instruct"],
        make_commit(repo),
    )
    source, config = architecture_config(ModelSpec(hub=repo))
    assert source.startswith("config.json:") and config.model_type == "qwen2"
    assert config.hidden_size == 64


def _hub_options(**options) -> HubOptions:
    imdb = {"path": "stanfordnlp/imdb", "columns": {"text": "text", "label": "label"}}
    return HubOptions(**{**imdb, "label_names": ["negative", "positive"], **options})


@pytest.mark.parametrize(
    "options, expected",
    [
        (  # a column that does not exist: name the ones that do
            {"columns": {"text": "sentence", "label": "label"}},
            "no column 'sentence' (for text); its columns are: text, label",
        ),
        (  # a split that does not exist: name the ones that do
            {"split": "validation"},
            "no split 'validation' (its splits: train, test, unsupervised)",
        ),
        (  # class ids without words for them
            {"label_names": None},
            "holds class ids (neg, pos on the hub): set options.label_names",
        ),
        (  # a revision the cache does not hold (offline, datasets would load the cached one)
            {"revision": "v2.0"},
            "revision 'v2.0' is not the copy in the local datasets cache",
        ),
        (  # a dataset that is not cached at all
            {"path": "stanfordnlp/imdb-xl"},
            "is not in the local datasets cache",
        ),
    ],
)
def test_hub_dataset_errors_say_what_exists_and_what_to_set(offline_hub, options, expected):
    source = HubDataset()
    reason = source.unavailable_reason(_hub_options(**options))
    assert reason is not None and expected in reason
    with pytest.raises(DataUnavailableError) as err:
        source.load(_hub_options(**options))
    assert expected in str(err.value)


def test_an_unlabelled_split_is_refused_not_mapped_to_the_last_label(offline_hub):
    # SST-2's test split has label -1; label_names[-1] would silently make it "positive".
    options = _hub_options(
        path="stanfordnlp/sst2", split="test", columns={"text": "sentence", "label": "label"}
    )
    assert HubDataset().unavailable_reason(options) is None  # the metadata is fine
    with pytest.raises(DataUnavailableError, match="has label -1.*unlabelled row"):
        HubDataset().load(options)


def test_a_pinned_dataset_commit_loads_and_maps_columns(offline_hub):
    commit = offline_hub.commits["stanfordnlp/sst2"]
    options = _hub_options(
        path="stanfordnlp/sst2", revision=commit, columns={"text": "sentence", "label": "label"}
    )
    records = HubDataset().load(options)
    assert len(records) == 40 and set(records[0]) == {"text", "label"}
    assert {r["label"] for r in records} == {"negative", "positive"}


SERVED_COMMIT = make_commit("org/served", "main")
SERVED_CONFIG = json.dumps({"model_type": "llama"}).encode()


class _StandInHub(BaseHTTPRequestHandler):
    """Answers the way huggingface.co does: a served config.json (with its commit), a repo
    without one (the commit then comes from the model's info), a gated repo, a missing revision,
    a missing repo."""

    def _answer(self) -> None:
        if "/org/served/resolve/main/config.json" in self.path:
            body = SERVED_CONFIG if self.command == "GET" else b""
            self._send(200, body, {"X-Repo-Commit": SERVED_COMMIT, "ETag": '"served-etag"'})
        elif self.path.startswith("/api/models/org/no-config"):
            self._send(200, json.dumps({"id": "org/no-config", "sha": SERVED_COMMIT}).encode())
        elif "/org/no-config/" in self.path:
            self._send(404, b"", {"X-Error-Code": "EntryNotFound"})
        elif "/gated/" in self.path:  # no token sent
            self._send(401, b"", {"X-Error-Code": "GatedRepo"})
        elif "/gated-asked/" in self.path:  # a token without access granted (yet)
            self._send(403, b"", {"X-Error-Code": "GatedRepo"})
        elif "/no-such-revision/" in self.path:
            self._send(404, b"", {"X-Error-Code": "RevisionNotFound"})
        else:
            self._send(404, b"", {"X-Error-Code": "RepoNotFound"})

    def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        length = len(SERVED_CONFIG) if self.command == "HEAD" and code == 200 else len(body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stand_in_hub(monkeypatch, tmp_path):
    """huggingface_hub and datasets pointed at a local server, as if the hub were reachable."""
    import datasets.config
    import huggingface_hub.constants

    import harness.models.hub
    import harness.models.offline

    server = HTTPServer(("127.0.0.1", 0), _StandInHub)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    template = endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    for module, name, value in [
        (huggingface_hub.constants, "ENDPOINT", endpoint),
        (huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template),
        (huggingface_hub.constants, "HF_HUB_OFFLINE", False),
        (huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub")),
        (datasets.config, "HF_ENDPOINT", endpoint),
        (datasets.config, "HF_HUB_OFFLINE", False),
        (datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets"),
        (harness.models.offline, "hub_reachable", lambda: True),
        (harness.models.hub, "hub_reachable", lambda: True),
    ]:
        monkeypatch.setattr(module, name, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    yield
    server.shutdown()


@pytest.mark.parametrize("repo", ["org/served", "org/no-config"])
def test_online_a_revision_resolves_to_the_commit_the_hub_names(stand_in_hub, repo):
    resolved = resolve_model(ModelSpec(hub=repo, revision="main"))
    assert resolved.revision == resolved.provenance["model_revision"] == SERVED_COMMIT
    assert resolved.provenance["model_revision_requested"] == "main"


ANSWERS = [  # repo, revision, what the message must say
    ("org/gated", "main", "is gated on the Hugging Face Hub"),
    ("org/no-such-revision", "v9", "has no revision 'v9' on the hub"),
    ("org/missing", "main", "does not exist on the hub, or is private"),
]


@pytest.mark.parametrize(
    "repo, revision, expected",
    [
        *ANSWERS,
        ("org/gated", "main", "no token is set here: accept its licence"),
        ("org/gated-asked", "main", "the token here has not been granted access yet"),
    ],
)
def test_hub_model_errors_say_what_to_do(stand_in_hub, repo, revision, expected):
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model(ModelSpec(hub=repo, revision=revision))
    assert expected in str(err.value)
    assert f"https://huggingface.co/{repo}" in str(err.value)


@pytest.mark.parametrize(
    "repo, revision, expected",
    [
        *ANSWERS,
        ("org/gated", "main", "accept its terms on https://huggingface.co/datasets/"),
        ("org/gated-asked", "main", "the token here has not been granted access yet"),
    ],
)
def test_hub_dataset_errors_online_say_what_to_do(stand_in_hub, repo, revision, expected):
    reason = HubDataset().unavailable_reason(_hub_options(path=repo, revision=revision))
    assert reason is not None and expected in reason
    assert f"https://huggingface.co/datasets/{repo}" in reason


def _hub_inputs(node, found: set[str] | None = None) -> set[str]:
    """Every hub model id and hub dataset path in a suite, wherever it is (a judge's model in
    grid overrides too)."""
    found = set() if found is None else found
    if isinstance(node, dict):
        if "hub" in node:
            found.add(node["hub"])
        if node.get("source") == "hub":
            found.add(node["options"]["path"])
        for value in node.values():
            _hub_inputs(value, found)
    elif isinstance(node, list):
        for value in node:
            _hub_inputs(value, found)
    return found


def test_every_hub_input_of_the_t4_suites_is_covered_or_listed(hub):
    """peft_t4's hub models and datasets are all in the fixture cache; every other T4 suite names
    each of its hub inputs in NOT_COVERED, so a new one has to be decided on."""
    suites = {
        path.stem: yaml.safe_load(path.read_text()) for path in (ROOT / "suites").glob("*_t4.yaml")
    }
    assert set(NOT_COVERED) == set(suites)
    assert _hub_inputs(suites["peft_t4"]) <= set(hub.commits)
    for name, suite in suites.items():
        if name != "peft_t4":
            assert {i for i in _hub_inputs(suite) if i not in NOT_COVERED[name]} == set(), name


def test_prompt_text_init_loads_its_tokenizer_at_the_pinned_revision():
    """PEFT loads the init text's tokenizer itself: it gets the model's pinned revision."""
    from harness.backends.sft.methods import METHODS, MethodContext
    from harness.models import ResolvedModel

    class NoWeights(MethodContext):
        def load_model(self, **kwargs):
            return None

    method = METHODS.get("prompt")
    hub = method.setup(
        NoWeights(ResolvedModel("org/model", "0123abcd"), None, "cpu"), method.Params()
    )
    assert hub.peft_config.tokenizer_kwargs == {"revision": "0123abcd"}
    local = method.setup(NoWeights(ResolvedModel("/models/m", None), None, "cpu"), method.Params())
    assert local.peft_config.tokenizer_kwargs is None
