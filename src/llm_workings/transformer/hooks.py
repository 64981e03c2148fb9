"""Hook points: a named identity at every activation, where a function can read or replace it.

A `HookPoint` costs one attribute check when nothing is attached, so the model pays only for
what is hooked. `HookedModule` adds the researcher's API on top: `hooks(...)` as a context
manager, `run_with_hooks` and `run_with_cache`. Names follow TransformerLens, e.g.
`blocks.0.attn.hook_pattern`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from .cache import ActivationCache

HookFn = Callable[[torch.Tensor, "HookPoint"], torch.Tensor | None]
NameOrFilter = str | Callable[[str], bool] | Iterable[str]


class HookPoint(nn.Module):
    """Identity on the forward pass. Attached functions see `(activation, hook)` and may return a replacement."""

    def __init__(self) -> None:
        super().__init__()
        self.name = ""
        self.fwd_fns: list[HookFn] = []
        self.bwd_fns: list[HookFn] = []

    @property
    def active(self) -> bool:
        return bool(self.fwd_fns or self.bwd_fns)

    @property
    def may_edit(self) -> bool:
        """Whether an attached function might change the activation (cache readers never do), so the
        model must compute everything downstream from the hooked value rather than a fused kernel."""
        return bool(self.bwd_fns) or any(not getattr(fn, "reads_only", False) for fn in self.fwd_fns)

    def layer(self) -> int | None:
        """The block index in the name (`blocks.3.…` → 3), or None for top-level hooks."""
        parts = self.name.split(".")
        return int(parts[1]) if parts[0] == "blocks" else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # bypasses nn.Module.__call__: hot path
        if self.fwd_fns:
            if x.requires_grad and torch.is_grad_enabled() and self.may_edit:
                x = x.clone()  # an in-place edit must not touch a tensor autograd saved for backward
            for fn in self.fwd_fns:
                out = fn(x, self)
                if out is not None:
                    if out.shape != x.shape:
                        raise ValueError(f"hook on {self.name} returned shape {list(out.shape)}; expected {list(x.shape)}")
                    x = out
        if self.bwd_fns and x.requires_grad:
            # A node of its own: resid_post of one block is resid_pre of the next, and gradient hooks
            # on one tensor would run in forward order instead of backward order.
            x = x.view_as(x)
            for fn in self.bwd_fns:
                x.register_hook(lambda grad, fn=fn: fn(grad, self))
        return x

    def extra_repr(self) -> str:
        return f"{self.name!r}, {len(self.fwd_fns)} forward and {len(self.bwd_fns)} backward hooks"


@contextmanager
def _attached(attachments: list[tuple[list[HookFn], HookFn]]) -> Iterator[None]:
    """Append each function to its hook point's list for the body of a `with` block. On exit each
    removes its own latest attachment, so nested blocks unwind in order; one already gone (after
    `reset_hooks`) is fine."""
    for fns, fn in attachments:
        fns.append(fn)
    try:
        yield
    finally:
        for fns, fn in reversed(attachments):
            for i in range(len(fns) - 1, -1, -1):
                if fns[i] is fn:
                    del fns[i]
                    break


# Short names of TransformerLens's `get_act_name`: cache["pattern", 0] is cache["blocks.0.attn.hook_pattern"].
_SUBMODULE = {
    "q": "attn",
    "k": "attn",
    "v": "attn",
    "rot_q": "attn",
    "rot_k": "attn",
    "attn_scores": "attn",
    "pattern": "attn",
    "z": "attn",
    "result": "attn",
    "pre": "mlp",
    "pre_linear": "mlp",
    "post": "mlp",
}
_TOP_LEVEL = {"embed", "pos_embed"}
_BLOCK = {"resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post"}


def act_name(name: str, layer: int | None = None, norm: str | None = None) -> str:
    """The full hook name for a short one: act_name("resid_pre", 2) → "blocks.2.hook_resid_pre".

    Layer norm hooks need the norm: act_name("scale", 0, "ln1"); with no layer, "ln_final" is used.
    """
    if "." in name or name.startswith("hook_"):
        return name
    if name in _TOP_LEVEL:
        return f"hook_{name}"
    if name in ("scale", "normalized"):
        if layer is None:
            return f"ln_final.hook_{name}"
        return f"blocks.{layer}.{norm or 'ln1'}.hook_{name}"
    if name not in _SUBMODULE and name not in _BLOCK:
        known = sorted(_TOP_LEVEL | _BLOCK | set(_SUBMODULE) | {"scale", "normalized"})
        raise KeyError(f"unknown activation {name!r}; short names are {', '.join(known)}, or give a full hook name")
    if layer is None:
        raise KeyError(f"{name!r} is a per-layer activation; give a layer, e.g. ({name!r}, 0)")
    sub = _SUBMODULE.get(name)
    return f"blocks.{layer}.{sub}.hook_{name}" if sub else f"blocks.{layer}.hook_{name}"


class HookedModule(nn.Module):
    """Mixin for the root model: finds its hook points by name and runs with hooks or a cache."""

    hook_dict: dict[str, HookPoint]

    def setup_hooks(self) -> None:
        """Call at the end of __init__: names every HookPoint by its module path."""
        self.hook_dict = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                self.hook_dict[name] = module

    def hook_points(self, names: NameOrFilter) -> list[HookPoint]:
        """The hook points a name, a list of names, or a filter `fn(name) -> bool` selects."""
        if isinstance(names, str):
            if names not in self.hook_dict:
                close = difflib.get_close_matches(names, self.hook_dict, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else "; see model.hook_dict for every name"
                raise KeyError(f"no hook point named {names!r}{hint}")
            return [self.hook_dict[names]]
        if callable(names):
            return [hp for name, hp in self.hook_dict.items() if names(name)]
        return [hp for name in names for hp in self.hook_points(name)]

    def reset_hooks(self) -> None:
        for hp in self.hook_dict.values():
            hp.fwd_fns.clear()
            hp.bwd_fns.clear()

    @contextmanager
    def hooks(
        self, fwd_hooks: Iterable[tuple[NameOrFilter, HookFn]] = (), bwd_hooks: Iterable[tuple[NameOrFilter, HookFn]] = ()
    ) -> Iterator[HookedModule]:
        """Attach hooks for the body of a `with` block; they are removed on exit, even after an error."""
        attachments: list[tuple[list[HookFn], HookFn]] = []
        for pairs, hook_list in ((fwd_hooks, "fwd_fns"), (bwd_hooks, "bwd_fns")):
            for names, fn in pairs:
                if not callable(fn):
                    raise TypeError(f"hook for {names!r} must be a function (activation, hook) -> activation or None")
                attachments += [(getattr(hp, hook_list), fn) for hp in self.hook_points(names)]
        with _attached(attachments):
            yield self

    def run_with_hooks(self, *args: Any, fwd_hooks: Iterable = (), bwd_hooks: Iterable = (), **kwargs: Any) -> Any:
        with self.hooks(fwd_hooks, bwd_hooks):
            return self(*args, **kwargs)

    def run_with_cache(
        self,
        *args: Any,
        names_filter: NameOrFilter | None = None,
        device: str | torch.device | None = None,
        incl_bwd: bool = False,
        **kwargs: Any,
    ) -> tuple[Any, ActivationCache]:
        """Run the model and keep the activations that `names_filter` selects (all of them when None).

        Activations are stored detached. With `incl_bwd=True` the forward output must be a scalar
        loss or is summed to one, backward runs, and gradients are stored as `<name>_grad`.
        """
        points = self.hook_points(names_filter if names_filter is not None else (lambda _: True))
        store: dict[str, torch.Tensor] = {}

        def save(x: torch.Tensor, hook: HookPoint) -> None:
            store[hook.name] = x.detach() if device is None else x.detach().to(device)

        def save_grad(grad: torch.Tensor, hook: HookPoint) -> None:
            store[hook.name + "_grad"] = grad.detach() if device is None else grad.detach().to(device)

        save.reads_only = True  # lets layer norms keep their fused kernel while their scale is cached

        attachments = [(hp.fwd_fns, save) for hp in points]
        if incl_bwd:
            attachments += [(hp.bwd_fns, save_grad) for hp in points]
        with _attached(attachments):
            out = self(*args, **kwargs)
            if incl_bwd:
                loss = out[1] if isinstance(out, tuple) else out  # return_type="both" gives (logits, loss)
                (loss if loss.ndim == 0 else loss.sum()).backward()
        ordered = {name: store[name] for name in self.hook_dict if name in store}
        ordered.update({k: v for k, v in store.items() if k.endswith("_grad")})
        return out, ActivationCache(ordered, self)
