"""2D classification's files: planted classes and poses come back out of the STAR files in
RELION's conventions (read back through the RELION adapter's own reader), RELION reads them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile

from cryolive.adapters.relion_class2d._star import read_iteration
from cryolive.engines.class2d import Class2DResult
from cryolive.io.outputs.class2d import write_class2d_outputs
from cryolive.io.particle_files import write_stack

N, K, BOX = 30, 4, 24


def _result(rng: np.random.Generator) -> Class2DResult:
    assignment = np.arange(N) % K
    assignment[:6] = 0  # class 1 (0-based 0) holds the most particles
    counts = np.bincount(assignment, minlength=K)
    averages = rng.standard_normal((K, BOX, BOX)).astype(np.float32)
    return Class2DResult(
        averages=averages,
        pixel_size_a=3.5,
        assignment=assignment.astype(np.int64),
        psi_deg=rng.uniform(0, 360, N),
        shift_a=rng.uniform(-8, 8, (N, 2)),
        probability=rng.uniform(0.3, 1, N),
        particles_per_class=counts.astype(np.int64),
        resolution_a=np.array([12.5, np.inf, 30.0, 18.0]),
        score=np.array([0.9, 0.0, 0.2, 0.7]),
        selected=np.array([True, False, False, True]),
        iterations=7,
    )


def _tables(folder: Path, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    write_stack(
        folder / "parts.mrcs", rng.standard_normal((N, 32, 32)).astype(np.float32), pixel_size_a=2
    )
    optics = pd.DataFrame(
        {
            "rlnOpticsGroupName": ["opticsGroup1"], "rlnOpticsGroup": [1],
            "rlnMicrographOriginalPixelSize": [1.0], "rlnVoltage": [300.0],
            "rlnSphericalAberration": [2.7], "rlnAmplitudeContrast": [0.07],
            "rlnImagePixelSize": [2.0], "rlnImageSize": [32], "rlnImageDimensionality": [2],
        }
    )  # fmt: skip
    rows = pd.DataFrame(
        {
            "rlnImageName": [f"{i + 1:06d}@parts.mrcs" for i in range(N)],
            "rlnOpticsGroup": 1,
            "rlnDefocusU": rng.uniform(8000, 20000, N).round(1),
            "rlnDefocusV": 15000.0,
            "rlnDefocusAngle": 10.0,
            "rlnClassNumber": 99,  # an earlier classification's: replaced
        }
    )
    return optics, rows


def test_files_carry_classes_and_relion_poses(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    result = _result(rng)
    optics, rows = _tables(tmp_path, rng)
    files = write_class2d_outputs(
        result, tmp_path, particle_rows=rows, optics=optics, stem="run_it007"
    )
    with mrcfile.open(files.classes) as mrc:
        np.testing.assert_array_equal(mrc.data, result.averages)
        assert float(mrc.voxel_size.x) == pytest.approx(3.5)
    # The adapter's reader of RELION's output takes our files for RELION's: same classes and
    # poses (psi = -rlnAnglePsi, shift = -origin) as planted.
    back = read_iteration(tmp_path / "run", 7, image_names=list(rows["rlnImageName"]))
    np.testing.assert_array_equal(back.assignment, result.assignment)
    turned = (back.psi_deg - result.psi_deg + 180.0) % 360.0 - 180.0
    assert np.abs(turned).max() < 1e-3
    np.testing.assert_allclose(back.shift_a, result.shift_a, atol=1e-3)
    np.testing.assert_allclose(back.probability, result.probability, atol=1e-5)
    np.testing.assert_allclose(back.resolution_a, result.resolution_a, atol=1e-3)
    model = starfile.read(files.model, always_dict=True)
    classes = model["model_classes"]
    assert list(classes["rlnReferenceImage"]) == [
        f"{c:06d}@run_it007_classes.mrcs" for c in (1, 2, 3, 4)
    ]
    np.testing.assert_allclose(
        classes["rlnClassDistribution"], result.class_distribution, atol=1e-6
    )
    ours = model["cryolive_classes"]
    np.testing.assert_array_equal(ours["cryoliveParticles"], result.particles_per_class)
    np.testing.assert_array_equal(ours["cryoliveSelected"], [1, 0, 0, 1])
    np.testing.assert_allclose(ours["cryoliveScore"], result.score)
    data = starfile.read(files.data, always_dict=True)
    assert len(data["particles"]) == N
    np.testing.assert_array_equal(data["particles"]["rlnDefocusU"], rows["rlnDefocusU"])
    assert data["optics"]["rlnImagePixelSize"][0] == 2.0
    chosen = starfile.read(files.selected_data, always_dict=True)["particles"]
    keep = result.selected[result.assignment]
    assert list(chosen["rlnImageName"]) == list(rows["rlnImageName"][keep])
    assert set(chosen["rlnClassNumber"]) == {1, 4}


def test_pngs_one_per_class_and_montage_most_particles_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    result = _result(rng)
    optics, rows = _tables(tmp_path, rng)
    files = write_class2d_outputs(result, tmp_path / "out", particle_rows=rows, optics=optics)
    assert [p.name for p in files.class_pngs] == [f"class_00{c}.png" for c in (1, 2, 3, 4)]
    for path in (*files.class_pngs, files.montage):
        png = path.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[25] == 0  # colour type 0: greyscale
    width = int.from_bytes(files.class_pngs[0].read_bytes()[16:20], "big")
    assert width == 4 * BOX  # 24 px enlarged 4x to reach 96 px
    montage = files.montage.read_bytes()
    w, h = int.from_bytes(montage[16:20], "big"), int.from_bytes(montage[20:24], "big")
    assert (w, h) == (2 * 96 + 2, 2 * 96 + 2)  # 4 classes: 2 x 2 tiles, 2 px apart


def test_montage_puts_largest_class_first() -> None:
    from cryolive.io.outputs.class2d import montage

    result = _result(np.random.default_rng(7))
    grid = montage(result)
    tile = grid[:96:4, :96:4]
    from cryolive.io.png import to_uint8

    np.testing.assert_array_equal(tile, to_uint8(result.averages[0]))


def test_bad_input_is_named(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    result = _result(rng)
    optics, rows = _tables(tmp_path, rng)
    with pytest.raises(ValueError, match="particle_rows: need one row per particle"):
        write_class2d_outputs(result, tmp_path, particle_rows=rows[:-1], optics=optics)
    with pytest.raises(ValueError, match="optics"):
        write_class2d_outputs(result, tmp_path, particle_rows=rows, optics=optics.iloc[:0])
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError, match="out_dir: cannot write"):
        write_class2d_outputs(result, blocker / "out", particle_rows=rows, optics=optics)


def test_relion_reads_the_data_star(
    tmp_path: Path, need_service: Callable[[str, str], None]
) -> None:
    if shutil.which("relion_stack_create") is None:
        need_service("relion", "relion_stack_create is not on PATH")
        return
    rng = np.random.default_rng(9)
    result = _result(rng)
    optics, rows = _tables(tmp_path, rng)
    files = write_class2d_outputs(result, tmp_path, particle_rows=rows, optics=optics)
    for command in (
        ["relion_star_handler", "--i", files.selected_data.name, "--o", "copy.star"],
        ["relion_stack_create", "--i", files.data.name, "--o", "restacked"],
    ):
        done = subprocess.run(
            command, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
    copy = starfile.read(tmp_path / "copy.star", always_dict=True)["particles"]
    assert len(copy) == int(result.selected[result.assignment].sum())
    with mrcfile.open(tmp_path / "restacked.mrcs") as mrc:
        assert mrc.data.shape == (N, 32, 32)
