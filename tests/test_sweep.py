"""`sweep:` on a method entry: one ordinary entry per value, sharing the cells' upstream stages."""

from __future__ import annotations

import pytest
from helpers import grid_specs, suite_dict
from test_alignment import tiny_alignment_suite

from harness.plan.plan import make_plan
from harness.suite.suite_file import SuiteError, load_suite, sweep_family, sweep_setting


def frontier_suite(**sweeps) -> dict:
    """The tiny alignment suite (start, ppo, dpo) on two seeds, with the given sweeps."""
    data = tiny_alignment_suite(["start", "ppo", "dpo"], seeds=[0, 1])
    for key, sweep in sweeps.items():
        data["methods"][key]["sweep"] = sweep
    return data


def test_a_sweep_expands_into_runs_that_share_their_stages(write_suite):
    data = frontier_suite(ppo={"kl_coef": [0.01, 0.1, 1.0]}, dpo={"beta": [0.05, 0.5]})
    plan = make_plan(write_suite(data), availability=False)
    cells = [s for s in plan.specs if s.method != "reward_model"]
    assert sorted({s.method_key for s in cells}) == [
        "dpo@beta=0.05", "dpo@beta=0.5",
        "ppo@kl_coef=0.01", "ppo@kl_coef=0.1", "ppo@kl_coef=1.0", "start",
    ]  # fmt: skip
    assert len(cells) == 6 * 2 and len({s.run_id for s in cells}) == 12
    assert {s.params["kl_coef"] for s in cells if s.method == "ppo"} == {0.01, 0.1, 1.0}
    # One proxy and one judge per seed, shared by every cell of that seed (planned once).
    stages = [r.spec for r in plan.runs if r.stage]
    assert sorted(s.method_key for s in stages) == [
        "judge",
        "judge",
        "reward_model",
        "reward_model",
    ]
    for seed in (0, 1):
        links = {tuple(sorted(s.upstream.items())) for s in cells if s.seed == seed}
        assert len(links) == 1
        assert set(dict(links.pop()).values()) == {
            s.run_id for s in stages if s.seed in (seed, seed + 1000)
        }
    # The stages are those of the same suite without a sweep: a sweep adds runs, nothing else.
    plain = make_plan(write_suite(frontier_suite(), "plain.yaml"), availability=False)
    assert {s.run_id for s in stages} == {r.spec.run_id for r in plain.runs if r.stage}


def test_a_swept_entry_is_the_entry_with_that_value(write_suite):
    """Only the method key differs from writing the value into the entry (so an unswept suite
    expands exactly as before)."""
    swept = grid_specs(frontier_suite(dpo={"beta": [0.3]}))
    data = frontier_suite()
    data["methods"]["dpo"]["params"] = {"beta": 0.3}
    plain = grid_specs(data)
    (a,) = [s for s in swept if s.method == "dpo" and s.seed == 0]
    (b,) = [s for s in plain if s.method == "dpo" and s.seed == 0]
    assert a.method_key == "dpo@beta=0.3" and b.method_key == "dpo"
    assert a.model_copy(update={"method_key": "dpo"}) == b
    others = lambda specs: [s.run_id for s in specs if s.method != "dpo"]  # noqa: E731
    assert others(swept) == others(plain)


def test_combinations_training_fields_and_qualified_names():
    data = frontier_suite(ppo={"batch_size": [2, 4], "params.kl_coef": [0.1, 0.2]})
    ppo = [s for s in grid_specs(data) if s.method == "ppo" and s.seed == 0]
    assert [s.method_key for s in ppo] == [
        "ppo@batch_size=2@params.kl_coef=0.1", "ppo@batch_size=2@params.kl_coef=0.2",
        "ppo@batch_size=4@params.kl_coef=0.1", "ppo@batch_size=4@params.kl_coef=0.2",
    ]  # fmt: skip
    assert [(s.training.batch_size, s.params["kl_coef"]) for s in ppo] == [
        (2, 0.1), (2, 0.2), (4, 0.1), (4, 0.2)
    ]  # fmt: skip
    assert sweep_family(ppo[0].method_key) == "ppo"
    assert sweep_setting(ppo[0].method_key) == "batch_size=2 params.kl_coef=0.1"
    assert (sweep_family("dpo_ipo"), sweep_setting("dpo_ipo")) == ("dpo_ipo", "")


