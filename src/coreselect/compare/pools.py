"""Seeded pool builders for the evidence presets: pools where selection *can* matter.

A held-out slice of a clean pool's own distribution rewards matching that distribution, which a
random pick does by construction. Published wins come from two other regimes, built here from
files anyone has:

``task_mixture``
    LTD's regime: a multi-task pool skewed over prompt templates (Zipf-like: a few head
    templates hold most records, the tail a few each), a *balanced* held-out set (the same number
    of records per template, disjoint from the pool by normalised text) and a held-out set of
    templates absent from the pool. Records keep their ``task``/``template`` labels and gain a
    ``group`` label (``task/template``) and, for templates whose answers come from a small set,
    ``choices`` (every distinct answer of that template in the source) for rank-classification
    accuracy. Labels are for measuring; no selector reads them.
``noisy_alpaca``
    The positive control: a pool where a stated share of responses is swapped to another
    record's (a derangement: none keeps its own) and a stated share of near-duplicates is
    injected; each record's ``corruption`` label says which (``""`` for a clean record), and the
    held-out set is clean.

Each builder writes ``pool.jsonl``, ``eval-*.jsonl`` and ``build.json`` (parameters, source
fingerprint, counts) into a folder and returns the paths; the same arguments give byte-identical
files.

Examples
--------
>>> from coreselect.compare.pools import zipf_sizes
>>> zipf_sizes(5, head=100, alpha=1.0, floor=2)
[100, 50, 33, 25, 20]
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from coreselect.compare.pool_options import NoisyAlpacaOptions, TaskMixtureOptions
from coreselect.data import Dataset, fold_text, load_dataset
from coreselect.errors import ConfigError, DataError
from coreselect.output import atomic_write_bytes, check_not_input

log = logging.getLogger(__name__)

#: T0 outputs end with GPT-2's end-of-text marker; it is not part of the answer.
_EOT = re.compile(r"(<\|endoftext\|>)+\s*$")


def zipf_sizes(n_groups: int, *, head: int, alpha: float, floor: int) -> list[int]:
    """Records per group by rank: ``max(floor, round(head / rank**alpha))``."""
    return [max(floor, round(head / (r ** alpha))) for r in range(1, n_groups + 1)]


def normalised_text(record: dict[str, Any]) -> str:
    """Prompt and response folded for duplicate detection (case, whitespace, end-of-text marker)."""
    parts = [str(record.get(k, "")) for k in ("instruction", "input", "output")]
    parts[2] = _EOT.sub("", parts[2])
    return fold_text(*parts)


def prompt_grams(record: dict[str, Any], n: int = 8) -> set[int]:
    """Hashed word ``n``-grams of a record's prompt (instruction and input, case folded).

    >>> len(prompt_grams({"instruction": "one two three four five six seven eight nine"}))
    2
    """
    words = re.findall(r"\w+", f"{record.get('instruction', '')} {record.get('input', '')}".lower())
    return {hash(tuple(words[i:i + n])) for i in range(len(words) - n + 1)}


def passage_overlap(held: Sequence[dict[str, Any]], pool: Sequence[dict[str, Any]], *, n: int = 8,
                    key: str = "task") -> list[float]:
    """For each held-out record, the largest share of its prompt ``n``-grams that one pool record of
    the same ``key`` (the source dataset) holds: 1.0 = the same passage under another template.

    >>> pool = [{"task": "a", "instruction": "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10"}]
    >>> passage_overlap([{"task": "a", "instruction": "Question: w1 w2 w3 w4 w5 w6 w7 w8 w9"},
    ...                  {"task": "b", "instruction": "w1 w2 w3 w4 w5 w6 w7 w8 w9"}], pool)
    [0.6666666666666666, 0.0]
    """
    overlap = _overlap_index(pool, n=n, key=key)
    return [overlap(r) for r in held]


def _overlap_index(pool: Sequence[dict[str, Any]], *, n: int = 8, key: str = "task"
                   ) -> Callable[[dict[str, Any]], float]:
    """An inverted index of the pool's prompt ``n``-grams; the function it returns scores one record."""
    postings: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, r in enumerate(pool):
        for g in prompt_grams(r, n):
            postings[(str(r.get(key)), g)].append(i)

    def overlap(r: dict[str, Any]) -> float:
        grams = prompt_grams(r, n)
        hits: dict[int, int] = defaultdict(int)
        for g in grams:
            for i in postings.get((str(r.get(key)), g), ()):
                hits[i] += 1
        return max(hits.values()) / len(grams) if hits else 0.0

    return overlap


