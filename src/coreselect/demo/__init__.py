"""The embedded demo dataset: 240 instruction records across 16 kinds of task, written for coreselect."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def demo_path() -> Path:
    """Path of the embedded demo dataset (Alpaca-format JSONL with a ``category`` label column)."""
    return Path(str(resources.files(__name__).joinpath("demo.jsonl")))
