"""Right-padded batches of token ids, shared by the scoring loops (reward models, forgetting)."""

from __future__ import annotations

from typing import Any


def pad_right(sequences: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) of the sequences, padded on the right to the longest."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids, mask
