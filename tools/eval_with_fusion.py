"""Run an ``identix-stream`` command with fusion weights taken from a ``train-deepfake fusion`` report.

A retrained factor model changes the scale of its evidence, so it is only judged fairly with the fusion
refitted for it. The fitted weights live in code (``core/deepfake_fusion.py``: ``FUSION_GROUPS`` and
``RESOLUTION_RELIABILITY``) and are written there only once a model ships. This tool applies a report's
groups and reliability knots for one run, so a candidate can be read through the service before then
(docs/deepfake.md, sessions 18-19).

Usage:
  identix-stream train-deepfake fusion --parser models/face_parser.pt --models-dir CAND > fit.json
  python tools/eval_with_fusion.py --report fit.json --groups swap -- \
      eval-deepfake --models-dir CAND --real DIR --fake DIR --json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from identix_stream.cli import main as cli_main
from identix_stream.core import deepfake_fusion
from identix_stream.errors import DataError

log = logging.getLogger("eval_with_fusion")


def read_report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read fusion report {path}: {exc}") from exc
    if not isinstance(report, dict) or "groups" not in report or "resolution" not in report:
        raise DataError(f"{path} is not a train-deepfake fusion report (no 'groups' / 'resolution')")
    return report


def apply_report(report: dict[str, Any], groups: list[str]) -> None:
    """Put the report's bias, weights and reliability knots of ``groups`` in place of the shipped ones."""
    knots = report["resolution"]["knots"]
    for group in groups:
        if group not in deepfake_fusion.FUSION_GROUPS:
            raise DataError(f"unknown fusion group {group!r}; known: {sorted(deepfake_fusion.FUSION_GROUPS)}")
        if group not in report["groups"] or group not in knots:
            raise DataError(f"the report has no fit for group {group!r}")
        bias, weights = report["groups"][group]
        deepfake_fusion.FUSION_GROUPS[group] = (float(bias), {str(k): float(v) for k, v in weights.items()})
        deepfake_fusion.RESOLUTION_RELIABILITY[group] = tuple((float(s), float(r)) for s, r in knots[group])
        log.info("fusion group %s: bias %.3f, weights %s, reliability %s", group, bias, weights, knots[group])


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", type=Path, required=True, help="JSON printed by train-deepfake fusion")
    ap.add_argument("--groups", default="swap", help="comma-separated groups to take from the report")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the identix-stream command line, after --")
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("give the identix-stream command after --")
    try:
        apply_report(read_report(args.report), [g.strip() for g in args.groups.split(",") if g.strip()])
    except DataError as exc:
        ap.error(exc.message)
    return cli_main(command)


if __name__ == "__main__":
    sys.exit(main())
