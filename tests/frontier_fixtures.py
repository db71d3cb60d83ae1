"""Constructed alignment results for the frontier tests (tests/test_frontier.py) and the browser
test: two method families whose frontiers cross, on three seeds, plus a failed run.

The numbers are made up; only their shape matters: the expected frontier, matched-KL scores and
leaders follow from them by hand (see test_frontier.py).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dashboard.synthetic import result
from harness.store import ingest
from harness.suite.suite_file import sweep_family, sweep_setting

# Two families on three seeds. Per seed: start at (KL 0, 0); `a` rises fast then flattens, `b`
# starts slowly and ends higher, so `a` leads at low KL and `b` at high KL. a@x=3 is dominated
# (more KL than a@x=2 for a lower score). Seed s adds s/100 to a's scores and s/50 to b's.
POINTS = {  # method key -> (kl, score) before the seed's offset
    "start": (0.0, 0.0),
    "a@x=1": (1.0, 1.0),
    "a@x=2": (2.0, 1.5),
    "a@x=3": (3.0, 1.2),
    "b@y=1": (1.0, 0.5),
    "b@y=2": (2.0, 2.5),
}


def offset(key: str, seed: int) -> float:
    return {"a": seed / 100, "b": seed / 50}.get(key[0], 0.0)


# The independent judge agrees with the trained one except on family b, which it scores 1.2 lower:
# it ranks b@y=2 below a@x=2 and b@y=1 below start, the two pairs (of 15) the judges disagree on.
INDEPENDENT_SHIFT = {"b": -1.2}


def constructed_runs(seeds=(0, 1, 2)) -> pd.DataFrame:
    """A policy_runs frame of POINTS (win rate = score / 10 + 0.5)."""
    rows = []
    for seed in seeds:
        for key, (kl, score) in POINTS.items():
            score += offset(key, seed)
            rows.append({
                "run_id": f"{key}-{seed}", "dataset": "rt", "model": "tiny", "method_key": key,
                "method": key.split("@")[0], "family": sweep_family(key),
                "setting": sweep_setting(key) or "-", "seed": seed, "status": "ok",
                "reason": None, "kl": kl, "judge_score": score, "win_rate": score / 10 + 0.5,
                "indep_judge_score": score + INDEPENDENT_SHIFT.get(key[0], 0.0),
                "indep_win_rate": (score + INDEPENDENT_SHIFT.get(key[0], 0.0)) / 10 + 0.5,
                "judge_run": f"judge-{seed}",
            })  # fmt: skip
    return pd.DataFrame(rows)


def build_store(db: Path, suite: str = "align") -> Path:
    """POINTS (3 seeds) ingested as alignment runs of `suite`, plus a failed run and the judge
    stage of each seed."""
    for row in constructed_runs().itertuples():
        res = result(
            suite=suite, method=row.method_key, model="tiny", dataset="rt", seed=row.seed,
            task="positive_continuation", headline="judge_score", params={"beta": 0.1},
            metrics={"judge_score": row.judge_score, "win_rate": row.win_rate, "kl": row.kl,
                     "indep_judge_score": row.indep_judge_score,
                     "indep_win_rate": row.indep_win_rate},
        )  # fmt: skip
        spec = res["run_info"]["spec"]
        spec["method"] = "start" if row.family == "start" else "dpo"
        spec["upstream"] = {"reward": f"proxy-{row.seed}", "judge": f"judge-{row.seed}"}
        ingest(db, res, result_path=None)
    failed = result(
        suite=suite, method="b@y=3", model="tiny", dataset="rt", seed=0, status="failed",
        task="positive_continuation", headline="judge_score", reason="RuntimeError: boom",
    )  # fmt: skip
    failed["run_info"]["spec"]["method"] = "dpo"
    ingest(db, failed, result_path=None)
    for seed in (0, 1, 2):
        stage = result(
            suite=suite, method="judge", model="tiny", dataset="rt", seed=seed + 1000,
            task="positive_continuation", headline="reward_accuracy",
            metrics={"reward_accuracy": 0.9},
        )  # fmt: skip
        stage["run_info"]["spec"]["method"] = "reward_model"
        ingest(db, stage, result_path=None)
    return db
