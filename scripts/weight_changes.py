"""What full fine-tuning and LoRA changed in shakespeare-char's weights after learning Austen: per
method, the change's size, rank and effective rank, and the intruder dimensions, over every map.

    python scripts/weight_changes.py [--steps 60]

Same runs as scripts/learning_vs_forgetting.py (60 steps of 16 windows; full at lr 3e-4, LoRA at
3e-3 with alpha = 2r). Prints a Markdown table for docs/finetune.md.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from llm_workings.finetune import LoRAConfig, finetune, weight_changes
from llm_workings.finetune.forgetting import domain_shift
from llm_workings.train import TrainConfig
from llm_workings.zoo import load

EVERY = ("attn.qkv", "attn.o", "mlp.in", "mlp.out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = domain_shift("shakespeare-char", "austen", eval_batches=1, eval_batch_size=4)
    base, _ = load("shakespeare-char")
    print("| method | mean ‖ΔW‖/‖W₀‖ | median rank of ΔW (of 128) | mean effective rank | intruders in the top 10, all 24 maps |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, lora, lr in [
        ("full fine-tuning", None, 3e-4),
        ("LoRA r=1", LoRAConfig(rank=1, alpha=2, targets=EVERY), 3e-3),
        ("LoRA r=4", LoRAConfig(rank=4, alpha=8, targets=EVERY), 3e-3),
        ("LoRA r=16", LoRAConfig(rank=16, alpha=32, targets=EVERY), 3e-3),
    ]:
        model, _ = load("shakespeare-char")
        cfg = TrainConfig(steps=args.steps, batch_size=16, lr=lr, warmup_steps=args.steps // 10, eval_every=args.steps)
        finetune(model, task, cfg, lora=lora, progress=False)
        changes = weight_changes(base, model).modules
        print(
            f"| {label} | {statistics.mean(m.relative_norm for m in changes):.4f} "
            f"| {statistics.median(m.rank for m in changes):.0f} | {statistics.mean(m.effective_rank for m in changes):.1f} "
            f"| {sum(len(m.intruders) for m in changes)} |"
        )


if __name__ == "__main__":
    main()
