"""The frozen desktop app (app.spec), built by `make bundle` or reused when built from this very commit."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import pytest

from test_desktop import Desktop, run_scenario, wait_for

pytestmark = [pytest.mark.bundle, pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "dist" / "fraud-app"
LIMIT = 350_000_000  # bytes, unpacked


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def bundle() -> Path:
    exe = FOLDER / ("fraud-app.exe" if platform.system() == "Windows" else "fraud-app")
    stamp = ROOT / "build" / "bundle-commit.txt"
    commit = "" if _git("status", "--porcelain", "--", "fraud_app", "app.spec", "pyproject.toml") else _git(
        "rev-parse", "HEAD")
    if not (commit and exe.is_file() and stamp.is_file() and stamp.read_text().strip() == commit):
        subprocess.run(["make", "bundle"], cwd=ROOT, check=True, timeout=1800)
    return exe


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_the_bundle_fits_and_has_its_archive(bundle):
    assert size(FOLDER) <= LIMIT, f"{size(FOLDER) / 1e6:.0f} MB"
    archives = list(FOLDER.parent.glob("fraud-app-*-*-*.tar.gz")) + list(FOLDER.parent.glob("fraud-app-*-*-*.zip"))
    assert archives and all(a.stat().st_mtime >= bundle.stat().st_mtime - 600 for a in archives)


def test_the_browser_starts_without_the_bundles_libraries(bundle, tmp_path):
    # The bundle's loader points LD_LIBRARY_PATH at its own libraries; a browser must not inherit that.
    desktop = Desktop([str(bundle)], tmp_path, tmp_path / "data", FRAUD_APP_HOME=str(tmp_path))
    seen = tmp_path / "browser-env.txt"
    script = tmp_path / "browser"
    script.write_text(f"#!/bin/sh\nenv > '{seen}'\necho \"$1\" >> '{desktop.opened}'\n")
    proc, link, _ = desktop.launch()
    try:
        opened = wait_for("the browser", lambda: seen.exists() and desktop.opened.exists() and seen.read_text())
    finally:
        proc.terminate()
        assert proc.wait(timeout=300) == 0
    library_path = [line for line in opened.splitlines() if line.startswith("LD_LIBRARY_PATH=")]
    assert not any(str(FOLDER) in line for line in library_path) and link in desktop.opened.read_text()


def test_the_desktop_app_from_the_bundle(bundle, tmp_path, page):
    # With no FRAUD_APP_HOME, the frozen app keeps its data in the user's data folder (platformdirs).
    data = tmp_path / "home" / ".local" / "share" / "fraud_app" / "data"
    run_scenario(Desktop([str(bundle)], tmp_path, data), page)
