"""Load a catalog entry's model with the engine's own loaders (torch is imported here, on first use).

A failure becomes a 422 that names the model and passes on the loader's own reason (a missing
file, a truncated safetensors, an unsupported architecture...), so the page can show it and the
server stays up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ApiError
from .catalog import CatalogEntry

LOAD_FAILED = 422


def load_entry(entry: CatalogEntry) -> Any:
    """The entry's `Transformer`, in eval mode, with its tokenizer attached (None if it has none)."""
    try:
        if entry.format == "ours":
            from ...transformer.saving import load_model

            model = load_model(Path(entry.location))
        else:
            from ...transformer.loading import from_hf

            model = from_hf(entry.location)
    except (ValueError, OSError) as e:  # LoadError and the tokenizers' errors are ValueErrors
        raise ApiError(f"cannot load model {entry.id!r} from {entry.location}: {e}", status=LOAD_FAILED, field="model") from None
    return model.eval()


def model_bytes(model: Any) -> int:
    """Bytes held by the model's parameters and buffers, each storage counted once (a tied
    unembedding shares the embedding's)."""
    seen: dict[tuple[str, int], int] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        storage = tensor.untyped_storage()
        seen[(str(tensor.device), storage.data_ptr())] = storage.nbytes()
    return sum(seen.values())
