"""The walk cut into the page's stages: for each, the hooks it reads, a Python snippet that
reproduces its numbers, notes on what this model's config makes of it, and its items (wire.py).

Each snippet runs after the walk's preamble (`preamble`), with `model`, `tokens`, `logits`,
`cache`, `pos`, `layer`, `head` defined, and names every item it reproduces by the item's `var`;
the tests run every snippet and compare those names with what the page was sent.
"""

from __future__ import annotations

from typing import Any

from .compute import Walk, sharpened_pattern, top_neurons
from .wire import Numbers, Pairs, Stage, Table, WalkOut, as_matrix, as_numbers, as_vector, tensor

TOP_NEURONS = 8
TOP_TOKENS = 10
MAX_PAIRS = 8  # rotary pairs drawn; a head has rotary_dim / 2 of them
ACTIVATIONS = {
    "gelu": "GELU",
    "gelu_tanh": "GELU (tanh approximation)",
    "relu": "ReLU",
    "silu": "SiLU",
}


def load_line(entry: Any) -> str:
    """The Python that loads a catalog entry's model as the lab does."""
    if entry.source == "zoo":
        return f'from llm_workings import zoo\n\nmodel, tokenizer = zoo.load("{entry.id}")'
    loader = "load" if entry.format == "ours" else "from_hf"
    return f'from llm_workings.transformer import Transformer\n\nmodel = Transformer.{loader}("{entry.location}")'


def preamble(entry: Any, walk: Walk) -> str:
    return (
        "import torch\n"
        f"{load_line(entry)}\n"
        "model.eval()\n"
        f"tokens = torch.tensor([{walk.ids}])\n"
        f"pos, layer, head = {walk.position}, {walk.layer}, {walk.head}\n"
        "logits, cache = model.run_with_cache(tokens)"
    )


