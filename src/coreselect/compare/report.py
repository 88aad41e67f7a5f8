"""Results of ``coreselect compare``: ``results.csv``, ``results.md`` (a table) and ``results.png``."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coreselect.output import atomic_write_bytes

log = logging.getLogger(__name__)

_BASE_COLUMNS = ["arm", "method", "budget", "seed", "n_train", "train_tokens", "train_seconds",
                 "select_seconds", "eval_seconds"]


def _fmt(v: Any, digits: int = 4) -> str:
    if isinstance(v, float):
        if v == 0:
            return "0"
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def task_columns(rows: Sequence[dict[str, Any]], eval_names: Sequence[str]) -> list[str]:
    """Columns of lm-eval task metrics (``task:metric``), in first-seen order."""
    known = set(_BASE_COLUMNS) | {f"{k}:{n}" for n in eval_names for k in ("loss", "perplexity")}
    return list(dict.fromkeys(c for r in rows for c in r if c not in known))


def results_csv(rows: Sequence[dict[str, Any]], eval_names: Sequence[str]) -> str:
    cols = (_BASE_COLUMNS + [f"{k}:{n}" for n in eval_names for k in ("loss", "perplexity")]
            + task_columns(rows, eval_names))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def results_markdown(rows: Sequence[dict[str, Any]], eval_names: Sequence[str]) -> str:
    """A markdown table: one row per arm, eval loss and perplexity per held-out set."""
    head = ["arm", "method", "budget", "seed", "n_train", "train tokens", "train seconds"]
    for n in eval_names:
        suffix = f" ({n})" if len(eval_names) > 1 else ""
        head += [f"eval loss{suffix}", f"perplexity{suffix}"]
    extra = task_columns(rows, eval_names)
    head += extra
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["arm"], r["method"], _fmt(r["budget"]), _fmt(r["seed"]), _fmt(r["n_train"]),
                 _fmt(r["train_tokens"]), f"{r['train_seconds']:.0f}"]
        for n in eval_names:
            cells += [_fmt(r.get(f"loss:{n}", "")), _fmt(r.get(f"perplexity:{n}", ""), 2)]
        cells += [_fmt(r.get(c, "")) for c in extra]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    note = ("\neval loss: mean negative log-likelihood per response token on the held-out set "
            "(lower is better); perplexity = exp(loss). `base` is the trainee model before fine-tuning.\n")
    return "\n".join(lines) + "\n" + note + seed_summary(rows, eval_names)


def seed_summary(rows: Sequence[dict[str, Any]], eval_names: Sequence[str]) -> str:
    """Mean, standard deviation and range over seeds of each method x budget (when any has several)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        if r["method"] != "base":
            groups[(r["method"], _fmt(r["budget"]))].append(r)
    if not eval_names or all(len(g) < 2 for g in groups.values()):
        return ""
    out = []
    for n in eval_names:
        key = f"loss:{n}"
        out += [f"\n### Over seeds: eval loss on {n}\n",
                "| method | budget | seeds | mean | std | min | max | mean train tokens |",
                "|---|---|---|---|---|---|---|---|"]
        for (method, budget), g in groups.items():
            v = [float(r[key]) for r in g if key in r]
            if not v:
                continue
            mean = sum(v) / len(v)
            std = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else float("nan")
            tok = sum(int(r["train_tokens"]) for r in g) / len(g)
            out.append(f"| {method} | {budget} | {len(v)} | {mean:.4f} | "
                       f"{'-' if math.isnan(std) else f'{std:.4f}'} | {min(v):.4f} | {max(v):.4f} | {tok:,.0f} |")
    return "\n".join(out) + "\n\nstd: sample standard deviation over seeds (each seed selects and trains anew).\n"


def plot_results(rows: Sequence[dict[str, Any]], eval_name: str, path: Path) -> None:
    """Bar chart of held-out loss per method and budget (mean over seeds, min-max whiskers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = f"loss:{eval_name}"
    groups: dict[str, list[float]] = defaultdict(list)
    tokens: dict[str, list[int]] = defaultdict(list)
    base = None
    for r in rows:
        if key not in r:
            continue
        if r["method"] == "base":
            base = r[key]
            continue
        b = r["budget"]
        size = f"{b * 100:g}%" if isinstance(b, float) else f"n={b}"
        label = r["method"] if r["method"] == "full" else f"{r['method']}\n{size}"
        groups[label].append(float(r[key]))
        tokens[label].append(int(r["train_tokens"]))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(groups) + 2), 3.6), dpi=120)
    labels = list(groups)
    means = [sum(v) / len(v) for v in groups.values()]
    lo = [m - min(v) for m, v in zip(means, groups.values())]
    hi = [max(v) - m for m, v in zip(means, groups.values())]
    colors = ["#999999" if lab.startswith(("random", "full")) else "#2b6cb0" for lab in labels]
    bars = ax.bar(range(len(labels)), means, yerr=[lo, hi], color=colors, capsize=4)
    for b, lab in zip(bars, labels):
        t = sum(tokens[lab]) / len(tokens[lab])
        ax.annotate(f"{t / 1000:.0f}k tok", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
    if base is not None:
        ax.axhline(base, color="#c05621", linestyle="--", linewidth=1, label=f"base model ({base:.3f})")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("held-out loss per response token")
    ax.set_title(f"Fine-tuned on each subset: loss on {eval_name}", fontsize=9)
    vals = means + ([base] if base is not None else [])
    if vals and all(math.isfinite(v) for v in vals):
        span = max(vals) - min(vals)
        ax.set_ylim(max(0.0, min(vals) - 0.5 * span - 0.05), max(vals) + 0.3 * span + 0.05)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def write_reports(rows: Sequence[dict[str, Any]], root: Path, eval_names: Sequence[str]) -> None:
    """Write ``results.csv``, ``results.md`` and ``results.png`` (first held-out set) under ``root``."""
    atomic_write_bytes(root / "results.csv", results_csv(rows, eval_names).encode())
    atomic_write_bytes(root / "results.md", results_markdown(rows, eval_names).encode())
    if eval_names:
        plot_results(rows, eval_names[0], root / "results.png")


__all__ = ["plot_results", "results_csv", "results_markdown", "seed_summary", "task_columns", "write_reports"]
