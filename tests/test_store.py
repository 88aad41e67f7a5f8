from __future__ import annotations

import numpy as np
import pytest

from coreselect.errors import StoreError
from coreselect.store import FeatureStore, plan_shards


def _manifest(key="k1", n=10, shard_rows=4):
    return {"key": key, "n_rows": n, "shard_rows": shard_rows}


def _arrays(plan, d=3):
    n = plan.end - plan.start
    rows = np.arange(plan.start, plan.end, dtype=np.float32)[:, None]
    return {"mlp.1": np.repeat(rows, d, axis=1), "n_tokens": np.full(n, 7)}


def test_plan_covers_rows_once():
    plan = plan_shards(10, 4)
    assert [(p.start, p.end) for p in plan] == [(0, 4), (4, 8), (8, 10)]


def test_write_resume_finalize_load(tmp_path):
    root = tmp_path / "s"
    st = FeatureStore.create(root, _manifest())
    p0 = st.plan()[0]
    st.write_shard(p0, _arrays(p0))
    # a second process (or a rerun) resumes: only the missing shards are pending
    st2 = FeatureStore.create(root, _manifest())
    assert [p.shard for p in st2.pending()] == [1, 2]
    for p in st2.pending():
        st2.write_shard(p, _arrays(p))
    st2.finalize()
    loaded = FeatureStore.open(root).load(["mlp.1", "n_tokens"])
    assert loaded["mlp.1"].dtype == np.float16
    assert loaded["mlp.1"][:, 0].tolist() == list(range(10))
    assert FeatureStore.open(root).manifest["dims"] == {"mlp.1": 3}


def test_other_key_is_refused(tmp_path):
    FeatureStore.create(tmp_path / "s", _manifest("k1"))
    with pytest.raises(StoreError, match="holds features of other data"):
        FeatureStore.create(tmp_path / "s", _manifest("k2"))


def test_incomplete_store_cannot_be_read_as_complete(tmp_path):
    st = FeatureStore.create(tmp_path / "s", _manifest())
    p0 = st.plan()[0]
    st.write_shard(p0, _arrays(p0))
    (tmp_path / "s" / ".shard-00001.safetensors.x.tmp").write_bytes(b"half")  # a crashed write
    with pytest.raises(StoreError, match="2 shards missing"):
        FeatureStore.open(tmp_path / "s")
    with pytest.raises(StoreError, match="cannot finalise"):
        st.finalize()


def test_float16_never_stores_infinity(tmp_path):
    st = FeatureStore.create(tmp_path / "s", _manifest(n=2, shard_rows=2))
    p = st.plan()[0]
    st.write_shard(p, {"mlp.1": np.array([[1e9, -1e9], [0.5, 2.0]], dtype=np.float32)})
    st.finalize()
    assert np.isfinite(FeatureStore.open(tmp_path / "s").load(["mlp.1"])["mlp.1"]).all()


def test_manifest_is_typed_and_reads_as_the_dict_it_was(tmp_path):
    from coreselect.store_manifest import StoreManifest

    st = FeatureStore.create(tmp_path / "s", _manifest(n=2, shard_rows=2))
    st.write_shard(st.plan()[0], _arrays(st.plan()[0]))
    st.finalize(stats={"tokens": 14, "truncated": 0})
    m = FeatureStore.open(tmp_path / "s").manifest
    assert isinstance(m, StoreManifest) and m.complete and m.dims == {"mlp.1": 3} and m.stats["tokens"] == 14
    assert m["dims"] == {"mlp.1": 3} and m.get("complete") is True and "scores" not in m and m.get("scores") is None


def test_a_manifest_written_before_reads_and_writes_back_the_same_bytes(tmp_path):
    """Keys this version does not know, and keys it does not need, are kept as they are."""
    import json

    from coreselect.store_manifest import StoreManifest

    old = {"format": "coreselect-features/1", "key": "k", "n_rows": 3, "shard_rows": 2, "complete": True,
           "data": {"path": "a.jsonl", "fingerprint": "sha256:1", "format": "alpaca"}, "model": {"name": "m"},
           "config": {"kind": "activations", "layers": [15]}, "dims": {"mlp.15": 4}, "scores": ["ifd"],
           "stats": {"tokens": 9, "truncated": 0}, "from_the_future": {"a": [1, 2]}}
    raw = (json.dumps(old, indent=2, sort_keys=True) + "\n").encode()
    (tmp_path / "manifest.json").write_bytes(raw)
    m = StoreManifest.read(tmp_path)
    assert m.extra == {"from_the_future": {"a": [1, 2]}} and m.scores == ("ifd",) and m.precision is None
    assert m.dumps() == raw and m.to_json() == old
    bare = StoreManifest.from_json({"key": "k", "n_rows": 1, "shard_rows": 1})  # missing keys: absent, not invented
    assert bare.format is None and bare.dims is None and "dims" not in bare.to_json()
    assert bare.updated(complete=True, note="x").to_json() == {"key": "k", "n_rows": 1, "shard_rows": 1,
                                                              "complete": True, "note": "x"}
