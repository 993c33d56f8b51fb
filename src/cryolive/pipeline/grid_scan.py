"""Registers where on the grid EPU acquired: atlas, grid squares and foil holes of a raw folder.

The watcher calls :meth:`GridScanner.scan` per raw folder on every poll, and
:meth:`GridScanner.foil_hole_id` for each movie it registers. A scan looks only at what may
have changed: EPU's session file, its atlas and the square targets (``Metadata/*.dm``), whose
size or time stamp is compared with the last scan, and the ``GridSquare_*`` and ``FoilHoles``
folders whose time stamp moved (a new image). A file that cannot be read yet (being written)
is tried again on the next poll; what is wrong with it is logged once.

Rows are idempotent (:mod:`cryolive.db.repo.grid`): squares and holes are registered whether
their files come before or after the movies taken in them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db.repo import grid
from cryolive.io import MetadataReadError
from cryolive.io.epu_session import (
    find_image,
    foil_hole_label,
    grid_square_label,
    read_atlas,
    read_epu_session,
    read_image_xml,
    read_square_targets,
    resolve_atlas,
)

log = logging.getLogger(__name__)
Stamp = tuple[int, int]  # (size, mtime in ns)
READ: Stamp = (-1, -1)  # an image's .xml read, with its image beside it
T = TypeVar("T")
Row = TypeVar("Row", bound=BaseModel)


def _stamp(path: str) -> Stamp | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _entries(folder: str, prefix: str, suffix: str = "", *, dirs: bool) -> list[str]:
    """Paths (as text: a scan of thousands of entries stays cheap) in ``folder``, sorted."""
    try:
        with os.scandir(folder) as entries:
            return sorted(
                e.path
                for e in entries
                if e.name.startswith(prefix)
                and e.name.endswith(suffix)
                and (e.is_dir() if dirs else e.is_file())
            )
    except OSError:
        return []


def _merged(rows: Iterable[Row]) -> list[Row]:
    """One row per label, each field from the last row that gives it."""
    fields: dict[int, dict[str, object]] = {}
    kinds: dict[int, type[Row]] = {}
    for row in rows:
        label = int(row.label)  # type: ignore[attr-defined]
        fields.setdefault(label, {}).update(row.model_dump(exclude_none=True))
        kinds[label] = type(row)
    return [kinds[label].model_validate(values) for label, values in fields.items()]


@dataclass
class _Found:
    """What one scan read, to be written in one transaction."""

    atlas: grid.AtlasRow | None = None
    squares: list[grid.GridSquareRow] = field(default_factory=list)
    holes: dict[int, list[grid.FoilHoleRow]] = field(default_factory=dict)
    stamps: dict[str, Stamp] = field(default_factory=dict)  # marked read once written


class GridScanner:
    """Keeps the Atlas, GridSquare and FoilHole rows of a visit's raw folders up to date.

    Parameters
    ----------
    session_factory
        Database sessions with write rights; a scan that finds something new commits once.
    visit_dir
        The visit's folder (an ``AtlasId`` naming a path inside it is found relative to it).
    atlas_roots
        Other folders an atlas may lie under (a facility's common atlas folder).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        visit_dir: Path,
        *,
        atlas_roots: tuple[Path, ...] = (),
    ) -> None:
        self.sessions, self.visit_dir, self.atlas_roots = session_factory, visit_dir, atlas_roots
        self._stamps: dict[str, Stamp] = {}  # files and folders as last read
        self._atlas_ids: dict[Path, str | None] = {}  # EpuSession.dm -> its AtlasId
        self._logged: set[Path] = set()
        self._groups: dict[int, int] = {}  # data collection -> its group

    def scan(self, raw_dir: Path, data_collection_group_id: int) -> None:
        """Register the atlas, squares and holes whose EPU files appeared or changed."""
        found = _Found()
        self._session(raw_dir / "EpuSession.dm", found)
        for targets in _entries(str(raw_dir / "Metadata"), "GridSquare_", ".dm", dirs=False):
            stamp = self._changed(targets)
            if stamp is not None:
                self._targets(Path(targets), stamp, found)
        for images in _entries(str(raw_dir), "Images-Disc", dirs=True):
            for square_dir in _entries(images, "GridSquare_", dirs=True):
                self._square_dir(square_dir, found)
        if not (found.atlas or found.squares or found.holes):
            self._stamps.update(found.stamps)
            return
        with self.sessions.begin() as session:
            atlas_id = grid.ensure_atlas(
                session, data_collection_group_id=data_collection_group_id, row=found.atlas
            )
            ids = grid.write_grid_squares(session, atlas_id=atlas_id, rows=_merged(found.squares))
            for label, holes in found.holes.items():
                square_id = ids.get(label) or grid.ensure_grid_square(
                    session, atlas_id=atlas_id, label=label
                )
                grid.write_foil_holes(session, grid_square_id=square_id, rows=_merged(holes))
        self._stamps.update(found.stamps)

    def foil_hole_id(
        self, session: Session, raw_dir: Path, data_collection_group_id: int, movie: Path
    ) -> int | None:
        """The FoilHole id of a movie named ``GridSquare_<gs>/Data/FoilHole_<fh>_Data_…``,
        its square and hole created as placeholders when their own files have not been read
        yet; None for a movie outside that layout (SerialEM)."""
        return self.foil_hole_ids(session, raw_dir, data_collection_group_id, [movie])[movie]

    def foil_hole_ids(
        self, session: Session, raw_dir: Path, data_collection_group_id: int, movies: list[Path]
    ) -> dict[Path, int | None]:
        """:meth:`foil_hole_id` of many movies, with a few queries per grid square."""
        labels: dict[Path, tuple[int, int]] = {}
        for movie in movies:
            try:
                relative = movie.relative_to(raw_dir)
            except ValueError:
                continue
            square, hole = grid_square_label(relative), foil_hole_label(relative)
            if square is not None and hole is not None:
                labels[movie] = (square, hole)
        out: dict[Path, int | None] = dict.fromkeys(movies)
        if not labels:
            return out
        atlas_id = grid.ensure_atlas(session, data_collection_group_id=data_collection_group_id)
        squares = grid.ensure_grid_squares(
            session, atlas_id=atlas_id, labels=[s for s, _ in labels.values()]
        )
        holes: dict[tuple[int, int], int] = {}
        for square, square_id in squares.items():
            on_it = [h for s, h in labels.values() if s == square]
            found = grid.ensure_foil_holes(session, grid_square_id=square_id, labels=on_it)
            holes |= {(square, h): hole_id for h, hole_id in found.items()}
        out |= {movie: holes[key] for movie, key in labels.items()}
        return out

    # --- reading ------------------------------------------------------------------------

    def _changed(self, path: str) -> Stamp | None:
        """The path's stamp when it differs from the one last read, else None."""
        stamp = _stamp(path)
        return stamp if stamp is not None and self._stamps.get(path) != stamp else None

    def _read(self, path: Path, reader: Callable[[Path], T]) -> T | None:
        try:
            return reader(path)
        except MetadataReadError as exc:
            if path not in self._logged:
                self._logged.add(path)
                log.warning("%s (read again when it changes)", exc)
            return None

    def _session(self, path: Path, found: _Found) -> None:
        stamp = self._changed(str(path))
        if stamp is not None:
            session = self._read(path, read_epu_session)
            found.stamps[str(path)] = stamp  # read again when it changes
            if session is None:
                return
            self._atlas_ids[path] = session.atlas_id
        atlas_id = self._atlas_ids.get(path)
        if not atlas_id:
            return
        atlas_file = resolve_atlas(atlas_id, visit_dir=self.visit_dir, atlas_roots=self.atlas_roots)
        stamp = None if atlas_file is None else self._changed(str(atlas_file))
        if atlas_file is None or stamp is None:
            return
        atlas = self._read(atlas_file, read_atlas)
        found.stamps[str(atlas_file)] = stamp
        if atlas is None:
            return
        base = atlas_file.parent / (atlas.image_base_name or "Atlas")
        image = find_image(base) or base.with_name(base.name + ".mrc")
        described = base.with_name(base.name + ".xml")  # the image's own, when EPU wrote it
        own = self._read(described, read_image_xml) if described.is_file() else None
        pixel_size = own.pixel_size_a if own is not None else atlas.pixel_size_a
        found.atlas = grid.AtlasRow(image=str(image)[:255], pixel_size_a=pixel_size)
        found.squares += [
            grid.GridSquareRow(
                label=s.label,
                x_px=s.center_x_px,
                y_px=s.center_y_px,
                width_px=s.width_px,
                height_px=s.height_px,
                angle_deg=s.angle_deg,
                stage_x_um=s.stage_x_um,
                stage_y_um=s.stage_y_um,
            )
            for s in atlas.squares.values()
        ]

    def _targets(self, path: Path, stamp: Stamp, found: _Found) -> None:
        found.stamps[str(path)] = stamp  # read again when it changes
        targets = self._read(path, read_square_targets)
        if targets is None:
            return
        found.squares.append(
            grid.GridSquareRow(
                label=targets.label, stage_x_um=targets.stage_x_um, stage_y_um=targets.stage_y_um
            )
        )
        found.holes.setdefault(targets.label, []).extend(
            grid.FoilHoleRow(
                label=h.label,
                x_px=h.center_x_px,
                y_px=h.center_y_px,
                diameter_px=h.diameter_px,
                stage_x_um=h.stage_x_um,
                stage_y_um=h.stage_y_um,
            )
            for h in targets.holes.values()
        )

    def _square_dir(self, square_dir: str, found: _Found) -> None:
        for folder, prefix in (
            (square_dir, "GridSquare_"),
            (os.path.join(square_dir, "FoilHoles"), "FoilHole_"),
        ):
            stamp = self._changed(folder)
            if stamp is None:
                continue
            label = grid_square_label(Path(square_dir))
            if label is None:
                return
            complete = True
            for name in _entries(folder, prefix, ".xml", dirs=False):
                known, now, xml = self._stamps.get(name), _stamp(name), Path(name)
                if known == READ or now is None:
                    continue
                if known == now:  # unreadable, and unchanged since
                    complete = False
                    continue
                image = self._read(xml, read_image_xml)
                if image is None:  # being written? read again when it changes
                    complete, found.stamps[name] = False, now
                    continue
                jpeg = find_image(xml)
                values: dict[str, object] = {
                    "image": None if jpeg is None else str(jpeg)[:255],
                    "stage_x_um": image.stage_x_um,
                    "stage_y_um": image.stage_y_um,
                    "pixel_size_a": image.pixel_size_a,
                }
                if prefix == "GridSquare_":
                    found.squares.append(
                        grid.GridSquareRow.model_validate({"label": label} | values)
                    )
                else:
                    hole = foil_hole_label(xml)
                    if hole is not None:
                        row = grid.FoilHoleRow.model_validate({"label": hole} | values)
                        found.holes.setdefault(label, []).append(row)
                if jpeg is not None:  # else read again when the image lands in the folder
                    found.stamps[name] = READ
            if complete:
                found.stamps[folder] = stamp

    def group_of(self, data_collection_id: int, session: Session | None = None) -> int:
        """The DataCollectionGroup of a data collection (the grid its atlas hangs on)."""
        if data_collection_id not in self._groups:
            if session is None:
                with self.sessions() as own:
                    group = grid.group_of(own, data_collection_id=data_collection_id)
            else:
                group = grid.group_of(session, data_collection_id=data_collection_id)
            self._groups[data_collection_id] = group
        return self._groups[data_collection_id]
