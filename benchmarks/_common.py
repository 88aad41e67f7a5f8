"""What several benchmarks share: the real Alpaca pool beside the repository, and its head."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

#: ../shared/data/alpaca_cleaned.jsonl.gz next to the repository (absent on other machines).
ALPACA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca_cleaned.jsonl.gz"


def head_records(src: Path, n: int, dst: Path) -> Path:
    """Write the first ``n`` lines of the JSONL file ``src`` (optionally ``.gz``) to ``dst``."""
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", encoding="utf-8", newline="\n") as f:
        dst.write_text("".join(itertools.islice(f, n)), encoding="utf-8")
    return dst
