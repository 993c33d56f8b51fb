"""Read where on the grid EPU acquired: the session, its atlas, grid squares and foil holes.

EPU (Thermo Fisher's single-particle acquisition software) writes beside the movies:

- ``EpuSession.dm``: the session (name, start, ``AtlasId``: the Windows path of the atlas's
  ``Atlas.dm``, the grid squares it knows);
- ``Atlas.dm`` (in the atlas's own folder): the atlas image's name and, per grid square (an
  atlas *node*, whose id is the grid square's id), its centre and size on the atlas image;
- ``Images-Disc*/GridSquare_<id>/GridSquare_<date>_<time>.xml`` and ``FoilHoles/FoilHole_<id>_
  <date>_<time>.xml``: the image of a square or hole (``MicroscopeImage``: stage position, pixel
  size, size, time), a ``.jpg`` beside it;
- ``Metadata/GridSquare_<id>.dm``: the targets on a square (foil holes: centre and size on the
  square's image, stage position).

Units: stage positions in µm, pixel sizes in Å, positions and sizes on an image in pixels of
that image (origin top left), times with the zone the file gives.
"""

from __future__ import annotations

import re
import statistics
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PureWindowsPath

from cryolive.io._errors import MetadataReadError
from cryolive.io._xml import child, children, number, parse_xml, text, when

__all__ = [
    "AtlasInfo",
    "AtlasSquare",
    "EpuSessionInfo",
    "FoilHoleTarget",
    "ImageInfo",
    "SquareTargets",
    "find_image",
    "foil_hole_label",
    "grid_square_label",
    "read_atlas",
    "read_epu_session",
    "read_image_xml",
    "read_square_targets",
    "resolve_atlas",
]

MAX_DM_BYTES = 64 * 2**20  # a square's targets: ~4 kB per hole, a few thousand holes
MAX_IMAGE_XML_BYTES = 4 * 2**20
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_GRID_SQUARE = re.compile(r"^GridSquare_(\d+)$")
_FOIL_HOLE = re.compile(r"^FoilHole_(\d+)_")


@dataclass(frozen=True)
class EpuSessionInfo:
    """What ``EpuSession.dm`` says."""

    path: Path
    name: str | None
    started_at: datetime | None
    atlas_id: str | None  # the Windows path EPU wrote, e.g. Z:\DoseFractions\visit\atlas\...
    grid_squares: tuple[int, ...]  # ids of the grid squares EPU knows in this session


@dataclass(frozen=True)
class AtlasSquare:
    """One grid square on the atlas image (an atlas node)."""

    label: int
    center_x_px: float
    center_y_px: float
    width_px: float
    height_px: float
    angle_deg: float | None
    stage_x_um: float | None
    stage_y_um: float | None


@dataclass(frozen=True)
class AtlasInfo:
    """What ``Atlas.dm`` says. ``pixel_size_a`` is derived from the squares' physical and pixel
    sizes (the file states none), None without squares."""

    path: Path
    image_base_name: str | None
    acquired_at: datetime | None
    pixel_size_a: float | None
    squares: dict[int, AtlasSquare] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageInfo:
    """One EPU image's ``.xml`` (``MicroscopeImage``) of a grid square or foil hole."""

    path: Path
    pixel_size_a: float
    width_px: int | None
    height_px: int | None
    stage_x_um: float | None
    stage_y_um: float | None
    acquired_at: datetime | None


@dataclass(frozen=True)
class FoilHoleTarget:
    """A foil hole on a grid square's image, from ``Metadata/GridSquare_<id>.dm``."""

    label: int
    center_x_px: float | None
    center_y_px: float | None
    diameter_px: float | None
    stage_x_um: float | None
    stage_y_um: float | None
    selected: bool


@dataclass(frozen=True)
class SquareTargets:
    """``Metadata/GridSquare_<id>.dm``: a grid square and the foil holes found on it."""

    path: Path
    label: int
    stage_x_um: float | None
    stage_y_um: float | None
    holes: dict[int, FoilHoleTarget] = field(default_factory=dict)


