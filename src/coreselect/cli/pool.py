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
    p = sub.add_parser("pool", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["task-mixture", "noisy-alpaca"], help="which pool to build")
    p.add_argument("source", help="source records (task-mixture: with task and template columns)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    g = p.add_argument_group("task-mixture")
    g.add_argument("--head", type=int, default=200, help="records of the largest template (default: 200)")
    g.add_argument("--alpha", type=float, default=1.0, help="Zipf exponent over template ranks (default: 1.0)")
    g.add_argument("--floor", type=int, default=2, help="records of the smallest templates (default: 2)")
    g.add_argument("--eval-per-group", type=int, default=4, help="held-out records per template (default: 4)")
    g.add_argument("--unseen-share", type=float, default=0.1,
                   help="share of templates kept out of the pool (default: 0.1)")
    g.add_argument("--max-chars", type=int, default=None,
                   help="drop records whose instruction + answer are longer (default: keep all)")
    g.add_argument("--leak-threshold", type=float, default=0.5,
                   help="replace a held-out record sharing this share of its prompt 8-grams with one pool "
                        "record of its dataset (default: 0.5; 1.1 keeps the held-out sets as drawn)")
    g = p.add_argument_group("noisy-alpaca")
    g.add_argument("--offset", type=int, default=0, help="first source record of the pool (default: 0)")
    g.add_argument("--pool-size", type=int, default=1000, help="records in the pool (default: 1000)")
    g.add_argument("--swap-share", type=float, default=0.2,
                   help="share of the pool given another record's response (default: 0.2)")
    g.add_argument("--duplicate-share", type=float, default=0.1,
                   help="share of the pool that are near-duplicates of other records (default: 0.1)")
    g.add_argument("--eval-size", type=int, default=300, help="clean held-out records (default: 300)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.compare.pools import noisy_alpaca, task_mixture

    if args.kind == "task-mixture":
        info = task_mixture(args.source, args.output, seed=args.seed, head=args.head, alpha=args.alpha,
                            floor=args.floor, eval_per_group=args.eval_per_group, unseen_share=args.unseen_share,
                            max_chars=args.max_chars, leak_threshold=args.leak_threshold)
    else:
        info = noisy_alpaca(args.source, args.output, seed=args.seed, offset=args.offset, pool_size=args.pool_size,
                            swap_share=args.swap_share, duplicate_share=args.duplicate_share,
                            eval_size=args.eval_size)
    print(", ".join(f"{k} {v}" for k, v in info["counts"].items()))
    for name, path in info["paths"].items():
        print(f"{name}: {path}")
    return 0
