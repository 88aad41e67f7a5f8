"""``coreselect score``: coverage metrics of a selection, from its manifest."""

from __future__ import annotations

import argparse
import json

HELP = "score a selection: covering radius, mean nearest distance, label coverage and balance"
EPILOG = """examples:
  coreselect score core.jsonl.manifest.json
  coreselect score core.jsonl.manifest.json --label-columns task,template
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", help="a selection manifest (<output>.manifest.json)")
    p.add_argument("--label-columns", default="", help="comma-separated label columns of the data to "
                   "score coverage and balance on (labels are never used to select)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.score import score_manifest

    cols = [c for c in args.label_columns.split(",") if c]
    print(json.dumps(score_manifest(args.manifest, cols), indent=2))
    return 0
