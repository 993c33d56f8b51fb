"""Where a movie and its metadata go in the EPU or SerialEM layout, and EPU's other files:
the session, the atlas, grid squares and foil holes (their ``.xml`` and images).

EPU layout of one grid (raw folder) of visit ``V``::

    V/atlas/Supervisor_<date>_<time>_V_Atlas/Sample<n>/Atlas/Atlas.dm, Atlas_<id>.jpg, .mrc
    V/raw/EpuSession.dm                      (AtlasId: Z:\\DoseFractions\\V\\atlas\\…\\Atlas.dm)
    V/raw/Metadata/GridSquare_<gs>.dm        (foil hole positions)
    V/raw/Images-Disc1/GridSquare_<gs>/GridSquare_<date>_<time>.xml, .jpg
    V/raw/Images-Disc1/GridSquare_<gs>/FoilHoles/FoilHole_<fh>_<date>_<time>.xml, .jpg
    V/raw/Images-Disc1/GridSquare_<gs>/Data/FoilHole_<fh>_Data_<area>_<n>_<date>_<time>.xml, .jpg
        … _fractions.tiff (K3), _Fractions.mrc + the integrated image .mrc (Falcon), _EER.eer
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import imagecodecs
import mrcfile
import numpy as np

from cryolive.simulate._config import VisitConfig
from cryolive.simulate._epu_session import atlas_dm, epu_session_dm, grid_square_dm, windows_path
from cryolive.simulate._grid import (
    ATLAS_PIXEL_A,
    HOLE_IMAGE_PX,
    HOLE_PIXEL_A,
    SQUARE_IMAGE_PX,
    SQUARE_PIXEL_A,
    FoilHolePlan,
    GridPlan,
    GridSquarePlan,
    atlas_image,
    hole_image,
    square_image,
)
from cryolive.simulate._layout import ImageRecord, epu_image_xml

_OUTPUT_FORMAT = {"tiff": "Tiff Lzw Non-Gain normalized", "mrc": "Mrc", "eer": "EER"}
ACQUISITION_AREA = 9_017_347  # EPU's id of the first acquisition area of the template


def raw_folder_name(index: int) -> str:
    """``raw`` for the first grid, then ``raw2``, ``raw3`` …"""
    return "raw" if index == 0 else f"raw{index + 1}"


def movie_suffix(config: VisitConfig) -> str:
    """What EPU appends to an acquisition's name for its movie."""
    fmt = config.movie_format
    if fmt == "eer":
        return "_EER.eer"
    word = "_Fractions" if config.camera.is_falcon else "_fractions"
    return f"{word}.{fmt}"


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%d_%H%M%S")


def _jpeg(path: Path, image: np.ndarray) -> None:
    path.write_bytes(imagecodecs.jpeg8_encode(image))


def _thumbnail(path: Path, rng: np.random.Generator) -> None:
    image = (128 + 30 * rng.standard_normal((64, 64))).clip(0, 255).astype(np.uint8)
    _jpeg(path, image)


def _survey(
    record: ImageRecord, magnification: int, pixel_a: float, shape: tuple[int, int]
) -> ImageRecord:
    return replace(
        record,
        magnification=magnification,
        pixel_size_a=pixel_a,
        n_fractions=1,
        shape_px=shape,
        exposure_time_s=1.0,
        slit_width_ev=None,
        fractionated=False,
    )


