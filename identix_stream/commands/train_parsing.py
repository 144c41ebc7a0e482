"""``identix-stream train-parsing``: train the face-parsing BiSeNet."""

from __future__ import annotations

import argparse

from identix_stream.training.options import add_arguments


def _run(args: argparse.Namespace) -> int:
    from identix_stream.training import train_parsing

    train_parsing.run(args)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-parsing",
        help="train the 11-class BiSeNet face parser",
        description="Train the 11-class BiSeNet face parser on ../shared/data (seeded, resumable from <out>/last.pt).",
    )
    add_arguments(p)
    p.set_defaults(func=_run)
