"""The seeded pool builders: skew, balance, disjointness, labels, corruption, determinism."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from coreselect.cli.main import main
from coreselect.compare.pools import noisy_alpaca, normalised_text, passage_overlap, task_mixture
from coreselect.errors import ConfigError


def _read(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture()
def t0_like(tmp_path: Path) -> Path:
    """12 templates over 4 tasks, 30 records each; template t0 of task A repeats a record of t1."""
    recs = []
    for t in range(12):
        task = "ABCD"[t % 4]
        for i in range(30):
            answer = ["yes", "no"][i % 2] if t % 3 == 0 else f"answer {t}-{i}"
            recs.append({"instruction": f"Template {t} asks question {i}.", "input": "",
                         "output": answer + "<|endoftext|>", "task": task, "template": f"tpl{t}"})
    recs.append(dict(recs[30], template="tpl0", task="A"))  # an exact repeat across templates
    recs.append(dict(recs[31], output="<|endoftext|>"))  # an answer that is only the end marker
    p = tmp_path / "t0.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return p


def test_task_mixture_is_skewed_balanced_disjoint_and_labelled(t0_like, tmp_path):
    info = task_mixture(t0_like, tmp_path / "out", seed=3, head=20, alpha=1.0, floor=2, eval_per_group=3,
                        unseen_share=0.25)
    pool, seen, unseen = (_read(info["paths"][k]) for k in ("pool", "eval-seen", "eval-unseen"))
    sizes = sorted(Counter(r["group"] for r in pool).values(), reverse=True)
    assert sizes[0] == 20 and sizes[-1] == 2 and len(sizes) == 9  # 12 templates, 3 unseen
    assert set(Counter(r["group"] for r in seen).values()) == {3}  # balanced
    assert {r["group"] for r in unseen}.isdisjoint({r["group"] for r in pool})
    assert {r["task"] for r in pool} == set("ABCD")  # unseen templates never take a task away
    texts = {normalised_text(r) for r in pool}
    assert not texts & {normalised_text(r) for r in seen + unseen}
    assert info["counts"]["duplicates_dropped"] == 1 and info["counts"]["empty_dropped"] == 1
    assert all(r["output"].strip() for r in pool + seen + unseen)
    assert not any(r["output"].endswith("<|endoftext|>") for r in pool + seen + unseen)
    yes_no = [r for r in seen if r["template"] in ("tpl0", "tpl3", "tpl6", "tpl9")]
    assert yes_no and all(r["choices"] == ["no", "yes"] for r in yes_no)
    assert all("choices" not in r for r in pool + seen if r["template"] == "tpl1")


def test_builders_are_deterministic(t0_like, tmp_path):
    a = task_mixture(t0_like, tmp_path / "a", seed=1, head=10)
    b = task_mixture(t0_like, tmp_path / "b", seed=1, head=10)
    c = task_mixture(t0_like, tmp_path / "c", seed=2, head=10)
    read = lambda info: Path(info["paths"]["pool"]).read_bytes()  # noqa: E731
    assert read(a) == read(b) != read(c)


def test_noisy_alpaca_swaps_and_duplicates_what_it_says(tmp_path):
    src = tmp_path / "alpaca.jsonl"
    src.write_text("".join(json.dumps({"instruction": f"Question number {i}?", "input": "",
                                       "output": f"The answer is number {i} indeed."}) + "\n" for i in range(200)))
    info = noisy_alpaca(src, tmp_path / "out", seed=0, offset=10, pool_size=100, swap_share=0.2,
                        duplicate_share=0.1, eval_size=30)
    pool, held = _read(info["paths"]["pool"]), _read(info["paths"]["eval-clean"])
    kinds = Counter(r["corruption"] for r in pool)
    assert kinds == {"": 70, "swapped": 20, "near-duplicate": 10}
    for r in pool:
        n_instr = r["instruction"].split()[-1].strip("?.").lower()
        n_out = r["output"].split()[4] if len(r["output"].split()) > 4 else None
        if r["corruption"] == "swapped":
            assert n_out != n_instr  # a derangement: nobody keeps its own response
        elif r["corruption"] == "":
            assert n_out == n_instr
    assert [r["instruction"] for r in held] == [f"Question number {i}?" for i in range(100, 130)]


def test_cli_pool_and_bad_options(t0_like, tmp_path, capsys):
    assert main(["-q", "pool", "task-mixture", str(t0_like), "-o", str(tmp_path / "p"), "--head", "8"]) == 0
    assert "pool" in capsys.readouterr().out
    assert main(["pool", "task-mixture", str(t0_like), "-o", str(tmp_path / "q"), "--unseen-share", "1.5"]) == 2
    assert "--unseen-share must be in [0, 1)" in capsys.readouterr().err
    own = t0_like.with_name("pool.jsonl")  # the builder would write its pool over its source
    t0_like.rename(own)
    before = own.read_bytes()
    assert main(["pool", "task-mixture", str(own), "-o", str(own.parent)]) == 2
    assert "is the input" in capsys.readouterr().err and own.read_bytes() == before


def test_task_mixture_max_chars_drops_long_records_and_thin_templates(t0_like, tmp_path):
    import json as _json

    recs = [_json.loads(line) for line in t0_like.read_text().splitlines()]
    for r in recs:
        if r["template"] == "tpl5":
            r["instruction"] += " " + "long context " * 20  # every record of tpl5 too long
    t0_like.write_text("".join(_json.dumps(r) + "\n" for r in recs))
    info = task_mixture(t0_like, tmp_path / "o", seed=0, head=10, eval_per_group=2, unseen_share=0.0,
                        max_chars=120)
    pool = _read(info["paths"]["pool"])
    assert info["counts"]["long_dropped"] == 30 and "B/tpl5" not in {r["group"] for r in pool} and "B/tpl1" in {r["group"] for r in pool}
    assert all(len(r["instruction"]) + len(r["output"]) <= 120 for r in pool)


def test_task_mixture_held_out_shares_no_passage_with_the_pool(tmp_path):
    """T0 puts one passage under several templates of a dataset: a held-out record whose passage
    the pool holds under another template is replaced (or dropped), and build.json says how many."""
    passages = [" ".join(f"w{p}x{k}" for k in range(20)) for p in range(40)]
    recs = []
    for t in range(4):  # task A: every template asks about the same 40 passages
        for p, text in enumerate(passages):
            recs.append({"instruction": f"Template {t}: {text}", "input": "", "output": f"a{t}{p}",
                         "task": "A", "template": f"tpl{t}"})
    for i in range(40):  # task B: passages of its own
        recs.append({"instruction": " ".join(f"b{i}y{k}" for k in range(20)), "input": "", "output": "b",
                     "task": "B", "template": "tplB"})
    src = tmp_path / "t0.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    kept = task_mixture(src, tmp_path / "kept", seed=0, head=10, eval_per_group=3, unseen_share=0.0,
                        leak_threshold=None)
    pool, seen = _read(kept["paths"]["pool"]), _read(kept["paths"]["eval-seen"])
    leaky = [s for s in passage_overlap(seen, pool) if s >= 0.5]
    assert leaky  # the as-drawn held-out set leaks: the check below would fail without the fix
    info = task_mixture(src, tmp_path / "clean", seed=0, head=10, eval_per_group=3, unseen_share=0.0)
    pool, seen = _read(info["paths"]["pool"]), _read(info["paths"]["eval-seen"])
    assert max(passage_overlap(seen, pool)) < 0.5
    leak = info["leakage"]["eval-seen"]
    assert leak["leaking_before"] == len(leaky) and leak["leaking_after"] == 0
    assert leak["records"] == len(seen) == leak["of"] - leak["dropped"]
    assert json.loads((tmp_path / "clean" / "build.json").read_text())["leakage"] == info["leakage"]
    assert {r["task"] for r in seen} == {"A", "B"}


def test_pool_cli_yaml_and_library_share_one_definition(t0_like, tmp_path):
    """`coreselect pool task-mixture` flags, a compare YAML's build: keys and the builder's
    defaults come from one dataclass: the same defaults (eval_per_group was 4 on the CLI and 3 in
    the preset), the same names (--max-chars was missing from the CLI), the same checks."""
    import argparse

    from coreselect.compare.config import parse_config
    from coreselect.compare.pool_options import POOL_OPTIONS, TaskMixtureOptions
    from coreselect.options import add_arguments, from_args

    for kind, cls in POOL_OPTIONS.items():
        p = argparse.ArgumentParser()
        add_arguments(p, cls)
        cfg = parse_config({"build": {"kind": kind, "source": str(t0_like)}, "pool": "build:pool",
                            "eval": "build:pool"}, tmp_path)
        assert from_args(cls, p.parse_args([])) == cls() == cls(**cfg.build.params)
    assert TaskMixtureOptions().eval_per_group == 3
    a = task_mixture(t0_like, tmp_path / "cli-like", TaskMixtureOptions(head=10, max_chars=40))
    b = task_mixture(t0_like, tmp_path / "kw", head=10, max_chars=40)
    assert Path(a["paths"]["pool"]).read_bytes() == Path(b["paths"]["pool"]).read_bytes()
    assert main(["-q", "pool", "task-mixture", str(t0_like), "-o", str(tmp_path / "c"), "--head", "10",
                 "--max-chars", "40"]) == 0
    assert (tmp_path / "c" / "pool.jsonl").read_bytes() == Path(a["paths"]["pool"]).read_bytes()
    with pytest.raises(ConfigError, match=r"build: unknown key 'heads' \(did you mean 'head'\?\)"):
        parse_config({"build": {"kind": "task-mixture", "source": str(t0_like), "heads": 3},
                      "pool": "build:pool", "eval": "build:pool"}, tmp_path)
