"""What a CUDA run saves where the CPU kernels the activation trace runs would save otherwise.

The trace (harness/memory/estimate.py) runs CPU kernels on fake tensors. For a GPU estimate three
CPU behaviours differ from CUDA's, each enough to move a peak by tens of percent:

- Autocast op lists. CUDA's autocast runs a list of ops in fp32 (pow, rsqrt, exp, log,
  layer_norm, softmax, log_softmax, sum, cumsum, ...: torch's autocast_mode.cpp, `fp32` and
  `fp32_set_opt_dtype`); CPU's fp16 autocast leaves them in half precision. GPT-2's LayerNorm and
  its tanh-GELU (`torch.pow(x, 3.0)`) therefore run, and save their inputs, in fp32 on a GPU.
- Dropout. CPU dropout multiplies by a noise tensor of the input's dtype and saves it; CUDA's
  fused `native_dropout` saves a one-byte boolean mask. LoRA's dropout runs on the fp32 copy of
  the input (PEFT casts to the adapter dtype), so the difference is 3 bytes per element.
- Attention with dropout. CPU SDPA with `dropout_p > 0` falls back to the math path, which
  saves batch x heads x length x length probabilities (GPT-2: attn_pdrop 0.1); CUDA's flash and
  memory-efficient kernels apply dropout inside the kernel and save q, k, v, the output and the
  log-sum-exp, as the CPU fused kernel does without dropout. A padding mask (which sends the CPU
  to the math path too) enters the memory-efficient kernel as a bias and changes nothing saved.

`CudaKernels` is a TorchFunctionMode active during the trace of a GPU estimate that does each of
these the CUDA way on the CPU: the saved tensors then have CUDA's dtypes and sizes.
"""

from __future__ import annotations

from typing import Any

from torch.overrides import TorchFunctionMode

# CUDA autocast's fp32 ops (`fp32` and `fp32_set_opt_dtype` in aten/src/ATen/autocast_mode.cpp),
# by the name they have at the torch-function level (function, method or operator).
CUDA_FP32_OPS = frozenset(
    [
        "acos",
        "asin",
        "cosh",
        "erfinv",
        "exp",
        "expm1",
        "log",
        "log10",
        "log2",
        "log1p",
        "reciprocal",
        "rsqrt",
        "sinh",
        "tan",
        "pow",
        "__pow__",
        "__rpow__",
        "softplus",
        "layer_norm",
        "group_norm",
        "cosine_similarity",
        "poisson_nll_loss",
        "cosine_embedding_loss",
        "nll_loss",
        "hinge_embedding_loss",
        "kl_div",
        "l1_loss",
        "smooth_l1_loss",
        "huber_loss",
        "mse_loss",
        "margin_ranking_loss",
        "multilabel_margin_loss",
        "soft_margin_loss",
        "triplet_margin_loss",
        "multi_margin_loss",
        "binary_cross_entropy_with_logits",
        "dist",
        "pdist",
        "cdist",
        "renorm",
        "logsumexp",
        "prod",
        "softmax",
        "log_softmax",
        "cumprod",
        "cumsum",
        "sum",
    ]
)


def _upcast(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor) and value.dtype in (torch.float16, torch.bfloat16):
        return value.float()
    if isinstance(value, (list, tuple)):
        return type(value)(_upcast(v) for v in value)
    return value


class CudaKernels(TorchFunctionMode):
    """During a GPU estimate's trace: CUDA's autocast fp32 list, fused dropout and fused
    attention (see the module docstring)."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        import torch

        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in CUDA_FP32_OPS and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return func(*_upcast(args), **_upcast(kwargs))
        if name == "dropout" and func is torch.nn.functional.dropout:
            return _fused_dropout(*args, **kwargs)
        if name == "scaled_dot_product_attention":
            return _fused_attention(func, *args, **kwargs)
        return func(*args, **kwargs)


def _fused_attention(
    func: Any,
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    **rest: Any,
) -> Any:
    """CUDA's flash / memory-efficient kernels: dropout inside the kernel (an RNG seed is all
    they keep for it); a mask enters the memory-efficient kernel as a bias it reads, allocated
    once outside the blocks. Either way q, k, v, the output and the log-sum-exp are saved, as the
    CPU's fused causal kernel saves them."""
    if attn_mask is not None and query.shape[-2] == key.shape[-2]:
        attn_mask, is_causal = None, True
    return func(query, key, value, attn_mask, 0.0, is_causal, **rest)


def _fused_dropout(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Any:
    import torch

    if not training or p == 0.0:
        return input
    if p >= 1.0:
        return torch.zeros_like(input)
    return torch.ops.aten.native_dropout(input, p, True)[0]
