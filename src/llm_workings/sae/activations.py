"""Activations for SAE training: read at a hook, held in a bounded shuffling buffer, or cached as shards.

    tokens = CorpusTokens(ids, context=64)                      # or TaskTokens(task, context)
    source = ModelActivations(model, "blocks.2.hook_resid_pre", tokens, buffer_tokens=65536)
    x = source.batch(step=0, batch_size=4096)                   # [4096, d_in], this rank's share
    cache_activations(source, "acts/", n_tokens=1_000_000)      # safetensors shards, for sweeps
    x = CachedActivations("acts/").batch(0, 4096)

Batches are a pure function of (seed, step), as in train/: refill r of the buffer reads sequences drawn
from a generator seeded by (seed, r, rank), shuffles them with one seeded by the same, and serves
`buffer_tokens / batch` batches. A resumed run needs no buffer state, and memory stays at the buffer's size
(`peak_bytes`). Under torch.distributed each rank draws its own sequences (its shard of the data) and
serves batch_size / world_size rows. A cache is shuffled when written; rank r reads rows
[step * batch + r * batch / world, ...) of it, so its batches do not depend on the number of ranks.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..atomic import atomic_path, write_json
from ..data.tasks import batches_from_text
from ..transformer.model import Transformer
from .config import SAEError

CACHE_INDEX, CACHE_FORMAT = "index.json", "llm_workings.sae.activations"


def rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    return (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)


def local_batch_size(batch_size: int, world: int) -> int:
    if batch_size % world:
        raise SAEError(f"batch_size={batch_size} must divide evenly among {world} ranks")
    return batch_size // world


# -- reading one hook ---------------------------------------------------------------------------
def hook_reader(model: Transformer, hook_name: str, head_index: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function tokens [batch, pos] -> activations [batch, pos, d_in] at `hook_name` (per-head hooks
    flattened to n_heads * d_head, or one head's d_head), running the model only as far as it must."""
    try:
        model.hook_points(hook_name)
    except KeyError as e:
        raise SAEError(f"{model.cfg.name or 'the model'} has no hook {hook_name!r}: {e.args[0]}") from e
    layer = model.hook_dict[hook_name].layer()
    stop = layer + 1 if layer is not None and layer + 1 < model.cfg.n_layers else None

    def read(tokens: torch.Tensor) -> torch.Tensor:
        seen: dict[str, torch.Tensor] = {}

        def keep(x: torch.Tensor, hook: Any) -> None:
            seen["x"] = x.detach()

        keep.reads_only = True
        with torch.no_grad(), model.hooks([(hook_name, keep)]):
            model(tokens, stop_at_layer=stop) if stop is not None else model(tokens)  # ln_final's hooks need the end
        x = seen["x"]
        if x.ndim == 4:  # [batch, pos, head, d_head]
            x = x[:, :, head_index] if head_index is not None else x.flatten(-2)
        return x.float()

    return read


def activation_width(model: Transformer, hook_name: str, head_index: int | None = None) -> int:
    """The d_in an SAE at this hook must have, from one forward pass over a single token."""
    return hook_reader(model, hook_name, head_index)(torch.zeros(1, 1, dtype=torch.long, device=model.W_E.device)).shape[-1]


def check_sae_fits(sae: Any, model: Transformer) -> None:
    """Refuse an SAE whose hook the model lacks or whose d_in is not that hook's width."""
    width = activation_width(model, sae.cfg.hook_name, sae.cfg.hook_head_index)
    if width != sae.cfg.d_in:
        raise SAEError(
            f"this SAE has d_in={sae.cfg.d_in}, but {sae.cfg.hook_name} of {model.cfg.name or 'this model'} is {width} wide; "
            "it was trained on another model or hook"
        )


# -- where the tokens come from -------------------------------------------------------------------
class TokenSource(Protocol):
    name: str
    context: int

    def sequences(self, rng: np.random.Generator, n: int) -> torch.Tensor: ...  # [n, context] token ids


class CorpusTokens:
    """Random windows of a tokenized corpus."""

    def __init__(self, ids: np.ndarray, context: int, name: str = "corpus") -> None:
        self.ids, self.context, self.name = np.asarray(ids, np.int64), context, name

    def sequences(self, rng: np.random.Generator, n: int) -> torch.Tensor:
        return torch.from_numpy(batches_from_text(self.ids, rng, n, self.context - 1))


class TaskTokens:
    """Sequences from a training task's generator (e.g. induction-2l's repeated random tokens)."""

    def __init__(self, task: Any, context: int, name: str | None = None) -> None:
        self.task, self.context, self.name = task, context, name or task.name

    def sequences(self, rng: np.random.Generator, n: int) -> torch.Tensor:
        return self.task.train_batch(rng, n)[:, : self.context]


