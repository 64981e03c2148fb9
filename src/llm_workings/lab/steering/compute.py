"""The Steering page's engine side: pure functions of a held model and the page's settings, over
`llm_workings.steering`. Every number the page shows comes from here:

    vector = build_vector(held, settings)                # from prompt pairs or a probe, cached
    plain, steered = generate_pair(held, vector, prompt, settings)   # same seed, with and without
    sweep = measure(held, vector, prompt, settings)      # behaviour and cost against coefficient

The behaviour is the probability that the token after the prompt contains the `target` text; the
cost is the perplexity of neutral text from the model's own corpus; both are also measured for a
random direction of the same norm (the steering engine's baseline). The sweep adds the vector at
every position: added only after the prompt, it could not change the first token's odds.
"""

from __future__ import annotations

from typing import Any

from ..errors import ApiError
from ..memo import Lru
from .settings import MAX_PAIRS, PROBES, SWEEP_POINTS

PROBE_CHARS = 40_000  # of the corpus's validation text the probe reads (its start, so quote state is known)
PROBE_WINDOWS = 24
NEUTRAL = (8, 64)  # windows x tokens of neutral text, read after the probe's part


VECTORS = Lru(16)
TEXTS = Lru(8)


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """'positive | negative' per line, '\\n' meaning a line break -> pairs; ApiError (field pairs) otherwise."""
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ApiError(f"line {number} of the pairs is not 'positive | negative': {line[:60]!r}", field="pairs")
        pairs.append(tuple(p.strip().replace("\\n", "\n") for p in parts))
    if not pairs:
        raise ApiError("give at least one pair, one per line: positive | negative", field="pairs")
    if len(pairs) > MAX_PAIRS:
        raise ApiError(f"at most {MAX_PAIRS} pairs; got {len(pairs)}", field="pairs")
    return pairs


def _check_layer(held: Any, layer: int) -> None:
    n = held.model.cfg.n_layers
    if not 0 <= layer < n:
        raise ApiError(f"layer must be from 0 to {n - 1} ({held.entry.id} has {n} layers); got {layer}", field="layer")


def _corpus_text(held: Any, corpus: str) -> str:
    from ...data.corpora import load_corpus

    return load_corpus(corpus).val


def _own_corpus(held: Any) -> str:
    """The corpus a model's neutral text comes from: Shakespeare for the character model, else Austen."""
    return "tinyshakespeare" if held.entry.task == "char-lm" else "austen"


def _probe_data(held: Any, probe: str) -> tuple[Any, Any]:
    import torch

    from ...data import text_labels

    corpus, _ = PROBES[probe]
    text = _corpus_text(held, corpus)[:PROBE_CHARS]
    labels = getattr(text_labels, probe)(text)
    try:
        windows, token_labels = text_labels.text_windows(text, labels, held.tokenizer.inner, 128, PROBE_WINDOWS)
    except ValueError as e:
        raise ApiError(
            f"{held.entry.id} cannot read the {corpus} corpus for this probe: {e}", status=422, field="probe"
        ) from None
    return torch.from_numpy(windows), torch.from_numpy(token_labels)


def build_vector(held: Any, settings: dict[str, Any]) -> Any:
    """The steering vector the settings describe, at `blocks.{layer}.hook_resid_pre` (cached)."""
    from ...steering import SteeringError, from_contrast, from_probe

    if held.tokenizer is None:
        raise ApiError(f"{held.entry.id} reads task tokens, not text: pick a language model", status=422, field="model")
    if settings["source"] != "sae":  # an SAE's vector sits at the SAE's own hook
        _check_layer(held, settings["layer"])
    hook = ("resid_pre", settings["layer"])
    if settings["source"] == "pairs":
        pairs = parse_pairs(settings["pairs"])
        key = (held.entry.id, held.entry.stamp, "pairs", tuple(pairs), settings["aggregation"], settings["layer"])

        def build() -> Any:
            for pair in pairs:  # each text must tokenize (the tokenizer's own error, named as the pairs')
                for text in pair:
                    try:
                        held.tokenizer.encode(text)
                    except ApiError as e:
                        raise ApiError(f"the pair text {text[:40]!r}: {e}", field="pairs") from None
            try:
                return from_contrast(held.model, pairs, hook, aggregation=settings["aggregation"])
            except SteeringError as e:
                raise ApiError(str(e), field="pairs") from None

    elif settings["source"] == "sae":
        return sae_vector(held, settings["sae"], settings["latent"])
    else:
        key = (held.entry.id, held.entry.stamp, "probe", settings["probe"], settings["layer"])

        def build() -> Any:
            windows, labels = _probe_data(held, settings["probe"])
            try:
                return from_probe(held.model, windows, labels, hook)
            except SteeringError as e:
                raise ApiError(str(e), field="probe") from None

    with held.lock:
        return VECTORS.get(key, build)


