"""Intervals, paired bootstrap, power and the verdict rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from coreselect.compare.stats import detectable_effect, mean_ci, paired_bootstrap, seeds_needed, verdict


def test_mean_ci_matches_the_t_interval():
    from scipy import stats

    x = [1.0, 1.5, 0.7, 1.1]
    m, lo, hi = mean_ci(x)
    half = stats.t.ppf(0.975, 3) * np.std(x, ddof=1) / 2
    assert (m, lo, hi) == pytest.approx((np.mean(x), np.mean(x) - half, np.mean(x) + half))
    assert mean_ci([2.0])[1] == -math.inf


def test_paired_bootstrap_macro_weights_groups_equally():
    D = np.array([[0.0, 0.0, 0.0, -1.0]] * 3)  # group a: three zeros, group b: one -1
    r = paired_bootstrap(D, ["a", "a", "a", "b"], n_boot=200)
    assert r["delta"] == pytest.approx(-0.5)  # macro: (0 + -1) / 2, not the plain mean -0.25
    assert r["ci_low"] == r["ci_high"] == pytest.approx(-0.5)  # no variation to resample
    noisy = paired_bootstrap(np.random.default_rng(0).normal(0, 1, (5, 200)), n_boot=500)
    assert noisy["ci_low"] < 0 < noisy["ci_high"]


def test_power_estimates_shrink_with_seeds():
    assert detectable_effect(0.02, 3) > detectable_effect(0.02, 10) > 0
    assert math.isnan(detectable_effect(0.02, 1))
    n = seeds_needed(0.03, 0.02)
    assert detectable_effect(0.03, n) <= 0.02 < detectable_effect(0.03, n - 1)


def test_a_win_needs_both_intervals_to_exclude_zero():
    boot = {"delta": -0.1, "ci_low": -0.2, "ci_high": -0.02, "seeds": 2}
    assert verdict("m", "random", boot, 0.5).startswith("m beats random")
    assert "no difference detectable" in verdict("m", "random", boot, 0.5, seed_ci=(-1.0, 0.8))
    assert verdict("m", "random", boot, 0.5, seed_ci=(-0.3, -0.05)).startswith("m beats random")
    worse = {"delta": 0.1, "ci_low": 0.02, "ci_high": 0.2, "seeds": 3}
    assert verdict("m", "random", worse, 0.5, seed_ci=(0.01, 0.2)).startswith("m loses to random")
    # seed noise that cannot be estimated confirms nothing: one seed, or per-seed differences all equal
    nan = float("nan")
    one = verdict("m", "random", boot, nan, seed_ci=(nan, nan))
    assert "no difference detectable" in one and "one seed" in one and "no power estimate" in one
    same = verdict("m", "random", worse, 0.0, seed_ci=(0.1, 0.1))
    assert "no difference detectable" in same and "not estimable" in same and "no power estimate" in same


def test_primary_comparison_heads_the_summary_and_reads_loss_per_token():
    """A declared primary pair is written first, with its metric; per token weights each
    example's loss difference by its response tokens (a long example counts more)."""
    from coreselect.compare.config import PrimarySpec
    from coreselect.compare.summary import summary_markdown

    def row(label, seed, losses):
        return {"arm": f"{label}-s{seed}", "method": label, "label": label, "budget": 0.1, "seed": seed,
                "n_train": 10, "train_tokens": 100, "loss:held": float(np.mean(losses)),
                "_per_example:held": losses * 20, "_tokens:held": [90, 10] * 20}

    # the selector is better on the long example, worse on the short one: per example a tie,
    # per token a clear gain on every seed
    rows = [row("fl", s, [1.0 - 0.1 - 0.01 * s, 1.0 + 0.1 + 0.01 * s]) for s in range(4)]
    rows += [row("random", s, [1.0, 1.0]) for s in range(4)]
    text = summary_markdown(rows, ["held"], references=["random"], n_boot=200,
                            primary=PrimarySpec(("fl", "random"), "held", "token"),
                            control=PrimarySpec(("fl", "random"), "held", "loss"))
    assert text.index("Positive control") < text.index("Primary comparison")
    assert "The control is not shown positive" in text  # per example the arms tie
    head, rest = text.split("Paired against", 1)
    assert "Primary comparison (declared in the config before the run): fl vs random, loss per token" in head
    assert "**fl** (10%) beats random on loss per token by 0.0" in head
    assert "Secondary" in rest and "no difference detectable" in rest  # per example: a tie
    assert "seeds needed for 80% power, the observed gap" in text
    # the secondary pairs read the declared metric too: per token next to per example
    assert "**fl** (10%) beats random on loss per token by 0.0" in rest
    plain = summary_markdown(rows, ["held"], references=["random"], n_boot=200)  # nothing declared
    assert "loss per token by" not in plain.split("Paired against", 1)[1]
