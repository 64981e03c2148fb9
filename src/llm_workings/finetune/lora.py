"""LoRA from scratch: a low-rank update W x + (alpha/r) B A x on any linear map of a `Transformer`.

    adapter = add_lora(model, LoRAConfig(rank=8, alpha=16, targets=("attn.q", "attn.v")))
    model(tokens)                     # every targeted map now adds scaling * B A x to its output
    adapter.merge()                   # W <- W + scaling * B A: the same logits, no extra cost
    adapter.unmerge(); adapter.disable(); adapter.enable(); adapter.remove()

A is Kaiming-uniform and B is zero (Hu et al. 2021, as PEFT does), so the model is unchanged at
the start. Each adapted map is a `LoRA` module in the model's tree at
`blocks.{l}.{attn|mlp}.lora.{adapter}.{target}`, whose `hook_out` is a hook point like any other:
`run_with_cache` keeps it and patching can replace it.

Targets name the linear maps of a block. Fused weights are adapted as a whole or by the rows of one
projection: `attn.qkv` is the fused [q; k; v] weight (GPT-2's c_attn), `attn.q`, `attn.k`, `attn.v`
its row blocks (Llama's q_proj, k_proj, v_proj); `mlp.gate_in` is a gated MLP's fused [gate; in]
weight, `mlp.gate` and `mlp.in` its halves (gate_proj, up_proj).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..transformer.components import Projections
from ..transformer.config import from_known_fields
from ..transformer.hooks import HookPoint
from ..transformer.model import Transformer

ADAPTERS = "lora"  # the attribute of attention and MLP modules that holds their adapters


class LoRAError(ValueError):
    """A LoRA setting, target or adapter file cannot be used with this model; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where a target lives: the component (`attn` or `mlp`), its stored weight, and which rows of it."""

    component: str
    weight: str
    part: int | None = None  # which of the fused weight's row blocks; None for the whole weight


def targets_of(model: Transformer) -> dict[str, Target]:
    """Every target this model's blocks have, by name."""
    cfg = model.cfg
    found = {
        "attn.qkv": Target("attn", "w_qkv"),
        "attn.q": Target("attn", "w_qkv", 0),
        "attn.k": Target("attn", "w_qkv", 1),
        "attn.v": Target("attn", "w_qkv", 2),
        "attn.o": Target("attn", "w_o"),
    }
    if not cfg.attn_only:
        if cfg.gated_mlp:
            found |= {
                "mlp.gate_in": Target("mlp", "w_gate_in"),
                "mlp.gate": Target("mlp", "w_gate_in", 0),
                "mlp.in": Target("mlp", "w_gate_in", 1),
            }
        else:
            found["mlp.in"] = Target("mlp", "w_in")
        found["mlp.out"] = Target("mlp", "w_out")
    return found


