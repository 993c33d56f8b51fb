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


def test_a_converged_auto_refine_becomes_refine3d_files(tmp_path: Path) -> None:
    """RELION's final files (names and blocks as a converged RELION 3.1.3 auto-refine writes
    them) → refined.mrc, half1.mrc, half2.mrc, run_data.star and fsc.star."""
    from cryolive.adapters.relion_refine3d._refine import _convert
    from cryolive.io.maps import read_map, write_map

    star = _input(tmp_path / "run")
    given = read_input(star)
    work = tmp_path / "Refine" / "relion"
    work.mkdir(parents=True)
    rng = np.random.default_rng(0)
    maps = {name: rng.normal(size=(24, 24, 24)).astype(np.float32) for name in ("f", "h1", "h2")}
    write_map(work / "run_class001.mrc", maps["f"], pixel_size_a=4.0)
    write_map(work / "run_half1_class001_unfil.mrc", maps["h1"], pixel_size_a=4.0)
    write_map(work / "run_half2_class001_unfil.mrc", maps["h2"], pixel_size_a=4.0)
    relion = given.tables.particles.iloc[::-1].reset_index(drop=True)
    for name in (*ANGLES, *ORIGINS):
        relion[name] = 1.5
    relion["rlnRandomSubset"] = [1, 2, 1, 2]
    starfile.write({"optics": OPTICS, "particles": relion}, work / "run_data.star", overwrite=True)
    shells = np.arange(13)
    curve = pd.DataFrame(
        {
            "rlnSpectralIndex": shells,
            "rlnResolution": shells / 96.0,
            "rlnAngstromResolution": np.where(shells > 0, 96.0 / np.maximum(shells, 1), 999.0),
            "rlnSsnrMap": 1.0,
            "rlnGoldStandardFsc": np.linspace(1.0, 0.0, 13),
        }
    )
    starfile.write(
        {"model_general": {"rlnCurrentResolution": 13.714286}, "model_class_1": curve},
        work / "run_model.star",
        overwrite=True,
    )
    out = tmp_path / "Refine"
    data, fsc, resolution = _convert(work / "run", 12, True, given, out)
    assert resolution == pytest.approx(13.714286)
    gold = curve["rlnGoldStandardFsc"]  # STAR keeps 6 decimals
    np.testing.assert_allclose(fsc["rlnFourierShellCorrelation"], gold, atol=1e-5)
    np.testing.assert_allclose(fsc["rlnResolution"], curve["rlnResolution"], atol=1e-5)
    for name, key in (("refined", "f"), ("half1", "h1"), ("half2", "h2")):
        volume, voxel = read_map(out / f"{name}.mrc")
        np.testing.assert_array_equal(volume, maps[key])
        assert voxel == pytest.approx(4.0)
    written = starfile.read(data, always_dict=True)["particles"]
    assert written["rlnRandomSubset"].tolist() == [2, 1, 2, 1]  # back in the input's order
    np.testing.assert_allclose(written["rlnOriginXAngst"], 1.5)
    # stopped by --auto_iter_max instead: the last iteration's half maps and their average
    write_map(work / "run_it002_half1_class001.mrc", maps["h1"], pixel_size_a=4.0)
    write_map(work / "run_it002_half2_class001.mrc", maps["h2"], pixel_size_a=4.0)
    (work / "run_data.star").rename(work / "run_it002_data.star")
    (work / "run_model.star").rename(work / "run_it002_half1_model.star")
    _convert(work / "run", 2, False, given, out)
    refined, _ = read_map(out / "refined.mrc")
    np.testing.assert_allclose(refined, (maps["h1"] + maps["h2"]) / 2, atol=1e-6)
