"""The verdict of a ``compare`` run: means with 95% intervals, paired differences, power.

Arms are grouped by label and budget over seeds. For each held-out set the *primary* metric is
the macro loss over groups when ``evaluation.group_by`` is set (every task counts the same), else
the per-example mean loss. Each method is compared with ``random`` (and ``longest`` when run) at
the same budget, paired by seed and held-out example, with a bootstrap over both
(:func:`coreselect.compare.stats.paired_bootstrap`); a difference whose interval holds zero is
reported as "no difference detectable", with the smallest effect this many seeds could detect.
A pick's label coverage (the pre-check, no training needed) is set against the trained ranking.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from coreselect.compare.stats import (
    detectable_effect,
    macro_mean,
    mean_ci,
    paired_bootstrap,
    seed_sd,
    seeds_needed,
    verdict,
)

#: the arms every other arm is paired against when a config names none (``references:``), in the
#: order their verdicts are written; a reference that did not run is skipped
REFERENCES = ("random", "longest")
#: a gap worth detecting, in loss units (the issue's yardstick for the power estimate)
GAP = 0.02
_METRICS = {"loss": "loss per token", "macro": "macro loss over groups", "worst": "worst group loss",
            "acc": "rank-classification accuracy", "acc_macro": "macro rank accuracy"}


def _budget(b: Any) -> str:
    return f"{b * 100:g}%" if isinstance(b, float) else ("" if b == "" else f"n={b}")


def arm_groups(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows by ``(label, budget)``; ``base`` stays alone."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[(r.get("label") or r["method"], _budget(r["budget"]))].append(r)
    return out


def _paired_matrix(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str, sign: float
                   ) -> tuple[np.ndarray, list[int], list[Any] | None, np.ndarray | None] | None:
    """``D[seed, example] = sign * (a - b)`` over seeds both arms ran and examples both scored, with
    the examples' labels and response tokens (``None`` where the results hold none)."""
    by_seed = {r["seed"]: r for r in b}
    pairs = [(r, by_seed[r["seed"]]) for r in a if r["seed"] in by_seed and r.get(key) and by_seed[r["seed"]].get(key)]
    if not pairs:
        return None
    n = len(pairs[0][0][key])
    keep = [e for e in range(n) if all(x[key][e] is not None and y[key][e] is not None for x, y in pairs)]
    D = np.array([[sign * (x[key][e] - y[key][e]) for e in keep] for x, y in pairs], dtype=np.float64)
    labels = pairs[0][0].get(key.replace("_acc_per_example", "_labels").replace("_per_example", "_labels"))
    tokens = pairs[0][0].get(key.replace("_per_example", "_tokens")) if key.startswith("_per_example") else None
    return (D, [int(x["seed"]) for x, _ in pairs], ([labels[e] for e in keep] if labels else None),
            (np.array([tokens[e] for e in keep], dtype=np.float64) if tokens else None))


def pair_verdict(a: list[dict[str, Any]], b: list[dict[str, Any]], name: str, ref: str, key: str, sign: float,
                 metric: str, *, n_boot: int = 2000, per_token: bool = False) -> str | None:
    """The verdict line of arm group ``a`` against ``b`` on the per-example ``key`` (None when they
    share no seed): the bootstrap and t-intervals, the smallest detectable effect at these seeds,
    and the seeds a paired run would need to detect the observed gap and a fixed ``GAP``.
    ``per_token``: each seed's statistic is the loss per token (the examples weighted by their
    response tokens; one group), else the macro mean over the examples' labels."""
    got = _paired_matrix(a, b, key, sign)
    if got is None:
        return None
    D, seeds, labels, tokens = got
    if per_token and tokens is None:
        return None
    weights = tokens if per_token else None
    labels = None if per_token else labels
    r = paired_bootstrap(D, labels, n_boot=n_boot, weights=weights)
    per_seed = [macro_mean(d, labels, weights) for d in D]
    sd = seed_sd(per_seed)
    mde = detectable_effect(sd, len(seeds))
    _, lo, hi = mean_ci(per_seed)
    line = verdict(name, ref, r, mde, metric, seed_ci=(lo, hi))
    if len(seeds) > 1 and sd > 0:
        observed = abs(r["delta"])
        need_obs = f"≈{seeds_needed(sd, observed)}" if observed > 0 else "—"
        line += (f"; seed SD of Δ {sd:.4f}: seeds needed for 80% power, the observed gap ({observed:.4f}) "
                 f"{need_obs}, a {GAP} gap ≈{seeds_needed(sd, GAP)}")
    return line


def headline_metric(rows: Iterable[dict[str, Any]], name: str) -> str:
    """The loss that ranks arms on held-out set ``name``: ``"macro"`` (over its groups) when its
    rows carry one, else ``"loss"`` (per token)."""
    return "macro" if any(f"macro:{name}" in r for r in rows) else "loss"


