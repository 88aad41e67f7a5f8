"""Matplotlib figures of the report, each returned as a ``data:image/png;base64`` URI.

Figures are built with :class:`matplotlib.figure.Figure` directly (the Agg canvas), never
through ``pyplot``, so no global backend or figure state is touched.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from coreselect.report.load import ReportError

log = logging.getLogger(__name__)

POOL = "#9aa5b1"
CORE = "#d1495b"
RANDOM = "#4a6fa5"
DPI = 100


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError("the report needs matplotlib (pip install 'coreselect[report]')") from None
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def to_data_uri(fig: Any) -> str:
    """Render a figure to a base64 PNG data URI (no metadata, so output is reproducible)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.25, linewidth=0.6)
    ax.set_axisbelow(True)


def map_plot(P: np.ndarray, core: np.ndarray, clusters: np.ndarray, *, projection: str) -> str:
    """Two panels: the pool with the core highlighted, and the pool coloured by cluster."""
    fig, (a, b) = _figure(12, 5.2, 2)
    n = len(P)
    s_pool = float(np.clip(8000 / max(n, 1), 3, 14))
    mask = np.zeros(n, dtype=bool)
    mask[core] = True
    a.scatter(P[~mask, 0], P[~mask, 1], s=s_pool, c=POOL, alpha=0.55, linewidths=0, label=f"pool ({n:,})",
              rasterized=True)
    a.scatter(P[mask, 0], P[mask, 1], s=max(s_pool * 3, 12), c=CORE, alpha=0.9, linewidths=0.4,
              edgecolors="white", label=f"core ({mask.sum():,})", rasterized=True)
    a.set_title("pool and core")
    a.legend(loc="best", frameon=False, markerscale=2)
    import matplotlib as mpl

    k = int(clusters.max()) + 1
    cmap = mpl.colormaps["tab20"]
    colors = cmap(np.arange(k) % 20)
    b.scatter(P[:, 0], P[:, 1], s=s_pool, c=colors[clusters], alpha=0.6, linewidths=0, rasterized=True)
    for c in range(k):
        pts = P[clusters == c]
        if len(pts):
            x, y = np.median(pts, axis=0)
            b.text(x, y, str(c + 1), fontsize=9, fontweight="bold", ha="center", va="center",
                   bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colors[c], "alpha": 0.85})
    b.set_title(f"pool by k-means cluster (k={k})")
    name = projection.upper()
    for ax in (a, b):
        _style(ax)
        ax.set_xlabel(f"{name} 1")
        ax.set_ylabel(f"{name} 2")
    return to_data_uri(fig)


def coverage_plot(curve: np.ndarray | None, prefixes: Sequence[int], picks: np.ndarray | None,
                  random: np.ndarray | None, *, method: str) -> str:
    """Covering radius vs number picked: the selection's order and a random order."""
    fig, ax = _figure(8, 4.2)
    if curve is not None:
        ax.plot(np.arange(1, len(curve) + 1), curve, color=CORE, lw=2, label=f"{method} (manifest)")
    if picks is not None:
        ax.plot(prefixes, picks, "o" if curve is not None else "o-", color=CORE, ms=4, lw=2,
                label=f"{method} (recomputed)" if curve is not None else method)
    if random is not None:
        ax.plot(prefixes, random, "s--", color=RANDOM, ms=4, lw=1.5, label="random order (same features)")
    ax.set_xscale("log")
    ax.set_xlabel("number picked")
    ax.set_ylabel("covering radius (max distance to nearest pick)")
    ax.legend(frameon=False)
    _style(ax)
    return to_data_uri(fig)


def length_plot(pool: dict[str, np.ndarray], core: dict[str, np.ndarray], *, unit: str) -> str:
    """Histograms (densities) of prompt and response lengths, pool vs core."""
    fig, axes = _figure(12, 3.8, len(pool))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, pool):
        p, c = pool[name].astype(float), core[name].astype(float)
        hi = max(float(np.percentile(p, 99)), 1.0)
        bins = np.linspace(0, hi, 41)
        ax.hist(np.clip(p, 0, hi), bins=bins, density=True, color=POOL, alpha=0.6, label="pool")
        ax.hist(np.clip(c, 0, hi), bins=bins, density=True, histtype="step", lw=2, color=CORE, label="core")
        ax.axvline(np.median(p), color=POOL, ls=":", lw=1.5)
        ax.axvline(np.median(c), color=CORE, ls=":", lw=1.5)
        ax.set_xlabel(f"{name} length ({unit}; last bin includes longer)")
        ax.set_ylabel("density")
        ax.set_title(f"{name}: median pool {np.median(p):.0f}, core {np.median(c):.0f}")
        ax.legend(frameon=False)
        _style(ax)
    return to_data_uri(fig)


def share_plot(names: Sequence[str], pool_share: np.ndarray, core_share: np.ndarray, *, title: str) -> str:
    """Horizontal grouped bars: share of each group in the pool and in the core."""
    n = len(names)
    fig, ax = _figure(9, max(2.2, 0.26 * n + 1.0))
    y = np.arange(n)
    ax.barh(y - 0.2, pool_share * 100, height=0.4, color=POOL, label="pool")
    ax.barh(y + 0.2, core_share * 100, height=0.4, color=CORE, label="core")
    ax.set_yticks(y, [_short(s) for s in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("share (%)")
    ax.set_title(title)
    ax.legend(frameon=False, loc="lower right")
    _style(ax)
    return to_data_uri(fig)


def _short(s: str, n: int = 40) -> str:
    s = " ".join(s.split())
    # "$" starts matplotlib mathtext; escape it so labels render as written
    return (s if len(s) <= n else s[: n - 1] + "…").replace("$", r"\$")


__all__ = ["coverage_plot", "length_plot", "map_plot", "share_plot", "to_data_uri"]
