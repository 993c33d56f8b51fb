"""EPU's session files: ``EpuSession.dm``, the atlas's ``Atlas.dm`` and the per-square
``Metadata/GridSquare_<id>.dm`` (foil hole positions), in the element layout of EPU 3.9.

Only the parts a reader of these files uses are written (ids, file references, positions,
times), in the places and with the names and namespace prefixes EPU uses.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import PureWindowsPath

from cryolive.simulate._grid import (
    ATLAS_PX,
    HOLE_PITCH_UM,
    SQUARE_SIZE_UM,
    GridPlan,
    GridSquarePlan,
)
from cryolive.simulate._xml import (
    NS_ARRAYS,
    NS_ATLAS,
    NS_ATLAS_MODEL,
    NS_DRAWING,
    NS_EPU,
    NS_GENERIC,
    NS_SERIAL,
    NS_SYSTEM,
    NS_TYPES,
    NS_XSI,
    dotnet_time,
    nil,
    point,
    size,
    stage_position,
    sub,
    to_text,
)

_EPU_ASSEMBLY = (
    "Applications.Epu.Persistence, Version=3.9.1.8206, Culture=neutral, PublicKeyToken=null"
)
_ATLAS_ASSEMBLY = (
    "Applications.SciencesAppsShared.GridAtlas.Persistence, Version=1.36.1.8206, "
    "Culture=neutral, PublicKeyToken=null"
)


class _Ids:
    """The serializer's ``z:Id`` reference numbers, counted through one document."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self) -> str:
        return str(next(self._next))


def _version(parent: ET.Element, ids: _Ids, revision: int = 0) -> None:
    version = sub(parent, "Version", xmlns__a=NS_SYSTEM, z__Id=ids())
    for name, value in (("_Build", 0), ("_Major", 3), ("_Minor", 0), ("_Revision", revision)):
        sub(version, f"a:{name}", value)


def windows_path(*parts: str) -> str:
    """A path on the microscope PC's share, as EPU writes it (``Z:\\DoseFractions\\…``)."""
    return str(PureWindowsPath("Z:\\", *parts))


def epu_session_dm(
    *,
    session_id: int,
    name: str,
    started: datetime,
    atlas_path: str,
    storage_path: str,
    grid_squares: list[int],
    output_format: str,
    autoloader_slot: int,
) -> str:
    """``EpuSession.dm``: the session's name, start, output format, its atlas (a Windows
    path under ``Samples/_items/SampleXml/AtlasId``) and its grid squares (each naming its
    ``Metadata\\GridSquare_<id>.dm``)."""
    ids = _Ids()
    root = ET.Element(
        "EpuSessionXml",
        {
            "xmlns": NS_EPU,
            "xmlns:i": NS_XSI,
            "xmlns:z": NS_SERIAL,
            "z:Id": ids(),
            "z:Type": "Applications.Epu.Persistence.EpuSessionXml",
            "z:Assembly": _EPU_ASSEMBLY,
        },
    )
    sub(root, "Id", session_id, xmlns=NS_TYPES)
    sub(root, "AutoloaderSlot", autoloader_slot)
    sub(root, "ClusteringMode", "ClusteringWithImageBeamShift")
    sub(root, "ClusteringRadius", 1.2e-05)
    sub(root, "DoseFractionsOutputFormat", output_format, z__Id=ids())
    sub(root, "ImageFileFormat", "Mrc")
    nil(root, "MicroscopeName")
    sub(root, "Name", name, z__Id=ids())
    samples = sub(root, "Samples", z__Id=ids())
    items = sub(samples, "_items", z__Id=ids(), z__Size="4")
    sample = sub(items, "SampleXml", z__Id=ids())
    sub(sample, "Id", session_id + 2, xmlns=NS_TYPES)
    sub(sample, "AtlasId", atlas_path, z__Id=ids())
    nil(sample, "EndDateTime")
    squares = sub(sample, "GridSquares", xmlns__a=NS_ARRAYS, z__Id=ids())
    sub(squares, "a:m_keyRehashCount", 0)
    array = sub(
        squares,
        "a:m_serializationArray",
        xmlns__b=NS_GENERIC,
        z__Id=ids(),
        z__Size=str(len(grid_squares)),
    )
    for label in grid_squares:
        pair = sub(array, "b:KeyValuePairOfintSerializedReferenceOfGridSquareXml_PsqDC3X0m6koiAE_P")
        sub(pair, "b:key", label)
        value = sub(pair, "b:value", xmlns__c=NS_TYPES, z__Id=ids())
        sub(value, "c:FileName", f"Metadata\\GridSquare_{label}.dm", z__Id=ids())
    sub(sample, "GridGeometry", "Square")
    sub(sample, "GridType", "HoleyCarbon")
    sub(sample, "StartDateTime", dotnet_time(started))
    for _ in range(3):
        nil(items, "SampleXml")
    sub(samples, "_size", 1)
    sub(samples, "_version", 1)
    sub(root, "StartDateTime", dotnet_time(started))
    folders = sub(root, "StorageFolders", z__Id=ids())
    folder_items = sub(folders, "_items", z__Id=ids(), z__Size="4")
    folder = sub(folder_items, "StorageFolderXml", z__Id=ids())
    sub(folder, "Id", session_id + 1, xmlns=NS_TYPES)
    sub(folder, "DiscId", 1)
    sub(folder, "Path", storage_path, z__Id=ids())
    for _ in range(3):
        nil(folder_items, "StorageFolderXml")
    sub(folders, "_size", 1)
    sub(folders, "_version", 1)
    _version(root, ids)
    return to_text(root, declaration=True)


