"""Task arithmetic on shakespeare-char: τ_austen (fine-tuned on Austen's characters) and τ_shakespeare
(trained further on its own corpus), each swept over λ, negated, and added together, with both
domains' validation losses measured for every edited model.

    python scripts/task_arithmetic.py [--steps 60] [--out docs/figures]

Writes finetune-task-arithmetic.json to --out and prints Markdown tables for docs/finetune.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from llm_workings.analysis.results import to_jsonable
from llm_workings.atomic import write_json
from llm_workings.finetune import TaskVector, finetune, sweep
from llm_workings.finetune.forgetting import DomainShiftTask, domain_shift
from llm_workings.train import TrainConfig
from llm_workings.zoo import load

SCALES = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5)


def tuned(task: DomainShiftTask, steps: int, lr: float, batch_size: int):
    model, _ = load("shakespeare-char")
    finetune(
        model,
        task,
        TrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup_steps=steps // 10, eval_every=steps),
        progress=False,
    )
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    austen = domain_shift("shakespeare-char", "austen", eval_batches=4, eval_batch_size=32)
    own = DomainShiftTask(austen.original, austen.original)  # trains on Shakespeare itself
    base, _ = load("shakespeare-char")
    tau = {
        "austen": TaskVector.between(base, tuned(austen, args.steps, args.lr, args.batch_size)),
        "shakespeare": TaskVector.between(base, tuned(own, args.steps, args.lr, args.batch_size)),
    }
    tau["austen + shakespeare"] = tau["austen"] + tau["shakespeare"]
    metrics = {
        "austen": lambda m: austen.target.split_loss(m, "val"),
        "shakespeare": lambda m: austen.original.split_loss(m, "val"),
    }
    results = {name: sweep(base, vector, SCALES, metrics) for name, vector in tau.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "finetune-task-arithmetic.json", to_jsonable(results), indent=1)
    for name, rows in results.items():
        print(f"\nθ_base + λ τ_{name}  (|τ| = {tau[name].norm():.3f})\n")
        print("| λ | Austen val loss | Shakespeare val loss |\n| ---: | ---: | ---: |")
        for row in rows:
            print(f"| {row['scale']:+.1f} | {row['austen']:.3f} | {row['shakespeare']:.3f} |")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
