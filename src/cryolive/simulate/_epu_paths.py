"""Where a movie and its metadata go in the EPU or SerialEM layout (and the survey images)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import imagecodecs
import numpy as np

from cryolive.simulate._config import MovieFormat, VisitConfig
from cryolive.simulate._layout import ImageRecord, epu_image_xml

_SUFFIX: dict[MovieFormat, str] = {
    "tiff": "_fractions.tiff",
    "mrc": "_fractions.mrc",
    "eer": "_EER.eer",
}


def _thumbnail(path: Path, rng: np.random.Generator) -> None:
    image = (128 + 30 * rng.standard_normal((64, 64))).clip(0, 255).astype(np.uint8)
    path.write_bytes(imagecodecs.jpeg8_encode(image))


def raw_folder_name(index: int) -> str:
    """``raw`` for the first grid, then ``raw2``, ``raw3`` …"""
    return "raw" if index == 0 else f"raw{index + 1}"


def movie_paths(
    raw: Path,
    config: VisitConfig,
    g: int,
    m: int,
    record: ImageRecord,
    square_ids: list[int],
    rng: np.random.Generator,
) -> tuple[Path, Path]:
    stamp = record.acquired_at.strftime("%Y%m%d_%H%M%S")
    if config.layout == "serialem":
        frames = raw / "Frames"
        frames.mkdir(exist_ok=True)
        suffix = {"tiff": ".tif", "mrc": ".mrc", "eer": ".eer"}[config.movie_format]
        movie = frames / f"{config.visit}_{m + 1:05d}{suffix}"
        return movie, movie.with_name(movie.name + ".mdoc")
    per_square = config.movies_per_foil_hole * config.foil_holes_per_square
    square = square_ids[m // per_square]
    hole = square * 1000 + (m % per_square) // config.movies_per_foil_hole
    square_dir = raw / "Images-Disc1" / f"GridSquare_{square}"
    data = square_dir / "Data"
    if not data.exists():
        (square_dir / "FoilHoles").mkdir(parents=True)
        data.mkdir()
        (square_dir / f"GridSquare_{stamp}.xml").write_text(
            epu_image_xml(_survey(record, 470, 40.0))
        )
        _thumbnail(square_dir / f"GridSquare_{stamp}.jpg", rng)
    hole_xml = square_dir / "FoilHoles" / f"FoilHole_{hole}_{stamp}.xml"
    if m % config.movies_per_foil_hole == 0:
        hole_xml.write_text(epu_image_xml(_survey(record, 11_500, 1.6)))
        _thumbnail(hole_xml.with_suffix(".jpg"), rng)
    acquisition = 9_000_000 + 1000 * g + m
    stem = f"FoilHole_{hole}_Data_{acquisition}_{m % config.movies_per_foil_hole}_{stamp}"
    movie = data / f"{stem}{_SUFFIX[config.movie_format]}"
    return movie, data / f"{stem}.xml"


def _survey(record: ImageRecord, magnification: int, pixel_size_nm: float) -> ImageRecord:
    return replace(
        record, magnification=magnification, pixel_size_a=pixel_size_nm * 10, n_fractions=1
    )
