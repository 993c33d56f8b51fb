"""Which files are movies, by name, and where their metadata lies.

EPU names an acquisition ``FoilHole_<hole>_Data_<acquisition>_<n>_<yyyymmdd>_<hhmmss>`` and writes
beside the movie (``…_fractions.tiff`` on a K3, ``…_Fractions.mrc`` or ``…_Fractions.tiff`` on a
Falcon, ``…_EER.eer``) its metadata (``….xml``), a JPEG and, in some sessions, the integrated
image (``….mrc`` or ``….tiff`` without ``_Fractions``), which is not a movie. SerialEM's movies
(``.tif``, ``.mrc``, ``.eer``) have their ``<movie>.mdoc`` beside them. Grid square, foil hole
and atlas images, gain references and Digital Micrograph files are never movies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryolive.io.movies import MOVIE_SUFFIXES

__all__ = ["MOVIE_SUFFIXES", "MovieName", "movie_name"]

_EPU_DATA = re.compile(r"^FoilHole_(\d+)_Data_(\d+)_", re.IGNORECASE)
_EPU_MOVIE_TAIL = re.compile(r"_(fractions|eer)$", re.IGNORECASE)
# images EPU and SerialEM write that are not movies, by the start of their name
_NOT_MOVIES = re.compile(r"^(GridSquare_|FoilHole_|Atlas|Tile_|SuperRef_|CountRef_)", re.I)


@dataclass(frozen=True)
class MovieName:
    """What a movie's name says.

    Attributes
    ----------
    software
        ``"epu"`` (an EPU acquisition name) or ``"serialem"`` (any other movie name).
    metadata
        Where its metadata is expected: EPU's ``.xml`` (the name without ``_Fractions`` /
        ``_EER``), SerialEM's ``<movie>.mdoc``. It may not exist yet.
    foil_hole, acquisition
        EPU's foil hole and acquisition ids from the name; None for SerialEM.
    """

    software: Literal["epu", "serialem"]
    metadata: Path
    foil_hole: int | None = None
    acquisition: int | None = None


def movie_name(path: Path | str) -> MovieName | None:
    """What ``path``'s name makes of it: a movie, or None (not a movie: an integrated image,
    a JPEG, a grid square or foil hole image, a gain reference, a ``.dm`` file …).

    Only the name is looked at: whether the file is complete, readable, or a regular file is
    for the caller to find out. Any name that is not EPU's is taken for SerialEM's, so a
    caller confirms those (the ``.mdoc`` beside it, or a ``Frames`` folder): SerialEM also
    saves maps (``.mrc``) that are not movies, under names of the user's choosing.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MOVIE_SUFFIXES:
        return None
    stem = path.name[: -len(suffix)]
    data = _EPU_DATA.match(stem)
    if data is not None:
        tail = _EPU_MOVIE_TAIL.search(stem)
        if tail is None:
            return None  # EPU's integrated image, beside the movie
        return MovieName(
            software="epu",
            metadata=path.with_name(stem[: tail.start()] + ".xml"),
            foil_hole=int(data[1]),
            acquisition=int(data[2]),
        )
    if _NOT_MOVIES.match(stem) or "gain" in stem.lower():
        return None
    return MovieName(software="serialem", metadata=path.with_name(path.name + ".mdoc"))
