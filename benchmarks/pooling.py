"""Which pooling and span? Category coverage on the embedded demo data (16 kinds of task).

For each pooling (mean, max, last) x span (all, response, prompt) of layer-15 MLP activations,
select 5% and 10% of random 80% subsamples of the 240-record demo pool with facility location
and k-center greedy, and report the mean share of the 16 categories the pick covers, next to
random's. Small and fast (a few minutes on 2 cores): a sanity check of the default, not proof.

    python benchmarks/pooling.py
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from coreselect.data import load_dataset
from coreselect.demo import demo_path
from coreselect.engine import extract_features
from coreselect.features.config import FeatureConfig
from coreselect.features.transform import prepare_features
from coreselect.metrics import label_metrics
from coreselect.models import resolve_model
from coreselect.selection import make_selector


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/coreselect-bench-pooling"))
    ap.add_argument("--resamples", type=int, default=20)
    ap.add_argument("--budgets", default="0.05,0.1")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    ds = load_dataset(demo_path())
    cats = [e.record["category"] for e in ds.examples]
    n = len(ds)
    spec = resolve_model(None)
    rng = np.random.default_rng(0)
    subsets = [np.sort(rng.choice(n, size=int(0.8 * n), replace=False)) for _ in range(args.resamples)]
    budgets = [float(b) for b in args.budgets.split(",")]
    methods = ("facility-location", "kcenter")
    print(f"demo pool: {n} records, {len(set(cats))} categories; means over {args.resamples} "
          f"80% subsamples ({int(0.8 * n)} records)")
    header = " | ".join(f"{m} {b:.0%}" for b in budgets for m in methods)
    print(f"| pooling | span | {header} |")
    print("|---|---|" + "---|" * (len(budgets) * len(methods)))

    def cov(idx: np.ndarray, sub: np.ndarray) -> float:
        return label_metrics([cats[i] for i in sub], idx)["coverage"]

    rand = []
    for b in budgets:
        vals = [cov(make_selector("random", n_select=max(1, round(b * len(s))), random_state=r)
                    .fit(np.zeros((len(s), 1), np.float32)).indices_, s)
                for r in range(5) for s in subsets]
        rand.append(f"{np.mean(vals):.1%}")
    print("| random | — | " + " | ".join(x for x in rand for _ in methods) + " |")
    for pooling in ("mean", "max", "last"):
        for span in ("all", "response", "prompt"):
            cfg = FeatureConfig(layers=(15,), pooling=pooling, span=span)
            st = extract_features(ds, spec, cfg, args.work_dir / f"{pooling}-{span}", progress=False)
            G = st.load(st.groups)
            cells = []
            for b in budgets:
                for m in methods:
                    vals = []
                    for s in subsets:
                        X = prepare_features({k: v[s] for k, v in G.items()})
                        k = max(1, round(b * len(s)))
                        vals.append(cov(make_selector(m, n_select=k).fit(X).indices_, s))
                    cells.append(f"{np.mean(vals):.1%}")
            print(f"| {pooling} | {span} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
