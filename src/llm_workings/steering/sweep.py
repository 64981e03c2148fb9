"""How much does a steering vector change a behaviour, and what does it cost? A sweep over
coefficients and layers, with a random vector of the same norm as the baseline.

    sweep = steering_sweep(model, v, torch.linspace(-8, 8, 16), TargetProbability(quote_ids), prompts, neutral)
    sweep.behaviour          # [layer, coefficient]: the metric on the prompts, steered
    sweep.perplexity         # [layer, coefficient]: exp(next-token loss) on neutral text, steered
    sweep.random_behaviour   # the same two under a random direction of the vector's norm
    sweep.plot("sweep.png")

The same vector is tried at every layer (its hook with the layer number swapped). Each layer costs
one forward per measurement: the copies for every coefficient, for the vector and for the random
baseline, are stacked along the batch and start at that layer from the unsteered run's residual
stream (analysis.engine.score_stacked_runs, the engine under patching). `batched=False` runs the
plain loop of hooked forwards instead; the two agree to float rounding (tests check it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ..analysis.conventions import AnalysisError, check_layers, check_tokens
from ..analysis.engine import score_stacked_runs
from ..analysis.metrics import Metric, NextTokenLoss, score_runs
from ..analysis.results import Result
from .apply import edit, position_mask, steer
from .vector import SteeringError, SteeringVector

if TYPE_CHECKING:
    from ..transformer import Transformer


class TargetProbability:
    """The probability the model gives any of `targets` (token ids) next at `position`, summed over
    the targets and averaged over prompts: e.g. every token that opens or closes a quotation."""

    def __init__(self, targets: Sequence[int] | torch.Tensor, position: int = -1) -> None:
        self.targets = torch.as_tensor(targets, dtype=torch.long).reshape(-1)
        if self.targets.numel() == 0:
            raise SteeringError("TargetProbability needs at least one target token id")
        self.position = position

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return self.batched(logits[None])[0]

    def batched(self, logits: torch.Tensor) -> torch.Tensor:  # [runs, batch, pos, d_vocab] -> [runs]
        probs = logits[..., self.position, :].float().softmax(-1)
        return probs[..., self.targets.to(logits.device)].sum(-1).mean(-1)

    def __repr__(self) -> str:
        return f"TargetProbability({self.targets.numel()} targets, position={self.position})"


@dataclass
class SteeringSweep(Result):
    """Behaviour and cost per (layer, coefficient), for the vector and for a random one of its norm."""

    result_type = "steering_sweep"

    hook: str  # the vector's hook at its own layer; the sweep swaps in each of `layers`
    normalisation: str
    vector_norm: float
    layers: list[int]
    coefficients: list[float]
    behaviour: torch.Tensor  # [layer, coefficient]
    loss: torch.Tensor  # [layer, coefficient] next-token loss on the neutral text, nats per token
    random_behaviour: torch.Tensor
    random_loss: torch.Tensor
    unsteered_behaviour: float
    unsteered_loss: float
    metric: str

    @property
    def perplexity(self) -> torch.Tensor:
        return self.loss.exp()

    @property
    def random_perplexity(self) -> torch.Tensor:
        return self.random_loss.exp()

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "perplexity": self.perplexity.tolist(), "random_perplexity": self.random_perplexity.tolist()}

    def draw(self, fig: Any) -> None:
        behaviour_ax, cost_ax = fig.subplots(1, 2)
        colours = [f"C{i % 10}" for i in range(len(self.layers))]
        for row, (layer, colour) in enumerate(zip(self.layers, colours)):
            behaviour_ax.plot(self.coefficients, self.behaviour[row], color=colour, label=f"layer {layer}")
            behaviour_ax.plot(self.coefficients, self.random_behaviour[row], color=colour, linestyle=":")
            cost_ax.plot(self.coefficients, self.perplexity[row], color=colour)
            cost_ax.plot(self.coefficients, self.random_perplexity[row], color=colour, linestyle=":")
        behaviour_ax.axhline(self.unsteered_behaviour, color="grey", linewidth=0.8)
        cost_ax.axhline(float(torch.tensor(self.unsteered_loss).exp()), color="grey", linewidth=0.8)
        behaviour_ax.set(xlabel=f"coefficient ({self.normalisation})", ylabel=self.metric, title="behaviour (dotted: random)")
        cost_ax.set(xlabel="coefficient", ylabel="perplexity on neutral text", title="cost (dotted: random)")
        behaviour_ax.legend(fontsize=7)


def _at_layer(vector: SteeringVector, layer: int) -> SteeringVector:
    parts = vector.hook.split(".")
    parts[1] = str(layer)
    return vector.with_(hook=".".join(parts))


def _random_like(vector: SteeringVector, seed: int) -> SteeringVector:
    gen = torch.Generator().manual_seed(seed)
    direction = torch.randn(vector.d, generator=gen)
    return vector.with_(vector=direction * (vector.vector.float().norm() / direction.norm()), normalisation="random")


@torch.no_grad()
def steering_sweep(
    model: Transformer,
    vector: SteeringVector,
    coefficients: Sequence[float] | torch.Tensor,
    metric: Metric,
    prompts: Any,
    neutral: Any,
    layers: Sequence[int] | None = None,
    seed: int = 0,
    batch_size: int = 512,
    batched: bool = True,
) -> SteeringSweep:
    """Score `metric` on `prompts` `[batch, pos]` and the next-token loss on `neutral` `[batch, pos]`
    for every coefficient at every layer (all layers by default, else `layers`), steered by `vector`
    and by a random vector of the same norm (seeded by `seed`). `batch_size` caps the rows
    (copies x prompts) of one forward pass."""
    if not isinstance(vector, SteeringVector):
        raise SteeringError(f"steering_sweep takes a SteeringVector (see from_tensor); got {type(vector).__name__}")
    if vector.layer is None:
        raise SteeringError(f"a sweep over layers needs a hook inside a block (blocks.L.…); {vector.hook} is not")
    coefficients = [float(c) for c in torch.as_tensor(coefficients, dtype=torch.float64).reshape(-1)]
    if not coefficients:
        raise SteeringError("give at least one coefficient to sweep")
    layers = check_layers(model, layers)
    try:
        prompts, neutral = check_tokens(model, prompts, "prompts"), check_tokens(model, neutral, "neutral text")
        cost = NextTokenLoss(neutral)
    except AnalysisError as e:
        raise SteeringError(str(e)) from None
    vector.check_for(model)
    random = _random_like(vector, seed)
    cells = [(v, c) for v in (vector, random) for c in coefficients]  # run i of a layer: cells[i]
    if batched:
        names = [f"blocks.{layer}.hook_resid_pre" for layer in layers]
        entering = {
            kind: model.run_with_cache(tokens, names_filter=names, return_type=None)[1]
            for kind, tokens in (("behaviour", prompts), ("loss", neutral))
        }
        per_layer = [_stacked(model, cells, layer, metric, cost, entering, batch_size) for layer in layers]
    else:
        per_layer = [_looped(model, cells, layer, metric, cost, prompts, neutral) for layer in layers]
    scores = {kind: torch.stack([cell[kind] for cell in per_layer]) for kind in ("behaviour", "loss")}
    n = len(coefficients)
    return SteeringSweep(
        hook=vector.hook,
        normalisation=vector.normalisation,
        vector_norm=float(vector.vector.norm()),
        layers=layers,
        coefficients=coefficients,
        behaviour=scores["behaviour"][:, :n],
        loss=scores["loss"][:, :n],
        random_behaviour=scores["behaviour"][:, n:],
        random_loss=scores["loss"][:, n:],
        unsteered_behaviour=float(score_runs(metric, model(prompts)[None])[0]),
        unsteered_loss=float(cost(model(neutral))),
        metric=repr(metric),
    )


def _stacked(model, cells, layer, metric, cost, entering, batch_size) -> dict[str, torch.Tensor]:
    """Every cell of one layer, stacked along the batch, starting at `layer` from the unsteered
    residual stream `entering[kind]` holds there."""
    hook = _at_layer(cells[0][0], layer).hook
    steered = [v.with_(coefficient=c) for v, c in cells]
    out = {}
    for kind, score in (("behaviour", metric), ("loss", cost)):
        resid = entering[kind][f"blocks.{layer}.hook_resid_pre"]
        batch, n_pos = resid.shape[:2]
        masks = [position_mask(v.positions, 0, n_pos, n_pos) for v in steered]

        def hooks_for(runs: range, batch: int = batch, masks: list = masks) -> list:
            def apply(x: torch.Tensor, _: Any) -> torch.Tensor:
                copies = x.view(len(runs), batch, *x.shape[1:])
                edited = [copy if masks[i] is False else edit(copy, steered[i], masks[i]) for copy, i in zip(copies, runs)]
                return torch.cat(edited)

            return [(hook, apply)]

        out[kind] = score_stacked_runs(model, resid, layer, len(cells), hooks_for, score, batch_size)
    return out


def _looped(model, cells, layer, metric, cost, prompts, neutral) -> dict[str, torch.Tensor]:
    """Every cell of one layer as its own hooked forward passes, from the tokens: the reference."""
    behaviour, loss = [], []
    for v, c in cells:
        steered = _at_layer(v, layer).with_(coefficient=c)
        with steer(model, steered):
            behaviour.append(score_runs(metric, model(prompts)[None])[0])
        with steer(model, steered):
            loss.append(score_runs(cost, model(neutral)[None])[0])
    return {"behaviour": torch.stack(behaviour), "loss": torch.stack(loss)}
