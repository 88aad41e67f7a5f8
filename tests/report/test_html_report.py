"""The HTML report: sections, self-containment, escaping, options and errors."""

from __future__ import annotations

import html
import json
import re
import shutil

import pytest
from report_fixtures import XSS_IMG, XSS_SCRIPT, write_dataset, write_manifest, write_store

from coreselect.cli.main import main
from coreselect.errors import ConfigError, OutputExistsError
from coreselect.report import ReportError, build_report, default_report_path

SECTIONS = ["summary", "map", "coverage", "lengths", "clusters", "labels", "picks"]


def _picks_rows(page: str) -> list[str]:
    body = page.split('<table id="picks">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1])


def test_all_sections_present(synthetic_run):
    page = synthetic_run["html"]
    assert page.startswith("<!DOCTYPE html>")
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in page
    assert page.count('<img src="data:image/png;base64,') == 5  # map, coverage, lengths, clusters, 1 label
    assert "36 of 240 examples selected with kcenter" in page
    assert "tiny-test" in page and "mlp.3 48" in page
    assert "tokens; last bin" not in page  # plot text lives in the PNGs, not the HTML
    assert "Tokens as the selector model saw them" in page


def test_self_contained(synthetic_run):
    page = synthetic_run["html"]
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "url(" not in page and "@import" not in page
    for src in re.findall(r'<img src="([^"]*)"', page):
        assert src.startswith("data:image/png;base64,")
    # the only external-looking text allowed is escaped dataset text; here there is none
    assert "http://" not in page and "https://" not in page
    assert "default-src &#x27;none&#x27;" in page  # CSP: the page may load nothing


def test_dataset_text_is_escaped(synthetic_run):
    page = synthetic_run["html"]
    assert XSS_SCRIPT not in page and XSS_IMG not in page
    assert page.count("<script") == 1  # ours, at the end
    assert "onerror=" not in page.replace(html.escape("onerror="), "")
    # the payloads still show, as text, in the first row of the records table (record 0 = pick 1)
    first = _picks_rows(page)[0]
    assert html.escape(XSS_SCRIPT) in first and html.escape(XSS_IMG) in first


def test_escaping_of_picked_payloads(tmp_path):
    """Force both payload records into the core so they appear in the records table."""
    data = tmp_path / "pool.jsonl"
    write_dataset(data, 40)
    store = write_store(tmp_path / "store", 40, dim=8)
    m = write_manifest(data, store, tmp_path, 6, curve=False)
    man = json.loads(m.read_text())
    man["rows"] = man["indices"] = [0, 1, 2, 3, 4, 5]
    m.write_text(json.dumps(man))
    page = build_report(m, tmp_path / "r.html").read_text()
    rows = _picks_rows(page)
    assert html.escape(XSS_SCRIPT) in rows[0]
    assert html.escape(XSS_IMG) in rows[0] and html.escape(XSS_IMG) in rows[1]
    assert "<img src=x" not in page and page.count("<script") == 1


def test_records_table(synthetic_run):
    page = synthetic_run["html"]
    man = json.loads(synthetic_run["manifest"].read_text())
    rows = _picks_rows(page)
    assert len(rows) == 36
    cells = re.findall(r"<td[^>]*>(.*?)</td>", rows[0])
    assert cells[0] == "1" and cells[1] == str(man["indices"][0])
    assert "<tr hidden" not in page  # every row shows without scripts
    assert '<input id="q" type="search"' in page and " hidden>" in page  # box appears only with JS


def test_labels_auto_detected(synthetic_run):
    page = synthetic_run["html"]
    labels = page.split('<section id="labels">', 1)[1].split("</section>", 1)[0]
    assert "<td>category</td>" in labels
    assert re.search(r'<td class="num">6</td><td class="num">\d</td>', labels)
    assert "never used to select" in labels


def test_label_columns_option(tmp_path, small_run):
    m = small_run["manifest"]
    page = build_report(m, tmp_path / "cat.html", label_columns=["category"]).read_text()
    assert "<td>category</td>" in page
    with pytest.raises(ConfigError, match="nope"):
        build_report(m, tmp_path / "bad.html", label_columns=["nope"])
    assert not (tmp_path / "bad.html").exists()


def test_overwrite_refused_then_allowed(synthetic_run, tmp_path):
    out = tmp_path / "copy.html"
    shutil.copy(synthetic_run["report"], out)
    with pytest.raises(OutputExistsError):
        build_report(synthetic_run["manifest"], out)
    before = out.stat().st_mtime_ns
    build_report(synthetic_run["manifest"], out, overwrite=True, max_rows=10, label_columns=[])
    assert out.stat().st_mtime_ns >= before
    page = out.read_text()
    assert len(_picks_rows(page)) == 10 and "The first 10 of 36 picks" in page
    assert "label columns switched off" in page


def test_without_feature_store(tmp_path):
    """A method that needs no features: text features for the map, words for lengths."""
    data = tmp_path / "pool.jsonl"
    write_dataset(data, 80)
    m = write_manifest(data, None, tmp_path, 12)
    page = build_report(m, tmp_path / "r.html").read_text()
    assert "TF-IDF + SVD of the text" in page
    assert "Whitespace-separated words" in page
    assert "12 of 80 examples selected with random" in page
    assert len(_picks_rows(page)) == 12


def test_missing_store_falls_back(tmp_path, caplog):
    data = tmp_path / "pool.jsonl"
    write_dataset(data, 60)
    store = write_store(tmp_path / "store", 60, dim=8)
    m = write_manifest(data, store, tmp_path, 9)
    shutil.rmtree(store.root)
    page = build_report(m, tmp_path / "r.html").read_text()
    assert "TF-IDF + SVD of the text" in page
    assert "feature store unavailable" in caplog.text


def test_changed_data_is_refused(tmp_path):
    data = tmp_path / "pool.jsonl"
    write_dataset(data, 30)
    m = write_manifest(data, None, tmp_path, 5)
    write_dataset(data, 30, seed=1)
    with pytest.raises(ReportError, match="differs from the data of the selection"):
        build_report(m, tmp_path / "r.html")


def test_bad_manifest(tmp_path):
    bad = tmp_path / "x.manifest.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ReportError, match="not a coreselect manifest"):
        build_report(bad, tmp_path / "r.html")
    with pytest.raises(ReportError, match="not found"):
        build_report(tmp_path / "missing.json", tmp_path / "r.html")


def test_umap_needs_package(small_run, tmp_path):
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="umap-learn"):
            build_report(small_run["manifest"], tmp_path / "u.html", projection="umap")
    else:  # pragma: no cover
        pytest.skip("umap is installed")


