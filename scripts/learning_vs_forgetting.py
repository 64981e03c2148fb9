"""Fine-tune shakespeare-char on Austen's characters by full fine-tuning and by LoRA at several ranks and
targets, and draw learning (Austen validation loss) against forgetting (Shakespeare validation loss).

    python scripts/learning_vs_forgetting.py [--steps 60] [--out docs/figures]

Writes finetune-learning-forgetting.svg and .json to --out and prints a Markdown table for
docs/finetune.md. One thread, a few minutes on an idle two-core CPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from llm_workings.finetune import LoRAConfig
from llm_workings.finetune.forgetting import Method, domain_shift, learning_vs_forgetting

EVERY = ("attn.qkv", "attn.o", "mlp.in", "mlp.out")


def methods(full_lr: float, lora_lr: float) -> list[Method]:
    return [
        Method("full fine-tuning", None, full_lr),
        *(Method(f"LoRA r={r}, all maps", LoRAConfig(rank=r, alpha=2 * r, targets=EVERY), lora_lr) for r in (1, 4, 16)),
        Method("LoRA r=4, attention only", LoRAConfig(rank=4, alpha=8, targets=("attn.qkv", "attn.o")), lora_lr),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--full-lr", type=float, default=3e-4)
    parser.add_argument("--lora-lr", type=float, default=3e-3)
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    task = domain_shift("shakespeare-char", "austen", eval_batches=4, eval_batch_size=32)
    result = learning_vs_forgetting(
        "shakespeare-char", task, methods(args.full_lr, args.lora_lr), args.steps, args.batch_size, args.eval_every
    )
    args.out.mkdir(parents=True, exist_ok=True)
    result.plot(args.out / "finetune-learning-forgetting.svg")
    result.save_json(args.out / "finetune-learning-forgetting.json")
    print("| method | trained parameters | Austen val loss (start -> end) | Shakespeare val loss (start -> end) |")
    print("| --- | ---: | --- | --- |")
    for c in result.curves:
        print(
            f"| {c.label} | {c.trainable:,} | {c.target_val_loss[0]:.3f} -> {c.target_val_loss[-1]:.3f} "
            f"| {c.original_val_loss[0]:.3f} -> {c.original_val_loss[-1]:.3f} |"
        )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
