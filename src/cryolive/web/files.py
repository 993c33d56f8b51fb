"""The one rule for files users name or the web serves: they stay inside their visit.

A visit's folders are its raw folders (the recorded ``imageDirectory`` of each of its data
collections) and its processed folder (``processed`` beside them: ``<visit>/processed``, where
:mod:`cryolive.io.layout` puts every result). A path is inside the visit when it is an
absolute path that lies under one of them both as written (``..`` folded) and once resolved
(symbolic links followed). The first test is lexical, so a path plainly elsewhere
(``/etc/shadow``) is refused without the file system being asked about it; the refusal says
the same whether or not the outside file exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.orm import Session

from cryolive.db.repo import browse
from cryolive.io.paths import inside

__all__ = ["REFUSED", "inside", "visit_folders"]

REFUSED = "must lie inside this visit's raw or processed folders"


def visit_folders(db: Session, *, session_id: int) -> list[Path]:
    """The folders of visit ``session_id`` that users' and served paths must lie in."""
    folders: list[Path] = []
    for text in browse.raw_folders(db, session_id=session_id):
        raw = Path(os.path.normpath(text))
        if not raw.is_absolute() or raw.parent == raw:
            continue  # a relative or root folder recorded by mistake grants nothing
        for folder in (raw, raw.parent / "processed"):
            if folder not in folders:
                folders.append(folder)
    return folders
