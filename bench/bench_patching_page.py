"""The Patching page's full resid_pre sweep against bench_patching.py's direct call, side by side.

    HF_HUB_OFFLINE=1 python bench/bench_patching_page.py [--rounds N] [--pos P] [--layers L] [--threads T]

A GPT-2-small-shape checkpoint (12 layers, d_model 768, 12 heads, vocab 50257) with random weights
is built offline and saved to a temp directory, as bench_patching.py builds it. The lab serves it
(`--model DIR`, on a thread of this process) and this script does what the page does for one sweep:
POST /api/patching/sweep (which reads the pair, scores both runs, and, the sweep being large, starts
a job), then follows the job's Server-Sent Events to its final state, the rows of every layer
arriving on the way, and reads the result. The time runs from the POST to the final event and
includes the page's extras: both runs scored, attribution patching on the same cells for the
correlation, float32 encoding, JSON.

The direct call is bench_patching.py's: `patch_residual(model, clean, corrupted, metric)` on the
same weights, loaded with `Transformer.from_hf`. The results are compared first (they must be
identical). Rounds alternate the two; medians are reported, and the page's overhead as a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx
import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llm_workings.analysis.metrics import LogitDiff
from llm_workings.analysis.patching import patch_residual
from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import serve_in_thread
from llm_workings.lab.wire import decode_tensor
from llm_workings.transformer import Transformer

TARGET = 1.2  # the page's sweep at most this many times the direct call's time


def page_sweep(client: httpx.Client, body: dict) -> np.ndarray:
    """One sweep as the page runs it; the result's raw metric values [layer, pos]."""
    out = client.post("/api/patching/sweep", json=body)
    out.raise_for_status()
    started = out.json()
    if started["result"] is not None:
        return decode_tensor(started["result"]["values"])
    job = started["job"]["id"]
    with client.stream("GET", f"/api/jobs/{job}/events") as events:
        kind = None
        for line in events.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "state":
                view = json.loads(line.split(":", 1)[1])
                if view["state"] in ("done", "cancelled", "failed"):
                    break
    if view["state"] != "done":
        raise RuntimeError(f"the sweep job ended {view['state']}: {view['error']}")
    return decode_tensor(view["result"]["values"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pos", type=int, default=16, help="sequence length")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = GPT2Config(n_layer=args.layers, bos_token_id=0, eos_token_id=0)
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(1, config.vocab_size, (1, args.pos), generator=gen)
    corrupted = clean.clone()
    corrupted[:, args.pos // 2] = torch.randint(1, config.vocab_size, (1,), generator=gen)
    answers = torch.randint(1, config.vocab_size, (1, 2), generator=gen)
    metric = LogitDiff(answers)
    body = {
        "model": "cli.gpt2-small-random",
        "clean": {"ids": clean[0].tolist()},
        "corrupted": {"ids": corrupted[0].tolist()},
        "answer": {"id": int(answers[0, 0])},
        "wrong": {"id": int(answers[0, 1])},
        "activation": "resid_pre",
    }

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        path = os.path.join(root, "gpt2-small-random")
        torch.manual_seed(0)
        GPT2LMHeadModel(config).eval().save_pretrained(path)
        direct_model = Transformer.from_hf(path).eval()
        server = serve_in_thread(LabConfig(models=(path,)))
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                run(args, client, body, direct_model, clean, corrupted, metric, time.perf_counter() - started)
        finally:
            server.shutdown()


def run(args, client, body, direct_model, clean, corrupted, metric, built_s: float) -> None:
    def direct() -> np.ndarray:
        return patch_residual(direct_model, clean, corrupted, metric, progress=False).values.numpy()

    contestants = {"page (POST, job, events)": lambda: page_sweep(client, body), "direct patch_residual": direct}
    print(
        f"resid_pre patching sweep, GPT-2-small shape ({args.layers} layers, d_model 768), {args.pos} positions = "
        f"{args.layers * args.pos} patched runs; torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"built in {built_s:.0f} s; load average {os.getloadavg()[0]:.1f}"
    )
    results = {name: fn() for name, fn in contestants.items()}  # also the warm-up (the lab loads the model here)
    page, ours = results.values()
    print(f"page == direct over {ours.size} cells: {'PASS' if np.array_equal(page, ours) else 'MISS'}")
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for r in range(args.rounds):
        order = list(contestants) if r % 2 == 0 else list(reversed(contestants))
        for name in order:
            t0 = time.perf_counter()
            contestants[name]()
            times[name].append(time.perf_counter() - t0)
    print(f"  {'contestant':28s}{'median s':>10s}{'min s':>9s}")
    for name, seconds in times.items():
        print(f"  {name:28s}{statistics.median(seconds):10.3f}{min(seconds):9.3f}")
    page_s, direct_s = (statistics.median(t) for t in times.values())
    paired = statistics.median(p / d for p, d in zip(*times.values()))
    ratio = page_s / direct_s
    print(
        f"the page takes {ratio:.3f}x the direct call (median of per-round ratios {paired:.3f}x), "
        f"target <= {TARGET}x: {'PASS' if ratio <= TARGET else 'MISS'}"
    )


if __name__ == "__main__":
    main()
