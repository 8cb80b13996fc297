"""Headless Chromium for the report tests: the DOM after scripts ran, and a screenshot of the page."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=30000"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise RuntimeError("no Chromium found: `make test` installs Debian's chromium (apt-get install chromium)")


def _run(page: Path, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=180, check=True)


def rendered_dom(page: Path) -> str:
    return _run(page, "--dump-dom").stdout


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 5200) -> Path:
    _run(page, f"--window-size={width},{height}", f"--screenshot={png.resolve()}")
    return png
