"""``cryolive bfactor``: refine nested subsets of simulated particles (refine3d), fit the
B-factor plot; the resolution improves with the count, the PNG and table are written; bad
counts are refused before any refinement."""

from __future__ import annotations

from pathlib import Path

import pytest
import starfile
from typer.testing import CliRunner

from cryolive.cli import build_app

# refine3d on simulated particles: tens of seconds on the 2-core machine
pytestmark = pytest.mark.slow


def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args), env={"COLUMNS": "200", **(env or {})})
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim_bfactor")
    code, output = _run(
        "simulate-particles3d", "--out", str(out), "--count", "400", "--box", "24",
        "--pixel", "3", "--snr", "0.5", "--projection", "fourier", "--seed", "3",
    )  # fmt: skip
    assert code == 0, output
    return out


def test_bfactor_plot_from_subset_refinements(sim: Path, tmp_path: Path) -> None:
    out = tmp_path / "bfactor"
    code, output = _run(
        "bfactor", str(sim / "particles.star"), "--ref", str(sim / "truth.mrc"),
        "--out", str(out), "--counts", "100,200,400", "--iterations", "2", "--lowpass", "25",
    )  # fmt: skip
    assert code == 0, output
    assert "B-factor" in output
    assert (out / "bfactor.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tables = starfile.read(out / "bfactor.star", always_dict=True)
    rows = tables["bfactor"]
    assert list(rows["particles"]) == [100, 200, 400]
    res = list(rows["resolution_a"])
    assert res[0] > res[-1]  # more particles, finer resolution
    assert float(tables["general"]["bfactor_a2"]) > 0

    # the same refinements as jobs (the local runner: all three at once) give the same numbers
    jobs_out = tmp_path / "as_jobs"
    code, output = _run(
        "bfactor", str(sim / "particles.star"), "--ref", str(sim / "truth.mrc"),
        "--out", str(jobs_out), "--counts", "100,200,400", "--iterations", "2", "--lowpass", "25",
        "--jobs", env={"CRYOLIVE_JOBS__RUNNER": "local"},
    )  # fmt: skip
    assert code == 0, output
    as_jobs = starfile.read(jobs_out / "bfactor.star", always_dict=True)["bfactor"]
    assert list(as_jobs["resolution_a"]) == pytest.approx(res, abs=1e-3)
    for n in (100, 200, 400):
        folder = jobs_out / f"subset_{n}"
        assert (folder / "refine" / "fsc.star").is_file()
        assert len(starfile.read(folder / "particles.star", always_dict=True)["particles"]) == n
        assert list(folder.glob(f"refine3d_{n}-local-*.out"))


def test_bad_counts_are_refused(sim: Path, tmp_path: Path) -> None:
    base = ["bfactor", str(sim / "particles.star"), "--ref", str(sim / "truth.mrc")]
    base += ["--out", str(tmp_path / "o")]
    code, output = _run(*base, "--counts", "100,800")
    assert code == 2 and "400 particles" in output
    code, output = _run(*base, "--counts", "200")
    assert code == 2 and "two different" in output
    code, output = _run(*base, "--counts", "a,b")
    assert code == 2 and "whole numbers" in output
    code, output = _run(*base[:2], "--ref", str(tmp_path / "none.mrc"), "--out", str(tmp_path))
    assert code == 2 and "no such file" in output
