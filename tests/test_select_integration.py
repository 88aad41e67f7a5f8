"""End to end with the real default model (SmolLM2-135M-Instruct) on the embedded demo data.

The real-model runs use a 64-record slice of the demo (4 records of each of its 16 kinds of
task): the same path as the whole 240 (one shard, length-sorted batches, the default layer,
pooling and method) at about a quarter of the forward passes. That ``select`` without a data
file takes the whole demo is checked without a model.
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from coreselect.cli.main import main
from coreselect.data import load_dataset
from coreselect.demo import demo_path

PER_KIND = 4


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    by_kind: dict[str, list[str]] = defaultdict(list)
    for line in demo_path().read_text().splitlines():
        by_kind[json.loads(line)["category"]].append(line)
    pool = d / "pool.jsonl"
    pool.write_text("".join(line + "\n" for lines in by_kind.values() for line in lines[:PER_KIND]))
    out = d / "core.jsonl"
    rc = main(["select", str(pool), "--ratio", "0.25", "-o", str(out), "--work-dir", str(d / "work"),
               "--no-progress"])
    assert rc == 0
    return d, pool, out


@pytest.mark.slow
def test_manifest_indices_point_at_exported_records(demo_run):
    _, pool_file, out = demo_run
    manifest = json.loads(out.with_name("core.jsonl.manifest.json").read_text())
    pool = load_dataset(pool_file)
    core = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(pool) == 16 * PER_KIND
    assert len(core) == manifest["counts"]["selected"] == round(0.25 * len(pool)) == 16
    assert core == [pool.examples[i].record for i in manifest["indices"]]
    assert manifest["model"]["name"] == "smollm2-135m-instruct"
    assert manifest["features"]["dims"] == {"mlp.15": 1536}
    assert manifest["method"]["name"] == "facility-location"
    assert manifest["method"]["params"]["n_select"] == 16
    assert manifest["scores"]["coverage"]["covering_radius"] > 0


@pytest.mark.slow
def test_the_core_spans_the_kinds_of_task(demo_run):
    _, _, out = demo_run
    cats = {json.loads(line)["category"] for line in out.read_text().splitlines()}
    # of 16 (15 measured); a random 16 of these 64 covers 11.1 on average, 13 or more in 11% of draws
    assert len(cats) >= 13


@pytest.mark.slow
def test_rerun_reuses_features_and_refuses_to_overwrite(demo_run, capsys, monkeypatch):
    d, pool_file, out = demo_run
    rc = main(["select", str(pool_file), "--ratio", "0.25", "-o", str(out), "--work-dir", str(d / "work")])
    assert rc == 2
    assert "already exists (pass --overwrite" in capsys.readouterr().err
    out2 = d / "core2.jsonl"

    def no_model(*a, **k):
        raise AssertionError("features should come from the cache, not a new forward pass")

    monkeypatch.setattr("coreselect.features.lm.load_model", no_model)
    rc = main(["select", str(pool_file), "--ratio", "0.25", "-o", str(out2), "--work-dir", str(d / "work"),
               "--keep-order", "--no-progress"])
    assert rc == 0
    m = json.loads(out2.with_name("core2.jsonl.manifest.json").read_text())
    first = json.loads(out.with_name("core.jsonl.manifest.json").read_text())
    assert sorted(m["indices"]) == sorted(first["indices"])
    records = [json.loads(line) for line in out2.read_text().splitlines()]
    pool = load_dataset(pool_file)
    assert records == [pool.examples[i].record for i in sorted(m["indices"])]


def test_without_a_data_file_select_takes_the_whole_demo(tmp_path, capsys):
    out = tmp_path / "core.jsonl"
    assert main(["-q", "select", "--ratio", "0.15", "--method", "random", "-o", str(out)]) == 0
    manifest = json.loads(out.with_name("core.jsonl.manifest.json").read_text())
    pool = load_dataset(demo_path())
    assert manifest["data"]["path"] == str(demo_path()) and manifest["counts"]["pool"] == len(pool) == 240
    core = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(core) == manifest["counts"]["selected"] == 36
    assert core == [pool.examples[i].record for i in manifest["indices"]]
