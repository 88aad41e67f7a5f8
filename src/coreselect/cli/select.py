"""``coreselect select``: extract features (cached), pick a core set, export it."""

from __future__ import annotations

import argparse

from coreselect.job import SelectJob
from coreselect.options import add_arguments, from_args

HELP = "pick a core set of an instruction dataset"
EPILOG = """examples:
  coreselect select --ratio 0.15                       # the embedded demo dataset
  coreselect select train.jsonl --ratio 0.15 -o core.jsonl
  coreselect select data.json.gz --n 5000 --layers 8,15 --method kcenter --seed 1
  coreselect select data.jsonl --ratio 0.1 --engine ray --ray-address auto --work-dir /nfs/feats
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("select", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", default=None,
                   help="instruction dataset (.jsonl/.json/.parquet, optionally .gz); "
                        "default: the embedded demo dataset")
    p.add_argument("-o", "--output", default=None,
                   help="output file, same format as the input (default: core.<input extension>); "
                        "a manifest is written next to it as <output>.manifest.json")
    p.add_argument("--report", default=None, metavar="PATH",
                   help="also write an HTML report of the selection (see `coreselect report`)")
    add_arguments(p, SelectJob, required=["budget"])
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.pipeline import run_select

    job = from_args(SelectJob, args, data=args.data, output=args.output)
    if args.report:
        from pathlib import Path

        from coreselect.output import check_writable

        check_writable(Path(args.report), job.overwrite,  # fail before the slow part
                       inputs=[p for p in (args.data, args.output) if p])
    res = run_select(job)
    if args.report:
        from coreselect.report import build_report

        build_report(res.manifest_path, args.report, overwrite=job.overwrite)
    m = res.manifest
    print(f"selected {m.counts.selected} of {m.counts.pool} examples ({m.method.name}) -> {res.output}")
    print(f"manifest: {res.manifest_path}")
    if args.report:
        print(f"report: {args.report}")
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in m.timings.items()))
    for col, sc in m.scores.get("labels", {}).items():
        print(f"{col}: {sc['labels_in_core']} of {sc['labels_in_pool']} covered, balance {sc['balance']:.2f}")
    if m.counts.skipped:
        print(f"skipped {m.counts.skipped} bad records (listed in the manifest)")
    return 0
