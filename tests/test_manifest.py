"""The selection manifest: written by ``select``, read back by ``score`` (and report, compare).

``coreselect score`` must reproduce the scores the manifest holds: it scores the features in
the normalisation the selection was scored in, also for a method that selected on raw
activations (before issue 12 it re-normalised those to center-l2 whatever ``--normalize`` said).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from _reliability import BAD, TINY_ARGS, assert_one_line_error
from coreselect.cli.main import main


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """The tiny model runs faster on one thread (see conftest)."""


@pytest.mark.parametrize("method,normalize", [("kcenter", "l2"), ("neuron-coverage", "l2")])
def test_score_reproduces_the_manifest(method: str, normalize: str, tmp_path: Path, tiny_dir: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "core.jsonl"
    assert main(["-q", "select", str(BAD / "good.jsonl"), "--n", "2", "-o", str(out), "--method", method,
                 "--normalize", normalize, "--work-dir", str(tmp_path / "w"), "--model", str(tiny_dir),
                 *TINY_ARGS]) == 0
    capsys.readouterr()
    manifest = out.with_name("core.jsonl.manifest.json")
    assert main(["-q", "score", str(manifest), "--json"]) == 0
    rescored = json.loads(capsys.readouterr().out)
    assert rescored["coverage"] == json.loads(manifest.read_text())["scores"]["coverage"]


def test_manifest_round_trip_and_old_manifests(tmp_path: Path) -> None:
    from coreselect.manifest import SelectionManifest

    old = {  # as written before the scoring normalisation and the duplicate count were recorded
        "coreselect_version": "0.0.9", "data": {"path": "d.jsonl", "fingerprint": "sha256:x", "format": "alpaca", "container": "jsonl"},
        "budget": {"ratio": None, "n": 2, "n_selected": 2}, "counts": {"pool": 5, "selected": 2, "skipped": 0},
        "method": {"name": "neuron-coverage", "params": {"n_select": 2}}, "order": "selection",
        "features": {"config": {"kind": "activations"}, "store": "s", "key": "k", "dims": {"mlp.3": 4},
                     "normalize": "raw", "tokens": 10, "truncated": 0},
        "indices": [3, 1], "lines": [4, 2], "rows": [3, 1], "scores": {}, "timings": {"select": 0.1},
    }
    p = tmp_path / "old.manifest.json"
    p.write_text(json.dumps(old))
    m = SelectionManifest.read(p)
    assert (m.method.name, m.rows, m.counts.duplicates, m.features.scored_with) == (
        "neuron-coverage", [3, 1], None, "center-l2")
    assert m.to_json() == old  # the same keys, in the same order
    assert list(m.to_json()) == list(old)
    m2 = SelectionManifest.from_json({**old, "features": {**old["features"], "score_normalize": "l2"}})
    assert m2.features.scored_with == "l2"
    # a token budget and a dedup (issue 15) round-trip; without them no key is added
    new = {**old, "budget": {**old["budget"], "tokens": 500, "picked_tokens": 480},
           "dedup": {"threshold": 0.95, "removed": 3}}
    m3 = SelectionManifest.from_json(new)
    assert (m3.budget.tokens, m3.budget.picked_tokens, m3.dedup["removed"]) == (500, 480, 3)
    assert m3.to_json()["budget"] == new["budget"] and m3.to_json()["dedup"] == new["dedup"]


@pytest.mark.parametrize("text,pattern", [
    ("[1, 2]", r"not a coreselect manifest \(expected a JSON object\)$"),
    ('{"data": {"path": "d"}}', r"not a coreselect selection manifest \(missing counts, method\)$"),
    ('{"data": {"path": "d"}, "counts": {"pool": 1, "selected": 1}, "method": {"name": "x"}}',
     r"manifest lists no picks \(no rows or indices\)$"),
    ("{oops", r"unreadable manifest \("),
])
def test_not_a_manifest_is_one_line(text: str, pattern: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "x.json"
    p.write_text(text)
    code = main(["-q", "score", str(p)])
    assert_one_line_error(code, capsys.readouterr().err, re.escape(str(p)) + ": " + pattern)
