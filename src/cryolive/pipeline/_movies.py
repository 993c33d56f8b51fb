"""What the watcher takes for a movie, and where it finds a movie's metadata and gain.

Movies are, below a raw folder:

- EPU, in ``Images-Disc*/GridSquare_*/Data/``: K3 ``*_fractions.tiff``, Falcon
  ``*_Fractions.mrc``, ``*_EER.eer``, and plain ``.tif``/``.tiff``/``.eer`` files; an ``.mrc``
  there is a movie only when named ``_fractions`` (any case): the other ``FoilHole_…_Data_….mrc``
  is EPU's integrated image (the sum it writes beside the fractions);
- SerialEM, in ``Frames/``: ``.tif``/``.tiff``/``.mrc``/``.eer`` (the ``.mdoc`` beside each).

Never movies: gain references (a name holding ``gain``, SerialEM's ``SuperRef_*`` and
``CountRef_*``), ``.dm``/``.dm4`` files, JPEGs, the atlas and the grid-square and foil-hole images
(outside ``Data/`` and ``Frames/``). A symbolic link is followed only when what it points at
stays inside the visit folder: a link to another visit's movies is never read.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from cryolive.io import AcquisitionMetadata
from cryolive.io.epu import read_epu_xml
from cryolive.io.gain import find_gain_reference
from cryolive.io.mdoc import read_mdoc
from cryolive.io.movies import MOVIE_SUFFIXES
from cryolive.io.paths import inside

log = logging.getLogger(__name__)

MOVIE_FOLDERS = ("Data", "Frames")
GAIN_PREFIXES = ("superref_", "countref_")
_EPU_MOVIE_ENDINGS = ("_fractions", "_eer")


def _epu_xml(movie: Path) -> Path:
    stem = movie.stem
    for ending in _EPU_MOVIE_ENDINGS:
        if stem.lower().endswith(ending):
            stem = stem[: -len(ending)]
            break
    return movie.with_name(stem + ".xml")


def metadata_file(movie: Path) -> Path:
    """The movie's metadata: SerialEM's ``<movie>.mdoc`` when there is one, else EPU's
    ``.xml`` (which may not exist yet)."""
    mdoc = movie.with_name(movie.name + ".mdoc")
    return mdoc if mdoc.exists() else _epu_xml(movie)


def read_metadata(movie: Path) -> AcquisitionMetadata:
    path = metadata_file(movie)
    return read_mdoc(path) if path.suffix == ".mdoc" else read_epu_xml(path)


def is_gain_name(name: str) -> bool:
    lower = name.lower()
    return "gain" in lower or lower.startswith(GAIN_PREFIXES)


def why_not_a_movie(path: Path) -> str | None:
    """None if ``path`` (by its name and folder) is a movie, else why not, for the log."""
    suffix = path.suffix.lower()
    if suffix not in MOVIE_SUFFIXES:
        return f"not a movie file type ({suffix or 'no suffix'})"
    if path.parent.name not in MOVIE_FOLDERS:
        return "an image outside Data/ and Frames/ (atlas, grid square or foil hole)"
    if is_gain_name(path.name):
        return "a gain reference"
    if path.parent.name == "Data" and suffix in (".mrc", ".mrcs"):
        stem = path.stem.lower()
        if not stem.endswith("_fractions") and not path.with_name(path.name + ".mdoc").exists():
            return "EPU's integrated image (the movie is its _Fractions file)"
    return None


Listing = tuple[tuple[int, int], list[Path], list[Path]]  # (folder's identity), files, folders
# A listing is reused only when its folder's time stamp is this much older than the listing,
# so that a file created within the file system's time-stamp resolution is never missed.
_STILL_NS = 2_000_000_000


def walk(
    raw_dir: Path,
    visit_dir: Path,
    refused: dict[Path, str],
    listings: dict[Path, Listing] | None = None,
    folders: set[Path] | None = None,
) -> Iterator[Path]:
    """Every file below ``raw_dir``, sorted per folder, following symbolic links (to files and
    folders) only where they resolve inside ``visit_dir``; a link that leaves it is put in
    ``refused`` with why, and not followed. Dangling links, and folders in ``Data/`` or
    ``Frames/`` named like movies, are yielded: they are movies that cannot be read, and get
    their failure like any other.

    ``listings`` (kept by the caller between scans) holds each folder's listing; a folder whose
    time stamp has not changed (no entry added, removed or renamed) is not listed again, which
    keeps a scan of a visit of 50,000 movies cheap. ``folders``, when given, receives every
    folder walked (the watcher watches them for events).
    """
    stack = [raw_dir]
    cache = {} if listings is None else listings
    while stack:
        folder = stack.pop()
        try:
            stat = os.stat(folder)
        except OSError as exc:
            log.warning("%s: cannot list (%s)", folder, exc.strerror or exc)
            continue
        identity = (stat.st_ino, stat.st_mtime_ns)
        if folders is not None:
            folders.add(folder)
        cached = cache.get(folder)
        if cached is not None and cached[0] == identity:
            files, subfolders = cached[1], cached[2]
        else:
            try:
                files, subfolders = _list(folder, visit_dir, refused)
            except OSError as exc:
                log.warning("%s: cannot list (%s)", folder, exc.strerror or exc)
                continue
            if time.time_ns() - stat.st_mtime_ns > _STILL_NS:
                cache[folder] = (identity, files, subfolders)
            else:
                cache.pop(folder, None)
        yield from files
        stack.extend(reversed(subfolders))


def _list(folder: Path, visit_dir: Path, refused: dict[Path, str]) -> tuple[list[Path], list[Path]]:
    files: list[Path] = []
    subfolders: list[Path] = []
    with os.scandir(folder) as found:
        entries = sorted(found, key=lambda e: e.name)
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink():
            if path in refused:
                continue
            if os.path.lexists(path) and not os.path.exists(path):
                target = Path(os.path.normpath(path.parent / os.readlink(path)))
                if inside(target, [visit_dir]) is None:
                    refused[path] = f"a dangling link to {target}, outside the visit"
                    continue
                files.append(path)
                continue
            if inside(path, [visit_dir]) is None:
                refused[path] = f"a link to {os.path.realpath(path)}, outside the visit folder"
                continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir and not (folder.name in MOVIE_FOLDERS and why_not_a_movie(path) is None):
            subfolders.append(path)
        else:
            files.append(path)
    return files, subfolders


def gain_reference(raw_dir: Path) -> Path | None:
    """The gain reference of a raw folder's movies (:func:`cryolive.io.gain.find_gain_reference`:
    a name holding ``gain``, or SerialEM's ``SuperRef_*``/``CountRef_*``), in the raw folder or
    beside SerialEM's frames."""
    try:
        return find_gain_reference(raw_dir, raw_dir / "Frames")
    except OSError:
        return None
