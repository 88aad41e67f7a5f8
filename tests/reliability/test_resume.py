"""Crash and resume: an extraction stopped after any shard resumes to the same features.

A crash is simulated by raising from :meth:`FeatureStore.write_shard` (or from inside the atomic
write, leaving a half-written temporary file) after N shards; rerunning the same command must
finish the store, and its tensors and manifest must equal those of an uninterrupted run.
``benchmarks/fault_injection.py`` does the same with real SIGKILLs and the real model.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from _reliability import TINY_ARGS, read_manifest, store_tensors
from coreselect.cli.main import main
from coreselect.errors import StoreError
from coreselect.store import FeatureStore

N_RECORDS, SHARD_ROWS = 37, 8  # 5 shards, the last one short
N_SHARDS = 5


class Crash(Exception):
    """Stands in for the process dying."""


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """The tiny model runs faster on one thread (see conftest)."""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    recs = [{"instruction": f"Task {i}: " + " ".join(words[j % 12] for j in range(i, i + 3 + i % 9)),
             "input": "" if i % 3 else f"context {i}",
             "output": " ".join(words[(i * j) % 12] for j in range(1 + (i * 7) % 23))} for i in range(N_RECORDS)]
    p = tmp_path_factory.mktemp("data") / "data.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return p


def _extract(data: Path, out: Path, tiny_dir: Path, *extra: str) -> list[str]:
    return ["-q", "extract", str(data), "-o", str(out), "--model", str(tiny_dir), "--shard-rows",
            str(SHARD_ROWS), *TINY_ARGS, *extra]


def _store_manifest(root: Path) -> dict:
    m = json.loads((root / "manifest.json").read_text())
    m["stats"].pop("seconds_last_run")
    return m


@pytest.fixture(scope="module")
def clean(tmp_path_factory, data, tiny_dir) -> Path:
    out = tmp_path_factory.mktemp("clean") / "feats"
    assert main(_extract(data, out, tiny_dir)) == 0
    assert len(list(out.glob("shard-*.safetensors"))) == N_SHARDS
    return out


def _crash_after(monkeypatch, n_ok: int, exc: BaseException) -> list[int]:
    """Let ``n_ok`` shards be written, then raise ``exc`` from the next write."""
    written: list[int] = []
    real = FeatureStore.write_shard

    def write_shard(self, plan, arrays):
        if len(written) >= n_ok:
            raise exc
        real(self, plan, arrays)
        written.append(plan.shard)

    monkeypatch.setattr(FeatureStore, "write_shard", write_shard)
    return written


@pytest.mark.parametrize("n_ok", [0, 1, 3, N_SHARDS - 1])
def test_crash_after_n_shards_then_resume(n_ok, tmp_path, data, tiny_dir, clean, monkeypatch, caplog):
    out = tmp_path / "feats"
    with monkeypatch.context() as mp:
        written = _crash_after(mp, n_ok, Crash())
        with pytest.raises(Crash):
            main(_extract(data, out, tiny_dir))
    assert written == list(range(n_ok))
    assert sorted(p.name for p in out.glob("shard-*")) == [f"shard-{i:05d}.safetensors" for i in range(n_ok)]
    with pytest.raises(StoreError, match=rf"extraction not finished \({N_SHARDS - n_ok} shards missing\)"):
        FeatureStore.open(out)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="coreselect")
    assert main(_extract(data, out, tiny_dir)) == 0
    if n_ok:
        assert f"resuming, {n_ok} of {N_SHARDS} shards already done" in caplog.text
    assert store_tensors(out) == store_tensors(clean)
    assert _store_manifest(out) == _store_manifest(clean)


def test_crash_in_the_middle_of_a_shard_write(tmp_path, data, tiny_dir, clean, monkeypatch):
    """A writer killed mid-write leaves only a temporary file: never read, removed at the end."""
    import coreselect.store as store_mod

    out = tmp_path / "feats"
    real = store_mod.atomic_write_bytes
    calls = []

    def dying_write(path: Path, payload: bytes) -> None:
        calls.append(path.name)
        if path.name == "shard-00002.safetensors":
            (path.parent / f".{path.name}.dead1234.tmp").write_bytes(payload[: len(payload) // 2])
            raise Crash()
        real(path, payload)

    with monkeypatch.context() as mp:
        mp.setattr(store_mod, "atomic_write_bytes", dying_write)
        with pytest.raises(Crash):
            main(_extract(data, out, tiny_dir))
    assert FeatureStore.open(out, require_complete=False).finished_shards() == {0, 1}
    assert (out / ".shard-00002.safetensors.dead1234.tmp").exists()
    assert main(_extract(data, out, tiny_dir)) == 0
    assert store_tensors(out) == store_tensors(clean)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"] + [
        f"shard-{i:05d}.safetensors" for i in range(N_SHARDS)]


def test_ctrl_c_keeps_finished_shards_and_says_how_to_resume(tmp_path, data, tiny_dir, clean, monkeypatch,
                                                             capsys):
    out = tmp_path / "feats"
    with monkeypatch.context() as mp:
        _crash_after(mp, 2, KeyboardInterrupt())
        assert main(_extract(data, out, tiny_dir)) == 130
    err = capsys.readouterr()[1]
    assert err.strip() == ("coreselect: interrupted; finished work is kept, rerun the same command "
                           "to resume")
    assert main(_extract(data, out, tiny_dir)) == 0
    assert store_tensors(out) == store_tensors(clean)


def test_resume_keeps_the_stores_own_shard_size(tmp_path, data, tiny_dir, clean, monkeypatch):
    out = tmp_path / "feats"
    with monkeypatch.context() as mp:
        _crash_after(mp, 2, Crash())
        with pytest.raises(Crash):
            main(_extract(data, out, tiny_dir))
    assert main(_extract(data, out, tiny_dir, "--shard-rows", "5")) == 0  # the later flag wins in argparse
    assert json.loads((out / "manifest.json").read_text())["shard_rows"] == SHARD_ROWS
    assert store_tensors(out) == store_tensors(clean)


def test_select_resumes_after_a_crash_to_the_same_core(tmp_path, data, tiny_dir, monkeypatch):
    def select(name: str, work: str) -> list[str]:
        return ["-q", "select", str(data), "--n", "9", "-o", str(tmp_path / name), "--work-dir",
                str(tmp_path / work), "--model", str(tiny_dir), *TINY_ARGS]

    assert main(select("clean.jsonl", "w-clean")) == 0
    with monkeypatch.context() as mp:
        _crash_after(mp, 0, Crash())  # crash before select writes its first shard
        with pytest.raises(Crash):
            main(select("core.jsonl", "w"))
    assert not (tmp_path / "core.jsonl").exists() and not (tmp_path / "core.jsonl.manifest.json").exists()
    assert main(select("core.jsonl", "w")) == 0
    assert (tmp_path / "core.jsonl").read_bytes() == (tmp_path / "clean.jsonl").read_bytes()
    a, b = read_manifest(tmp_path / "core.jsonl"), read_manifest(tmp_path / "clean.jsonl")
    # the clean run filled the record cache, so the crashed one's rows all come from it
    assert (a["features"]["extracted"], b["features"]["extracted"]) == (0, N_RECORDS)
    for m in (a, b):
        m.pop("timings")
        m["features"].pop("store")
        m["features"].pop("extracted")
        for clock in ("seconds", "greedy_seconds"):  # wall time of the graph and the greedy
            m["method"].get("info", {}).pop(clock, None)
    assert a == b


def test_partial_store_never_counts_temp_files(tmp_path):
    st = FeatureStore.create(tmp_path / "s", {"key": "k", "n_rows": 10, "shard_rows": 4})
    for name in (".shard-00000.safetensors.x.tmp", "shard-00001.safetensors.tmp", "shard-1.safetensors",
                 "shard-00002.safetensors~"):
        (tmp_path / "s" / name).write_bytes(b"partial")
    (tmp_path / "s" / "shard-00003.safetensors").mkdir()  # not a file
    assert st.finished_shards() == set()
    assert [p.shard for p in st.pending()] == [0, 1, 2]
    assert all(re.fullmatch(r"shard-\d{5}\.safetensors", p.filename) for p in st.plan())