# -- sources of training batches ------------------------------------------------------------------
class ModelActivations:
    """Activations streamed from the model through a shuffling buffer of `buffer_tokens` rows per rank."""

    def __init__(
        self,
        model: Transformer,
        hook_name: str,
        tokens: TokenSource,
        buffer_tokens: int = 65_536,
        harvest_batch: int = 32,
        seed: int = 0,
        head_index: int | None = None,
    ) -> None:
        self.read = hook_reader(model, hook_name, head_index)
        self.model, self.hook_name, self.tokens, self.head_index = model, hook_name, tokens, head_index
        self.buffer_tokens, self.harvest_batch, self.seed = buffer_tokens, harvest_batch, seed
        self.d_in = activation_width(model, hook_name, head_index)
        self._refill_index, self._buffer = -1, None
        self.peak_bytes = 0  # the most memory the buffer (and one harvest chunk) held at once
        self.refills = 0

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "model",
            "hook_name": self.hook_name,
            "head_index": self.head_index,
            "tokens": self.tokens.name,
            "context": self.tokens.context,
            "buffer_tokens": self.buffer_tokens,
            "seed": self.seed,
        }

    def _refill(self, index: int, rank: int, world: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, index, rank, world])
        parts, rows = [], 0
        while rows < self.buffer_tokens:  # sequences may be shorter than the context (a task's variable lengths)
            needed = -(-(self.buffer_tokens - rows) // self.tokens.context)
            chunk = self.read(self.tokens.sequences(rng, min(self.harvest_batch, needed)).to(self.model.W_E.device))
            parts.append(chunk.reshape(-1, self.d_in).cpu())
            rows += len(parts[-1])
            self.peak_bytes = max(self.peak_bytes, rows * self.d_in * 4 + chunk.numel() * 4)
        acts = torch.cat(parts)[: self.buffer_tokens]
        del parts
        order = torch.randperm(len(acts), generator=torch.Generator().manual_seed(int(rng.integers(2**62))))
        self.refills += 1
        return acts[order]

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        rank, world = rank_and_world()
        local = local_batch_size(batch_size, world)
        per_refill = self.buffer_tokens // local
        index, offset = divmod(step, per_refill)
        if index != self._refill_index:
            self._buffer = None  # drop the old buffer before harvesting the next: the bound is one buffer
            self._buffer, self._refill_index = self._refill(index, rank, world), index
        self.peak_bytes = max(self.peak_bytes, self._buffer.numel() * 4)
        return self._buffer[offset * local : (offset + 1) * local]


class CachedActivations:
    """Activations cached by `cache_activations`, read row range by row range (no whole-cache load)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        path = self.directory / CACHE_INDEX
        if not path.is_file():
            raise SAEError(f"{directory} is not an activation cache: {CACHE_INDEX} is missing")
        index = json.loads(path.read_text())
        if index.get("format") != CACHE_FORMAT:
            raise SAEError(f"{path} is not an activation cache index (no format {CACHE_FORMAT!r})")
        self.index = index
        self.d_in, self.rows = index["d_in"], index["rows"]
        self.hook_name = index["hook_name"]
        self._starts = np.cumsum([0] + [s["rows"] for s in index["shards"]])
        self.peak_bytes = 0

    def describe(self) -> dict[str, Any]:
        return {"kind": "cache", "hook_name": self.hook_name, "rows": self.rows, "sha256": self.index["sha256"]}

    def rows_between(self, start: int, stop: int) -> torch.Tensor:
        """Rows [start, stop) of the cache, wrapping around its end."""
        parts = []
        while start < stop:
            lo = start % self.rows
            shard = int(np.searchsorted(self._starts, lo, side="right") - 1)
            hi = min(self._starts[shard + 1], lo + (stop - start))
            entry = self.index["shards"][shard]
            with safe_open(self.directory / entry["file"], "pt") as f:
                parts.append(f.get_slice("activations")[lo - self._starts[shard] : hi - self._starts[shard]])
            start += hi - lo
        out = torch.cat(parts).float()
        self.peak_bytes = max(self.peak_bytes, out.numel() * 4)
        return out

    def batch(self, step: int, batch_size: int) -> torch.Tensor:
        rank, world = rank_and_world()
        local = local_batch_size(batch_size, world)
        start = step * batch_size + rank * local
        return self.rows_between(start, start + local)


def cache_activations(
    source: ModelActivations, directory: str | os.PathLike, n_tokens: int, shard_tokens: int = 262_144, progress: bool = True
) -> CachedActivations:
    """Write `n_tokens` shuffled activations of `source` as safetensors shards; the index is written last."""
    directory = Path(directory)
    shards, digest, done = [], hashlib.sha256(), 0
    bar = tqdm(total=n_tokens, disable=not progress, unit="tok", desc="caching activations")
    step, chunk = 0, min(source.buffer_tokens, shard_tokens)
    pending: list[torch.Tensor] = []
    while done < n_tokens:
        rows = source.batch(step, chunk)[: n_tokens - done]
        step += 1
        pending.append(rows)
        done += len(rows)
        bar.update(len(rows))
        if sum(len(p) for p in pending) >= shard_tokens or done >= n_tokens:
            block = torch.cat(pending).contiguous()
            pending = []
            name = f"shard-{len(shards):05d}.safetensors"
            with atomic_path(directory / name) as tmp:
                save_file({"activations": block}, tmp)
            digest.update(block.numpy().tobytes())
            shards.append({"file": name, "rows": len(block)})
    bar.close()
    write_json(
        directory / CACHE_INDEX,
        {
            "format": CACHE_FORMAT,
            "d_in": source.d_in,
            "rows": done,
            "hook_name": source.hook_name,
            "source": source.describe(),
            "sha256": digest.hexdigest(),
            "shards": shards,
        },
    )
    return CachedActivations(directory)