def _node(pairs: ET.Element, square: GridSquarePlan, ids: _Ids) -> None:
    pair = sub(pairs, "KeyValuePairOfintNodeXml30oatNZW", xmlns=NS_GENERIC)
    sub(pair, "key", square.label)
    value = sub(pair, "value", xmlns__b=NS_ATLAS, z__Id=ids())
    sub(value, "Id", square.label, xmlns=NS_TYPES)
    stage_m = tuple(v * 1e-6 for v in square.stage_um)
    stage_position(value, "b:AlignedStagePosition", (stage_m[0], stage_m[1], 0.0))
    sub(value, "b:Category", 1)
    where = sub(value, "b:PositionOnTheAtlas", xmlns__c=NS_ATLAS_MODEL)
    point(where, "c:Center", square.atlas_xy[0], square.atlas_xy[1], prefix="d")
    physical = sub(where, "c:Physical", xmlns__d=NS_DRAWING)
    side_m = SQUARE_SIZE_UM * 1e-6
    sub(physical, "d:height", side_m)
    sub(physical, "d:width", side_m)
    sub(physical, "d:x", stage_m[0] - side_m / 2)
    sub(physical, "d:y", stage_m[1] - side_m / 2)
    sub(where, "c:Quality", 1.0)
    sub(where, "c:Rotation", 0.0)
    sub(where, "c:Shear", 0.0)
    size(where, "c:Size", square.atlas_size_px, square.atlas_size_px, prefix="d")
    stage_position(value, "b:StagePosition", stage_m)


def atlas_dm(
    *, plan: GridPlan, acquired: datetime, storage_folder: str, image_base: str, slot: int
) -> str:
    """``Atlas.dm``: the atlas image's name and, for each grid square (an atlas node whose
    key is the square's id), its centre and size on the atlas image and its stage position."""
    ids = _Ids()
    root = ET.Element(
        "AtlasSessionXml",
        {
            "xmlns": NS_ATLAS,
            "xmlns:i": NS_XSI,
            "xmlns:z": NS_SERIAL,
            "z:Id": ids(),
            "z:Type": "Applications.SciencesAppsShared.GridAtlas.Persistence.AtlasSessionXml",
            "z:Assembly": _ATLAS_ASSEMBLY,
        },
    )
    sub(root, "Id", plan.atlas_id, xmlns=NS_TYPES)
    atlas = sub(root, "Atlas", z__Id=ids())
    sub(atlas, "Id", plan.atlas_id, xmlns=NS_TYPES)
    sub(atlas, "AcquiredWithImageBeamShift", False)
    sub(atlas, "AcquisitionDateTime", dotnet_time(acquired))
    reference = sub(atlas, "AtlasImageReference", xmlns__a=NS_TYPES, z__Id=ids())
    sub(reference, "a:BaseFileName", image_base, z__Id=ids())
    sub(reference, "a:FileFormat", "Mrc")
    sub(atlas, "IsStem", False)
    nil(atlas, "Name")
    sub(atlas, "StartPosition", "CloseToCenter")
    tiles = sub(atlas, "TilesEfficient", z__Id=ids())
    items = sub(tiles, "_items", z__Id=ids(), z__Size="1")
    tile = sub(items, "TileXml", z__Id=ids())
    sub(tile, "Id", plan.atlas_id + 1, xmlns=NS_TYPES)
    area = sub(tile, "AtlasPixelPosition", xmlns__a=NS_DRAWING)
    for name, value in (("height", ATLAS_PX), ("width", ATLAS_PX), ("x", 0), ("y", 0)):
        sub(area, f"a:{name}", value)
    nodes = sub(tile, "Nodes", xmlns__a=NS_ARRAYS, z__Id=ids())
    pairs = sub(nodes, "KeyValuePairs", xmlns="", z__Id=ids(), z__Size=str(len(plan.squares)))
    for square in plan.squares:
        _node(pairs, square, ids)
    stage_position(tile, "StagePosition", (0.0, 0.0, 0.0), prefix="a")
    tile_image = sub(tile, "TileImageReference", xmlns__a=NS_TYPES, z__Id=ids())
    name = f"Tile_{plan.atlas_id + 1}_0_{plan.atlas_id}"
    sub(tile_image, "a:BaseFileName", name, z__Id=ids())
    sub(tile_image, "a:FileFormat", "Mrc")
    sub(tiles, "_size", 1)
    sub(tiles, "_version", 1)
    sub(root, "Description", f"Atlas for autoloader slot {slot}", z__Id=ids())
    sub(root, "ImageFileFormat", "Mrc")
    sub(root, "Name", "Atlas", z__Id=ids())
    sub(root, "StartDateTime", dotnet_time(acquired))
    sub(root, "StorageFolder", storage_folder, z__Id=ids())
    _version(root, ids, revision=-1)
    return to_text(root, declaration=False)


