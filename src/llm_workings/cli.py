"""The `llmw` command. Thin: parse arguments, call the engine, print."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .lab.config import LabConfig


def _lab(args: argparse.Namespace) -> int:
    # Imported here so `llmw --help` stays instant; torch is imported later still, on the first transformer request.
    from .lab.server import bind, url_of, uvicorn_server

    config = LabConfig(
        host=args.host,
        port=args.port,
        models=tuple(args.model),
        runs_dir=Path(args.runs_dir),
        model_memory_mb=args.model_memory_mb,
        max_jobs=args.max_jobs,
        verbose=args.verbose,
    )
    try:
        sock = bind(args.host, args.port)
    except OSError as e:
        print(f"llmw lab: cannot listen on {args.host}:{args.port}: {e.strerror}. Try another --port.", file=sys.stderr)
        return 1
    server = uvicorn_server(config, sock)
    if args.host in ("0.0.0.0", "::"):
        print("llmw lab: listening on every interface; anyone who can reach this machine can use the lab.", file=sys.stderr)
    for entry in server.config.app.state.models.catalog():
        if entry.source == "cli" and not entry.available:
            print(f"llmw lab: --model {entry.label}: {entry.reason}", file=sys.stderr)
    url = url_of(args.host, sock.getsockname()[1])
    print(f"LLM Workings lab at {url}  (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(url)
    server.run(sockets=[sock])
    print("\nstopped")
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1; got {text!r}")
    return value


def _model_info(args: argparse.Namespace) -> int:
    from .transformer.info import describe, format_info
    from .transformer.loading import LoadError

    try:
        info = describe(args.model, batch=args.batch, seq=args.seq, dtype=args.dtype)
    except (LoadError, ValueError) as e:
        print(f"llmw model info: {e}", file=sys.stderr)
        return 2
    if args.json:
        import json

        print(json.dumps(info, indent=2))
    else:
        print(format_info(info))
    return 0


def _train(args: argparse.Namespace, extra: list[str]) -> int:
    from .train import CheckpointError, DivergenceError, TrainConfigError
    from .transformer.config import ConfigError
    from .zoo import get_recipe, run_recipe

    try:
        overrides = parse_overrides(extra)
        recipe = get_recipe(args.recipe).with_overrides(overrides)
    except (ValueError, ConfigError, TrainConfigError) as e:
        print(f"llmw train: {e}", file=sys.stderr)
        return 2
    out = args.out or f"runs/{recipe.name}"
    try:
        run_recipe(recipe, out, overrides, progress=not args.no_progress)
    except (DivergenceError, CheckpointError) as e:
        print(f"llmw train: {e}", file=sys.stderr)
        return 1
    from .zoo.registry import CARD

    if not (Path(out) / CARD).is_file():
        return 130  # stopped with Ctrl-C; the checkpoint is written, and the same command resumes
    print(f"trained {recipe.name}: model, card and snapshots in {out}")
    return 0


def parse_overrides(extra: list[str]) -> dict[str, str]:
    """`--key=value` (or `--key value`) pairs after the recipe name, as nanoGPT's configurator takes them."""
    overrides, i = {}, 0
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--") or arg == "--":
            raise ValueError(f"expected --setting=value, got {arg!r}")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(extra):
                raise ValueError(f"--{key} needs a value")
            value, i = extra[i + 1], i + 1
        overrides[key.replace("-", "_")] = value
        i += 1
    return overrides


