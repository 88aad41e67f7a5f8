"""Helpers shared by the Ray tests; importable by Ray workers (the fixture puts this folder on
their ``PYTHONPATH``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from coreselect.distributed.ray_extract import ShardExtractor


def write_records(path: Path, n: int) -> Path:
    """``n`` Alpaca-style records of varied length (no shared data needed)."""
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()
    recs = [{"instruction": f"Task {i}: " + " ".join(words[j % 16] for j in range(i, i + 3 + i % 11)),
             "input": "" if i % 3 else f"context {i}",
             "output": " ".join(words[(i * j) % 16] for j in range(1 + (i * 7) % 29))} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


class CrashOnce(ShardExtractor):
    """Kills its own process (no cleanup, like an OOM kill) on the first shard of the whole run."""

    def __call__(self, batch):
        marker = Path(self.store.root).parent / "crashed"
        if not marker.exists():
            marker.write_text(str(int(batch["shard"][0])))
            os._exit(1)
        return super().__call__(batch)
