"""The README's notebook snippet runs as written: a datasets.Dataset in, a Dataset out."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

import coreselect
from coreselect.data import load_dataset
from coreselect.demo import demo_path

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- notebook snippet: run by tests/test_readme.py -->"


def snippet() -> str:
    text = README.read_text()
    assert MARKER in text, "the README lost its notebook snippet"
    m = re.match(r"\s*```python\n(.*?)```", text.split(MARKER, 1)[1], re.S)
    assert m, "the marker must be followed by a ```python block"
    return m.group(1)


def demo_dataset(n: int):
    datasets = pytest.importorskip("datasets")
    return datasets.Dataset.from_list([e.record for e in load_dataset(demo_path()).examples[:n]])


def _check(ns: dict, ds) -> None:
    import datasets

    core = ns["core"]
    assert isinstance(core, datasets.Dataset)
    assert len(core) == round(0.15 * len(ds)) and core.to_list() == ds.select(ns["result"].indices).to_list()


def test_snippet_is_three_lines():
    lines = [x for x in snippet().splitlines() if x.strip()]
    assert len(lines) == 3 and lines[0] == "import coreselect"


def test_snippet_runs_with_a_tiny_model(tmp_path, monkeypatch, tiny_dir, one_torch_thread):
    """As written, except that the selector model is the tiny random Llama (fast)."""
    ds = demo_dataset(40)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(coreselect, "select", functools.partial(
        coreselect.select, model=str(tiny_dir), layers=[-1], work_dir=str(tmp_path / "feats"), progress=False))
    ns: dict = {"ds": ds}
    exec(compile(snippet(), "README.md", "exec"), ns)
    _check(ns, ds)
    assert ns["result"].manifest.method.name == "facility-location"  # the default method, on features
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats"]  # no output file: only the feature cache


@pytest.mark.slow
def test_snippet_runs_verbatim_with_the_default_model(tmp_path, monkeypatch):
    ds = demo_dataset(30)
    monkeypatch.chdir(tmp_path)
    ns: dict = {"ds": ds}
    exec(compile(snippet(), "README.md", "exec"), ns)
    _check(ns, ds)
    assert ns["result"].manifest.model["name"] == "smollm2-135m-instruct"
