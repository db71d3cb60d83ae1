"""`ftbench merge A.duckdb B.duckdb ... --into C.duckdb`: the results of one suite run in slices
(`ftbench run SUITE --shard K/N` on several machines) or anywhere else, in one database.

- Idempotent by run_id: a run already in the target with the same outcome (status and metrics)
  is left as it is, so merging a file twice, or a stage two slices both ran, adds nothing.
- A run_id whose outcome differs between files is a conflict: the first file's rows stay, and
  the conflict is reported (which files, what differs); nothing is overwritten silently.
- Each source is read from a migrated copy (schema.py's migrations), so files written by older
  ftbench versions merge; the sources themselves are never written.
- Run folders are referenced, not copied: a run's result_path is made absolute where its
  result.json is found (as stored, or next to the source database in runs/RUN_ID/), so
  `ftbench repro` finds the folder; the runs whose folder is nowhere here are counted.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.store.schema import RUN_TABLES, connect, declare_table

# Tables of rows that are not one run's: union by their primary key, first file wins.
SHARED_TABLES = ("suites", "trials", "expected_best", "repro_checks", "result_tables")


@dataclass
class Conflict:
    run_id: str
    kept: str  # the file whose rows stay
    other: str
    differences: list[str]

    def __str__(self) -> str:
        return (
            f"conflict: run {self.run_id} differs between {self.kept} (kept) and {self.other}: "
            + "; ".join(self.differences)
        )


@dataclass
class MergeReport:
    added: dict[str, int] = field(default_factory=dict)  # source -> runs added
    same: dict[str, int] = field(default_factory=dict)  # source -> runs already there, equal
    conflicts: list[Conflict] = field(default_factory=list)
    folders_missing: list[str] = field(default_factory=list)  # run_ids without a folder here


def merge(sources: list[Path | str], into: Path | str) -> MergeReport:
    """Merge result databases into `into` (created if missing; its own runs count as first)."""
    into = Path(into)
    report = MergeReport()
    origin: dict[str, str] = {}  # run_id -> the file its rows came from
    with connect(into) as con:
        for (run_id,) in con.execute("SELECT run_id FROM runs").fetchall():
            origin[run_id] = str(into)
    for source in map(Path, sources):
        if not source.is_file():
            raise FileNotFoundError(f"merge: no database at {source}")
        if source.resolve() == into.resolve():
            raise ValueError(f"merge: {source} is the target itself; give another --into path")
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "source.duckdb"
            shutil.copyfile(source, copy)
            with connect(copy):  # migrate the copy to this ftbench's schema version
                pass
            with connect(into) as con:
                _merge_one(con, copy, source, report, origin)
    return report


SRC = "ftbench_merge_src"  # the attached source's catalog name


def _merge_one(
    con: Any, copy: Path, source: Path, report: MergeReport, origin: dict[str, str]
) -> None:
    from harness.store.result import ResultTable

    target = con.execute("SELECT current_database()").fetchone()[0]
    con.execute(f"ATTACH '{_quote(copy)}' AS {SRC} (READ_ONLY)")
    try:
        con.execute("BEGIN TRANSACTION")
        for name, table in _declared(con, SRC).items():
            declare_table(con, name, ResultTable(columns=table["columns"], key=table["key"]))
        incoming = [r[0] for r in con.execute(f"SELECT run_id FROM {SRC}.runs").fetchall()]
        new, same = [], 0
        for run_id in incoming:
            if run_id not in origin:
                new.append(run_id)
                continue
            differences = _differences(con, target, run_id)
            if differences:
                report.conflicts.append(Conflict(run_id, origin[run_id], str(source), differences))
            else:
                same += 1
        if new:
            con.execute("CREATE TEMP TABLE IF NOT EXISTS merge_ids (run_id VARCHAR)")
            con.execute("DELETE FROM merge_ids")
            con.executemany("INSERT INTO merge_ids VALUES (?)", [[r] for r in new])
            for table in (*RUN_TABLES, *_declared(con, target)):
                _copy(con, target, table, "WHERE run_id IN (SELECT run_id FROM merge_ids)")
            report.folders_missing += _reference_folders(con, source)
        for table in SHARED_TABLES:
            _copy(con, target, table, "ON CONFLICT DO NOTHING")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.execute(f"DETACH {SRC}")
    for run_id in new:
        origin[run_id] = str(source)
    report.added[str(source)] = len(new)
    report.same[str(source)] = same


def _declared(con: Any, catalog: str) -> dict[str, dict[str, Any]]:
    """The result tables a database declares (schema.declared_tables, of any attached file)."""
    rows = con.execute(f'SELECT name, columns, key FROM "{catalog}".result_tables').fetchall()
    return {name: {"columns": json.loads(c), "key": json.loads(k)} for name, c, k in rows}


def _columns(con: Any, catalog: str, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
        "AND table_name = ? ORDER BY column_index",
        [catalog, table],
    ).fetchall()
    return [r[0] for r in rows]


def _copy(con: Any, target: str, table: str, clause: str) -> None:
    """Rows of the source's table into the target's, by column name (the source's columns that
    the target has: migrations append columns, so their order differs between files)."""
    have = _columns(con, target, table)
    columns = [c for c in _columns(con, SRC, table) if c in have]
    if columns:
        names = ", ".join(columns)
        where, _, conflict = clause.partition("ON CONFLICT")
        con.execute(
            f'INSERT INTO "{target}".{table} ({names}) SELECT {names} FROM {SRC}.{table} {where}'
            + (f" ON CONFLICT{conflict}" if conflict else "")
        )


def _outcome(con: Any, catalog: str, run_id: str) -> tuple[Any, dict[tuple[str, str], Any]]:
    status = con.execute(
        f'SELECT status FROM "{catalog}".runs WHERE run_id = ?', [run_id]
    ).fetchone()
    metrics = con.execute(
        f'SELECT split, name, value FROM "{catalog}".metrics WHERE run_id = ?', [run_id]
    ).fetchall()
    return status[0], {(s, n): v for s, n, v in metrics}


def _differences(con: Any, target: str, run_id: str) -> list[str]:
    """What differs between the target's and the source's outcome of one run (timings do not
    count: the same run on another machine takes another time)."""
    status_a, metrics_a = _outcome(con, target, run_id)
    status_b, metrics_b = _outcome(con, SRC, run_id)
    out = [f"status {status_a} vs {status_b}"] if status_a != status_b else []
    for key in sorted(set(metrics_a) | set(metrics_b)):
        a, b = metrics_a.get(key), metrics_b.get(key)
        both_nan = a is not None and b is not None and a != a and b != b
        if a != b and not both_nan:
            out.append(f"{key[0]}/{key[1]} {a} vs {b}")
    return out


def _reference_folders(con: Any, source: Path) -> list[str]:
    """Point result_path at the run's result.json where it is found; the run_ids found nowhere."""
    missing = []
    rows = con.execute(
        "SELECT run_id, result_path FROM runs WHERE run_id IN (SELECT run_id FROM merge_ids)"
    ).fetchall()
    for run_id, stored in rows:
        candidates = [Path(stored)] if stored else []
        if stored:
            candidates.append(source.parent / "runs" / run_id / Path(stored).name)
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            missing.append(run_id)
        elif str(found.resolve()) != stored:
            con.execute(
                "UPDATE runs SET result_path = ? WHERE run_id = ?", [str(found.resolve()), run_id]
            )
    return missing


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")
