"""End to end with the real default model (SmolLM2-135M-Instruct) on the embedded demo data."""

from __future__ import annotations

import json

import pytest

from coreselect.cli.main import main
from coreselect.data import load_dataset
from coreselect.demo import demo_path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    out = d / "core.jsonl"
    rc = main(["select", "--ratio", "0.15", "-o", str(out), "--work-dir", str(d / "work"), "--no-progress"])
    assert rc == 0
    return d, out


def test_manifest_indices_point_at_exported_records(demo_run):
    _, out = demo_run
    manifest = json.loads(out.with_name("core.jsonl.manifest.json").read_text())
    pool = load_dataset(demo_path())
    core = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(core) == manifest["counts"]["selected"] == round(0.15 * len(pool)) == 36
    assert core == [pool.examples[i].record for i in manifest["indices"]]
    assert manifest["model"]["name"] == "smollm2-135m-instruct"
    assert manifest["features"]["dims"] == {"mlp.15": 1536}
    assert manifest["method"]["name"] == "facility-location"
    assert manifest["method"]["params"]["n_select"] == 36
    assert manifest["scores"]["coverage"]["covering_radius"] > 0


def test_the_core_spans_the_kinds_of_task(demo_run):
    _, out = demo_run
    cats = {json.loads(line)["category"] for line in out.read_text().splitlines()}
    assert len(cats) >= 12  # of 16; a random 36 of 240 covers about 14.6 on average


def test_rerun_reuses_features_and_refuses_to_overwrite(demo_run, capsys, monkeypatch):
    d, out = demo_run
    rc = main(["select", "--ratio", "0.15", "-o", str(out), "--work-dir", str(d / "work")])
    assert rc == 2
    assert "already exists (pass --overwrite" in capsys.readouterr().err
    out2 = d / "core2.jsonl"

    def no_model(*a, **k):
        raise AssertionError("features should come from the cache, not a new forward pass")

    monkeypatch.setattr("coreselect.features.extract.load_model", no_model)
    rc = main(["select", "--ratio", "0.15", "-o", str(out2), "--work-dir", str(d / "work"),
               "--keep-order", "--no-progress"])
    assert rc == 0
    m = json.loads(out2.with_name("core2.jsonl.manifest.json").read_text())
    first = json.loads(out.with_name("core.jsonl.manifest.json").read_text())
    assert sorted(m["indices"]) == sorted(first["indices"])
    records = [json.loads(line) for line in out2.read_text().splitlines()]
    pool = load_dataset(demo_path())
    assert records == [pool.examples[i].record for i in sorted(m["indices"])]
