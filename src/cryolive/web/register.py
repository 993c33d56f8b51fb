"""Registering a data collection by hand, from the visit page, before its movies arrive.

The folder must be a raw folder (``raw``, ``raw2`` …) directly inside the visit's folder
(``settings.web.visit_folder``): that is where the watcher looks, and it then finds this data
collection (same natural key) instead of registering a second one. Paths are checked as text
(the web server need not see the microscope's file system): ``..`` is refused outright, and
where the web server does see the folder, it must not lead out of the visit's folder through
a symbolic link.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

from cryolive.db.repo.browse import VisitRow
from cryolive.db.repo.manual import Extension, HandOptics, Software
from cryolive.web import files

RAW_FOLDER = re.compile(r"^raw\d*$")  # as the watcher's


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    folder: str = Field(
        min_length=1,
        max_length=200,
        description="The raw folder: 'raw3', or its absolute path inside the visit's folder.",
    )
    software: Software = Field(description="The acquisition software: EPU or SerialEM.")
    file_extension: Extension = Field(description="The movies' files: tiff, tif, mrc or eer.")
    pixel_size_a: float = Field(gt=0, le=20, description="Pixel size of the movies, Å.")
    dose_per_frame_e_per_a2: float = Field(gt=0, le=20, description="Dose per frame, e⁻/Å².")
    voltage_kv: float = Field(ge=60, le=400, description="Accelerating voltage, kV.")
    frames: int | None = Field(default=None, ge=1, le=100_000, description="Frames per movie.")

    def optics(self, *, login: str) -> HandOptics:
        return HandOptics(
            software=self.software,
            extension=self.file_extension,
            pixel_size_a=self.pixel_size_a,
            dose_per_frame_e_per_a2=self.dose_per_frame_e_per_a2,
            voltage_kv=self.voltage_kv,
            frames=self.frames,
            registered_by=login,
        )


def visit_folder(template: str, visit: VisitRow) -> PurePosixPath:
    """The visit's folder, from ``settings.web.visit_folder``."""
    year = (visit.start or dt.datetime.now(dt.UTC)).year
    text = template.format(visit=visit.name, microscope=visit.microscope.lower(), year=year)
    folder = PurePosixPath(text)
    if not folder.is_absolute() or ".." in folder.parts:
        raise ValueError(f"web.visit_folder: {text!r} is not an absolute path without '..'")
    return folder


def raw_folder(folder: str, visit_dir: PurePosixPath) -> str:
    """The absolute raw folder that ``folder`` names inside ``visit_dir``.

    Raises
    ------
    ValueError
        When it has ``..`` or odd characters, lies outside the visit's folder, or is not a raw
        folder directly inside it.
    """
    if any(c in folder for c in "\\\0\n\r"):
        raise ValueError("folder: backslashes and control characters are not allowed")
    given = PurePosixPath(folder)
    if ".." in given.parts:
        raise ValueError("folder: '..' is not allowed")
    path = given if given.is_absolute() else visit_dir / given
    if not path.is_relative_to(visit_dir) or path == visit_dir:
        raise ValueError(f"folder: {path} is not inside the visit's folder {visit_dir}")
    if path.parent != visit_dir or not RAW_FOLDER.match(path.name):
        raise ValueError(
            f"folder: must be a raw folder (raw, raw2 …) directly inside {visit_dir}, "
            f"where the watcher looks; got {path}"
        )
    if files.inside(str(path), [Path(visit_dir)]) is None:  # a symbolic link out of the visit
        raise ValueError(f"folder: {path} is not inside the visit's folder {visit_dir}")
    return str(path)
