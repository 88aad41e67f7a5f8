"""``coreselect score``: coverage metrics of a selection, from its manifest, beside random picks."""

from __future__ import annotations

import argparse
import json

HELP = "score a selection: covering radius, mean nearest distance, label coverage and balance, beside random"
EPILOG = """examples:
  coreselect score core.jsonl.manifest.json
  coreselect score core.jsonl.manifest.json --label-columns task,template
  coreselect score random.jsonl.manifest.json --features-dir feats/   # a pick made without features
  coreselect score core.jsonl.manifest.json --json                    # the numbers as JSON

Each figure is shown beside its random expectation: the mean over 5 seeds of uniform random picks
of the same size. Balance: the normalised entropy of the pick's label shares over the pool's
labels (1 = every label equally often, 0 = one label).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", help="a selection manifest (<output>.manifest.json)")
    p.add_argument("--label-columns", default="", help="comma-separated label columns of the data to "
                   "score coverage and balance on (labels are never used to select)")
    p.add_argument("--features-dir", default=None, metavar="DIR",
                   help="score on this feature store (any store of the same data, e.g. from `coreselect extract "
                        "DATA -o DIR`; centred and L2-normalised) instead of the selection's own; needed for a "
                        "pick made without features (random, longest)")
    p.add_argument("--seeds", type=int, default=5, help="random picks the expectation averages (default: 5)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.errors import ConfigError
    from coreselect.score import format_scores, score_manifest

    if args.seeds < 1:
        raise ConfigError(f"--seeds must be positive, got {args.seeds}")
    cols = [c for c in args.label_columns.split(",") if c]
    scores = score_manifest(args.manifest, cols, features_dir=args.features_dir, random_seeds=args.seeds)
    print(json.dumps(scores, indent=2) if args.json else format_scores(scores))
    return 0
