"""Builders of a small synthetic selection run: data file, feature store and manifest (no model)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from coreselect.data import load_dataset
from coreselect.features.transform import prepare_features
from coreselect.selection.kcenter import kcenter_greedy
from coreselect.store import FeatureStore, plan_shards

XSS_SCRIPT = "<script>document.title='pwned'</script>"
XSS_IMG = "<img src=x onerror=\"document.title='pwned'\">"
TOPICS = ["math", "code", "poetry", "history", "cooking", "travel"]


def write_dataset(path: Path, n: int, *, seed: int = 0) -> list[dict]:
    """Alpaca records with a ``category`` label; record 0 carries both XSS payloads, record 1 one."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", "omega"], size=rng.integers(3, 40)))
        recs.append({"instruction": f"Question {i} about {topic}: {words}?", "input": "",
                     "output": f"An answer on {topic}. " + words * int(rng.integers(1, 4)),
                     "category": topic})
    recs[0]["instruction"] = f"Explain this tag {XSS_SCRIPT} please"
    recs[0]["output"] = f"It is like {XSS_IMG} but worse"
    recs[1]["output"] = f"Here is an image {XSS_IMG} for you"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return recs


def write_store(root: Path, n: int, *, dim: int = 48, seed: int = 0, shard_rows: int = 128) -> FeatureStore:
    """A complete feature store of clustered Gaussian features plus row statistics."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(TOPICS), dim)) * 3
    X = centres[np.arange(n) % len(TOPICS)] + rng.normal(size=(n, dim))
    store = FeatureStore.create(root, {"key": "synthetic", "n_rows": n, "shard_rows": shard_rows,
                                       "model": {"name": "tiny-test", "path": "-", "fingerprint": "x"},
                                       "config": {"kind": "activations", "layers": [3], "pooling": "mean",
                                                  "span": "all", "max_length": 64, "with_hidden": False}})
    prompt = rng.integers(5, 60, size=n)
    response = rng.integers(1, 200, size=n)
    for sp in plan_shards(n, shard_rows):
        s = slice(sp.start, sp.end)
        store.write_shard(sp, {"mlp.3": X[s], "n_tokens": prompt[s] + response[s], "prompt_tokens": prompt[s],
                               "response_tokens": response[s], "truncated": (response[s] > 190).astype(int)})
    store.finalize(stats={"tokens": int((prompt + response).sum()), "truncated": int((response > 190).sum())})
    return store


def write_manifest(data: Path, store: FeatureStore | None, out_dir: Path, k: int, *,
                   curve: bool = True) -> Path:
    """Run k-center on the store's features and write a manifest shaped like ``run_select``'s."""
    ds = load_dataset(data)
    if store is not None:
        X = prepare_features({"mlp.3": store.load(["mlp.3"])["mlp.3"]})
        idx, radii = kcenter_greedy(X, k, first=0)  # record 0 (the payloads) is pick 1
    else:
        idx, radii = np.random.default_rng(0).permutation(len(ds))[:k], None
    m = {
        "coreselect_version": "test",
        "data": {"path": str(data), "fingerprint": ds.fingerprint, "format": ds.format, "container": ds.container},
        "budget": {"ratio": None, "n": k, "n_selected": k},
        "counts": {"pool": len(ds), "selected": k, "skipped": 0},
        "method": {"name": "kcenter" if store is not None else "random", "params": {"n_select": k}},
        "order": "selection",
        "indices": [int(i) for i in idx], "lines": [int(i) + 1 for i in idx], "rows": [int(i) for i in idx],
        "timings": {"load_data": 0.01, "extract": 1.5, "select": 0.02, "export": 0.01},
    }
    if store is not None:
        m["model"] = store.manifest["model"]
        m["features"] = {"config": store.manifest["config"], "store": str(store.root), "key": "synthetic",
                         "dims": store.manifest["dims"], "normalize": "center-l2",
                         "tokens": store.manifest["stats"]["tokens"], "truncated": store.manifest["stats"]["truncated"]}
        if curve:
            m["coverage_curve"] = [round(float(r), 6) for r in radii]
    path = out_dir / "core.jsonl.manifest.json"
    path.write_text(json.dumps(m, indent=2))
    return path
