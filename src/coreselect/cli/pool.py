"""``coreselect pool``: build the seeded evaluation pools of the evidence presets."""

from __future__ import annotations

import argparse

HELP = "build a seeded pool + held-out sets where selection can matter (task mixture, noisy Alpaca)"
EPILOG = """examples:
  coreselect pool task-mixture ../shared/data/t0_tasks_dev.jsonl.gz -o runs/pools/task-mixture
  coreselect pool noisy-alpaca ../shared/data/alpaca_cleaned.jsonl.gz -o runs/pools/noisy-alpaca \\
      --offset 20000 --swap-share 0.2 --duplicate-share 0.1

task-mixture: a pool skewed over prompt templates (Zipf-like), a balanced held-out set
(eval-seen.jsonl), held-out templates absent from the pool (eval-unseen.jsonl); records keep their
task/template labels and gain group (task/template) and, for small answer sets, choices.
noisy-alpaca: a pool with swapped responses and near-duplicates (label column: corruption) and a
clean held-out set (eval-clean.jsonl). Both write build.json; the same arguments give the same bytes.
See examples/task_mixture.yaml and examples/noisy_alpaca.yaml.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from coreselect.compare.pool_options import POOL_OPTIONS
    from coreselect.options import add_arguments

    p = sub.add_parser("pool", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = p.add_subparsers(dest="kind", required=True, metavar="{task-mixture,noisy-alpaca}",
                             help="which pool to build")
    for kind, options in POOL_OPTIONS.items():
        k = kinds.add_parser(kind, help=options.__doc__.splitlines()[0], description=options.__doc__)
        k.add_argument("source", help="source records" + (" (with task and template columns)"
                                                          if kind == "task-mixture" else " (Alpaca-style)"))
        k.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
        add_arguments(k, options)  # the same options, names and defaults as a compare YAML's build:
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.compare.pool_options import POOL_OPTIONS
    from coreselect.compare.pools import BUILDERS
    from coreselect.options import from_args

    options = from_args(POOL_OPTIONS[args.kind], args)
    info = BUILDERS[args.kind](args.source, args.output, options)
    print(", ".join(f"{k} {v}" for k, v in info["counts"].items()))
    for name, path in info["paths"].items():
        print(f"{name}: {path}")
    return 0