def _sample(args: argparse.Namespace) -> int:
    from .transformer.loading import LoadError
    from .zoo import load

    try:
        model, tokenizer = load(args.model)
    except (LoadError, ValueError, OSError) as e:
        print(f"llmw sample: {e}", file=sys.stderr)
        return 2
    if tokenizer is None:
        print(
            f"llmw sample: {args.model} works on token ids (a synthetic task) and has no tokenizer to read a prompt",
            file=sys.stderr,
        )
        return 2
    try:
        text = model.generate(
            args.prompt,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            seed=args.seed,
            crop_context=True,
            prepend_bos=False,
        )
    except ValueError as e:
        print(f"llmw sample: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from .analysis.runner import run_analysis, write_outputs

    options = {
        "activation": args.activation,
        "by_position": args.by_position,
        "composition": args.composition,
        "method": args.method,
        "property": args.property,
        "receivers": args.receivers.split(",") if args.receivers else None,
        "steps": args.steps,
        "baseline": args.baseline,
    }
    try:
        result, headline = run_analysis(
            args.model, args.analysis, seed=args.seed, prompt=args.prompt, **{k: v for k, v in options.items() if v is not None}
        )
    except (ValueError, OSError) as e:  # AnalysisError (any bad analysis input) and LoadError are ValueErrors
        print(f"llmw analyze: {e}", file=sys.stderr)
        return 2
    out = args.out or str(Path("analysis") / Path(args.model).name)
    paths = write_outputs(result, out, args.analysis, args.format)
    print(headline)
    print("wrote " + " and ".join(str(p) for p in paths))
    return 0


ANALYSES_HELP = (
    "logit-lens, dla (direct logit attribution), heads (previous-token, duplicate-token and induction "
    "scores, entropy), composition (Q/K/V composition scores), patching, path-patching, "
    "attribution-patching (with its correlation to true patching), ablation, fourier (modular addition), "
    "probe (language models), saliency (integrated gradients, with gradient x input and attention rollout)"
)


def _finetune(args: argparse.Namespace) -> int:
    from .finetune import LoRAConfig, finetune
    from .finetune.forgetting import domain_shift
    from .finetune.lora import check_config
    from .train import TrainConfig
    from .zoo import load

    try:
        model, _ = load(args.model)
        lora = None if args.method == "full" else LoRAConfig(args.rank, args.alpha, tuple(args.targets.split(",")))
        if lora is not None:
            check_config(model, lora)  # before the corpora are read
        config = TrainConfig(
            steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup_steps=args.steps // 10, eval_every=args.eval_every
        )
        task = domain_shift(args.model, args.corpus)
        before = task.evaluate(model.eval())
        result = finetune(model, task, config, lora=lora, run_dir=args.out)
    except (ValueError, OSError) as e:  # LoRAError, LoadError and TrainConfigError are ValueErrors
        print(f"llmw finetune: {e}", file=sys.stderr)
        return 2
    after = result.train.evals[-1] if result.train.evals else before
    print(
        f"{args.corpus} validation loss {before['target_val_loss']:.4f} -> {after['target_val_loss']:.4f} (learning); "
        f"{args.model}'s own {before['original_val_loss']:.4f} -> {after['original_val_loss']:.4f} (forgetting)"
    )
    print(f"wrote {args.out}" + (" (interrupted: run again to resume)" if result.train.interrupted else ""))
    return 0


def _zoo_list(args: argparse.Namespace) -> int:
    from .zoo import card, list_models

    for name in list_models():
        c = card(name)
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in c["metrics"].items())
        print(f"{name:18} {c['parameters']:>9,} params  {metrics}\n{'':18} {c['summary']}")
    return 0


def _sae_train(args: argparse.Namespace, extra: list[str]) -> int:
    from .sae import SAEConfig, SAEError, SAETrainConfig
    from .sae.bundled import SAE_RECIPES, train_on_model, train_recipe
    from .train import CheckpointError
    from .transformer.loading import LoadError
    from .zoo.recipes import parse_value

    try:
        overrides = parse_overrides(extra)
        if args.recipe:
            if args.recipe not in SAE_RECIPES:
                raise SAEError(f"no SAE recipe {args.recipe!r}; the recipes are {', '.join(SAE_RECIPES)}")
            if overrides:
                raise SAEError(
                    "a recipe is trained as written (its card is what it reproduces); drop the --setting=value overrides"
                )
            out = args.out or f"runs/saes/{args.recipe}"
            train_recipe(SAE_RECIPES[args.recipe], out, progress=not args.no_progress)
            return 0 if (Path(out) / "card.json").is_file() else 130
        if not args.model or not args.hook or args.d_sae is None:
            raise SAEError("give --recipe NAME, or --model, --hook and --d-sae (and --k for topk/batchtopk)")
        defaults = SAETrainConfig().to_dict()
        unknown = sorted(set(overrides) - set(defaults))
        if unknown:
            raise SAEError(f"unknown training setting {', '.join(unknown)}; the settings are {', '.join(defaults)}")
        train_cfg = SAETrainConfig(**{k: parse_value(k, v, defaults[k]) for k, v in overrides.items()})
        from .sae.activations import activation_width
        from .zoo import load

        model, _ = load(args.model)
        width = activation_width(model, args.hook, args.head)
        sae_cfg = SAEConfig(args.architecture, width, args.d_sae, k=args.k, hook_name=args.hook, hook_head_index=args.head,
                            model_name=str(args.model), context_size=model.cfg.n_ctx)  # fmt: skip
        out = args.out or f"runs/saes/{Path(str(args.model)).name}-{args.hook}-{args.architecture}"
        result = train_on_model(args.model, sae_cfg, train_cfg, out, progress=not args.no_progress)
    except (SAEError, ValueError, LoadError, CheckpointError) as e:
        print(f"llmw sae train: {e}", file=sys.stderr)
        return 2
    if result.interrupted:
        return 130
    print(f"trained an SAE: {out} (SAELens format); L0 {result.l0[-1]:.1f}, dead {result.dead_fraction:.1%}")
    return 0


