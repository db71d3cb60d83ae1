"""The transformer blocks of a model: found once for every method that trains some of them,
for the memory trace, and for freeze tuning of decoders and encoders alike."""

from __future__ import annotations

from typing import Any


def transformer_blocks(model: Any) -> Any:
    """The ModuleList of transformer blocks (model.model.layers for Llama/Qwen, transformer.h for
    GPT-2, encoder.layer for BERT)."""
    import torch

    candidates = [
        module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.ModuleList)
        and name.split(".")[-1] in {"layers", "h", "blocks", "layer"}
    ]
    if not candidates:
        raise ValueError(f"cannot find the transformer blocks of {type(model).__name__}")
    return max(candidates, key=len)


def train_last_blocks(model: Any, n_layers: int) -> dict[str, Any]:
    """Freeze everything, then unfreeze the last `n_layers` blocks; notes for the run."""
    model.requires_grad_(False)
    blocks = transformer_blocks(model)
    if n_layers > len(blocks):
        raise ValueError(f"freeze.n_layers={n_layers} but the model has {len(blocks)} blocks")
    for block in list(blocks)[len(blocks) - n_layers :]:
        block.requires_grad_(True)
    return {"trained_blocks": n_layers, "total_blocks": len(blocks)}
