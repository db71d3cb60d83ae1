"""The plan: how every run of a suite will run, decided once before anything runs.

- plan.py    the plan: --only selection, budget verdicts and adjustments, upstream stages,
             availability (ls, plan, run, tune and lock all go through it)
- budget.py  pre-flight memory verdicts against the suite's budget, and adjustments
- lock.py    lock files: a suite's resolved runs and inputs, pinned
"""