def _sae_model_and_tokens(args: argparse.Namespace, sae) -> tuple:
    from .sae.bundled import evaluation_tokens
    from .zoo import load

    name = args.model or sae.cfg.model_name
    model, _ = load(name)
    return model, evaluation_tokens(name, args.sequences)


def _sae_eval(args: argparse.Namespace) -> int:
    from .sae import SAEError, evaluate_sae
    from .sae.bundled import load_bundled
    from .transformer.loading import LoadError

    try:
        sae = load_bundled(args.sae)
        model, tokens = _sae_model_and_tokens(args, sae)
        result = evaluate_sae(sae, model, tokens)
    except (SAEError, LoadError, ValueError) as e:
        print(f"llmw sae eval: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(result.to_json())
    else:
        for key, value in result.scalars().items():
            print(f"{key:30s} {value:.6g}")
    return 0


def _sae_dashboard(args: argparse.Namespace) -> int:
    from .sae import SAEError
    from .sae.bundled import load_bundled
    from .sae.dashboard import latent_activations, latent_dashboard, neuron_dashboard
    from .sae.html import write_dashboard_html
    from .transformer.loading import LoadError

    try:
        sae = load_bundled(args.sae)
        model, tokens = _sae_model_and_tokens(args, sae)
        acts = latent_activations(sae, model, tokens)
        latents = args.latent or acts.flatten(0, 1).gt(0).sum(0).argsort(descending=True)[:5].tolist()
        pages = [latent_dashboard(sae, model, tokens, int(f), acts=acts, context=args.context) for f in latents]
        for spec in args.neuron:
            layer, _, neuron = spec.partition(":")
            pages.append(neuron_dashboard(model, tokens, int(layer), int(neuron), context=args.context))
        out = write_dashboard_html(args.out, pages, f"{Path(str(args.sae)).name} on {sae.cfg.model_name}")
    except (SAEError, LoadError, ValueError) as e:
        print(f"llmw sae dashboard: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {len(pages)} dashboards (offline HTML)")
    return 0


def _sae_list(args: argparse.Namespace) -> int:
    from .sae.bundled import bundled_card, list_bundled

    for name in list_bundled():
        c = bundled_card(name)
        m = c["metrics"]
        print(
            f"{name:32s} {c['hook_name']:26s} L0 {m['l0']:5.1f}  EV {m['explained_variance']:.3f}  CE score {m['ce_loss_score']:.3f}"
        )
    return 0


def _add_sae_commands(commands) -> None:
    sae = commands.add_parser("sae", help="sparse autoencoders", description="Train, evaluate and browse sparse autoencoders.")
    sae_commands = sae.add_subparsers(dest="sae_command", required=True, metavar="ACTION")
    train = sae_commands.add_parser(
        "train",
        help="train an SAE on a model's activations",
        description="Train an SAE from a bundled recipe (--recipe), or on any hook of a zoo model or run; settings of "
        "SAETrainConfig follow as --setting=value (e.g. --steps=2000 --lr=1e-3). Resumes from OUT's checkpoint.",
    )
    train.add_argument("--recipe", help="a bundled SAE's recipe, e.g. shakespeare-char-resid2-topk")
    train.add_argument("--model", help="a zoo model name or a run directory")
    train.add_argument("--hook", help="e.g. blocks.2.hook_resid_pre, blocks.0.attn.hook_z")
    train.add_argument("--head", type=int, default=None, help="for a per-head hook: one head (default: all, flattened)")
    train.add_argument("--architecture", default="topk", choices=["standard", "topk", "batchtopk", "jumprelu"])
    train.add_argument("--d-sae", type=int, help="number of latents")
    train.add_argument("--k", type=int, default=None, help="active latents per token (topk, batchtopk)")
    train.add_argument("--out", help="run directory; the SAE is written there in SAELens's format")
    train.add_argument("--no-progress", action="store_true")
    train.set_defaults(run=_sae_train, takes_extra=True)
    for name, run, text in (
        ("eval", _sae_eval, "every metric of an SAE"),
        ("dashboard", _sae_dashboard, "write latent dashboards as HTML"),
    ):
        cmd = sae_commands.add_parser(
            name, help=text, description=text[0].upper() + text[1:] + ", on held-out tokens of its model."
        )
        cmd.add_argument("sae", metavar="SAE", help="a bundled SAE name or an SAE directory (ours or SAELens's)")
        cmd.add_argument("--model", help="the model (default: the one named in the SAE's cfg.json)")
        cmd.add_argument("--sequences", type=_positive_int, default=64, help="held-out sequences to read (default 64)")
        cmd.set_defaults(run=run)
        if name == "eval":
            cmd.add_argument("--json", action="store_true")
        else:
            cmd.add_argument("--latent", type=int, action="append", help="a latent to show (repeatable; default the 5 densest)")
            cmd.add_argument("--neuron", action="append", default=[], metavar="LAYER:N", help="also an MLP neuron, e.g. 1:7")
            cmd.add_argument("--context", type=int, default=5, help="tokens either side of each example (default 5)")
            cmd.add_argument("--out", default="sae-dashboard.html", help="the HTML file to write")
    sae_commands.add_parser("list", help="the bundled SAEs and their card metrics").set_defaults(run=_sae_list)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmw", description="LLM Workings: see how language models work inside.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lab = commands.add_parser("lab", help="start the lab, a local web app", description="Serve the lab and open it in a browser.")
    lab.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    lab.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    lab.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="PATH_OR_NAME",
        help="add a checkpoint to the model picker: a Hugging Face directory, a saved model, or a hub name "
        "when online (repeatable)",
    )
    lab.add_argument(
        "--runs-dir", default=str(LabConfig().runs_dir), help="where trained runs live and lab training writes (default runs)"
    )
    lab.add_argument(
        "--model-memory-mb",
        type=_positive_int,
        default=LabConfig.model_memory_mb,
        help="memory for loaded models; the least recently used is unloaded beyond it (default 2048)",
    )
    lab.add_argument(
        "--max-jobs", type=_positive_int, default=LabConfig.max_jobs, help="long jobs running at once; the rest queue (default 1)"
    )
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--verbose", action="store_true", help="log every request")
    lab.set_defaults(run=_lab)

    model = commands.add_parser("model", help="inspect model checkpoints", description="Inspect model checkpoints.")
    model_commands = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    info = model_commands.add_parser(
        "info",
        help="architecture, parameter count and memory needs of a checkpoint",
        description="Print a checkpoint's architecture, parameter count, and the memory its weights, a KV cache "
        "and a full activation cache need. Reads config.json only.",
    )
    info.add_argument("model", metavar="NAME_OR_DIR", help="a local checkpoint directory, or a Hugging Face hub name")
    info.add_argument("--batch", type=int, default=1, help="batch size for the cache estimates (default 1)")
    info.add_argument("--seq", type=int, default=None, help="tokens per sequence (default: the model's context length)")
    info.add_argument(
        "--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="weight and activation dtype"
    )
    info.add_argument("--json", action="store_true", help="print the figures as JSON")
    info.set_defaults(run=_model_info)

    train = commands.add_parser(
        "train",
        help="train a recipe (resumable; Ctrl-C saves a checkpoint)",
        description="Train one of the recipes from nothing. Any model, training or data setting can be "
        "overridden: llmw train induction-2l --steps=500 --d_model=32. Running the same command "
        "again resumes from the run directory's checkpoint.",
    )
    train.add_argument("recipe", metavar="RECIPE", help="induction-2l, modadd-113, shakespeare-char or austen-bpe")
    train.add_argument("--out", help="run directory (default runs/RECIPE)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(run=_train, takes_extra=True)

    sample = commands.add_parser("sample", help="generate text from a model", description="Continue a prompt.")
    sample.add_argument("model", metavar="MODEL", help="a bundled model (llmw zoo list) or a run directory")
    sample.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    sample.add_argument("--max-new-tokens", type=int, default=200)
    sample.add_argument("--temperature", type=float, default=0.8, help="0 is greedy (default 0.8)")
    sample.add_argument("--top-k", type=int, default=None)
    sample.add_argument("--seed", type=int, default=0, help="sampling seed, for repeatable output (default 0)")
    sample.set_defaults(run=_sample)

    analyze = commands.add_parser(
        "analyze",
        help="run an interpretability analysis; write its figure and JSON",
        description="Run one analysis on a model with inputs that suit its task (repeated random tokens for "
        "induction, pairs for modular addition, validation text for language models) and write "
        f"OUT/ANALYSIS.json and a figure. Analyses: {ANALYSES_HELP}.",
    )
    analyze.add_argument("model", metavar="MODEL", help="a bundled model, a run directory or a Hugging Face checkpoint directory")
    analyze.add_argument("analysis", metavar="ANALYSIS", help="one of the analyses listed above")
    analyze.add_argument("--out", help="output directory (default analysis/MODEL)")
    analyze.add_argument("--format", default="png", choices=["png", "svg"], help="figure format (default png)")
    analyze.add_argument("--seed", type=int, default=0, help="seed of the generated inputs (default 0)")
    analyze.add_argument("--prompt", help="text to analyze, for language models (default: validation text)")
    analyze.add_argument(
        "--activation",
        help="patching: resid_pre (default), resid_mid, resid_post, attn_out, mlp_out, z, q, k, v, result or pattern",
    )
    analyze.add_argument("--by-position", action="store_true", default=None, help="patching heads: one cell per position")
    analyze.add_argument("--receivers", help="path-patching: comma-separated, e.g. L1H0.k,L1H1.k (default logits)")
    analyze.add_argument(
        "--kind", dest="composition", choices=["Q", "K", "V"], help="composition: which input of the later head (default K)"
    )
    analyze.add_argument("--method", choices=["zero", "mean", "resample"], help="ablation method (default mean)")
    analyze.add_argument("--property", help="probe: speaker-line, next-space or inside-quotation")
    analyze.add_argument("--steps", type=int, help="saliency: integrated-gradients steps (default 64)")
    analyze.add_argument("--baseline", help="saliency: 'zero' (default) or a token id whose embedding starts the path")
    analyze.set_defaults(run=_analyze)

    tune = commands.add_parser(
        "finetune",
        help="fine-tune a model on a new corpus, fully or with LoRA",
        description="Fine-tune a language model on another packaged corpus (tinyshakespeare or austen), reporting "
        "the new corpus' validation loss (learning) and the model's own (forgetting). Resumes an interrupted run in OUT.",
    )
    tune.add_argument("model", metavar="MODEL", help="a bundled language model or a run directory, e.g. shakespeare-char")
    tune.add_argument("corpus", metavar="CORPUS", help="the corpus to learn: austen or tinyshakespeare")
    tune.add_argument("--out", required=True, help="run directory: checkpoints, then the adapter (or the model)")
    tune.add_argument("--method", choices=["lora", "full"], default="lora", help="default lora")
    tune.add_argument("--rank", type=_positive_int, default=8, help="LoRA rank r (default 8)")
    tune.add_argument("--alpha", type=float, default=16.0, help="LoRA alpha; the update is scaled by alpha / r (default 16)")
    tune.add_argument("--targets", default="attn.qkv,attn.o,mlp.in,mlp.out", help="comma-separated maps (default all of them)")
    tune.add_argument("--steps", type=_positive_int, default=300)
    tune.add_argument("--batch-size", type=_positive_int, default=16)
    tune.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default 3e-3; full fine-tuning wants ~3e-4)")
    tune.add_argument("--eval-every", type=_positive_int, default=50)
    tune.set_defaults(run=_finetune)

    zoo = commands.add_parser("zoo", help="the bundled models", description="The models this project trained and ships.")
    zoo_commands = zoo.add_subparsers(dest="zoo_command", required=True, metavar="ACTION")
    zoo_commands.add_parser("list", help="list the bundled models and their measured metrics").set_defaults(run=_zoo_list)
    _add_sae_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    if getattr(args, "takes_extra", False):
        return args.run(args, extra)
    if extra:
        build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
