"""Transitional alias of :mod:`cryolive.records`, where the records now live (they are the
contract between the services and the writer, not database code). Delete this module once
``services/watcher.py`` (edited on another branch while the records moved) imports
``cryolive.records``; nothing else imports it."""

from cryolive.records import (
    AnyRecord,
    ClassificationRecord,
    ClassValues,
    CtfRecord,
    FailureRecord,
    IceThicknessRecord,
    MotionCorrectionRecord,
    MovieRecord,
    MovieRef,
    ParticlePickerRecord,
)

__all__ = [
    "AnyRecord",
    "ClassValues",
    "ClassificationRecord",
    "CtfRecord",
    "FailureRecord",
    "IceThicknessRecord",
    "MotionCorrectionRecord",
    "MovieRecord",
    "MovieRef",
    "ParticlePickerRecord",
]
