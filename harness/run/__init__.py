"""Running: a plan's runs, each in its own process, each result written and ingested.

- runner.py      schedules a plan's runs on an executor; ingests each finished run; resume
- executors/     where runs execute: local (one process at a time) and Ray
- launch.py      starting a run's process (a fork of a warm interpreter, or a fresh one)
- worker.py      the run process's entry: whatever happens inside, a result.json comes out
- runlock.py     one live process per run folder
- lifecycle.py   the one run lifecycle: RunSpec in, RunResult out, whatever the backend
- determinism.py, speed.py, provenance.py   seeds, step timing, what the run ran on
- trial.py       the run side of a tuning trial (intermediate reports, pruning)
- repro.py       re-running a finished run and comparing
"""