class EpuGrid:
    """Writes one grid's EPU files around its movies, as EPU does while it collects."""

    def __init__(
        self, visit_dir: Path, raw: Path, config: VisitConfig, grid: int, plan: GridPlan
    ) -> None:
        self.visit_dir, self.raw, self.config, self.plan = visit_dir, raw, config, plan
        self.grid = grid
        self.atlas: Path | None = None
        self._squares_started: set[int] = set()

    def _windows(self, path: Path) -> str:
        """The Windows path EPU writes for ``path`` (inside the visit folder)."""
        relative = path.relative_to(self.visit_dir)
        return windows_path("DoseFractions", self.config.visit, *relative.parts)

    def write_session(self, rng: np.random.Generator) -> None:
        """The atlas (image and ``Atlas.dm``), then ``EpuSession.dm`` naming it."""
        config, start = self.config, self.config.start_time
        slot = self.grid + 1
        folder = (
            self.visit_dir
            / "atlas"
            / f"Supervisor_{_stamp(start)}_{config.visit}_Atlas"
            / f"Sample{slot}"
            / "Atlas"
        )
        folder.mkdir(parents=True, exist_ok=True)
        base = f"Atlas_{self.plan.atlas_id}"
        image = atlas_image(self.plan, rng)
        _jpeg(folder / f"{base}.jpg", image)
        with mrcfile.new(folder / f"{base}.mrc", overwrite=True) as mrc:
            mrc.set_data(image)
            mrc.voxel_size = ATLAS_PIXEL_A
        self.atlas = folder / "Atlas.dm"
        self.atlas.write_text(
            atlas_dm(
                plan=self.plan,
                acquired=start,
                storage_folder=self._windows(folder.parent),
                image_base=base,
                slot=slot,
            )
        )
        (self.raw / "EpuSession.dm").write_text(
            epu_session_dm(
                session_id=9_015_527 + 100 * self.grid,
                name=f"Supervisor_{_stamp(start)}_{config.visit}_grid{slot}_EPU",
                started=start,
                atlas_path=self._windows(self.atlas),
                storage_path=self._windows(self.raw),
                grid_squares=[s.label for s in self.plan.squares],
                output_format=_OUTPUT_FORMAT[config.movie_format],
                autoloader_slot=slot,
            )
        )

    def start_square(
        self, square: GridSquarePlan, record: ImageRecord, rng: np.random.Generator
    ) -> None:
        """The square's image and ``.xml``, and ``Metadata/GridSquare_<id>.dm``."""
        if square.label in self._squares_started:
            return
        self._squares_started.add(square.label)
        folder = self.raw / "Images-Disc1" / f"GridSquare_{square.label}"
        (folder / "FoilHoles").mkdir(parents=True, exist_ok=True)
        (folder / "Data").mkdir(exist_ok=True)
        base = f"GridSquare_{_stamp(record.acquired_at)}"
        survey = _survey(record, 470, SQUARE_PIXEL_A, SQUARE_IMAGE_PX)
        survey = replace(survey, stage_um=square.stage_um)
        (folder / f"{base}.xml").write_text(epu_image_xml(survey))
        _jpeg(folder / f"{base}.jpg", square_image(square, rng))
        metadata = self.raw / "Metadata"
        metadata.mkdir(exist_ok=True)
        (metadata / f"GridSquare_{square.label}.dm").write_text(
            grid_square_dm(
                square=square,
                image_base=base,
                image_path=self._windows(folder / f"{base}.mrc"),
                folder_path=self._windows(folder / "FoilHoles"),
            )
        )

    def start_hole(
        self,
        square: GridSquarePlan,
        hole: FoilHolePlan,
        record: ImageRecord,
        rng: np.random.Generator,
    ) -> None:
        folder = self.raw / "Images-Disc1" / f"GridSquare_{square.label}" / "FoilHoles"
        base = folder / f"FoilHole_{hole.label}_{_stamp(record.acquired_at)}"
        survey = _survey(record, 11_500, HOLE_PIXEL_A, HOLE_IMAGE_PX)
        base.with_suffix(".xml").write_text(epu_image_xml(replace(survey, stage_um=hole.stage_um)))
        _jpeg(base.with_suffix(".jpg"), hole_image(rng))

    def acquisition(
        self, square: GridSquarePlan, hole: FoilHolePlan, shot: int, when: datetime
    ) -> Path:
        """The acquisition's name without suffix: ``…/Data/FoilHole_<fh>_Data_<area>_<n>_<t>``.

        ``<area>`` is the acquisition area of the template (the same for the n-th shot of
        every hole), ``<n>`` a per-hole counter as EPU writes it.
        """
        data = self.raw / "Images-Disc1" / f"GridSquare_{square.label}" / "Data"
        area = ACQUISITION_AREA + 7 * shot
        index = square.holes.index(hole) + 1
        return data / f"FoilHole_{hole.label}_Data_{area}_{index}_{_stamp(when)}"

    def thumbnail(self, stem: Path, rng: np.random.Generator) -> None:
        _thumbnail(stem.with_name(stem.name + ".jpg"), rng)


def serialem_paths(raw: Path, config: VisitConfig, m: int) -> tuple[Path, Path]:
    frames = raw / "Frames"
    frames.mkdir(exist_ok=True)
    suffix = {"tiff": ".tif", "mrc": ".mrc", "eer": ".eer"}[config.movie_format]
    movie = frames / f"{config.visit}_{m + 1:05d}{suffix}"
    return movie, movie.with_name(movie.name + ".mdoc")
