"""The Dockerfile's install step, run for real: a regular (non-editable) install into a new virtual
environment, whose forumlive must find its templates, static files and migrations without the source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx2

from tests.conftest import wait_for_http
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_regular_install_serves_pages_from_the_package(tmp_path: Path) -> None:
    """scripts/install.sh with EDITABLE=0 (as in the Dockerfile) gives a forumlive that seeds and serves."""
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".venv", ".git", "data", "tests", "*.egg-info", "__pycache__", "build"),
    )
    venv = tmp_path / "venv"
    env = {**os.environ, "VENV": str(venv), "EDITABLE": "0"}
    subprocess.run(["sh", "scripts/install.sh"], cwd=source, env=env, check=True, capture_output=True, timeout=600)
    shutil.rmtree(source)  # the installed copy must stand on its own
    forumlive = str(venv / "bin" / "forumlive")
    data_dir = tmp_path / "data"
    seeded = subprocess.run(
        [forumlive, "demo", "--no-serve", "--data-dir", str(data_dir)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert seeded.returncode == 0, seeded.stderr
    port = free_port()
    server = subprocess.Popen(
        [forumlive, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", server)
        page = httpx2.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200 and "WSIS Forum" in page.text
        assert httpx2.get(f"http://127.0.0.1:{port}/static/site.css").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
