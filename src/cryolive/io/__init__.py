"""Readers for what a microscope writes: movies (TIFF, MRC, EER), EPU and SerialEM metadata,
gain references. Every reader raises a typed error whose message says what is wrong with which
file, so the pipeline can record a failed step a person can act on."""

from cryolive.io._errors import GainReadError, MetadataReadError, MovieReadError, ReadError

__all__ = ["GainReadError", "MetadataReadError", "MovieReadError", "ReadError"]
