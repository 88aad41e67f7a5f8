"""The tools a user expects (issue 13): `methods NAME`, `cache list|clear`, `select --dry-run`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from _reliability import BAD, TINY_ARGS, assert_one_line_error
from coreselect.cli.main import main


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """The tiny model runs faster on one thread (see conftest)."""


# -- methods NAME ----------------------------------------------------------------------------------
def test_methods_name_lists_parameters_with_types_and_defaults_as_plain_text(capsys):
    assert main(["methods", "ltd"]) == 0
    out = capsys.readouterr().out
    assert "n_clusters    int | None = None" in out and "split         str = 'proportional'" in out
    assert "niter         int = 20" in out and "random_state  int = 0   (set by --seed)" in out
    assert "``" not in out and ":func:" not in out and ":mod:" not in out  # rendered, no raw reST
    assert main(["methods"]) == 0
    listing = capsys.readouterr().out
    assert "facility-location" in listing and "random" in listing  # without NAME: all of them


def test_methods_unknown_name_suggests(capsys):
    assert_one_line_error(main(["methods", "kcentre"]), capsys.readouterr().err,
                          r"^unknown selection method 'kcentre'\. Did you mean kcenter")


# -- cache -----------------------------------------------------------------------------------------
@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    store = root / "features" / "0123456789abcdef"
    store.mkdir(parents=True)
    (store / "manifest.json").write_text(json.dumps({
        "complete": True, "n_rows": 6, "key": "k", "data": {"path": str(BAD / "good.jsonl"), "fingerprint": "x"},
        "model": {"name": "smollm2-135m-instruct"}, "config": {"kind": "activations", "layers": [15],
                                                                "pooling": "mean"}, "dims": {"mlp.15": 1536}}))
    (store / "shard-00000.safetensors").write_bytes(b"0" * 2000)
    (root / "models" / "SmolLM2-abc").mkdir(parents=True)
    (root / "models" / "SmolLM2-abc" / "model.safetensors").write_bytes(b"0" * 5000)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    (root / "models" / "linked").symlink_to(outside)  # a link out of the cache: only the link may go
    (root / "hashes.json").write_text("{}")
    monkeypatch.setenv("CORESELECT_CACHE", str(root))
    return root


def test_cache_list_shows_sizes_and_what_each_store_holds(cache, capsys):
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert "2.2 KB  0123456789abcdef" in out and "4.9 KB  SmolLM2-abc" in out and "in 4 entries" in out
    assert f"6 rows of {BAD / 'good.jsonl'}; model smollm2-135m-instruct; activations of layers 15" in out
    assert "complete" in out and "(a link; clearing removes the link only)" in out


def test_cache_clear_asks_and_never_touches_anything_outside(cache, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # no terminal: refuse without --yes
    assert_one_line_error(main(["cache", "clear", "--models"]), capsys.readouterr().err, r"pass --yes to confirm")
    assert (cache / "models" / "SmolLM2-abc").is_dir()
    assert_one_line_error(main(["cache", "clear"]), capsys.readouterr().err, r"--features, --models or --all")
    assert main(["cache", "clear", "--models", "--yes"]) == 0
    assert "removed 2 entries" in capsys.readouterr().out
    assert not (cache / "models" / "SmolLM2-abc").exists() and not (cache / "models" / "linked").is_symlink()
    assert (tmp_path / "precious" / "keep.txt").read_text() == "mine"  # the link's target is untouched
    assert (cache / "features" / "0123456789abcdef").is_dir()  # --models leaves the stores
    assert main(["cache", "clear", "--all", "--yes"]) == 0
    assert not (cache / "features" / "0123456789abcdef").exists() and not (cache / "hashes.json").exists()
    assert cache.is_dir()


def test_cache_lists_and_clears_the_record_cache_with_the_stores(cache, capsys, monkeypatch):
    from coreselect.data import from_records
    from coreselect.features.config import FeatureConfig
    from coreselect.models import ModelSpec
    from coreselect.recordcache import open_record_cache, record_hashes

    monkeypatch.delenv("CORESELECT_RECORD_CACHE")  # the default: <cache>/records
    rc = open_record_cache(ModelSpec("tiny", "/m", "sha256:1"), FeatureConfig(layers=(-1,)))
    ds = from_records([{"instruction": f"Q{i}", "output": "A"} for i in range(3)])
    rc.append(record_hashes(ds.examples), {"mlp.3": np.ones((3, 4)), "n_tokens": np.arange(3)})
    assert rc.root.parent == cache / "records"
    assert main(["cache", "list"]) == 0
    out = capsys.readouterr().out
    assert "records/" in out and "3 records' features; model tiny; activations of layers -1, last pooling" in out
    assert main(["cache", "clear", "--features", "--yes"]) == 0
    assert not rc.root.exists() and not (cache / "features" / "0123456789abcdef").exists()
    assert (cache / "models" / "SmolLM2-abc").is_dir()


def test_remove_entries_refuses_a_path_outside_the_cache(tmp_path):
    from coreselect.cache import CacheEntry, remove_entries
    from coreselect.errors import ConfigError

    victim = tmp_path / "victim"
    victim.mkdir()
    with pytest.raises(ConfigError, match="not inside the cache directory"):
        remove_entries([CacheEntry("features", "x", victim, 0)], tmp_path / "cache")
    assert victim.is_dir()


# -- select --dry-run ------------------------------------------------------------------------------
def test_dry_run_measures_a_sample_and_writes_nothing(tmp_path, tiny_dir, capsys):
    out, work = tmp_path / "core.jsonl", tmp_path / "w"
    code = main(["select", str(BAD / "good.jsonl"), "--n", "3", "-o", str(out), "--model", str(tiny_dir),
                 "--work-dir", str(work), "--dry-run", *TINY_ARGS])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "dry run (nothing written): 3 of 6 records with facility-location" in text
    assert "tokens: " in text and "measured: 6 records" in text and "estimated extraction: about" in text
    assert "memory: peak resident" in text or "memory: GPU peak" in text
    assert not out.exists() and not work.exists() and list(tmp_path.iterdir()) == []


def test_dry_run_estimates_only_the_records_the_record_cache_lacks(tmp_path, tiny_dir, capsys, record_cache):
    base = ["--model", str(tiny_dir), "--work-dir", str(tmp_path / "w"), *TINY_ARGS]
    assert main(["-q", "select", str(BAD / "good.jsonl"), "--n", "3", "-o", str(tmp_path / "a.jsonl"), *base]) == 0
    grown = tmp_path / "grown.jsonl"
    grown.write_text((BAD / "good.jsonl").read_text() + json.dumps({"instruction": "New?", "output": "Yes."}) + "\n")
    before = sorted(p.name for p in record_cache.rglob("*"))
    capsys.readouterr()
    assert main(["select", str(grown), "--n", "3", "-o", str(tmp_path / "b.jsonl"), "--dry-run", *base]) == 0
    assert "for the 1 record not in the record cache (6 are)" in capsys.readouterr().out
    assert sorted(p.name for p in record_cache.rglob("*")) == before  # the dry run wrote nothing there
