"""Features a user brings read as a feature store does, so one select step serves both (issue 22)."""

from __future__ import annotations

import numpy as np
import pytest

from coreselect.data import from_records
from coreselect.engine import LocalExecutor
from coreselect.errors import ConfigError
from coreselect.featureset import FeatureFile
from coreselect.selection import make_selector
from coreselect.store import FeatureStore

N = 30


def _features() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, 6)).astype(np.float16)


@pytest.fixture
def store(tmp_path) -> FeatureStore:
    X = _features()
    st = FeatureStore.create(tmp_path / "store", {"key": "k", "n_rows": N, "shard_rows": 8})
    for p in st.plan():
        st.write_shard(p, {"emb": X[p.start : p.end], "n_tokens": np.full(p.end - p.start, 5)})
    st.finalize(stats={"tokens": 5 * N, "truncated": 0})
    return st


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_a_features_file_reads_as_a_store_does(store, tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    if suffix == ".npy":
        np.save(path, _features())
    else:
        from safetensors.numpy import save_file

        save_file({"emb": _features()}, str(path))
    f = FeatureFile.open(path)
    assert (f.n_rows, f.dims, f.columns, f.location) == (N, {f.groups[0]: 6}, [], str(path))
    assert np.array_equal(f.load()[f.groups[0]], store.load(["emb"])["emb"])
    assert f.fingerprint.startswith("sha256:") and f.kind == {"kind": "file", "path": str(path)}
    with pytest.raises(ConfigError, match="holds features only, no ifd"):
        f.load(["ifd"])


@pytest.mark.parametrize("method,params", [("kcenter", {}), ("facility-location", {}),
                                           ("neuron-coverage", {}), ("random", {})])
def test_one_select_step_gives_the_same_picks_on_a_store_and_on_a_file(store, method, params):
    executor = LocalExecutor()
    on_store, on_file = (make_selector(method, n_select=7, **params) for _ in range(2))
    a = executor.select(on_store, store, dedup=0.99 if method == "kcenter" else None)
    b = executor.select(on_file, FeatureFile.of_matrix(_features()), dedup=0.99 if method == "kcenter" else None)
    assert on_store.indices_.tolist() == on_file.indices_.tolist()
    assert np.array_equal(a.features, b.features) and a.removed == b.removed


def test_rows_of_a_pool_with_skipped_records_and_a_method_reading_stats():
    ds = from_records([{"instruction": "a", "output": "b"}, {"instruction": "no output"},
                       {"instruction": "c", "output": "d"}], on_error="skip")
    X = np.arange(6, dtype=np.float32).reshape(3, 2)
    f = FeatureFile.of_matrix(X).for_pool(ds)  # a row per input record: the skipped one's left out
    assert f.n_rows == 2 and f.load()["matrix"].tolist() == [[0.0, 1.0], [4.0, 5.0]]
    with pytest.raises(ConfigError, match=r"^<features>: 2 feature rows for a pool of 3 records"):
        FeatureFile.of_matrix(X[:2]).for_pool(from_records([{"instruction": str(i), "output": "o"} for i in range(3)]))
    with pytest.raises(ConfigError, match=r"^method 'longest' needs the per-row response_tokens"):
        LocalExecutor().select(make_selector("longest", n_select=1), f)  # as before: the method says what it lacks


def test_one_function_makes_the_matrix_of_any_source(store, tmp_path):
    import coreselect
    from coreselect.features.transform import feature_matrices, feature_matrix, prepare_features, raw_features

    groups = store.load(store.groups)
    X = feature_matrix(store, normalize="l2")
    assert X.dtype == np.float32 and np.array_equal(X, prepare_features(groups, normalize="l2"))
    X2, raw = feature_matrices(store, normalize="l2", raw=True)
    assert np.array_equal(X2, X) and np.array_equal(raw, raw_features(groups))
    same, fit = feature_matrices(store)
    assert fit is same  # one array when the method wants the prepared features
    np.save(tmp_path / "x.npy", _features())
    by_file = coreselect.load_features(tmp_path / "x.npy")
    assert np.array_equal(by_file.X, feature_matrix(store)) and np.array_equal(coreselect.load_features(store).X,
                                                                              by_file.X)


def test_a_safetensors_file_is_checked_from_its_header_and_read_by_group(tmp_path, monkeypatch):
    """open() reads the header only (a million-row file is not read to learn its shape); load(names)
    reads the groups it names; a tensor numpy cannot hold, a 1-D one or a row mismatch is one line."""
    import safetensors
    import torch
    from safetensors.numpy import save_file
    from safetensors.torch import save_file as save_torch

    from coreselect.featureset import read_features_file

    path = tmp_path / "two.safetensors"
    save_file({"a": _features(), "b": np.ones((N, 3), dtype=np.float16)}, str(path))
    read = []
    real = safetensors.safe_open

    class Spy:
        def __init__(self, *a, **k):
            self.f = real(*a, **k)

        def __enter__(self):
            self.inner = self.f.__enter__()
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def get_tensor(self, k):
            read.append(k)
            return self.inner.get_tensor(k)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    f = FeatureFile.open(path)
    assert (f.n_rows, f.dims, read) == (N, {"a": 6, "b": 3}, [])
    assert list(f.load(["b"])) == ["b"] and read == ["b"]
    assert np.array_equal(f.load(["a"])["a"], _features())
    assert read_features_file(path, header_only=True)["b"] == ((N, 3), np.dtype("float16"))

    bad = tmp_path / "bad.safetensors"
    for tensors, message in [({"x": torch.ones(N, 2, dtype=torch.bfloat16)}, rf"'x' has shape \({N}, 2\) and dtype BF16"),
                             ({"x": torch.ones(N)}, rf"'x' has shape \({N},\) and dtype float32"),
                             ({"x": torch.ones(N, 2), "y": torch.ones(N - 1, 2)}, rf"different row counts \({N - 1}, {N}\)")]:
        save_torch(tensors, str(bad))
        with pytest.raises(ConfigError, match=rf"^{bad}: .*{message}"):
            FeatureFile.open(bad)
