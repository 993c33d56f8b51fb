"""``cryolive motioncorr`` on simulated movies: the files the service writes, and broken movies
reported one by one without stopping the others."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.simulate import MovieConfig, VisitConfig, simulate_visit


@pytest.fixture(scope="module")
def visit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], Path, object]:
    folder = tmp_path_factory.mktemp("visit")
    movie = MovieConfig(n_frames=12, dose_e_per_a2=12.0, drift_total_px=3.0)
    config = VisitConfig(movies_per_grid=2, detector="tiny", format="mrc", seed=4, movie=movie)
    truth = simulate_visit(config, folder)
    grid = truth.grids[0]
    assert grid.gain.path is not None
    movies = [folder / m.movie for m in grid.movies]
    return folder, movies, folder / grid.gain.path, grid


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["motioncorr", *args])
    return result.exit_code, result.output


def test_writes_sums_drift_result_and_images(visit: tuple, tmp_path: Path) -> None:
    _, movies, gain, grid = visit
    code, output = _run(
        str(movies[0]), str(movies[1]), "--out", str(tmp_path), "--pixel-size", "1.0",
        "--dose-per-frame", "1.0", "--gain", str(gain), "--patches", "3x3",
    )  # fmt: skip
    assert code == 0, output
    assert f"rotate {grid.gain.rotate_deg} deg, flip {grid.gain.flip}" in output
    stem = movies[0].name.split(".")[0]
    with mrcfile.open(tmp_path / f"{stem}.mrc") as mrc:
        assert mrc.data.shape == (256, 256) and mrc.data.dtype == np.float32
        assert float(mrc.voxel_size.x) == pytest.approx(1.0)
    assert (tmp_path / f"{stem}_noDW.mrc").exists()
    drift = json.loads((tmp_path / f"{stem}.drift.json").read_text())
    planted_x = np.array(grid.movies[0].drift_x_px)
    found_x = np.array(drift["data"][0]["x"])
    assert found_x.shape == (12,) and found_x[0] == 0.0
    # A 256 px, 12-frame movie has little signal per frame: the path, not sub-pixel accuracy.
    assert abs(found_x[-1] - planted_x[-1]) < 1.0
    assert np.corrcoef(found_x, planted_x)[0, 1] > 0.8
    summary = json.loads((tmp_path / f"{stem}.motion.json").read_text())
    assert summary["total_motion_a"] > 0
    # 3 x 3 patches of a 256 px movie at 1 e/px would hold ~6e4 electrons per group of
    # frames, far below the 1e6 the engine asks for: whole-frame only, and it says why.
    assert summary["patches_used"] is None and summary["patches_x"] is None
    assert "whole-frame only" in summary["patch_note"]
    assert summary["converged"] is True and 1 <= summary["iterations"] < 20
    for suffix in ("snapshot", "spectrum"):
        assert (tmp_path / f"{stem}.{suffix}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_broken_movies_are_reported_and_the_rest_processed(visit: tuple, tmp_path: Path) -> None:
    _, movies, gain, _ = visit
    truncated = tmp_path / "truncated.mrc"
    truncated.write_bytes(movies[0].read_bytes()[: os.path.getsize(movies[0]) // 2])
    with mrcfile.open(movies[0]) as mrc:
        data = mrc.data.astype(np.float32)
    data[3, 5:9, 5:9] = np.nan
    nan_movie = tmp_path / "nan.mrc"
    with warnings.catch_warnings(), mrcfile.new(nan_movie) as mrc:
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile warns about the NaN planted
        mrc.set_data(data)
    out = tmp_path / "out"
    code, output = _run(
        str(truncated), str(nan_movie), str(movies[1]), "--out", str(out), "--pixel-size", "1.0",
        "--dose-per-frame", "1.0", "--frames", "12", "--gain", str(gain),
        "--gain-orientation", "0,none", "--patches", "none",
    )  # fmt: skip
    assert code == 1
    assert "truncated.mrc" in output and "truncated" in output.split("truncated.mrc", 1)[1]
    assert "frame 3 has 16 NaN" in " ".join(output.split())
    assert "2 of 3 movies failed" in output
    assert (out / f"{movies[1].name.split('.')[0]}.mrc").exists()


def test_wrong_frame_count_and_missing_gain_give_clear_errors(visit: tuple, tmp_path: Path) -> None:
    _, movies, _, _ = visit
    code, output = _run(str(movies[0]), "--out", str(tmp_path), "--pixel-size", "1.0",
                        "--dose-per-frame", "1.0", "--frames", "40")  # fmt: skip
    assert code == 1 and "has 12 frames but its metadata promises 40" in " ".join(output.split())
    missing = str(tmp_path / "gone.mrc")
    code, output = _run(str(movies[0]), "--out", str(tmp_path), "--pixel-size", "1.0",
                        "--dose-per-frame", "1.0", "--gain", missing)  # fmt: skip
    assert code == 2 and "no such file" in " ".join(output.split())


def test_bad_patch_grid_is_refused(visit: tuple, tmp_path: Path) -> None:
    _, movies, _, _ = visit
    code, output = _run(str(movies[0]), "--out", str(tmp_path), "--pixel-size", "1.0",
                        "--dose-per-frame", "1.0", "--patches", "five")  # fmt: skip
    assert code == 2 and "--patches" in output


@pytest.mark.skipif(shutil.which("relion_run_motioncorr") is None, reason="relion not installed")
def test_relion_engine_writes_the_same_files(tmp_path: Path) -> None:
    movie = MovieConfig(n_frames=12, dose_e_per_a2=12.0, drift_total_px=3.0)
    config = VisitConfig(movies_per_grid=1, detector="tiny", format="tiff", seed=5, movie=movie)
    truth = simulate_visit(config, tmp_path / "visit")
    path = tmp_path / "visit" / truth.grids[0].movies[0].movie
    code, output = _run(
        str(path), "--out", str(tmp_path / "out"), "--pixel-size", "1.0",
        "--dose-per-frame", "1.0", "--engine", "relion", "--patches", "none",
    )  # fmt: skip
    assert code == 0, output
    stem = path.name.split(".")[0]
    summary = json.loads((tmp_path / "out" / f"{stem}.motion.json").read_text())
    assert summary["engine"] == "relion" and len(summary["shifts_x_px"]) == 12
    with mrcfile.open(tmp_path / "out" / f"{stem}.mrc") as mrc:
        assert mrc.data.shape == (256, 256)


@pytest.mark.skipif(shutil.which("relion_run_motioncorr") is None, reason="relion not installed")
def test_relion_engine_reads_mrc_movies(visit: tuple, tmp_path: Path) -> None:
    _, movies, _, _ = visit
    assert movies[0].suffix == ".mrc"
    code, output = _run(
        str(movies[0]), "--out", str(tmp_path), "--pixel-size", "1.0",
        "--dose-per-frame", "1.0", "--engine", "relion", "--patches", "none",
        "--gain-orientation", "0,none",
    )  # fmt: skip
    assert code == 0, output
    summary = json.loads((tmp_path / f"{movies[0].stem}.motion.json").read_text())
    assert summary["engine"] == "relion" and len(summary["shifts_y_px"]) == 12
