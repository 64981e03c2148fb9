"""Fine-tuning from the inside: LoRA from scratch, PEFT's file format, what changed in the weights.

from llm_workings.finetune import LoRAConfig, add_lora, save_peft
adapter = add_lora(model, LoRAConfig(rank=8, alpha=16, targets=("attn.q", "attn.v")))
save_peft(adapter, "my-adapter")      # PeftModel.from_pretrained(hf_model, "my-adapter") reads it
"""

from .lora import Adapter, LoRA, LoRAConfig, LoRAError, adapters, add_lora, targets_of
from .peft_format import load_peft, save_peft
from .run import FineTuneResult, finetune, load_adapter, save_adapter
from .task_vectors import TaskVector, merged_copy, sweep
from .weights import ModuleChange, WeightChanges, change_of, weight_changes

__all__ = [
    "ModuleChange",
    "TaskVector",
    "WeightChanges",
    "change_of",
    "merged_copy",
    "sweep",
    "weight_changes",
    "FineTuneResult",
    "finetune",
    "load_adapter",
    "save_adapter",
    "Adapter",
    "LoRA",
    "LoRAConfig",
    "LoRAError",
    "add_lora",
    "adapters",
    "load_peft",
    "save_peft",
    "targets_of",
]
