"""The ``identix-stream`` console script. Each subcommand lives in ``identix_stream.commands.<name>``
and registers itself with ``register(subparsers)``; its handler is stored as ``func``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from identix_stream import __version__
from identix_stream.errors import IdentixError

# Subcommand modules in the order they appear in --help. Imported lazily by name so a command's
# heavy dependencies (torch, aiortc) load only when that command runs... except for its parser.
COMMAND_MODULES: tuple[str, ...] = (
    "serve",
    "train_parsing",
    "eval_parsing",
    "train_deepfake",
    "eval_deepfake",
    "bench",
    "analyze",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="identix-stream", description="Real-time face analysis service.")
    parser.add_argument("--version", action="version", version=f"identix-stream {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"identix_stream.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except IdentixError as exc:
        logging.getLogger("identix_stream").error("%s", exc.message)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