def _without_leaks(held: list[dict[str, Any]], spares: dict[str, list[dict[str, Any]]],
                   overlap: Callable[[dict[str, Any]], float], threshold: float
                   ) -> tuple[list[dict[str, Any]], int, int]:
    """``held`` with each record whose passage the pool holds (``overlap`` >= ``threshold``) replaced
    by a spare record of its template that leaks nothing, or dropped when none is left.
    Returns the new list, the number replaced and the number dropped."""
    out, replaced, dropped = [], 0, 0
    for r in held:
        if overlap(r) < threshold:
            out.append(r)
            continue
        pick = None
        while spares.get(r["group"]):
            cand = spares[r["group"]].pop(0)
            if overlap(cand) < threshold:
                pick = cand
                break
        if pick is None:
            dropped += 1
        else:
            out.append(pick)
            replaced += 1
    return out, replaced, dropped


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _write(out_dir: Path, name: str, records: Sequence[dict[str, Any]], inputs: Sequence[Path]) -> Path:
    path = out_dir / name
    check_not_input(path, inputs)
    atomic_write_bytes(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode())
    return path


def _source(path: str | Path, columns: Sequence[str]) -> tuple[Dataset, list[dict[str, Any]]]:
    ds = load_dataset(path)
    if ds.format != "alpaca":
        raise DataError(str(path), f"expected Alpaca-style records (instruction/input/output), got {ds.format}")
    records = [dict(e.record) for e in ds.examples]
    for e, r in zip(ds.examples, records):
        for c in columns:
            if not isinstance(r.get(c), str):
                raise DataError(str(path), "missing (needed to build this pool)", line=e.line, field=c)
    return ds, records


