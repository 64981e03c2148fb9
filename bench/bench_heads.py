"""The Attention heads page's head grid against a bare `run_with_cache` of the patterns, side by side,
and hovering across query tokens in headless chromium.

    python bench/bench_heads.py [--reps 31] [--gpt2-reps 7] [--threads 1] [--hover-seconds 4] [--no-browser]

Cases: austen-bpe on 128 tokens (its whole context: it reads at most 128), a GPT-2-small-shape
checkpoint (12 layers, 12 heads, d_model 768, d_vocab 50257, random weights, built here and loaded
through the lab like any `--model` directory) on 128 tokens, and the same on 256 tokens, where the
grid passes its byte budget and is thinned.

For each case, interleaved rep by rep, medians:
- bare: `model.run_with_cache(tokens, names_filter=<every hook_pattern>)` under no_grad, nothing else;
- in process: what the grid route runs, without HTTP: compute.grid (the same forward, the four
  scores, attention by distance) and the JSON it sends;
- route: POST /api/heads/grid through a real server on 127.0.0.1, timed at the client, so an upper
  bound on the server's time;
and the ratio route / bare (target: at most 1.3), and the response's size against the byte budget.

Then the hover: the page opened on induction-2l with its 40-token repeated sequence, and for
`--hover-seconds` the pointer moved to the next query token at every animation frame; the page's
frame intervals are recorded and their median rate and slowest 5% printed (target: 60 fps).
Chromium runs with --disable-gpu, as in the tests, so its drawing is done in software.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import torch
from bench_browser import CHROMIUM_ARGS, wait

from llm_workings.data import load_corpus
from llm_workings.lab.config import LabConfig
from llm_workings.lab.heads import compute, wire
from llm_workings.lab.heads.settings import GRID_BYTE_BUDGET
from llm_workings.lab.prompts import PromptIn, read_prompt
from llm_workings.lab.server import serve_in_thread


def build_gpt2_small(path: Path) -> Path:
    """GPT-2 small's shape with random weights, and no tokenizer: the grid is posted token ids."""
    import transformers

    config = transformers.GPT2Config(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).eval().save_pretrained(path)
    return path


def measure(client: httpx.Client, cache, model_id: str, text: str, tokens: int, reps: int) -> dict:
    with cache.hold(model_id) as held:
        model = held.model
        if held.tokenizer is not None:
            ids = held.tokenizer.encode(text)[:tokens]
        else:  # random ids, a fixed draw
            ids = torch.randint(model.cfg.d_vocab, (tokens,), generator=torch.Generator().manual_seed(0)).tolist()
        prompt = read_prompt(held, PromptIn(ids=ids), max_tokens=tokens)
        batch = prompt.tensor()
        body = {"model": model_id, "prompt": {"ids": ids}}

        def in_process() -> None:
            out = wire.grid(model_id, prompt, compute.grid(model, batch), compute.INDUCTION_THRESHOLD)
            out.__pydantic_serializer__.to_json(out)

        answer = client.post("/api/heads/grid", json=body)  # warm: the server's cache loads the model
        answer.raise_for_status()
        size, thinned = len(answer.content), answer.json()["thinned"]
        bare, engine, route = [], [], []
        for rep in range(reps):
            for side in ("bare", "engine", "route") if rep % 2 == 0 else ("route", "engine", "bare"):
                start = time.perf_counter()
                if side == "bare":
                    compute.pattern_cache(model, batch)
                    bare.append(time.perf_counter() - start)
                elif side == "engine":
                    in_process()
                    engine.append(time.perf_counter() - start)
                else:
                    client.post("/api/heads/grid", json=body).raise_for_status()
                    route.append(time.perf_counter() - start)
        b, e, r = (statistics.median(times) for times in (bare, engine, route))
        return {"tokens": len(ids), "bare": b, "engine": e, "route": r, "bytes": size, "thinned": "; ".join(thinned) or "no"}