class Builder:
    """Turns one walk into its stages, noting each colour-only tensor that was thinned to its budget."""

    def __init__(self, walk: Walk, model: Any, str_tokens: list[str], token_text: Any, sharpen: float) -> None:
        self.walk, self.model, self.w, self.c = walk, model, walk.wiring, walk.cache
        self.p, self.l, self.h = walk.position, walk.layer, walk.head
        self.tokens = str_tokens
        self.token_text = token_text  # ids -> display strings, or None for a model with no tokenizer
        self.sharpen = sharpen
        self.thinned: list[str] = []

    def b(self, name: str) -> str:
        return f"blocks.{self.l}.{name}"

    def vec(self, label: str, var: str, hook: str, index: list[int], axis: str = "d_model"):
        values = self.c[hook][tuple(index)]
        return as_vector(self.thinned, label, var, hook, index, values, axis)

    def resid(self, label: str, var: str, hook: str):
        return self.vec(label, var, hook, [0, self.p])

    def norm_numbers(self, label: str, input_hook: str, scale_hook: str) -> Numbers:
        """The norm's statistics: the mean it removes (LayerNorm only) and the scale it divides by."""
        p = self.p
        scale = self.c[scale_hook][0, p, 0].reshape(1)
        if self.w.norm == "rmsnorm":
            return as_numbers(f"{label}: scale", scale, [[0, p, 0]], ["scale"], hook=scale_hook, var="scale")
        mean = self.c[input_hook][0, p].mean().reshape(1)
        return as_numbers(f"{label}: mean removed", mean, [[0, p]], ["mean"], derived=f"mean:{input_hook}", var="mean")

    def scale_numbers(self, label: str, scale_hook: str) -> Numbers:
        return as_numbers(
            f"{label}: scale",
            self.c[scale_hook][0, self.p, 0].reshape(1),
            [[0, self.p, 0]],
            ["scale"],
            hook=scale_hook,
            var="scale",
        )

    def norm_notes(self) -> list[str]:
        if self.w.norm == "rmsnorm":
            return [
                "RMSNorm (this model's config): no mean is removed; x is divided by scale = √(mean(x²) + ε), then multiplied by the gain w."
            ]
        return [
            "LayerNorm: the mean is removed, the result divided by scale = √(variance + ε), then multiplied by the gain w and shifted by the bias b."
        ]

    # -- the stages ---------------------------------------------------------------------------------
    def embed(self) -> Stage:
        w = self.w
        items: list[Any] = [self.resid("token embedding W_E[token]", "embed", "hook_embed")]
        hooks = ["hook_embed"]
        snippet = 'embed = cache["hook_embed"][0, pos]  # W_E[token]: [d_model]'
        if w.positions == "learned":
            items.append(self.resid("position embedding W_pos[pos]", "pos_embed", "hook_pos_embed"))
            hooks.append("hook_pos_embed")
            snippet += '\npos_embed = cache["hook_pos_embed"][0, pos]  # W_pos[pos]'
        items.append(self.resid("their sum: the residual stream entering block 0", "resid", "blocks.0.hook_resid_pre"))
        hooks.append("blocks.0.hook_resid_pre")
        snippet += '\nresid = cache["blocks.0.hook_resid_pre"][0, pos]'
        snippet += "\ntorch.testing.assert_close(resid, embed" + (" + pos_embed)" if w.positions == "learned" else ")")
        notes = {
            "learned": ["Learned positions: a vector W_pos[pos] is added to the token's embedding."],
            "none": ["This model adds no position information: only the causal mask tells positions apart."],
        }.get(w.positions, [])
        if w.positions == "rotary":
            notes = [
                f"Rotary positions: nothing is added to the embedding. Instead, in every layer, {w.rotary_dim} of each head's "
                f"{w.d_head} query and key dimensions are rotated in pairs by an angle that grows with the position, "
                "so q·k depends on how far apart the two tokens are."
            ]
            items += [self.pairs("q", "hook_q", "hook_rot_q", self.h), self.pairs("k", "hook_k", "hook_rot_k", self.walk.kv_head)]
            hooks += [self.b("attn.hook_rot_q"), self.b("attn.hook_rot_k")]
            snippet += (
                '\nq, q_rot = cache[f"blocks.{layer}.attn.hook_q"][0, pos, head], cache[f"blocks.{layer}.attn.hook_rot_q"][0, pos, head]'
                "\nhalf = model.cfg.rotary_dim // 2"
                "\nfrom llm_workings.transformer.rotary import inverse_frequencies"
                "\nangles = pos * inverse_frequencies(model.cfg)  # one angle per pair (d, d + half)"
                "\nturned = q[:half] * angles.cos() - q[half : 2 * half] * angles.sin()"
                "\ntorch.testing.assert_close(turned, q_rot[:half])"
            )
        return Stage(id="embed", title="1 · Token and position embedding", notes=notes, hooks=hooks, snippet=snippet, items=items)

    def pairs(self, which: str, before_hook: str, after_hook: str, head: int) -> Pairs:
        from ...transformer.rotary import inverse_frequencies

        half = self.w.rotary_dim // 2
        n = min(MAX_PAIRS, half)
        before = self.c[self.b(f"attn.{before_hook}")][0, self.p, head]
        after = self.c[self.b(f"attn.{after_hook}")][0, self.p, head]
        dims = [[d, d + half] for d in range(n)]
        flat = [i for pair in dims for i in pair]
        freqs = inverse_frequencies(self.model.cfg)[:n].float()
        angles = self.p * freqs
        return Pairs(
            label=f"{which} of head {head}: pairs of coordinates, turned by position × frequency",
            hooks=[self.b(f"attn.{before_hook}"), self.b(f"attn.{after_hook}")],
            index=[0, self.p, head],
            dims=dims,
            before=tensor(before[flat].reshape(n, 2).numpy()),
            after=tensor(after[flat].reshape(n, 2).numpy()),
            angles=as_numbers(
                "angle (radians)",
                angles,
                [[d] for d in range(n)],
                [f"pair {d}" for d in range(n)],
                derived="rotary_angle",
                var="angles",
            ),
            frequencies=freqs.tolist(),
            positions=len(self.tokens),
        )

    def ln1(self) -> Stage:
        pre, scale, out = self.b("hook_resid_pre"), self.b("ln1.hook_scale"), self.b("ln1.hook_normalized")
        items = [self.resid(f"the stream entering block {self.l}", "resid_pre", pre)]
        if self.w.norm == "layernorm":
            items.append(self.norm_numbers("ln1", pre, scale))
        items += [self.scale_numbers("ln1", scale), self.resid("normalized (after the gain and bias)", "normalized", out)]
        snippet = (
            'resid_pre = cache[f"blocks.{layer}.hook_resid_pre"][0, pos]\n'
            + ("mean = resid_pre.mean()\n" if self.w.norm == "layernorm" else "")
            + 'scale = cache[f"blocks.{layer}.ln1.hook_scale"][0, pos, 0]\n'
            + 'normalized = cache[f"blocks.{layer}.ln1.hook_normalized"][0, pos]\n'
            + "ln1 = model.blocks[layer].ln1\n"
            + (
                "torch.testing.assert_close(normalized, (resid_pre - mean) / scale * ln1.w + ln1.b)"
                if self.w.norm == "layernorm"
                else "torch.testing.assert_close(normalized, resid_pre / scale * ln1.w)"
            )
        )
        return Stage(
            id="ln1",
            title="2 · The layer norm before attention",
            notes=self.norm_notes(),
            hooks=[pre, scale, out],
            snippet=snippet,
            items=items,
        )

    def qkv(self) -> Stage:
        w, p, h, kv = self.w, self.p, self.h, self.walk.kv_head
        names = [self.b(f"attn.hook_{n}") for n in ("q", "k", "v")]
        items = [
            self.vec(f"q: query of head {h}", "q", names[0], [0, p, h], "d_head"),
            self.vec(f"k: key of kv head {kv}", "k", names[1], [0, p, kv], "d_head"),
            self.vec(f"v: value of kv head {kv}", "v", names[2], [0, p, kv], "d_head"),
        ]
        notes = [f"Each head reads the normed stream through its own W_Q, W_K, W_V [d_model={w.d_model}, d_head={w.d_head}]."]
        if w.n_kv_heads != w.n_heads:
            notes.append(
                f"Grouped-query attention: {w.n_heads} query heads share {w.n_kv_heads} key/value heads, so head {h} reads kv head {kv}."
            )
        snippet = (
            "kv_head = head // (model.cfg.n_heads // model.cfg.n_kv_heads)\n"
            'x = cache[f"blocks.{layer}.ln1.hook_normalized"][0, pos]\n'
            'q = cache[f"blocks.{layer}.attn.hook_q"][0, pos, head]\n'
            'k = cache[f"blocks.{layer}.attn.hook_k"][0, pos, kv_head]\n'
            'v = cache[f"blocks.{layer}.attn.hook_v"][0, pos, kv_head]\n'
            "attn = model.blocks[layer].attn\n"
            "b_Q = 0 if attn.b_Q is None else attn.b_Q[head]\n"
            "torch.testing.assert_close(q, x @ attn.W_Q[head] + b_Q)"
        )
        if w.positions == "rotary":
            names += [self.b("attn.hook_rot_q"), self.b("attn.hook_rot_k")]
            items += [
                self.vec("q after rotation", "q_rot", names[3], [0, p, h], "d_head"),
                self.vec("k after rotation", "k_rot", names[4], [0, p, kv], "d_head"),
            ]
            notes.append("With rotary positions, the scores use the rotated q and k.")
            snippet += (
                '\nq_rot = cache[f"blocks.{layer}.attn.hook_rot_q"][0, pos, head]'
                '\nk_rot = cache[f"blocks.{layer}.attn.hook_rot_k"][0, pos, kv_head]'
            )
        return Stage(
            id="qkv", title="3 · Query, key and value of the chosen head", notes=notes, hooks=names, snippet=snippet, items=items
        )

    def scores(self) -> Stage:
        w, p, h = self.w, self.p, self.h
        n = len(self.tokens)
        s_hook, p_hook = self.b("attn.hook_attn_scores"), self.b("attn.hook_pattern")
        keys = [[0, h, p, j] for j in range(n)]
        labels = [f"{j}" for j in range(n)]
        scores = self.c[s_hook][0, h, p]
        items: list[Any] = [
            as_numbers("√d_head, the scores' divisor", _sqrt(w.d_head), [[0]], ["√d_head"], derived="sqrt_d_head"),
            as_numbers(
                f"scores of query {p} against every key: q·k / √d_head, −∞ after the query",
                scores,
                keys,
                labels,
                hook=s_hook,
                var="scores",
            ),
            as_numbers(
                f"pattern: softmax of the scores (query {p}'s weights)",
                self.c[p_hook][0, h, p],
                keys,
                labels,
                hook=p_hook,
                var="pattern",
            ),
        ]
        if self.sharpen != 1.0:
            items.append(
                as_numbers(
                    f"softmax({self.sharpen:g} × scores): the pattern with the scores scaled",
                    sharpened_pattern(scores, self.sharpen),
                    [[j] for j in range(n)],
                    labels,
                    derived=f"sharpened:{self.sharpen!r}",
                    var="sharpened",
                )
            )
        items.append(
            as_matrix(
                self.thinned,
                f"head {h}'s whole pattern: every query (row) over every key (column)",
                "pattern_all",
                p_hook,
                [0, h],
                self.c[p_hook][0, h],
                ([f"{i}" for i in range(n)], labels),
                ("query", "key"),
            )
        )
        snippet = (
            'scores = cache[f"blocks.{layer}.attn.hook_attn_scores"][0, head, pos]\n'
            'pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0, head, pos]\n'
            'pattern_all = cache[f"blocks.{layer}.attn.hook_pattern"][0, head]\n'
            f'k_all = cache[f"blocks.{{layer}}.attn.hook_{"rot_k" if w.positions == "rotary" else "k"}"][0, :, kv_head]\n'
            f'q = cache[f"blocks.{{layer}}.attn.hook_{"rot_q" if w.positions == "rotary" else "q"}"][0, pos, head]\n'
            "by_hand = (k_all @ q) / model.cfg.d_head**0.5\n"
            "by_hand[pos + 1 :] = float('-inf')  # the causal mask\n"
            "torch.testing.assert_close(scores, by_hand)\n"
            "torch.testing.assert_close(pattern, by_hand.softmax(-1))"
        )
        if self.sharpen != 1.0:
            snippet += f"\nsharpened = ({self.sharpen!r} * scores).softmax(-1)"
        notes = [
            "A query sees only itself and the keys before it: the causal mask sets the scores of later keys to −∞, so the softmax gives them weight 0."
        ]
        return Stage(
            id="scores",
            title="4 · Scores, the causal mask and the softmax",
            notes=notes,
            hooks=[s_hook, p_hook],
            snippet=snippet,
            items=items,
        )

    def z(self) -> Stage:
        p, h = self.p, self.h
        z_hook, r_hook = self.b("attn.hook_z"), self.b("attn.hook_result")
        items = [
            self.vec(f"z: query {p}'s weighted sum of the values", "z", z_hook, [0, p, h], "d_head"),
            self.vec(f"head {h}'s output: z @ W_O[{h}]", "result", r_hook, [0, p, h]),
        ]
        snippet = (
            'z = cache[f"blocks.{layer}.attn.hook_z"][0, pos, head]\n'
            'v_all = cache[f"blocks.{layer}.attn.hook_v"][0, :, kv_head]\n'
            'weights = cache[f"blocks.{layer}.attn.hook_pattern"][0, head, pos]\n'
            "torch.testing.assert_close(z, weights @ v_all)\n"
            'result = cache[f"blocks.{layer}.attn.hook_result"][0, pos, head]\n'
            "torch.testing.assert_close(result, z @ model.blocks[layer].attn.W_O[head])"
        )
        notes = [
            f"W_O[{h}] is [d_head={self.w.d_head}, d_model={self.w.d_model}]: it writes the head's d_head numbers back into the stream."
        ]
        return Stage(
            id="z",
            title="5 · The weighted sum of values, and W_O",
            notes=notes,
            hooks=[z_hook, r_hook],
            snippet=snippet,
            items=items,
        )

    def attn_out(self) -> Stage:
        w, p = self.w, self.p
        r_hook, out_hook = self.b("attn.hook_result"), self.b("hook_attn_out")
        heads = self.c[r_hook][0, p]
        items: list[Any] = [
            as_matrix(
                self.thinned,
                "every head's output at this position (row: head)",
                "results",
                r_hook,
                [0, p],
                heads,
                ([f"head {i}" for i in range(w.n_heads)], [str(i) for i in range(w.d_model)]),
                ("head", "d_model"),
            ),
            self.resid("attn_out: their sum (plus b_O)", "attn_out", out_hook),
        ]
        hooks = [r_hook, out_hook]
        snippet = (
            'results = cache[f"blocks.{layer}.attn.hook_result"][0, pos]  # [head, d_model]\n'
            'attn_out = cache[f"blocks.{layer}.hook_attn_out"][0, pos]\n'
            "b_O = model.blocks[layer].attn.b_O\n"
            "torch.testing.assert_close(attn_out, results.sum(0) + (0 if b_O is None else b_O))\n"
            'resid_pre = cache[f"blocks.{layer}.hook_resid_pre"][0, pos]'
        )
        if w.has_resid_mid:
            items.append(self.resid("resid_mid = resid_pre + attn_out", "resid_mid", self.b("hook_resid_mid")))
            hooks.append(self.b("hook_resid_mid"))
            snippet += '\nresid_mid = cache[f"blocks.{layer}.hook_resid_mid"][0, pos]\ntorch.testing.assert_close(resid_mid, resid_pre + attn_out)'
            notes = ["The residual add: the block's attention output is added to the stream it read."]
        elif w.attn_only:
            items.append(self.resid("resid_post = resid_pre + attn_out (no MLP)", "resid_post", self.b("hook_resid_post")))
            hooks.append(self.b("hook_resid_post"))
            snippet += '\nresid_post = cache[f"blocks.{layer}.hook_resid_post"][0, pos]\ntorch.testing.assert_close(resid_post, resid_pre + attn_out)'
            notes = ["Attention-only model (its config's attn_only): the block ends here, resid_post = resid_pre + attn_out."]
        else:
            notes = [
                "Parallel residual (its config's parallel_residual, as in GPT-NeoX): the MLP does not wait for attention; both read resid_pre, and both outputs are added at once in the next stage."
            ]
        return Stage(
            id="attn_out",
            title="6 · The sum over heads, and the residual add",
            notes=notes,
            hooks=hooks,
            snippet=snippet,
            items=items,
        )

    def mlp(self) -> Stage:
        w, p = self.w, self.p
        reads = self.b("hook_resid_mid") if w.has_resid_mid else self.b("hook_resid_pre")
        scale, normed = self.b("ln2.hook_scale"), self.b("ln2.hook_normalized")
        pre, post, out = self.b("mlp.hook_pre"), self.b("mlp.hook_post"), self.b("hook_mlp_out")
        items: list[Any] = []
        if w.norm == "layernorm":
            items.append(self.norm_numbers("ln2", reads, scale))
        items += [self.scale_numbers("ln2", scale), self.resid("ln2's output, the MLP's input", "x", normed)]
        act = ACTIVATIONS[w.act]
        gate_label = f"pre: x @ W_gate, the gate, {act}'s input" if w.gated_mlp else f"pre: x @ W_in + b_in, {act}'s input"
        items.append(self.vec(gate_label, "pre", pre, [0, p], "d_mlp"))
        hooks = [scale, normed, pre]
        if w.gated_mlp:
            lin = self.b("mlp.hook_pre_linear")
            items.append(self.vec("pre_linear: x @ W_in, the up projection", "pre_linear", lin, [0, p], "d_mlp"))
            hooks.append(lin)
        post_label = f"post: {act}(gate) × up" if w.gated_mlp else f"post: {act}(pre)"
        items.append(self.vec(post_label, "post", post, [0, p], "d_mlp"))
        post_row = self.c[post][0, p]
        top = top_neurons(post_row, TOP_NEURONS)
        w_out = self.model.blocks[self.l].mlp.W_out.detach().float().cpu()
        columns = [as_numbers("pre", self.c[pre][0, p, top], [[0, p, i] for i in top], [str(i) for i in top], hook=pre)]
        if w.gated_mlp:
            lin = self.b("mlp.hook_pre_linear")
            columns.append(
                as_numbers("pre_linear", self.c[lin][0, p, top], [[0, p, i] for i in top], [str(i) for i in top], hook=lin)
            )
        columns.append(as_numbers("post", post_row[top], [[0, p, i] for i in top], [str(i) for i in top], hook=post))
        norms = post_row[top].abs() * w_out[top].norm(dim=-1)
        columns.append(
            as_numbers(
                "|output|", norms, [[0, p, i] for i in top], [str(i) for i in top], derived="neuron_out_norm", var="out_norms"
            )
        )
        items.append(
            Table(
                label=f"the {len(top)} neurons with the largest |post|, and the size of what each writes (|post| × ‖W_out[i]‖)",
                row_title="neuron",
                row_labels=[str(i) for i in top],
                columns=columns,
            )
        )
        items.append(self.resid("mlp_out: post @ W_out + b_out", "mlp_out", out))
        items.append(self.resid("resid_post: the stream leaving the block", "resid_post", self.b("hook_resid_post")))
        hooks += [post, out, self.b("hook_resid_post")]
        added = "resid_pre + attn_out + mlp_out" if w.parallel_residual else "resid_mid + mlp_out"
        reads_name = "hook_resid_mid" if w.has_resid_mid else "hook_resid_pre"
        snippet = (
            f'resid_in = cache[f"blocks.{{layer}}.{reads_name}"][0, pos]  # what ln2 reads\n'
            + ("mean = resid_in.mean()\n" if w.norm == "layernorm" else "")
            + 'scale = cache[f"blocks.{layer}.ln2.hook_scale"][0, pos, 0]\n'
            + 'x = cache[f"blocks.{layer}.ln2.hook_normalized"][0, pos]\n'
            + 'pre = cache[f"blocks.{layer}.mlp.hook_pre"][0, pos]\n'
            + ('pre_linear = cache[f"blocks.{layer}.mlp.hook_pre_linear"][0, pos]\n' if w.gated_mlp else "")
            + 'post = cache[f"blocks.{layer}.mlp.hook_post"][0, pos]\n'
            + "mlp = model.blocks[layer].mlp\n"
            + f"torch.testing.assert_close(post, mlp.act(pre){' * pre_linear' if w.gated_mlp else ''})\n"
            + "top = post.abs().topk(8).indices\n"
            + "out_norms = post[top].abs() * mlp.W_out[top].norm(dim=-1)\n"
            + 'mlp_out = cache[f"blocks.{layer}.hook_mlp_out"][0, pos]\n'
            + "b_out = 0 if mlp.b_out is None else mlp.b_out\n"
            + "torch.testing.assert_close(mlp_out, post @ mlp.W_out + b_out)\n"
            + 'resid_post = cache[f"blocks.{layer}.hook_resid_post"][0, pos]\n'
            + 'resid_pre = cache[f"blocks.{layer}.hook_resid_pre"][0, pos]\n'
            + 'attn_out = cache[f"blocks.{layer}.hook_attn_out"][0, pos]\n'
            + f"torch.testing.assert_close(resid_post, resid_pre + attn_out + mlp_out)  # = {added}"
        )
        notes = self.norm_notes()
        if w.gated_mlp:
            notes.append(
                f"Gated MLP (its config's gated_mlp, SwiGLU as in Llama): post = {act}(x W_gate) × (x W_in), then post @ W_out."
            )
        else:
            notes.append(
                f"post = {act}(x W_in + b_in): each of the d_mlp={w.d_mlp} neurons fires or not; post @ W_out writes back."
            )
        if w.parallel_residual:
            notes.append(
                "Parallel residual: ln2 reads resid_pre, the same stream attention read; resid_post = resid_pre + attn_out + mlp_out."
            )
        return Stage(id="mlp", title="7 · The MLP", notes=notes, hooks=hooks, snippet=snippet, items=items)

    def unembed(self) -> Stage:
        w, p = self.w, self.p
        last = f"blocks.{w.n_layers - 1}.hook_resid_post"
        scale, normed = "ln_final.hook_scale", "ln_final.hook_normalized"
        items: list[Any] = [self.resid("the stream after the last block", "final", last)]
        if w.norm == "layernorm":
            items.append(self.norm_numbers("ln_final", last, scale))
        items += [self.scale_numbers("ln_final", scale), self.resid("ln_final's output", "final_normed", normed)]
        row = self.walk.logits[0, p]
        probs = row.softmax(-1)
        top = probs.topk(min(TOP_TOKENS, w.d_vocab)).indices.tolist()
        names = [str(t) for t in top] if self.token_text is None else self.token_text(top)
        ids = [[0, p, t] for t in top]
        columns = [
            as_numbers("id", _ints(top), ids, names, derived="token_id"),
            as_numbers("logit", row[top], ids, names, derived="logits", var="top_logits"),
            as_numbers("probability", probs[top], ids, names, derived="probs", var="top_probs"),
        ]
        items.append(
            Table(
                label=f"the {len(top)} likeliest next tokens after position {p}",
                row_title="token",
                row_labels=names,
                columns=columns,
            )
        )
        snippet = (
            f'final = cache["{last}"][0, pos]\n'
            + ("mean = final.mean()\n" if w.norm == "layernorm" else "")
            + 'scale = cache["ln_final.hook_scale"][0, pos, 0]\n'
            + 'final_normed = cache["ln_final.hook_normalized"][0, pos]\n'
            + "b_U = 0 if model.unembed.b_U is None else model.unembed.b_U\n"
            + "torch.testing.assert_close(logits[0, pos], final_normed @ model.W_U + b_U)\n"
            + "probs = logits[0, pos].softmax(-1)\n"
            + f"top = probs.topk({len(top)}).indices\n"
            + "top_logits, top_probs = logits[0, pos, top], probs[top]"
        )
        notes = self.norm_notes() + [
            f"The unembedding W_U [d_model={w.d_model}, d_vocab={w.d_vocab}] gives one logit per token; the softmax turns them into the next-token distribution."
        ]
        return Stage(
            id="unembed",
            title="8 · The final norm, the unembedding and the next-token softmax",
            notes=notes,
            hooks=[last, scale, normed],
            snippet=snippet,
            items=items,
        )


def _sqrt(n: int) -> Any:
    import torch

    return torch.tensor([float(n) ** 0.5], dtype=torch.float32)


def _ints(values: list[int]) -> Any:
    import torch

    return torch.tensor(values, dtype=torch.float32)


def build(entry: Any, model: Any, walk: Walk, str_tokens: list[str], bos: bool, token_text: Any, sharpen: float) -> WalkOut:
    from dataclasses import asdict

    builder = Builder(walk, model, str_tokens, token_text, sharpen)
    stages = [builder.embed(), builder.ln1(), builder.qkv(), builder.scores(), builder.z(), builder.attn_out()]
    if walk.wiring.has_mlp:
        stages.append(builder.mlp())
    stages.append(builder.unembed())
    return WalkOut(
        model=entry.id,
        ids=walk.ids,
        str_tokens=str_tokens,
        bos=bos,
        position=walk.position,
        layer=walk.layer,
        head=walk.head,
        kv_head=walk.kv_head,
        wiring=asdict(walk.wiring),
        preamble=preamble(entry, walk),
        stages=stages,
        thinned=builder.thinned,
    )
