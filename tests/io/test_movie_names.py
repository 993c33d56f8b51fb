"""Which files are movies, by name: EPU's K3, Falcon and EER naming, its integrated images and
JPEGs beside them, SerialEM's movies, and the images and references that never are."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryolive.io.movie_names import movie_name

DATA = Path("/visit/raw/Images-Disc1/GridSquare_8999138/Data")
ACQ = "FoilHole_9015883_Data_9017347_6_20250108_154915"


@pytest.mark.parametrize(
    "name",
    [
        f"{ACQ}_fractions.tiff",  # K3
        f"{ACQ}_Fractions.mrc",  # Falcon MRC
        f"{ACQ}_Fractions.tiff",  # Falcon TIFF
        f"{ACQ}_EER.eer",  # Falcon 4 EER
        f"{ACQ}_FRACTIONS.TIF",
    ],
)
def test_epu_movies_and_their_xml(name: str) -> None:
    found = movie_name(DATA / name)
    assert found is not None and found.software == "epu"
    assert found.metadata == DATA / f"{ACQ}.xml"
    assert (found.foil_hole, found.acquisition) == (9015883, 9017347)


@pytest.mark.parametrize(
    "name",
    [
        f"{ACQ}.mrc",  # EPU's integrated image beside the Falcon movie
        f"{ACQ}.tiff",  # … written as TIFF
        f"{ACQ}.jpg",
        f"{ACQ}.xml",
        "FoilHole_9015889_20250108_154715.mrc",  # a foil hole image
        "GridSquare_20250108_151151.mrc",
        "Atlas_1.mrc",
        "Tile_1_2.mrc",
        "SuperRef_20261206.mrc",
        "CountRef_20261206.dm4",
        "20261206_K3_gain.tiff",
        "20261206_EER_GainReference.gain",
        "movie.dm4",
        "movie.tif.mdoc",
    ],
)
def test_not_movies(name: str) -> None:
    assert movie_name(DATA / name) is None


@pytest.mark.parametrize("name", ["20261206_00042.tif", "sq3_hole12_0001.mrc", "a_b.eer"])
def test_serialem_movies_and_their_mdoc(name: str) -> None:
    found = movie_name(Path("/visit/raw/Frames") / name)
    assert found is not None and found.software == "serialem"
    assert found.metadata == Path("/visit/raw/Frames") / f"{name}.mdoc"
    assert found.foil_hole is None and found.acquisition is None
