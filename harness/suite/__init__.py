"""The suite: what a user declares, as types. Nothing here runs anything.

- config.py          the strict pydantic base every suite block uses
- registry.py        the one registry helper and plug-in loading
- spec.py            RunSpec (one fully resolved run; its hash is the run_id) and its blocks
- suite_file.py      the suite YAML: schema, loading, checks, expansion into RunSpecs
- tasks.py, metrics.py   what a task's records are and what it reports (direction included)
- budget_profile.py  the `budget:` block (T4 and custom memory budgets)
- search_space.py    the `tune:` block and per-method search spaces
- executor_config.py the `executor:` block
"""
