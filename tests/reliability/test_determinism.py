"""Same inputs and seed -> byte-identical core files, manifests and feature stores.

Features are compared across fresh extractions and across torch thread counts (1 vs 2). What is
*not* promised: features from a different shard size or batch budget (the rows batched together
change the bfloat16 rounding in the last bit), another device, or another torch build; see
docs/reliability.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _reliability import BAD, TINY_ARGS, read_manifest, store_tensors
from coreselect.cli.main import main


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """The tiny model runs faster on one thread (see conftest)."""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    src = [json.loads(line) for line in (BAD / "good.jsonl").read_text().splitlines()]
    recs = [{**r, "instruction": f"{r['instruction']} (variant {i})"} for i in range(4) for r in src]
    p = tmp_path_factory.mktemp("data") / "data.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return p


def _select(data: Path, out: Path, work: Path, tiny_dir: Path, *extra: str) -> list[str]:
    return ["-q", "select", str(data), "--n", "7", "-o", str(out), "--work-dir", str(work),
            "--model", str(tiny_dir), "--overwrite", *TINY_ARGS, *extra]


def _without(m: dict, *paths: str) -> dict:
    m = json.loads(json.dumps(m))
    for p in paths:
        *parents, last = p.split(".")
        d = m
        for k in parents:
            d = d[k]
        d.pop(last, None)
    return m


#: what a run measures about itself (wall seconds) rather than what it picked
CLOCKS = ("timings", "method.info.seconds", "method.info.greedy_seconds")


def test_two_fresh_runs_are_byte_identical(tmp_path, data, tiny_dir, monkeypatch):
    a, b = tmp_path / "a" / "core.jsonl", tmp_path / "b" / "core.jsonl"
    assert main(_select(data, a, tmp_path / "wa", tiny_dir)) == 0
    monkeypatch.setenv("CORESELECT_RECORD_CACHE", str(tmp_path / "records-b"))  # fresh: extract again
    assert main(_select(data, b, tmp_path / "wb", tiny_dir)) == 0
    assert read_manifest(b)["features"]["extracted"] == 24
    assert a.read_bytes() == b.read_bytes()
    ma, mb = read_manifest(a), read_manifest(b)
    assert _without(ma, *CLOCKS, "features.store") == _without(mb, *CLOCKS, "features.store")
    assert store_tensors(Path(ma["features"]["store"])) == store_tensors(Path(mb["features"]["store"]))


def test_rerun_in_the_same_work_dir_gives_the_same_manifest(tmp_path, data, tiny_dir):
    out = tmp_path / "core.jsonl"
    assert main(_select(data, out, tmp_path / "w", tiny_dir)) == 0
    first, m1 = out.read_bytes(), read_manifest(out)
    assert main(_select(data, out, tmp_path / "w", tiny_dir)) == 0
    assert out.read_bytes() == first
    assert (m1["features"]["extracted"], read_manifest(out)["features"]["extracted"]) == (24, 0)  # of this run
    assert _without(read_manifest(out), *CLOCKS, "features.extracted") == _without(m1, *CLOCKS,
                                                                                    "features.extracted")


@pytest.mark.parametrize("method", ["kcenter", "random", "facility-location"])
def test_same_seed_same_core_other_seed_other_core(method, tmp_path, data, tiny_dir):
    picks = {}
    for seed in ("3", "3", "4"):
        out = tmp_path / f"core-{len(picks)}.jsonl"
        assert main(_select(data, out, tmp_path / "w", tiny_dir, "--method", method, "--seed", seed)) == 0
        picks[len(picks)] = (out.read_bytes(), read_manifest(out)["indices"])
    assert picks[0] == picks[1]
    if method == "random":
        assert picks[0][1] != picks[2][1]


def test_thread_count_does_not_change_features_or_selection(tmp_path, data, tiny_dir, monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    stores, cores = [], []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            monkeypatch.setenv("CORESELECT_RECORD_CACHE", str(tmp_path / f"records-{n}"))  # extract each time
            out = tmp_path / f"core-{n}.jsonl"
            assert main(_select(data, out, tmp_path / f"w{n}", tiny_dir)) == 0
            stores.append(Path(read_manifest(out)["features"]["store"]))
            cores.append((out.read_bytes(), _without(read_manifest(out), *CLOCKS, "features.store")))
    finally:
        torch.set_num_threads(before)
    assert cores[0] == cores[1]  # the promise: the same core set and manifest
    assert store_tensors(stores[0]) == store_tensors(stores[1])  # observed: even the float16 bits agree
