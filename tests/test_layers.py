"""The import layers (issue 22): no import cycles, and .importlinter's contracts kept."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import import_graph  # noqa: E402


def test_no_import_cycles_at_import_time_or_through_lazy_imports():
    top, lazy = import_graph.graph()
    full = {m: top[m] | lazy.get(m, set()) for m in top}
    assert import_graph.cycles(top) == []
    assert import_graph.cycles(full) == []
    assert import_graph.cycles(import_graph.collapse(full)) == []


def test_the_graph_reader_sees_lazy_imports_and_cycles():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_graph.cycles(edges) == [["a", "b", "c"]]
    assert import_graph.shortest_cycle(edges, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    _, lazy = import_graph.graph()
    assert "coreselect.distributed.ray_select" in lazy["coreselect.distributed.executor"]


@pytest.mark.skipif(importlib.util.find_spec("importlinter") is None, reason="import-linter not installed")
def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(lint)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "0 broken" in r.stdout


def test_the_one_record_normaliser_keeps_stage_keys_and_pool_hashes_byte_identical():
    from coreselect.compare.pools import normalised_text
    from coreselect.compare.stages import text_hash
    from coreselect.data import fold_text, from_records

    ds = from_records([{"instruction": "Say  HI\tthere", "input": "to Bob", "output": "Hi  Bob!\n"}])
    assert text_hash(ds.examples[0]) == "4bd5e29f3a46f7ec347794360db4934976ae61d9"  # as before issue 22
    assert normalised_text({"instruction": "Say  HI", "input": "", "output": "Hi  Bob!<|endoftext|>"}) == "say hi hi bob!"
    assert fold_text("A\u001fB", " c ") == "a b c"
