"""``cryolive pick`` and ``cryolive extract`` on files, and RELION reading what they write."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import mrcfile
import numpy as np
import pytest
import starfile
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.engines.picking import score_picks
from cryolive.io.particle_files import read_coordinates


@pytest.fixture(scope="module")
def planted_file(picking_truth: ModuleType, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    # the easy preset: these test the command's files, not the picker's accuracy
    planted = picking_truth.planted_micrograph(
        np.random.default_rng(11), density=0.2, preset="easy"
    )
    path = tmp_path_factory.mktemp("mics") / "FoilHole_1_Data_2.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(planted.micrograph)
        mrc.voxel_size = planted.pixel_size_a
    return path, planted


def _run(args: list[str]) -> str:
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("fmt", ["star", "json"])
def test_pick_writes_coordinates_and_overlay(planted_file, tmp_path: Path, fmt: str) -> None:  # type: ignore[no-untyped-def]
    path, planted = planted_file
    args = ["pick", str(path), "--out", str(tmp_path), "--format", fmt]
    _run([*args, "--diameter-min", "60", "--diameter-max", "100"])
    coords = tmp_path / f"{path.stem}_autopick.{fmt}"
    x, y = read_coordinates(coords)
    score = score_picks(np.stack([x, y], 1), planted.positions_px[:, ::-1], max_distance_px=45)
    assert score.f1 >= 0.95  # measured 1.00
    if fmt == "json":
        assert set(json.loads(coords.read_text())[0]) == {"x_px", "y_px", "score", "diameter_a"}
    png = (tmp_path / f"{path.stem}_picks.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[25] == 2  # colour type 2: RGB


def test_extract_writes_relion_31_particles(
    planted_file,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    need_service: Callable[[str, str], None],
) -> None:
    path, _ = planted_file
    picks = tmp_path / "picks"
    _run(["pick", str(path), "--out", str(picks), "--diameter-min", "60", "--diameter-max", "100"])
    out = tmp_path / "extract"
    _run(["extract", str(path), "--coords", str(picks), "--out", str(out), "--diameter", "90",
          "--rescale", "64", "--defocus", "15000"])  # fmt: skip
    star = starfile.read(out / "particles.star", always_dict=True)
    assert set(star) == {"optics", "particles"}
    optics, particles = star["optics"], star["particles"]
    assert optics["rlnImageSize"][0] == 64
    assert optics["rlnImagePixelSize"][0] == pytest.approx(136 / 64)  # box 1.5 x 90 Å -> 136 px
    with mrcfile.open(out / f"{path.stem}.mrcs") as mrc:
        stack = np.array(mrc.data)
    assert stack.shape == (len(particles), 64, 64)
    assert particles["rlnImageName"][0] == f"000001@{path.stem}.mrcs"
    assert set(particles["rlnDefocusU"]) == {15000.0}
    if shutil.which("relion_stack_create") is None:
        need_service("relion", "relion_stack_create is not on PATH")
        return
    done = subprocess.run(
        ["relion_stack_create", "--i", "particles.star", "--o", "relion_copy"],
        cwd=out, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with mrcfile.open(out / "relion_copy.mrcs") as mrc:
        copied = np.array(mrc.data)
    assert np.allclose(copied, stack, atol=1e-4)  # RELION read every image as written
