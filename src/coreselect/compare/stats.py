"""Statistics for ``coreselect compare``: intervals, paired differences, power.

A gap between two arms is a finding only when it is larger than what training seeds alone
produce. Each arm is trained with the same seeds (the same seed also fixes the data order), so
a selector and random are compared *paired*: the per-example loss difference on the same
held-out example under the same seed. Two sources of noise are resampled together in the
bootstrap: seeds (training noise) and held-out examples (evaluation noise).

Examples
--------
>>> import numpy as np
>>> m, lo, hi = mean_ci([1.0, 1.2, 0.8])
>>> round(m, 3), round(lo, 3), round(hi, 3)
(1.0, 0.503, 1.497)
>>> D = np.full((3, 10), -0.05)  # a selector 0.05 below random on every example and seed
>>> r = paired_bootstrap(D, n_boot=200)
>>> round(r["delta"], 3), round(r["ci_low"], 3), round(r["ci_high"], 3)
(-0.05, -0.05, -0.05)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its ``level`` t-interval ``(mean, low, high)``; one value gives an infinite interval."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    m = float(x.mean())
    if len(x) < 2:
        return m, -math.inf, math.inf
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - half, m + half


def _group_index(groups: Sequence[Any] | None, n: int) -> list[np.ndarray]:
    if groups is None:
        return [np.arange(n)]
    g = np.asarray([str(x) for x in groups])
    return [np.flatnonzero(g == u) for u in np.unique(g)]


def macro_mean(values: np.ndarray, groups: Sequence[Any] | None = None, weights: np.ndarray | None = None) -> float:
    """Mean over groups of the per-group mean (plain mean when ``groups`` is None; weighted by
    ``weights`` inside each group when given)."""
    values = np.asarray(values, dtype=np.float64)
    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)
    return float(np.mean([(values[ix] * w[ix]).sum() / w[ix].sum() for ix in _group_index(groups, len(values))]))


def paired_bootstrap(D: np.ndarray, groups: Sequence[Any] | None = None, *, n_boot: int = 2000,
                     level: float = 0.95, seed: int = 0, weights: np.ndarray | None = None) -> dict[str, float]:
    """Bootstrap interval of the mean paired difference ``D[seed, example]`` (arm minus baseline).

    Each replicate resamples seeds with replacement and examples with replacement (within each
    group when ``groups`` is given, so every group stays represented) and takes the macro mean.
    ``weights`` (one per example, e.g. its response tokens) makes each mean a weighted one, the
    weights resampled with their examples: with token counts, the difference in loss per token.
    Returns ``delta`` (the observed statistic), ``ci_low``/``ci_high`` and ``p_better`` (share of
    replicates below zero: a lower loss is better).

    >>> D = np.array([[0.0, 1.0], [0.0, 1.0]])
    >>> paired_bootstrap(D, weights=np.array([3.0, 1.0]), n_boot=50)["delta"]
    0.25
    """
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.size == 0:
        raise ValueError(f"expected a (seeds, examples) matrix, got shape {D.shape}")
    n_s, n_e = D.shape
    w = np.ones(n_e) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n_e,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"expected {n_e} non-negative weights, got shape {w.shape}")
    index = _group_index(groups, n_e)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)

    def mean(rows: np.ndarray, ix: np.ndarray) -> float:
        return float((rows[:, ix] * w[ix]).sum() / (w[ix].sum() * len(rows)))

    for b in range(n_boot):
        rows = D[rng.integers(0, n_s, n_s)]
        stats[b] = np.mean([mean(rows, ix[rng.integers(0, len(ix), len(ix))]) for ix in index])
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    delta = float(np.mean([mean(D, ix) for ix in index]))
    return {"delta": delta, "ci_low": float(lo), "ci_high": float(hi), "p_better": float((stats < 0).mean()),
            "seeds": n_s, "examples": n_e}


def seed_sd(per_seed_deltas: Sequence[float]) -> float:
    """Standard deviation over seeds of a paired difference (0 for one seed)."""
    x = np.asarray(per_seed_deltas, dtype=np.float64)
    return float(x.std(ddof=1)) if len(x) > 1 else 0.0


def detectable_effect(sd: float, n_seeds: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest paired gap a two-sided t-test over ``n_seeds`` finds with ``power`` (NaN below 2 seeds)."""
    from scipy import stats

    if n_seeds < 2:
        return math.nan
    df = n_seeds - 1
    return float((stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) * sd / math.sqrt(n_seeds))


def seeds_needed(sd: float, gap: float, *, alpha: float = 0.05, power: float = 0.8, max_seeds: int = 10_000) -> int:
    """Seeds a paired comparison needs to detect ``gap`` with ``power`` when the seed SD is ``sd``.

    >>> seeds_needed(0.02, 0.02)
    10
    """
    if sd <= 0:
        return 2
    for n in range(2, max_seeds + 1):
        if detectable_effect(sd, n, alpha=alpha, power=power) <= abs(gap):
            return n
    return max_seeds


def verdict(name: str, baseline: str, r: dict[str, float], mde: float, metric: str = "loss",
            seed_ci: tuple[float, float] | None = None) -> str:
    """One sentence: a win, a loss, or no detectable difference with the smallest detectable effect.

    A win or a loss needs the bootstrap interval ``r`` *and*, when given, the t-interval of the
    per-seed differences ``seed_ci`` to exclude zero on the same side: with few seeds the bootstrap
    over seeds underestimates training noise, and a gap inside seed noise is not a win. A
    ``seed_ci`` that is not a proper interval (one seed: NaN; per-seed differences all equal: a
    point) cannot confirm anything, so the verdict is then "no difference detectable".

    >>> boot = {"delta": -0.1, "ci_low": -0.2, "ci_high": -0.02, "seeds": 2}
    >>> verdict("m", "random", boot, 0.5, seed_ci=(-0.1, -0.1))
    'm vs random on loss: no difference detectable, Δ -0.1000 (95% CI -0.2000..-0.0200; per-seed Δ all equal: seed noise not estimable); smallest detectable effect at this power (80%, 2 seeds): 0.5000'
    """
    ci = f"{r['delta']:+.4f} (95% CI {r['ci_low']:+.4f}..{r['ci_high']:+.4f}"
    confirmable = True
    if seed_ci is not None:
        lo, hi = seed_ci
        if not (math.isfinite(lo) and math.isfinite(hi)):
            ci, confirmable = ci + "; one seed", False
        elif lo == hi:
            ci, confirmable = ci + "; per-seed Δ all equal: seed noise not estimable", False
        else:
            ci += f"; over seeds {lo:+.4f}..{hi:+.4f}"
    ci += ")"
    lows = [r["ci_low"]] + ([seed_ci[0]] if seed_ci else [])
    highs = [r["ci_high"]] + ([seed_ci[1]] if seed_ci else [])
    if confirmable and max(highs) < 0:
        return f"{name} beats {baseline} on {metric} by {-r['delta']:.4f}: Δ {ci}"
    if confirmable and min(lows) > 0:
        return f"{name} loses to {baseline} on {metric} by {r['delta']:.4f}: Δ {ci}"
    tail = f"; smallest detectable effect at this power (80%, {r['seeds']} seeds): {mde:.4f}" \
        if math.isfinite(mde) and mde > 0 else "; no power estimate"
    return f"{name} vs {baseline} on {metric}: no difference detectable, Δ {ci}{tail}"


__all__ = ["detectable_effect", "macro_mean", "mean_ci", "paired_bootstrap", "seed_sd", "seeds_needed", "verdict"]
