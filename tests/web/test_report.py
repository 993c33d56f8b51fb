"""The session report of the processed test visit: made through the web (members only) and
the command line, converted to images with pdftoppm and looked at: its pages, and pictures on
them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import image as mpimg
from typer.testing import CliRunner

from cryolive.cli import build_app

needs_pdftoppm = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed"
)


def _pages(pdf: Path, folder: Path) -> list[np.ndarray]:
    """The PDF's pages as RGB arrays in [0, 1] (pdftoppm at 50 dpi), in order."""
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(folder / "page")], check=True)
    return [np.asarray(mpimg.imread(p))[..., :3] for p in sorted(folder.glob("page-*.png"))]


def _inked(page: np.ndarray) -> float:
    """The fraction of a page's pixels that are not white."""
    return float(np.mean(page.min(axis=-1) < 0.9))


def _coloured(page: np.ndarray) -> float:
    """The fraction of pixels with colour (not grey): plotted points, bounds, the atlas's
    squares."""
    return float(np.mean(page.max(axis=-1) - page.min(axis=-1) > 0.2))


@needs_pdftoppm
def test_the_report_has_its_pages_and_pictures(clients: Any, world: Any, tmp_path: Path) -> None:
    member, _ = clients["member"]
    response = member.get(f"/visits/{world.visit}/report.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert f'filename="{world.visit}-report.pdf"' in response.headers["content-disposition"]
    again = member.get(f"/visits/{world.visit}/report.pdf")  # within a minute: the same one
    assert again.content == response.content
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    pages = _pages(pdf, tmp_path)
    # title; raw: series, histograms, atlas, classes, 3D; then the visit's other collections
    # (raw2: series, histograms; more when other tests of the session add some); the jobs
    assert len(pages) >= 9
    assert all(_inked(p) > 0.01 for p in pages)  # no blank page
    title, series, histograms, atlas, classes, recon3d = pages[:6]
    jobs = pages[-1]
    assert _inked(recon3d) > 0.02  # the 3D runs' and refinements' lines and the B-factor plot
    assert _coloured(series) > 0.002 and _coloured(title) < 0.001  # points and bounds in colour
    assert _inked(histograms) > 0.1  # the bars
    assert _coloured(atlas) > 0.02 and _inked(atlas) > 0.3  # the atlas, its coloured squares
    assert _inked(classes) > 0.2  # three class averages
    assert _inked(jobs) > 0.02
    # the figure areas hold the pictures: the atlas in the middle of its page
    h, w = atlas.shape[:2]
    assert _inked(atlas[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]) > 0.5


def test_the_report_is_for_members_only(clients: Any, world: Any) -> None:
    outsider, _ = clients["outsider"]
    assert outsider.get(f"/visits/{world.visit}/report.pdf").status_code == 403
    member, _ = clients["member"]
    assert member.get("/visits/zz1-1/report.pdf").status_code == 404
    assert 'href="/visits/bi10001-1/report.pdf"' in member.get(f"/visits/{world.visit}").text


def test_report_command_writes_the_pdf_and_refuses_bad_input(world: Any, tmp_path: Path) -> None:
    env = {"CRYOLIVE_DATABASE_URL": world.url}
    out = tmp_path / "report.pdf"
    done = CliRunner().invoke(build_app(), ["report", world.visit, "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())
    assert int(said.split(" pages")[0].split()[-1]) >= 9 and out.read_bytes().startswith(b"%PDF")
    unknown = CliRunner().invoke(build_app(), ["report", "zz1-1", "--out", str(out)], env=env)
    assert unknown.exit_code != 0 and "no visit" in unknown.output
    text = CliRunner().invoke(
        build_app(), ["report", world.visit, "--out", str(tmp_path / "r.txt")], env=env
    )
    assert text.exit_code != 0 and ".pdf" in text.output
