"""The numbers behind the report: 2-D projection, cluster count, budgets, label statistics.

Pure functions on arrays; nothing here draws or writes HTML. Every random step takes a seed.
The coverage curves come from :func:`coreselect.metrics.covering_radii` and the clusters from
:func:`coreselect.selection.kmeans_centroid.faiss_kmeans`: one implementation of each.

Examples
--------
>>> budget_prefixes(30, 4)
[1, 3, 10, 30]
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coreselect.errors import ConfigError
from coreselect.metrics import expected_coverage, label_balance, random_label_metrics

log = logging.getLogger(__name__)

#: Column names taken as labels when ``label_columns`` is not given.
LABEL_NAMES = ("category", "task", "template", "label")
#: Auto-detected label columns must have fewer distinct values than this.
MAX_AUTO_LABELS = 500


def text_features(texts: Sequence[str], *, dims: int = 64, seed: int = 0) -> np.ndarray:
    """Unit-length TF-IDF + truncated-SVD vectors: the stand-in when no feature store exists."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    tf = TfidfVectorizer(max_features=20_000, sublinear_tf=True).fit_transform(texts)
    k = max(1, min(dims, tf.shape[1] - 1, len(texts) - 1))
    if k < 2:
        X = np.asarray(tf.todense(), dtype=np.float32)
    else:
        X = TruncatedSVD(k, random_state=seed).fit_transform(tf).astype(np.float32)
    X -= X.mean(0)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return X


def project_2d(X: np.ndarray, *, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(n, d) -> (n, 2) with PCA (default) or UMAP (needs the ``umap-learn`` package)."""
    if X.shape[0] < 3 or X.shape[1] < 2:
        return np.column_stack([X[:, 0], np.zeros(len(X))]) if X.shape[1] else np.zeros((len(X), 2))
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ConfigError("--projection umap needs the umap-learn package (pip install umap-learn)") from None
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(X).astype(np.float32)
    if method != "pca":
        raise ConfigError(f"--projection must be pca or umap, got {method!r}")
    from sklearn.decomposition import PCA

    solver = "randomized" if min(X.shape) > 500 else "full"
    return PCA(n_components=2, svd_solver=solver, random_state=seed).fit_transform(X).astype(np.float32)


def n_clusters_for(n: int) -> int:
    """About ``sqrt(n)/2.5`` clusters, clipped to [8, 20] (and to ``n``).

    >>> [n_clusters_for(n) for n in (5, 240, 2000, 50_000)]
    [5, 8, 18, 20]
    """
    return int(min(n, max(8, min(20, round(math.sqrt(n) / 2.5)))))


def budget_prefixes(k: int, points: int = 12) -> list[int]:
    """Geometrically spaced budgets in ``[1, k]``, always ending at ``k``.

    >>> budget_prefixes(100, 5)
    [1, 3, 10, 32, 100]
    """
    return sorted({int(round(v)) for v in np.geomspace(1, k, points)} | {k})


@dataclass
class LabelStats:
    """Pool vs core counts of one label column (``labels`` sorted by pool count, descending)."""

    column: str
    labels: list[str]
    pool_counts: np.ndarray
    core_counts: np.ndarray
    expected_random: float  # labels a uniform random sample of the core's size covers on average
    random_balance: float = float("nan")  # the balance of such samples (mean over a few seeds)

    @property
    def n_pool(self) -> int:
        return len(self.labels)

    @property
    def n_covered(self) -> int:
        return int((self.core_counts > 0).sum())

    @property
    def balance(self) -> float:
        """The core's balance: normalised entropy of its label shares over the pool's labels
        (:func:`coreselect.metrics.label_balance`; 1 = even, 0 = one label)."""
        return label_balance(self.core_counts, self.n_pool)

    @property
    def pool_balance(self) -> float:
        """The pool's own balance (what a random pick has, about)."""
        return label_balance(self.pool_counts, self.n_pool)


def detect_label_columns(records: Sequence[dict[str, Any]]) -> list[str]:
    """String columns named like labels with fewer than :data:`MAX_AUTO_LABELS` values."""
    out = []
    keys = {k for r in records[:1000] for k in r}
    for key in sorted(keys, key=lambda k: (LABEL_NAMES.index(k.lower()) if k.lower() in LABEL_NAMES else 99, k)):
        if key.lower() not in LABEL_NAMES:
            continue
        values = [r.get(key) for r in records]
        strings = [v for v in values if isinstance(v, str)]
        if len(strings) < 0.9 * len(values):
            continue
        if len(set(strings)) < MAX_AUTO_LABELS:
            out.append(key)
    return out


def label_value(record: dict[str, Any], column: str) -> str:
    """A record's label in ``column`` as text; ``(missing)`` when absent or null."""
    v = record.get(column)
    if v is None:
        return "(missing)"
    return v if isinstance(v, str) else str(v)


def label_stats(records: Sequence[dict[str, Any]], column: str, core_rows: np.ndarray) -> LabelStats:
    """Counts of each label of ``column`` in the pool and in the core rows."""
    values = [label_value(r, column) for r in records]
    pool = Counter(values)
    core = Counter(values[i] for i in core_rows.tolist())
    labels = [lab for lab, _ in sorted(pool.items(), key=lambda kv: (-kv[1], kv[0]))]
    pc = np.array([pool[lab] for lab in labels], dtype=np.int64)
    cc = np.array([core.get(lab, 0) for lab in labels], dtype=np.int64)
    return LabelStats(column, labels, pc, cc, expected_coverage(pc, len(core_rows)),
                      random_label_metrics(values, len(core_rows))["balance"] if len(core_rows) else float("nan"))


def validate_label_columns(records: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """Check that each requested column occurs in at least one record."""
    keys = {k for r in records for k in r}
    for c in columns:
        if c not in keys:
            raise ConfigError(f"--label-columns: no record has a column {c!r} "
                              f"(columns: {', '.join(sorted(keys)) or 'none'})")
    return list(columns)


__all__ = [
    "LabelStats", "budget_prefixes", "detect_label_columns", "expected_coverage", "label_stats", "label_value",
    "n_clusters_for", "project_2d", "text_features", "validate_label_columns",
]
