"""``coreselect extract``: the extraction stage alone (resumable)."""

from __future__ import annotations

import argparse

from coreselect.job import SelectJob
from coreselect.options import add_arguments, from_args
from coreselect.sources import COLUMNS_HELP, DATA_HELP

HELP = "extract model features of a dataset into a feature store"
EPILOG = """examples:
  coreselect extract train.jsonl -o feats/            # rerun the same command to resume
  coreselect extract train.jsonl -o feats/ --layers 8,15 --with-hidden --pooling max
  coreselect extract train.jsonl -o /nfs/feats/ --engine ray --ray-address auto   # on a Ray cluster
"""


#: The fields of a select job that extraction uses: the model, the features, bad records, the engine.
EXTRACT_OPTIONS = ("model", "features", "on_error", "trust_remote_code", "batch_tokens", "progress", "engine",
                   "ray_address", "ray_actors")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help=f"instruction dataset: {DATA_HELP}")
    p.add_argument("-o", "--output", required=True, help="feature store directory (created; resumed if it exists)")
    p.add_argument("--shard-rows", type=int, default=None,
                   help="examples per shard (default: 512; an interrupted shard keeps its finished batches)")
    p.add_argument("--columns", default=None, metavar="FIELD=COLUMN,...", help=COLUMNS_HELP)
    add_arguments(p, SelectJob, only=EXTRACT_OPTIONS)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.data import load_dataset
    from coreselect.errors import ConfigError
    from coreselect.executor import make_executor
    from coreselect.features.extract import resolve_feature_model
    from coreselect.sources import parse_columns

    if args.shard_rows is not None and args.shard_rows < 1:
        raise ConfigError(f"--shard-rows must be positive, got {args.shard_rows}")
    from pathlib import Path

    from coreselect.output import check_store_folder

    check_store_folder(Path(args.output))  # a file or an unwritable folder: said before any work
    job = from_args(SelectJob, args)
    executor = make_executor(job.engine, address=job.ray_address, n_actors=job.ray_actors)
    ds = load_dataset(args.data, on_error=job.on_error, columns=parse_columns(args.columns))
    spec = resolve_feature_model(job.features, job.model, trust_remote_code=job.trust_remote_code,
                                 progress=job.progress)
    store = executor.extract(ds, spec, job.features, args.output, shard_rows=args.shard_rows,
                             progress=job.progress, trust_remote_code=job.trust_remote_code,
                             batch_tokens=job.batch_tokens)
    m = store.manifest
    dims = ", ".join(f"{k} ({v})" for k, v in (m.dims or {}).items())
    done = store.extracted
    fresh = "" if done is None else f" ({done} extracted, {m.n_rows - done} reused)" if done < m.n_rows else ""
    print(f"{m.n_rows} examples{fresh}, {(m.stats or {})['tokens']} tokens -> {store.root}: {dims}")
    if ds.skipped:
        more = f" (and {len(ds.skipped) - 3} more)" if len(ds.skipped) > 3 else ""
        print(f"skipped {len(ds.skipped)} bad records: " + "; ".join(ds.skipped[:3]) + more)
    return 0
