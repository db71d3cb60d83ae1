"""Preference alignment: stages as runs, reuse, a separate judge, held-out scoring, failures."""

from __future__ import annotations

import json
import math

import pytest
from helpers import suite_dict

from harness import store
from harness.backends.alignment.task import partitions
from harness.plan.plan import make_plan
from harness.runs.runner import run_plan
from harness.store.result import RunResult

STAGE = {"max_steps": 2, "batch_size": 2}
# The judge on another backbone (its own tokenizer): it scores decoded text.
JUDGE = {**STAGE, "seed_offset": 1000, "model": {"asset": "all-minilm-l6-v2"}}


def tiny_alignment_suite(methods: list[str], **extra) -> dict:
    """helpers.suite_dict with the alignment task, alignment methods and tiny stages."""
    rt = suite_dict()["datasets"]["rt"]
    rt = {
        **rt,
        "task": "positive_continuation",
        "splits": {"train": 24, "validation": 4, "test": 6},
    }
    shared = {"max_new_tokens": 4, "reward": STAGE, "judge": JUDGE}
    return suite_dict(
        name="rlhf_tiny",
        datasets={"rt": rt},
        methods={m: {"params": {"ppo_epochs": 1}} if "ppo" in m else {} for m in methods},
        grid={
            "methods": methods,
            "models": ["tiny"],
            "datasets": ["rt"],
            "overrides": [{"when": {"dataset": "rt"}, "params": shared}],
        },
        **extra,
    )


def _by_key(report) -> dict[str, RunResult]:
    return {r.spec["method_key"]: r for r in report.executed + report.skipped}


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    """One real run of reward model, judge, start, ppo, a failing ppo, dpo, kto, orpo and simpo
    (tiny model)."""
    import yaml

    tmp = tmp_path_factory.mktemp("align")
    path = tmp / "suite.yaml"
    methods = ["start", "ppo", "ppo_explode", "dpo", "kto", "orpo", "simpo"]
    path.write_text(yaml.safe_dump(tiny_alignment_suite(methods)))
    plan = make_plan(path)
    report = run_plan(plan, results_dir=tmp / "results", db_path=tmp / "db.duckdb")
    return plan, plan.specs, path, tmp, report


def test_stages_run_first_once_and_policies_reference_them(aligned):
    _, specs, _, _, report = aligned
    keys = [s.method_key for s in specs]
    assert keys[:2] == ["reward_model", "judge"]  # shared stages, once, before the cells
    assert keys.count("reward_model") == 1 and keys.count("judge") == 1
    runs = _by_key(report)
    links = {s.method_key: s.upstream for s in specs}
    for key in ("start", "ppo", "dpo", "kto", "orpo", "simpo"):
        info = runs[key].train_info
        assert info.status == "ok", info.reason
        assert links[key] == {"reward": runs["reward_model"].run_id,
                              "judge": runs["judge"].run_id}  # fmt: skip
        assert info.notes["upstream"] == links[key]
        metrics = info.metrics["test"]
        assert {"judge_score", "win_rate", "kl", "proxy_judge_gap", "gen_length"} <= set(metrics)
        assert 0.0 <= metrics["win_rate"] <= 1.0
        # the independent judge (VADER by default) scores every policy beside the trained one
        assert -1.0 <= metrics["indep_judge_score"] <= 1.0
        assert 0.0 <= metrics["indep_win_rate"] <= 1.0
    start = runs["start"].train_info.metrics["test"]
    assert start["win_rate"] == 0.5 and start["kl"] == 0.0  # the baseline against itself
    assert start["proxy_win_rate"] == 0.5 and start["proxy_judge_gap"] == 0.0
    with store.connect(aligned[3] / "db.duckdb", read_only=True) as con:  # as stored
        stored = con.execute(
            "SELECT run_id, name, value FROM metrics WHERE split = 'test' AND name IN "
            "('proxy_win_rate', 'win_rate', 'proxy_judge_gap')"
        ).fetchall()
    by_run: dict[str, dict[str, float]] = {}
    for run_id, name, value in stored:
        by_run.setdefault(run_id, {})[name] = value
    policies = [runs[k].run_id for k in ("start", "ppo", "dpo", "kto", "orpo", "simpo")]
    assert set(policies) <= set(by_run)
    for run_id in policies:  # the gap by its definition, from the stored win rates
        m = by_run[run_id]
        assert m["proxy_judge_gap"] == pytest.approx(m["proxy_win_rate"] - m["win_rate"])
    # every trained policy moved away from the start (the start's KL is exactly 0)
    for key in ("ppo", "dpo", "kto"):
        assert runs[key].train_info.metrics["test"]["kl"] != 0.0, key
    for key in ("reward_model", "judge"):
        assert 0.0 <= runs[key].metric("test", "reward_accuracy") <= 1.0
    assert runs["ppo"].train_info.timings.train_s > 0
    assert runs["ppo"].train_info.memory.peak_mem_bytes > 0


