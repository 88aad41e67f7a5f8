"""``coreselect select``: extract features (cached), pick a core set, export it."""

from __future__ import annotations

import argparse
import json

from coreselect.cli.common import add_engine_args, add_feature_args, engine_options, feature_config
from coreselect.errors import ConfigError

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
    b = p.add_mutually_exclusive_group(required=True)
    b.add_argument("--ratio", type=float, help="share of the pool to keep, in (0, 1]")
    b.add_argument("--n", type=int, help="number of examples to keep")
    p.add_argument("-o", "--output", default=None,
                   help="output file, same format as the input (default: core.<input extension>); "
                        "a manifest is written next to it as <output>.manifest.json")
    p.add_argument("--method", default="facility-location",
                   help="selection method (default: facility-location, the best coverage measured; "
                        "kcenter is MADS' k-center greedy); "
                   "see `coreselect methods`")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a method parameter, e.g. --param n_clusters=50 (JSON values; repeatable)")
    p.add_argument("--normalize", default="center-l2", choices=["center-l2", "l2", "none"],
                   help="feature normalisation before selection (default: center-l2)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--work-dir", default=None,
                   help="where extracted features are cached (default: ~/.cache/coreselect/features)")
    p.add_argument("--keep-order", action="store_true",
                   help="write the core set in input order (default: selection order)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--label-columns", default="",
                   help="comma-separated label columns (e.g. task,template) whose coverage and balance "
                        "the manifest reports; labels are never used to select")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--report", default=None, metavar="PATH",
                   help="also write an HTML report of the selection (see `coreselect report`)")
    add_feature_args(p)
    add_engine_args(p)
    p.set_defaults(run=run)


def parse_params(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    from coreselect.pipeline import SelectJob, run_select

    engine, address, actors = engine_options(args)
    job = SelectJob(
        data=args.data, output=args.output, ratio=args.ratio, n=args.n, model=args.model,
        features=feature_config(args), normalize=args.normalize, method=args.method,
        method_params=parse_params(args.param), seed=args.seed, work_dir=args.work_dir,
        keep_order=args.keep_order, overwrite=args.overwrite, on_error=args.on_error,
        progress=not args.no_progress, trust_remote_code=args.trust_remote_code,
        label_columns=tuple(c for c in args.label_columns.split(",") if c),
        engine=engine, ray_address=address, ray_actors=actors,
    )
    if args.report:
        from pathlib import Path

        from coreselect.output import check_writable

        check_writable(Path(args.report), args.overwrite,  # fail before the slow part
                       inputs=[p for p in (args.data, args.output) if p])
    res = run_select(job)
    if args.report:
        from coreselect.report import build_report

        build_report(res.manifest_path, args.report, overwrite=args.overwrite)
    m = res.manifest
    t = m["timings"]
    print(f"selected {m['counts']['selected']} of {m['counts']['pool']} examples "
          f"({m['method']['name']}) -> {res.output}")
    print(f"manifest: {res.manifest_path}")
    if args.report:
        print(f"report: {args.report}")
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in t.items()))
    for col, sc in m.get("scores", {}).get("labels", {}).items():
        print(f"{col}: {sc['labels_in_core']} of {sc['labels_in_pool']} covered, balance {sc['balance']:.2f}")
    if m["counts"]["skipped"]:
        print(f"skipped {m['counts']['skipped']} bad records (listed in the manifest)")
    return 0
