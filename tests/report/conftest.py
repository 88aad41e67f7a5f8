"""Fixtures of the report tests: one synthetic selection run and its report, built once."""

from __future__ import annotations

import pytest
from report_fixtures import write_dataset, write_manifest, write_store


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 240-record pool, a 36-pick k-center core, and its HTML report (built once)."""
    from coreselect.report import build_report

    d = tmp_path_factory.mktemp("synthetic")
    data = d / "pool.jsonl"
    recs = write_dataset(data, 240)
    store = write_store(d / "store", 240)
    manifest = write_manifest(data, store, d, 36)
    out = build_report(manifest, d / "report.html")
    return {"dir": d, "data": data, "records": recs, "store": store, "manifest": manifest, "report": out,
            "html": out.read_text(encoding="utf-8")}


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 40-record pool and an 8-pick core (no report): for tests that build their own."""
    d = tmp_path_factory.mktemp("small")
    data = d / "pool.jsonl"
    write_dataset(data, 40)
    store = write_store(d / "store", 40, dim=8)
    return {"dir": d, "data": data, "manifest": write_manifest(data, store, d, 8)}