class _Scores:
    """A stand-in scorer: the given score lists, one per call, in call order."""

    def __init__(self, *calls: list[float]) -> None:
        self.calls = list(calls)

    def score(self, texts: list[str]) -> list[float]:
        scores = self.calls.pop(0)
        assert len(scores) == len(texts)
        return scores


def test_policy_metrics_by_their_definitions():
    """evaluate_policy on known rewards: win rates count a tie as half, proxy_judge_gap is the
    proxy's win rate minus the judge's, and the KL of a policy against itself is 0."""
    from harness.backends.alignment.generation import evaluate_policy
    from harness.models import MODEL_ASSETS, load_causal_lm, load_tokenizer

    resolved = MODEL_ASSETS.get("tiny-random-llama").resolve()
    tokenizer, model = load_tokenizer(resolved), load_causal_lm(resolved)
    # evaluate_policy scores the policy's texts first, then the start's: judge, then proxy
    judge = _Scores([1.0, 0.0, 0.5, 0.2], [0.0, 0.0, 0.5, 0.9])  # win, tie, tie, loss
    proxy = _Scores([3.0, 1.0, 2.0, 2.0], [0.0, 2.0, 1.0, 0.0])  # win, loss, win, win
    prompts = ["a good film", "the plot", "it was", "actors and"]
    metrics = evaluate_policy(model, model, proxy, judge, tokenizer, prompts, 3, 0, 2)
    assert metrics["win_rate"] == 0.5  # (1 + 0.5 + 0.5 + 0) / 4
    assert metrics["judge_score"] == pytest.approx(1.7 / 4)
    assert metrics["proxy_win_rate"] == 0.75 and metrics["proxy_reward"] == 2.0
    assert metrics["proxy_judge_gap"] == 0.25  # 0.75 - 0.5: the proxy rates it higher
    assert metrics["kl"] == 0.0  # the same model, the same draws
    assert 0 < metrics["gen_length"] <= 3


def test_a_failing_ppo_marks_its_cell_and_the_others_complete(aligned):
    runs = _by_key(aligned[4])
    broken = runs["ppo_explode"].train_info
    assert broken.status == "failed" and "injected PPO failure" in broken.reason
    assert runs["dpo"].status == "ok"


def test_second_run_reuses_every_finished_stage(aligned):
    plan, _, _, tmp, _ = aligned
    again = run_plan(plan, results_dir=tmp / "results", db_path=tmp / "db.duckdb")
    retried = {r.spec["method_key"] for r in again.executed}
    assert retried <= {"ppo_explode"}  # `failed` is retried; no reward model is trained again
    assert {"reward_model", "judge", "ppo", "dpo"} <= {r.spec["method_key"] for r in again.skipped}


def test_links_are_stored_in_duckdb(aligned):
    _, specs, _, tmp, _ = aligned
    with store.connect(tmp / "db.duckdb", read_only=True) as con:
        rows = con.execute("SELECT run_id, role, upstream_run_id FROM run_links").fetchall()
        splits = {r[0] for r in con.execute("SELECT DISTINCT split FROM metrics").fetchall()}
    dpo = next(s for s in specs if s.method_key == "dpo")
    assert {(dpo.run_id, role, run_id) for role, run_id in dpo.upstream.items()} <= set(rows)
    assert splits == {"test"}


def test_judge_is_a_different_run_on_disjoint_records_and_seed(aligned):
    _, specs, _, _, _ = aligned
    reward = next(s for s in specs if s.method_key == "reward_model")
    judge = next(s for s in specs if s.method_key == "judge")
    assert reward.run_id != judge.run_id and reward.seed != judge.seed
    assert (reward.model.asset, judge.model.asset) == ("tiny-random-llama", "all-minilm-l6-v2")
    assert (reward.params["role"], judge.params["role"]) == ("reward", "judge")
    parts = partitions(reward.dataset, trial=False)
    texts = {name: {r["text"] for r in getattr(parts, name)}
             for name in ("policy", "reward", "judge", "held_out")}  # fmt: skip
    for a in texts:
        for b in texts:
            assert a == b or not texts[a] & texts[b], f"{a} and {b} share records"
    assert parts.held_out_split == "test"
    assert partitions(reward.dataset, trial=True).held_out_split == "validation"


def test_a_failed_upstream_skips_its_cells_with_the_reason(tmp_path, write_suite):
    path = write_suite(tiny_alignment_suite(["start", "dpo"]))
    started = []

    class FailStages:
        def run(self, spec, run_dir, on_progress=None):
            started.append(spec.method_key)
            run_dir.mkdir(parents=True, exist_ok=True)
            return RunResult.without_run(spec, "failed", reason="stage broke")

    report = run_plan(make_plan(path), results_dir=tmp_path / "r", db_path=tmp_path / "d.db",
                      executor=FailStages())  # fmt: skip
    assert started == ["reward_model", "judge"]  # no policy cell was started
    runs = _by_key(report)
    reward_id = runs["reward_model"].run_id
    for key in ("start", "dpo"):
        info = runs[key].train_info
        assert info.status == "skipped"
        assert f"upstream reward run {reward_id} is failed (stage broke)" == info.reason


