"""Activation memory: the estimator's prediction against what autograd really saves, on CPU.

For each method, a SmolLM2-135M-shaped model (random weights, from the catalogue) is set up by
the method exactly as a run would, and one training forward pass on real tensors is measured with
saved-tensor hooks inside the decoder blocks (harness.memory.measure.saved_block_bytes). The estimator
predicts the same term from fake tensors, in fp32 as ftbench trains on CPU. Prints measured /
predicted per method, in one run: it checks that the fake-tensor trace sees what a real run
saves (dropout masks, storage sharing, frozen layers). A second pass runs both with CUDA's
dropout and attention kernels (harness/memory/cuda_kernels.py), the GPU estimate's terms.

    python benchmarks/memory_calibration.py [--batch 2] [--length 128] [--layers 4]
"""

from __future__ import annotations

import argparse
import sys

from harness.backends.sft.memory import estimate, measured_activation_bytes
from harness.backends.sft.methods import METHODS
from harness.models.architectures import catalogue, config_from_dict
from harness.suite.spec import TrainingConfig

CASES = [  # (label, method, params)
    ("full", "full", {}),
    ("freeze last 2", "freeze", {"n_layers": 2, "train_head": False}),
    ("lora all-linear r8", "lora", {"r": 8}),
    ("lora q,v r8", "lora", {"r": 8, "target_modules": ["q_proj", "v_proj"]}),
    ("ia3", "ia3", {}),
    ("prompt 16", "prompt", {"num_virtual_tokens": 16, "init": "random"}),
    ("prefix 16", "prefix", {"num_virtual_tokens": 16}),
]


def measure(
    config, method_name: str, params: dict, batch: int, length: int, gpu: bool = False
) -> tuple[int, int]:
    """Measured and traced activation bytes (a padded batch); `gpu`: both with CUDA's dropout
    and attention kernels (fp32), the terms a GPU estimate adds to the CPU trace."""
    method = METHODS.get(method_name)
    parsed = method.Params.model_validate(params)
    measured = measured_activation_bytes(config, method, parsed, batch, length, cuda_kernels=gpu)
    training = TrainingConfig(batch_size=batch, max_length=length, precision="fp32")
    device = "cuda" if gpu else "cpu"
    found = estimate(config, method, parsed, training, device=device)
    return measured, found.parts["activations"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument(
        "--layers", type=int, default=4, help="blocks kept (shape per block is exact)"
    )
    args = parser.parse_args(argv)
    values = dict(catalogue()["smollm2-135m"]["config"], num_hidden_layers=args.layers)
    config = config_from_dict(values)
    print(f"SmolLM2-135M shape, {args.layers} blocks, batch {args.batch} x {args.length}, fp32 CPU")
    print(f"{'method':44s} {'measured MB':>12s} {'predicted MB':>13s} {'measured/predicted':>19s}")
    ratios = []
    for gpu in (False, True):
        for label, method, params in CASES:
            measured, predicted = measure(config, method, params, args.batch, args.length, gpu)
            ratios.append(measured / predicted)
            label = f"{label} (CUDA dropout/attention)" if gpu else label
            print(f"{label:44s} {measured / 1e6:12.2f} {predicted / 1e6:13.2f} {ratios[-1]:19.3f}")
    worst = max(abs(r - 1) for r in ratios)
    print(f"\nworst |measured/predicted - 1| = {worst:.3f} (target: within 0.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
