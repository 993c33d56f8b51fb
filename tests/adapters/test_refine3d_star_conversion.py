"""The RELION 3D adapters' file conversion, without RELION: a data STAR file as RELION writes
it (rows in another order, image names relative to where RELION ran) becomes cryolive's
run_data.star in the input's order, with RELION's angles, origins and classes, image names
valid from the new folder; bad input is a ValueError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile

from cryolive.adapters.relion_refine3d._star import (
    ANGLES,
    ORIGINS,
    in_input_order,
    last_iteration,
    read_input,
    write_data,
)
from cryolive.io.outputs.recon3d import read_angles

OPTICS = pd.DataFrame(
    {
        "rlnOpticsGroup": [1],
        "rlnImagePixelSize": [4.0],
        "rlnImageSize": [24],
        "rlnVoltage": [300.0],
        "rlnSphericalAberration": [2.7],
        "rlnAmplitudeContrast": [0.1],
    }
)


def _input(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    particles = pd.DataFrame(
        {
            "rlnImageName": [f"{i + 1:06d}@particles.mrcs" for i in range(n)],
            "rlnOpticsGroup": 1,
            "rlnDefocusU": 15000.0 + np.arange(n),
            "rlnDefocusV": 15000.0,
            "rlnDefocusAngle": 0.0,
            "rlnMicrographName": [f"mic{i}.mrc" for i in range(n)],
        }
    )
    star = folder / "particles.star"
    starfile.write({"optics": OPTICS, "particles": particles}, star, overwrite=True)
    return star


def test_relion_rows_come_back_in_input_order_with_their_poses(tmp_path: Path) -> None:
    star = _input(tmp_path / "run")
    given = read_input(star)
    assert (given.count, given.box_px, given.pixel_size_a) == (4, 24, 4.0)
    order = [2, 0, 3, 1]  # RELION's order
    relion = given.tables.particles.iloc[order].reset_index(drop=True)
    for k, name in enumerate(ANGLES):
        relion[name] = [10.0 * i + k for i in order]
    relion["rlnOriginXAngst"] = [1.0 * i for i in order]
    relion["rlnOriginYAngst"] = [-2.0 * i for i in order]
    relion["rlnClassNumber"] = [1 + i % 2 for i in order]
    relion_star = tmp_path / "run" / "relion" / "run_it003_data.star"
    relion_star.parent.mkdir()
    starfile.write({"optics": OPTICS, "particles": relion}, relion_star, overwrite=True)
    (relion_star.parent / "run_it001_data.star").write_text("")
    assert last_iteration(relion_star.parent / "run") == 3
    rows = in_input_order(relion_star, given, (*ANGLES, *ORIGINS, "rlnClassNumber"))
    out = write_data(
        tmp_path / "out" / "Class3D" / "run_data.star", given, rows, columns=("rlnClassNumber",)
    )
    written = starfile.read(out, always_dict=True)["particles"]
    assert written["rlnImageName"].tolist() == [
        f"{i + 1:06d}@../../run/particles.mrcs" for i in range(4)
    ]
    expected = [[10.0 * i, 10.0 * i + 1, 10.0 * i + 2] for i in range(4)]
    np.testing.assert_allclose(read_angles(out), expected)
    np.testing.assert_allclose(written["rlnOriginXAngst"], [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(written["rlnOriginYAngst"], [0.0, -2.0, -4.0, -6.0])
    assert written["rlnClassNumber"].tolist() == [1, 2, 1, 2]
    assert written["rlnMicrographName"].tolist() == ["mic0.mrc", "mic1.mrc", "mic2.mrc", "mic3.mrc"]
    # a particle RELION never saw, or one it made up, is an error naming the file
    starfile.write({"optics": OPTICS, "particles": relion.iloc[:3]}, relion_star, overwrite=True)
    with pytest.raises(ValueError, match=r"run_it003_data\.star: particles do not match"):
        in_input_order(relion_star, given, ANGLES)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("data_particles\nloop_\n_rlnImageName #1\n1@a.mrcs\n", "data_optics and data_particles"),
    ],
)
def test_bad_input_is_refused_before_relion_runs(
    tmp_path: Path, content: str | None, message: str
) -> None:
    star = tmp_path / "particles.star"
    if content is not None:
        star.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_input(star)


def test_a_missing_ctf_column_is_named(tmp_path: Path) -> None:
    star = _input(tmp_path)
    tables = starfile.read(star, always_dict=True)
    starfile.write(
        {"optics": tables["optics"], "particles": tables["particles"].drop(columns="rlnDefocusV")},
        star,
        overwrite=True,
    )
    with pytest.raises(ValueError, match="lacks rlnDefocusV"):
        read_input(star)
