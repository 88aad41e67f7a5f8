"""The package asks for floors, the install recipe pins: ``pip install coreselect`` keeps the
torch 2.x an environment already has (a CUDA build, say), while ``make install`` puts the exact
CPU build this project tests into .venv.

The resolver claim itself was checked by hand (see docs/reliability.md, "Packaging"): a fresh
venv holding a stand-in ``torch 2.6.0+cu124``, then ``pip install .``, keeps it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(req: str) -> str:
    return re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower()


def test_package_dependencies_are_floors_not_pins():
    project = _project()
    reqs = list(project["dependencies"]) + [r for extra in project["optional-dependencies"].values() for r in extra]
    pinned = [r for r in reqs if "==" in r or "<" in r]
    assert pinned == [], f"pins belong in requirements.txt, not in the package: {pinned}"
    torch = [r for r in project["dependencies"] if _name(r) == "torch"]
    assert torch == ["torch>=2.6"]  # transformers 5 turns PyTorch off below 2.6


def test_install_recipe_pins_the_tested_torch_and_installs_the_package_without_resolving_again():
    reqs = (ROOT / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in reqs
    # everything the package needs is in the recipe, so that `--no-deps -e .` misses nothing
    recipe = {_name(r) for r in reqs if r and not r.startswith("#")}
    assert {_name(r) for r in _project()["dependencies"]} <= recipe
    make = (ROOT / "Makefile").read_text()
    assert "pip install -q --disable-pip-version-check -r requirements.txt" in make
    assert "--no-deps -e ." in make