def test_default_report_path(tmp_path):
    assert default_report_path(tmp_path / "core.jsonl.manifest.json") == tmp_path / "core.jsonl.report.html"


def test_cli_report(small_run, tmp_path, capsys):
    out = tmp_path / "cli.html"
    assert main(["-q", "report", str(small_run["manifest"]), "-o", str(out), "--label-columns", "none",
                 "--max-rows", "5"]) == 0
    assert out.is_file() and f"report: {out}" in capsys.readouterr().out
    assert len(_picks_rows(out.read_text())) == 5
    assert main(["-q", "report", str(small_run["manifest"]), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("coreselect: error:") and "--overwrite" in err and "\n" not in err
    assert main(["-q", "report", str(tmp_path / "nope.json"), "-o", str(tmp_path / "n.html")]) == 2


def test_select_report_flag(small_run, tmp_path, monkeypatch, capsys):
    """``select --report`` writes the report from the manifest run_select returns."""
    import numpy as np

    import coreselect.pipeline as pipeline
    from coreselect.manifest import SelectionManifest

    man = SelectionManifest.read(small_run["manifest"])

    def fake_run_select(job):
        return pipeline.SelectResult(np.asarray(man.rows), tmp_path / "core.jsonl", small_run["manifest"], man)

    monkeypatch.setattr(pipeline, "run_select", fake_run_select)
    out = tmp_path / "sel.html"
    args = ["-q", "select", str(small_run["data"]), "--n", "8", "--report", str(out)]
    assert main(args) == 0
    assert out.is_file() and f"report: {out}" in capsys.readouterr().out
    # an existing report is refused before any work is done
    monkeypatch.setattr(pipeline, "run_select", None)
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
