"""Results of ``coreselect compare``: ``results.csv``, ``results.md`` (a table) and ``results.png``."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coreselect.output import atomic_write_bytes

log = logging.getLogger(__name__)

_BASE_COLUMNS = ["arm", "method", "label", "budget", "seed", "n_train", "train_tokens", "train_seconds",
                 "select_seconds", "eval_seconds", "train_tokens_per_second"]
#: per held-out set, in this order: the columns the table shows
_EVAL_METRICS = ("loss", "perplexity", "macro", "worst", "acc", "acc_macro")


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _eval_columns(rows: Sequence[dict[str, Any]], eval_names: Sequence[str]) -> list[str]:
    return [f"{k}:{n}" for n in eval_names for k in _EVAL_METRICS if any(f"{k}:{n}" in r for r in rows)]


def task_columns(rows: Sequence[dict[str, Any]], eval_names: Sequence[str]) -> list[str]:
    """Columns of lm-eval task metrics (``task:metric``), in first-seen order (pre-check and speed
    columns, and ``_``-prefixed per-example values, excluded)."""
    known = set(_BASE_COLUMNS) | {f"{k}:{n}" for n in eval_names for k in _EVAL_METRICS}
    skip = ("_", "cover:", "random_cover:", "flagged:", "random_flagged:", "eval_tokens_per_second:")
    return list(dict.fromkeys(c for r in rows for c in r if c not in known and not c.startswith(skip)))


def precheck_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Pre-check columns (label coverage, flagged share, and their random expectations)."""
    return list(dict.fromkeys(c for r in rows for c in r if c.startswith(("cover:", "flagged:", "random_"))))


def results_csv(rows: Sequence[dict[str, Any]], eval_names: Sequence[str]) -> str:
    speed = [f"eval_tokens_per_second:{n}" for n in eval_names]
    cols = (_BASE_COLUMNS + _eval_columns(rows, eval_names) + speed + precheck_columns(rows)
            + task_columns(rows, eval_names))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def results_markdown(rows: Sequence[dict[str, Any]], eval_names: Sequence[str],
                     references: Sequence[str] | None = None, primary: Any = None, control: Any = None) -> str:
    """A markdown table: one row per arm, eval loss and perplexity per held-out set; then the
    summary (means with intervals, the paired verdicts against ``references``)."""
    from coreselect.compare.summary import REFERENCES, summary_markdown

    head = ["arm", "method", "budget", "seed", "n_train", "train tokens", "train seconds", "train/forward tok/s"]
    evals = _eval_columns(rows, eval_names)
    pre = [c for c in precheck_columns(rows) if not c.startswith("random_")]
    extra = task_columns(rows, eval_names)
    head += [c.replace("loss:", "eval loss:") for c in evals] + pre + extra
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["arm"], r.get("label") or r["method"], _fmt(r["budget"]), _fmt(r["seed"]), _fmt(r["n_train"]),
                 _fmt(r["train_tokens"]), f"{r['train_seconds']:.0f}", _cost(r, eval_names)]
        cells += [_fmt(r.get(c, ""), 2 if c.startswith("perplexity") else 4) for c in evals]
        cells += [_with_random(r, c) for c in pre]
        cells += [_fmt(r.get(c, "")) for c in extra]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    note = ("\neval loss: mean negative log-likelihood per response token on the held-out set (lower is better); "
            "macro: the mean over label groups of each group's mean loss; worst: the worst group; acc: "
            "rank-classification accuracy. cover/flagged (pre-check, before training): the share of the pool's "
            "labels the pick holds / the share of picked records with a non-empty label, random's expectation "
            "in brackets. train/forward tok/s: training tokens per second against the trainee's inference "
            "tokens per second on the held-out set. `base` is the trainee model before fine-tuning.\n")
    return "\n".join(lines) + "\n" + note + summary_markdown(rows, eval_names, references=references or REFERENCES,
                                                primary=primary, control=control)


def _cost(r: dict[str, Any], eval_names: Sequence[str]) -> str:
    train = r.get("train_tokens_per_second")
    fwd = r.get(f"eval_tokens_per_second:{eval_names[0]}") if eval_names else None
    if not train or not fwd:
        return ""
    return f"{train:,.0f} / {fwd:,.0f} ({train / fwd:.2f}x)"


def _with_random(r: dict[str, Any], col: str) -> str:
    v = r.get(col)
    if v in (None, ""):
        return ""
    ref = r.get("random_" + col)
    return f"{v:.3f}" + (f" ({ref:.3f})" if ref is not None else "")


def plot_results(rows: Sequence[dict[str, Any]], eval_name: str, path: Path) -> None:
    """Bar chart of the primary held-out metric per arm group: mean over seeds, 95% CI whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from coreselect.compare.stats import mean_ci
    from coreselect.compare.summary import arm_groups, headline_metric

    metric = headline_metric(rows, eval_name)
    key = f"{metric}:{eval_name}"
    base = next((r[key] for r in rows if r["method"] == "base" and key in r), None)
    labels, means, errs, tokens = [], [], [[], []], []
    for (label, budget), g in arm_groups(rows).items():
        v = [float(r[key]) for r in g if key in r]
        if not v or label == "base":
            continue
        m, lo, hi = mean_ci(v)
        labels.append(label if label == "full" else f"{label}\n{budget}")
        means.append(m)
        errs[0].append(m - lo if math.isfinite(lo) else 0.0)
        errs[1].append(hi - m if math.isfinite(hi) else 0.0)
        tokens.append(sum(int(r["train_tokens"]) for r in g) / len(g))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(labels) + 2), 3.8), dpi=120)
    colors = ["#999999" if lab.startswith(("random", "full", "longest", "balanced")) else "#2b6cb0"
              for lab in labels]
    bars = ax.bar(range(len(labels)), means, yerr=errs, color=colors, capsize=4)
    for b, t in zip(bars, tokens):
        ax.annotate(f"{t / 1000:.0f}k tok", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    if base is not None:
        ax.axhline(base, color="#c05621", linestyle="--", linewidth=1, label=f"base model ({base:.3f})")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylabel("macro loss over groups" if metric == "macro" else "held-out loss per response token")
    ax.set_title(f"Fine-tuned on each subset: {eval_name} (mean, 95% CI over seeds)", fontsize=9)
    vals = [m - e for m, e in zip(means, errs[0])] + [m + e for m, e in zip(means, errs[1])]
    vals += [base] if base is not None else []
    if vals and all(math.isfinite(v) for v in vals):
        span = max(vals) - min(vals)
        ax.set_ylim(max(0.0, min(vals) - 0.3 * span - 0.02), max(vals) + 0.3 * span + 0.02)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_reports(rows: Sequence[dict[str, Any]], root: Path, eval_names: Sequence[str],
                  references: Sequence[str] | None = None, primary: Any = None, control: Any = None) -> None:
    """Write ``results.csv``, ``results.md`` and ``results.png`` (first held-out set) under ``root``."""
    atomic_write_bytes(root / "results.csv", results_csv(rows, eval_names).encode())
    atomic_write_bytes(root / "results.md", results_markdown(rows, eval_names, references, primary, control).encode())
    if eval_names:
        plot_results(rows, eval_names[0], root / "results.png")


__all__ = ["plot_results", "precheck_columns", "results_csv", "results_markdown", "task_columns", "write_reports"]
