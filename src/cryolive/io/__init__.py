"""Readers and writers of the files cryolive meets: movies (TIFF, MRC, EER), micrographs, EPU and
SerialEM metadata, gain references (modules here); the files each stage writes (``outputs/``);
picking's and extraction's STAR files, coordinates and stacks (``particle_files/``); PNG images
(``png``, the one writer); where processed files go (``layout``, ``paths``). Every reader
raises a typed error whose message says what is wrong with which file, so the pipeline can
record a failed step a person can act on."""

from typing import TYPE_CHECKING, Any

from cryolive.io._errors import GainReadError, MetadataReadError, MovieReadError, ReadError

if TYPE_CHECKING:
    from cryolive.io._metadata import AcquisitionMetadata


def __getattr__(name: str) -> Any:
    # AcquisitionMetadata (a pydantic model) is built on first use: a command that reads a
    # micrograph (``cryolive ctf``) does not pay for it.
    if name == "AcquisitionMetadata":
        from cryolive.io._metadata import AcquisitionMetadata

        return AcquisitionMetadata
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AcquisitionMetadata",
    "GainReadError",
    "MetadataReadError",
    "MovieReadError",
    "ReadError",
]