def task_mixture(source: str | Path, out_dir: str | Path, options: TaskMixtureOptions | None = None,
                 **kw: Any) -> dict[str, Any]:
    """Build a template-skewed pool, a balanced held-out set and an unseen-templates set.

    The options (:class:`~coreselect.compare.pool_options.TaskMixtureOptions`, or its fields as
    keywords; defaults there, shared with ``coreselect pool task-mixture`` and ``build:``):

    Parameters
    ----------
    source : a file of records with ``task`` and ``template`` (e.g. ``t0_tasks_dev.jsonl.gz``).
    out_dir : folder for ``pool.jsonl``, ``eval-seen.jsonl``, ``eval-unseen.jsonl``, ``build.json``.
    seed : shuffles template ranks, the unseen templates and the records drawn.
    head, alpha, floor : the pool holds ``max(floor, round(head / rank**alpha))`` records of the
        template at each rank (capped by what is left after the held-out records).
    eval_per_group : held-out records per template (seen and unseen sets alike).
    unseen_share : share of templates kept out of the pool (taken only from tasks with two or
        more templates, so that every task stays in the pool).
    max_choices : templates with at most this many distinct answers get ``choices``.
    max_chars : drop records whose instruction + answer are longer (so that a trainee with a short
        context sees every record whole); a template left with fewer than ``eval_per_group + floor``
        records is dropped.
    leak_threshold : a held-out record whose prompt shares this share or more of its word 8-grams
        with one pool record of the same dataset (T0 puts the same passage under several
        templates) is replaced by a spare record of its template that does not, or dropped; the
        shares before and after go into ``build.json``. ``None`` keeps the held-out sets as drawn.
    """
    o = options if options is not None else TaskMixtureOptions(**kw)
    seed, head, alpha, floor, eval_per_group = o.seed, o.head, o.alpha, o.floor, o.eval_per_group
    unseen_share, max_choices, max_chars, leak_threshold = o.unseen_share, o.max_choices, o.max_chars, o.leak_threshold
    src = Path(source)
    out = Path(out_dir)
    ds, records = _source(src, ("task", "template"))
    rng = random.Random(seed)
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen_text: set[str] = set()
    dropped_dupes = dropped_empty = dropped_long = 0
    for r in records:
        r["output"] = _EOT.sub("", r["output"])
        if not r["output"].strip():  # an answer that was only the end-of-text marker
            dropped_empty += 1
            continue
        if max_chars is not None and len(r["instruction"]) + len(r["input"]) + len(r["output"]) > max_chars:
            dropped_long += 1
            continue
        h = _digest(normalised_text(r))
        if h in seen_text:  # T0 repeats records across templates: keep the first only
            dropped_dupes += 1
            continue
        seen_text.add(h)
        r["group"] = f"{r['task']}/{r['template']}"
        by_group[r["group"]].append(r)
    if max_chars is not None:  # templates with too few records left to both hold out and pool
        by_group = defaultdict(list, {g: rs for g, rs in by_group.items() if len(rs) >= eval_per_group + floor})
    answers = {g: sorted({r["output"] for r in rs}) for g, rs in by_group.items()}
    groups = sorted(by_group)
    rng.shuffle(groups)
    tasks: dict[str, list[str]] = defaultdict(list)
    for g in groups:
        tasks[by_group[g][0]["task"]].append(g)
    n_unseen = round(unseen_share * len(groups))
    unseen: list[str] = []
    for g in groups:  # in shuffled order: one template from each multi-template task in turn
        if len(unseen) >= n_unseen:
            break
        t = tasks[by_group[g][0]["task"]]
        if len(t) > 1:
            t.remove(g)
            unseen.append(g)
    seen = [g for g in groups if g not in set(unseen)]
    sizes = zipf_sizes(len(seen), head=head, alpha=alpha, floor=floor)
    pool: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    held_unseen: list[dict[str, Any]] = []
    spares: dict[str, list[dict[str, Any]]] = {}
    for g in groups:
        rs = by_group[g][:]
        rng.shuffle(rs)
        if len(answers[g]) <= max_choices:
            for r in rs:
                r["choices"] = answers[g]
        ev, rest = rs[:eval_per_group], rs[eval_per_group:]
        if g in unseen:
            held_unseen += ev
            spares[g] = rest
        else:
            held += ev
            n_pool = sizes[seen.index(g)]
            pool += rest[:n_pool]
            spares[g] = rest[n_pool:]
    rng.shuffle(pool)
    leakage: dict[str, Any] = {}
    if leak_threshold is not None:
        overlap = _overlap_index(pool)
        for name, part in (("eval-seen", held), ("eval-unseen", held_unseen)):
            before = sum(overlap(r) >= leak_threshold for r in part)
            new, replaced, dropped = _without_leaks(part, spares, overlap, leak_threshold)
            after = sum(overlap(r) >= leak_threshold for r in new)
            leakage[name] = {"leaking_before": before, "of": len(part), "replaced": replaced, "dropped": dropped,
                             "leaking_after": after, "records": len(new)}
            part[:] = new
        log.info("held-out passage leakage (>= %.0f%% of prompt 8-grams in one pool record of the dataset): %s",
                 100 * leak_threshold, "; ".join(f"{k} {v['leaking_before']}/{v['of']} -> {v['leaking_after']}"
                                                 f"/{v['records']}" for k, v in leakage.items()))
    inputs = [src]
    out.mkdir(parents=True, exist_ok=True)
    paths = {"pool": _write(out, "pool.jsonl", pool, inputs),
             "eval-seen": _write(out, "eval-seen.jsonl", held, inputs),
             "eval-unseen": _write(out, "eval-unseen.jsonl", held_unseen, inputs)}
    counts = defaultdict(int)
    for r in pool:
        counts[r["group"]] += 1
    info = {
        "builder": "task-mixture", "source": str(src), "source_fingerprint": ds.fingerprint,
        "params": {"seed": seed, "head": head, "alpha": alpha, "floor": floor, "eval_per_group": eval_per_group,
                   "unseen_share": unseen_share, "max_choices": max_choices, "max_chars": max_chars,
                   "leak_threshold": leak_threshold},
        "counts": {"pool": len(pool), "eval-seen": len(held), "eval-unseen": len(held_unseen),
                   "groups_in_pool": len(counts), "groups_unseen": len(unseen),
                   "tasks_in_pool": len({r["task"] for r in pool}), "duplicates_dropped": dropped_dupes,
                   "empty_dropped": dropped_empty, "long_dropped": dropped_long,
                   "groups_with_choices": sum(len(answers[g]) <= max_choices for g in groups)},
        "leakage": leakage,
        "pool_per_group": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
        "unseen_groups": sorted(unseen),
    }
    atomic_write_bytes(out / "build.json", (json.dumps(info, indent=2) + "\n").encode())
    log.info("task mixture: pool %d records over %d templates (head %d, tail %d), held out %d seen + %d unseen",
             len(pool), len(counts), max(counts.values()), min(counts.values()), len(held), len(held_unseen))
    return {"paths": {k: str(v) for k, v in paths.items()}, **info}


