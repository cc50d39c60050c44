"""`forumlive report`: the key figures of a synthetic forum written as HTML, CSV, JSON and PDF (printed by
Debian's Chromium; the PDF's text is read back), with progress lines and clear errors."""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path

import pytest
from pypdf import PdfReader

from server.reports.synthetic import generate
from server.storage import migrate
from server.storage.db import Database
from tests.conftest import forumlive_command


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("report-cli")
    database = Database(f"sqlite:///{directory / 'forumlive.db'}")
    migrate.upgrade(database.engine)
    with database.session() as db:
        generate(db, sessions=60, visits=6000, countries=185, seed=11)
        db.commit()
    database.dispose()
    return directory


def _report(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [forumlive_command(), "report", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={"PATH": "/usr/bin:/bin", "FORUMLIVE_SECRET_KEY": "x" * 32},
    )


def test_json_csv_and_html(data_dir: Path, tmp_path: Path) -> None:
    done = _report(data_dir, "1", "--format", "json", "--out", str(tmp_path / "f.json"))
    assert done.returncode == 0, done.stderr
    assert "3/3 writing" in done.stderr  # progress, one line per step when not on a terminal
    figures = json.loads((tmp_path / "f.json").read_text())
    assert figures["published"] is True and figures["sessions"] == 60
    assert _report(data_dir, "1", "--format", "csv", "--out", str(tmp_path / "f.csv")).returncode == 0
    assert (tmp_path / "f.csv").read_text().startswith("section,item,value\n")
    assert _report(data_dir, "1", "--format", "html", "--out", str(tmp_path / "f.html")).returncode == 0
    html = (tmp_path / "f.html").read_text()
    assert "<style>" in html and 'href="/static/site.css"' not in html  # standalone
    assert html.count("<svg") >= 8


def test_pdf_is_readable(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "key-figures.pdf"
    done = _report(data_dir, "1", "--format", "pdf", "--out", str(out))
    assert done.returncode == 0, done.stderr
    # NFKC undoes the typographic ligatures Chromium's fonts use ("ﬁ" in "figures").
    text = unicodedata.normalize("NFKC", " ".join(page.extract_text() for page in PdfReader(out).pages))
    assert "key figures" in text and "Cumulative attendance" in text and "Regional distribution" in text
    assert "Download CSV" not in text  # links for the screen are not printed


def test_bad_forum_and_dates_are_refused(data_dir: Path, tmp_path: Path) -> None:
    done = _report(data_dir, "no-such-forum", "--out", str(tmp_path / "x.html"))
    assert done.returncode == 2 and "no forum 'no-such-forum'" in done.stderr
    done = _report(data_dir, "1", "--date-from", "June 1st", "--out", str(tmp_path / "x.html"))
    assert done.returncode == 2 and "YYYY-MM-DD" in done.stderr
    assert not (tmp_path / "x.html").exists()