def test_overrides_and_exclusions_of_the_family_apply_to_its_swept_entries():
    data = frontier_suite(dpo={"beta": [0.1, 0.2, 0.4]})
    data["grid"]["overrides"].append({"when": {"method": "dpo"}, "params": {"r": 4}})
    data["grid"]["exclude"] = [{"method": "dpo@beta=0.4"}]
    dpo = [s for s in grid_specs(data) if s.method == "dpo" and s.seed == 0]
    assert [(s.method_key, s.params["r"]) for s in dpo] == [
        ("dpo@beta=0.1", 4),
        ("dpo@beta=0.2", 4),
    ]


def test_only_selects_a_family_or_one_swept_entry(write_suite):
    path = write_suite(frontier_suite(dpo={"beta": [0.1, 0.2]}))
    family = make_plan(path, only="method=dpo,seed=0", availability=False)
    assert [s.method_key for s in family.specs if s.method == "dpo"] == [
        "dpo@beta=0.1",
        "dpo@beta=0.2",
    ]
    one = make_plan(path, only="method=dpo@beta=0.2", availability=False)
    assert [s.label for s in one.specs if s.method == "dpo"] == [
        "dpo@beta=0.2·tiny·rt·s0", "dpo@beta=0.2·tiny·rt·s1"
    ]  # fmt: skip


BAD_SWEEPS = {
    "unknown name": ({"dpo": {"sweep": {"betta": [0.1]}}}, ["methods.dpo.sweep.betta", "'beta'"]),
    "ambiguous name": (
        {"dpo": {"sweep": {"loss_type": ["ipo"]}}},
        ["methods.dpo.sweep.loss_type", "params.loss_type or training.loss_type"],
    ),
    "invalid value": ({"dpo": {"sweep": {"beta": [-1.0]}}}, ["methods.dpo", "params.beta"]),
    "value listed twice": ({"dpo": {"sweep": {"beta": [0.1, 0.1]}}}, ["listed twice"]),
    "no values": ({"dpo": {"sweep": {"beta": []}}}, ["methods.dpo.sweep.beta", "at least one"]),
    "a list value": ({"dpo": {"sweep": {"beta": [[0.1]]}}}, ["methods.dpo.sweep.beta"]),
    "a value unfit for a key": (
        {"dpo": {"sweep": {"loss_type": ["a,b"]}}},
        ["cannot be part of a method key"],
    ),
    "with a search space": (
        {
            "dpo": {
                "sweep": {"beta": [0.1]},
                "search": {"beta": {"type": "float", "low": 0.1, "high": 0.5}},
            }
        },
        ["methods.dpo", "`sweep` and `search` cannot be combined"],
    ),  # fmt: skip
    "@ in an entry's key": ({"dpo@x": {"method": "dpo"}}, ["methods.dpo@x", "reserved"]),
}


@pytest.mark.parametrize("case", BAD_SWEEPS, ids=list(BAD_SWEEPS))
def test_bad_sweeps_get_a_clear_error(case, write_suite):
    entries, expected = BAD_SWEEPS[case]
    data = frontier_suite()
    data["methods"].update(entries)
    path = write_suite(data)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    for fragment in [str(path), *expected]:
        assert fragment in str(err.value), f"{fragment!r} not in:\n{err.value}"


def test_an_override_may_not_set_a_swept_field(write_suite):
    data = frontier_suite(dpo={"beta": [0.1, 0.2]})
    data["grid"]["overrides"].append({"when": {"method": "dpo"}, "params": {"beta": 0.5}})
    with pytest.raises(SuiteError, match=r"grid.overrides\[1\].params.beta: methods.dpo sweeps it"):
        load_suite(write_suite(data))


def test_sweeps_work_for_every_backend():
    data = suite_dict(methods={"lora": {"sweep": {"r": [4, 8], "learning_rate": [1.0e-4]}}})
    keys = [s.method_key for s in grid_specs(data)]
    assert keys == ["lora@learning_rate=0.0001@r=4", "lora@learning_rate=0.0001@r=8"]


def test_the_ema_reference_needs_its_own_reference_model(write_suite):
    data = frontier_suite()
    data["methods"]["ppo"]["params"] = {"ppo_epochs": 1, "ref_ema": 0.1}
    with pytest.raises(SuiteError, match="ref_ema .* needs peft: full"):
        load_suite(write_suite(data))
    data["methods"]["ppo"]["params"] |= {"peft": "full", "ref_sync_steps": 2}
    (spec,) = [s for s in grid_specs(data) if s.method == "ppo" and s.seed == 0]
    assert (spec.params["ref_ema"], spec.params["ref_sync_steps"]) == (0.1, 2)
    # Unset, the new params stay out of the params dict, so existing PPO run_ids do not change.
    (plain,) = [s for s in grid_specs(frontier_suite()) if s.method == "ppo" and s.seed == 0]
    assert "ref_ema" not in plain.params and "ref_sync_steps" not in plain.params
