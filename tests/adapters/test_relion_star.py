"""The particles-file checks every RELION adapter makes before RELION runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cryolive.adapters._relion_star import check_particle_tables

OPTICS = ("rlnImagePixelSize", "rlnImageSize")
PARTICLES = ("rlnImageName", "rlnDefocusU")
STAR = Path("particles.star")


def _tables(
    pixels: list[float], boxes: list[int], names: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    optics = pd.DataFrame({"rlnImagePixelSize": pixels, "rlnImageSize": boxes})
    particles = pd.DataFrame({"rlnImageName": names, "rlnDefocusU": [20000.0] * len(names)})
    return optics, particles


def _check(optics: pd.DataFrame, particles: pd.DataFrame) -> tuple[float, int]:
    return check_particle_tables(
        STAR, optics, particles, optics_columns=OPTICS, particle_columns=PARTICLES
    )


def test_one_pixel_and_box_come_back() -> None:
    assert _check(*_tables([1.5, 1.5], [64, 64], ["1@a.mrcs", "2@a.mrcs"])) == (1.5, 64)


@pytest.mark.parametrize(
    ("tables", "said"),
    [
        (_tables([1.5, 2.0], [64, 64], ["1@a.mrcs"]), "differ in pixel size or box"),
        (_tables([1.5, 1.5], [64, 48], ["1@a.mrcs"]), "differ in pixel size or box"),
        (_tables([1.5], [64], ["1@a.mrcs", "1@a.mrcs"]), "names some image twice"),
        (_tables([1.5], [64], []), "holds no particles"),
    ],
)
def test_what_relion_cannot_take_is_refused_by_name(
    tables: tuple[pd.DataFrame, pd.DataFrame], said: str
) -> None:
    with pytest.raises(ValueError, match=said):
        _check(*tables)


def test_a_missing_column_is_named() -> None:
    optics, particles = _tables([1.5], [64], ["1@a.mrcs"])
    with pytest.raises(ValueError, match=r"data_particles of particles\.star lacks rlnDefocusU"):
        _check(optics, particles.drop(columns="rlnDefocusU"))