def rows_of(component: Projections, target: Target) -> tuple[int, int]:
    """The [start, stop) rows of the stored weight that a target adapts."""
    n = getattr(component, target.weight).shape[0]
    if target.part is None:
        return 0, n
    sizes = component.split if target.weight == "w_qkv" else (n // 2, n // 2)
    start = sum(sizes[: target.part])
    return start, start + sizes[target.part]


@dataclass(frozen=True)
class LoRAConfig:
    rank: int = 8  # r: the rank of B A
    alpha: float = 8.0  # the update is scaled by alpha / r (or alpha / sqrt(r) with rslora)
    targets: tuple[str, ...] = ("attn.qkv",)  # names from `targets_of(model)`
    layers: tuple[int, ...] | None = None  # blocks to adapt; None for all of them
    dropout: float = 0.0  # on the adapter's input only, as in PEFT
    rslora: bool = False  # rank-stabilised scaling alpha / sqrt(r) (Kalajdzievski 2023)
    seed: int = 0  # for A's initialisation

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))
        if not isinstance(self.rank, int) or isinstance(self.rank, bool) or self.rank < 1:
            raise LoRAError(f"rank must be a positive integer, got {self.rank!r}")
        if not self.alpha > 0:
            raise LoRAError(f"alpha must be positive, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise LoRAError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not self.targets:
            raise LoRAError("targets is empty; name at least one linear map, e.g. ('attn.qkv',)")

    @property
    def scaling(self) -> float:
        return self.alpha / (math.sqrt(self.rank) if self.rslora else self.rank)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LoRAConfig:
        return from_known_fields(cls, data, LoRAError, "LoRA setting")


class LoRA(nn.Module):
    """One adapted map: out[..., rows] += scaling * B A dropout(x), with A [r, d_in] and B [d_out, r]."""

    def __init__(self, d_in: int, d_out: int, rows: tuple[int, int], cfg: LoRAConfig, like: torch.Tensor) -> None:
        super().__init__()
        self.rows, self.config, self.scaling = rows, cfg, cfg.scaling
        self.A = nn.Parameter(torch.empty(cfg.rank, d_in, dtype=like.dtype, device=like.device))
        self.B = nn.Parameter(torch.zeros(d_out, cfg.rank, dtype=like.dtype, device=like.device))
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout else nn.Identity()
        self.hook_out = HookPoint()  # [batch, pos, d_out]: scaling * B A x, what the adapter adds
        self.enabled, self.merged = True, False

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if not self.enabled or self.merged:
            return out
        delta = self.hook_out(self.scaling * F.linear(F.linear(self.dropout(x), self.A), self.B))
        start, stop = self.rows
        if stop - start == out.shape[-1]:
            return out + delta
        return out.slice_scatter(out[..., start:stop] + delta, dim=-1, start=start, end=stop)

    def delta_weight(self) -> torch.Tensor:
        """ΔW = scaling * B A, [d_out, d_in]: what merging adds to the weight's rows."""
        return self.scaling * (self.B @ self.A)


@dataclass
class Adapter:
    """A named set of LoRA modules on one model, and what can be done with them all at once."""

    model: Transformer = field(repr=False)
    name: str
    config: LoRAConfig
    modules: dict[str, LoRA] = field(default_factory=dict, repr=False)  # "blocks.{l}.{target}" -> its LoRA

    def parameters(self) -> Iterator[nn.Parameter]:
        for module in self.modules.values():
            yield from (module.A, module.B)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def as_module(self) -> nn.Module:
        """The LoRA modules nested by their keys, so its state dict is `state_dict()`'s names (for the
        trainer's checkpoints, which then hold only the adapter)."""
        root = nn.ModuleDict()
        for key, module in self.modules.items():
            *path, last = key.split(".")
            node = root
            for part in path:
                if part not in node:
                    node[part] = nn.ModuleDict()
                node = node[part]
            node[last] = module
        return root

    def state_dict(self) -> dict[str, torch.Tensor]:
        """`blocks.{l}.{target}.A` and `.B`, detached."""
        return {f"{key}.{ab}": getattr(m, ab).detach() for key, m in self.modules.items() for ab in ("A", "B")}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], source: object = "the given tensors") -> None:
        """Copy A and B in, after checking every name and shape, so a mismatch changes nothing."""
        own = self.state_dict()
        missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
        if missing or unexpected:
            raise LoRAError(
                f"{source} does not match adapter {self.name!r}: missing {missing or 'nothing'}, "
                f"unexpected {unexpected or 'nothing'}"
            )
        for key, t in tensors.items():
            if t.shape != own[key].shape:
                raise LoRAError(
                    f"{source}: {key} has shape {list(t.shape)}; adapter {self.name!r} expects {list(own[key].shape)}"
                )
        with torch.no_grad():
            for key, t in tensors.items():
                own[key].copy_(t)

    def _weight(self, key: str) -> tuple[torch.Tensor, LoRA]:
        layer, target = _split_key(key)
        spec = targets_of(self.model)[target]
        return getattr(getattr(self.model.blocks[layer], spec.component), spec.weight), self.modules[key]

    @torch.no_grad()
    def merge(self) -> Adapter:
        """W[rows] += ΔW for every map, and the adapters stand aside, so an enabled adapter's logits do not
        change. Merging a disabled adapter enables it: merged weights have no off switch."""
        for key in self.modules:
            weight, module = self._weight(key)
            if not module.merged:
                weight[slice(*module.rows)] += module.delta_weight().to(weight.dtype)
                module.merged = module.enabled = True
        return self

    @torch.no_grad()
    def unmerge(self) -> Adapter:
        """W[rows] -= ΔW: the base weights again (up to float rounding), with the adapter applied on the side."""
        for key in self.modules:
            weight, module = self._weight(key)
            if module.merged:
                weight[slice(*module.rows)] -= module.delta_weight().to(weight.dtype)
                module.merged = False
        return self

    def enable(self) -> Adapter:
        for module in self.modules.values():
            module.enabled = True
        return self

    def disable(self) -> Adapter:
        """The base model's outputs, without removing the adapter (unmerges first if merged)."""
        self.unmerge()
        for module in self.modules.values():
            module.enabled = False
        return self

    def remove(self, merge: bool = False) -> Transformer:
        """Take the adapter out of the model, first folding it into the weights when `merge`."""
        self.merge() if merge else self.unmerge()
        for key, module in self.modules.items():
            layer, target = _split_key(key)
            component = getattr(self.model.blocks[layer], targets_of(self.model)[target].component)
            component.updates[targets_of(self.model)[target].weight].remove(module)
            holder = getattr(component, ADAPTERS)
            del holder[self.name][target.split(".")[1]]
            if not len(holder[self.name]):
                del holder[self.name]
        self.modules.clear()
        self.model.setup_hooks()
        return self.model


def _split_key(key: str) -> tuple[int, str]:
    _, layer, target = key.split(".", 2)
    return int(layer), target


