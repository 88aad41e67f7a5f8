"""``coreselect extract``: the extraction stage alone (resumable)."""

from __future__ import annotations

import argparse

from coreselect.cli.common import add_engine_args, add_feature_args, engine_options, feature_config

HELP = "extract model features of a dataset into a feature store"
EPILOG = """examples:
  coreselect extract train.jsonl -o feats/            # rerun the same command to resume
  coreselect extract train.jsonl -o feats/ --layers 8,15 --with-hidden --pooling max
  coreselect extract train.jsonl -o /nfs/feats/ --engine ray --ray-address auto   # on a Ray cluster
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("extract", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="instruction dataset (.jsonl/.json/.parquet, optionally .gz)")
    p.add_argument("-o", "--output", required=True, help="feature store directory (created; resumed if it exists)")
    p.add_argument("--shard-rows", type=int, default=None, help="examples per shard (default: 512)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_feature_args(p)
    add_engine_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.data import load_dataset
    from coreselect.errors import ConfigError
    from coreselect.features.extract import SHARD_ROWS, extract_features
    from coreselect.models import resolve_model

    if args.shard_rows is not None and args.shard_rows < 1:
        raise ConfigError(f"--shard-rows must be positive, got {args.shard_rows}")
    engine, address, actors = engine_options(args)
    ds = load_dataset(args.data, on_error=args.on_error)
    if args.features == "text":
        from coreselect.features.text import resolve_text_model

        spec = resolve_text_model(args.model)
    else:
        spec = resolve_model(args.model, trust_remote_code=args.trust_remote_code)
    if engine == "ray":
        from coreselect.distributed.ray_extract import extract_features_ray

        store = extract_features_ray(ds, spec, feature_config(args), args.output,
                                     shard_rows=args.shard_rows or SHARD_ROWS, progress=not args.no_progress,
                                     trust_remote_code=args.trust_remote_code, address=address, n_actors=actors)
    else:
        store = extract_features(ds, spec, feature_config(args), args.output,
                                 shard_rows=args.shard_rows or SHARD_ROWS, progress=not args.no_progress,
                                 trust_remote_code=args.trust_remote_code)
    m = store.manifest
    dims = ", ".join(f"{k} ({v})" for k, v in m["dims"].items())
    print(f"{m['n_rows']} examples, {m['stats']['tokens']} tokens -> {store.root}: {dims}")
    if ds.skipped:
        more = f" (and {len(ds.skipped) - 3} more)" if len(ds.skipped) > 3 else ""
        print(f"skipped {len(ds.skipped)} bad records: " + "; ".join(ds.skipped[:3]) + more)
    return 0