def _all(groups: dict[tuple[str, str], list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    return (r for g in groups.values() for r in g)


def _specs(groups: dict[tuple[str, str], list[dict[str, Any]]], name: str, declared: Sequence[Any] = ()
           ) -> list[tuple[str, float, str, bool]]:
    """``(key, sign, metric, per_token)`` of each statistic the pairs are judged on: per-example
    (or macro) loss; loss per token too where the config declared its primary or control on it
    (the secondary pairs then read the metric that was fixed before the run); rank accuracy."""
    grouped = headline_metric(_all(groups), name) == "macro"
    specs = [(f"_per_example:{name}", 1.0, "macro loss over groups" if grouped else "per-example loss", False)]
    if any(d.metric == "token" and d.eval == name for d in declared):
        specs.append((f"_per_example:{name}", 1.0, "loss per token", True))
    if any(f"acc:{name}" in r for r in _all(groups)):
        specs.append((f"_acc_per_example:{name}", -1.0, "rank accuracy (sign flipped: negative = better)", False))
    return specs


def paired_lines(groups: dict[tuple[str, str], list[dict[str, Any]]], name: str, *, n_boot: int = 2000,
                 references: Sequence[str] = REFERENCES, declared: Sequence[Any] = ()) -> list[str]:
    """The verdict of every method against each of ``references`` (arm labels) at its budget, on
    held-out set ``name`` (also on the metric of the ``declared`` primary or control there)."""
    lines: list[str] = []
    specs = _specs(groups, name, declared)
    for (label, budget), rows in groups.items():
        if label in ("base", "full") or budget == "":
            continue
        for ref in references:
            if ref == label or (ref, budget) not in groups:
                continue
            if label in references and references.index(label) < references.index(ref):
                continue  # two references: their pair is written once, under the later one
            for key, sign, metric, per_token in specs:
                line = pair_verdict(rows, groups[(ref, budget)], f"**{label}** ({budget})", ref, key, sign, metric,
                                    n_boot=n_boot, per_token=per_token)
                if line:
                    lines.append("- " + line)
    return lines


#: the metrics a ``primary:`` comparison can be declared on
PRIMARY_METRICS = {"macro": "macro loss over groups", "loss": "per-example loss", "token": "loss per token",
                   "acc": "rank accuracy (sign flipped: negative = better)"}


def primary_lines(rows: Sequence[dict[str, Any]], primary: Any, *, n_boot: int = 2000,
                  title: str = "Primary comparison") -> list[str]:
    """The verdict of the comparison declared before the run (``primary:`` or ``control:`` of the
    config), at every budget both arms ran; a note when they have not both run yet."""
    groups = arm_groups(rows)
    a, b = primary.arms
    name, metric = primary.eval, primary.metric
    key = f"_acc_per_example:{name}" if metric == "acc" else f"_per_example:{name}"
    sign = -1.0 if metric == "acc" else 1.0
    lines = []
    for (label, budget), g in groups.items():
        if label != a or (b, budget) not in groups:
            continue
        line = pair_verdict(g, groups[(b, budget)], f"**{a}** ({budget})", b, key, sign, PRIMARY_METRICS[metric],
                            n_boot=n_boot, per_token=metric == "token")
        if line:
            lines.append("- " + line)
    head = f"### {title} (declared in the config before the run): {a} vs {b}, {PRIMARY_METRICS[metric]} on {name}\n"
    return [head, *(lines or [f"- {a} and {b} have no finished seed in common yet."])]


def summary_markdown(rows: Sequence[dict[str, Any]], eval_names: Sequence[str], *, n_boot: int = 2000,
                     references: Sequence[str] = REFERENCES, primary: Any = None, control: Any = None) -> str:
    """The positive control and the primary verdict (when declared), means with 95% intervals per
    label x budget, the paired verdicts (secondary when a primary is declared), and the
    pre-check's fit."""
    groups = arm_groups(rows)
    if not groups or not eval_names:
        return ""
    out: list[str] = []
    if control is not None:
        lines = primary_lines(rows, control, n_boot=n_boot, title="Positive control")
        shown = any(" beats " in line for line in lines[1:])
        out += ["", *lines, "", "The control is shown positive: this design can tell a better pick from random."
                if shown else "**The control is not shown positive: this design cannot yet tell a known-better "
                "pick from random, so no verdict below is a finding either way.**"]
    if primary is not None:
        out += ["", *primary_lines(rows, primary, n_boot=n_boot)]
    for name in eval_names:
        metrics = [m for m in _METRICS if any(f"{m}:{name}" in r for r in rows)]
        head = ["arm group", "budget", "seeds", "n_train", "train tokens"] + [f"{_METRICS[m]}" for m in metrics]
        out += [f"\n### {name}: mean [95% CI] over seeds\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for (label, budget), g in groups.items():
            cells = [label, budget, str(len(g)), f"{np.mean([r['n_train'] for r in g]):,.0f}",
                     f"{np.mean([r['train_tokens'] for r in g]):,.0f}"]
            for m in metrics:
                v = [float(r[f"{m}:{name}"]) for r in g if r.get(f"{m}:{name}") not in (None, "")]
                cells.append(_ci_cell(v))
            out.append("| " + " | ".join(cells) + " |")
        lines = paired_lines(groups, name, n_boot=n_boot, references=references,
                             declared=[d for d in (primary, control) if d is not None])
        if lines:
            second = (" Secondary: many pairs are tested here and no correction is made for multiplicity; only "
                      "the primary comparison above was declared before the run." if primary is not None else "")
            out += ["", f"Paired against the references on {name} (same seeds, same held-out examples; Δ = method − "
                        "reference, lower is better; 95% CI of a bootstrap over seeds and examples, and the "
                        "t-interval of the per-seed Δ; a win needs both to exclude zero; with 3 seeds the "
                        f"seeds x examples bootstrap is nominal, the t-interval is the guard).{second}", "",
                    *lines]
        fit = precheck_fit(groups, name)
        if fit:
            out += ["", fit]
        eq = random_equivalent(groups, name)
        if eq:
            out += ["", eq]
    return "\n".join(out) + "\n"


def _ci_cell(v: list[float]) -> str:
    if not v:
        return ""
    m, lo, hi = mean_ci(v)
    return f"{m:.4f}" if not math.isfinite(lo) else f"{m:.4f} [{lo:.4f}, {hi:.4f}]"


def precheck_fit(groups: dict[tuple[str, str], list[dict[str, Any]]], name: str) -> str:
    """How well each pre-check column (coverage, flagged share) ranks the arm groups as training did."""
    from scipy.stats import spearmanr

    primary = headline_metric(_all(groups), name)
    cols = sorted({c for g in groups.values() for r in g for c in r if c.startswith(("cover:", "flagged:"))})
    parts = []
    for col in cols:
        xs, ys = [], []
        for (label, _), g in groups.items():
            if label in ("base", "full"):
                continue
            vals = [(r[col], r[f"{primary}:{name}"]) for r in g if col in r and f"{primary}:{name}" in r]
            if vals:
                xs.append(np.mean([v for v, _ in vals]) * (-1 if col.startswith("flagged:") else 1))
                ys.append(-np.mean([y for _, y in vals]))
        if len(xs) >= 3 and len(set(xs)) > 1:
            rho = spearmanr(xs, ys).statistic
            parts.append(f"{col} {rho:+.2f}")
    if not parts:
        return ""
    what = "macro loss" if primary == "macro" else "loss per token"
    return (f"Pre-check vs trained {what} on {name} (Spearman over arm groups, +1 = the pre-check "
            f"ranks them exactly as training did): " + ", ".join(parts) + ".")


def random_equivalent(groups: dict[tuple[str, str], list[dict[str, Any]]], name: str) -> str:
    """The random pick size whose loss each method's mean loss matches, on random's learning curve
    (random arms at several sizes, the full pool as its last point), interpolated in log size."""
    primary = headline_metric(_all(groups), name)
    key = f"{primary}:{name}"

    def point(g: list[dict[str, Any]]) -> tuple[float, float] | None:
        v = [float(r[key]) for r in g if r.get(key) not in (None, "")]
        return (float(np.mean([r["n_train"] for r in g])), float(np.mean(v))) if v else None

    curve = sorted(p for (label, _), g in groups.items() if label in ("random", "full") and (p := point(g)))
    if len(curve) < 2:
        return ""
    parts = []
    for (label, budget), g in groups.items():
        if label in ("random", "full", "base") or (p := point(g)) is None:
            continue
        n, loss = p
        eq = _interpolate(curve, loss)
        text = (f"< {curve[0][0]:,.0f}" if eq == -math.inf else f"> {curve[-1][0]:,.0f}" if eq == math.inf
                else f"≈ {eq:,.0f} ({eq / n:.2f}x its {n:,.0f})")
        parts.append(f"{label} ({budget}) {text}")
    if not parts:
        return ""
    sizes = ", ".join(f"{n:,.0f}" for n, _ in curve)
    return (f"Random-equivalent size on {name} ({primary} loss; random's curve at {sizes} records, "
            f"log-linear between points): " + "; ".join(parts) + ".")


def _interpolate(curve: list[tuple[float, float]], loss: float) -> float:
    """The size at which the (size, loss) curve reaches ``loss``; +-inf beyond its ends.

    >>> _interpolate([(100, 2.0), (1000, 1.0)], 1.5)
    316.22776601683796
    """
    if loss > curve[0][1]:
        return -math.inf
    for (n0, l0), (n1, l1) in zip(curve, curve[1:]):
        if min(l0, l1) <= loss <= max(l0, l1) and l0 != l1:
            t = (l0 - loss) / (l0 - l1)
            return float(math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0))))
    return math.inf


__all__ = ["PRIMARY_METRICS", "arm_groups", "headline_metric", "pair_verdict", "paired_lines", "primary_lines", "precheck_fit", "random_equivalent", "summary_markdown"]
