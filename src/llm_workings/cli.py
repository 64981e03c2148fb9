"""The `llmw` command. Thin: parse arguments, call the engine, print."""

from __future__ import annotations

import argparse
import sys


def _lab(args: argparse.Namespace) -> int:
    from .lab.server import LabServer  # imported here so `llmw --help` stays instant

    try:
        server = LabServer(args.host, args.port, verbose=args.verbose)
    except OSError as e:
        print(f"llmw lab: cannot listen on {args.host}:{args.port}: {e.strerror}. Try another --port.", file=sys.stderr)
        return 1
    if server.any_interface:
        print("llmw lab: listening on every interface; anyone who can reach this machine can use the lab.", file=sys.stderr)
    print(f"LLM Workings lab at {server.url}  (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nstopped")
    finally:
        server.server_close()
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmw", description="LLM Workings: see how language models work inside.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lab = commands.add_parser("lab", help="start the lab, a local web app", description="Serve the lab and open it in a browser.")
    lab.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    lab.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--verbose", action="store_true", help="log every request")
    lab.set_defaults(run=_lab)

    model = commands.add_parser("model", help="inspect model checkpoints", description="Inspect model checkpoints.")
    model_commands = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    info = model_commands.add_parser(
        "info", help="architecture, parameter count and memory needs of a checkpoint",
        description="Print a checkpoint's architecture, parameter count, and the memory its weights, a KV cache "
                    "and a full activation cache need. Reads config.json only.")
    info.add_argument("model", metavar="NAME_OR_DIR", help="a local checkpoint directory, or a Hugging Face hub name")
    info.add_argument("--batch", type=int, default=1, help="batch size for the cache estimates (default 1)")
    info.add_argument("--seq", type=int, default=None, help="tokens per sequence (default: the model's context length)")
    info.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="weight and activation dtype")
    info.add_argument("--json", action="store_true", help="print the figures as JSON")
    info.set_defaults(run=_model_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
