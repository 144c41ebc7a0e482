"""``identix-stream train-parsing``: train the face-parsing BiSeNet."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from identix_stream.training import train_parsing

    p = sub.add_parser(
        "train-parsing", help="train the 11-class BiSeNet face parser", description=train_parsing.__doc__
    )
    train_parsing.add_arguments(p)
    p.set_defaults(func=lambda args: (train_parsing.run(args), 0)[1])