def lora_shapes(model: Transformer, cfg: LoRAConfig) -> dict[str, tuple[int, int]]:
    """The shape of every A [r, d_in] and B [d_out, r] an adapter with these settings has, by key."""
    available, shapes = targets_of(model), {}
    for layer in range(model.cfg.n_layers) if cfg.layers is None else cfg.layers:
        for target in cfg.targets:
            component = getattr(model.blocks[layer], available[target].component)
            start, stop = rows_of(component, available[target])
            shapes[f"blocks.{layer}.{target}.A"] = (cfg.rank, getattr(component, available[target].weight).shape[1])
            shapes[f"blocks.{layer}.{target}.B"] = (stop - start, cfg.rank)
    return shapes


def check_config(model: Transformer, cfg: LoRAConfig, name: str = "default") -> dict[str, Target]:
    """Refuse settings this model cannot take, naming them, before anything is changed."""
    available = targets_of(model)
    unknown = [t for t in cfg.targets if t not in available]
    if unknown:
        raise LoRAError(f"this model has no linear map {', '.join(map(repr, unknown))}; it has {', '.join(available)}")
    if len(set(cfg.targets)) < len(cfg.targets):
        raise LoRAError(f"targets {list(cfg.targets)} name a map twice")
    overlapping = [
        (a, b)
        for a in cfg.targets
        for b in cfg.targets
        if a < b and available[a].weight == available[b].weight and None in (available[a].part, available[b].part)
    ]
    if overlapping:
        raise LoRAError(f"targets {overlapping[0][0]!r} and {overlapping[0][1]!r} adapt the same rows; choose one")
    n = model.cfg.n_layers
    bad = [layer for layer in (cfg.layers or ()) if not (isinstance(layer, int) and 0 <= layer < n)]
    if bad:
        raise LoRAError(f"layers {bad} do not exist; this model has layers 0..{n - 1}")
    if name in adapters(model):
        raise LoRAError(f"the model already has an adapter named {name!r}; pick another name or remove it first")
    if not name.isidentifier():
        raise LoRAError(f"adapter name {name!r} must be an identifier (letters, digits, _), as it becomes a module name")
    block = model.blocks[0]
    for target in cfg.targets:
        component = getattr(block, available[target].component)
        start, stop = rows_of(component, available[target])
        d_in = getattr(component, available[target].weight).shape[1]
        width = min(d_in, stop - start)
        if cfg.rank > width:
            raise LoRAError(
                f"rank {cfg.rank} is above the width of {target} ({stop - start} x {d_in}): a rank-r update of it "
                f"needs r <= {width}"
            )
    return available


def add_lora(model: Transformer, cfg: LoRAConfig, name: str = "default", freeze_base: bool = True) -> Adapter:
    """Attach a LoRA adapter called `name` to every targeted map of the chosen layers.

    With `freeze_base` (as PEFT does) every parameter that is not a LoRA's stops requiring gradients,
    so an optimizer over `requires_grad` parameters trains only the adapters."""
    available = check_config(model, cfg, name)
    adapter = Adapter(model, name, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    if freeze_base:
        for pname, p in model.named_parameters():
            if f".{ADAPTERS}." not in pname:
                p.requires_grad_(False)
    layers = range(model.cfg.n_layers) if cfg.layers is None else cfg.layers
    for layer in layers:
        block = model.blocks[layer]
        for target in cfg.targets:
            spec = available[target]
            component = getattr(block, spec.component)
            weight = getattr(component, spec.weight)
            rows = rows_of(component, spec)
            module = LoRA(weight.shape[1], rows[1] - rows[0], rows, cfg, weight)
            with torch.no_grad():  # A as nn.Linear and PEFT initialise it: Kaiming uniform with a = sqrt(5)
                bound = 1 / math.sqrt(weight.shape[1])
                module.A.copy_(torch.empty(module.A.shape).uniform_(-bound, bound, generator=gen))
            if not hasattr(component, ADAPTERS):
                component.add_module(ADAPTERS, nn.ModuleDict())
            holder = getattr(component, ADAPTERS)
            if name not in holder:
                holder[name] = nn.ModuleDict()
            holder[name][target.split(".")[1]] = module
            component.updates.setdefault(spec.weight, []).append(module)
            adapter.modules[f"blocks.{layer}.{target}"] = module
    model.setup_hooks()  # names the adapters' hook points, e.g. blocks.0.attn.lora.default.q.hook_out
    return adapter


def adapters(model: Transformer) -> dict[str, Adapter]:
    """The adapters attached to a model, by name, rebuilt from its module tree."""
    found: dict[str, Adapter] = {}
    for layer, block in enumerate(model.blocks):
        for component_name in ("attn", "mlp"):
            holder = getattr(getattr(block, component_name, None), ADAPTERS, None)
            for name, modules in (holder or {}).items():
                for short, module in modules.items():
                    adapter = found.setdefault(name, Adapter(model, name, module.config))
                    adapter.modules[f"blocks.{layer}.{component_name}.{short}"] = module
    return found
