"""Stages that connect (issue 13): any pick scored on any store of its data, beside random;
one meaning of balance; load_features."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from _reliability import assert_one_line_error

sys.path.insert(0, str(Path(__file__).resolve().parent / "report"))
from report_fixtures import write_dataset, write_store  # noqa: E402

import coreselect  # noqa: E402
from coreselect.cli.main import main  # noqa: E402


@pytest.fixture(scope="module")
def random_pick(tmp_path_factory) -> dict:
    """A 40-record pool with a category label, a store of its features, and a random pick of 8."""
    d = tmp_path_factory.mktemp("stages")
    write_dataset(d / "pool.jsonl", 40)
    store = write_store(d / "store", 40, dim=8)
    assert main(["-q", "select", str(d / "pool.jsonl"), "--n", "8", "--method", "random", "-o",
                 str(d / "random.jsonl")]) == 0
    manifest = d / "random.jsonl.manifest.json"
    return {"dir": d, "store": store.root, "manifest": manifest, "rows": json.loads(manifest.read_text())["rows"]}


def test_score_of_a_random_pick_on_a_given_store_beside_random(random_pick, capsys):
    args = ["score", str(random_pick["manifest"]), "--label-columns", "category"]
    assert main([*args, "--features-dir", str(random_pick["store"]), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert set(s["coverage"]) == {"covering_radius", "mean_nearest_distance"}
    assert set(s["random"]["coverage"]) == {"covering_radius", "mean_nearest_distance"} and s["random"]["seeds"] == 5
    assert s["labels"]["category"]["labels_in_pool"] == 6 and "balance" in s["random"]["labels"]["category"]
    assert s["features"] == str(random_pick["store"])
    assert main([*args, "--features-dir", str(random_pick["store"])]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["pick", "random", "(mean", "of", "5", "seeds)"]
    assert table[1].startswith("covering radius") and len(table[1].split()) == 4  # the pick's, then random's
    assert table[4].startswith("category: balance") and "1 = even over the pool's labels" in table[4]


def test_score_without_features_still_scores_labels_and_says_how(random_pick, capsys, caplog):
    assert main(["score", str(random_pick["manifest"]), "--label-columns", "category", "--json"]) == 0
    out = capsys.readouterr().out
    assert "coverage" not in json.loads(out) and "labels" in json.loads(out)
    assert "pass --features-dir DIR" in caplog.text


def test_a_store_of_other_data_is_one_line(random_pick, tmp_path, capsys):
    small = write_store(tmp_path / "small", 30, dim=8)
    assert_one_line_error(main(["score", str(random_pick["manifest"]), "--features-dir", str(small.root)]),
                          capsys.readouterr().err, r"small: 30 rows for a pool of 40 records$")
    m = json.loads((small.root / "manifest.json").read_text())
    m.update(n_rows=40, data={"path": "other.jsonl", "fingerprint": "sha256:0123456789abcdef"})
    (small.root / "manifest.json").write_text(json.dumps(m))
    assert_one_line_error(main(["score", str(random_pick["manifest"]), "--features-dir", str(small.root)]),
                          capsys.readouterr().err, r"holds features of other data \(other\.jsonl")


def test_balance_has_one_meaning_in_score_manifest_and_report(random_pick, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from coreselect.report.analysis import label_stats

    assert main(["score", str(random_pick["manifest"]), "--label-columns", "category", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["labels"]["category"]
    records = [json.loads(line) for line in (random_pick["dir"] / "pool.jsonl").read_text().splitlines()]
    stats = label_stats(records, "category", np.asarray(random_pick["rows"]))
    assert stats.balance == pytest.approx(scored["balance"], abs=1e-6)
    assert stats.pool_balance == pytest.approx(scored["pool_balance"], abs=1e-6)
    out = tmp_path / "r.html"
    assert main(["report", str(random_pick["manifest"]), "-o", str(out), "--label-columns", "category",
                 "--features-dir", str(random_pick["store"])]) == 0
    html = out.read_text()
    assert "TV distance" not in html and "normalised entropy" in html and "balance of random" in html
    assert str(random_pick["store"]) in html  # mapped on the given store, not TF-IDF


def test_load_features_of_a_manifest_a_store_and_a_file(random_pick, tmp_path):
    f = coreselect.load_features(random_pick["manifest"], features_dir=random_pick["store"],
                                 label_columns=["category"])
    assert f.X.shape == (40, 8) and f.X.dtype == np.float32 and f.picks.tolist() == random_pick["rows"]
    assert f.selected.sum() == 8 and f.labels["category"].shape == (40,) and f.normalize == "center-l2"
    np.testing.assert_allclose(np.linalg.norm(f.X, axis=1), 1.0, rtol=1e-5)
    g = coreselect.load_features(random_pick["store"], normalize="none")
    assert g.picks is None and g.X.shape == (40, 8) and g.source == str(random_pick["store"])
    np.save(tmp_path / "x.npy", g.X)
    h = coreselect.load_features(tmp_path / "x.npy", normalize="none")
    np.testing.assert_array_equal(h.X, g.X)
    from coreselect.errors import StoreError

    with pytest.raises(StoreError, match="used no features"):
        coreselect.load_features(random_pick["manifest"])


# -- select on a store from extract, or on the user's own features -----------------------------------
@pytest.fixture(scope="module")
def extracted(tmp_path_factory, tiny_dir, one_torch_thread) -> dict:
    """`coreselect extract -o DIR` of a 6-record file with the tiny model."""
    from _reliability import BAD, TINY_ARGS

    d = tmp_path_factory.mktemp("extracted")
    base = ["--model", str(tiny_dir), *TINY_ARGS]
    assert main(["-q", "extract", str(BAD / "good.jsonl"), "-o", str(d / "feats"), *base]) == 0
    return {"dir": d, "feats": d / "feats", "data": BAD / "good.jsonl", "base": base}


def _mtimes(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in root.iterdir()}


def test_select_reuses_the_store_extract_wrote(extracted, tmp_path, caplog):
    before = _mtimes(extracted["feats"])
    out = tmp_path / "core.jsonl"
    caplog.set_level(logging.INFO, logger="coreselect")
    assert main(["select", str(extracted["data"]), "--n", "3", "-o", str(out), "--features-dir",
                 str(extracted["feats"]), "--work-dir", str(tmp_path / "w"), *extracted["base"]]) == 0
    m = json.loads(out.with_name("core.jsonl.manifest.json").read_text())
    assert Path(m["features"]["store"]) == extracted["feats"] and not (tmp_path / "w").exists()
    assert _mtimes(extracted["feats"]) == before  # nothing extracted again, nothing rewritten
    assert "features already extracted" in caplog.text
    res = coreselect.select(str(extracted["data"]), n=3, features_dir=str(extracted["feats"]),  # the library too
                            model=extracted["base"][1], layers=[-1])
    assert Path(res.manifest.features.store) == extracted["feats"] and _mtimes(extracted["feats"]) == before


@pytest.mark.parametrize("extra,pattern", [
    (["--layers", "1"], r"feats: holds other feature options \(layers: stored \[-1\], now \[1\]\)"),
    (["--pooling", "max"], r"feats: holds other feature options \(pooling: stored \"last\", now \"max\"\)"),
])
def test_select_on_a_store_of_other_options_says_which_differ(extracted, extra, pattern, tmp_path, capsys):
    before = _mtimes(extracted["feats"])
    code = main(["select", str(extracted["data"]), "--n", "3", "-o", str(tmp_path / "c.jsonl"), "--features-dir",
                 str(extracted["feats"]), *extracted["base"], *extra])
    assert_one_line_error(code, capsys.readouterr().err, pattern)
    assert _mtimes(extracted["feats"]) == before


def test_select_on_a_store_of_other_data_or_model_says_so(extracted, tmp_path, capsys, alpaca_file):
    other = alpaca_file([{"instruction": f"Q{i}", "output": f"A{i}"} for i in range(6)])
    code = main(["select", str(other), "--n", "3", "-o", str(tmp_path / "c.jsonl"), "--features-dir",
                 str(extracted["feats"]), *extracted["base"]])
    assert_one_line_error(code, capsys.readouterr().err, r"feats: holds other data \(stored: .*good\.jsonl")
    code = main(["select", str(extracted["data"]), "--n", "3", "-o", str(tmp_path / "c.jsonl"), "--features-dir",
                 str(extracted["feats"]), "--model", "smollm2-135m-instruct", *extracted["base"][2:]])
    assert_one_line_error(code, capsys.readouterr().err, r"feats: holds features of another model \(stored: .*; "
                          r"now: smollm2-135m-instruct; pass --model ")


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_select_on_the_users_own_features(suffix, tmp_path, capsys):
    data = tmp_path / "pool.jsonl"
    write_dataset(data, 40)
    X = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    path = tmp_path / f"x{suffix}"
    if suffix == ".npy":
        np.save(path, X)
    else:
        from safetensors.numpy import save_file

        save_file({"emb": X}, str(path))
    out = tmp_path / "core.jsonl"
    assert main(["-q", "select", str(data), "--n", "8", "--method", "kcenter", "--features-file", str(path),
                 "-o", str(out)]) == 0
    m = json.loads(out.with_name("core.jsonl.manifest.json").read_text())
    assert m["features"]["store"] == str(path) and m.get("model") is None
    assert set(m["scores"]["coverage"]) == {"covering_radius", "mean_nearest_distance"}
    capsys.readouterr()
    assert main(["score", str(out.with_name("core.jsonl.manifest.json")), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["coverage"] == m["scores"]["coverage"]
    if suffix == ".npy" and importlib.util.find_spec("matplotlib"):  # the report maps the pick on the same file
        assert main(["report", str(out.with_name("core.jsonl.manifest.json")), "-o", str(tmp_path / "r.html")]) == 0
        assert f"{path} (5 dims, center-l2)" in (tmp_path / "r.html").read_text()
    np.save(tmp_path / "short.npy", X[:39])
    code = main(["select", str(data), "--n", "8", "--features-file", str(tmp_path / "short.npy"),
                 "-o", str(tmp_path / "c2.jsonl")])
    assert_one_line_error(code, capsys.readouterr().err, r"short\.npy: 39 feature rows for a pool of 40 records")
