"""``coreselect report``: a self-contained HTML report of a selection."""

from __future__ import annotations

import argparse

HELP = "write a self-contained HTML report of a selection"
EPILOG = """examples:
  coreselect report core.jsonl.manifest.json -o report.html
  coreselect report core.jsonl.manifest.json --label-columns task,template --projection umap
  coreselect select train.jsonl --ratio 0.15 -o core.jsonl --report report.html   # in one go
  coreselect report random.jsonl.manifest.json --features-dir feats/   # a pick made without features
"""


def label_columns(text: str) -> list[str]:
    """``"task,template"`` -> ``["task", "template"]``; ``""`` or ``"none"`` -> no labels."""
    if text.strip().lower() in ("", "none"):
        return []
    return [c.strip() for c in text.split(",") if c.strip()]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help=HELP, description=HELP + " (plots inline, opens offline).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("manifest", help="the <output>.manifest.json written by `coreselect select`")
    p.add_argument("-o", "--output", default=None,
                   help="HTML file to write (default: <output>.report.html next to the manifest)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing report file")
    p.add_argument("--projection", default="pca", choices=["pca", "umap"],
                   help="2-D map of the pool (default: pca; umap needs the umap-learn package)")
    p.add_argument("--label-columns", type=label_columns, default=None, metavar="COL,...",
                   help="record columns to show label coverage for (default: string columns named "
                        "category/task/template/label with < 500 values; 'none': no labels)")
    p.add_argument("--data", default=None,
                   help="the data file, if it moved since the selection (same content)")
    p.add_argument("--max-rows", type=int, default=5000,
                   help="at most this many picks in the records table (default: 5000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the map, clusters and random baseline")
    p.add_argument("--features-dir", default=None, metavar="DIR",
                   help="map and score on this feature store (any store of the same data, e.g. from `coreselect "
                        "extract DATA -o DIR`) instead of the selection's own; a pick made without features "
                        "(random) otherwise gets TF-IDF text features")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.report import build_report

    out = build_report(args.manifest, args.output, projection=args.projection,
                       label_columns=args.label_columns, data_path=args.data, max_rows=args.max_rows,
                       seed=args.seed, overwrite=args.overwrite, features_dir=args.features_dir)
    print(f"report: {out}")
    return 0
