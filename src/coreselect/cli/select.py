"""``coreselect select``: extract features (cached), pick a core set, export it."""

from __future__ import annotations

import argparse

from coreselect.job import SelectJob
from coreselect.options import add_arguments, from_args
from coreselect.sources import COLUMNS_HELP, DATA_HELP

SAMPLE = 32  # coreselect.dryrun.SAMPLE (not imported here: the parser stays light)

HELP = "pick a core set of an instruction dataset"
EPILOG = """examples:
  coreselect select --ratio 0.15                       # the embedded demo dataset
  coreselect select train.jsonl --ratio 0.15 -o core.jsonl
  coreselect select data.json.gz --n 5000 --layers 8,15 --method kcenter --seed 1
  coreselect select prompts.csv --ratio 0.1 --columns instruction=prompt,output=response
  coreselect select tatsu-lab/alpaca --n 5000 -o core.jsonl   # a Hugging Face dataset id (offline: the local cache)
  coreselect select data.jsonl --ratio 0.1 --engine ray --ray-address auto --work-dir /nfs/feats
  coreselect select data.jsonl --ratio 0.15 --method quality-fl --dedup 0.95   # scores extracted on demand
  coreselect select data.jsonl --budget-tokens 2000000 --method facility-location   # gain per token
  coreselect select data.jsonl --ratio 0.1 --dry-run   # records, tokens, estimated time and memory; writes nothing
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("select", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", default=None,
                   help=f"instruction dataset: {DATA_HELP}; default: the embedded demo dataset")
    p.add_argument("-o", "--output", default=None,
                   help="output file, in the format its extension names (.jsonl, .json, .parquet, .csv, .tsv, "
                        ".arrow; text ones optionally .gz); default: core.<input extension>, core.jsonl for "
                        "Arrow, folders and hub ids; a manifest is written next to it as <output>.manifest.json")
    p.add_argument("--columns", default=None, metavar="FIELD=COLUMN,...", help=COLUMNS_HELP)
    p.add_argument("--report", default=None, metavar="PATH",
                   help="also write an HTML report of the selection (see `coreselect report`)")
    p.add_argument("--dry-run", action="store_true",
                   help="write nothing: print the records, their tokens and the time and memory the run would take, "
                        f"measured by extracting a sample of {SAMPLE} records")
    add_arguments(p, SelectJob)  # --ratio, --n or --budget-tokens: checked by resolve_budget
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.pipeline import run_select

    job = from_args(SelectJob, args, data=args.data, output=args.output)
    if args.columns:  # read with the mapping now; run_select takes the loaded data as it is
        from coreselect.demo import demo_path
        from coreselect.sources import load_data, parse_columns

        job.data = load_data(args.data or demo_path(), on_error=job.on_error,  # type: ignore[assignment]
                             columns=parse_columns(args.columns))
    if args.dry_run:
        from coreselect.dryrun import estimate

        print(estimate(job).format())
        return 0
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
    if m.dedup is not None:
        print(f"dedup: removed {m.dedup['removed']} near-duplicates (cosine >= {m.dedup['threshold']:g}) first")
    if m.budget is not None and m.budget.tokens is not None:
        print(f"tokens: {m.budget.picked_tokens} of a budget of {m.budget.tokens}")
    print(f"manifest: {res.manifest_path}")
    if args.report:
        print(f"report: {args.report}")
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in m.timings.items()))
    for col, sc in m.scores.get("labels", {}).items():
        print(f"{col}: {sc['labels_in_core']} of {sc['labels_in_pool']} labels covered, balance {sc['balance']:.2f} "
              f"(pool {sc['pool_balance']:.2f}; 1 = even over the pool's labels)")
    if m.counts.skipped:
        print(f"skipped {m.counts.skipped} bad records (listed in the manifest)")
    return 0
