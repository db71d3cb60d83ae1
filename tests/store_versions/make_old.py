"""How vN/ was made: an old ftbench checkout (the commit in vN/COMMIT, the last with
schema_version N) ingests two runs with its own store code, and DuckDB exports the file as text
(schema.sql, load.sql, one CSV per table; load.sql's folder replaced by @DIR@).

    git archive $(cat tests/store_versions/vN/COMMIT) | tar -x -C /tmp/old
    cd /tmp/old && PYTHONPATH=/tmp/old python make_old.py SYNTHETIC.py /tmp/vN.duckdb /tmp/export

SYNTHETIC.py: dashboard/synthetic.py of the v2 commit (v1 had none), which builds the results.
"""

import importlib.util
import shutil
import sys
from pathlib import Path

import duckdb

from harness.store import ingest  # the old checkout's (PYTHONPATH)

synthetic_path, db, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
spec = importlib.util.spec_from_file_location("synthetic_old", synthetic_path)
syn = importlib.util.module_from_spec(spec)
spec.loader.exec_module(syn)
ingest(
    db,
    syn.result(suite="old", method="lora", seed=0, metrics={"accuracy": 0.61}),
    result_path="results/runs/a/result.json",
)
ingest(
    db, syn.result(suite="old", method="full", seed=0, status="failed", reason="RuntimeError: boom")
)
with duckdb.connect(str(db)) as con:
    print(con.execute("SELECT * FROM meta").fetchall())
    print([r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()])
    shutil.rmtree(out, ignore_errors=True)
    con.execute(f"EXPORT DATABASE '{out}' (FORMAT CSV)")
