"""``--dedup`` and ``--budget-tokens`` through ``coreselect select`` on the tiny model: what the
manifest records, and that the picks are the method's picks on the kept rows / within the budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from coreselect.cli.main import main
from coreselect.features.transform import prepare_features
from coreselect.selection import make_selector
from coreselect.selection.dedup import near_duplicates
from coreselect.store import FeatureStore

RECORDS = [{"instruction": f"Question {i}: what is {i} times {i + 3}?" + " Explain." * (i % 5), "input": "",
            "output": f"It is {i * (i + 3)}." + " Step by step." * (i % 7)} for i in range(30)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipe")
    # five exact copies: the dedup must find them whatever the features
    recs = RECORDS + [RECORDS[i] for i in (1, 4, 9, 16, 25)]
    p = d / "pool.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return d, p


def _select(d, data, tiny_dir, name, *argv):
    from _reliability import TINY_ARGS, read_manifest

    out = d / f"{name}.jsonl"
    assert main(["select", str(data), "-o", str(out), "--model", str(tiny_dir), "--work-dir", str(d / "work"),
                 "--overwrite", *TINY_ARGS, *argv]) == 0
    return read_manifest(out)


def _prepared(m):
    return prepare_features(FeatureStore.open(m["features"]["store"]).load(list(m["features"]["dims"])))


def test_dedup_removes_copies_and_the_method_runs_on_the_rest(data, tiny_dir):
    d, p = data
    m = _select(d, p, tiny_dir, "dedup", "--n", "6", "--dedup", "0.999")
    assert m["dedup"]["threshold"] == 0.999 and m["dedup"]["removed"] >= 5
    X = _prepared(m)
    kept = near_duplicates(X, 0.999)
    assert m["dedup"]["removed"] == len(X) - len(kept) and not set(range(30, 35)) & set(kept.tolist())
    ref = make_selector("facility-location", n_select=6).fit(X[kept]).indices_
    assert m["rows"] == kept[ref].tolist()


def test_a_token_budget_is_recorded_and_kept(data, tiny_dir):
    d, p = data
    m = _select(d, p, tiny_dir, "budget", "--budget-tokens", "600")
    n_tokens = FeatureStore.open(m["features"]["store"]).load(["n_tokens"])["n_tokens"]
    assert m["budget"]["tokens"] == 600 and m["budget"]["picked_tokens"] == int(n_tokens[m["rows"]].sum()) <= 600
    assert m["budget"]["ratio"] is None and m["budget"]["n"] is None and m["budget"]["n_selected"] == len(m["rows"])
    assert m["method"]["name"] == "facility-location"
    left = 600 - m["budget"]["picked_tokens"]
    assert (np.delete(n_tokens, m["rows"]) > left).all()  # the budget is spent: nothing else fits
    # other methods: their own order, up to the first pick that does not fit; --n caps the count
    m = _select(d, p, tiny_dir, "random", "--budget-tokens", "600", "--method", "random", "--seed", "3")
    order = np.random.default_rng(3).permutation(len(n_tokens))
    take = int(np.searchsorted(np.cumsum(n_tokens[order]), 600, side="right"))
    assert m["rows"] == order[:take].tolist()
    m = _select(d, p, tiny_dir, "capped", "--budget-tokens", "100000", "--n", "4")
    assert len(m["rows"]) == 4 and m["budget"]["n"] == 4
