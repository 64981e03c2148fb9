"""Training speed and loss: our Trainer against nanoGPT's train.py, on tinyshakespeare at character level.

    python bench/bench_nanogpt.py --nanogpt /path/to/nanoGPT [--iters 2000] [--threads N] [--out-json FILE]

Both train nanoGPT's documented CPU configuration: 4 layers, 4 heads, d_model 128, context 64, batch 12,
lr 1e-3 (warmup 100, cosine to 1e-4), beta2 0.99, weight decay 0.1, grad clip 1, dropout 0, evaluated
every 250 steps on 20 batches of 12 from each split. Ours is the `shakespeare-char` recipe, trained in
this process; nanoGPT is its own `train.py`, run unchanged in a subprocess with the README's command
(plus --out_dir, --always_save_checkpoint=True so the last step's weights are kept, and --max_iters /
--lr_decay_iters for --iters). The nanoGPT checkout is never copied into this repository: its
train.py, model.py, configurator.py and config/ go to a temp directory, beside a
data/shakespeare_char/ written from our packaged corpus and character vocabulary (the same 90/10 split
and sorted-characters ids that its prepare.py makes), so both read exactly the same tokens.

Reported for each: tokens/s from the median step time (steps after the first 10, leaving out steps
that include an evaluation), wall time, and the validation loss at each evaluation, the last one being
the target's "final validation loss". The full validation set (every token once) is also scored for
both models after training, ours with LanguageModelTask.evaluate(final=True) and nanoGPT's final
checkpoint (loaded with weights_only=True) through the same function. Both use the same number of
torch threads (OMP_NUM_THREADS for the subprocess). Target: ours at least as fast per token, with
equal or better validation loss at equal steps.

Small differences remain, and are reported rather than hidden: nanoGPT runs iterations 0..N and
evaluates before each multiple of 250, so it also evaluates at step 0 and takes one update after its
last evaluation; its warmup reaches lr at step 100 by (it+1)/(warmup+1) and its cosine ends at step N,
ours by (step+1)/warmup and at step N-1; its LayerNorms have no bias (ours do: 9 x 128 more
parameters); and the seeds differ (its torch seed 1337 for weights and batches, our seed 0), so the
two see different batches and one run each says little about loss differences of a few hundredths.

Credit: nanoGPT by Andrej Karpathy (MIT); its CPU config from its README.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from llm_workings.atomic import write_json
from llm_workings.data import load_corpus
from llm_workings.tokenizers import CharTokenizer
from llm_workings.train import LanguageModelTask, Trainer
from llm_workings.transformer import Transformer
from llm_workings.zoo import build_task, get_recipe

BATCH, BLOCK, EVAL_EVERY, EVAL_ITERS, SETTLE = 12, 64, 250, 20, 10
README_ARGS = [
    "config/train_shakespeare_char.py",
    "--device=cpu",
    "--compile=False",
    "--eval_iters=20",
    "--log_interval=1",
    "--block_size=64",
    "--batch_size=12",
    "--n_layer=4",
    "--n_head=4",
    "--n_embd=128",
    "--max_iters=2000",
    "--lr_decay_iters=2000",
    "--dropout=0.0",
]
ITER = re.compile(r"iter (\d+): loss ([-\d.naif]+), time ([\d.]+)ms")
EVAL = re.compile(r"step (\d+): train loss ([-\d.naif]+), val loss ([-\d.naif]+)")


def tokens_per_s(step_seconds: list[float], eval_every: int) -> float:
    """batch * block over the median step time, leaving out the first steps and those with an evaluation."""
    kept = [s for i, s in enumerate(step_seconds) if i >= SETTLE and i % eval_every]
    return BATCH * BLOCK / statistics.median(kept)


# -- nanoGPT --------------------------------------------------------------------------------------
def prepare_nanogpt(checkout: Path, work: Path, tok: CharTokenizer, corpus) -> None:
    """nanoGPT's scripts, and our corpus in its data format, in the working directory `work`."""
    for name in ("train.py", "model.py", "configurator.py"):
        shutil.copy(checkout / name, work / name)
    shutil.copytree(checkout / "config", work / "config")
    data = work / "data" / "shakespeare_char"
    data.mkdir(parents=True)
    tok.encode_array(corpus.train).astype(np.uint16).tofile(data / "train.bin")
    tok.encode_array(corpus.val).astype(np.uint16).tofile(data / "val.bin")
    meta = {"vocab_size": tok.vocab_size, "itos": dict(enumerate(tok.chars)), "stoi": dict(tok.ids)}
    (data / "meta.pkl").write_bytes(pickle.dumps(meta))


