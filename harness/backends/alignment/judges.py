"""The independent judge: a sentiment scorer of another kind than the trained reward models.

The trained judge is the proxy's recipe (a Bradley-Terry head on other reviews, another seed):
a policy that exploits the proxy's inductive biases may fool it the same way. The independent
judge shares neither recipe nor data with the proxy, and scores every policy beside it
(`indep_judge_score`, `indep_win_rate`). Kinds (a policy method's `independent_judge: {kind}`):

- `lexicon` (the default, offline): VADER (vaderSentiment, Hutto & Gilbert 2014), a
  hand-built lexicon with rules for negation, intensifiers and punctuation; the score is its
  `compound` polarity in [-1, 1]. It runs on the CPU and holds no GPU memory.
- `classifier`: a pretrained sentiment classifier by hub id (e.g. lvwerra/distilbert-imdb, the
  TRL sentiment example's, or siebert/sentiment-roberta-large-english, the DPO paper's IMDb
  judge); the score is the softmax probability of its `positive_label`. Needs the hub: not
  exercised offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import model_validator

from harness.models import load_tokenizer, resolve_model
from harness.suite.config import StrictModel
from harness.suite.registry import Registry
from harness.suite.spec import ModelSpec


class IndependentJudge(StrictModel):
    kind: Literal["lexicon", "classifier"] = "lexicon"
    model: ModelSpec | None = None  # classifier: the hub model (pin its revision)
    positive_label: str = "positive"  # classifier: the label whose probability is the score

    @model_validator(mode="after")
    def _model_for_classifier(self) -> IndependentJudge:
        if (self.kind == "classifier") != (self.model is not None):
            raise ValueError(
                "independent_judge.model: give a sentiment classifier's model with kind "
                "'classifier' (e.g. {hub: lvwerra/distilbert-imdb, revision: <commit>}), and "
                "none with kind 'lexicon'"
            )
        return self


JUDGE_KINDS: Registry[Any] = Registry("independent judge kind")


@JUDGE_KINDS.register("lexicon")
@dataclass
class LexiconJudge:
    """VADER's compound polarity of each text."""

    analyzer: Any

    @classmethod
    def load(cls, config: IndependentJudge, device: str, batch_size: int) -> LexiconJudge:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return cls(SentimentIntensityAnalyzer())

    def score(self, texts: list[str]) -> list[float]:
        return [float(self.analyzer.polarity_scores(t)["compound"]) for t in texts]


@JUDGE_KINDS.register("classifier")
@dataclass
class ClassifierJudge:
    """A pretrained sentiment classifier: the probability of its positive label."""

    model: Any
    tokenizer: Any
    positive: int
    batch_size: int

    @classmethod
    def load(cls, config: IndependentJudge, device: str, batch_size: int) -> ClassifierJudge:
        from transformers import AutoModelForSequenceClassification

        resolved = resolve_model(config.model)
        model = AutoModelForSequenceClassification.from_pretrained(
            resolved.location, **resolved.from_pretrained_kwargs()
        )
        labels = {str(v).lower(): int(k) for k, v in model.config.id2label.items()}
        if config.positive_label.lower() not in labels:
            raise ValueError(
                f"independent_judge.positive_label {config.positive_label!r}: the classifier's "
                f"labels are {sorted(labels)}; set positive_label to one of them"
            )
        model = model.to(device).eval().requires_grad_(False)
        positive = labels[config.positive_label.lower()]
        return cls(model, load_tokenizer(resolved), positive, batch_size)

    def score(self, texts: list[str]) -> list[float]:
        import torch

        out: list[float] = []
        device = next(self.model.parameters()).device
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size], padding=True, truncation=True,
                    max_length=512, return_tensors="pt",
                ).to(device)  # fmt: skip
                probs = self.model(**batch).logits.float().softmax(-1)[:, self.positive]
                out += probs.tolist()
        return out


def load_judge(config: IndependentJudge, device: str, batch_size: int) -> Any:
    """The independent judge `config` names: an object with score(texts) -> list[float]."""
    return JUDGE_KINDS.get(config.kind).load(config, device, batch_size)
