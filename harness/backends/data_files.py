"""The `files` data source: the user's own JSONL, CSV or Parquet files.

Either one file (`path`), split by the leak-checked splitter (harness.data.make_splits), or the
user's own `train`/`validation`/`test` files, taken as given (a seeded sample when a file holds
more rows than its split asks for) and checked for rows shared across them. Local paths are
relative to the suite file; any other fsspec URL (s3://, https://, memory://) is read as is.

Identity: when a suite loads, every file's sha256 is pinned into the dataset's options
(`options.sha256`), so it is part of each run's spec and run_id: a changed file is a different
run, and the lock file and the stored config record which bytes were read. The folder the
paths are relative to (`options.root`) is where to read, not what was read: it is left out of
the run_id (RunSpec.resolved), so a moved checkout keeps its run_ids.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from harness.backends.data import DataSource, DataUnavailableError, Record
from harness.suite.config import StrictModel
from harness.suite.plugins import DATA_SOURCES

Format = Literal["jsonl", "csv", "parquet"]
ROLES = ("path", "train", "validation", "test")
_SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
}  # fmt: skip


class FilesOptions(StrictModel):
    path: str | None = None  # one file, split by the splitter
    train: str | None = None  # or the user's own splits
    validation: str | None = None
    test: str | None = None
    format: Format | None = None  # default: from each file's suffix
    columns: dict[str, str] = Field(default_factory=dict)  # task field -> file column
    encoding: str = "utf-8"  # of CSV and JSONL files
    # Filled when the suite loads (file role -> sha256 of its bytes); given by hand, it is checked.
    sha256: dict[str, str] | None = None
    root: str | None = None  # filled when the suite loads: the suite file's folder

    @model_validator(mode="after")
    def _one_layout(self) -> FilesOptions:
        split_files = [r for r in ("train", "validation", "test") if getattr(self, r)]
        if self.path and split_files:
            raise ValueError(
                f"give either `path` (one file, split for you) or train/validation/test files, "
                f"not both (got path and {', '.join(split_files)})"
            )
        if not self.path and not (self.train and self.test):
            raise ValueError(
                "give `path` (one file, split for you) or at least `train` and `test` files"
            )
        return self

    def files(self) -> dict[str, str]:
        """File role (path, train, validation, test) -> location as written."""
        return {role: getattr(self, role) for role in ROLES if getattr(self, role)}

    def location(self, role: str) -> str:
        """Where to read a role's file: URLs as written, local paths from the suite's folder."""
        written = getattr(self, role)
        if "://" in written or Path(written).is_absolute() or not self.root:
            return written
        return str(Path(self.root) / written)


@DATA_SOURCES.register_instance("files")
class Files(DataSource):
    """JSONL, CSV or Parquet files, with columns mapped onto the task's fields."""

    Options = FilesOptions
    fields = ()
    check_by_loading = True

    def pin(self, options: dict[str, Any], root: Path) -> dict[str, Any]:
        parsed = FilesOptions.model_validate({**options, "root": str(root.resolve())})
        hashes = {role: _sha256(parsed, role) for role in parsed.files()}
        for role, given in (parsed.sha256 or {}).items():
            if hashes.get(role) != given:
                raise DataUnavailableError(
                    f"file {parsed.location(role)} ({role}) has sha256 {hashes.get(role)}, not "
                    f"options.sha256.{role} {given}: the file changed; remove options.sha256 to "
                    "accept the new content (a new run_id)"
                )
        return {**options, "root": parsed.root, "sha256": hashes}

    def unavailable_reason(self, options: FilesOptions) -> str | None:
        for role in options.files():
            try:
                _open(options, role).close()
            except DataUnavailableError as exc:
                return str(exc)
        return None

    def load(self, options: FilesOptions) -> list[Record]:
        return [r for rows in self.load_parts(options, ()).values() for r in rows]

    def load_parts(self, options: FilesOptions, fields: tuple[str, ...]) -> dict[str, list[Record]]:
        """{"all": records} for one file, else {split: records} per given file."""
        wanted = {**{f: f for f in fields}, **options.columns}
        parts = {}
        for role in options.files():
            rows = _read(options, role)
            parts["all" if role == "path" else role] = _records(options, role, rows, wanted)
        return parts

    def describe(self, options: FilesOptions, part: str, field: str) -> str:
        column = options.columns.get(field, field)
        return f"column {column!r} of {options.location('path' if part == 'all' else part)}"