def run_nanogpt(work: Path, iters: int, eval_every: int, warmup: int, threads: int) -> dict:
    extra = [
        f"--max_iters={iters}",
        f"--lr_decay_iters={iters}",
        f"--eval_interval={eval_every}",
        f"--warmup_iters={warmup}",
        "--out_dir=out",
        "--always_save_checkpoint=True",
    ]
    replaced = {a.split("=")[0] for a in extra}
    args = [a for a in README_ARGS if a.split("=")[0] not in replaced] + extra
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    print("nanoGPT:", "python train.py", " ".join(args), f"(OMP_NUM_THREADS={threads})", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "train.py", *args], cwd=work, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    log: list[tuple[float, str]] = []  # (seconds since launch, line)
    for line in proc.stdout:
        log.append((time.perf_counter() - started, line.rstrip("\n")))
    if proc.wait():
        raise SystemExit("nanoGPT's train.py failed:\n" + "\n".join(line for _, line in log[-30:]))
    process_wall = time.perf_counter() - started
    iters_seen = [(int(m[1]), float(m[2]), float(m[3]) / 1000) for _, l in log if (m := ITER.match(l))]
    evals = [
        {"step": int(m[1]), "train_loss": float(m[2]), "val_loss": float(m[3]), "at": t} for t, l in log if (m := EVAL.match(l))
    ]
    first = next(t for t, l in log if l.startswith("tokens per iteration"))  # after imports and config
    final = next(e for e in evals if e["step"] == iters)  # the estimate after `iters` updates
    others = [line for _, line in log if not (ITER.match(line) or EVAL.match(line))]
    return {
        "losses": [loss for _, loss, _ in iters_seen],
        "evals": evals,
        "other_output": others,
        "tokens_per_s": tokens_per_s([dt for _, _, dt in iters_seen], eval_every),
        "startup_s": first,
        "wall_s": final["at"] - first,
        "process_wall_s": process_wall,
        "val_loss": final["val_loss"],
        "updates": len(iters_seen),
    }


class NanoGPTLogits(torch.nn.Module):
    """nanoGPT's GPT behind our task's interface: logits at every position (its forward only gives
    them all when targets are passed; the targets are ignored here) and a W_E to find the device."""

    def __init__(self, gpt: torch.nn.Module) -> None:
        super().__init__()
        self.gpt, self.W_E = gpt, gpt.transformer.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        idx = idx.contiguous()
        return self.gpt(idx, idx)[0]


def nanogpt_full_val(work: Path, task: LanguageModelTask) -> tuple[float | None, str]:
    """The full-validation loss of nanoGPT's saved weights, or None and the reason it could not be had."""
    try:
        ckpt = torch.load(work / "out" / "ckpt.pt", map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, OSError) as e:  # refused (a non-tensor object) or missing: report no figure
        return None, f"weights_only load refused: {type(e).__name__}: {str(e).splitlines()[0]}"
    spec = importlib.util.spec_from_file_location("nanogpt_model", work / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its parameter count
        gpt = module.GPT(module.GPTConfig(**ckpt["model_args"]))
    gpt.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()})
    return task.evaluate(NanoGPTLogits(gpt).eval(), final=True)["val_loss"], f"checkpoint of step {ckpt['iter_num']}"


# -- ours -----------------------------------------------------------------------------------------
def run_ours(iters: int, eval_every: int, warmup: int, tok: CharTokenizer, seed: int = 0) -> tuple[dict, LanguageModelTask]:
    recipe = get_recipe("shakespeare-char").with_overrides(
        {"steps": str(iters), "eval_every": str(eval_every), "warmup_steps": str(warmup)}
    )
    task = build_task(recipe, tok)
    task.eval_batches, task.eval_batch_size = EVAL_ITERS, BATCH  # nanoGPT's eval_iters=20 batches of 12
    started = time.perf_counter()
    model = Transformer(recipe.model_config(), tok).init_weights(seed)
    result = Trainer(model, task, recipe.train_config(), run_dir=None, progress=False).train(resume=False)
    wall = time.perf_counter() - started
    steps = getattr(result, "step_seconds", None)
    rate = tokens_per_s(steps, eval_every) if steps else len(result.losses) * BATCH * BLOCK / result.seconds
    final = result.evals[-1]
    full = task.evaluate(model, final=True)
    return {
        "losses": result.losses,
        "evals": result.evals,
        "tokens_per_s": rate,
        "rate_from": "median step" if steps else "whole run",
        "wall_s": wall,
        "val_loss": final["val_loss"],
        "full_val_loss": full["val_loss"],
        "full_val_bits_per_byte": full["val_bits_per_byte"],
        "updates": len(result.losses),
    }, task


