"""A suite run in slices (`--shard K/N`) on "two machines", merged (`ftbench merge`), equals one run."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from helpers import suite_dict
from test_alignment import tiny_alignment_suite

from harness.cli import main as cli
from harness.plan.plan import Shard, make_plan
from harness.store import leaderboard
from harness.suite.suite_file import SuiteError

# Columns of a leaderboard that measure the machine, not the result.
TIMING = ("train_s", "tokens_per_s", "samples_per_s", "peak_mem")


def _scores(db, suite="tiny"):
    board = leaderboard(db, suite)
    keep = [c for c in board.columns if not any(t in c for t in TIMING)]
    return board[keep].sort_values(["dataset", "model", "metric", "entry"]).reset_index(drop=True)


def test_shards_deal_every_grid_run_once_and_bring_their_stages(write_suite):
    path = write_suite(tiny_alignment_suite(["start", "dpo", "kto"], seeds=[0, 1]))
    everything = make_plan(path, availability=False)
    grid = {r.spec.run_id for r in everything.runs if not r.stage}
    dealt: list[str] = []
    for k in (1, 2, 3):
        plan = make_plan(path, shard=f"{k}/3", availability=False)
        ids = {r.spec.run_id for r in plan.runs}
        for run in plan.runs:  # every run's stages are in its slice
            assert set((run.spec.upstream or {}).values()) <= ids
        dealt += [r.spec.run_id for r in plan.runs if not r.stage]
        assert plan.specs == make_plan(path, shard=f"{k}/3", availability=False).specs
    assert sorted(dealt) == sorted(grid)  # a partition: each grid run in exactly one slice
    sizes = [len([r for r in make_plan(path, shard=f"{k}/3", availability=False).runs
                  if not r.stage]) for k in (1, 2, 3)]  # fmt: skip
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("text", ["0/2", "3/2", "2", "a/b", "1/0"])
def test_a_bad_shard_names_the_fix(text):
    with pytest.raises(SuiteError, match="expected K/N with 1 <= K <= N"):
        Shard.parse(text)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """seeds 0 and 1 of the tiny suite: slice 1/2 and 2/2 in two results folders, and the whole
    suite in a third (the single-machine run)."""
    import yaml

    tmp = tmp_path_factory.mktemp("shards")
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(suite_dict(seeds=[0, 1])))
    for name, extra in (("a", ["--shard", "1/2"]), ("b", ["--shard", "2/2"]), ("one", [])):
        assert cli(["--results", str(tmp / name), "run", str(path), *extra]) == 0
    return tmp, path


def test_merged_slices_show_the_leaderboard_of_one_run(shards, capsys):
    tmp, path = shards
    a, b = tmp / "a" / "ftbench.duckdb", tmp / "b" / "ftbench.duckdb"
    with duckdb.connect(str(a), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    merged = tmp / "merged.duckdb"
    assert cli(["merge", str(a), str(b), "--into", str(merged)]) == 0
    assert _scores(merged).equals(_scores(tmp / "one" / "ftbench.duckdb"))
    assert _scores(merged)["n"].tolist() == [2]
    capsys.readouterr()
    assert cli(["--db", str(merged), "show", str(path)]) == 0
    assert "Leaderboard: suite tiny" in capsys.readouterr().out

    # Idempotent: merging the same files again adds nothing and reports no conflict.
    assert cli(["merge", str(a), str(b), "--into", str(merged)]) == 0
    out = capsys.readouterr().out
    assert out.count("0 runs added, 1 already there with the same results") == 2
    with duckdb.connect(str(merged), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM suites").fetchone()[0] == 1


def test_a_conflicting_duplicate_is_reported_and_not_overwritten(shards, capsys):
    tmp, _ = shards
    a, other = tmp / "a" / "ftbench.duckdb", tmp / "other.duckdb"
    shutil.copyfile(a, other)
    with duckdb.connect(str(other)) as con:  # the same run_id, another result
        con.execute("UPDATE metrics SET value = value + 1 WHERE name = 'accuracy'")
        (original,) = con.execute(
            "SELECT value - 1 FROM metrics WHERE name = 'accuracy' AND split = 'test'"
        ).fetchone()
    merged = tmp / "conflict.duckdb"
    assert cli(["merge", str(a), str(other), "--into", str(merged)]) == 1
    err = capsys.readouterr().err
    assert "conflict: run " in err and "test/accuracy" in err and f"{a} (kept)" in err
    with duckdb.connect(str(merged), read_only=True) as con:
        kept = con.execute(
            "SELECT value FROM metrics WHERE name = 'accuracy' AND split = 'test'"
        ).fetchone()[0]
    assert kept == pytest.approx(original)


def test_an_older_schema_merges_and_moved_run_folders_are_found(shards, capsys):
    tmp, _ = shards
    old = tmp / "moved" / "ftbench.duckdb"  # slice b's results folder, moved elsewhere
    shutil.copytree(tmp / "b", tmp / "moved")
    with duckdb.connect(str(old)) as con:  # as written by schema version 3, on another machine
        con.execute("ALTER TABLE provenance DROP COLUMN model_revision_requested")
        con.execute(
            "UPDATE runs SET result_path = '/content/drive/results/runs/' || run_id || '/result.json'"
        )
        con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    shutil.rmtree(tmp / "moved" / "runs")
    merged = tmp / "from_old.duckdb"
    assert cli(["merge", str(old), "--into", str(merged)]) == 0
    assert "1 merged runs have no run folder here" in capsys.readouterr().out
    shutil.copytree(tmp / "b" / "runs", tmp / "moved" / "runs")
    merged.unlink()
    assert cli(["merge", str(old), "--into", str(merged)]) == 0
    assert "no run folder" not in capsys.readouterr().out
    with duckdb.connect(str(merged), read_only=True) as con:
        (path,) = con.execute("SELECT result_path FROM runs").fetchone()
        assert con.execute("SELECT count(*) FROM provenance").fetchone()[0] == 1
    assert path.startswith(str((tmp / "moved" / "runs").resolve()))
    with duckdb.connect(str(old), read_only=True) as con:  # the source itself is not migrated
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "3",
        )
