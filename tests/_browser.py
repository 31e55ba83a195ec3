"""Rendering a self-contained HTML page in headless Chromium (tests marked ``browser``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                   "chrome", "chrome-headless-shell")


def _chromium() -> str | None:
    """A Chromium binary: $BAYESCLV_CHROMIUM, one on PATH, or Playwright's own build."""
    given = os.environ.get("BAYESCLV_CHROMIUM")
    if given:
        return given
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    try:
        with sync_playwright() as playwright:
            path = playwright.chromium.executable_path
    except Exception:  # noqa: BLE001 - any failure means no usable browser
        return None
    return path if path and os.path.exists(path) else None


def assert_renders(page: Path, tmp_path: Path) -> None:
    """Screenshot ``page`` in headless Chromium: text, tables and drawn figures, not blank.

    Skips (with how to install one) when no Chromium is found.
    """
    import matplotlib.image

    browser = _chromium()
    if browser is None:
        pytest.skip("no headless Chromium found: install Debian's 'chromium' package "
                    "(apt-get install chromium), or set BAYESCLV_CHROMIUM to a Chrome or "
                    "Chromium binary, or pip install playwright && playwright install chromium")
    shot = tmp_path / "page.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400",
               f"--screenshot={shot}", page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), f"Chromium wrote no screenshot (exit {done.returncode}):\n" \
                          f"{done.stderr[-2000:]}"
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1280)
    non_white = (pixels < 0.95).any(axis=-1)
    assert non_white.mean() > 0.05  # text, tables and figures, not a blank page
    assert pixels.std() > 0.1
    # The embedded figures are drawn: many distinct colours (plain text has few).
    colours = np.unique((pixels[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200
