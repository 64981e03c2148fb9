"""A readable, hookable decoder-only transformer that loads GPT-2, Pythia and Llama-family checkpoints.

from llm_workings.transformer import Transformer
model = Transformer.from_hf("path/to/checkpoint")
logits, cache = model.run_with_cache("The cat sat on the")
model.save("my-model"); Transformer.load("my-model")
"""

from .cache import ActivationCache
from .config import ConfigError, TransformerConfig
from .generate import KVCache
from .hooks import HookPoint, act_name
from .loading import LoadError, from_hf
from .model import Transformer
from .saving import load_model, save_model

__all__ = [
    "ActivationCache",
    "ConfigError",
    "HookPoint",
    "KVCache",
    "LoadError",
    "Transformer",
    "TransformerConfig",
    "act_name",
    "from_hf",
    "load_model",
    "save_model",
]
