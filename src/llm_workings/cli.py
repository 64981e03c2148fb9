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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmw", description="LLM Workings: see how language models work inside.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lab = commands.add_parser("lab", help="start the lab, a local web app", description="Serve the lab and open it in a browser.")
    lab.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    lab.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--verbose", action="store_true", help="log every request")
    lab.set_defaults(run=_lab)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
