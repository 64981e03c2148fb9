"""The hooked decoder-only transformer: tokens -> embeddings -> blocks -> final norm -> logits.

model = Transformer(TransformerConfig(d_model=64, n_layers=2, n_heads=4, d_vocab=100, n_ctx=32))
logits = model(tokens)                                    # [batch, pos, d_vocab]
logits, cache = model.run_with_cache(tokens)              # every activation, by hook name
model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.attn.hook_pattern", fn)])
model = Transformer.from_hf("path/to/gpt2")               # see loading.py
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .components import NORMS, Block, Embed, PosEmbed, Unembed, WeightView
from .config import TransformerConfig
from .hooks import HookedModule, HookPoint
from .rotary import Rotary

Text = str | Sequence[str]
Input = torch.Tensor | Text
ReturnType = Literal["logits", "loss", "both", None]


class Transformer(HookedModule):
    def __init__(self, cfg: TransformerConfig, tokenizer: Any = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.embed = Embed(cfg)
        self.hook_embed = HookPoint()  # [batch, pos, d_model]
        if cfg.positions == "learned":
            self.pos_embed = PosEmbed(cfg)
            self.hook_pos_embed = HookPoint()  # [batch, pos, d_model]
        rotary = Rotary(cfg) if cfg.positions == "rotary" else None
        self.blocks = nn.ModuleList(Block(cfg, layer, rotary) for layer in range(cfg.n_layers))
        self.ln_final = NORMS[cfg.norm](cfg)
        self.unembed = Unembed(cfg)
        self.tie_weights()
        self.setup_hooks()

    def tie_weights(self) -> None:
        """With tied embeddings, unembedding reads the embedding matrix itself (W_U is W_E transposed)."""
        if self.cfg.tie_embeddings:
            self.unembed.weight = self.embed.W_E

    # -- weights ----------------------------------------------------------------------------------
    @torch.no_grad()
    def init_weights(self, seed: int = 0, std: float = 0.02) -> Transformer:
        """GPT-2's initialisation: N(0, std) weights, with the projections that write into the
        residual stream scaled by 1/sqrt(2 n_layers) so its variance does not grow with depth."""
        gen = torch.Generator().manual_seed(seed)
        writers = {"w_o", "w_out"}
        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "w":  # norm gains
                p.fill_(1.0)
            elif leaf.startswith("b"):
                p.zero_()
            else:
                scale = std / (2 * self.cfg.n_layers) ** 0.5 if leaf in writers else std
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
        return self

    W_E = WeightView(lambda m: m.embed.W_E, "[d_vocab, d_model]")
    W_U = WeightView(lambda m: m.unembed.W_U, "[d_model, d_vocab]")
    W_pos = WeightView(lambda m: m.pos_embed.W_pos, "[n_ctx, d_model]; learned positions only")

    def stack(self, attr: str, module: str = "attn") -> torch.Tensor:
        """One weight across layers, e.g. stack("W_Q") -> [layer, head, d_model, d_head]."""
        return torch.stack([getattr(getattr(block, module), attr) for block in self.blocks])

    # -- the forward pass -------------------------------------------------------------------------
    def forward(
        self,
        input: Input,
        return_type: ReturnType = "logits",
        loss_per_token: bool = False,
        stop_at_layer: int | None = None,
        start_at_layer: int | None = None,
        tokens: torch.Tensor | None = None,
        prepend_bos: bool | None = None,
        kv_cache=None,
    ):
        """Run the model on tokens `[batch, pos]` (or text, tokenized with `to_tokens`).

        return_type: "logits" `[batch, pos, d_vocab]`, "loss" (next-token cross-entropy, a scalar, or
        `[batch, pos - 1]` with `loss_per_token`), "both" as (logits, loss), or None.
        stop_at_layer=k returns the residual stream entering block k, `[batch, pos, d_model]`.
        start_at_layer=k takes that residual stream as `input` instead of tokens and runs blocks k
        onwards (for patching); a loss then needs the `tokens` it should predict.
        """
        start = 0 if kv_cache is None else kv_cache.length
        if start_at_layer is None:
            tokens = self._tokens(input, prepend_bos)
            residual = self.embed_tokens(tokens, start)
        else:
            residual = self._residual(input, start_at_layer)
        for block in self.blocks[start_at_layer:stop_at_layer]:
            residual = block(residual, start, kv_cache)
        if kv_cache is not None:
            kv_cache.advance(residual.shape[1])
        if stop_at_layer is not None:
            return residual
        if return_type is None:
            return None
        logits = self.unembed(self.ln_final(residual))
        if return_type == "logits":
            return logits
        if tokens is None:
            raise ValueError("a loss needs the tokens to predict: pass tokens= along with start_at_layer")
        targets = tokens if start_at_layer is None else self._tokens(tokens, prepend_bos)
        loss = next_token_loss(logits, targets, per_token=loss_per_token)
        return loss if return_type == "loss" else (logits, loss)

    def embed_tokens(self, tokens: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Token (and learned position) embeddings: the residual stream entering block 0."""
        residual = self.hook_embed(self.embed(tokens))
        if self.cfg.positions == "learned":
            pos = self.pos_embed(start, tokens.shape[1]).expand_as(residual)  # a view of W_pos
            if self.hook_pos_embed.active:  # hooks and the cache get a copy, so no edit can reach W_pos
                pos = self.hook_pos_embed(pos.clone())
            residual = residual + pos
        return residual

    def _residual(self, input: Any, start_at_layer: int) -> torch.Tensor:
        if not 0 <= start_at_layer <= self.cfg.n_layers:
            raise ValueError(f"start_at_layer must be in [0, {self.cfg.n_layers}], got {start_at_layer}")
        if (
            not isinstance(input, torch.Tensor)
            or not input.is_floating_point()
            or input.ndim != 3
            or input.shape[-1] != self.cfg.d_model
        ):
            shape = list(input.shape) if isinstance(input, torch.Tensor) else type(input).__name__
            raise ValueError(
                f"with start_at_layer, input is the residual stream [batch, pos, d_model={self.cfg.d_model}]; got {shape}"
            )
        return input

    def _tokens(self, input: Input, prepend_bos: bool | None) -> torch.Tensor:
        if isinstance(input, (str, list, tuple)):
            return self.to_tokens(input, prepend_bos=prepend_bos)
        return self.check_tokens(input)

    def check_tokens(self, input: torch.Tensor) -> torch.Tensor:
        """Token ids `[pos]` or `[batch, pos]` as `[batch, pos]` on the model's device; anything else
        (floats, another rank, ids outside the vocabulary) is refused with a message that says so."""
        if not isinstance(input, torch.Tensor) or input.dtype not in (torch.int64, torch.int32):
            raise TypeError(
                f"expected token ids as an integer tensor [batch, pos] or text; got {type(input).__name__}"
                + (f" of {input.dtype}" if isinstance(input, torch.Tensor) else "")
            )
        tokens = input[None] if input.ndim == 1 else input
        if tokens.ndim != 2:
            raise ValueError(f"expected tokens of shape [batch, pos], got {list(input.shape)}")
        # meta tensors (shape-only runs, as in `llmw model info`) have no values to check
        if tokens.numel() and not tokens.is_meta:
            low, high = (int(t) for t in torch.aminmax(tokens))
            if low < 0 or high >= self.cfg.d_vocab:
                raise ValueError(f"token ids must lie in [0, {self.cfg.d_vocab}); got {low}..{high}")
        return tokens.to(self.W_E.device)

    # -- text -------------------------------------------------------------------------------------
    def _need_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer; pass token ids, or attach one with model.tokenizer = ...")
        return self.tokenizer

    def to_tokens(self, text: Text, prepend_bos: bool | None = None) -> torch.Tensor:
        """Text (or a list of texts, right-padded) to token ids `[batch, pos]`, with BOS first by default."""
        tok = self._need_tokenizer()
        texts = [text] if isinstance(text, str) else list(text)
        ids = [tok.encode(t, add_special_tokens=False) for t in texts]
        bos = self.bos_to_prepend(prepend_bos)
        if bos is not None:
            ids = [[bos] + row for row in ids]
        pad = getattr(tok, "pad_token_id", None)
        pad = pad if pad is not None else (getattr(tok, "eos_token_id", None) or 0)
        width = max(len(row) for row in ids)
        return torch.tensor([row + [pad] * (width - len(row)) for row in ids], device=self.W_E.device)

    def bos_to_prepend(self, prepend_bos: bool | None = None) -> int | None:
        """The BOS id `to_tokens` puts first (by default when the config says so), or None."""
        prepend_bos = self.cfg.default_prepend_bos if prepend_bos is None else prepend_bos
        return getattr(self.tokenizer, "bos_token_id", None) if prepend_bos else None

    def to_str_tokens(self, input: str | torch.Tensor, prepend_bos: bool | None = None) -> list[str]:
        """Each token as the text it stands for, for labelling plots."""
        if not isinstance(input, (str, torch.Tensor)):
            raise TypeError(f"to_str_tokens takes one text or one sequence of token ids, not {type(input).__name__}")
        tokens = self.to_tokens(input, prepend_bos)[0] if isinstance(input, str) else input
        if tokens.ndim > 1:
            if tokens.shape[0] != 1:
                raise ValueError(f"to_str_tokens takes one sequence; got a batch of {tokens.shape[0]}")
            tokens = tokens[0]
        tok = self._need_tokenizer()
        return [tok.decode([t]) for t in tokens.tolist()]

    def to_string(self, tokens: torch.Tensor) -> str | list[str]:
        tok = self._need_tokenizer()
        if tokens.ndim == 2:
            return [tok.decode(row) for row in tokens.tolist()]
        return tok.decode(tokens.tolist())

    def to_single_token(self, text: str) -> int:
        ids = self._need_tokenizer().encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"{text!r} is {len(ids)} tokens, not one")
        return ids[0]

    # -- weight transforms, generation and loading live in their own modules ----------------------
    def fold_layer_norm(self, center_reading_weights: bool = True) -> Transformer:
        from .transforms import fold_layer_norm

        return fold_layer_norm(self, center_reading_weights)

    def center_writing_weights(self) -> Transformer:
        from .transforms import center_writing_weights

        return center_writing_weights(self)

    def center_unembed(self) -> Transformer:
        from .transforms import center_unembed

        return center_unembed(self)

    def generate(self, input: Input, max_new_tokens: int = 20, **kwargs: Any):
        from .generate import generate

        return generate(self, input, max_new_tokens, **kwargs)

    @classmethod
    def from_hf(cls, source: Any, **kwargs: Any) -> Transformer:
        from .loading import from_hf

        return from_hf(source, **kwargs)

    def save(self, directory: Any, tokenizer: Any = None) -> Any:
        """Write config.json, model.safetensors (and tokenizer.json) to a directory; see saving.py."""
        from .saving import save_model

        return save_model(self, directory, tokenizer)

    @classmethod
    def load(cls, directory: Any, device: Any = None) -> Transformer:
        """Read a directory written by `save`."""
        from .saving import load_model

        return load_model(directory, device)

    def __repr__(self) -> str:
        c = self.cfg
        n = sum(p.numel() for p in self.parameters())  # a tied parameter is listed once
        return (
            f"Transformer({c.name or 'unnamed'}: {c.n_layers} layers, d_model={c.d_model}, {c.n_heads} heads"
            f"{f' ({c.n_kv_heads} kv)' if c.n_kv_heads != c.n_heads else ''}, d_vocab={c.d_vocab}, {n:,} parameters)"
        )


def next_token_loss(logits: torch.Tensor, tokens: torch.Tensor, per_token: bool = False) -> torch.Tensor:
    """Cross-entropy of predicting tokens[:, 1:] from logits[:, :-1]."""
    if tokens.shape[1] < 2:
        raise ValueError("a next-token loss needs at least 2 tokens per sequence")
    losses = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), tokens[:, 1:].flatten(), reduction="none")
    losses = losses.view(tokens.shape[0], -1)
    return losses if per_token else losses.mean()