# -- report ---------------------------------------------------------------------------------------
def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nanogpt", type=Path, required=True, help="a local nanoGPT checkout (train.py, model.py, ...)")
    parser.add_argument("--iters", type=int, default=2000, help="optimizer steps for both (README: 2000)")
    parser.add_argument(
        "--threads", type=int, default=torch.get_num_threads(), help="torch threads for both (default: torch's default here)"
    )
    parser.add_argument("--out-json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if args.iters < 2 * SETTLE or (args.iters > EVAL_EVERY and args.iters % EVAL_EVERY):
        parser.error(
            f"--iters must be {2 * SETTLE}..{EVAL_EVERY} or a multiple of {EVAL_EVERY}: nanoGPT evaluates only at "
            "multiples of its eval_interval, and both runs must end on an evaluation"
        )
    if not (args.nanogpt / "train.py").is_file():
        parser.error(f"{args.nanogpt} has no train.py; give the path of a nanoGPT checkout")
    torch.set_num_threads(args.threads)
    # short smoke runs still end on an evaluation, and warm up for at most all their steps (the same for both)
    eval_every, warmup = min(EVAL_EVERY, args.iters), min(get_recipe("shakespeare-char").train["warmup_steps"], args.iters // 2)
    corpus = load_corpus("tinyshakespeare")
    tok = CharTokenizer.train(corpus.text)
    print(
        f"torch {torch.__version__}, {args.threads} threads, {args.iters} iterations, "
        f"{BATCH}x{BLOCK} = {BATCH * BLOCK} tokens per step",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="bench-nanogpt-") as tmp:
        work = Path(tmp)
        prepare_nanogpt(args.nanogpt, work, tok, corpus)
        nano = run_nanogpt(work, args.iters, eval_every, warmup, args.threads)
        print("ours: shakespeare-char recipe, in process", flush=True)
        ours, task = run_ours(args.iters, eval_every, warmup, tok)
        nano["full_val_loss"], nano["full_val_note"] = nanogpt_full_val(work, task)

    unexpected = [line for line in nano["other_output"] if "warn" in line.lower()]
    if unexpected:
        print("nanoGPT also printed:\n  " + "\n  ".join(unexpected))
    print(
        f"\nnanoGPT: {nano['updates']} updates logged (iterations 0..{args.iters}: it also evaluates at step 0, "
        f"and updates once after its last evaluation); interpreter + imports before training "
        f"{nano['startup_s']:.1f}s, not in its wall time"
    )
    print("\nvalidation loss (20 random batches of 12) at equal steps")
    print(f"{'step':>6} {'nanoGPT':>9} {'ours':>9}")
    ours_at = {e["step"]: e["val_loss"] for e in ours["evals"]}
    for e in nano["evals"]:
        if e["step"] in ours_at:
            print(f"{e['step']:>6} {e['val_loss']:>9.4f} {ours_at[e['step']]:>9.4f}")
    full_note = "" if nano["full_val_loss"] is not None else f"  (nanoGPT: {nano['full_val_note']})"
    print(f"\n{'':<28}{'nanoGPT':>12}{'ours':>12}")
    for label, key, f in (
        ("tokens/s (median step)", "tokens_per_s", ",.0f"),
        ("wall time, s", "wall_s", ".1f"),
        (f"val loss at step {args.iters}", "val_loss", ".4f"),
        ("full validation loss", "full_val_loss", ".4f"),
    ):
        print(f"{label:<28}{_fmt(nano[key], f):>12}{_fmt(ours[key], f):>12}")
    for r in (nano, ours):  # both walls end with the evaluation after `iters` updates
        r["wall_tokens_per_s"] = args.iters * BATCH * BLOCK / r["wall_s"]
    print(f"{'tokens/s (wall, with evals)':<28}{nano['wall_tokens_per_s']:>12,.0f}{ours['wall_tokens_per_s']:>12,.0f}{full_note}")
    speed = ours["tokens_per_s"] / nano["tokens_per_s"]
    gap = ours["val_loss"] - nano["val_loss"]
    print(f"\nours / nanoGPT tokens/s: {speed:.3f}   ours - nanoGPT val loss at step {args.iters}: {gap:+.4f}")
    if nano["full_val_loss"] is not None:
        print(f"ours - nanoGPT full validation loss: {ours['full_val_loss'] - nano['full_val_loss']:+.4f}")
    print(
        f"target: ratio >= 1 and loss difference <= 0 -> speed {'met' if speed >= 1 else 'NOT met'}, "
        f"loss {'met' if gap <= 0 else 'NOT met'} (one seed each; the 20-batch estimate is noisy)"
    )
    if args.out_json:
        figures = {
            "iters": args.iters,
            "threads": args.threads,
            "torch": torch.__version__,
            "ours": {k: v for k, v in ours.items() if k != "losses"},
            "nanogpt": {k: v for k, v in nano.items() if k not in ("losses", "other_output")},
            "speed_ratio": speed,
            "val_loss_difference": gap,
        }
        write_json(args.out_json, figures)


if __name__ == "__main__":
    main()
