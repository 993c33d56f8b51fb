"""Paths users name: the one test of whether a path stays inside a set of folders.

The web (files users name or it serves, :mod:`cryolive.web.files`) and the pipeline (a
requested run's gain reference, checked again before the run starts) use the same test.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def inside(path: str | Path, folders: Iterable[Path]) -> Path | None:
    """``path`` resolved, if it lies inside one of ``folders`` as written and once resolved;
    else None (also for a relative path, a NUL byte or a symbolic-link loop)."""
    text = str(path)
    if "\0" in text or not os.path.isabs(text):
        return None
    written = Path(os.path.normpath(text))
    folders = list(folders)
    if not any(written.is_relative_to(f) for f in folders):
        return None
    try:
        resolved = written.resolve()
        roots = [f.resolve() for f in folders]
    except (OSError, RuntimeError):
        return None
    return resolved if any(resolved.is_relative_to(r) for r in roots) else None
