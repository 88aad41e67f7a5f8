"""A self-contained HTML report of one selection: summary, map, coverage, lengths, clusters,
labels and the selected records.

The report reads the selection manifest written by ``coreselect select``, the data file and
feature store it names, and writes one HTML file with inline plots (PNG data URIs), inline CSS
and a few lines of inline script: it opens offline and can be mailed or archived as is.

Examples
--------
>>> from coreselect.report import build_report
>>> build_report("core.jsonl.manifest.json", "report.html")  # doctest: +SKIP
PosixPath('report.html')
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from coreselect.errors import ConfigError
from coreselect.metrics import RANDOM_SEEDS, covering_radii
from coreselect.output import atomic_write_bytes, check_not_input, check_writable
from coreselect.report import analysis, plots, sections
from coreselect.report.html import page
from coreselect.report.load import ReportError, ReportInputs, load_inputs
from coreselect.selection.kmeans_centroid import faiss_kmeans

log = logging.getLogger(__name__)

#: Above this many multiply-adds a coverage curve already in the manifest is not recomputed.
_RECOMPUTE_FLOPS = 2e11


def default_report_path(manifest_path: str | os.PathLike[str]) -> Path:
    """``core.jsonl.manifest.json`` -> ``core.jsonl.report.html`` (next to the manifest)."""
    p = Path(manifest_path)
    stem = p.name.removesuffix(".json").removesuffix(".manifest")
    return p.with_name(stem + ".report.html")


def build_report(
    manifest_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
    *,
    projection: str = "pca",
    label_columns: Sequence[str] | None = None,
    data_path: str | os.PathLike[str] | None = None,
    max_rows: int = 5000,
    seed: int = 0,
    overwrite: bool = False,
    features_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the HTML report of the selection described by ``manifest_path``.

    Parameters
    ----------
    manifest_path : the ``<output>.manifest.json`` of a ``select`` run.
    out_path : the HTML file; default ``<output>.report.html`` next to the manifest.
    projection : ``"pca"`` (default) or ``"umap"`` (needs ``umap-learn``) for the 2-D map.
    label_columns : columns whose labels to show; ``None`` detects them, ``[]`` shows none.
    data_path : the data file, when it moved since the selection (must be the same content).
    max_rows : at most this many picks in the records table.
    seed : seed of the projection, k-means and the random baseline.
    overwrite : replace an existing ``out_path``.
    features_dir : a feature store of the same data to map and score the picks on, instead of
        the selection's own (a pick made without features, such as ``random``, has none).

    Returns
    -------
    The path written.
    """
    t0 = time.perf_counter()
    out = Path(out_path) if out_path is not None else default_report_path(manifest_path)
    check_writable(out, overwrite, inputs=[manifest_path] + ([data_path] if data_path else []))
    if projection not in ("pca", "umap"):
        raise ConfigError(f"--projection must be pca or umap, got {projection!r}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ConfigError(f"--max-rows must be a positive integer, got {max_rows}")
    _check_imports(projection)
    inp = load_inputs(manifest_path, data_path=data_path, seed=seed, features_dir=features_dir)
    check_not_input(out, [inp.dataset.path])  # the data the manifest points at
    records = [e.record for e in inp.dataset.examples]
    cols = (analysis.detect_label_columns(records) if label_columns is None
            else analysis.validate_label_columns(records, label_columns))
    log.info("report: %d of %d examples, features %s", len(inp.rows), len(inp.dataset), inp.feature_source)
    html = _render(inp, projection=projection, label_columns=cols, auto_labels=label_columns is None,
                   max_rows=max_rows, seed=seed, t0=t0)
    atomic_write_bytes(out, html.encode("utf-8"))
    log.info("report written to %s (%.1f s, %.1f MB)", out, time.perf_counter() - t0, len(html) / 1e6)
    return out


def _check_imports(projection: str) -> None:
    """Fail before any slow work when an optional dependency is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ReportError("the report needs matplotlib (pip install 'coreselect[report]')") from None
    if projection == "umap":
        try:
            import umap  # noqa: F401
        except ImportError:
            raise ConfigError("--projection umap needs the umap-learn package (pip install umap-learn)") from None


def _render(inp: ReportInputs, *, projection: str, label_columns: list[str], auto_labels: bool,
            max_rows: int, seed: int, t0: float) -> str:
    X, rows, ds = inp.features, inp.rows, inp.dataset
    n, k = len(ds), len(rows)
    method = inp.manifest.method.name

    # clusters, renumbered by size (0 = largest)
    kc = analysis.n_clusters_for(n)
    centroids, raw_labels = faiss_kmeans(np.ascontiguousarray(X, dtype=np.float32), kc, niter=25,
                                         random_state=seed)
    by_size = np.argsort(-np.bincount(raw_labels, minlength=kc), kind="stable")
    relabel = np.empty(kc, dtype=np.int64)
    relabel[by_size] = np.arange(kc)
    clusters, centroids = relabel[raw_labels], centroids[by_size]
    sizes = np.bincount(clusters, minlength=kc)
    core_sizes = np.bincount(clusters[rows], minlength=kc)
    examples = []
    for c in range(kc):
        members = np.flatnonzero(clusters == c)
        d = np.linalg.norm(X[members] - centroids[c], axis=1)
        examples.append(members[np.argsort(d, kind="stable")[:3]].tolist())

    P = analysis.project_2d(X, method=projection, seed=seed)
    map_uri = plots.map_plot(P, rows, clusters, projection=projection)

    # coverage: the manifest's curve (k-center records it) and/or recomputed prefixes
    curve = inp.manifest.coverage_curve
    curve = np.asarray(curve, dtype=float) if isinstance(curve, list) and len(curve) == k and inp.from_store else None
    prefixes = analysis.budget_prefixes(k)
    picks = mean_picks = None
    if curve is None or float(n) * k * X.shape[1] <= _RECOMPUTE_FLOPS:
        picks, mean_picks = covering_radii(X, rows, prefixes)
    # random picks: the mean over RANDOM_SEEDS orders, as `coreselect score` (own streams: differ from --method random)
    runs = [covering_radii(X, np.random.default_rng([seed, 1, s]).permutation(n), prefixes)
            for s in range(RANDOM_SEEDS)]
    rnd, mean_rnd = (np.mean([r[i] for r in runs], axis=0) for i in (0, 1))
    cov_uri = plots.coverage_plot(curve, prefixes, picks, rnd, method=method)
    radius = float(curve[-1]) if curve is not None else (float(picks[-1]) if picks is not None else None)

    # lengths
    if inp.row_stats is not None and "prompt_tokens" in inp.row_stats:
        pool_len = {"prompt": inp.row_stats["prompt_tokens"], "response": inp.row_stats["response_tokens"]}
        unit = "tokens"
        n_trunc = int(inp.row_stats.get("truncated", np.zeros(1)).sum())
        note = (f"Tokens as the selector model saw them (after truncation to "
                f"{(inp.manifest.features.config if inp.manifest.features else {}).get('max_length', '?')} tokens; "
                f"{n_trunc:,} examples truncated, {int(inp.row_stats['truncated'][rows].sum()):,} of them in "
                "the core). Dotted lines: medians.")
    else:
        pool_len = {"prompt": np.array([len(e.prompt.split()) for e in ds.examples]),
                    "response": np.array([len(e.response.split()) for e in ds.examples])}
        unit = "words"
        note = "Whitespace-separated words (no feature store with token counts). Dotted lines: medians."
    core_len = {name: a[rows] for name, a in pool_len.items()}
    len_uri = plots.length_plot(pool_len, core_len, unit=unit)

    clusters_uri = plots.share_plot([f"cluster {c + 1}" for c in range(kc)], sizes / n, core_sizes / k,
                                    title="share of each cluster")

    # labels
    records = [e.record for e in ds.examples]
    cols = label_columns
    stats = [analysis.label_stats(records, c, rows) for c in cols]
    label_uris = [plots.share_plot(s.labels[:20], s.pool_counts[:20] / n, s.core_counts[:20] / k,
                                   title=f"{s.column}: share of the top labels") for s in stats]

    rank_of = {int(r): i + 1 for i, r in enumerate(rows.tolist())}
    extra = {"radius": radius, "random_radius": float(rnd[-1]), "report_seconds": time.perf_counter() - t0}
    body = [
        sections.summary(inp, extra),
        sections.map_section(map_uri, projection, inp.feature_source),
        sections.coverage_section(cov_uri, prefixes, picks, rnd, mean_picks, mean_rnd, method=method,
                                  from_manifest=curve is not None),
        sections.lengths_section(len_uri, pool_len, core_len, unit, note),
        sections.clusters_section(clusters_uri, sizes, core_sizes, examples, ds.examples, rank_of),
        sections.labels_section(stats, label_uris, k, auto_labels),
        sections.records_section(inp, clusters, cols, max_rows),
    ]
    nav = [("summary", "Summary"), ("map", "Map"), ("coverage", "Coverage"), ("lengths", "Lengths"),
           ("clusters", "Clusters"), ("labels", "Labels"), ("picks", "Selected records")]
    title = f"coreselect report: {Path(ds.path).name}"
    subtitle = f"{k:,} of {n:,} examples selected with {method}"
    return page(title, subtitle, nav, body)


__all__ = ["ReportError", "build_report", "default_report_path"]
