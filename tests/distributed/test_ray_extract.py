"""Extraction on a Ray actor pool: the same store as the single-process path, crash-safe.

A tiny random Llama (hidden 32, 4 layers) with the default model's tokenizer keeps the actors'
model loads and forward passes fast; no model hub is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ray_helpers import CrashOnce, write_records

from _reliability import TINY_ARGS, save_tiny_model, store_tensors
from coreselect.cli.main import main
from coreselect.data import load_dataset
from coreselect.distributed.executor import extract_features_ray
from coreselect.features.config import FeatureConfig
from coreselect.models import resolve_model
from coreselect.store import FeatureStore

ray = pytest.importorskip("ray")
N_RECORDS, SHARD_ROWS = 70, 16  # 5 shards, the last one short
pytestmark = [pytest.mark.usefixtures("ray_cluster"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", tokenizer)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_records(tmp_path_factory.mktemp("data") / "data.jsonl", N_RECORDS)


@pytest.fixture(scope="module")
def local_store(tmp_path_factory, data, tiny_dir) -> Path:
    out = tmp_path_factory.mktemp("local") / "feats"
    assert main(["-q", "extract", str(data), "-o", str(out), "--model", str(tiny_dir),
                 "--shard-rows", str(SHARD_ROWS), *TINY_ARGS]) == 0
    return out


def _manifest(root: Path) -> dict:
    m = json.loads((root / "manifest.json").read_text())
    m["stats"].pop("seconds_last_run")
    return m


def assert_same_store(a: Path, b: Path) -> None:
    """Same manifest, shard files and row stats; features equal within float16 rounding."""
    assert _manifest(a) == _manifest(b)
    ta, tb = store_tensors(a), store_tensors(b)
    assert sorted(ta) == sorted(tb)
    fa, fb = FeatureStore.open(a).load(), FeatureStore.open(b).load()
    for k in fa:
        if k.startswith(("mlp.", "hidden.")):  # torch thread counts differ: allow float16 rounding
            np.testing.assert_allclose(fa[k].astype(np.float32), fb[k].astype(np.float32), rtol=2e-3, atol=2e-4)
        else:
            assert np.array_equal(fa[k], fb[k]), k
    assert not [p for p in b.iterdir() if p.name.endswith(".tmp")]


def test_killed_actor_loses_and_duplicates_nothing(tmp_path, data, tiny_dir, local_store):
    """Resume a store two of whose shards another executor wrote, while one actor dies mid-run."""
    out = tmp_path / "feats"
    out.mkdir()
    m = json.loads((local_store / "manifest.json").read_text())
    m["complete"] = False
    for k in ("dims", "stats"):
        m.pop(k)
    (out / "manifest.json").write_text(json.dumps(m))
    kept = ("shard-00001.safetensors", "shard-00003.safetensors")
    for name in kept:
        (out / name).write_bytes((local_store / name).read_bytes())
    mtimes = {n: (out / n).stat().st_mtime_ns for n in kept}
    store = extract_features_ray(load_dataset(data), resolve_model(str(tiny_dir)), FeatureConfig(layers=(-1,)),
                                 out, shard_rows=SHARD_ROWS, progress=False, n_actors=2, actor_cls=CrashOnce)
    assert (tmp_path / "crashed").exists(), "the actor never crashed"
    assert store.manifest["complete"] and not store.pending()
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == mtimes  # finished shards never rewritten
    assert store.load(["n_tokens"])["n_tokens"].shape == (N_RECORDS,)  # checks each shard's rows
    assert_same_store(local_store, out)


@pytest.fixture(scope="module")
def ray_work(tmp_path_factory) -> Path:
    """The feature cache of the Ray runs: the first select extracts, later runs reuse it."""
    return tmp_path_factory.mktemp("ray-work")


@pytest.mark.parametrize("method", ["kcenter", "ltd"])
def test_cli_select_on_ray_matches_local(tmp_path, data, tiny_dir, local_store, ray_work, method, monkeypatch):
    common = [str(data), "--n", "12", "--method", method, "--model", str(tiny_dir), *TINY_ARGS, "--seed", "3"]
    assert main(["-q", "select", *common, "-o", str(tmp_path / "local.jsonl"),
                 "--work-dir", str(tmp_path / "work")]) == 0
    monkeypatch.setenv("CORESELECT_RECORD_CACHE", str(tmp_path / "ray-records"))  # the actors extract
    assert main(["-q", "select", *common, "-o", str(tmp_path / "ray.jsonl"), "--work-dir", str(ray_work),
                 "--engine", "ray", "--ray-actors", "2"]) == 0
    assert (tmp_path / "local.jsonl").read_bytes() == (tmp_path / "ray.jsonl").read_bytes()
    ml = json.loads((tmp_path / "local.jsonl.manifest.json").read_text())
    mr = json.loads((tmp_path / "ray.jsonl.manifest.json").read_text())
    assert mr["rows"] == ml["rows"] and mr["engine"]["name"] == "ray"
    assert mr["scores"]["coverage"] == pytest.approx(ml["scores"]["coverage"], abs=2e-6)
    assert mr.get("coverage_curve") == pytest.approx(ml.get("coverage_curve"), abs=1e-5)
    ray_store = Path(mr["features"]["store"])
    assert_same_store(Path(ml["features"]["store"]), ray_store)


def test_cli_extract_on_ray_reuses_a_complete_store(tmp_path, data, tiny_dir, local_store, ray_work):
    (store,) = [p for p in ray_work.iterdir() if (p / "manifest.json").is_file()]
    before = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    assert main(["-q", "extract", str(data), "-o", str(store), "--model", str(tiny_dir), *TINY_ARGS,
                 "--engine", "ray"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == before


def test_ray_actors_extract_only_the_records_the_cache_lacks(tmp_path, data, tiny_dir, record_cache):
    """A pool grown by three records and shuffled: the driver writes the shards it has every row
    of, the actors extract the three new records only, and the cached rows keep their bytes."""
    from coreselect.recordcache import count_records

    spec, cfg = resolve_model(str(tiny_dir)), FeatureConfig(layers=(-1,))
    recs = [json.loads(line) for line in data.read_text().splitlines()]
    grown = recs + [{"instruction": f"New task {i}", "output": f"New answer {i}"} for i in range(3)]
    order = np.random.default_rng(1).permutation(len(grown))
    pool = tmp_path / "grown.jsonl"
    pool.write_text("".join(json.dumps(grown[i]) + "\n" for i in order))
    local = extract_features_ray(load_dataset(data), spec, cfg, tmp_path / "first", shard_rows=SHARD_ROWS,
                                 progress=False, n_actors=2)
    (folder,) = record_cache.iterdir()
    assert local.extracted == N_RECORDS and count_records(folder) == N_RECORDS
    store = extract_features_ray(load_dataset(pool), spec, cfg, tmp_path / "grown", shard_rows=SHARD_ROWS,
                                 progress=False, n_actors=2)
    assert store.extracted == 3 and count_records(folder) == N_RECORDS + 3  # nothing extracted twice
    old, new = local.load(), store.load()
    was = np.flatnonzero(order < N_RECORDS)
    for k in old:
        assert np.array_equal(new[k][was], old[k][order[was]]), k


def test_ray_options_need_ray_engine(tmp_path, data, capsys):
    assert main(["select", str(data), "--n", "3", "--ray-actors", "2"]) == 2
    assert "--ray-address and --ray-actors need --engine ray" in capsys.readouterr().err
