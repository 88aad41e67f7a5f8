"""One function per report section: numbers in, escaped HTML out.

Dataset text only ever reaches the page through :func:`coreselect.report.html.esc`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from coreselect.data import Example
from coreselect.report.analysis import LabelStats, label_value
from coreselect.report.html import Raw, esc, figure, fmt_num, kv_table, para, section, table, truncate
from coreselect.report.load import ReportInputs


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def summary(inp: ReportInputs, extra: dict[str, Any]) -> str:
    """Headline numbers, then what was selected, from what, with which model and features."""
    m = inp.manifest
    n, k = len(inp.dataset), len(inp.rows)
    feats = m.features
    model = m.model or {}
    cards = [(f"{n:,}", "pool"), (f"{k:,}", f"core ({_pct(k / n)})"), (m.method.name, "method"),
             (model.get("name", "none"), "model")]
    if extra.get("radius") is not None:
        cards.append((f"{extra['radius']:.3g}", f"covering radius (random: {extra['random_radius']:.3g})"
                      if extra.get("random_radius") is not None else "final covering radius"))
    card_html = "".join(f"<div class=\"card\"><b>{esc(v)}</b><span>{esc(t)}</span></div>" for v, t in cards)
    budget = m.budget
    sel = {
        "method": m.method.name,
        "parameters": json.dumps(m.method.params, ensure_ascii=False),
        "budget": (f"ratio {budget.ratio}" if budget.ratio is not None else f"n {budget.n}") if budget else "?",
        "selected": f"{k:,} of {n:,}",
        "output order": m.order,
        "skipped records": m.counts.skipped,
    }
    data = {"data file": m.data.path, "format": f"{m.data.format or '?'} ({m.data.container or '?'})",
            "fingerprint": str(m.data.fingerprint or "")[:23] + "…",
            "coreselect": m.version or "?", "manifest": str(inp.manifest_path)}
    fx: dict[str, Any] = {"model": model.get("name", "none (the method needs no features)")}
    if model.get("path"):
        fx["model path"] = model["path"]
    if feats:
        cfg = feats.config
        fx.update({
            "features": cfg.get("kind", "?"),
            "layers": ", ".join(str(v) for v in cfg.get("layers", [])),
            "pooling / span": f"{cfg.get('pooling', '?')} / {cfg.get('span', '?')}",
            "max length": cfg.get("max_length", "?"),
            "dims": ", ".join(f"{g} {d:,}" for g, d in feats.dims.items()),
            "normalize": feats.normalize if feats.normalize == feats.scored_with
            else f"{feats.normalize} (selection), {feats.scored_with} (scores)",
            "tokens": fmt_num(feats.tokens),
            "truncated examples": fmt_num(feats.truncated),
            "feature store": feats.store,
        })
    fx["report uses"] = inp.feature_source
    timings = {k2: f"{v:.1f} s" for k2, v in m.timings.items()}
    last = ((inp.store_manifest.stats if inp.store_manifest else None) or {}).get("seconds_last_run")
    if last and "extract" in timings and m.timings.get("extract", 0) < 0.5 * last:
        timings["extract"] += f" (features cached; extracting them took {last:.0f} s)"
    timings["report (this page)"] = f"{extra['report_seconds']:.1f} s"
    grid = Raw(f'<div class="grid"><div><h3>Selection</h3>{kv_table(sel)}<h3>Data</h3>{kv_table(data)}</div>'
               f"<div><h3>Model and features</h3>{kv_table(fx)}<h3>Timings</h3>{kv_table(timings)}</div></div>")
    return section("summary", "Summary", Raw(f'<div class="cards">{card_html}</div>'), grid)


def map_section(uri: str, projection: str, source: str) -> str:
    cap = (f"Each dot is one example of the pool, placed by a 2-D {projection.upper()} of the features "
           f"({source}). Left: the core in red. Right: the same map coloured by k-means cluster "
           "(numbers as in the Clusters section).")
    return section("map", "Map of the pool", figure(uri, "2-D map of the pool with the core highlighted", cap))


def coverage_section(uri: str, prefixes: Sequence[int], picks: np.ndarray | None, rnd: np.ndarray | None,
                     mean_picks: np.ndarray | None, mean_rnd: np.ndarray | None, *, method: str,
                     from_manifest: bool) -> str:
    intro = para("The covering radius after k picks is the largest distance from any pool example to its "
                 "nearest pick: how far the worst-covered example is from the core. Lower is better; "
                 "k-center greedy minimises it directly. The dashed line and the random columns: uniform random "
                 "picks on the same features, the mean of 5 seeds, for reference." + (" The solid line is the radius recorded by the "
                                                    "selection itself (manifest coverage_curve)." if from_manifest else ""))
    headers = ["picked", f"radius ({method})", "radius (random)", f"mean distance ({method})",
               "mean distance (random)"]
    rows = []
    for i, p in enumerate(prefixes):
        rows.append([fmt_num(int(p)), *(fmt_num(float(a[i])) if a is not None else "–"
                                        for a in (picks, rnd, mean_picks, mean_rnd))])
    return section("coverage", "Coverage curve", intro, figure(uri, "covering radius vs number picked"),
                   table(headers, rows, num_cols=range(5)))


def lengths_section(uri: str, pool: dict[str, np.ndarray], core: dict[str, np.ndarray], unit: str,
                    note: str) -> str:
    rows = []
    for name in pool:
        for who, a in (("pool", pool[name]), ("core", core[name])):
            a = a.astype(float)
            rows.append([name, who, f"{np.median(a):.0f}", f"{a.mean():.1f}", f"{np.percentile(a, 90):.0f}",
                         f"{a.max():.0f}"])
    t = table(["text", "set", "median", "mean", "p90", "max"], rows, num_cols=range(2, 6))
    return section("lengths", "Length distributions", para(note),
                   figure(uri, "prompt and response length histograms, pool vs core"), t)


def _example_html(ex: Example, rank: int | None) -> str:
    tag = f' <span class="tag">core #{rank}</span>' if rank is not None else ""
    return Raw(f'<div class="ex{" in" if rank is not None else ""}"><b>#{ex.source_index}</b>{tag} '
               f"{esc(truncate(ex.prompt, 160))} <span class=\"note\">→ {esc(truncate(ex.response, 90))}</span></div>")


def clusters_section(uri: str, sizes: np.ndarray, core_sizes: np.ndarray, examples: list[list[int]],
                     dataset: Sequence[Example], rank_of: dict[int, int], *, show: int = 20) -> str:
    """Cluster shares in pool vs core, with three examples (nearest the centroid) per cluster."""
    n, k = sizes.sum(), max(core_sizes.sum(), 1)
    rows = []
    for c in range(min(show, len(sizes))):
        ps, cs = sizes[c] / n, core_sizes[c] / k
        ex = Raw("".join(_example_html(dataset[i], rank_of.get(i)) for i in examples[c]))
        rows.append([c + 1, f"{sizes[c]:,} ({_pct(ps)})", f"{core_sizes[c]:,} ({_pct(cs)})",
                     f"{cs / ps:.2f}×" if ps else "–", ex])
    intro = para(f"k-means with k={len(sizes)} on the features (fixed seed), clusters numbered by size, "
                 "each with the three examples nearest its centre (#: 0-based record in the input; "
                 "red bar: in the core). A coverage selection over-samples small or spread-out clusters and "
                 "under-samples dense ones, so a core/pool ratio far from 1 is expected; a cluster with no "
                 "pick is not.")
    return section("clusters", "Clusters", intro, figure(uri, "cluster shares in pool and core"),
                   table(["cluster", "pool", "core", "core / pool", "examples nearest the centre"], rows,
                         id="clusters-table", num_cols=range(4)))


def labels_section(stats: list[LabelStats], uris: list[str], k: int, auto: bool) -> str:
    if not stats:
        why = ("no string column named category, task, template or label with fewer than 500 values"
               if auto else "label columns switched off")
        return section("labels", "Labels", para(f"No label columns ({why}); pass --label-columns COL,... to "
                                                 "show the coverage of any column."))
    rows = [[s.column, fmt_num(s.n_pool), fmt_num(s.n_covered), _pct(s.n_covered / max(s.n_pool, 1)),
             f"{s.expected_random:.1f}", f"{s.balance:.3f}", f"{s.random_balance:.3f}", f"{s.pool_balance:.3f}"]
            for s in stats]
    intro = para(f"Labels are shown, never used to select. Coverage: labels with at least one pick; random: "
                 f"what a uniform random sample of {k:,} scores on average (labels covered: exact; balance: mean "
                 "of 5 seeds). Balance: the normalised entropy of the core's label shares over the pool's labels "
                 "(1 = every label equally often, 0 = one label; higher is more even); a random sample's is "
                 "about the pool's own.")
    parts = [intro, table(["column", "labels in pool", "covered by core", "coverage", "covered by random",
                           "balance", "balance of random", "balance of pool"], rows, num_cols=range(1, 8))]
    for s, uri in zip(stats, uris):
        missing = [lab for lab, c in zip(s.labels, s.core_counts) if c == 0]
        parts.append(Raw(f"<h3>{esc(s.column)}</h3>"))
        parts.append(figure(uri, f"pool vs core share of {s.column}",
                            f"top {min(20, s.n_pool)} of {s.n_pool} labels by pool share"))
        if missing:
            shown = ", ".join(truncate(lab, 60) for lab in missing[:30])
            more = f" and {len(missing) - 30} more" if len(missing) > 30 else ""
            parts.append(para(f"Not covered ({len(missing)}): {shown}{more}"))
    return section("labels", "Labels", *parts)


def records_section(inp: ReportInputs, clusters: np.ndarray, label_cols: list[str], max_rows: int) -> str:
    """The picks in pick order, with a search box that only appears when scripts run."""
    indices = inp.manifest.indices or [inp.dataset.examples[r].source_index for r in inp.rows.tolist()]
    rows = []
    shown = inp.rows[:max_rows].tolist()
    for rank, r in enumerate(shown):
        ex = inp.dataset.examples[r]
        rows.append([rank + 1, indices[rank], int(clusters[r]) + 1,
                     *(truncate(label_value(ex.record, c), 60) for c in label_cols),
                     truncate(ex.prompt, 300), truncate(ex.response, 300)])
    headers = ["rank", "record", "cluster", *label_cols, "instruction / prompt", "response"]
    note = (f"All {len(inp.rows):,} picks in pick order" if len(shown) == len(inp.rows)
            else f"The first {len(shown):,} of {len(inp.rows):,} picks (raise --max-rows to show more)")
    note += ("; record = 0-based position in the input file; texts cut to 300 characters.")
    search = Raw('<p><input id="q" type="search" placeholder="filter rows…" aria-label="filter rows" hidden>'
                 '<span id="qn" class="note"></span></p>')
    return section("picks", "Selected records", para(note), search,
                   table(headers, rows, id="picks", num_cols=(0, 1, 2)))


__all__ = ["clusters_section", "coverage_section", "labels_section", "lengths_section", "map_section",
           "records_section", "summary"]
