"""Transitional alias: :func:`choose_eer_grouping` now lives in :mod:`cryolive.engines.motion`
(pure dose arithmetic, no service), and ``eer_frame_count`` was
:func:`cryolive.io.movies.movie_frame_count` under a second name. Delete this module once
``services/watcher.py`` (edited on another branch while this moved) imports those two."""

from cryolive.engines.motion import choose_eer_grouping
from cryolive.io.movies import movie_frame_count as eer_frame_count

__all__ = ["choose_eer_grouping", "eer_frame_count"]
