"""``compare --engine ray``: the train + evaluate units as Ray tasks give the serial run's results.

The config and the tiny trainee are those of ``tests/compare/test_run.py``'s ``--jobs`` test; the
module's two-CPU local cluster runs two units at once, one CPU and one torch thread each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compare.test_run import _config, serial_one_thread
from coreselect.cli.main import main
from coreselect.compare.config import load_config
from coreselect.compare.run import plan_arms, run_experiment
from coreselect.errors import ConfigError
from finetune.conftest import records, tiny_model  # noqa: F401

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
on_ray = pytest.mark.usefixtures("ray_cluster")  # the module's two-CPU local cluster

KEYS = ("arm", "n_train", "train_tokens", "loss:held", "perplexity:held", "_per_example:held")


@on_ray
def test_compare_on_ray_gives_the_serial_results_and_resumes(tiny_model: Path, records, tmp_path: Path,  # noqa: F811
                                                             monkeypatch: pytest.MonkeyPatch) -> None:

    cfg = load_config(_config(tmp_path, tiny_model, records, seeds=[0, 1], baselines=["random"]))
    serial = serial_one_thread(cfg, tmp_path / "serial")
    import coreselect.compare.report as report

    written = []
    real = report.write_reports
    monkeypatch.setattr(report, "write_reports", lambda rows, *a, **k: written.append(len(rows)) or real(rows, *a, **k))
    result = run_experiment(cfg, tmp_path / "ray", progress=False, jobs=2, engine="ray")
    assert written == [1, 2]  # the report is rewritten as each unit finishes
    assert [[r[k] for k in KEYS] for r in result] == [[r[k] for k in KEYS] for r in serial]
    assert [r["arm"] for r in result] == [a.name for a in plan_arms(cfg)]
    for name in ("results.csv", "results.md", "results.png"):
        assert (tmp_path / "ray" / name).is_file()
    for arm in plan_arms(cfg):  # every unit wrote its files into the run folder
        assert json.loads((tmp_path / "ray" / "arms" / arm.name / "eval.json").read_text())["results"]["held"]

    # a rerun resumes: every unit is reported from its files on the driver, no Ray task runs
    written.clear()
    monkeypatch.setattr("coreselect.compare.ray_units._ray_unit", None)  # a task would fail to start
    again = run_experiment(cfg, tmp_path / "ray", progress=False, jobs=2, engine="ray")
    assert written == [1, 2]
    assert [r["loss:held"] for r in again] == [r["loss:held"] for r in result]


@on_ray
def test_a_failed_unit_is_one_line_naming_it(tiny_model: Path, records, tmp_path: Path,  # noqa: F811
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A unit that fails on its Ray worker stops the run with one line naming the unit and the
    worker's error; the other units finish and are cached."""
    cfg_path = _config(tmp_path, tiny_model, records, seeds=[0, 1], baselines=["random"])
    out = tmp_path / "run"
    broken = out / "arms" / "random-20pct-s1" / "model"
    broken.parent.mkdir(parents=True)
    broken.write_text("not a model folder")  # the unit's train stage refuses to replace it
    assert main(["compare", str(cfg_path), "-o", str(out), "--no-progress", "--engine", "ray", "--jobs", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("coreselect: error: compare: unit random-20pct-s1 failed on Ray (OutputExistsError: ")
    assert "is a file, expected a folder" in err[-1] and "rerun to resume" in err[-1]
    assert (out / "arms" / "random-20pct-s0" / "eval.json").is_file()  # the other unit finished
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("random-20pct-s0,")

    # one unit at a time: the first fails, the second is never started
    out = tmp_path / "serial"
    broken = out / "arms" / "random-20pct-s0" / "model"
    broken.parent.mkdir(parents=True)
    broken.write_text("not a model folder")
    assert main(["compare", str(cfg_path), "-o", str(out), "--no-progress", "--engine", "ray", "--jobs", "1"]) == 2
    assert "unit random-20pct-s0 failed on Ray" in capsys.readouterr().err
    assert not (out / "arms" / "random-20pct-s1" / "train.json").exists()


def test_engine_options_are_checked_before_anything_is_made(tiny_model: Path, records,  # noqa: F811
                                                            tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path, tiny_model, records))
    for kwargs, message in [({"jobs": 0, "engine": "ray"}, "--jobs must be at least 1"),
                            ({"engine": "slurm"}, "--engine must be local or ray"),
                            ({"ray_address": "auto"}, "--ray-address needs --engine ray")]:
        with pytest.raises(ConfigError, match=message):
            run_experiment(cfg, tmp_path / "never", progress=False, **kwargs)
    assert not (tmp_path / "never").exists()


class _Cluster:
    """What :func:`extraction_layout` reads of ``ray``: the totals and the nodes."""

    def __init__(self, nodes: list[dict[str, float]]) -> None:
        self._nodes = nodes

    def cluster_resources(self) -> dict[str, float]:
        return {k: sum(n.get(k, 0) for n in self._nodes) for k in ("CPU", "GPU")}

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "Resources": n} for n in self._nodes]


@pytest.mark.parametrize("nodes, jobs, expected", [
    ([{"CPU": 16, "GPU": 4}, {"CPU": 16, "GPU": 4}], None, (8, 1.0, 1.0)),  # one trainee per GPU
    ([{"CPU": 16, "GPU": 4}], 2, (2, 1.0, 1.0)),
    ([{"CPU": 16, "GPU": 4}], 8, (8, 1.0, 0.5)),  # more units than GPUs share them
    ([{"CPU": 16, "GPU": 2}], 3, (3, 1.0, 0.5)),  # 2/3 each would fit only two on two GPUs
    ([{"CPU": 8}, {"CPU": 8}], None, (2, 8.0, 0.0)),  # no GPUs: one unit per node, all of its cores
    ([{"CPU": 8}, {"CPU": 8}], 4, (4, 4.0, 0.0)),  # --jobs N: the cluster's CPUs / N each
    ([{"CPU": 2}], 2, (2, 1.0, 0.0)),  # the test cluster above
])
def test_units_reserve_a_gpu_each_or_their_share_of_the_cpus(nodes, jobs, expected) -> None:
    from coreselect.distributed.cluster import extraction_layout

    layout = extraction_layout(_Cluster(nodes), jobs)
    assert (layout.n_actors, layout.num_cpus, layout.num_gpus) == expected