def hover(base: str, seconds: float) -> dict:
    """Frame rate while the pointer crosses a new query token at every animation frame."""
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{base}/attention-heads?model=induction-2l&layer=1&head=0")
        wait(page, "document.body.dataset.ready === 'true' && window.headsPage.pending === 0", timeout=60)
        page.evaluate("document.getElementById('lines').scrollIntoView()")
        intervals = page.evaluate(
            """(seconds) => new Promise((resolve) => {
                const lines = window.headsPage.lines;
                const n = lines.queryCount;
                const times = [];
                let i = 0;
                const end = performance.now() + 1000 * seconds;
                function frame(now) {
                    times.push(now);
                    lines.hoverQuery(i % n);  // what a pointer entering query i does
                    i += 1;
                    if (now < end) requestAnimationFrame(frame);
                    else resolve(times.slice(1).map((t, j) => t - times[j]));
                }
                requestAnimationFrame(frame);
            })""",
            seconds,
        )
        redraw = page.evaluate(
            """() => { const lines = window.headsPage.lines, n = lines.queryCount, t0 = performance.now();
                for (let i = 0; i < 200; i += 1) lines.hoverQuery(i % n);
                return (performance.now() - t0) / 200; }"""
        )
        browser.close()
    intervals = sorted(intervals[30:])  # the first half second is a warm-up
    return {
        "fps": 1000 / statistics.median(intervals),
        "slowest_5pct_ms": intervals[int(0.95 * len(intervals))],
        "frames": len(intervals),
        "redraw_ms": redraw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=31, help="reps of the austen-bpe case")
    parser.add_argument("--gpt2-reps", type=int, default=7, help="reps of each GPT-2-small case (seconds each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for both sides (default 1)")
    parser.add_argument("--hover-seconds", type=float, default=4.0)
    parser.add_argument("--no-browser", action="store_true", help="skip the hover measurement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    austen = load_corpus("austen").val
    with tempfile.TemporaryDirectory() as tmp:
        gpt2_dir = build_gpt2_small(Path(tmp) / "gpt2-small-random")
        server = serve_in_thread(LabConfig(models=(str(gpt2_dir),)))
        try:
            cache = server.app.state.models
            gpt2_id = next(e.id for e in cache.catalog() if e.source == "cli")
            with httpx.Client(base_url=server.url, timeout=300) as client:
                rows = [
                    ("austen-bpe, 128 tokens", measure(client, cache, "austen-bpe", austen[:4000], 128, args.reps)),
                    ("GPT-2 small shape, 128 tokens", measure(client, cache, gpt2_id, austen[:4000], 128, args.gpt2_reps)),
                    ("GPT-2 small shape, 256 tokens", measure(client, cache, gpt2_id, austen[:4000], 256, args.gpt2_reps)),
                ]
            hovered = None if args.no_browser else hover(server.url, args.hover_seconds)
        finally:
            server.shutdown()
    print(f"torch threads: {args.threads}, reps: {args.reps} and {args.gpt2_reps} (medians); byte budget {GRID_BYTE_BUDGET:,}")
    print("| case | bare run_with_cache | in process | ratio | grid route | ratio | bytes per response | thinned |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, m in rows:
        print(
            f"| {name} | {1e3 * m['bare']:.1f} ms | {1e3 * m['engine']:.1f} ms | {m['engine'] / m['bare']:.2f}x | "
            f"{1e3 * m['route']:.1f} ms | {m['route'] / m['bare']:.2f}x | {m['bytes']:,} | {m['thinned']} |"
        )
    if hovered:
        print(
            f"hover across query tokens (induction-2l, 40 tokens): {hovered['fps']:.1f} fps median over "
            f"{hovered['frames']} frames, slowest 5% {hovered['slowest_5pct_ms']:.1f} ms; one redraw {hovered['redraw_ms']:.2f} ms"
        )


if __name__ == "__main__":
    main()