def sae_vector(held: Any, name: str, latent: int) -> Any:
    """Latent `latent`'s decoder row of the bundled SAE `name`, at the SAE's hook, with its top logit
    tokens in the metadata (cached). Only bundled SAEs of this very model are accepted."""
    from ...sae.bundled import bundled_card, list_bundled, load_bundled
    from ...sae.dashboard import logit_effects
    from ...steering import SteeringError, from_decoder_row

    bundled = list_bundled()
    if name not in bundled:
        raise ApiError(f"unknown SAE {name!r}; the bundled ones are {', '.join(bundled)}", field="sae")
    model_name = bundled_card(name)["model"]
    if model_name != held.entry.id:
        raise ApiError(f"{name} was trained on {model_name}, not {held.entry.id}", status=422, field="sae")

    def build() -> Any:
        sae = load_bundled(name)
        if not 0 <= latent < sae.cfg.d_sae:
            raise ApiError(
                f"latent must be from 0 to {sae.cfg.d_sae - 1} ({name} has {sae.cfg.d_sae}); got {latent}", field="latent"
            )
        row = sae.W_dec.detach()[latent].float()
        top, _ = logit_effects(held.model, row, 5)
        try:
            return from_decoder_row(
                sae.cfg.hook_name, row, metadata={"latent": latent, "top_logits": " ".join(repr(t["token"]) for t in top)}
            )
        except SteeringError as e:
            raise ApiError(str(e), status=422, field="sae") from None

    with held.lock:
        return VECTORS.get((held.entry.id, held.entry.stamp, "sae", name, latent), build)


def neutral_tokens(held: Any) -> Any:
    """`[8, 64]` tokens of the model's own corpus that no probe read: the text the cost is measured on."""
    import torch

    corpus = _own_corpus(held)

    def build() -> Any:
        text = _corpus_text(held, corpus)[PROBE_CHARS : PROBE_CHARS + 20_000]
        ids = held.tokenizer.encode(text)
        n = NEUTRAL[0] * NEUTRAL[1]
        if len(ids) < n:
            raise ApiError(f"the {corpus} corpus gives only {len(ids)} tokens of neutral text; need {n}", status=422)
        return torch.tensor(ids[:n]).view(*NEUTRAL)

    return TEXTS.get((held.entry.id, held.entry.stamp, "neutral"), build)


def target_ids(held: Any, target: str) -> list[int]:
    """Every token whose text contains `target`: the behaviour is their total probability."""
    if not target:
        raise ApiError("the target text is empty: type what the next token should contain", field="target")
    spelled = TEXTS.get(
        (held.entry.id, held.entry.stamp, "spelled"), lambda: held.tokenizer.token_text(range(held.model.cfg.d_vocab))
    )
    ids = [i for i, text in enumerate(spelled) if target in text]
    if not ids:
        raise ApiError(f"no token of {held.entry.id} contains {target!r}", field="target")
    return ids


def generate_pair(held: Any, vector: Any, prompt: Any, settings: dict[str, Any]) -> tuple[list[int], list[int]]:
    """The prompt continued without and with the vector, drawn with the same seed: the new ids of each."""
    import torch

    from ...steering import steer

    steered = vector.with_(coefficient=settings["coefficient"], positions=settings["positions"])
    tokens = prompt.tensor()
    kwargs = dict(
        max_new_tokens=settings["new_tokens"], temperature=settings["temperature"], seed=settings["seed"], stop_at_eos=False
    )
    with held.lock, torch.no_grad():
        plain = held.model.generate(tokens, **kwargs)[0, tokens.shape[1] :].tolist()
        with steer(held.model, steered):
            changed = held.model.generate(tokens, **kwargs)[0, tokens.shape[1] :].tolist()
    return plain, changed


def measure(held: Any, vector: Any, prompt: Any, settings: dict[str, Any]) -> Any:
    """The steering sweep at the vector's layer: `SWEEP_POINTS` coefficients from -sweep_max to +sweep_max."""
    import torch

    from ...steering import TargetProbability, steering_sweep

    metric = TargetProbability(target_ids(held, settings["target"]))
    coefficients = torch.linspace(-settings["sweep_max"], settings["sweep_max"], SWEEP_POINTS)
    neutral = neutral_tokens(held)
    with held.lock:
        return steering_sweep(
            held.model, vector.with_(positions="all"), coefficients, metric, prompt.tensor(), neutral, [vector.layer]
        )