def _stage_um(path: Path, node: ET.Element | None, axis: str) -> float | None:
    metres = number(path, child(node, axis), f"stage {axis}")
    return None if metres is None else metres * 1e6


def _int_label(path: Path, value: str | None, what: str) -> int:
    if value is None or not value.isdigit():
        raise MetadataReadError(path, f"{what} is not a whole number")
    return int(value)


def read_epu_session(path: Path | str) -> EpuSessionInfo:
    """Read ``EpuSession.dm``. Raises MetadataReadError for a file that is not one."""
    path = Path(path)
    root = parse_xml(path, root_name="EpuSessionXml", max_bytes=MAX_DM_BYTES)
    sample = next(children(child(root, "Samples", "_items"), "SampleXml"), None)
    squares: list[int] = []
    array = child(sample, "GridSquares", "m_serializationArray")
    for pair in children(array, "KeyValuePairOf"):
        squares.append(_int_label(path, text(child(pair, "key")), "a grid square's key"))
    return EpuSessionInfo(
        path=path,
        name=text(child(root, "Name")),
        started_at=when(path, child(root, "StartDateTime"), "StartDateTime"),
        atlas_id=text(child(sample, "AtlasId")),
        grid_squares=tuple(squares),
    )


def resolve_atlas(
    atlas_id: str, *, visit_dir: Path, atlas_roots: tuple[Path, ...] = ()
) -> Path | None:
    """The local ``Atlas.dm`` that EPU's ``AtlasId`` (a Windows path) names, or None.

    What follows the visit folder's own name in the Windows path is relative to ``visit_dir``
    (``Z:\\DoseFractions\\bi23047-5\\atlas\\...\\Atlas.dm`` → ``<visit_dir>/atlas/.../Atlas.dm``).
    Otherwise the path's trailing parts are looked for under each of ``atlas_roots``, longest
    first. A path with ``..`` in it is refused (None): it could climb out of the roots.
    """
    parts = PureWindowsPath(atlas_id).parts
    parts = tuple(p for p in parts if not p.endswith(("\\", "/", ":")))  # the drive / root
    if not parts or any(p in ("..", ".") for p in parts):
        return None
    if visit_dir.name in parts:
        last = len(parts) - 1 - parts[::-1].index(visit_dir.name)
        candidate = visit_dir.joinpath(*parts[last + 1 :])
        if candidate.is_file():
            return candidate
    for root in atlas_roots:
        for start in range(len(parts)):
            candidate = root.joinpath(*parts[start:])
            if candidate.is_file():
                return candidate
    return None


def read_atlas(path: Path | str) -> AtlasInfo:
    """Read ``Atlas.dm``: the atlas image's name and the grid squares on it."""
    path = Path(path)
    root = parse_xml(path, root_name="AtlasSessionXml", max_bytes=MAX_DM_BYTES)
    atlas = child(root, "Atlas")
    squares: dict[int, AtlasSquare] = {}
    scales: list[float] = []
    for tile in children(child(atlas, "TilesEfficient", "_items"), "TileXml"):
        for pair in children(child(tile, "Nodes", "KeyValuePairs"), "KeyValuePairOf"):
            label = _int_label(path, text(child(pair, "key")), "an atlas node's key")
            node = child(pair, "value")
            where = child(node, "PositionOnTheAtlas")
            x = number(path, child(where, "Center", "x"), "Center x")
            y = number(path, child(where, "Center", "y"), "Center y")
            width = number(path, child(where, "Size", "width"), "Size width")
            height = number(path, child(where, "Size", "height"), "Size height")
            if x is None or y is None or width is None or height is None:
                continue
            physical = number(path, child(where, "Physical", "width"), "Physical width")
            if physical is not None and width > 0:
                scales.append(physical * 1e10 / width)
            angle = number(path, child(where, "Rotation"), "Rotation")
            stage = child(node, "StagePosition")
            squares[label] = AtlasSquare(
                label=label,
                center_x_px=x,
                center_y_px=y,
                width_px=width,
                height_px=height,
                angle_deg=None if angle is None else angle * 180.0 / 3.141592653589793,
                stage_x_um=_stage_um(path, stage, "X"),
                stage_y_um=_stage_um(path, stage, "Y"),
            )
    return AtlasInfo(
        path=path,
        image_base_name=text(child(atlas, "AtlasImageReference", "BaseFileName")),
        acquired_at=when(path, child(atlas, "AcquisitionDateTime"), "AcquisitionDateTime"),
        pixel_size_a=statistics.median(scales) if scales else None,
        squares=squares,
    )