def _format(options: FilesOptions, role: str) -> Format:
    if options.format:
        return options.format
    location = options.location(role)
    found = _SUFFIXES.get(Path(location.split("?")[0]).suffix.lower())
    if found is None:
        raise DataUnavailableError(
            f"file {location}: cannot tell its format from the suffix (known: "
            f"{', '.join(sorted(_SUFFIXES))}): set options.format to jsonl, csv or parquet"
        )
    return found


def _open(options: FilesOptions, role: str) -> Any:
    import fsspec

    location = options.location(role)
    try:
        return fsspec.open(location, "rb").open()
    except FileNotFoundError:
        where = f" (relative to the suite's folder {options.root})" if options.root else ""
        raise DataUnavailableError(
            f"file {location} (options.{role}{where}) does not exist: fix the path"
        ) from None
    except Exception as exc:  # noqa: BLE001 - fsspec backends raise their own types
        raise DataUnavailableError(
            f"file {location} (options.{role}) cannot be opened: {type(exc).__name__}: {exc}"
        ) from None


def _sha256(options: FilesOptions, role: str) -> str:
    digest = hashlib.sha256()
    with _open(options, role) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read(options: FilesOptions, role: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The file's column names and rows."""
    location, fmt = options.location(role), _format(options, role)
    with _open(options, role) as handle:
        data = handle.read()
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - pyarrow's errors name no file
            raise DataUnavailableError(f"file {location} is not a Parquet file: {exc}") from None
        return table.column_names, table.to_pylist()
    try:
        text = data.decode(options.encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataUnavailableError(
            f"file {location} is not valid {options.encoding} (byte {data[exc.start]:#04x} on "
            f"line {line}): re-save it as UTF-8, or set options.encoding to its encoding "
            "(e.g. latin-1, cp1252)"
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark (Excel's UTF-8 CSV) is not a column
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
        return list(reader.fieldnames or ()), rows
    rows, columns = [], {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataUnavailableError(
                f"file {location} line {number} is not JSON ({exc.msg}): a JSONL file holds one "
                "JSON object per line"
            ) from None
        if not isinstance(row, dict):
            raise DataUnavailableError(
                f"file {location} line {number} is a JSON {type(row).__name__}, not an object "
                '({"column": value, ...})'
            )
        columns.update(dict.fromkeys(row))
        rows.append(row)
    return list(columns), rows


def _records(
    options: FilesOptions, role: str, read: tuple[list[str], list[dict[str, Any]]],
    wanted: dict[str, str],
) -> list[Record]:  # fmt: skip
    columns, rows = read
    location = options.location(role)
    if not rows:
        raise DataUnavailableError(f"file {location} (options.{role}) has no rows")
    missing = {field: column for field, column in wanted.items() if column not in columns}
    if missing:
        raise DataUnavailableError(
            f"file {location} has no column "
            + ", ".join(f"{column!r} (for {field})" for field, column in missing.items())
            + f"; its columns are: {', '.join(map(str, columns))}. Fix options.columns "
            "(task field: file column)"
        )
    records = []
    for index, row in enumerate(rows):
        record = {}
        for field, column in wanted.items():
            value = row.get(column)
            if isinstance(value, float) and value != value:  # NaN: pandas' and Parquet's null
                value = None
            if isinstance(value, bool | int | float):
                value = str(value)
            if not isinstance(value, str):
                got = "nothing" if value is None else f"a {type(value).__name__} ({value!r:.60})"
                raise DataUnavailableError(
                    f"file {location} row {index + 1}: column {column!r} (for {field}) holds "
                    f"{got}, not text or a number: fix the row or map another column"
                )
            if not value.strip():
                raise DataUnavailableError(
                    f"file {location} row {index + 1}: column {column!r} (for {field}) is "
                    "empty: fill or drop the row"
                )
            record[field] = value
        records.append(record)
    return records
