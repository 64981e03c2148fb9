"""Fine-tuning from the inside: LoRA from scratch, PEFT's file format, what changed in the weights.

from llm_workings.finetune import LoRAConfig, add_lora
adapter = add_lora(model, LoRAConfig(rank=8, alpha=16, targets=("attn.q", "attn.v")))
"""

from .lora import Adapter, LoRA, LoRAConfig, LoRAError, adapters, add_lora, targets_of

__all__ = ["Adapter", "LoRA", "LoRAConfig", "LoRAError", "add_lora", "adapters", "targets_of"]
