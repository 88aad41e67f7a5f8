"""The report in a real browser (headless Chromium): it renders, scripts from the data never run."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import XSS_IMG, XSS_SCRIPT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install chromium)")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def test_screenshot_is_not_blank(synthetic_run, tmp_path):
    png = tmp_path / "shot.png"
    r = _chromium(tmp_path, f"--screenshot={png}", "--window-size=1280,2000",
                  synthetic_run["report"].as_uri())
    assert png.is_file(), r.stderr[-2000:]
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[:2] == (2000, 1280)
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colors = np.unique(rgb, axis=0)
    assert len(colors) > 200  # text, plots, table stripes: far from a blank page
    assert rgb.std() > 20
    # the core colour of the plots is there
    red = (rgb[:, 0] > 180) & (rgb[:, 1] < 110) & (rgb[:, 2] < 120)
    assert red.sum() > 500


def test_payloads_do_not_run(synthetic_run, tmp_path):
    """Both payloads would set the title to 'pwned'; the DOM keeps the title and shows them as text."""
    r = _chromium(tmp_path, "--dump-dom", "--virtual-time-budget=3000", synthetic_run["report"].as_uri())
    dom = r.stdout
    assert "</html>" in dom, r.stderr[-2000:]
    assert "<title>coreselect report: pool.jsonl</title>" in dom
    assert "pwned</title>" not in dom
    assert "<img src=\"x\"" not in dom and "<img src=x" not in dom
    assert html.escape(XSS_SCRIPT, quote=False) in dom and html.escape(XSS_IMG, quote=False) in dom
    # our own (hash-allowed) script ran: it un-hides the search box
    assert '<input id="q" type="search" placeholder="filter rows…" aria-label="filter rows">' in dom
