"""Worker side of tuning: report the validation metric to the trial at intervals, stop if pruned.

The run process opens the study's storage itself (a journal file, safe across processes, or an
Optuna RDB URL every node reaches), so a trial stays an ordinary isolated run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from harness.suite.search_space import TrialRef


def open_trial(ref: TrialRef) -> Any:
    import optuna

    storage = open_storage(ref.storage)
    study = optuna.load_study(
        study_name=ref.study_name, storage=storage, pruner=ref.pruner.build(ref.max_reports)
    )
    study_id = storage.get_study_id_from_name(ref.study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, ref.number)
    return optuna.trial.Trial(study, trial_id)


class TrialReporter(TrainerCallback):
    def __init__(self, ref: TrialRef, evaluate: Callable[[Any], dict[str, float]]) -> None:
        self.ref = ref
        self.evaluate = evaluate
        self.trial = open_trial(ref)
        self.intermediate: list[dict[str, float]] = []
        self.pruned_at: int | None = None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        step = state.global_step
        if step % self.ref.eval_every or step >= state.max_steps:
            return  # the final score is the run's own validation evaluation
        was_training = model.training
        value = self.evaluate(model)[self.ref.metric]
        model.train(was_training)
        self.intermediate.append({"step": step, "value": value})
        self.trial.report(value, step)
        if self.trial.should_prune():
            self.pruned_at = step
            control.should_training_stop = True


def journal_storage(path: str) -> Any:
    """Optuna's journal storage on a file: safe across processes, readable by optuna-dashboard."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(path))


def open_storage(where: str) -> Any:
    """A study's storage: an Optuna storage URL (sqlite:///x.db, postgresql://..., redis via
    optuna's own URL forms) or a journal file path."""
    if "://" in where:
        import optuna

        return optuna.storages.get_storage(where)
    return journal_storage(where)
