"""Small `transformers` models with random weights, built offline, to check `Transformer` against.

Every model is built from a config under a fixed seed with eager attention (the reference
implementation), then its 1-d parameters (norm gains and biases, which Hugging Face initialises
to 1 and 0) are perturbed so those paths are exercised too. Weights are drawn wider than
Hugging Face's default (std 0.02) so logits and attention patterns are far from uniform and a
wrong rotation, mask or scale shows up well above the 1e-4 tolerance.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
import transformers

VOCAB = 97  # >= the test tokenizer's vocabulary
TINY = dict(
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
    vocab_size=VOCAB,
    max_position_embeddings=64,
    bos_token_id=1,
    eos_token_id=2,
)

# family -> (config class, model class, base config overrides)
FAMILIES: dict[str, tuple[type, type, dict[str, Any]]] = {
    "gpt2": (
        transformers.GPT2Config,
        transformers.GPT2LMHeadModel,
        dict(n_embd=32, n_layer=3, n_head=4, n_positions=64, vocab_size=VOCAB, bos_token_id=1, eos_token_id=2),
    ),
    "neox": (transformers.GPTNeoXConfig, transformers.GPTNeoXForCausalLM, TINY),
    "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM, dict(TINY, num_key_value_heads=4)),
    "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM, dict(TINY, num_key_value_heads=2)),
    "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM, dict(TINY, num_key_value_heads=2)),
}


def hf_config(family: str, **overrides: Any) -> transformers.PretrainedConfig:
    config_cls, _, base = FAMILIES[family]
    config = config_cls(**{**base, **overrides})
    config._attn_implementation = "eager"
    return config


@torch.no_grad()
def build_hf(family: str, seed: int = 0, std: float = 0.15, **overrides: Any) -> transformers.PreTrainedModel:
    """A `family` causal LM with random weights: N(0, std) matrices, perturbed 1-d parameters."""
    config = hf_config(family, initializer_range=std, **copy.deepcopy(overrides))  # it edits rope dicts in place
    torch.manual_seed(seed)
    model = FAMILIES[family][1](config).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    for p in model.parameters():
        if p.ndim == 1:  # norm gains (1.0) and biases (0.0)
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model


def tokens(batch: int = 2, pos: int = 12, vocab: int = VOCAB, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, pos), generator=torch.Generator().manual_seed(seed))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shapes differ: {list(a.shape)} vs {list(b.shape)}"
    return (a.float() - b.float()).abs().max().item()


# -- checkpoints on disk ---------------------------------------------------------------------------
def save_safetensors(model: transformers.PreTrainedModel, path: Path, **kwargs: Any) -> Path:
    model.save_pretrained(path, **kwargs)
    return path


def save_torch_bin(model: transformers.PreTrainedModel, path: Path, shards: int = 1) -> Path:
    """config.json + pytorch_model.bin (or `shards` files with an index), the pre-safetensors layout.
    transformers 5 ignores safe_serialization=False, so the files are written here directly."""
    path.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    if shards == 1:
        torch.save(state, path / "pytorch_model.bin")
        return path
    names = list(state)
    weight_map = {}
    for i in range(shards):
        file = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        part = {n: state[n] for n in names[i::shards]}
        torch.save(part, path / file)
        weight_map.update(dict.fromkeys(part, file))
    (path / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return path


SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "the bird sang a song on the tree",
    "my cat and the dog sat in the sun",
]


def tiny_tokenizer() -> transformers.PreTrainedTokenizerFast:
    """A word-level tokenizer trained offline on a few sentences, with <s> (BOS) and </s> (EOS)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["<unk>", "<s>", "</s>"]))
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def save_with_tokenizer(model: transformers.PreTrainedModel, path: Path) -> Path:
    tok = tiny_tokenizer()
    assert len(tok) <= model.config.vocab_size
    assert (tok.bos_token_id, tok.eos_token_id) == (model.config.bos_token_id, model.config.eos_token_id)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


# -- what Hugging Face computes ------------------------------------------------------------------------
def hf_layers(model: transformers.PreTrainedModel) -> torch.nn.ModuleList:
    base = model.base_model
    return base.h if hasattr(base, "h") else base.layers


@torch.no_grad()
def hf_reference(model: transformers.PreTrainedModel, toks: torch.Tensor) -> dict[str, Any]:
    """HF's logits (None for a base model), the residual stream after each layer (caught by forward
    hooks on the decoder layers, since hidden_states[-1] already has the final norm applied), the
    embedding, the final normed stream and the attention patterns."""
    outputs: list[torch.Tensor] = []

    def keep(module: torch.nn.Module, args: Any, out: Any) -> None:
        outputs.append(out[0] if isinstance(out, tuple) else out)

    handles = [layer.register_forward_hook(keep) for layer in hf_layers(model)]
    try:
        out = model(toks, output_hidden_states=True, output_attentions=True)
    finally:
        for h in handles:
            h.remove()
    return dict(
        logits=getattr(out, "logits", None),
        resid_post=outputs,
        embed=out.hidden_states[0],
        final=out.last_hidden_state if hasattr(out, "last_hidden_state") else out.hidden_states[-1],
        patterns=out.attentions,
    )


# -- the same weights in TransformerLens ---------------------------------------------------------------
@torch.no_grad()
def transformer_lens_twin(model: transformers.PreTrainedModel, path: Path) -> Any:
    """`model` as TransformerLens 3.9's `HookedTransformer`, through TransformerLens's own config and
    weight converters (it reads config.json from the saved `path`), with nothing folded or centred, so
    both sides hold the same weights. GPT-2's config gains `n_ctx`, which TransformerLens still reads
    and transformers 5 no longer writes; `path` must not contain "llama", or TransformerLens picks a
    config by name instead of reading it."""
    import warnings

    from transformer_lens import HookedTransformer
    from transformer_lens.loading_from_pretrained import get_pretrained_model_config, get_pretrained_state_dict

    assert "llama" not in str(path).lower()
    if isinstance(model.config, transformers.GPT2Config):
        model.config.n_ctx = model.config.n_positions
    model.save_pretrained(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = get_pretrained_model_config(str(path), fold_ln=False, device="cpu")
        cfg.tokenizer_name = None  # the checkpoint has no tokenizer; tokens are given as ids
        twin = HookedTransformer(cfg)
        state = get_pretrained_state_dict(str(path), cfg, hf_model=model)
        twin.load_and_process_state_dict(
            state, fold_ln=False, center_writing_weights=False, center_unembed=False, fold_value_biases=False
        )
    return twin.eval()
