"""The filter parser of the dashboard.

Pure numpy/pandas, no Streamlit and no database: everything here is unit tested directly. Seed
statistics (bootstrap CI, ties with the leader) are the store's (harness/store/stats.py), and so
is the Pareto front (harness/store/pareto.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

# --- filter syntax -------------------------------------------------------------------------------
# `method=lora|ia3,model~smol,status!=ok`: comma-separated clauses `FIELD OP VALUE[|VALUE...]`.
# Parsed by hand against a whitelist of fields and a conservative value alphabet; never eval'd and
# never spliced into SQL (it is applied to DataFrames already fetched).

FILTER_FIELDS = {
    "method": "method_key",
    "model": "model_key",
    "dataset": "dataset_key",
    "status": "status",
    "task": "task",
    "run": "run_id",
    "suite": "suite",
    "origin": "origin",
}
_OPS = ("!=", "!~", "=", "~")  # two-character operators first
_FIELD_RE = re.compile(r"[a-z_]+")
_VALUE_RE = re.compile(r"[A-Za-z0-9_.:/+-]+")
MAX_FILTER_LEN = 500


class FilterError(ValueError):
    """A filter that does not parse; the message says what is wrong, for the user."""


@dataclass(frozen=True)
class Clause:
    field: str
    op: str  # '=', '!=', '~' (contains, case-insensitive), '!~' (does not contain)
    values: tuple[str, ...]


def parse_filter(text: str | None) -> list[Clause]:
    text = (text or "").strip()
    if not text:
        return []
    if len(text) > MAX_FILTER_LEN:
        raise FilterError(f"filter longer than {MAX_FILTER_LEN} characters")
    clauses = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise FilterError("empty clause (two commas in a row, or a trailing comma?)")
        for op in _OPS:
            field, sep, value = part.partition(op)
            if sep:
                break
        else:
            raise FilterError(
                f"{part!r}: expected FIELD=VALUE, FIELD!=VALUE, FIELD~TEXT or FIELD!~TEXT"
            )
        field, value = field.strip().lower(), value.strip()
        if not _FIELD_RE.fullmatch(field) or field not in FILTER_FIELDS:
            raise FilterError(
                f"{part!r}: unknown field {field!r}; use one of {', '.join(FILTER_FIELDS)}"
            )
        values = tuple(v.strip() for v in value.split("|"))
        for v in values:
            if not _VALUE_RE.fullmatch(v):
                raise FilterError(
                    f"{part!r}: value {v!r} must be letters, digits or _ . : / + - (alternatives with |)"
                )
        clauses.append(Clause(field, op, values))
    return clauses


def apply_filter(frame: pd.DataFrame, clauses: Sequence[Clause]) -> pd.DataFrame:
    """Rows matching every clause; a clause on a column the frame lacks raises FilterError."""
    keep = pd.Series(True, index=frame.index)
    for clause in clauses:
        column = FILTER_FIELDS[clause.field]
        if column not in frame.columns:
            raise FilterError(f"field {clause.field!r} cannot be filtered on this page")
        text = frame[column].astype("string").fillna("").str.lower()
        wanted = [v.lower() for v in clause.values]
        if clause.op in ("=", "!="):
            hit = text.isin(wanted)
        else:
            hit = pd.Series(False, index=frame.index)
            for v in wanted:
                hit |= text.str.contains(v, regex=False)
        keep &= ~hit if clause.op.startswith("!") else hit
    return frame[keep.astype(bool)]