def _near_duplicate(r: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A near-copy of ``r``: the same pair with case and punctuation touched, a word dropped."""
    words = r["output"].split()
    if len(words) > 3:
        del words[rng.randrange(1, len(words))]
    instr = r["instruction"]
    instr = instr[:1].lower() + instr[1:] if instr[:1].isupper() else instr[:1].upper() + instr[1:]
    return {**r, "instruction": instr.rstrip(".?!") + ("" if instr.endswith((".", "?", "!")) else "."),
            "output": " ".join(words)}


def noisy_alpaca(source: str | Path, out_dir: str | Path, options: NoisyAlpacaOptions | None = None,
                 **kw: Any) -> dict[str, Any]:
    """Build a pool with swapped responses and near-duplicates, and a clean held-out set.

    The pool holds ``pool_size`` records: ``duplicate_share`` of them are near-copies of clean
    pool records (labelled ``near-duplicate``), the rest are records ``[offset, ...)`` of
    ``source``, of which ``swap_share`` of the pool get another record's response (labelled
    ``swapped``). The held-out set is the next ``eval_size`` records, untouched.
    """
    o = options if options is not None else NoisyAlpacaOptions(**kw)
    seed, offset, pool_size, swap_share, duplicate_share, eval_size = (
        o.seed, o.offset, o.pool_size, o.swap_share, o.duplicate_share, o.eval_size)
    src, out = Path(source), Path(out_dir)
    ds, records = _source(src, ())
    n_dup = round(duplicate_share * pool_size)
    n_orig = pool_size - n_dup
    if offset + n_orig + eval_size > len(records):
        raise ConfigError(f"{src}: {len(records)} records, the pool and held-out set need "
                          f"{offset + n_orig + eval_size} from offset {offset}")
    rng = random.Random(seed)
    base = [{**r, "corruption": ""} for r in records[offset: offset + n_orig]]
    held = records[offset + n_orig: offset + n_orig + eval_size]
    n_swap = round(swap_share * pool_size)
    swapped = sorted(rng.sample(range(n_orig), n_swap)) if n_swap >= 2 else []
    perm = swapped[:]
    while swapped and any(a == b for a, b in zip(swapped, perm)):  # a derangement
        rng.shuffle(perm)
    outputs = [base[j]["output"] for j in perm]
    for i, o in zip(swapped, outputs):
        base[i] = {**base[i], "output": o, "corruption": "swapped"}
    clean = [i for i in range(n_orig) if not base[i]["corruption"]]
    dups = [{**_near_duplicate(base[i], rng), "corruption": "near-duplicate"} for i in rng.sample(clean, n_dup)]
    pool = base + dups
    rng.shuffle(pool)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"pool": _write(out, "pool.jsonl", pool, [src]), "eval-clean": _write(out, "eval-clean.jsonl", held, [src])}
    info = {
        "builder": "noisy-alpaca", "source": str(src), "source_fingerprint": ds.fingerprint,
        "params": {"seed": seed, "offset": offset, "pool_size": pool_size, "swap_share": swap_share,
                   "duplicate_share": duplicate_share, "eval_size": eval_size},
        "counts": {"pool": len(pool), "swapped": len(swapped), "near-duplicate": n_dup, "eval-clean": len(held)},
    }
    atomic_write_bytes(out / "build.json", (json.dumps(info, indent=2) + "\n").encode())
    log.info("noisy alpaca: pool %d records (%d swapped, %d near-duplicates), %d clean held out",
             len(pool), len(swapped), n_dup, len(held))
    return {"paths": {k: str(v) for k, v in paths.items()}, **info}


BUILDERS = {"task-mixture": task_mixture, "noisy-alpaca": noisy_alpaca}

__all__ = ["BUILDERS", "noisy_alpaca", "normalised_text", "passage_overlap", "prompt_grams", "task_mixture",
           "zipf_sizes"]