def test_tuning_cells_start_from_stages_of_the_tuning_seed(write_suite):
    from harness.tuning.study import tune_cells

    tune = {"trials": 1, "seed": 7, "pruner": {"type": "none"}}
    data = tiny_alignment_suite(["dpo"], tune=tune)
    data["methods"]["dpo"]["search"] = {"beta": {"type": "float", "low": 0.05, "high": 0.5}}
    plan = make_plan(write_suite(data), availability=False)
    (cell,) = tune_cells(plan)
    stages = {s.method_key: s for s in plan.specs if s.method == "reward_model"}
    assert cell.base.seed == 7 and cell.base.upstream.keys() == {"reward", "judge"}
    assert cell.base.upstream["reward"] != stages["reward_model"].run_id  # seed 0's stage
    json.dumps(cell.base.model_dump(mode="json"))


def test_tune_runs_trials_from_the_finished_stages(aligned):
    """`ftbench tune` on an alignment cell: its stages (seed 0, finished above) are reused."""
    import yaml

    from harness.tuning.study import tune_plan

    _, specs, _, tmp, _ = aligned
    data = tiny_alignment_suite(["dpo"], tune={"trials": 1, "pruner": {"type": "none"}})
    data["methods"]["dpo"]["search"] = {"beta": {"type": "float", "low": 0.05, "high": 0.5}}
    path = tmp / "tune.yaml"
    path.write_text(yaml.safe_dump(data))
    stages = [s for s in specs if s.method == "reward_model"]
    finished = {
        s.run_id: (tmp / "results/runs" / s.run_id / "result.json").read_text() for s in stages
    }
    report = tune_plan(make_plan(path), results_dir=tmp / "results", db_path=tmp / "db.duckdb")
    (study,) = report.studies.values()
    (trial,) = study.get_trials()
    assert trial.state.name == "COMPLETE", trial.user_attrs
    assert [r.status for r in report.final.executed] == ["ok"]
    for run_id, text in finished.items():  # not retrained
        assert (tmp / "results/runs" / run_id / "result.json").read_text() == text


def test_orpo_and_simpo_train_on_dpos_pairs_without_a_reference(aligned):
    """The reference-free methods see the same proxy-ranked pairs as DPO, really train (a logged
    loss, a policy that moved away from the start), and are scored by the same judge."""
    runs = _by_key(aligned[4])
    dpo = runs["dpo"].train_info
    for key in ("orpo", "simpo"):
        info = runs[key].train_info
        assert {k: info.notes[k] for k in ("pairs", "prompts", "mean_reward_margin")} == {
            k: dpo.notes[k] for k in ("pairs", "prompts", "mean_reward_margin")
        }
        assert info.curve and all(math.isfinite(p["loss"]) for p in info.curve)
        assert info.metrics["test"]["kl"] != 0.0  # unlike `start`, the policy changed
        assert info.train_tokens is None  # not counted (no `input_ids` in their batches)


def test_preference_runs_measure_exactly_the_predicted_static_bytes(aligned):
    """Weights, gradients and optimizer state of the policy are exact on CPU: measured after the
    first optimizer step of each preference run, they equal the alignment estimator's fp32 CPU
    prediction byte for byte (the reference is the base under the adapter: no weights of its
    own). PPO's policy + value model and the reward-model stages (a LoRA'd classifier with a
    trained head copy; the judge on an encoder backbone) too."""
    runs = _by_key(aligned[4])
    for key in ("dpo", "kto", "orpo", "simpo", "ppo", "reward_model", "judge"):
        memory = runs[key].train_info.memory
        measured, predicted = memory.measured_state, memory.estimate["cpu"]["parts"]
        for term in ("weights_trainable", "weights_frozen", "gradients", "optimizer"):
            assert measured[term] == predicted[term], (key, term)
        assert measured["gradients"] > 0 and predicted.get("reference_weights", 0) == 0, key
        assert memory.estimate["cuda"]["parts"]["total"] > predicted["weights_frozen"], key
    assert runs["start"].train_info.memory.estimate["cuda"]["parts"]["train_peak"] == 0
    # PPO trains the value model whole: its weights are most of what trains
    ppo = runs["ppo"].train_info.memory.estimate["cuda"]["parts"]
    assert ppo["generation_scores"] > 0 and ppo["kv_cache"] > 0 and ppo["proxy_weights"] > 0
    assert (
        runs["ppo"].train_info.memory.measured_state["weights_trainable"]
        > (runs["dpo"].train_info.memory.measured_state["weights_trainable"])
    )