def grid_square_dm(
    *, square: GridSquarePlan, image_base: str, image_path: str, folder_path: str
) -> str:
    """``Metadata/GridSquare_<id>.dm``: the square's stage position and image, and each of
    its foil holes (``TargetLocationsEfficient``: key = the hole's id) with its centre and
    size in pixels of the square's image and its stage position. ``folder_path`` is the
    Windows path of the square's ``FoilHoles`` folder."""
    ids = _Ids()
    root = ET.Element(
        "GridSquareXml",
        {
            "xmlns": NS_EPU,
            "xmlns:i": NS_XSI,
            "xmlns:z": NS_SERIAL,
            "z:Id": ids(),
            "z:Type": "Applications.Epu.Persistence.GridSquareXml",
            "z:Assembly": _EPU_ASSEMBLY,
        },
    )
    sub(root, "Id", square.label, xmlns=NS_TYPES)
    sub(root, "AtlasNodeId", square.label)
    sub(root, "GridSquareImagePath", image_path, z__Id=ids())
    sub(root, "HoleSpacing", HOLE_PITCH_UM * 1e-6)
    image = sub(root, "Image", xmlns__a=NS_TYPES, z__Id=ids())
    sub(image, "a:BaseFileName", image_base, z__Id=ids())
    sub(image, "a:FileFormat", "Mrc")
    sub(root, "ImageFolderName", "Images-Disc1", z__Id=ids())
    stage_position(root, "Position", tuple(v * 1e-6 for v in square.stage_um), prefix="a")
    sub(root, "Rotation", 0.0)
    sub(root, "Selected", True)
    sub(root, "State", "Completed")
    targets = sub(
        root,
        "TargetLocations",
        z__Id=ids(),
        z__Type="Applications.Epu.Persistence.FoilHoleCollectionXml",
        z__Assembly=_EPU_ASSEMBLY,
    )
    sub(targets, "Id", square.label + 3, xmlns=NS_TYPES)
    sub(targets, "GridSquareId", square.label)
    nil(targets, "TargetLocations", xmlns__a=NS_ARRAYS)
    efficient = sub(targets, "TargetLocationsEfficient", xmlns__a=NS_ARRAYS, z__Id=ids())
    sub(efficient, "a:m_keyRehashCount", 0)
    array = sub(
        efficient,
        "a:m_serializationArray",
        xmlns__b=NS_GENERIC,
        z__Id=ids(),
        z__Size=str(len(square.holes)),
    )
    for order, hole in enumerate(square.holes):
        pair = sub(array, "b:KeyValuePairOfintTargetLocationXmlBpEWF4JT")
        sub(pair, "b:key", hole.label)
        value = sub(pair, "b:value", z__Id=ids())
        sub(value, "Id", hole.label, xmlns=NS_TYPES)
        stage_position(value, "CorrectedStagePosition", (0.0, 0.0, 0.0))
        sub(value, "FoilHoleImagePath", f"{folder_path}\\FoilHole_{hole.label}.mrc", z__Id=ids())
        sub(value, "GridSquareId", square.label)
        sub(value, "ImageFolderName", "Images-Disc1", z__Id=ids())
        sub(value, "IsNearGridBar", False)
        sub(value, "IsPositionCorrected", False)
        sub(value, "Order", order)
        point(value, "PixelCenter", hole.pixel_xy[0], hole.pixel_xy[1], prefix="c")
        size(value, "PixelWidthHeight", hole.diameter_px, hole.diameter_px, prefix="c")
        sub(value, "PrimaryId", hole.label)
        sub(value, "Quality", 1)
        sub(value, "Selected", True)
        stage_position(value, "StagePosition", tuple(v * 1e-6 for v in hole.stage_um))
        sub(value, "State", "Completed")
    return to_text(root, declaration=False)