def read_image_xml(path: Path | str) -> ImageInfo:
    """Read the ``.xml`` of a grid square's or foil hole's image (``MicroscopeImage``)."""
    path = Path(path)
    root = parse_xml(path, root_name="MicroscopeImage", max_bytes=MAX_IMAGE_XML_BYTES)
    pixel_m = number(path, child(root, "SpatialScale", "pixelSize", "x", "numericValue"), "pixel")
    if pixel_m is None or pixel_m <= 0:
        raise MetadataReadError(path, "required field pixelSize is missing or not positive")
    scope = child(root, "microscopeData")
    area = child(scope, "acquisition", "camera", "ReadoutArea")
    width = number(path, child(area, "width"), "ReadoutArea width")
    height = number(path, child(area, "height"), "ReadoutArea height")
    stage = child(scope, "stage", "Position")
    return ImageInfo(
        path=path,
        pixel_size_a=pixel_m * 1e10,
        width_px=None if width is None else int(width),
        height_px=None if height is None else int(height),
        stage_x_um=_stage_um(path, stage, "X"),
        stage_y_um=_stage_um(path, stage, "Y"),
        acquired_at=when(
            path, child(scope, "acquisition", "acquisitionDateTime"), "acquisitionDateTime"
        ),
    )


def read_square_targets(path: Path | str) -> SquareTargets:
    """Read ``Metadata/GridSquare_<id>.dm``: the foil holes EPU found on the square."""
    path = Path(path)
    root = parse_xml(path, root_name="GridSquareXml", max_bytes=MAX_DM_BYTES)
    label = text(child(root, "Id")) or text(child(root, "AtlasNodeId"))
    holes: dict[int, FoilHoleTarget] = {}
    collection = child(root, "TargetLocations", "TargetLocationsEfficient", "m_serializationArray")
    for pair in children(collection, "KeyValuePairOf"):
        hole = _int_label(path, text(child(pair, "key")), "a target's key")
        value = child(pair, "value")
        size = child(value, "PixelWidthHeight")
        holes[hole] = FoilHoleTarget(
            label=hole,
            center_x_px=number(path, child(value, "PixelCenter", "x"), "PixelCenter x"),
            center_y_px=number(path, child(value, "PixelCenter", "y"), "PixelCenter y"),
            diameter_px=number(path, child(size, "width"), "PixelWidthHeight width"),
            stage_x_um=_stage_um(path, child(value, "StagePosition"), "X"),
            stage_y_um=_stage_um(path, child(value, "StagePosition"), "Y"),
            selected=text(child(value, "Selected")) == "true",
        )
    position = child(root, "Position")
    return SquareTargets(
        path=path,
        label=_int_label(path, label, "the grid square's Id"),
        stage_x_um=_stage_um(path, position, "X"),
        stage_y_um=_stage_um(path, position, "Y"),
        holes=holes,
    )


def grid_square_label(path: Path) -> int | None:
    """The grid square id of a path inside ``GridSquare_<id>/`` (None outside one)."""
    for part in reversed(path.parts):
        found = _GRID_SQUARE.match(part)
        if found:
            return int(found.group(1))
    return None


def foil_hole_label(path: Path) -> int | None:
    """The foil hole id in a file name ``FoilHole_<id>_…`` (movie, its ``.xml``, hole image)."""
    found = _FOIL_HOLE.match(path.name)
    return int(found.group(1)) if found else None


def find_image(xml_or_stem: Path) -> Path | None:
    """The browser-viewable image (JPEG/PNG) EPU wrote beside an image's ``.xml``."""
    for suffix in IMAGE_SUFFIXES:
        candidate = xml_or_stem.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None
