"""Training in the lab against `llmw train`: tokens per second of the same short run of a recipe.

    python bench/bench_lab_training.py [--recipe induction-2l] [--steps 300] [--repeats 3]

Each repeat trains the recipe once as a lab job (POST /api/jobs on a served lab; the run in a child
process, progress streamed back) and once with `llmw train` in a subprocess, alternating which goes
first. Both speeds are the run's tokens over the trainer's own `training_seconds` on its card (the
same clock for both, evaluations and snapshots included, process start-up left out); the lab's
streamed tokens/s (updates only) and both end-to-end wall times are printed beside them. Target:
the lab at least 0.9x of the command line.

The lab's child trains on all cores but one (`training.train_recipe`: on a busy machine a second
OpenMP thread makes every small matmul wait out a scheduler slice), so the command line is given
the same count (`OMP_NUM_THREADS`) and the two differ only in what the lab adds: the child process,
its progress over a pipe, the server beside it. `--cli-threads default` leaves torch's own choice.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import serve_in_thread
from llm_workings.zoo import get_recipe
from llm_workings.zoo.recipes import build_task, build_tokenizer


def tokens_per_run(recipe_name: str, steps: int) -> int:
    recipe = get_recipe(recipe_name)
    task = build_task(recipe, build_tokenizer(recipe))
    return steps * task.tokens_per_batch(recipe.train.get("batch_size", 32)) * recipe.train.get("grad_accum", 1)


def card_speed(run: Path, tokens: int) -> float:
    return tokens / json.loads((run / "card.json").read_text())["training_seconds"]


def cli_run(recipe: str, steps: int, out: Path, tokens: int, threads: str) -> dict[str, float]:
    start = time.perf_counter()
    command = [sys.executable, "-m", "llm_workings", "train", recipe, f"--steps={steps}", "--out", str(out), "--no-progress"]
    env = dict(os.environ, **({} if threads == "default" else {"OMP_NUM_THREADS": threads}))
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return {"tokens_per_second": card_speed(out, tokens), "wall": time.perf_counter() - start}


def lab_run(client: httpx.Client, runs: Path, recipe: str, steps: int, name: str, tokens: int) -> dict[str, float]:
    start = time.perf_counter()
    body = {"kind": "train", "recipe": recipe, "name": name, "overrides": {"steps": steps}}
    job = client.post("/api/jobs", json=body).raise_for_status().json()
    while (view := client.get(f"/api/jobs/{job['id']}").json())["state"] in ("queued", "running"):
        time.sleep(0.05)
    if view["state"] != "done":
        raise RuntimeError(f"the lab's run ended {view['state']}: {view['error']}")
    wall = time.perf_counter() - start
    streamed = view["metrics"]["tokens_per_second"]
    return {"tokens_per_second": card_speed(runs / name, tokens), "wall": wall, "streamed": streamed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="induction-2l", choices=["induction-2l", "modadd-113", "shakespeare-char"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--cli-threads", default=str(max(1, (os.cpu_count() or 2) - 1)), help="the lab child's count, or 'default'"
    )
    args = parser.parse_args()
    tokens = tokens_per_run(args.recipe, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        lab = serve_in_thread(LabConfig(runs_dir=runs))
        client = httpx.Client(base_url=lab.url, timeout=60)
        lab_results, cli_results = [], []
        try:
            for i in range(args.repeats):
                order = ("lab", "cli") if i % 2 == 0 else ("cli", "lab")
                for side in order:
                    if side == "lab":
                        lab_results.append(lab_run(client, runs, args.recipe, args.steps, f"lab-{i}", tokens))
                    else:
                        cli_results.append(cli_run(args.recipe, args.steps, Path(tmp) / f"cli-{i}", tokens, args.cli_threads))
                print(
                    f"repeat {i + 1}: lab {lab_results[-1]['tokens_per_second']:,.0f} tok/s, cli {cli_results[-1]['tokens_per_second']:,.0f} tok/s"
                )
        finally:
            client.close()
            lab.shutdown()

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    lab_speed, cli_speed = median(lab_results, "tokens_per_second"), median(cli_results, "tokens_per_second")
    print(
        f"\n{args.recipe}, {args.steps} steps, {tokens:,} tokens, median of {args.repeats}; llmw train threads: {args.cli_threads}"
    )
    print(f"{'':24}{'lab job':>14}{'llmw train':>14}")
    print(f"{'tokens/s (card)':24}{lab_speed:>14,.0f}{cli_speed:>14,.0f}")
    print(f"{'tokens/s (lab stream)':24}{median(lab_results, 'streamed'):>14,.0f}{'':>14}")
    print(f"{'wall, start to end (s)':24}{median(lab_results, 'wall'):>14.2f}{median(cli_results, 'wall'):>14.2f}")
    ratio = lab_speed / cli_speed
    print(f"lab / llmw train: {ratio:.2f}x (target >= 0.9x: {'met' if ratio >= 0.9 else 'missed'})")


if __name__ == "__main__":
    main()
