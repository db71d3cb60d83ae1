"""Test-only data source: records from a JSON-lines file, so a test can change a run's input."""

from __future__ import annotations

import json
from pathlib import Path

from harness.backends.data import DATA_SOURCES, DataSource
from harness.suite.config import StrictModel


class JsonlOptions(StrictModel):
    path: str


@DATA_SOURCES.register_instance("jsonl_file")
class JsonlFile(DataSource):
    Options = JsonlOptions
    fields = ()

    def load(self, options: JsonlOptions) -> list[dict[str, str]]:
        lines = Path(options.path).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
