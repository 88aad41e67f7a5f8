"""``coreselect compare``: select -> fine-tune -> evaluate per arm, against random and full data."""

from __future__ import annotations

import argparse

HELP = "prove a selection: fine-tune on core sets, random subsets and the full pool, and compare"
EPILOG = """examples:
  coreselect compare examples/cpu_small.yaml -o runs/cpu_small
  coreselect compare my.yaml -o runs/my      # rerun the same command to resume after a stop
  coreselect compare my.yaml -o runs/my --report-only   # results of the arms finished so far; runs nothing
  coreselect compare my.yaml -o runs/my --jobs 2        # train and evaluate two arms at once
  coreselect compare my.yaml -o /nfs/runs/my --engine ray --ray-address auto   # one trainee per GPU

Every stage of every arm is cached under DIR; a rerun continues where it stopped. Writes
DIR/results.csv, DIR/results.md and DIR/results.png. See docs/training.md for the YAML keys.
With --engine ray the units write into DIR from the cluster's nodes: on a cluster of several
machines DIR must be on storage that every node mounts at the same path (NFS, ...).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="experiment YAML (see examples/cpu_small.yaml)")
    p.add_argument("-o", "--output", default=None, help="output folder (default: runs/<config name>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--report-only", action="store_true",
                   help="write the results of the arms already finished under DIR (with this config's references "
                        "and labels); select, train and evaluate nothing")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="train and evaluate N arms at once, each with its share of the cores (default: 1; "
                        "with --engine ray one per GPU, or one per node on a cluster without GPUs); the "
                        "selections run first, serially; results equal a serial run's at the same torch "
                        "thread count")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="where the train + evaluate units run: local processes (default), or Ray tasks, one "
                        "trainee per GPU (pip install 'coreselect[ray]'); pool build, feature extraction and "
                        "the selections stay on this machine; on a multi-node cluster the output folder must "
                        "be on shared storage")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="Ray cluster to join: 'auto' (started with `ray start`), 'ray://host:10001'; "
                        "default: $RAY_ADDRESS, else start a local one")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from coreselect.compare.config import load_config
    from coreselect.compare.run import run_experiment

    cfg = load_config(args.config)
    out = Path(args.output) if args.output else Path("runs") / Path(args.config).stem
    rows = run_experiment(cfg, out, progress=not args.no_progress, report_only=args.report_only,
                          jobs=args.jobs, engine=args.engine, ray_address=args.ray_address)
    print((out / "results.md").read_text(), end="")
    left = f" ({len(rows)} of the config's arms finished)" if args.report_only else ""
    print(f"{len(rows)} arms{left}; results: {out / 'results.csv'}, {out / 'results.md'}, {out / 'results.png'}")
    return 0
