"""LoRA training, ours against PEFT on the equivalent Hugging Face GPT-2: same base weights, r, alpha,
targets, batches and optimizer.

    HF_HUB_OFFLINE=1 python bench/bench_lora.py [--steps 30] [--seeds 3] [--threads 1]

The base is a random GPT2LMHeadModel (d_model 128, 4 layers, 4 heads, vocabulary 256, 64 positions),
and ours is `Transformer.from_hf` of it. LoRA r=8, alpha=16 on every block's c_attn, attn.c_proj,
mlp.c_fc and mlp.c_proj (ours: attn.qkv, attn.o, mlp.in, mlp.out); AdamW lr 2e-3, no weight decay;
batches of 8 x 64 random tokens from a generator seeded per step. The steps of the two sides
alternate, so both see the same machine load; the median step time and the ratio are reported.

- loss after N steps: each side initialises A with its own RNG under each seed, so the spread over
  seeds is the noise a difference is judged against; a run with PEFT given our A shows the two follow
  one trajectory (max |difference| of the losses over all steps);
- memory: what a step holds beyond the frozen base, counted exactly rather than from the process's
  RSS (which two sides in one process share): trainable parameters, their gradients, Adam's two
  moments, and every tensor autograd saves for backward (`saved_tensors_hooks`);
- trainable parameters and the adapter_model.safetensors sizes of `save_peft` and `save_pretrained`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import torch.nn.functional as F
import transformers
from peft import LoraConfig, get_peft_model

from llm_workings.finetune import LoRAConfig, add_lora, save_peft
from llm_workings.transformer import Transformer

RANK, ALPHA, LR, BATCH, POS, VOCAB = 8, 16, 2e-3, 8, 64, 256
OURS, THEIRS = ("attn.qkv", "attn.o", "mlp.in", "mlp.out"), ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]


def base_model() -> transformers.GPT2LMHeadModel:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        n_embd=128, n_layer=4, n_head=4, n_positions=POS, vocab_size=VOCAB, bos_token_id=0, eos_token_id=0
    )
    return transformers.GPT2LMHeadModel(cfg).eval()  # eval: no dropout on either side


def batch(step: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (BATCH, POS), generator=torch.Generator().manual_seed(1000 + step))


def lm_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())


class Side:
    """One trainable LoRA model and its optimizer; `step` is one update."""

    def __init__(self, name: str, model: torch.nn.Module, logits, params: list[torch.nn.Parameter], adapter=None) -> None:
        self.name, self.model, self.logits, self.params, self.adapter = name, model, logits, params, adapter
        self.optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
        self.losses: list[float] = []
        self.seconds: list[float] = []

    def step(self, x: torch.Tensor) -> None:
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss = lm_loss(self.logits(x), x)
        loss.backward()
        self.optimizer.step()
        self.seconds.append(time.perf_counter() - start)
        self.losses.append(loss.item())

    def step_memory(self, x: torch.Tensor) -> int:
        """Bytes a step holds beyond the frozen base: parameters, gradients, two Adam moments, saved activations."""
        saved = []

        def pack(t: torch.Tensor) -> torch.Tensor:
            saved.append(t)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = lm_loss(self.logits(x), x)
        storages = {}
        for t in saved:  # count each storage once: several saved tensors may view one
            if isinstance(t, torch.Tensor) and not any(t is p for p in self.model.parameters()):
                storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        del loss
        parameter_bytes = sum(p.numel() * p.element_size() for p in self.params)
        frozen = {p.untyped_storage().data_ptr() for p in self.model.parameters() if not p.requires_grad}
        activations = sum(n for ptr, n in storages.items() if ptr not in frozen)
        return 4 * parameter_bytes + activations


def sides(seed: int, peft_takes_our_init: bool = False) -> tuple[Side, Side]:
    hf = base_model()
    ours = Transformer.from_hf(hf)
    adapter = add_lora(ours, LoRAConfig(rank=RANK, alpha=ALPHA, targets=OURS, seed=seed))
    torch.manual_seed(seed)
    peft_model = get_peft_model(hf, LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=THEIRS, fan_in_fan_out=True))
    peft_model.eval()
    if peft_takes_our_init:
        with torch.no_grad():
            for key, module in adapter.modules.items():
                _, layer, target = key.split(".", 2)
                hf_name = THEIRS[OURS.index(target)]
                peft_module = peft_model.base_model.model.transformer.h[int(layer)].get_submodule(hf_name)
                peft_module.lora_A["default"].weight.copy_(module.A)
    ours_side = Side("ours", ours, lambda x: ours(x), list(adapter.parameters()), adapter)
    peft_params = [p for p in peft_model.parameters() if p.requires_grad]
    peft_side = Side("PEFT", peft_model, lambda x: peft_model(input_ids=x).logits, peft_params)
    return ours_side, peft_side


def train(pair: tuple[Side, Side], steps: int) -> None:
    for step in range(steps):
        x = batch(step)
        first, second = pair if step % 2 == 0 else pair[::-1]  # alternate which side runs first
        first.step(x)
        second.step(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    finals = {"ours": [], "PEFT": []}
    times = {"ours": [], "PEFT": []}
    for seed in range(args.seeds):
        pair = sides(seed)
        train(pair, args.steps)
        for side in pair:
            finals[side.name].append(side.losses[-1])
            times[side.name] += side.seconds[3:]  # the first steps warm caches up
    same_init = sides(0, peft_takes_our_init=True)
    train(same_init, args.steps)
    trajectory_gap = max(abs(a - b) for a, b in zip(same_init[0].losses, same_init[1].losses))

    ours, peft = sides(0)
    memory = {side.name: side.step_memory(batch(0)) for side in (ours, peft)}
    with tempfile.TemporaryDirectory() as tmp:
        save_peft(ours.adapter, Path(tmp) / "ours")
        peft.model.save_pretrained(Path(tmp) / "peft")
        sizes = {name: (Path(tmp) / name.lower() / "adapter_model.safetensors").stat().st_size for name in ("ours", "PEFT")}

    t_ours, t_peft = statistics.median(times["ours"]), statistics.median(times["PEFT"])
    print(
        f"LoRA r={RANK} alpha={ALPHA} on {', '.join(THEIRS)}; batch {BATCH} x {POS}; {args.steps} steps x {args.seeds} seeds; {args.threads} thread(s)"
    )
    print(f"step time (median):  ours {t_ours * 1e3:.2f} ms   PEFT {t_peft * 1e3:.2f} ms   ratio {t_ours / t_peft:.2f}x")
    print(f"step memory:         ours {memory['ours'] / 2**20:.2f} MiB   PEFT {memory['PEFT'] / 2**20:.2f} MiB")
    for name, losses in finals.items():
        print(
            f"loss after {args.steps} steps, {name}: "
            + ", ".join(f"{v:.4f}" for v in losses)
            + f"   mean {statistics.mean(losses):.4f} sd {statistics.stdev(losses) if len(losses) > 1 else 0:.4f}"
        )
    print(f"same A on both sides: max |loss difference| over {args.steps} steps {trajectory_gap:.2e}")
    print(f"trainable parameters: ours {sum(p.numel() for p in ours.params):,}   PEFT {sum(p.numel() for p in peft.params):,}")
    print(f"adapter_model.safetensors: ours {sizes['ours']:,} bytes   PEFT {sizes['PEFT']:,} bytes")


if __name__ == "__main__":
    main()
