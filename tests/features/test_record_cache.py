"""The record cache: features keyed by what the model reads, reused across files.

The same records as JSONL, Parquet, CSV, a ``save_to_disk`` folder or a shuffled DataFrame, a
subset of them or a pool grown by one record extract only what no earlier run extracted; the
rows that come from the cache are the bytes an earlier extraction wrote. A tiny random Llama
(4 layers) keeps every extraction fast.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from _reliability import TINY_ARGS, read_manifest
from coreselect.cli.main import main
from coreselect.data import from_records, load_dataset
from coreselect.engine import extract_features
from coreselect.features.config import FeatureConfig
from coreselect.models import resolve_model
from coreselect.recordcache import RecordCache, cached_shard_function, open_record_cache, record_hashes
from coreselect.store import FeatureStore

N = 24
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """The tiny model runs faster on one thread (see conftest)."""


def _record(i: int) -> dict:
    return {"instruction": f"Task {i}: " + " ".join(WORDS[j % 16] for j in range(i, i + 3 + i % 11)),
            "input": "" if i % 3 else f"context {i}",
            "output": " ".join(WORDS[(i * j) % 16] for j in range(1 + (i * 7) % 29))}


def _write(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def _select(data: Path | str, out: Path, tiny_dir: Path, *extra: str) -> dict:
    assert main(["-q", "select", str(data), "--n", "5", "-o", str(out), "--model", str(tiny_dir),
                 "--work-dir", str(out.parent / "work"), "--overwrite", *TINY_ARGS, *extra]) == 0
    return read_manifest(out)


def _rows(manifest: dict) -> dict[str, np.ndarray]:
    return FeatureStore.open(manifest["features"]["store"]).load()


def test_same_records_in_any_container_order_or_subset_extract_nothing(tmp_path, tiny_dir):
    import pandas as pd

    recs = [_record(i) for i in range(N)]
    first = _select(_write(tmp_path / "pool.jsonl", recs), tmp_path / "a.jsonl", tiny_dir)
    assert first["features"]["extracted"] == N
    base = _rows(first)

    order = np.random.default_rng(0).permutation(N)
    df = pd.DataFrame(recs)
    df.to_parquet(tmp_path / "pool.parquet")
    df.iloc[order].to_csv(tmp_path / "shuffled.csv", index=False)
    from datasets import Dataset as HFDataset

    HFDataset.from_list(recs).save_to_disk(str(tmp_path / "pool_disk"))
    variants = {"parquet": (tmp_path / "pool.parquet", np.arange(N)),
                "shuffled csv": (tmp_path / "shuffled.csv", order),
                "save_to_disk": (tmp_path / "pool_disk", np.arange(N)),
                "minus one": (_write(tmp_path / "minus.jsonl", recs[:7] + recs[8:]), np.delete(np.arange(N), 7))}
    for name, (path, rows) in variants.items():
        m = _select(path, tmp_path / f"{name.replace(' ', '_')}.jsonl", tiny_dir)
        assert m["features"]["extracted"] == 0, name
        got = _rows(m)
        for k, a in base.items():  # the cached rows, byte for byte, in this input's order
            assert np.array_equal(got[k], a[rows]), (name, k)
    import coreselect

    res = coreselect.select(df.iloc[order[::-1]], n=5, model=str(tiny_dir), layers=[-1],  # a DataFrame, reversed
                            work_dir=str(tmp_path / "work"))
    assert res.manifest.features.extracted == 0


def test_a_grown_pool_extracts_only_its_new_records(tmp_path, tiny_dir, caplog):
    recs = [_record(i) for i in range(N)]
    first = _select(_write(tmp_path / "pool.jsonl", recs), tmp_path / "a.jsonl", tiny_dir)
    caplog.set_level(logging.INFO, logger="coreselect")
    grown = _select(_write(tmp_path / "grown.jsonl", recs[:10] + [_record(99)] + recs[10:]), tmp_path / "b.jsonl",
                    tiny_dir)
    assert grown["features"]["extracted"] == 1
    assert f"record cache: {N} of the {N + 1} records to extract are cached; extracting 1" in caplog.text
    old, new = _rows(first), _rows(grown)
    keep = np.r_[0:10, 11:N + 1]
    for k in old:
        assert np.array_equal(new[k][keep], old[k]), k
    # two copies of a new record are extracted once
    twice = _select(_write(tmp_path / "twice.jsonl", recs + [_record(100), _record(100)]), tmp_path / "c.jsonl",
                    tiny_dir)
    assert twice["features"]["extracted"] == 1


def test_extract_and_select_share_the_cache(tmp_path, tiny_dir, capsys):
    recs = [_record(i) for i in range(N)]
    data = _write(tmp_path / "pool.jsonl", recs)
    base = ["--model", str(tiny_dir), *TINY_ARGS]
    assert main(["-q", "extract", str(data), "-o", str(tmp_path / "feats"), *base]) == 0
    assert capsys.readouterr().out.startswith(f"{N} examples, ")  # all extracted
    other = _write(tmp_path / "other.jsonl", recs[::-1])
    assert _select(other, tmp_path / "a.jsonl", tiny_dir)["features"]["extracted"] == 0
    # and the other way round: what select extracted, extract -o reuses
    more = _write(tmp_path / "more.jsonl", [_record(i) for i in range(N, N + 6)])
    assert _select(more, tmp_path / "b.jsonl", tiny_dir)["features"]["extracted"] == 6
    capsys.readouterr()
    assert main(["-q", "extract", str(more), "-o", str(tmp_path / "feats-more"), *base]) == 0
    assert capsys.readouterr().out.startswith("6 examples (0 extracted, 6 reused), ")


def test_a_store_written_without_the_cache_is_read_and_adopted(tmp_path, tiny_dir):
    """Stores from before the cache existed stay valid; opening one fills the cache from it."""
    recs = [_record(i) for i in range(N)]
    data = _write(tmp_path / "pool.jsonl", recs)
    spec, cfg = resolve_model(str(tiny_dir)), FeatureConfig(layers=(-1,))
    old = extract_features(load_dataset(data), spec, cfg, tmp_path / "old", progress=False, record_cache=False)
    assert old.extracted == N and open_record_cache(spec, cfg) is not None
    m = _select(data, tmp_path / "a.jsonl", tiny_dir, "--features-dir", str(tmp_path / "old"))
    assert m["features"]["extracted"] == 0 and Path(m["features"]["store"]) == tmp_path / "old"
    shuffled = _write(tmp_path / "shuffled.jsonl", recs[::-1])
    assert _select(shuffled, tmp_path / "b.jsonl", tiny_dir)["features"]["extracted"] == 0


def test_an_interrupted_extraction_resumes_beside_cached_rows(tmp_path, tiny_dir, monkeypatch):
    """Ctrl-C in a shard some of whose rows are cached: the checkpoint keeps the finished
    batches, the rerun extracts only the rest, the cached rows stay the cached bytes."""
    from coreselect.features.activations import ActivationExtractor

    spec, cfg = resolve_model(str(tiny_dir)), FeatureConfig(layers=(-1,))
    recs = [_record(i) for i in range(N)]
    half = extract_features(from_records(recs[: N // 2]), spec, cfg, tmp_path / "half", progress=False)
    pool = from_records(recs[N // 4:])  # a quarter cached, then new rows
    real, seen = ActivationExtractor.extract_batch, []

    def extract_batch(self, rendered, *a, **kw):
        if len(seen) == 3:
            raise KeyboardInterrupt
        seen.append(len(rendered))
        return real(self, rendered, *a, **kw)

    with monkeypatch.context() as mp:
        mp.setattr(ActivationExtractor, "extract_batch", extract_batch)
        with pytest.raises(KeyboardInterrupt):
            extract_features(pool, spec, cfg, tmp_path / "pool", progress=False, batch_tokens=64)
    done = sum(seen)
    assert (tmp_path / "pool" / ".shard-00000.partial.tmp").is_file() and 0 < done < N - N // 2
    seen.clear()
    monkeypatch.setattr(ActivationExtractor, "extract_batch",
                        lambda self, rendered, *a, **kw: (seen.append(len(rendered)), real(self, rendered, *a, **kw))[1])
    store = extract_features(pool, spec, cfg, tmp_path / "pool", progress=False, batch_tokens=64)
    assert sum(seen) == N - N // 2 - done and store.extracted == N - N // 2
    got, cached = store.load(), half.load()
    for k in got:
        assert np.array_equal(got[k][: N // 4], cached[k][N // 4:]), k
    assert sorted(p.name for p in (tmp_path / "pool").iterdir()) == ["manifest.json", "shard-00000.safetensors"]


# -- the cache itself, without a model ---------------------------------------------------------------
def _fake_shard_fn(calls: list[int]):
    def shard_fn(examples, resume=None, checkpoint=None):
        calls.append(len(examples))
        n = len(examples)
        feats = np.array([[float(len(e.prompt)), float(len(e.response))] for e in examples])
        return {"mlp.0": feats, "n_tokens": np.arange(n) + 5, "prompt_tokens": np.ones(n), "response_tokens":
                np.ones(n), "truncated": np.zeros(n)}

    return shard_fn


def test_a_shard_extracts_each_missing_record_once(tmp_path):
    recs = [_record(i) for i in range(6)]
    ds = from_records(recs[:3] + recs[:2] + recs[3:])  # rows 3 and 4 repeat rows 0 and 1
    calls: list[int] = []
    fn = cached_shard_function(_fake_shard_fn(calls), RecordCache(tmp_path))
    out = fn(ds.examples)
    assert calls == [6] and len(RecordCache(tmp_path).missing(record_hashes(ds.examples))) == 0
    assert np.array_equal(out["mlp.0"][3:5], out["mlp.0"][0:2])
    again = fn(list(reversed(ds.examples)))  # all cached: no call, the same rows reversed
    assert calls == [6] and np.array_equal(again["mlp.0"], out["mlp.0"][::-1])


def test_a_checkpoint_maps_between_shard_rows_and_rows_to_extract(tmp_path):
    """Checkpoints hold positions in the shard, whatever the cache held when they were written."""
    ds = from_records([_record(i) for i in range(6)])
    cache = RecordCache(tmp_path)
    got: dict = {}

    def shard_fn(examples, resume=None, checkpoint=None):
        got["resume"] = resume
        checkpoint(np.array([0, 2]), {"mlp.0": np.array([[1.0], [2.0]])})
        return _fake_shard_fn([])(examples)

    cache.append(record_hashes(ds.examples[:2]), _fake_shard_fn([])(ds.examples[:2]))
    written: list = []
    fn = cached_shard_function(shard_fn, cache)
    fn(ds.examples, resume=(np.array([1, 3, 5]), {"mlp.0": np.array([[9.0], [3.0], [5.0]])}),
       checkpoint=lambda rows, arrays: written.append(rows.tolist()))
    rows, arrays = got["resume"]  # shard row 1 is cached now: dropped; 3 and 5 are rows 1 and 3 of the 4 to do
    assert rows.tolist() == [1, 3] and arrays["mlp.0"][:, 0].tolist() == [3.0, 5.0]
    assert written == [[2, 4]]


def test_a_damaged_chunk_is_skipped_not_fatal(tmp_path, caplog):
    ds = from_records([_record(i) for i in range(4)])
    cache = RecordCache(tmp_path)
    cache.append(record_hashes(ds.examples[:2]), _fake_shard_fn([])(ds.examples[:2]))
    (tmp_path / "chunk-0-bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    (tmp_path / ".chunk-1.safetensors.x.tmp").write_bytes(b"half a chunk")  # a writer killed mid-append
    fresh = RecordCache(tmp_path)
    assert fresh.missing(record_hashes(ds.examples)) == [2, 3]
    assert "unreadable record-cache chunk" in caplog.text


def test_the_cache_folder_follows_model_options_and_precision(tmp_path, monkeypatch, tiny_dir):
    from coreselect.recordcache import cache_options

    spec = resolve_model(str(tiny_dir))
    a = open_record_cache(spec, FeatureConfig(layers=(-1,)), tmp_path)
    assert a is not None and open_record_cache(spec, FeatureConfig(layers=(-1,)), tmp_path).root == a.root
    assert open_record_cache(spec, FeatureConfig(layers=(1,)), tmp_path).root != a.root
    assert open_record_cache(spec, FeatureConfig(layers=(-1,), max_length=64), tmp_path).root != a.root
    assert cache_options(spec, FeatureConfig(precision="bf16"))["precision"] == "bfloat16"
    fp32 = open_record_cache(spec, FeatureConfig(layers=(-1,), precision="fp32"), tmp_path)
    bf16 = open_record_cache(spec, FeatureConfig(layers=(-1,), precision="bf16"), tmp_path)
    assert cache_options(spec, FeatureConfig(precision="fp32"))["precision"] == "float32" and fp32.root != bf16.root
    monkeypatch.setenv("CORESELECT_RECORD_CACHE", "off")
    assert open_record_cache(spec, FeatureConfig()) is None
