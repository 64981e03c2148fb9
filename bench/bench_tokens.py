"""The Tokens page's predictions against a bare forward pass on the same input, side by side.

    python bench/bench_tokens.py [--reps 41] [--gpt2-reps 7] [--threads 1]

Cases: shakespeare-char on 256 characters (past its n_ctx of 64, so both sides run the same batch
of windows), and a GPT-2-small-shape checkpoint (12 layers, d_model 768, d_vocab 50257, random
weights, built here and loaded through the lab like any `--model` directory) on 128 tokens.

For each case, interleaved rep by rep, medians:
- bare: `model(tokens)` under inference_mode, the logits and nothing else;
- in process: what the route runs, without HTTP: compute.predict and the JSON it sends;
- route: POST /api/tokens/predict with k=10 through a real server on 127.0.0.1 (tokenize, one
  forward pass, top 10 and the actual next token's probability at every position, JSON), timed
  at the client, so it is an upper bound on the server's time;
and the ratio route / bare (target: at most 1.3), and the response's size in bytes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import torch

from llm_workings.data import load_corpus
from llm_workings.lab.config import LabConfig
from llm_workings.lab.prompts import token_ids
from llm_workings.lab.server import serve_in_thread
from llm_workings.lab.tokens import compute, wire

SHAKESPEARE_CHARS = 256
GPT2_TOKENS = 128


def build_gpt2_small(path: Path, text: str) -> Path:
    """GPT-2 small's shape with random weights, and a byte-level BPE tokenizer trained on `text`."""
    import transformers

    from llm_workings.tokenizers import BPETokenizer

    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=BPETokenizer.train(text, vocab_size=1024).to_hf())
    config = transformers.GPT2Config(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257)
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def measure(client: httpx.Client, cache, model_id: str, text: str, reps: int) -> dict:
    with cache.hold(model_id) as held:
        model = held.model
        ids = token_ids(model, held.tokenizer, text)
        starts = compute.window_starts(len(ids), model.cfg.n_ctx)
        width = min(len(ids), model.cfg.n_ctx)
        batch = torch.tensor([ids[s : s + width] for s in starts])
        body = {"model": model_id, "text": text, "k": 10}

        def in_process() -> None:
            pred = compute.predict(model, token_ids(model, held.tokenizer, text), 10)
            out = wire.predictions(model_id, model.cfg.n_ctx, model.cfg.d_vocab, False, pred, held.tokenizer.token_text, 10)
            out.__pydantic_serializer__.to_json(out)

        bare, engine, route = [], [], []
        size = len(client.post("/api/tokens/predict", json=body).content)  # warm: the server's cache loads it
        for rep in range(reps):
            for side in ("bare", "engine", "route") if rep % 2 == 0 else ("route", "engine", "bare"):
                start = time.perf_counter()
                if side == "bare":
                    with torch.inference_mode():
                        model(batch)
                    bare.append(time.perf_counter() - start)
                elif side == "engine":
                    in_process()
                    engine.append(time.perf_counter() - start)
                else:
                    answer = client.post("/api/tokens/predict", json=body)
                    route.append(time.perf_counter() - start)
                    answer.raise_for_status()
        b, e, r = (statistics.median(times) for times in (bare, engine, route))
        return {"tokens": len(ids), "windows": len(starts), "bare": b, "engine": e, "route": r, "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=41, help="reps of the shakespeare-char case")
    parser.add_argument("--gpt2-reps", type=int, default=7, help="reps of the GPT-2-small case (seconds each)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads, for both sides (default 1: steadier on a shared machine)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shakespeare = load_corpus("tinyshakespeare").val[:SHAKESPEARE_CHARS]
    austen = load_corpus("austen").val
    with tempfile.TemporaryDirectory() as tmp:
        gpt2_dir = build_gpt2_small(Path(tmp) / "gpt2-small-random", austen[:50_000])
        server = serve_in_thread(LabConfig(models=(str(gpt2_dir),)))
        try:
            cache = server.app.state.models
            gpt2_id = next(e.id for e in cache.catalog() if e.source == "cli")
            with cache.hold(gpt2_id) as held:  # 128 tokens of Austen in this tokenizer
                gpt2_text = held.tokenizer.decode(held.tokenizer.encode(austen[:2000])[:GPT2_TOKENS])
            with httpx.Client(base_url=server.url, timeout=120) as client:
                rows = [
                    ("shakespeare-char, 256 characters", measure(client, cache, "shakespeare-char", shakespeare, args.reps)),
                    ("GPT-2 small shape, 128 tokens", measure(client, cache, gpt2_id, gpt2_text, args.gpt2_reps)),
                ]
        finally:
            server.shutdown()
    print(f"torch threads: {args.threads}, reps: {args.reps} and {args.gpt2_reps} (medians)")
    print("| case | tokens (windows) | bare forward | in process | ratio | predict route | ratio | bytes per response |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, m in rows:
        print(
            f"| {name} | {m['tokens']} ({m['windows']}) | {1e3 * m['bare']:.1f} ms | {1e3 * m['engine']:.1f} ms | "
            f"{m['engine'] / m['bare']:.2f}x | {1e3 * m['route']:.1f} ms | {m['route'] / m['bare']:.2f}x | {m['bytes']:,} |"
        )


if __name__ == "__main__":
    main()
