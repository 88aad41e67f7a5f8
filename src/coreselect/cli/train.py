"""``coreselect train``: fine-tune a model on an instruction dataset (TRL SFT, LoRA by default)."""

from __future__ import annotations

import argparse

from coreselect.finetune.config import TrainConfig
from coreselect.options import add_arguments, from_args

HELP = "fine-tune a model on an instruction dataset (LoRA by default)"
EPILOG = """examples:
  coreselect train core.jsonl -o runs/core-lora --model gemma3-270m
  coreselect train core.jsonl -o runs/core-full --model gemma3-270m --full --lr 2e-5
  coreselect train core.jsonl -o runs/quick --model gemma3-270m --max-steps 20 --max-length 256

The loss covers the response tokens only. Examples are rendered with the model's chat template
when it has one, with an Alpaca-style prompt otherwise (the choice is logged). OUT holds the
adapter (or model), the tokenizer and coreselect_train.json (data fingerprint, rows, tokens,
seconds, tokens/s).
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help=HELP, description=HELP + ".", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="training data (.jsonl/.json/.parquet, optionally .gz)")
    p.add_argument("-o", "--output", required=True, help="output folder (created atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    add_arguments(p, TrainConfig)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from coreselect.finetune.train import train

    res = train(args.data, args.output, from_args(TrainConfig, args), overwrite=args.overwrite)
    m = res.manifest
    t = m["train"]
    print(f"trained {m['kind']} on {m['data']['rows']} examples ({m['data']['prompt_format']} prompts): "
          f"{t['steps']} steps, {t['tokens']:,} tokens in {t['seconds']:.0f}s ({t['tokens_per_second']:.0f} tokens/s), "
          f"final loss {t['final_loss']}")
    print(f"saved: {res.output}")
    return 0
