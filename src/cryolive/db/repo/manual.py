"""Data collections registered by hand (from the web's visit page), before any movie arrives.

The row is the one the watcher would write for the folder: same DataCollectionGroup and
DataCollection, same natural key (the visit and the raw folder, through
:func:`~cryolive.db.repo.collections.register_data_collection`), so the watcher later finds it
instead of registering a second one. The optics entered by hand are the columns ISPyB has
(voltage, pixelSizeOnImage, imageSuffix, fileTemplate, totalExposedDose when the number of
frames is known); the dose per frame and frames, which ISPyB's DataCollection has no column
for, are kept as JSON in ``comments``. :func:`hand_optics` reads them back: the watcher uses
them for movies that have no metadata of their own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from ispyb.sqlalchemy import DataCollection
from sqlalchemy.orm import Session

from cryolive.db.repo._keys import lookup, table_of
from cryolive.db.repo.collections import DataCollectionSpec, register_data_collection

Software = Literal["EPU", "SerialEM"]
Extension = Literal["tiff", "tif", "mrc", "eer"]
_MARK = "cryolive-hand-registered"


@dataclass(frozen=True)
class HandOptics:
    """What a person entered for a data collection."""

    software: Software
    extension: Extension
    pixel_size_a: float
    dose_per_frame_e_per_a2: float
    voltage_kv: float
    frames: int | None
    registered_by: str


class AlreadyRegistered(ValueError):
    """The folder is a data collection already (registered by the watcher or by hand)."""


def file_template(software: Software, extension: Extension) -> str:
    """Where the movies lie in the raw folder, as the watcher writes it."""
    if software == "SerialEM":
        return f"Frames/*.{extension}"
    return f"Images-Disc*/GridSquare_*/Data/*_fractions.{extension}"


def _key(session_id: int, directory: str) -> tuple[int, str]:
    return (session_id, directory if directory.endswith("/") else directory + "/")


def register_by_hand(
    session: Session, *, session_id: int, raw_dir: str, optics: HandOptics
) -> tuple[int, int]:
    """Create the (DataCollectionGroup, DataCollection) of ``raw_dir`` with hand-entered optics.

    Raises
    ------
    AlreadyRegistered
        When the folder already has a data collection (its values are left as they are).
    """
    if not raw_dir.startswith("/"):
        raise ValueError(f"raw_dir: must be an absolute path, got {raw_dir!r}")
    if optics.pixel_size_a <= 0 or optics.dose_per_frame_e_per_a2 <= 0 or optics.voltage_kv <= 0:
        raise ValueError("optics: pixel size, dose per frame and voltage must be > 0")
    if lookup(session, table=table_of(DataCollection), keys=[_key(session_id, raw_dir)]):
        raise AlreadyRegistered(f"raw_dir: {raw_dir} is already a data collection of this visit")
    spec = DataCollectionSpec(
        session_id=session_id,
        image_directory=raw_dir,
        file_template=file_template(optics.software, optics.extension),
        image_suffix=optics.extension,
        voltage_kv=optics.voltage_kv,
        pixel_size_a=optics.pixel_size_a,
        total_exposed_dose_e_per_a2=(
            optics.dose_per_frame_e_per_a2 * optics.frames if optics.frames else None
        ),
    )
    group_id, collection_id = register_data_collection(session, spec=spec)
    note = {
        _MARK: True,
        "software": optics.software,
        "extension": optics.extension,
        "dose_per_frame_e_per_a2": optics.dose_per_frame_e_per_a2,
        "frames": optics.frames,
        "registered_by": optics.registered_by,
    }
    session.execute(
        sa.update(DataCollection)
        .where(DataCollection.dataCollectionId == collection_id)
        .values(comments=json.dumps(note))
    )
    return group_id, collection_id


def hand_optics(session: Session, *, session_id: int, raw_dir: str) -> HandOptics | None:
    """The optics entered by hand for ``raw_dir`` of the visit, or None (no data collection,
    or one the watcher registered from metadata)."""
    found = lookup(session, table=table_of(DataCollection), keys=[_key(session_id, raw_dir)])
    if not found:
        return None
    row = session.execute(
        sa.select(
            DataCollection.comments, DataCollection.pixelSizeOnImage, DataCollection.voltage
        ).where(DataCollection.dataCollectionId == next(iter(found.values())))
    ).one()
    try:
        note = json.loads(row[0] or "")
    except ValueError:
        return None
    if not isinstance(note, dict) or not note.get(_MARK) or row[1] is None or row[2] is None:
        return None
    return HandOptics(
        software=note["software"],
        extension=note["extension"],
        pixel_size_a=float(row[1]),
        dose_per_frame_e_per_a2=float(note["dose_per_frame_e_per_a2"]),
        voltage_kv=float(row[2]),
        frames=None if note["frames"] is None else int(note["frames"]),
        registered_by=str(note["registered_by"]),
    )
